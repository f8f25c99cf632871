"""Cleaning checks. Each module is a pure scorer with its score and threshold documented at its top.

Checks are tuned for precision: a good photo removed by mistake costs more than a bad one missed.
"""

from __future__ import annotations

from dataclasses import dataclass

# Reasons in priority order: a photo flagged by several checks is quarantined under the first.
REASONS = ("unreadable", "tiny", "duplicate", "grayscale", "sepia", "collage", "outlier", "interior")
# Names accepted by `prep clean --checks`; interiors are opt-in, since museums legitimately have them.
CHECKS = ("unreadable", "tiny", "duplicates", "grayscale", "sepia", "collage", "outliers", "interior")
DEFAULT_CHECKS = tuple(c for c in CHECKS if c != "interior")


@dataclass(frozen=True)
class Finding:
    path: str  # relative to the data dir
    reason: str
    score: float
    threshold: float
    detail: str = ""
