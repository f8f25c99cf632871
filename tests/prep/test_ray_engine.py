"""`prep build --engine ray` (issue #25): Ray Data embeds the missing photos into the same cache, with
the vectors the local engine gives; serving never imports Ray."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from core import PhotoIndex
from prep.__main__ import main
from prep.random_models import build_place_model
from tests.helpers.bot import REPO
from tests.helpers.cli import run, run_json, use_environment

pytestmark = pytest.mark.slow  # starts a local Ray instance (~5-10 s)


def test_ray_fills_the_cache_with_the_local_engines_vectors(built_dataset, model_dirs, monkeypatch, tmp_path, capsys):
    dataset = built_dataset.copy_to(tmp_path)
    use_environment(monkeypatch, tmp_path, dataset, model_dirs)
    broken = next((dataset.data_dir / "images").glob("*/*/")) / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "ray-artifacts"))
    monkeypatch.setenv("PLACE_MODEL", str(build_place_model(tmp_path / "dinov2-small")))  # both towers on Ray
    report = run_json(main, ["build", "--engine", "ray"], capsys)
    assert report["embedded"] == report["photos"] > 0 and not report["up_to_date"]
    assert report["place_model"] == "dinov2-small" and report["place_embedded"] == report["photos"]
    assert any(s["path"].endswith("broken.jpg") and "unreadable" in s["reason"] for s in report["skipped"])
    by_ray = PhotoIndex.load(tmp_path / "ray-artifacts")
    local = PhotoIndex.load(built_dataset.artifacts_dir)  # the same photos, embedded by the local loop
    ray_vectors = {p.sha256: by_ray.vector(row) for row, p in enumerate(by_ray.photos)}
    for row, photo in enumerate(local.photos):
        cosine = float(np.dot(ray_vectors[photo.sha256], local.vector(row)))
        assert cosine >= 0.999, (photo.path, cosine)
    # The cache now holds them, each tower's under its own key: the local engine embeds nothing.
    again = run_json(main, ["build", "--force"], capsys)
    assert again["embedded"] == 0 and again["from_cache"] == again["photos"] and again["place_embedded"] == 0


def test_engine_options_are_checked_before_anything_loads(built_dataset, model_dirs, monkeypatch, tmp_path, capsys):
    use_environment(monkeypatch, tmp_path, built_dataset.copy_to(tmp_path), model_dirs)
    code, _, err = run(main, ["build", "--address", "auto"], capsys)
    assert code == 2 and "--address goes with --engine ray" in err


def test_serving_never_imports_ray() -> None:
    code = "import sys, bot.app, bot.handlers, core; print('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr[-1000:]
