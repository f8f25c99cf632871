"""Walking loops (issue #33): the shortest round from the tourist through nearby sights and back."""

from __future__ import annotations

import itertools
import random

import pytest

from core.catalog import Landmark
from core.geo import GeoPoint, distance_m
from core.walks import WALK_DETOUR, WALK_SPEED_KMH, shortest_loop

START = GeoPoint(56.1290, 40.4070)  # Vladimir


def _sights(count: int, seed: int) -> list[Landmark]:
    rng = random.Random(seed)
    return [
        Landmark(f"X{k}", f"Sight {k}", "Владимир", lat=56.12 + rng.random() * 0.02, lon=40.39 + rng.random() * 0.04)
        for k in range(count)
    ]


def _round(start: GeoPoint, order: list[Landmark]) -> float:
    points = [start] + [GeoPoint(s.lat, s.lon) for s in order] + [start]
    return sum(distance_m(a, b) for a, b in itertools.pairwise(points))


@pytest.mark.parametrize("count", [1, 2, 3, 5, 6])
def test_up_to_six_stops_the_loop_is_the_shortest_of_every_order(count: int) -> None:
    for seed in range(5):
        sights = _sights(count, seed)
        loop = shortest_loop(START, sights)
        assert loop is not None and sorted(leg.landmark.xid for leg in loop.legs) == sorted(s.xid for s in sights)
        best = min(_round(START, list(order)) for order in itertools.permutations(sights))
        assert loop.total_m == pytest.approx(best, rel=1e-9)
        legs = [leg.landmark for leg in loop.legs]
        assert loop.legs[0].distance_m == pytest.approx(distance_m(START, GeoPoint(legs[0].lat, legs[0].lon)))
        assert loop.total_m == pytest.approx(_round(START, legs))  # each leg from the stop before it
        assert loop.minutes == pytest.approx(loop.total_m * WALK_DETOUR / (WALK_SPEED_KMH * 1000 / 60))


def test_past_six_stops_the_loop_visits_each_once_and_beats_the_nearest_first_order() -> None:
    sights = _sights(9, 7)
    loop = shortest_loop(START, sights)
    assert loop is not None and len({leg.landmark.xid for leg in loop.legs}) == 9
    greedy, here, left = [], START, list(sights)
    while left:
        nearest = min(left, key=lambda s: distance_m(here, GeoPoint(s.lat, s.lon)))
        greedy.append(nearest)
        left.remove(nearest)
        here = GeoPoint(nearest.lat, nearest.lon)
    assert loop.total_m <= _round(START, greedy) + 1e-6


def test_sights_without_coordinates_are_left_out_and_none_at_all_is_no_loop() -> None:
    assert shortest_loop(START, []) is None
    assert shortest_loop(START, [Landmark("N1", "Nowhere", "")]) is None
    loop = shortest_loop(START, [Landmark("N1", "Nowhere", ""), *_sights(2, 1)])
    assert loop is not None and [leg.landmark.xid for leg in loop.legs] != [] and len(loop.legs) == 2
