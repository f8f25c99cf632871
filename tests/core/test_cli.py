import json
from pathlib import Path

import pytest

from core.__main__ import main
from core.service import Guide
from tests.helpers.cli import run, run_json, use_environment
from tests.helpers.datagen import jpeg_bytes, scene


@pytest.fixture(autouse=True)
def environment(monkeypatch, tmp_path, built_dataset, model_dirs) -> None:
    use_environment(monkeypatch, tmp_path, built_dataset, model_dirs)


def test_recognize_json_has_exactly_the_documented_shape(tmp_path: Path, capsys, built_dataset) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg_bytes(scene(0, 55)))
    data = run_json(main, ["recognize", str(photo)], capsys)
    assert set(data) == {"match", "landmarks", "categories", "location", "photo_credit"}
    assert isinstance(data["match"], bool)
    assert data["photo_credit"] is None  # the test dataset is not harvested: nothing to credit
    assert data["location"] is None  # no --near and no GPS in the file
    assert len(data["landmarks"]) == 5 and len(data["categories"]) == 5
    top, *others = data["landmarks"]
    # The top landmark carries the calibrated probability of being right beside the raw vote share.
    assert set(top) == {"xid", "name", "city", "score", "confidence"} and 0 <= top["confidence"] <= 1
    for hit in others:
        assert set(hit) == {"xid", "name", "city", "score"}
        assert isinstance(hit["score"], float)
    for hit in data["categories"]:
        assert set(hit) == {"category", "score"}
    assert data["landmarks"][0]["name"] == built_dataset.names["EKB"][0]
    scores = [h["score"] for h in data["landmarks"]]
    assert scores == sorted(scores, reverse=True)


def test_recognize_several_photos_one_json_object_per_line(tmp_path: Path, capsys, built_dataset, monkeypatch) -> None:
    photos = [tmp_path / f"p{i}.jpg" for i in range(3)]
    for i, photo in enumerate(photos):
        photo.write_bytes(jpeg_bytes(scene(i, 55 + i)))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    loads = []
    real = Guide.from_settings
    monkeypatch.setattr(Guide, "from_settings", lambda *a, **k: loads.append(1) or real(*a, **k))
    code, out, _ = run(main, ["recognize", *map(str, photos), "--json"], capsys)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(loads) == 1  # one model load for every photo
    assert [line["image"] for line in lines] == [str(p) for p in photos]
    single = run_json(main, ["recognize", str(photos[1])], capsys)
    assert lines[1] == {"image": str(photos[1])} | single  # the same answer as alone
    code, out, _ = run(main, ["recognize", str(photos[0]), str(broken), "--json"], capsys)
    first, second = (json.loads(line) for line in out.splitlines())
    assert code == 1 and "landmarks" in first and set(second) == {"image", "error"} and second["image"] == str(broken)
    code, out, _ = run(main, ["recognize", str(photos[0]), str(photos[2])], capsys)
    assert code == 0 and f"== {photos[0]}" in out and f"== {photos[2]}" in out and "likely right" in out


def test_recognize_table_is_readable(tmp_path: Path, capsys) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg_bytes(scene(0, 55)))
    code, out, _ = run(main, ["recognize", str(photo)], capsys)
    assert code == 0 and "landmark" in out and "category" in out and "score" in out


def test_search_json_paths_resolve_from_the_working_directory(capsys) -> None:
    data = run_json(main, ["search", "Храм на Крови"], capsys)
    assert set(data) == {"photos"} and len(data["photos"]) == 5
    for photo in data["photos"]:
        assert set(photo) == {"path", "xid", "name", "score", "photo_credit"}
        assert Path(photo["path"]).is_file()
    english = run_json(main, ["search", "cathedral near the river"], capsys)
    assert len(english["photos"]) == 5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["recognize", "missing.jpg"], "cannot read"),
        (["recognize", "broken.jpg"], "broken.jpg"),
        (["search", "   "], "empty"),
        (["recognize", "photo.jpg", "--artifacts", "nowhere"], "prep build"),
        (["search", "church", "--artifacts", "nowhere"], "prep build"),
        (["recognize", "/dev/zero"], "not a regular file"),
        (["recognize", "fifo.jpg"], "not a regular file"),
        (["recognize", "."], "not a regular file"),
        (["recognize", "huge.jpg"], "larger than 20 MB"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    import os

    os.mkfifo(tmp_path / "fifo.jpg")  # opened non-blocking: must not hang waiting for a writer
    with (tmp_path / "huge.jpg").open("wb") as f:
        f.truncate(21 * 1024 * 1024)
    (tmp_path / "broken.jpg").write_bytes(jpeg_bytes(scene(0, 1))[:200])
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes(scene(0, 1)))
    code, out, err = run(main, argv, capsys)
    assert code == 2 and out == ""
    assert message in err and err.strip().count("\n") == 0


def test_wrong_model_is_reported_not_served(capsys, monkeypatch, tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes(scene(0, 1)))
    monkeypatch.setenv("IMAGE_MODEL", str(tmp_path / "no-such-model"))
    code, _, err = run(main, ["recognize", "photo.jpg"], capsys)
    assert code == 2 and "no-such-model" in err


def test_commands_give_each_inference_all_cores_the_bot_shares_them(monkeypatch) -> None:
    from bot.settings import BotSettings
    from core import usable_cpus
    from core.cli import load_settings

    monkeypatch.setenv("WORKERS", "2")
    cores = usable_cpus()
    assert BotSettings.from_env(env_file=None).core.threads == max(1, cores // 2)  # two workers share the cores
    assert load_settings().threads == cores  # prep, the query CLI: one stream gets them all


def test_out_of_range_coordinates_say_which_and_odd_ids_are_one_line(tmp_path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "core", "nearby", "91", "0"], capture_output=True, text=True)
    assert result.returncode == 2 and "latitude must be a number from -90 to 90" in result.stderr
    odd = subprocess.run(
        [sys.executable, "-m", "prep", "contributions", "reject", b"\xff\xfe-id".decode("utf-8", "surrogateescape")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert not list(tmp_path.iterdir())  # refused before any store was opened
    assert odd.returncode == 2 and "Traceback" not in odd.stderr and "no contribution" in odd.stderr


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MATCH_PRECISION", "0.99", r"not sure: \d+ % likely right, below the 99 % asked \(MATCH_PRECISION\)"),
        ("MATCH_THRESHOLD", "0.9999", r"not sure: best similarity 0\.\d{3}, below the 1\.00 asked \(MATCH_THRESHOLD\)"),
    ],
)
def test_a_plain_not_sure_says_why(tmp_path: Path, capsys, monkeypatch, variable, value, expected) -> None:
    """Issue #32: "not sure — no landmark matches closely (best similarity 0.999 …)" said nothing of why."""
    import re

    monkeypatch.setenv(variable, value)
    photo = tmp_path / "fresh.jpg"
    photo.write_bytes(jpeg_bytes(scene(3, 777)))
    code, out, err = run(main, ["recognize", str(photo)], capsys)
    assert code == 0, err
    assert re.match(expected, out.splitlines()[0]), out.splitlines()[0]
