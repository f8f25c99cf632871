import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.catalog import read_places
from core.dataset import list_photos
from prep.ingest import decode_base64_photo, ingest
from tests.helpers.datagen import (
    encode_field,
    jpeg_bytes,
    make_raw_dataset,
    read_fixture_places,
    scene,
    write_images_csv,
    write_places_csv,
)

PHOTO = jpeg_bytes(scene(0, 0))


@pytest.mark.parametrize("wrapping", ["plain", "bytes_literal", "data_url", "wrapped", "unpadded"])
def test_every_base64_wrapping_decodes_to_the_same_bytes(wrapping: str) -> None:
    assert decode_base64_photo(encode_field(PHOTO, wrapping)) == PHOTO


@pytest.mark.parametrize("garbage", ["", "   ", "%%%not base64%%%", "b''", "data:image/jpeg;base64,"])
def test_garbage_base64_is_refused(garbage: str) -> None:
    with pytest.raises(ValueError):
        decode_base64_photo(garbage)


def _images_file(data_dir: Path) -> dict[str, bytes]:
    return {p.path: (data_dir / p.path).read_bytes() for p in list_photos(data_dir)}


def test_ingest_writes_layout_places_and_exact_bytes(tmp_path: Path) -> None:
    names = make_raw_dataset(tmp_path / "raw", {"EKB": 3, "NN": 2}, photos_per_landmark=2)
    report = ingest(tmp_path / "raw", tmp_path / "data", show_progress=False)
    assert report.written == 10 and not report.skipped

    places = read_places(tmp_path / "data" / "places.csv")
    assert {lm.name for lm in places.values()} == set(names["EKB"] + names["NN"])
    dynamo = next(lm for lm in places.values() if lm.name == "Динамо")
    assert dynamo.xid == "W38411380" and dynamo.city == "Екатеринбург" and dynamo.city_code == "EKB"
    assert "stadiums" in dynamo.kinds and dynamo.lat == pytest.approx(56.845398)
    with (tmp_path / "data" / "places.csv").open() as f:
        assert {"xid", "name", "city", "kinds", "lat", "lon", "wikidata", "osm"} <= set(next(csv.reader(f)))

    photos = list_photos(tmp_path / "data")
    first = tmp_path / "data" / "images/EKB/W38411380/EKB_0.jpg"
    assert first.read_bytes() == jpeg_bytes(scene(0, 0))  # the decoded bytes, not re-encoded
    assert (tmp_path / "data" / "images/EKB/W38411380/EKB_1.jpg").is_file()
    assert {p.city_code for p in photos} == {"EKB", "NN"}


