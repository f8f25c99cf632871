"""Semantic outliers: photos unlike the rest of their landmark, in CLIP embedding space.

Per landmark, on L2-normalised IMAGE_MODEL embeddings with cosine distance:
  - DBSCAN with min_samples = MIN_SAMPLES and eps from the landmark's k-distance curve: the upper
    Tukey fence (Q3 + 1.5·IQR) of the distances to the k-th neighbour, kept within
    [EPS_MIN_FACTOR, EPS_MAX_FACTOR] × their median, so the bounds follow the model's scale.
    Only noise points are candidates, and only those also farther from the centroid of the others
    than CENTROID_FACTOR × the landmark's median distance (precision first: a photo that is merely
    framed differently is often DBSCAN noise in a small landmark). A coherent second mode (a dozen
    interior shots) forms its own cluster and is kept.
  - Landmarks with fewer than MIN_PHOTOS_FOR_DBSCAN photos (where DBSCAN would call every point
    noise) use the distance to the centroid of the other photos instead: flagged above
    CENTROID_FACTOR × the landmark's median such distance.
score = cosine distance to the centroid of the landmark's other photos; threshold = the eps or the
centroid bound used for that landmark.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from prep.checks.base import Collection, CollectionCheck, Finding

MIN_SAMPLES = 4
MIN_PHOTOS_FOR_DBSCAN = 10
EPS_MIN_FACTOR = 1.5
EPS_MAX_FACTOR = 4.0
CENTROID_FACTOR = 4.0
MIN_PHOTOS = 4  # below this a landmark has no "rest" to compare with


@dataclass(frozen=True)
class Outlier:
    path: str
    distance: float
    threshold: float
    method: str  # "dbscan" or "centroid"
    ratio: float  # distance / the landmark's median distance


def find_outliers(paths: Sequence[str], xids: Sequence[str], vectors: np.ndarray) -> list[Outlier]:
    by_landmark: dict[str, list[int]] = defaultdict(list)
    for row, xid in enumerate(xids):
        by_landmark[xid].append(row)
    found = []
    for rows in by_landmark.values():
        if len(rows) < MIN_PHOTOS:
            continue
        found += _landmark_outliers([paths[r] for r in rows], vectors[rows])
    return found


def _centroid_distances(vectors: np.ndarray) -> np.ndarray:
    """Cosine distance of each vector to the normalised mean of the others."""
    total = vectors.sum(axis=0)
    others = total[None, :] - vectors
    others /= np.maximum(np.linalg.norm(others, axis=1, keepdims=True), 1e-12)
    return 1.0 - np.einsum("ij,ij->i", vectors, others)


def _landmark_outliers(paths: list[str], vectors: np.ndarray) -> list[Outlier]:
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    distances = _centroid_distances(vectors)
    median = max(float(np.median(distances)), 1e-12)
    bound = CENTROID_FACTOR * median
    if len(paths) < MIN_PHOTOS_FOR_DBSCAN:
        return [
            Outlier(p, float(d), bound, "centroid", float(d) / median)
            for p, d in zip(paths, distances, strict=True)
            if d > bound
        ]

    pairwise = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0)
    np.fill_diagonal(pairwise, 0.0)
    kth = np.sort(pairwise, axis=1)[:, MIN_SAMPLES - 1]  # k-distance, the point itself counted as in DBSCAN
    q1, kth_median, q3 = np.percentile(kth, [25, 50, 75])
    eps = float(np.clip(q3 + 1.5 * (q3 - q1), EPS_MIN_FACTOR * kth_median, EPS_MAX_FACTOR * kth_median))
    if eps <= 0:
        return []
    from sklearn.cluster import DBSCAN  # here: `prep --help` reads the registry and must load nothing heavy

    labels = DBSCAN(eps=eps, min_samples=MIN_SAMPLES, metric="precomputed").fit_predict(pairwise)
    return [
        Outlier(p, float(d), eps, "dbscan", float(d) / median)
        for p, d, label in zip(paths, distances, labels, strict=True)
        if label == -1 and d > bound
    ]


class OutlierCheck(CollectionCheck):
    name, reason = "outliers", "outlier"
    needs = "embeddings"

    def review(self, collection: Collection) -> list[Finding]:
        embedded, matrix = collection.embedded()
        if not embedded:
            return []
        return [
            Finding(
                outlier.path,
                self.reason,
                outlier.distance,
                outlier.threshold,
                f"{outlier.method}, {outlier.ratio:.1f}× the landmark's median distance",
            )
            for outlier in find_outliers([p.path for p in embedded], [p.xid for p in embedded], matrix)
        ]


CHECK = OutlierCheck()
