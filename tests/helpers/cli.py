"""Running the command-line entry points in-process, with settings from a clean environment."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.models import BuiltDataset, ModelDirs


def use_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dataset: BuiltDataset, models: ModelDirs) -> None:
    """Point the settings at `dataset` and the tiny models; run from a folder with no .env."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(dataset.data_dir))
    monkeypatch.setenv("ARTIFACTS_DIR", str(dataset.artifacts_dir))
    monkeypatch.setenv("IMAGE_MODEL", str(models.clip))
    monkeypatch.setenv("TEXT_MODEL", str(models.text))
    # No DINOv2 weights here: CLIP alone unless a test sets the random stand-in (tests/core/test_place_tower.py).
    monkeypatch.setenv("PLACE_MODEL", "none")


def run(main: Callable[[list[str]], int], argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def run_json(main: Callable[[list[str]], int], argv: list[str], capsys: pytest.CaptureFixture) -> dict:
    code, out, err = run(main, [*argv, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)
