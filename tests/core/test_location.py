"""Where am I, what is near (issue #11): distances, the kernel, the prior, EXIF GPS, nearby, the CLI."""

from __future__ import annotations

import io
import math
import random
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from core import Guide, PhotoIndex
from core.__main__ import main
from core.geo import GeoError, GeoPoint, bearing_deg, compass_point, distance_m
from core.imaging import read_gps
from core.ranking import PhotoLocation, RankingParams
from core.recognition import LOCATION_FLOOR, LOCATION_SCALE_M, prior_factor
from tests.helpers.cli import run, run_json, use_environment
from tests.helpers.datagen import jpeg_bytes, scene
from tests.helpers.models import BACKENDS, CITIES, BuiltDataset, encoders_for

MOSCOW, SPB = GeoPoint(55.7558, 37.6173), GeoPoint(59.9311, 30.3609)
EKB, NN = GeoPoint(56.8389, 60.6057), GeoPoint(56.3269, 44.0059)


@pytest.mark.parametrize(("a", "b", "km"), [(MOSCOW, SPB, 634), (MOSCOW, EKB, 1417), (MOSCOW, NN, 401), (EKB, EKB, 0)])
def test_great_circle_distances_match_known_figures(a, b, km) -> None:
    assert distance_m(a, b) / 1000 == pytest.approx(km, abs=max(2, km * 0.005))


def test_directions() -> None:
    assert compass_point(bearing_deg(MOSCOW, SPB)) == "NW"
    assert compass_point(bearing_deg(MOSCOW, EKB)) == "E"
    assert compass_point(bearing_deg(EKB, GeoPoint(56.80, 60.6057))) == "S"


@pytest.mark.parametrize(("lat", "lon"), [("91", "0"), ("0", "-181"), ("nan", "1"), ("north", "1"), ("", "5")])
def test_invalid_coordinates_are_refused(lat: str, lon: str) -> None:
    with pytest.raises(GeoError):
        GeoPoint.parse(lat, lon)


def test_the_kernel() -> None:
    assert prior_factor(0) == 1.0
    assert prior_factor(LOCATION_SCALE_M) == pytest.approx(LOCATION_FLOOR + (1 - LOCATION_FLOOR) * math.exp(-0.5))
    assert prior_factor(100_000) == pytest.approx(LOCATION_FLOOR) and prior_factor(None) == LOCATION_FLOOR
    assert prior_factor(100) > prior_factor(400) > prior_factor(2000)  # monotone


def _jpeg_with_gps(gps: dict) -> bytes:
    image = Image.new("RGB", (64, 48), (90, 120, 150))
    exif = image.getexif()
    exif[0x8825] = gps
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def _dms(value: float) -> tuple:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = Fraction((value - degrees - minutes / 60) * 3600).limit_denominator(1000)
    return (IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds.numerator, seconds.denominator))


@pytest.mark.parametrize(("refs", "sign"), [(("N", "E"), (1, 1)), (("S", "W"), (-1, -1)), (("N", "W"), (1, -1))])
def test_exif_gps_in_degrees_minutes_seconds_with_references(refs, sign) -> None:
    data = _jpeg_with_gps({1: refs[0], 2: _dms(56.838926), 3: refs[1], 4: _dms(60.605702)})
    lat, lon = read_gps(data)
    assert lat == pytest.approx(sign[0] * 56.838926, abs=1e-5) and lon == pytest.approx(sign[1] * 60.605702, abs=1e-5)


@pytest.mark.parametrize(
    "gps",
    [
        {1: "N", 2: (IFDRational(56, 0), IFDRational(0, 1), IFDRational(0, 1)), 3: "E", 4: _dms(60.6)},  # 0 denominator
        {1: "N", 2: _dms(56.8)},  # no longitude
        {1: "X", 2: _dms(56.8), 3: "E", 4: _dms(60.6)},  # a reference that is neither N nor S
        {1: "N", 2: _dms(95.0), 3: "E", 4: _dms(60.6)},  # out of range
        {},
    ],
    ids=["zero-denominator", "partial", "bad-ref", "out-of-range", "empty"],
)
def test_malformed_or_partial_gps_is_ignored(gps) -> None:
    assert read_gps(_jpeg_with_gps(gps)) is None
    assert read_gps(b"not an image") is None


@pytest.fixture(scope="module")
def coordinates(built_dataset: BuiltDataset) -> list[tuple[str, GeoPoint]]:
    """(xid, place) of landmark k of the generated dataset, in the order datagen draws them."""
    index = PhotoIndex.load(built_dataset.artifacts_dir)
    by_name = {lm.name: lm for lm in index.landmarks.values()}
    landmarks = [by_name[name] for city in CITIES for name in built_dataset.names[city]]
    return [(lm.xid, GeoPoint(lm.lat, lm.lon)) for lm in landmarks]


def _offset(point: GeoPoint, metres: float, rng: random.Random) -> GeoPoint:
    """A point uniformly within `metres` of `point`."""
    radius, angle = metres * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    dlat = radius * math.cos(angle) / 111_320
    dlon = radius * math.sin(angle) / (111_320 * math.cos(math.radians(point.lat)))
    return GeoPoint(point.lat + dlat, point.lon + dlon)


@pytest.fixture(scope="module", params=BACKENDS)
def guide(request, built_dataset: BuiltDataset) -> Guide:
    encoders = encoders_for(request, request.param)
    return Guide(PhotoIndex.load(built_dataset.artifacts_dir), encoders.image, encoders.text)


