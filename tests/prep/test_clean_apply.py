"""The review workflow end to end: clean → a person removes a false positive → apply."""

import csv
import json
from pathlib import Path

import pytest
import skimage.data
from PIL import Image

from core.dataset import list_photos
from prep.__main__ import main
from prep.ingest import ingest
from tests.helpers.cleaning_set import (
    PIXEL_CHECKS,
    inject_bad_photos,
    parse_review_page,
    snapshot,
)
from tests.helpers.cli import run, run_json
from tests.helpers.datagen import jpeg_bytes, scene

pytestmark = pytest.mark.slow  # end to end: the whole suite (CI) runs it, the fast loop does not


def test_clean_copies_candidates_and_never_touches_the_dataset(dataset, tmp_path, capsys) -> None:
    expected = inject_bad_photos(dataset)
    before = snapshot(dataset.data_dir)
    summary = run_json(main, ["clean", "--quarantine", str(tmp_path / "q"), "--checks", PIXEL_CHECKS], capsys)
    assert snapshot(dataset.data_dir) == before
    assert summary["candidates"] >= len(expected)

    with (tmp_path / "q" / "report.csv").open() as f:
        rows = {row["path"]: row for row in csv.DictReader(f)}
    assert set(next(iter(rows.values()))) >= {"path", "reason", "score", "threshold", "detail"}
    for path, reason in expected.items():
        assert rows[path]["reason"] == reason, (path, rows.get(path))
        copy = tmp_path / "q" / reason / Path(path).relative_to("images")
        assert copy.read_bytes() == (dataset.data_dir / path).read_bytes()
    false_positives = set(rows) - set(expected)
    assert not false_positives  # ordinary photos stay out of the quarantine

    page = parse_review_page(tmp_path / "q" / "index.html")
    assert {f["data-path"] for f in page.candidates} == set(rows)
    for figure in page.candidates + page.originals + page.ordinary:
        if figure.get("src"):  # thumbnails are files beside the page, loaded lazily
            assert (tmp_path / "q" / figure["src"]).is_file() and figure["loading"] == "lazy"
    assert sum(1 for f in page.candidates if not f.get("src")) == 1  # only the truncated file has none
    # Every duplicate stands beside an existing photo it duplicates, named in report.csv's `original`.
    for path, row in rows.items():
        if row["reason"] == "duplicate":
            assert row["original"] and (dataset.data_dir / row["original"]).is_file()
            assert f"original of {Path(path).name}" in page.captions
    assert page.ordinary and "grayscale" in page.badges


def test_apply_deletes_exactly_what_is_still_in_quarantine(dataset, tmp_path, capsys) -> None:
    expected = inject_bad_photos(dataset)
    qdir = tmp_path / "q"
    run_json(main, ["clean", "--quarantine", str(qdir), "--checks", PIXEL_CHECKS], capsys)
    with (qdir / "report.csv").open() as f:
        candidates = {row["path"]: row["reason"] for row in csv.DictReader(f)}
    # The reviewer keeps the collage: deletes its copy from the quarantine.
    kept = next(p for p, r in expected.items() if r == "collage")
    (qdir / "collage" / Path(kept).relative_to("images")).unlink()
    before = snapshot(dataset.data_dir)

    result = run_json(main, ["apply", "--quarantine", str(qdir), "--yes"], capsys)
    deleted = {d["path"] for d in result["deleted"]}
    assert deleted == set(candidates) - {kept}
    after = snapshot(dataset.data_dir)
    assert set(before) - set(after) == deleted  # nothing else disappeared
    assert kept in after
    with (dataset.data_dir / "removed.csv").open() as f:
        assert {row["path"] for row in csv.DictReader(f)} == deleted

    again = run_json(main, ["apply", "--quarantine", str(qdir), "--yes"], capsys)
    assert again["deleted"] == [] and snapshot(dataset.data_dir) == after

    # A later ingest of the same raw files does not bring the deleted photos back.
    report = ingest(dataset.raw_dir, dataset.data_dir, show_progress=False)
    assert set(snapshot(dataset.data_dir)) == set(after)
    assert report.written == 0


def test_a_photo_changed_or_renamed_after_clean_is_not_deleted(dataset, tmp_path, capsys) -> None:
    expected = inject_bad_photos(dataset)
    qdir = tmp_path / "q"
    run_json(main, ["clean", "--quarantine", str(qdir), "--checks", PIXEL_CHECKS], capsys)
    gray = next(p for p, r in expected.items() if r == "grayscale")
    tiny = next(p for p, r in expected.items() if r == "tiny")
    edited = jpeg_bytes(scene(5, 5))
    (dataset.data_dir / gray).write_bytes(edited)  # the photo was replaced in the dataset after cleaning
    tiny_copy = qdir / "tiny" / Path(tiny).relative_to("images")
    tiny_copy.rename(tiny_copy.with_name("renamed.jpg"))  # the reviewer renamed a copy

    code, out, _ = run(main, ["apply", "--quarantine", str(qdir), "--yes"], capsys)
    assert code == 0
    assert (dataset.data_dir / gray).read_bytes() == edited
    assert (dataset.data_dir / tiny).is_file()
    assert "changed since `prep clean`" in out and "not in report.csv" in out


