"""Two photo towers, one answer (issue #34): CLIP's vote and the place tower's, fused, and calibrated
on both towers' evidence.

The fused vote gives each landmark (1 − w) of its CLIP vote share plus w of its place-tower share;
categories stay CLIP's (the place tower knows no words). Neither w nor the trust in the result is set by
hand: at build, on the calibration's own known queries (core.calibration), w is the one of
PLACE_WEIGHTS whose fused answers are right most often (ties go to less of the place tower: a tower
that does not help gets w = 0, and the fused answer is CLIP's), and the calibration then fitted takes
both towers' evidence — best similarity, margin and vote share of each — and whether their top answers
agree. A build keeps CLIP's own calibration beside the fused one, for a process that runs CLIP alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from core.calibration import (
    FUSED_FEATURES,
    MIN_QUERIES,
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

# The place tower's share of the fused vote when no calibration chose one (an even split).
PLACE_WEIGHT = 0.5
# The shares a build tries, on the calibration's known queries.
PLACE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
# CLIP's own calibrated P(right) from which the place tower's answer is not waited for (nor run, when it has
# not started): such answers are right at least this often already, and CLIP's time is the answer's. The fused vote
# and its calibration are fitted on the other queries, the ones it is used for.
CLIP_CERTAIN = 0.95


def clip_is_certain(calibration: Calibration | None, clip: Recognition) -> bool:
    """Whether CLIP's answer alone is sure enough that the place tower need not run (CLIP_CERTAIN)."""
    return calibration is not None and bool(clip.landmarks) and calibration.confidence(clip) >= CLIP_CERTAIN


def chosen_weight(calibration: Calibration | None) -> float:
    """The place tower's share of the fused vote: the build's choice, else PLACE_WEIGHT."""
    return calibration.place_weight if calibration is not None else PLACE_WEIGHT


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
    clip_calibration: Calibration | None = None,
) -> Calibration | None:
    """P(the fused top answer is right) from both towers' evidence, on CLIP's own queries — those whose
    CLIP answer is not already certain (CLIP_CERTAIN), the only ones a fused answer is given for, while
    enough of each kind remain."""
    sampled = sample_queries(row_xids, clip_vectors)
    if sampled is None:
        return None
    queries, unknown = sampled
    pairs: list[tuple[Recognition, Recognition]] = []
    for start in range(0, len(queries), QUERY_BATCH):
        batch = queries[start : start + QUERY_BATCH]
        clip_votes = votes(clip_search, batch, row_xids, row_sha256, clip_vectors, landmarks, params)
        place_votes = votes(place_search, batch, row_xids, row_sha256, place_vectors, landmarks, params)
        pairs += zip(clip_votes, place_votes, strict=True)
    truths = [row_xids[row] for row, _ in queries]
    uncertain = [i for i, (clip, _) in enumerate(pairs) if not clip_is_certain(clip_calibration, clip)]
    if min(sum(not unknown[i] for i in uncertain), sum(bool(unknown[i]) for i in uncertain)) >= MIN_QUERIES:
        pairs, truths, unknown = [pairs[i] for i in uncertain], [truths[i] for i in uncertain], unknown[uncertain]
    known = [i for i, hidden in enumerate(unknown) if not hidden]

    def right_with(weight: float, i: int) -> bool:
        fused = fuse(*pairs[i], params, weight)
        return bool(fused.landmarks) and fused.landmarks[0].xid == truths[i]

    weight = max(PLACE_WEIGHTS, key=lambda w: (sum(right_with(w, i) for i in known), -w))
    features = [fused_evidence(clip, place) for clip, place in pairs]
    right = [right_with(weight, i) for i in range(len(pairs))]
    calibration = fit(Queries(np.array(features), np.array(right, dtype=float), unknown, FUSED_FEATURES))
    return replace(calibration, place_weight=weight)
