"""The weighted vote: nearest photos → ranked landmarks and categories. NumPy only, no I/O.

Each of the k nearest photos votes for its landmark with weight exp((s - s_best) / temperature),
s being its cosine similarity to the query: close neighbours dominate, and a landmark with many
mediocre matches cannot outvote one with a few excellent ones. Scores are the vote shares, so
landmark scores sum to 1 over the candidates. A category's score is the share of the vote cast
by photos whose landmark has that kind (a church votes for `churches` and `religion` alike).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.catalog import Landmark

if TYPE_CHECKING:
    from core.dataset import PhotoCredit

# Neighbours that vote. 20 covers the typical landmark (30+ photos) without letting far photos in.
DEFAULT_K = 20
# Softmax temperature over cosine similarity: 0.05 means a neighbour 0.05 less similar weighs e≈2.7× less.
DEFAULT_TEMPERATURE = 0.05
# Best-neighbour cosine below which the photo is "not a known landmark"; see Settings.match_threshold.
DEFAULT_MATCH_THRESHOLD = 0.70
TOP_N = 5
# Neighbours searched in all. Only the first k vote; the rest only fill the top-N with distinct
# landmarks when the k voters name fewer (a tourist is promised 5 guesses). FAISS cost is negligible.
DEFAULT_SEARCH_DEPTH = 100


@dataclass(frozen=True)
class RankingParams:
    k: int = DEFAULT_K
    temperature: float = DEFAULT_TEMPERATURE
    match_threshold: float = DEFAULT_MATCH_THRESHOLD
    # With a calibrated index (core.calibration): a match is an answer whose estimated probability of
    # being right is at least this; None keeps the similarity rule above (MATCH_THRESHOLD set by hand).
    match_precision: float | None = None
    top_n: int = TOP_N
    search_depth: int = DEFAULT_SEARCH_DEPTH

    def __post_init__(self) -> None:
        if self.k < 1 or self.top_n < 1:
            raise ValueError("k and top_n must be at least 1")
        if self.search_depth < self.k:
            raise ValueError("search_depth must be at least k")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")


@dataclass(frozen=True)
class LandmarkHit:
    landmark: Landmark
    score: float  # share of the vote, 0..1
    similarity: float  # cosine similarity of this landmark's closest photo to the query
    distance_m: float | None = None  # from the photo's location, when one is known

    @property
    def xid(self) -> str:
        return self.landmark.xid


@dataclass(frozen=True)
class CategoryHit:
    category: str
    score: float


@dataclass(frozen=True)
class PhotoLocation:
    """Where a photo was taken, and how we know: "argument" (CLI), "shared" (Telegram), "exif" (the file)."""

    lat: float
    lon: float
    source: str

    def to_dict(self) -> dict:
        return {"lat": self.lat, "lon": self.lon, "source": self.source}


@dataclass(frozen=True)
class Recognition:
    match: bool
    landmarks: tuple[LandmarkHit, ...]
    categories: tuple[CategoryHit, ...]
    best_similarity: float
    location: PhotoLocation | None = None
    prior_applied: bool = False  # the location re-weighted the vote (a landmark lay within LOCATION_MAX_KM)
    matched_photo: str | None = None  # the top landmark's dataset photo closest to the query (absolute path)
    confidence: float | None = None  # calibrated P(the top landmark is right); None without a calibration
    photo_credit: PhotoCredit | None = None  # the matched photo's author and licence, when it needs crediting
    # The photo towers that answered (CLIP's image model; with the place tower, both: core.fusion) and
    # each one's own top answer: {tower: {"xid", "score", "best_similarity"}}.
    towers: tuple[str, ...] = ()
    tower_answers: Mapping[str, Mapping[str, object]] | None = None

    def shown_share(self, rank: int) -> float:
        """What a reply shows for the candidate at `rank` (0 = top), read as the probability of exclusive
        answers, so the candidates of one photo never add up to more than 1. Without a calibration: the
        vote shares (they sum to 1 over every candidate). With one: P, the calibrated probability, for
        the top one; another gets its vote share scaled as the top one's was (share × P / top share),
        but never more than its part of what the top one leaves, 1 − P, divided as the rest of the vote
        is (share × (1 − P) / (1 − top share))."""
        hit, top = self.landmarks[rank], self.landmarks[0]
        if self.confidence is None or top.score <= 0:
            return hit.score
        if rank == 0:
            return self.confidence
        scaled = hit.score * self.confidence / top.score
        rest = 1.0 - top.score
        return min(scaled, hit.score * (1.0 - self.confidence) / rest) if rest > 0 else 0.0

    def to_dict(self) -> dict:
        def landmark(hit: LandmarkHit) -> dict:
            data = {"xid": hit.xid, "name": hit.landmark.name, "city": hit.landmark.city, "score": round(hit.score, 4)}
            if hit is self.landmarks[0] and self.confidence is not None:
                data["confidence"] = round(self.confidence, 4)  # calibrated: right this often on held-out data
            if self.location is not None:
                data["distance_m"] = None if hit.distance_m is None else round(hit.distance_m)
            return data

        towers = {"towers": list(self.towers), "evidence": dict(self.tower_answers or {})} if self.towers else {}
        return towers | {
            "match": self.match,
            "landmarks": [landmark(h) for h in self.landmarks],
            "categories": [{"category": c.category, "score": round(c.score, 4)} for c in self.categories],
            "location": None if self.location is None else self.location.to_dict(),
            "photo_credit": None if self.photo_credit is None else self.photo_credit.to_dict(),
        }


NO_RESULT = Recognition(match=False, landmarks=(), categories=(), best_similarity=-1.0)


def vote(
    similarities: Sequence[float] | np.ndarray,
    neighbour_xids: Sequence[str],
    landmarks: Mapping[str, Landmark],
    params: RankingParams = RankingParams(),
    prior: Mapping[str, float] | None = None,
) -> Recognition:
    """Rank landmarks and categories from the query's neighbours, nearest first (ties by xid).

    The first k neighbours vote. Neighbours past k only add landmarks not yet named, while fewer
    than top_n are, each with the weight of its closest photo, so scores stay comparable.
    `prior` (xid → factor, see core.recognition) multiplies each landmark's vote: a location prior.
    """
    pairs = [
        (float(s), xid)
        for s, xid in zip(similarities, neighbour_xids, strict=True)
        if xid in landmarks and math.isfinite(float(s))
    ]
    if not pairs:
        return NO_RESULT
    best = max(s for s, _ in pairs)
    landmark_weight: dict[str, float] = defaultdict(float)
    landmark_best: dict[str, float] = {}
    for s, xid in pairs[: params.k]:
        landmark_weight[xid] += math.exp((s - best) / params.temperature)
        landmark_best[xid] = max(s, landmark_best.get(xid, -math.inf))
    for s, xid in pairs[params.k :]:
        if len(landmark_weight) >= params.top_n:
            break
        if xid not in landmark_weight:
            landmark_weight[xid] = math.exp((s - best) / params.temperature)
            landmark_best[xid] = s
    if prior is not None:
        for xid in landmark_weight:
            landmark_weight[xid] *= prior.get(xid, 1.0)
    total = sum(landmark_weight.values())

    ranked = sorted(landmark_weight, key=lambda x: (-landmark_weight[x], x))
    hits = tuple(LandmarkHit(landmarks[xid], landmark_weight[xid] / total, landmark_best[xid]) for xid in ranked)

    categories = _categories(hits)
    top_similarity = hits[0].similarity
    return Recognition(
        match=top_similarity >= params.match_threshold,
        landmarks=hits[: params.top_n],
        categories=categories[: params.top_n],
        best_similarity=top_similarity,
    )


def _categories(hits: Sequence[LandmarkHit]) -> tuple[CategoryHit, ...]:
    """A category's score is the share of the vote cast for landmarks of that kind, best first."""
    score: dict[str, float] = defaultdict(float)
    for hit in hits:
        for category in hit.landmark.categories:
            score[category] += hit.score
    return tuple(CategoryHit(c, min(score[c], 1.0)) for c in sorted(score, key=lambda c: (-score[c], c)))


def most_typical_first(vectors: np.ndarray) -> np.ndarray:
    """Row order of `vectors`, the one closest to their mean first (ties keep their order): how the review
    page picks comparison photos and "More photos" picks a landmark's album."""
    return np.argsort(-(vectors @ vectors.mean(axis=0)), kind="stable")