def test_apply_asks_before_deleting(dataset, tmp_path, capsys, monkeypatch) -> None:
    inject_bad_photos(dataset)
    qdir = tmp_path / "q"
    run_json(main, ["clean", "--quarantine", str(qdir), "--checks", PIXEL_CHECKS], capsys)
    before = snapshot(dataset.data_dir)
    code, _, err = run(main, ["apply", "--quarantine", str(qdir)], capsys)  # stdin is not a terminal here
    assert code == 2 and "--yes" in err and snapshot(dataset.data_dir) == before

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    code, out, _ = run(main, ["apply", "--quarantine", str(qdir)], capsys)
    assert code == 1 and "Nothing deleted" in out and snapshot(dataset.data_dir) == before


def test_unsafe_quarantine_locations_are_refused(dataset, tmp_path, capsys) -> None:
    before = snapshot(dataset.data_dir)
    for qdir in (dataset.data_dir / "q", dataset.data_dir, tmp_path):
        code, _, err = run(main, ["clean", "--quarantine", str(qdir), "--checks", "grayscale"], capsys)
        assert code == 2 and err.strip().count("\n") == 0, err
    assert snapshot(dataset.data_dir) == before
    code, _, err = run(main, ["apply", "--quarantine", str(tmp_path / "nothing"), "--yes"], capsys)
    assert code == 2 and "prep clean" in err


def test_rerunning_clean_replaces_the_quarantine(dataset, tmp_path, capsys) -> None:
    qdir = tmp_path / "q"
    expected = inject_bad_photos(dataset)
    run_json(main, ["clean", "--quarantine", str(qdir), "--checks", PIXEL_CHECKS], capsys)
    assert (qdir / "collage").is_dir()
    run_json(main, ["clean", "--quarantine", str(qdir), "--checks", "grayscale"], capsys)
    assert not (qdir / "collage").exists() and (qdir / "grayscale").is_dir()
    with (qdir / "report.csv").open() as f:
        assert {row["reason"] for row in csv.DictReader(f)} == {"grayscale"}
    assert len(expected) == 5


def test_unknown_check_is_a_clear_error(dataset, tmp_path, capsys) -> None:
    code, _, err = run(main, ["clean", "--quarantine", str(tmp_path / "q"), "--checks", "grayscale,blurry"], capsys)
    assert code == 2 and "blurry" in err


def test_embeddings_from_cleaning_are_reused_by_the_build(dataset, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "fresh"))
    stranger = Image.fromarray(skimage.data.chelsea()).resize((320, 240))
    folder = dataset.data_dir / Path(list_photos(dataset.data_dir)[0].path).parent
    (folder / "cat.jpg").write_bytes(jpeg_bytes(stranger))
    run_json(main, ["clean", "--quarantine", str(tmp_path / "q"), "--checks", "outliers"], capsys)
    report = run_json(main, ["build"], capsys)
    assert report["embedded"] == 0 and report["from_cache"] == report["photos"]


def test_interior_check_runs_only_when_asked(dataset, tmp_path, capsys) -> None:
    default = run_json(main, ["clean", "--quarantine", str(tmp_path / "q")], capsys)
    assert "interior" not in default["checks"]
    asked = run_json(main, ["clean", "--quarantine", str(tmp_path / "q"), "--checks", "interior"], capsys)
    assert asked["checks"] == ["interior"] and asked["notes"] == []
    assert json.dumps(asked)


def test_interior_check_on_onnx_says_why_it_is_skipped(dataset, tmp_path, capsys, monkeypatch, onnx_dir) -> None:
    monkeypatch.setenv("ENCODER_BACKEND", "onnx")
    monkeypatch.setenv("MODEL_DIR", str(onnx_dir))
    asked = run_json(main, ["clean", "--quarantine", str(tmp_path / "q"), "--checks", "interior"], capsys)
    assert any("interior check skipped" in note and "ENCODER_BACKEND=torch" in note for note in asked["notes"])


def test_the_pixel_pass_on_all_cores_finds_the_same(dataset, tmp_path, capsys, monkeypatch) -> None:
    import prep.clean

    inject_bad_photos(dataset)
    serial = run_json(main, ["clean", "--quarantine", str(tmp_path / "q1"), "--checks", PIXEL_CHECKS], capsys)
    monkeypatch.setattr(prep.clean, "PARALLEL_FROM", 1)
    monkeypatch.setattr(prep.clean, "usable_cpus", lambda: 2)
    parallel = run_json(main, ["clean", "--quarantine", str(tmp_path / "q2"), "--checks", PIXEL_CHECKS], capsys)
    assert parallel["by_reason"] == serial["by_reason"] and parallel["candidates"] == serial["candidates"] > 0
    assert (tmp_path / "q1" / "report.csv").read_text() == (tmp_path / "q2" / "report.csv").read_text()
