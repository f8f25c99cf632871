"""Attacks on the quarantine folder (issue #16, rows 1–3): no arrangement of it makes `prep apply` delete,
or `prep clean` write, anything it should not."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

from prep.__main__ import main
from tests.helpers.cleaning_set import snapshot
from tests.helpers.cli import run, run_json

pytestmark = pytest.mark.slow  # end to end: the whole suite (CI) runs it, the fast loop does not


def _flagged(qdir: Path) -> dict[str, str]:
    with (qdir / "report.csv").open() as f:
        return {row["path"]: row["reason"] for row in csv.DictReader(f)}


def test_a_reason_folder_linked_into_the_dataset_deletes_nothing(cleaned, capsys) -> None:
    dataset, qdir, _ = cleaned
    before = snapshot(dataset.data_dir)
    shutil.rmtree(qdir / "collage")
    os.symlink(dataset.data_dir / "images", qdir / "collage")
    code, _, err = run(main, ["apply", "--quarantine", str(qdir), "--yes"], capsys)
    assert code == 2 and "symbolic link" in err
    assert snapshot(dataset.data_dir) == before


def test_a_city_folder_linked_into_the_dataset_deletes_nothing(cleaned, capsys) -> None:
    dataset, qdir, _ = cleaned
    before = snapshot(dataset.data_dir)
    city = next((qdir / "tiny").iterdir())
    shutil.rmtree(city)
    os.symlink(dataset.data_dir / "images" / city.name, city)
    code, _, err = run(main, ["apply", "--quarantine", str(qdir), "--yes"], capsys)
    assert code == 2 and "symbolic link" in err and snapshot(dataset.data_dir) == before


def test_an_extra_copy_of_an_unflagged_photo_is_not_deleted(cleaned, capsys) -> None:
    dataset, qdir, _ = cleaned
    flagged = _flagged(qdir)
    innocent = next(p for p in snapshot(dataset.data_dir) if p not in flagged)
    planted = qdir / "collage" / Path(innocent).relative_to("images")
    planted.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(dataset.data_dir / innocent, planted)
    result = run_json(main, ["apply", "--quarantine", str(qdir), "--yes"], capsys)
    assert innocent not in {d["path"] for d in result["deleted"]}
    assert (dataset.data_dir / innocent).is_file()
    assert any("not in report.csv" in k["why"] for k in result["kept"])


def test_a_copy_renamed_to_its_kept_exact_twin_is_not_deleted(cleaned, capsys) -> None:
    dataset, qdir, expected = cleaned
    duplicate = next(p for p, r in expected.items() if r == "duplicate")
    copy = qdir / "duplicate" / Path(duplicate).relative_to("images")
    twin = next(  # the original it duplicates: same bytes, not flagged
        p
        for p, digest in snapshot(dataset.data_dir).items()
        if digest == snapshot(dataset.data_dir)[duplicate] and p != duplicate
    )
    copy.rename(copy.with_name(Path(twin).name))
    result = run_json(main, ["apply", "--quarantine", str(qdir), "--yes"], capsys)
    assert (dataset.data_dir / twin).is_file() and twin not in {d["path"] for d in result["deleted"]}


def test_without_report_nothing_is_deleted_and_it_says_why(cleaned, capsys) -> None:
    dataset, qdir, _ = cleaned
    before = snapshot(dataset.data_dir)
    (qdir / "report.csv").unlink()
    code, _, err = run(main, ["apply", "--quarantine", str(qdir), "--yes"], capsys)
    assert code == 2 and "report.csv" in err and "nothing is deleted" in err
    assert snapshot(dataset.data_dir) == before


def test_a_copy_that_is_a_link_is_ignored_and_listed(cleaned, capsys) -> None:
    dataset, qdir, expected = cleaned
    tiny = next(p for p, r in expected.items() if r == "tiny")
    copy = qdir / "tiny" / Path(tiny).relative_to("images")
    copy.unlink()
    os.symlink(dataset.data_dir / tiny, copy)
    code, _, err = run(main, ["apply", "--quarantine", str(qdir), "--yes"], capsys)
    assert code == 2 and "symbolic link" in err
    assert (dataset.data_dir / tiny).is_file()


def test_the_marker_linked_to_places_is_never_written_through(dataset, tmp_path, capsys) -> None:
    places = dataset.data_dir / "places.csv"
    before = places.read_bytes()
    qdir = tmp_path / "q"
    qdir.mkdir()
    os.symlink(places, qdir / ".quarantine")
    code, _, err = run(main, ["clean", "--quarantine", str(qdir), "--checks", "tiny"], capsys)
    assert code == 2 and places.read_bytes() == before
    assert "quarantine" in err


def test_a_quarantine_that_is_a_link_is_refused(dataset, tmp_path, capsys) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.symlink(target, tmp_path / "q")
    code, _, err = run(main, ["clean", "--quarantine", str(tmp_path / "q"), "--checks", "tiny"], capsys)
    assert code == 2 and "symbolic link" in err and not any(target.iterdir())
