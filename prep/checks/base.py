"""What a cleaning check is. Two kinds:

- a PhotoCheck looks at one photo at a time (its decoded pixels, or the decoding error);
- a CollectionCheck looks at all photos together, through their hashes or their embeddings.

`prep clean` runs every selected check of the registry (`prep.checks.REGISTRY`) in one pass; each
check's module keeps its score, threshold and rationale at its top.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar, Literal, TypeVar

import numpy as np
from PIL import Image

from core import MIN_PHOTO_SIDE

ANALYSIS_SIDE = 512  # pixel checks look at a copy no larger than this
# Shorter side below which a photo is "tiny" (the dataset's thumbnails are ~320×240) and the other
# pixel checks do not look at it; one definition with the bot's approval check.
MIN_SIDE = MIN_PHOTO_SIDE
T = TypeVar("T")


@dataclass(frozen=True)
class Finding:
    path: str  # relative to the data dir
    reason: str
    score: float
    threshold: float
    detail: str = ""
    original: str = ""  # for a duplicate: the dataset photo it duplicates (shown beside it)


@dataclass
class PhotoUnderReview:
    """One dataset photo as the checks see it. Derived views (colour scores, perceptual hash) are
    computed once through `derived(fn)`, whichever check asks first.

    `release()` drops the pixels after the per-photo checks; what a collection check needs later is
    computed before that (its `keeps`): 12,500 decoded photos would not fit a small server's memory."""

    path: str
    xid: str
    sha256: str
    image: Image.Image | None  # None: it did not decode
    error: str = ""
    decoded: bool = field(init=False)
    size: tuple[int, int] = field(init=False)
    _derived: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.decoded = self.image is not None
        self.size = self.image.size if self.image is not None else (0, 0)

    @property
    def tiny(self) -> bool:
        return self.decoded and min(self.size) < MIN_SIDE

    @property
    def usable(self) -> bool:
        """Decoded and large enough for the pixel checks to mean something."""
        return self.decoded and not self.tiny

    @property
    def pixels(self) -> int:
        return self.size[0] * self.size[1]

    @cached_property
    def small(self) -> np.ndarray:
        """RGB pixels of a copy no larger than ANALYSIS_SIDE."""
        if self.image is None:
            raise ValueError(f"{self.path} did not decode: only usable photos have pixels to look at")
        copy = self.image.copy()
        copy.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE), Image.Resampling.NEAREST)
        return np.asarray(copy)

    def derived(self, compute: Callable[[PhotoUnderReview], T]) -> T:
        if compute not in self._derived:
            self._derived[compute] = compute(self)
        return self._derived[compute]

    def release(self) -> None:
        self.image = None
        self.__dict__.pop("small", None)


@dataclass(frozen=True)
class Collection:
    """What collection checks get: the decoded photos and, for embedding checks, their vectors."""

    photos: Sequence[PhotoUnderReview]
    vectors: dict[str, np.ndarray]  # sha256 → embedding (empty when no model runs)
    encode_prompts: object = None  # the image model's zero-shot text encoder, if the runtime has one
    prompts_unavailable: str = ""
    notes: list[str] = field(default_factory=list)  # said in the summary (e.g. why a check was skipped)

    def embedded(self) -> tuple[list[PhotoUnderReview], np.ndarray]:
        """The photos that have an embedding, and their vectors as rows (empty when none has)."""
        photos = [p for p in self.photos if p.sha256 in self.vectors]
        matrix = np.stack([self.vectors[p.sha256] for p in photos]) if photos else np.zeros((0, 0))
        return photos, matrix


Needs = Literal["pixels", "hashes", "embeddings"]


class Check(ABC):
    """What every check declares; its kind (below) says how it is run."""

    name: ClassVar[str]  # as given to --checks
    reason: ClassVar[str]  # quarantine folder and report reason
    needs: ClassVar[Needs]
    # Off unless asked for with --checks (interiors: museums and churches legitimately have them).
    opt_in: ClassVar[bool] = False


class PhotoCheck(Check):
    """Looks at one photo at a time; also run on a tourist's photo before it is approved."""

    needs: ClassVar[Needs] = "pixels"

    @abstractmethod
    def inspect(self, photo: PhotoUnderReview) -> Finding | None: ...


class CollectionCheck(Check):
    """Looks at all photos together, through what `keeps` derived from each before its pixels went."""

    keeps: ClassVar[tuple[Callable[[PhotoUnderReview], object], ...]] = ()

    @abstractmethod
    def review(self, collection: Collection) -> list[Finding]: ...
