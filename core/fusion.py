"""Two photo towers, one answer (issue #34): CLIP's vote and the place tower's, fused, and calibrated
on both towers' evidence.

The fused vote gives each landmark (1 − PLACE_WEIGHT) of its CLIP vote share plus PLACE_WEIGHT of its
place-tower share; categories stay CLIP's (the place tower knows no words). How far to trust the
result is not set by hand: the calibration fitted at build (core.calibration, the same known and
unknown queries as CLIP's own) takes both towers' evidence — best similarity, margin and vote share of
each — and whether their top answers agree, so a tower that does not help on a dataset is weighed down
by the data. A build keeps CLIP's own calibration beside the fused one, for a process that runs CLIP alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from core.calibration import (
    FUSED_FEATURES,
    QUERY_BATCH,
    Calibration,
    Queries,
    SearchFn,
    evidence,
    fit,
    sample_queries,
    votes,
)
from core.catalog import Landmark
from core.ranking import LandmarkHit, RankingParams, Recognition

# The place tower's share of the fused vote (an even split: the calibration, not this number, decides
# how much a fused answer is trusted).
PLACE_WEIGHT = 0.5


def fuse(clip: Recognition, place: Recognition, params: RankingParams, weight: float = PLACE_WEIGHT) -> Recognition:
    """One ranking from both towers' votes; the match rule and the categories are CLIP's."""
    if not place.landmarks:
        return clip
    if not clip.landmarks:
        return Recognition(False, place.landmarks, (), place.best_similarity)
    shares: dict[str, float] = {}
    hits: dict[str, LandmarkHit] = {}
    for tower_weight, result in ((1 - weight, clip), (weight, place)):
        for hit in result.landmarks:
            shares[hit.xid] = shares.get(hit.xid, 0.0) + tower_weight * hit.score
            hits.setdefault(hit.xid, hit)  # CLIP's hit first: its similarity is the one the match rule reads
    ranked = sorted(shares, key=lambda x: (-shares[x], x))[: params.top_n]
    fused = tuple(LandmarkHit(hits[x].landmark, shares[x], hits[x].similarity, hits[x].distance_m) for x in ranked)
    return Recognition(
        match=fused[0].similarity >= params.match_threshold,
        landmarks=fused,
        categories=clip.categories,
        best_similarity=fused[0].similarity,
        location=clip.location,
        prior_applied=clip.prior_applied,
    )


def fused_evidence(clip: Recognition, place: Recognition) -> np.ndarray:
    """FUSED_FEATURES of one photo: each tower's evidence, and 1.0 when their top landmarks agree."""
    agree = bool(clip.landmarks and place.landmarks and clip.landmarks[0].xid == place.landmarks[0].xid)
    return np.concatenate([evidence(clip), evidence(place), [float(agree)]])


def calibrate_fused(
    clip_search: SearchFn,
    clip_vectors: np.ndarray,
    place_search: SearchFn,
    place_vectors: np.ndarray,
    row_xids: Sequence[str],
    row_sha256: Sequence[str],
    landmarks: Mapping[str, Landmark],
    params: RankingParams,
) -> Calibration | None:
    """P(the fused top answer is right) from both towers' evidence, on the same queries as CLIP's own."""
    sampled = sample_queries(row_xids)
    if sampled is None:
        return None
    queries, unknown = sampled
    features, right = [], []
    for start in range(0, len(queries), QUERY_BATCH):
        batch = queries[start : start + QUERY_BATCH]
        clip_votes = votes(clip_search, batch, row_xids, row_sha256, clip_vectors, landmarks, params)
        place_votes = votes(place_search, batch, row_xids, row_sha256, place_vectors, landmarks, params)
        for (row, _), clip, place in zip(batch, clip_votes, place_votes, strict=True):
            fused = fuse(clip, place, params)
            features.append(fused_evidence(clip, place))
            right.append(bool(fused.landmarks) and fused.landmarks[0].xid == row_xids[row])
    return fit(Queries(np.array(features), np.array(right, dtype=float), unknown, FUSED_FEATURES))
