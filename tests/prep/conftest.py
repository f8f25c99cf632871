"""Fixtures of the prep tests: a dataset of varied photos, copied per test."""

from __future__ import annotations

import shutil

import pytest

from prep.__main__ import main
from prep.ingest import ingest
from tests.helpers.cleaning_set import PIXEL_CHECKS, inject_bad_photos, landmark_view
from tests.helpers.cli import run_json, use_environment
from tests.helpers.datagen import make_raw_dataset
from tests.helpers.fake_wiki import FakeWiki
from tests.helpers.models import BuiltDataset


@pytest.fixture(scope="module")
def varied(tmp_path_factory) -> BuiltDataset:
    """A dataset of distinct photos per landmark (plain generated views are near-duplicates)."""
    root = tmp_path_factory.mktemp("varied")
    names = make_raw_dataset(root / "raw", {"EKB": 4, "NN": 3}, 12, view=landmark_view)
    ingest(root / "raw", root / "data", show_progress=False)
    return BuiltDataset(root / "raw", root / "data", root / "artifacts", names)


@pytest.fixture
def dataset(varied, tmp_path, monkeypatch, model_dirs) -> BuiltDataset:
    shutil.copytree(varied.data_dir, tmp_path / "data")
    copy = BuiltDataset(varied.raw_dir, tmp_path / "data", tmp_path / "artifacts", varied.names)
    use_environment(monkeypatch, tmp_path, copy, model_dirs)
    return copy


@pytest.fixture
def cleaned(dataset, tmp_path, capsys):
    """A dataset with bad photos, cleaned into tmp_path/q: (dataset, qdir, {path: reason})."""
    expected = inject_bad_photos(dataset)
    qdir = tmp_path / "q"
    run_json(main, ["clean", "--quarantine", str(qdir), "--checks", PIXEL_CHECKS], capsys)
    return dataset, qdir, expected


@pytest.fixture
def wiki(monkeypatch, tmp_path):
    """The fake Wikidata, Wikipedia and Commons, the environment pointed at it, DATA_DIR in tmp_path."""
    from prep import wikimedia

    server = FakeWiki().start()
    monkeypatch.setattr(wikimedia, "RETRY_BASE_SECONDS", 0.01)
    monkeypatch.setattr(wikimedia, "REQUEST_TIMEOUT", 2.0)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WIKIDATA_API_URL", f"{server.url}/w/api.php")
    monkeypatch.setenv("WIKIPEDIA_API_URL", f"{server.url}/{{lang}}/api/rest_v1")
    monkeypatch.setenv("COMMONS_API_URL", f"{server.url}/commons/w/api.php")
    monkeypatch.setenv("ENRICH_CONTACT", "admin@example.org")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    yield server
    server.stop()
