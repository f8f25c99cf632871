"""How the calibration does on views it never saw: the gap between the confidence it gives a tourist's
fresh photo and how often such an answer is right (issue #34), for `prep eval`.

The photos of each landmark fall into views (core.calibration.VIEW_SIMILARITY, linked one to the
next). A held-out split of views, not of rows: a share of the landmarks goes to the fresh side whole
(landmarks the fit never heard of), and each other landmark seen from two views or more gives one
view to it. The calibration is fitted on the other photos alone, exactly as `prep build` fits it, once
with leave-one-out known queries (`rows`, before issue #34) and once with leave-view-out ones
(`views`, what builds fit now); the fresh photos are then recognised against the fit side only and
each fit's confidence is set against what happened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from core.calibration import (
    KNOWN_QUERIES,
    MAX_UNKNOWN_LANDMARKS,
    SEED,
    UNKNOWN_PHOTOS_PER_LANDMARK,
    VIEW_SIMILARITY,
    calibrate,
    held_out_landmarks,
    reliability,
    reliability_error,
    rows_by_xid,
    weights_of,
)
from core.catalog import Landmark
from core.ranking import RankingParams, vote
from core.vector_index import build_vector_index

# The fits compared: known queries hiding their exact copies only, or their whole view.
FITS: dict[str, float | None] = {"rows": None, "views": VIEW_SIMILARITY}
# Held-out photos recognised at most (a sample beyond): as many as the build's own calibration queries.
FRESH_QUERIES = KNOWN_QUERIES + MAX_UNKNOWN_LANDMARKS * UNKNOWN_PHOTOS_PER_LANDMARK


@dataclass(frozen=True)
class FitOnFreshViews:
    """One calibration's record on fresh views (shares of the fresh photos of known landmarks)."""

    predicted: float  # mean P(right) it gave the known landmarks' fresh photos
    observed: float  # share of those answered right
    calibration_error: float  # |predicted − observed| per tenth of P, weighted (unknown photos included)
    precision: float | None  # at P ≥ MATCH_PRECISION (None: nothing called a match)
    coverage: float  # share of the known landmarks' fresh photos called a match
    # The most the same confidence could call a match, ranked by it, while precision stays ≥ the target.
    reachable_coverage: float


