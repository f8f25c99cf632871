"""The review quarantine: candidates are copied here, reviewed by a person, then `apply` deletes from
the dataset exactly the photos still here — matched by relative path AND content hash.

Layout: QDIR/{reason}/{CITY}/{XID}/{file}, QDIR/report.csv, QDIR/index.html, QDIR/.quarantine
(a marker: only a folder carrying it is ever emptied by a new `prep clean`).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from core.catalog import CatalogError
from core.dataset import IMAGES_DIR, Dataset, RemovedPhoto
from core.embedding_cache import file_hash
from core.errors import GuideError
from prep.checks import REASONS, Finding
from prep.clean import CleanResult

MARKER = ".quarantine"
REPORT = "report.csv"
PAGE = "index.html"
REPORT_COLUMNS = ("path", "reason", "score", "threshold", "detail", "sha256", "other_reasons")
THUMBNAIL_SIDE = 180
COMPARISON_PHOTOS = 3  # ordinary photos of the same landmark shown beside its candidates


class QuarantineError(GuideError, ValueError):
    """The quarantine folder is unsafe to use or unreadable; the message says why."""


def check_location(qdir: Path, data_dir: Path) -> None:
    """Refuse a quarantine inside the dataset (or containing it), a foreign non-empty folder, and any link."""
    if qdir.is_symlink():
        raise QuarantineError(f"{qdir} is a symbolic link: a quarantine must be a real folder")
    q, d = qdir.resolve(), data_dir.resolve()
    if q == d or q in d.parents or d in q.parents:
        raise QuarantineError(f"the quarantine {qdir} must lie outside the dataset {data_dir} and not contain it")
    if not qdir.exists():
        return
    marker = qdir / MARKER
    if any(qdir.iterdir()) and not (marker.is_file() and not marker.is_symlink()):
        raise QuarantineError(
            f"{qdir} is not empty and is not a quarantine made by `prep clean`; choose another folder"
        )
    if links := _links_inside(qdir):
        raise QuarantineError(
            f"{qdir} contains a symbolic link ({links[0].relative_to(qdir)}): links could point into the dataset, "
            "so this quarantine is refused; remove the link or choose another folder"
        )


def _links_inside(qdir: Path) -> list[Path]:
    """Every symbolic link below `qdir`, without following any."""
    found = []
    for root, folders, files in os.walk(qdir, followlinks=False):
        found += [Path(root) / name for name in folders + files if (Path(root) / name).is_symlink()]
    return found


def _write_marker(qdir: Path) -> None:
    """Written without following a link: O_NOFOLLOW refuses to write through one planted since the check."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(qdir / MARKER, flags, 0o644)
    except OSError as exc:
        raise QuarantineError(f"cannot write the quarantine marker in {qdir}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write("made by `python -m prep clean`; `prep apply` deletes what is still here\n")


def quarantine_path(qdir: Path, finding: Finding) -> Path:
    # Dataset paths are images/{CITY}/{XID}/{file}: the reason replaces the leading folder.
    return qdir / finding.reason / Path(finding.path).relative_to(IMAGES_DIR)


def write_quarantine(result: CleanResult, data_dir: Path, qdir: Path) -> None:
    """Replace the quarantine's content with copies of the candidates, the report and the review page."""
    check_location(qdir, data_dir)
    if qdir.exists():
        for child in qdir.iterdir():
            if child.is_dir() and child.name in REASONS:
                shutil.rmtree(child)
            elif child.name in (REPORT, PAGE):
                child.unlink()
    qdir.mkdir(parents=True, exist_ok=True)
    _write_marker(qdir)
    reasons_of: dict[str, list[str]] = defaultdict(list)
    for finding in result.all_findings:
        reasons_of[finding.path].append(finding.reason)
    for finding in result.findings:
        target = quarantine_path(qdir, finding)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(data_dir / finding.path, target)
    with (qdir / REPORT).open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(REPORT_COLUMNS)
        for finding in result.findings:
            others = [r for r in reasons_of[finding.path] if r != finding.reason]
            writer.writerow(
                [
                    finding.path,
                    finding.reason,
                    f"{finding.score:.4g}",
                    f"{finding.threshold:.4g}",
                    finding.detail,
                    result.sha256.get(finding.path, ""),
                    ";".join(others),
                ]
            )
    (qdir / PAGE).write_text(review_page(result, data_dir), encoding="utf-8")


def _thumbnail(path: Path) -> str:
    """A small JPEG as a data: URL, so the page is one self-contained file."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=80)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    except Exception:  # unreadable files are candidates too; they get an empty frame
        return ""


def review_page(result: CleanResult, data_dir: Path) -> str:
    dataset = Dataset(data_dir)
    try:
        landmarks = dataset.landmarks()
    except CatalogError:
        landmarks = {}
    flagged = {f.path for f in result.all_findings}
    ordinary: dict[str, list[str]] = defaultdict(list)
    for photo in dataset.photos():
        if photo.path not in flagged and len(ordinary[photo.xid]) < COMPARISON_PHOTOS:
            ordinary[photo.xid].append(photo.path)
    grouped: dict[str, dict[str, list[Finding]]] = defaultdict(lambda: defaultdict(list))
    for finding in result.findings:
        grouped[finding.reason][Path(finding.path).parent.name].append(finding)

    def figure(path: str, caption: str, css: str) -> str:
        src = _thumbnail(data_dir / path)
        image = f'<img src="{src}" alt="">' if src else '<div class="broken">unreadable</div>'
        return f'<figure class="{css}">{image}<figcaption>{html.escape(caption)}</figcaption></figure>'

    parts = [
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>Cleaning review</title><style>",
        "body{font-family:sans-serif;margin:1.5em;background:#fafafa}h2{border-bottom:2px solid #ccc}"
        ".row{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start;margin:.5em 0 1.5em}"
        "figure{margin:0;width:190px;font-size:12px}figure img{max-width:180px;max-height:180px;display:block}"
        ".candidate img{outline:3px solid #d33}.ordinary{opacity:.8}.broken{width:180px;height:120px;"
        "background:#eee;display:flex;align-items:center;justify-content:center}.sep{width:2px;background:#999;"
        "align-self:stretch}</style>",
        f"<h1>Cleaning review: {len(result.findings)} candidates of {result.photos} photos</h1>",
        "<p>Red: candidates (score / threshold). Grey: ordinary photos of the same landmark. To keep a photo, "
        "delete its copy from the quarantine folder; then <code>python -m prep apply</code> deletes from the "
        "dataset exactly the photos still in the quarantine.</p>",
    ]
    for reason in REASONS:
        if reason not in grouped:
            continue
        count = sum(len(v) for v in grouped[reason].values())
        parts.append(f"<h2 id='{reason}'>{reason} ({count})</h2>")
        for xid, findings in sorted(grouped[reason].items()):
            landmark = landmarks.get(xid)
            title = f"{landmark.name}, {landmark.city}" if landmark else xid
            parts.append(f"<h3>{html.escape(title)} <small>{html.escape(xid)}</small></h3><div class='row'>")
            for finding in findings:
                caption = f"{Path(finding.path).name}: {finding.score:.3g} / {finding.threshold:.3g} {finding.detail}"
                parts.append(figure(finding.path, caption, "candidate"))
            if ordinary.get(xid):
                parts.append("<div class='sep'></div>")
                parts += [figure(path, Path(path).name, "ordinary") for path in ordinary[xid]]
            parts.append("</div>")
    parts.append("</html>")
    return "\n".join(parts)


@dataclass(frozen=True)
class PlannedDeletion:
    path: str  # relative to the data dir
    reason: str
    sha256: str


@dataclass(frozen=True)
class ApplyPlan:
    delete: tuple[PlannedDeletion, ...]
    kept: tuple[tuple[str, str], ...]  # (quarantine file, why it is not acted on)


def plan_apply(data_dir: Path, qdir: Path) -> ApplyPlan:
    """What `apply` would delete. Nothing in the quarantine is trusted: a photo is deleted only if its copy
    is a regular file under the reason it was recorded with in report.csv, and the copy, the dataset photo
    at that path and the hash recorded at cleaning time all agree."""
    marker = qdir / MARKER
    if qdir.is_symlink() or marker.is_symlink() or not marker.is_file():
        raise QuarantineError(f"{qdir} is not a quarantine made by `prep clean` (run it first)")
    check_location(qdir, data_dir)
    recorded = _recorded(qdir)
    delete, kept = [], []
    for reason in REASONS:
        folder = qdir / reason
        if not folder.is_dir():
            continue
        for copy in sorted(folder.glob("*/*/*")):
            relative = f"{IMAGES_DIR}/{copy.relative_to(folder).as_posix()}"
            why = _why_not_delete(copy, reason, relative, recorded, Dataset(data_dir))
            if why:
                kept.append((copy.relative_to(qdir).as_posix(), why))
            else:
                delete.append(PlannedDeletion(relative, reason, recorded[relative][1]))
    return ApplyPlan(tuple(delete), tuple(kept))


def _recorded(qdir: Path) -> dict[str, tuple[str, str]]:
    """report.csv as {path: (reason, sha256)}; without it nothing can be verified, so nothing is deleted."""
    report = qdir / REPORT
    if report.is_symlink() or not report.is_file():
        raise QuarantineError(
            f"{qdir} has no {REPORT}: without the hashes recorded at cleaning time nothing can be verified, "
            "so nothing is deleted; run `python -m prep clean` again"
        )
    with report.open(newline="", encoding="utf-8") as f:
        return {row["path"]: (row.get("reason", ""), row.get("sha256", "")) for row in csv.DictReader(f)}


def _why_not_delete(
    copy: Path, reason: str, relative: str, recorded: dict[str, tuple[str, str]], dataset: Dataset
) -> str:
    """Empty if the photo may be deleted, else why not."""
    if copy.is_symlink() or not copy.is_file():
        return "not a regular file (a link or a folder): ignored"
    if relative not in recorded or not recorded[relative][1]:
        return "not in report.csv: `prep clean` did not flag this photo"
    recorded_reason, recorded_hash = recorded[relative]
    if recorded_reason != reason:
        return f"recorded under {recorded_reason!r}, found under {reason!r}"
    original = dataset.path(relative)
    if original.is_symlink() or not original.is_file():
        return "no photo at that path in the dataset (already removed or renamed)"
    if not original.resolve().is_relative_to(dataset.images_dir.resolve()):
        return "the dataset path leads outside the dataset's images"
    digest = file_hash(original)
    if digest != recorded_hash:
        return "the dataset photo changed since `prep clean`"
    if file_hash(copy) != digest:
        return "differs from the dataset photo at that path"
    return ""


def apply_plan(plan: ApplyPlan, data_dir: Path) -> list[PlannedDeletion]:
    """Delete the planned photos (re-checking each hash first) and record them in removed.csv."""
    deleted = []
    dataset = Dataset(data_dir)
    for item in plan.delete:
        original = dataset.path(item.path)
        if original.is_symlink() or not original.is_file() or file_hash(original) != item.sha256:
            continue  # changed between planning and deleting: never delete what was not reviewed
        original.unlink()
        dataset.record_removed(RemovedPhoto(item.path, item.sha256, item.reason))
        deleted.append(item)
    return deleted
