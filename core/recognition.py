"""Recognition of one embedded photo: the k nearest photos vote, with the location prior when known.

Each candidate landmark's vote is multiplied by a Gaussian of its distance d to the photo's location,
    factor(d) = LOCATION_FLOOR + (1 − LOCATION_FLOOR) · exp(−½ (d / LOCATION_SCALE_M)²),
so landmarks near the point keep their full vote and far ones keep LOCATION_FLOOR of it: never a hard
filter, and among nearby landmarks the visual vote still decides. When no landmark lies within
LOCATION_MAX_KM of the point (a location in another city, or a wrong one), the prior is off and the
answer is exactly the one without a location. Landmarks within CANDIDATE_RADIUS_M join the vote even
if none of their photos is among the k nearest, with their best photo's similarity.

Choosing the scale: it should cover the location's error plus the distance from where a photo is
taken to the landmark (tens to a few hundred metres), and stay below the spacing of look-alike
landmarks. `prep eval --geo-noise METERS` measures top-1/top-5 with and without the prior for a
given location error; try the scale at 1–2× that error.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from core.geo import GeoPoint, distance_m, landmark_point
from core.index import PhotoIndex
from core.ranking import LandmarkHit, PhotoLocation, RankingParams, Recognition, vote
from core.settings import DEFAULT_LOCATION_MAX_KM

# Gaussian scale of the distance kernel, metres (see the module docstring for how to choose it).
LOCATION_SCALE_M = 500.0
# Share of its vote a far landmark keeps: a strong visual match elsewhere can still win.
LOCATION_FLOOR = 0.05
# Landmarks this close to the point are candidates even when the k nearest photos missed them.
CANDIDATE_RADIUS_M = 3 * LOCATION_SCALE_M
# Without any landmark this close to the point, the location is ignored: LOCATION_MAX_KM, whose
# default is defined with the settings.


def prior_factor(distance: float | None) -> float:
    """The vote multiplier for a landmark `distance` metres away (None: its place is unknown)."""
    if distance is None:
        return LOCATION_FLOOR
    return LOCATION_FLOOR + (1 - LOCATION_FLOOR) * math.exp(-0.5 * (distance / LOCATION_SCALE_M) ** 2)


def _distance(point: GeoPoint, index: PhotoIndex, xid: str) -> float | None:
    place = landmark_point(index.landmarks[xid]) if xid in index.landmarks else None
    return None if place is None else distance_m(point, place)


def rank(
    index: PhotoIndex,
    vector: np.ndarray,
    params: RankingParams,
    near: PhotoLocation | None = None,
    max_km: float = DEFAULT_LOCATION_MAX_KM,
    exclude_sha256: str | None = None,
) -> Recognition:
    """Recognition of one embedded photo, with the location prior when `near` is known."""
    # Leaving a photo out (evaluation) costs as many neighbours as it has copies in the index.
    depth = params.search_depth + (index.copies(exclude_sha256) if exclude_sha256 else 0)
    similarities, rows = index.search(vector[None, :], depth)
    sims, xids = index.neighbours(similarities[0], rows[0], exclude_sha256)
    if near is None:
        return vote(sims, xids, index.landmarks, params)
    point = GeoPoint(near.lat, near.lon)
    in_range = index.locator.within(point, max_km * 1000)
    if not in_range:
        return _with_distances(vote(sims, xids, index.landmarks, params), point, near, index, applied=False)
    voters = set(xids[: params.k])
    extra = [
        (index.best_similarity(vector, hit.landmark.xid, exclude_sha256), hit.landmark.xid)
        for hit in in_range
        if hit.distance_m <= CANDIDATE_RADIUS_M
        and hit.landmark.xid not in voters
        and index.has_photos(hit.landmark.xid)
    ]
    k = params.k
    sims = sims[:k] + [s for s, _ in extra] + sims[k:]
    xids = xids[:k] + [x for _, x in extra] + xids[k:]
    widened = replace(params, k=k + len(extra), search_depth=max(params.search_depth, k + len(extra)))
    prior = {xid: prior_factor(_distance(point, index, xid)) for xid in set(xids)}
    result = vote(sims, xids, index.landmarks, widened, prior=prior)
    return _with_distances(result, point, near, index, applied=True)


def _with_distances(
    result: Recognition, point: GeoPoint, near: PhotoLocation, index: PhotoIndex, applied: bool
) -> Recognition:
    hits = tuple(replace(h, distance_m=_distance(point, index, h.xid)) for h in result.landmarks)
    return replace(result, landmarks=hits, location=near, prior_applied=applied)


__all__ = ["LandmarkHit", "prior_factor", "rank"]