@dataclass(frozen=True)
class FreshViews:
    views: int  # views found across the landmarks
    fresh_known: int  # fresh photos of landmarks the fit knows (other views of them)
    fresh_unknown: int  # fresh photos of landmarks the fit never saw
    match_precision: float
    fits: dict[str, FitOnFreshViews]  # empty when the split leaves too little (`unmeasured` says what)
    unmeasured: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def fresh_view_gap(
    vectors: np.ndarray,
    row_xids: Sequence[str],
    row_sha256: Sequence[str],
    landmarks: Mapping[str, Landmark],
    params: RankingParams,
    match_precision: float,
) -> FreshViews:
    """The held-out split of views and each fit's record on it (none, said why, when the split leaves
    too little)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    views = _views(vectors, row_xids)
    count = sum(len(seen) for seen in views.values())
    rng = np.random.default_rng(SEED)
    fresh, unknown_xids = _split(views, rng)

    def unmeasured(why: str) -> FreshViews:
        return FreshViews(count, 0, 0, match_precision, {}, why)

    if all(len(seen) == 1 for seen in views.values()):
        return unmeasured(f"no landmark is seen from two views (photos {VIEW_SIMILARITY:.2f} alike are one)")
    if not fresh or len(fresh) == len(row_xids):
        return unmeasured("too few landmarks to hold some out")
    fitted = np.array(sorted(set(range(len(row_xids))) - set(fresh)))
    index = build_vector_index(vectors[fitted], "flat")
    queries = rng.permutation(sorted(fresh))[:FRESH_QUERIES]
    similarities, found = index.search(vectors[queries], params.search_depth)
    results = [
        vote(
            [float(s) for s, r in zip(sims, rows, strict=True) if r >= 0],
            [row_xids[fitted[r]] for r in rows if r >= 0],
            landmarks,
            params,
        )
        for sims, rows in zip(similarities, found, strict=True)
    ]
    right = np.array(
        [bool(r.landmarks) and r.landmarks[0].xid == row_xids[q] for q, r in zip(queries, results, strict=True)]
    )
    unknown = np.array([row_xids[q] in unknown_xids for q in queries])
    if unknown.all() or not unknown.any():
        return unmeasured("no landmark seen from two views is left to hold a view of out")
    fits = {}
    for name, view_similarity in FITS.items():
        calibration = calibrate(
            index.search,
            [row_xids[r] for r in fitted],
            [row_sha256[r] for r in fitted],
            vectors[fitted],
            landmarks,
            params,
            view_similarity,
        )
        if calibration is None:
            return unmeasured("too few photos left to fit a calibration on")
        p = np.array([calibration.confidence(r) if r.landmarks else 0.0 for r in results])
        fits[name] = _record(p, right.astype(float), unknown, match_precision)
    return FreshViews(count, int((~unknown).sum()), int(unknown.sum()), match_precision, fits)


def _views(vectors: np.ndarray, row_xids: Sequence[str]) -> dict[str, list[list[int]]]:
    """Each landmark's photos linked into views: two photos at least VIEW_SIMILARITY alike share one."""
    views: dict[str, list[list[int]]] = {}
    for xid, landmark_rows in sorted(rows_by_xid(row_xids).items()):
        rows = np.array(landmark_rows)
        linked = vectors[rows] @ vectors[rows].T >= VIEW_SIMILARITY
        unseen = set(range(len(rows)))
        while unseen:  # connected components of the "alike" graph
            frontier, component = [unseen.pop()], []
            while frontier:
                i = frontier.pop()
                component.append(int(rows[i]))
                reached = [int(j) for j in np.flatnonzero(linked[i]) if j in unseen]
                unseen.difference_update(reached)
                frontier += reached
            views.setdefault(xid, []).append(sorted(component))
    return views


def _split(views: dict[str, list[list[int]]], rng: np.random.Generator) -> tuple[set[int], set[str]]:
    """The fresh side's rows: whole landmarks, chosen as the calibration chooses those that play unknown,
    and one view of every other landmark seen from two views or more; with the landmarks gone whole."""
    gone = held_out_landmarks(views, rng)
    fresh = {row for xid in gone for rows in views[xid] for row in rows}
    for xid in sorted(views):
        if xid not in gone and len(views[xid]) > 1:
            fresh.update(views[xid][int(rng.integers(len(views[xid])))])
    return fresh, gone


def _record(p: np.ndarray, y: np.ndarray, unknown: np.ndarray, target: float) -> FitOnFreshViews:
    weight = weights_of(unknown)
    known = ~unknown
    taken = p >= target
    return FitOnFreshViews(
        predicted=float(p[known].mean()),
        observed=float(y[known].mean()),
        calibration_error=reliability_error(reliability(p, y, weight)),
        precision=float(np.average(y[taken], weights=weight[taken])) if taken.any() else None,
        coverage=float(taken[known].mean()),
        reachable_coverage=_reachable(p, y, weight, known, target),
    )


def _reachable(p: np.ndarray, y: np.ndarray, weight: np.ndarray, known: np.ndarray, target: float) -> float:
    """The largest share of known fresh photos whose P is at or above some threshold while the weighted
    precision of all answers above it stays ≥ target."""
    order = np.argsort(-p, kind="stable")
    precision = np.cumsum((weight * y)[order]) / np.cumsum(weight[order])
    covered = np.cumsum(known[order]) / max(1, known.sum())
    ranked = p[order]
    cut = np.r_[ranked[1:] != ranked[:-1], True]  # a threshold takes every photo of a tied P or none
    ok = (precision >= target - 1e-9) & cut
    return float(covered[ok].max()) if ok.any() else 0.0