def test_second_variant_columns_and_wrappings(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    fieldnames, rows = read_fixture_places("Vladimir")  # leading unnamed index column and Description
    write_places_csv(raw / "Vladimir_places.csv", fieldnames, rows[:2])
    wrappings = ["bytes_literal", "data_url", "wrapped", "unpadded"]
    write_images_csv(
        raw / "Vladimir_images.csv",
        [(rows[i % 2]["Name"], encode_field(jpeg_bytes(scene(i, 0)), w)) for i, w in enumerate(wrappings)],
        columns=("Name", "image"),
    )
    report = ingest(raw, tmp_path / "data", show_progress=False)
    assert report.written == 4 and not report.skipped
    assert len(read_places(tmp_path / "data" / "places.csv")) == 2


def test_bad_rows_are_skipped_with_reasons_and_never_stop_the_run(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    fieldnames, rows = read_fixture_places("EKB")
    write_places_csv(raw / "EKB_places.csv", fieldnames, rows[:2])
    name = rows[0]["Name"]
    truncated = PHOTO[: len(PHOTO) // 2]
    write_images_csv(
        raw / "EKB_images.csv",
        [
            (name, encode_field(PHOTO)),
            (name, "this is not base64 at all!"),
            (name, encode_field(truncated)),
            (name, encode_field(b"plain text, not an image")),
            ("Nowhere Street", encode_field(PHOTO)),
            (name, ""),
            (name, encode_field(jpeg_bytes(scene(1, 1)))),
        ],
    )
    report = ingest(raw, tmp_path / "data", show_progress=False)
    assert report.written == 2
    by_row = {s.row: s.reason for s in report.skipped}
    assert set(by_row) == {1, 2, 3, 4, 5}
    assert by_row[4] == "unknown place"
    assert all(by_row[r].startswith("undecodable") for r in (1, 2, 3, 5))
    with report.report_path.open() as f:
        assert len(list(csv.DictReader(f))) == 5
    assert sorted(p.path.rsplit("/", 1)[1] for p in list_photos(tmp_path / "data")) == ["EKB_0.jpg", "EKB_6.jpg"]
    assert "5 skipped" in report.summary()


def test_duplicate_names_merge_into_one_landmark(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    fieldnames, rows = read_fixture_places("EKB")
    street = [r for r in rows if r["Name"] == "улица Добролюбова"]
    assert len(street) >= 2
    write_places_csv(raw / "EKB_places.csv", fieldnames, street)
    write_images_csv(raw / "EKB_images.csv", [("улица Добролюбова", encode_field(PHOTO))] * 2)
    ingest(raw, tmp_path / "data", show_progress=False)
    places = read_places(tmp_path / "data" / "places.csv")
    assert list(places) == [street[0]["XID"]]
    merged_kinds = set()
    for row in street:
        merged_kinds |= set(row["Kind"].split(","))
    assert set(places[street[0]["XID"]].kinds) == merged_kinds
    assert {p.xid for p in list_photos(tmp_path / "data")} == {street[0]["XID"]}


def test_unsafe_xid_and_city_cannot_escape_the_data_dir(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    fieldnames, rows = read_fixture_places("EKB")
    evil = [dict(rows[0], XID="../../escape", Name="Evil"), dict(rows[1], XID="/etc", Name="Root"), rows[2]]
    write_places_csv(raw / "EKB_places.csv", fieldnames, evil)
    write_images_csv(raw / "EKB_images.csv", [(r["Name"], encode_field(PHOTO)) for r in evil])
    write_places_csv(raw / "..evil_places.csv", fieldnames, rows[:1])
    report = ingest(raw, tmp_path / "data", show_progress=False)
    assert report.written == 1
    reasons = " ".join(s.reason for s in report.skipped)
    assert "unsafe XID" in reasons and "unsafe city code" in reasons
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(tmp_path / "data" in p.parents or tmp_path / "raw" in p.parents for p in files)
    assert list(read_places(tmp_path / "data" / "places.csv")) == [rows[2]["XID"]]


def test_rerun_is_idempotent_and_keeps_other_cities(tmp_path: Path) -> None:
    make_raw_dataset(tmp_path / "raw", {"EKB": 2, "NN": 2}, photos_per_landmark=2)
    ingest(tmp_path / "raw", tmp_path / "data", show_progress=False)
    before = _images_file(tmp_path / "data")
    places_before = (tmp_path / "data" / "places.csv").read_bytes()
    again = ingest(tmp_path / "raw", tmp_path / "data", show_progress=False)
    assert again.written == 0 and again.unchanged == 8
    assert _images_file(tmp_path / "data") == before
    assert (tmp_path / "data" / "places.csv").read_bytes() == places_before

    (tmp_path / "raw" / "NN_places.csv").unlink()
    (tmp_path / "raw" / "NN_images.csv").unlink()
    ingest(tmp_path / "raw", tmp_path / "data", show_progress=False)
    assert {lm.city_code for lm in read_places(tmp_path / "data" / "places.csv").values()} == {"EKB", "NN"}


def test_cli_prints_json_summary(tmp_path: Path) -> None:
    make_raw_dataset(tmp_path / "raw", {"NN": 2}, photos_per_landmark=1)
    result = subprocess.run(
        [sys.executable, "-m", "prep", "ingest", str(tmp_path / "raw"), "--data", str(tmp_path / "data"), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(result.stdout)
    assert summary["written"] == 2 and summary["cities"][0]["city"] == "NN"


def test_cli_missing_folder_is_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "prep", "ingest", str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "not a folder" in result.stderr


def test_a_cp1251_line_and_a_utf16_file_are_read_not_fatal(tmp_path: Path) -> None:
    """Issue #16 row 6: one cp1251-encoded name, and a whole places file in UTF-16 with a BOM."""
    raw = tmp_path / "raw"
    raw.mkdir()
    fieldnames, rows = read_fixture_places("EKB")
    write_places_csv(raw / "EKB_places.csv", fieldnames, rows[:2])
    places = (raw / "EKB_places.csv").read_text(encoding="utf-8")
    (raw / "EKB_places.csv").write_bytes(places.encode("utf-16"))  # with BOM
    name, other = rows[0]["Name"], rows[1]["Name"]
    lines = ["name,img", f"{name},{encode_field(PHOTO)}", f"{other},{encode_field(jpeg_bytes(scene(1, 1)))}"]
    (raw / "EKB_images.csv").write_bytes(
        (lines[0] + "\r\n" + lines[1] + "\r\n").encode("utf-8") + (lines[2] + "\r\n").encode("cp1251")
    )
    report = ingest(raw, tmp_path / "data", show_progress=False)
    assert report.written == 2 and not report.skipped
    assert set(read_places(tmp_path / "data" / "places.csv")) == {rows[0]["XID"], rows[1]["XID"]}


def test_formula_like_text_is_neutralised_in_the_report(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    fieldnames, rows = read_fixture_places("EKB")
    write_places_csv(raw / "EKB_places.csv", fieldnames, rows[:1])
    write_images_csv(raw / "EKB_images.csv", [('=HYPERLINK("http://x")', encode_field(PHOTO))])
    report = ingest(raw, tmp_path / "data", show_progress=False)
    with report.report_path.open() as f:
        (row,) = list(csv.DictReader(f))
    assert row["name"].startswith("'=") and row["reason"] == "unknown place"
