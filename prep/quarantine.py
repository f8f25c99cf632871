"""The review quarantine: candidates are copied here, reviewed by a person, then `apply` deletes from
the dataset exactly the photos still here — matched by relative path AND content hash.

Layout: QDIR/{reason}/{CITY}/{XID}/{file}   copies of the candidates (delete one to keep its photo)
        QDIR/.kept/{reason}/…                copies kept in the review page (`prep review`)
        QDIR/report.csv                      the candidates (prep/quarantine_report.py owns the format)
        QDIR/index.html, QDIR/.thumbs/       the review page and its thumbnails (prep/review_page.py)
        QDIR/.quarantine                     the marker: only a folder carrying it is ever emptied

A kept photo is recorded in the dataset (`kept.csv`, by content hash): a later `prep clean` does not
flag it again for the same reasons, and `prep apply` never deletes it.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from core import (
    IMAGES_DIR,
    CatalogError,
    Dataset,
    GuideError,
    KeptPhoto,
    RemovedPhoto,
    file_hash,
    file_lock,
)
from prep.checks import REASONS
from prep.clean import CleanResult
from prep.quarantine_report import REPORT, ReportRow, read_report, write_report
from prep.review_page import THUMBS, render, thumbnail_name, write_thumbnail

MARKER = ".quarantine"
PAGE = "index.html"
KEPT_DIR = ".kept"  # copies of photos kept in the review page (moved back when undone)
COMPARISON_PHOTOS = 3  # typical photos of the same landmark shown beside its candidates


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


def quarantine_path(qdir: Path, reason: str, path: str) -> Path:
    """Where a candidate's copy lives. Dataset paths are images/{CITY}/{XID}/{file}: the reason replaces the
    leading folder (under QDIR/.kept for a photo kept in the review page)."""
    return qdir / reason / Path(path).relative_to(IMAGES_DIR)


def write_quarantine(result: CleanResult, data_dir: Path, qdir: Path) -> None:
    """Replace the quarantine's content with copies of the candidates, the report and the review page.
    Decisions made in the old quarantine are harvested into the dataset first (see `harvest_kept`)."""
    check_location(qdir, data_dir)
    if qdir.exists():
        for child in qdir.iterdir():
            if child.is_dir() and child.name in (*REASONS, KEPT_DIR, THUMBS):
                shutil.rmtree(child)
            elif child.name in (REPORT, PAGE):
                child.unlink()
    qdir.mkdir(parents=True, exist_ok=True)
    _write_marker(qdir)
    for finding in result.findings:
        target = quarantine_path(qdir, finding.reason, finding.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(data_dir / finding.path, target)
    rows = _report_rows(result)
    write_report(qdir, rows)
    (qdir / PAGE).write_text(_page(result, rows, data_dir, qdir), encoding="utf-8")


def _report_rows(result: CleanResult) -> list[ReportRow]:
    reasons_of: dict[str, list[str]] = defaultdict(list)
    for finding in result.all_findings:
        reasons_of[finding.path].append(finding.reason)
    originals = {f.path: f.original for f in result.all_findings if f.original}
    return [
        ReportRow(
            path=finding.path,
            reason=finding.reason,
            score=f"{finding.score:.4g}",
            threshold=f"{finding.threshold:.4g}",
            detail=finding.detail,
            sha256=result.sha256.get(finding.path, ""),
            other_reasons=tuple(r for r in reasons_of[finding.path] if r != finding.reason),
            original=originals.get(finding.path, ""),
        )
        for finding in result.findings
    ]


def _page(result: CleanResult, rows: list[ReportRow], data_dir: Path, qdir: Path) -> str:
    dataset = Dataset(data_dir)
    try:
        landmarks = {xid: f"{lm.name}, {lm.city}" for xid, lm in dataset.landmarks().items()}
    except CatalogError:
        landmarks = {}
    shown = {row.path for row in rows} | {row.original for row in rows if row.original}
    xids = {row.xid for row in rows}
    typical = {xid: paths[:COMPARISON_PHOTOS] for xid, paths in result.typical.items() if xid in xids}
    shown |= {path for paths in typical.values() for path in paths}
    sizes = {path: write_thumbnail(data_dir / path, qdir / THUMBS / thumbnail_name(path)) for path in sorted(shown)}
    return render(rows, landmarks, typical, sizes, result.photos)


# --- decisions: keep (the copy leaves the quarantine) or remove (it stays) ---------------------------------


def states(qdir: Path, rows: list[ReportRow] | None = None) -> dict[str, str]:
    """Each candidate's state: "remove" while its copy is in the quarantine, else "keep"."""
    out = {}
    for row in read_report(qdir) if rows is None else rows:
        copy = quarantine_path(qdir, row.reason, row.path)
        out[row.path] = "remove" if copy.is_file() and not copy.is_symlink() else "keep"
    return out


