"""Cleaning checks, as a registry. Each module is a scorer with its score and threshold documented at its
top and one check object at its bottom; `REGISTRY` lists them in priority order (a photo flagged by
several checks is quarantined under the first reason).

Checks are tuned for precision: a good photo removed by mistake costs more than a bad one missed.
"""

from __future__ import annotations

from prep.checks.base import Collection, CollectionCheck, Finding, PhotoCheck, PhotoUnderReview
from prep.checks.collage import CHECK as COLLAGE
from prep.checks.colour import GRAYSCALE, SEPIA
from prep.checks.decode import TINY, UNREADABLE
from prep.checks.duplicates import CHECK as DUPLICATES
from prep.checks.interior import CHECK as INTERIOR
from prep.checks.outliers import CHECK as OUTLIERS

# The one list of checks: adding a check is its module plus one line here (docs/architecture.md).
REGISTRY: tuple[PhotoCheck | CollectionCheck, ...] = (
    UNREADABLE,
    TINY,
    DUPLICATES,
    GRAYSCALE,
    SEPIA,
    COLLAGE,
    OUTLIERS,
    INTERIOR,
)
CHECKS = tuple(check.name for check in REGISTRY)  # names accepted by `prep clean --checks`
REASONS = tuple(check.reason for check in REGISTRY)  # priority order
DEFAULT_CHECKS = tuple(check.name for check in REGISTRY if not check.opt_in)
BY_NAME = {check.name: check for check in REGISTRY}
# What a single tourist photo is checked for before it joins the dataset (the duplicate check compares it
# with its landmark's photos separately).
PHOTO_CHECKS: tuple[PhotoCheck, ...] = tuple(check for check in REGISTRY if isinstance(check, PhotoCheck))

__all__ = [
    "BY_NAME",
    "CHECKS",
    "DEFAULT_CHECKS",
    "PHOTO_CHECKS",
    "REASONS",
    "REGISTRY",
    "Collection",
    "CollectionCheck",
    "Finding",
    "PhotoCheck",
    "PhotoUnderReview",
]
