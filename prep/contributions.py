"""`prep contributions list|approve|reject` and `prep stats`: the admin's side of tourists' feedback.

Approval from the shell runs every per-photo check of `prep clean` (`prep.checks.PHOTO_CHECKS`: today
unreadable, tiny, grayscale, sepia, collage) and the duplicate check against the landmark's photos; a
photo that fails one stays pending and the reason is shown.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from core import Answer, Approval, Dataset, ImageDecodeError, Stats, basic_check, stats_summary
from prep.checks import PHOTO_CHECKS, PhotoUnderReview
from prep.checks.decode import read_photo
from prep.checks.duplicates import NEAR_MAX_DISTANCE, perceptual_hash, phash_of


def clean_check(data: bytes, dataset: Dataset, xid: str) -> str | None:
    """None if the photo passes what `prep clean` checks one photo and its landmark for, else the reason."""
    if why := basic_check(data, dataset, xid):
        return why
    photo = PhotoUnderReview("contribution", xid, hashlib.sha256(data).hexdigest(), read_photo(data))
    for check in PHOTO_CHECKS:  # every per-photo check of the registry, whatever is added to it
        if (finding := check.inspect(photo)) is not None:
            return f"{finding.reason}: {finding.detail}".rstrip(": ")
    mine = phash_of(photo)
    for other in dataset.photos():
        if other.xid != xid:
            continue
        try:
            distance = bin(mine ^ perceptual_hash(read_photo(dataset.path(other.path).read_bytes()))).count("1")
        except ImageDecodeError:
            continue
        if distance <= NEAR_MAX_DISTANCE:
            return f"duplicate: {distance} bits from {other.path}"
    return None


@dataclass(frozen=True)
class ContributionsReport:
    contributions: list[Answer] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"contributions": [answer.to_dict() for answer in self.contributions]}

    def summary(self) -> str:
        if not self.contributions:
            return "No contributions yet."
        lines = [f"{'id':<12}  {'status':<8}  {'label':<9}  xid"]
        for a in self.contributions:
            lines.append(
                f"{a.id:<12}  {a.status or 'pending':<8}  {a.to_dict()['user_label']:<9}  {a.label_xid or '-'}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class DecisionReport:
    id: str
    status: str
    approval: Approval | None = None
    detail: str = ""  # what a rejection did

    @property
    def exit_code(self) -> int:
        return 0 if self.approval is None or self.approval.ok else 1

    def to_dict(self) -> dict:
        data = {"id": self.id, "status": self.status}
        if self.approval is not None:
            data["detail"] = self.approval.detail
        elif self.detail:
            data["detail"] = self.detail
        return data

    def summary(self) -> str:
        if self.approval is None:
            return f"{self.id}: {self.detail or self.status}"
        verb = "approved →" if self.approval.ok else "not approved:"
        return f"{self.id}: {verb} {self.approval.detail}"


@dataclass(frozen=True)
class StatsReport:
    stats: Stats

    def to_dict(self) -> dict:
        return self.stats.to_dict()

    def summary(self) -> str:
        return stats_summary(self.stats, days=30)
