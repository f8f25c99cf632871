"""Walking loops: from where the tourist stands, through nearby sights, and back, the shortest way round.

Distances are great-circle ones (a street walk is longer: WALK_DETOUR turns them into the time a walk
takes). The order is exact — every order tried — up to EXACT_STOPS stops (720 orders for 6); past that,
nearest-neighbour then 2-opt, which is within a few per cent of the best on city-sized loops.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.catalog import Landmark
from core.geo import GeoPoint, distance_m, landmark_point

# Sights in one loop, at most (a loop of five is one to two hours on foot).
WALK_STOPS = 5
# Sights this far from the start are not part of a walk, metres.
WALK_RADIUS_M = 2_500.0
# Orders tried exhaustively up to this many stops.
EXACT_STOPS = 6
# Walking pace, km/h (a tourist's, with looking around).
WALK_SPEED_KMH = 4.5
# Streets are longer than straight lines: a walk is about this much longer than its great-circle legs.
WALK_DETOUR = 1.3


@dataclass(frozen=True)
class Leg:
    landmark: Landmark  # where this leg ends
    distance_m: float  # from the previous stop (or the start), straight line


@dataclass(frozen=True)
class Loop:
    start: GeoPoint
    legs: tuple[Leg, ...]  # the sights in walking order
    back_m: float  # from the last sight back to the start

    @property
    def total_m(self) -> float:
        return sum(leg.distance_m for leg in self.legs) + self.back_m

    @property
    def minutes(self) -> float:
        """Walking time at WALK_SPEED_KMH along streets (WALK_DETOUR), without the stops."""
        return self.total_m * WALK_DETOUR / (WALK_SPEED_KMH * 1000 / 60)


def shortest_loop(start: GeoPoint, sights: Sequence[Landmark]) -> Loop | None:
    """The loop start → every sight once → start of least total distance; None without located sights."""
    points = [(lm, p) for lm in sights if (p := landmark_point(lm)) is not None]
    if not points:
        return None
    stops = [start] + [p for _, p in points]
    between = [[distance_m(a, b) for b in stops] for a in stops]
    order = _exact(between) if len(points) <= EXACT_STOPS else _two_opt(between, _nearest_first(between))
    legs = tuple(Leg(points[i - 1][0], between[prev][i]) for prev, i in zip([0, *order[:-1]], order, strict=True))
    return Loop(start, legs, between[order[-1]][0])


def _length(between: list[list[float]], order: Iterable[int]) -> float:
    path = [0, *order, 0]
    return sum(between[a][b] for a, b in itertools.pairwise(path))


def _exact(between: list[list[float]]) -> list[int]:
    stops = range(1, len(between))
    # A loop and its reverse have one length: ties go to the first order found, so the answer is stable.
    return list(min(itertools.permutations(stops), key=lambda order: _length(between, order)))


def _nearest_first(between: list[list[float]]) -> list[int]:
    left, order, here = set(range(1, len(between))), [], 0
    while left:
        here = min(left, key=lambda i: (between[here][i], i))
        order.append(here)
        left.remove(here)
    return order


def _two_opt(between: list[list[float]], order: list[int]) -> list[int]:
    improved = True
    while improved:
        improved = False
        for i in range(len(order) - 1):
            for j in range(i + 1, len(order)):
                candidate = order[:i] + order[i : j + 1][::-1] + order[j + 1 :]
                if _length(between, candidate) < _length(between, order) - 1e-6:
                    order, improved = candidate, True
    return order