def decide(qdir: Path, data_dir: Path, paths: list[str], decision: str) -> dict[str, str]:
    """Keep: move the copy to QDIR/.kept (undoable) and record the decision in the dataset at once.
    Remove: move it back. Unknown paths are ignored; returns the new states of the known ones."""
    check_location(qdir, data_dir)
    rows = {row.path: row for row in read_report(qdir)}
    touched = [rows[path] for path in dict.fromkeys(paths) if path in rows]
    for row in touched:
        live = quarantine_path(qdir, row.reason, row.path)
        kept = quarantine_path(qdir / KEPT_DIR, row.reason, row.path)
        source, target = (live, kept) if decision == "keep" else (kept, live)
        if source.is_file() and not source.is_symlink():
            target.parent.mkdir(parents=True, exist_ok=True)
            source.replace(target)
    now = states(qdir, touched)
    # The dataset records what the quarantine now says: a "remove" whose copy is gone (deleted by hand)
    # stays a keep, and its record with it.
    dataset = Dataset(data_dir)
    dataset.record_kept(_kept_photo(row) for row in touched if now[row.path] == "keep" and row.sha256)
    dataset.forget_kept(row.sha256 for row in touched if now[row.path] == "remove")
    return now


def _kept_photo(row: ReportRow) -> KeptPhoto:
    return KeptPhoto(row.sha256, row.path, row.reasons)


def harvest_kept(qdir: Path, data_dir: Path) -> int:
    """Record as kept every reviewed candidate whose copy is no longer in the quarantine (deleted by hand, or
    kept in the review page), so the decision outlives the quarantine. Returns how many."""
    if not (qdir / MARKER).is_file() or (qdir / MARKER).is_symlink():
        return 0
    rows = read_report(qdir)
    now = states(qdir, rows)
    keeps = [_kept_photo(row) for row in rows if now[row.path] == "keep" and row.sha256]
    Dataset(data_dir).record_kept(keeps)
    return len(keeps)


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
    harvest_kept(qdir, data_dir)  # copies deleted by hand are keep decisions too
    decided = Dataset(data_dir).kept()
    delete, kept = [], []
    for reason in REASONS:
        folder = qdir / reason
        if not folder.is_dir():
            continue
        for copy in sorted(folder.glob("*/*/*")):
            relative = f"{IMAGES_DIR}/{copy.relative_to(folder).as_posix()}"
            why = _why_not_delete(copy, reason, relative, recorded, Dataset(data_dir))
            if not why and recorded[relative][1] in decided:
                why = "kept in an earlier review (kept.csv)"
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
    return {row.path: (row.reason, row.sha256) for row in read_report(qdir)}


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


def apply_plan(plan: ApplyPlan, data_dir: Path, qdir: Path) -> list[PlannedDeletion]:
    """Delete the planned photos and record them in removed.csv. Each is re-checked at the moment it is
    deleted, for every reason it may not be (the plan may be minutes old: an admin at the y/N prompt while
    the review page is open): its copy still in the quarantine, under the reason recorded, agreeing with
    the dataset photo and the recorded hash, and no keep decision for it in kept.csv."""
    deleted = []
    dataset = Dataset(data_dir)
    recorded = _recorded(qdir)  # report.csv is written by `prep clean` only: once, after the prompt, is enough
    for item in plan.delete:
        with file_lock(dataset.kept_path):  # no keep can be recorded between this check and the unlink
            copy = quarantine_path(qdir, item.reason, item.path)
            if _why_not_delete(copy, item.reason, item.path, recorded, dataset) or item.sha256 in dataset.kept():
                continue  # decided or changed since the plan: never delete what is not still up for removal
            dataset.path(item.path).unlink()
        dataset.record_removed(RemovedPhoto(item.path, item.sha256, item.reason))
        deleted.append(item)
    return deleted
