"""The quarantine's report (`QDIR/report.csv`): one `ReportRow` per candidate `prep clean` flagged, written
and read here only — by the quarantine (prep/quarantine.py) and shown by the review page
(prep/review_page.py), neither of which owns it.

Columns: path, reason, score, threshold, detail, sha256, other_reasons (`;`-separated), original.
The report is a file anyone can edit: a row that names no dataset photo under a known reason is dropped
when read, so it can never steer a move or a deletion.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from core import IMAGES_DIR, is_safe_name, read_text_tolerantly, spreadsheet_safe, write_atomically
from prep.checks import REASONS

REPORT = "report.csv"
REPORT_COLUMNS = ("path", "reason", "score", "threshold", "detail", "sha256", "other_reasons", "original")


@dataclass(frozen=True)
class ReportRow:
    """One candidate of report.csv, the quarantine's record of what `prep clean` flagged and why."""

    path: str  # images/{CITY}/{XID}/{file}, relative to the data dir
    reason: str
    score: str
    threshold: str
    detail: str
    sha256: str
    other_reasons: tuple[str, ...]
    original: str  # for a duplicate: the dataset photo it duplicates

    @property
    def reasons(self) -> frozenset[str]:
        return frozenset((self.reason, *self.other_reasons))

    @property
    def xid(self) -> str:
        return Path(self.path).parent.name

    def to_csv(self) -> dict[str, str]:
        return {
            "path": self.path,
            "reason": self.reason,
            "score": self.score,
            "threshold": self.threshold,
            "detail": str(spreadsheet_safe(self.detail)),
            "sha256": self.sha256,
            "other_reasons": ";".join(self.other_reasons),
            "original": self.original,
        }

    @classmethod
    def from_csv(cls, raw: dict[str | None, str | None]) -> ReportRow | None:
        """A row as read back; None for one that names no dataset photo under a known reason. The report is
        a file anyone can edit: a path with `..` or odd names must never steer a move or a deletion."""
        values = {key: (value or "").strip() for key, value in raw.items() if isinstance(key, str)}
        path, reason = values.get("path", ""), values.get("reason", "")
        if reason not in REASONS or not is_dataset_photo_path(path):
            return None
        original = values.get("original", "")
        return cls(
            path=path,
            reason=reason,
            score=values.get("score", ""),
            threshold=values.get("threshold", ""),
            detail=values.get("detail", ""),
            sha256=values.get("sha256", "").lower(),
            other_reasons=tuple(r for r in values.get("other_reasons", "").split(";") if r in REASONS),
            original=original if is_dataset_photo_path(original) else "",
        )


def is_dataset_photo_path(path: str) -> bool:
    """images/{CITY}/{XID}/{file}, each part a safe name: the only shape a candidate's path may have."""
    parts = path.split("/")
    return len(parts) == 4 and parts[0] == IMAGES_DIR and all(is_safe_name(part) for part in parts[1:])


def write_report(qdir: Path, rows: list[ReportRow]) -> None:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS)
    writer.writeheader()
    writer.writerows(row.to_csv() for row in rows)
    write_atomically(qdir / REPORT, out.getvalue().encode("utf-8"))


def read_report(qdir: Path) -> list[ReportRow]:
    """report.csv's candidates; rows that name no dataset photo (edited, damaged) are left out."""
    report = qdir / REPORT
    if report.is_symlink() or not report.is_file():
        return []
    reader = csv.DictReader(io.StringIO(read_text_tolerantly(report), newline=""))
    return [row for raw in reader if (row := ReportRow.from_csv(raw)) is not None]