def _top1(guide: Guide, coordinates, near_metres: float | None, views=range(200, 203)) -> float:
    rng, right, total = random.Random(1), 0, 0
    for k, (xid, place) in enumerate(coordinates):
        for view in views:
            near = None
            if near_metres is not None:
                point = _offset(place, near_metres, rng)
                near = PhotoLocation(point.lat, point.lon, "argument")
            result = guide.recognize(jpeg_bytes(scene(k, view)), near=near)
            right += result.landmarks[0].xid == xid
            total += 1
    return right / total


def test_a_location_within_150_m_makes_top1_at_least_095(guide: Guide, coordinates) -> None:
    without, with_location = _top1(guide, coordinates, None), _top1(guide, coordinates, 150)
    assert with_location >= 0.95 and with_location >= without


def test_a_location_far_from_every_landmark_changes_nothing(guide: Guide, coordinates) -> None:
    far = PhotoLocation(-33.8688, 151.2093, "argument")  # Sydney: > 1,000 km from every landmark
    for k in range(len(coordinates)):
        photo = jpeg_bytes(scene(k, 300))
        plain, located = guide.recognize(photo), guide.recognize(photo, near=far)
        assert [(h.xid, h.score) for h in located.landmarks] == [(h.xid, h.score) for h in plain.landmarks]
        assert located.categories == plain.categories and located.match == plain.match
        assert not located.prior_applied and all(h.distance_m > 1_000_000 for h in located.landmarks)


def test_a_near_landmark_the_voters_missed_is_still_considered(guide: Guide, coordinates) -> None:
    """With k=1 only landmark 0's photos vote; standing at landmark 5 brings landmark 5 in."""
    narrow = Guide(guide.index, guide.image_encoder, guide.text_encoder, RankingParams(k=1, top_n=5, search_depth=1))
    photo = jpeg_bytes(scene(0, 301))
    xid5, place5 = coordinates[5]
    assert xid5 not in [h.xid for h in narrow.recognize(photo).landmarks]
    located = narrow.recognize(photo, near=PhotoLocation(place5.lat, place5.lon, "shared"))
    assert located.prior_applied and xid5 in [h.xid for h in located.landmarks]


def test_exif_gps_wins_over_the_shared_location(guide: Guide, coordinates) -> None:
    xid, place = coordinates[2]
    image = scene(2, 302)
    exif = image.getexif()
    exif[0x8825] = {1: "N", 2: _dms(place.lat), 3: "E", 4: _dms(place.lon)}
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    elsewhere = PhotoLocation(-33.8688, 151.2093, "shared")
    result = guide.recognize(buffer.getvalue(), near=elsewhere)
    assert result.location.source == "exif" and result.location.lat == pytest.approx(place.lat, abs=1e-4)
    assert result.landmarks[0].xid == xid and result.landmarks[0].distance_m < 50


def test_nearby_lists_catalog_landmarks_with_or_without_photos(built_dataset, encoders, model_dirs, tmp_path) -> None:
    from core import build_index, model_id
    from core.catalog import Landmark

    dataset = built_dataset.copy_to(tmp_path)
    from core.dataset import Dataset

    catalog = Dataset(dataset.data_dir)
    landmarks = catalog.landmarks()
    first = next(iter(landmarks.values()))
    lonely = Landmark(
        "NOPHOTO1", "Памятник без фото", first.city, lat=first.lat + 0.0001, lon=first.lon, city_code="EKB"
    )
    catalog.write_landmarks([*landmarks.values(), lonely])
    build_index(dataset.data_dir, dataset.artifacts_dir, encoders.image, text_model=model_id(str(model_dirs.text)))
    index = PhotoIndex.load(dataset.artifacts_dir)
    near = index.locator.nearest(GeoPoint(first.lat, first.lon), 3)
    assert [n.landmark.xid for n in near[:2]] == [first.xid, "NOPHOTO1"]
    assert near[0].distance_m < 1 and 10 < near[1].distance_m < 12
    assert [n.distance_m for n in near] == sorted(n.distance_m for n in near)


def test_cli_shapes(built_dataset, coordinates, model_dirs, monkeypatch, tmp_path: Path, capsys) -> None:
    use_environment(monkeypatch, tmp_path, built_dataset, model_dirs)
    xid, place = coordinates[0]
    nearby = run_json(main, ["nearby", str(place.lat), str(place.lon), "--limit", "3"], capsys)
    assert [set(n) for n in nearby["landmarks"]] == [{"xid", "name", "city", "lat", "lon", "distance_m"}] * 3
    assert nearby["landmarks"][0]["xid"] == xid and nearby["landmarks"][0]["distance_m"] == 0
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes(scene(0, 303)))
    data = run_json(main, ["recognize", "photo.jpg", "--near", f"{place.lat},{place.lon}"], capsys)
    assert data["location"] == {"lat": place.lat, "lon": place.lon, "source": "argument"}
    assert all(isinstance(h["distance_m"], int) for h in data["landmarks"])
    assert data["landmarks"][0]["xid"] == xid
    for argv in (["nearby", "95", "10"], ["nearby", "north", "10"], ["recognize", "photo.jpg", "--near", "56.8"]):
        code, out, err = run(main, argv, capsys)
        assert code == 2 and out == "" and err.strip().count("\n") == 0, (argv, err)
