"""Damaged state heals or says so; models are known by content (issue #16 rows 7, 8, 10, 13)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from core import Guide, PhotoIndex, build_index, model_id, open_cache
from core.artifacts import ArtifactsError, resolve_build
from core.encoders.torch_runtime import SentenceTransformerImageEncoder
from prep.__main__ import main as prep_main
from prep.random_models import build_clip
from tests.helpers.cli import run, run_json, use_environment
from tests.helpers.models import BuiltDataset, ModelDirs


@pytest.fixture
def dataset(built_dataset: BuiltDataset, tmp_path: Path) -> BuiltDataset:
    return built_dataset.copy_to(tmp_path)


def _cache_file(dataset: BuiltDataset) -> Path:
    return dataset.artifacts_dir / "cache" / "embeddings.sqlite"


def test_a_garbage_cache_is_moved_aside_and_rebuilt(dataset, model_dirs, monkeypatch, tmp_path, capsys) -> None:
    cache = _cache_file(dataset)
    for suffix in ("-wal", "-shm"):
        Path(f"{cache}{suffix}").unlink(missing_ok=True)
    cache.write_bytes(b"this is not a database" * 100)
    use_environment(monkeypatch, tmp_path, dataset, model_dirs)
    report = run_json(prep_main, ["build", "--force"], capsys)
    assert report["photos"] > 0 and report["embedded"] == report["photos"]
    assert list(cache.parent.glob("embeddings.sqlite.damaged-*"))
    with open_cache(dataset.artifacts_dir) as healed:
        assert healed.get  # opens cleanly now


def test_a_truncated_cached_vector_is_embedded_again(dataset, encoders, model_dirs) -> None:
    with sqlite3.connect(_cache_file(dataset)) as db:
        (digest,) = db.execute("SELECT sha256 FROM embeddings LIMIT 1").fetchone()
        db.execute("UPDATE embeddings SET vector = substr(vector, 1, 100) WHERE sha256 = ?", (digest,))
    report = build_index(
        dataset.data_dir,
        dataset.artifacts_dir,
        encoders.image,
        text_model=model_id(str(model_dirs.text)),
        force=True,
    )
    assert report.embedded == 1 and report.photos == len(PhotoIndex.load(dataset.artifacts_dir))


@pytest.mark.parametrize("content", ["[]", "{}", "null", '{"schema_version": 1, "dim": "x"}', "{trunc"])
def test_a_malformed_manifest_is_damaged_and_prep_build_rebuilds(
    dataset, model_dirs, monkeypatch, tmp_path, capsys, content
) -> None:
    manifest = resolve_build(dataset.artifacts_dir) / "manifest.json"
    manifest.write_text(content)
    with pytest.raises(ArtifactsError, match="rebuild"):
        PhotoIndex.load(dataset.artifacts_dir)
    use_environment(monkeypatch, tmp_path, dataset, model_dirs)
    report = run_json(prep_main, ["build"], capsys)
    assert not report["up_to_date"] and PhotoIndex.load(dataset.artifacts_dir).manifest.count == report["photos"]


def test_a_photo_vanishing_during_the_build_is_skipped_and_listed(dataset, encoders, model_dirs, monkeypatch) -> None:
    from core import embedding_cache

    victim = sorted((dataset.data_dir / "images").rglob("*.jpg"))[3]
    real_hash = embedding_cache.EmbeddingCache.hash_file

    def hash_then_vanish(self, path):
        if path == victim:
            victim.unlink()
        return real_hash(self, path)

    monkeypatch.setattr(embedding_cache.EmbeddingCache, "hash_file", hash_then_vanish)
    report = build_index(
        dataset.data_dir, dataset.artifacts_dir, encoders.image, text_model=model_id(str(model_dirs.text)), force=True
    )
    assert any("vanished" in reason for _, reason in report.skipped)
    assert report.photos == len(PhotoIndex.load(dataset.artifacts_dir))


def test_other_weights_under_the_same_name_force_re_embedding_and_refuse_the_old_index(
    dataset, model_dirs: ModelDirs, monkeypatch, tmp_path, capsys
) -> None:
    """`prep random-models` writes `clip-ViT-B-32`: another model of that name must not pass for the first."""
    other = build_clip(tmp_path / "other" / "clip-ViT-B-32", seed=7)
    assert model_id(str(other)) == model_id(str(model_dirs.clip))
    old_index = PhotoIndex.load(dataset.artifacts_dir)
    swapped = SentenceTransformerImageEncoder(str(other))
    with pytest.raises(ArtifactsError, match="other weights"):
        old_index.check_models(swapped.model_name, fingerprint=swapped.fingerprint)

    use_environment(monkeypatch, tmp_path, dataset, model_dirs)
    monkeypatch.setenv("IMAGE_MODEL", str(other))
    report = run_json(prep_main, ["build"], capsys)
    assert not report["up_to_date"] and report["embedded"] == report["photos"]  # nothing from the old cache
    again = run_json(prep_main, ["build"], capsys)
    assert again["up_to_date"]
    code, _, err = run(prep_main, ["build", "--force", "--json"], capsys)
    assert code == 0
    new_index = PhotoIndex.load(dataset.artifacts_dir)
    assert new_index.manifest.image_fingerprint == swapped.fingerprint
    # A dataset photo is its own nearest neighbour under the new model (it was 0.07 with the stale vectors).
    guide = Guide(new_index, swapped, _text(model_dirs), data_dir=dataset.data_dir)
    first = new_index.photos[0]
    result = guide.recognize((dataset.data_dir / first.path).read_bytes())
    assert result.best_similarity > 0.99


def _text(model_dirs: ModelDirs):
    from core.encoders.torch_runtime import SentenceTransformerTextEncoder

    return SentenceTransformerTextEncoder(str(model_dirs.text))


def test_a_downloaded_hub_model_loads_from_its_cache_without_the_network(model_dirs, tmp_path, monkeypatch) -> None:
    """After the first download, IMAGE_MODEL=clip-ViT-B-32 resolves to the cached snapshot folder."""
    import shutil

    from core.encoders.fingerprint import model_folder

    snapshot = tmp_path / "hub" / "models--sentence-transformers--clip-ViT-B-32" / "snapshots" / "abc123"
    shutil.copytree(model_dirs.clip, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # no offline switch: the cache alone must do
    assert model_folder("clip-ViT-B-32") == snapshot
    encoder = SentenceTransformerImageEncoder("clip-ViT-B-32")
    assert encoder.model_name == "clip-ViT-B-32" and encoder.fingerprint


def test_contribution_ids_never_look_like_command_line_options() -> None:
    from core.contributions import new_answer_id

    ids = [new_answer_id() for _ in range(3000)]  # ~1 in 64 raw tokens starts with "-"
    assert len(set(ids)) == 3000 and not any(i.startswith("-") for i in ids)
    assert all(len(i) == 12 for i in ids)


OLD_STORE_SCHEMA = """
CREATE TABLE answers (
    id TEXT PRIMARY KEY, user_id INTEGER NOT NULL, created_at REAL NOT NULL, day TEXT NOT NULL,
    candidates TEXT NOT NULL, match INTEGER NOT NULL, answer_ms REAL NOT NULL,
    sha256 TEXT, photo TEXT, label TEXT, label_xid TEXT, label_rank INTEGER, feedback_at REAL,
    status TEXT, reviewed_at REAL, dataset_path TEXT);
CREATE INDEX answers_user ON answers (user_id);
CREATE TABLE consent (user_id INTEGER PRIMARY KEY, agreed INTEGER NOT NULL, at REAL NOT NULL);
INSERT INTO answers VALUES ('abcdefghijkl', 7, 1.0e9, '2001-09-09', '["W1"]', 1, 40.0,
    NULL, NULL, 'confirmed', 'W1', 1, 1.0e9, NULL, NULL, NULL);
INSERT INTO consent VALUES (7, 1, 1.0e9);
"""


def test_the_contribution_store_of_0_1_is_upgraded_in_place_and_a_newer_one_refused(tmp_path) -> None:
    import sqlite3

    from core.contributions import SCHEMA_STEPS, STORE_FILE, SqliteContributionStore
    from core.schema import SchemaError

    folder = tmp_path / "contrib"
    folder.mkdir()
    db = sqlite3.connect(folder / STORE_FILE)
    db.executescript(OLD_STORE_SCHEMA)  # exactly what 0.1 wrote: no version
    db.close()
    store = SqliteContributionStore(folder)
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == len(SCHEMA_STEPS) == 2
    assert store.answer("abcdefghijkl").label == "confirmed" and store.consent(7) is True
    # An old answer has no calibrated figure: /stats leaves it out of the expectation, not the count.
    assert store.stats().total.confirmed == 1 and store.stats().total.expected_right_rate is None
    store.close()
    db = sqlite3.connect(folder / STORE_FILE)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(SchemaError, match="newer version"):
        SqliteContributionStore(folder)


def test_an_embedding_cache_of_0_1_is_kept_and_versioned(tmp_path) -> None:
    import sqlite3

    from core.embedding_cache import CACHE_SCHEMA_STEPS, EmbeddingCache

    path = tmp_path / "cache.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE embeddings (model TEXT NOT NULL, sha256 TEXT NOT NULL, vector BLOB NOT NULL, "
        "PRIMARY KEY (model, sha256)); CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
        "mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL); INSERT INTO embeddings VALUES ('m', 'h', x'0000');"
    )
    db.close()
    with EmbeddingCache(path) as cache:
        assert cache._db.execute("PRAGMA user_version").fetchone()[0] == len(CACHE_SCHEMA_STEPS)
        assert cache._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 1


# --- issue #31 rows 10 and 13: a hand-edited calibration, a damaged IVF build ----------------------
def _edit_calibration(location: Path, edit) -> None:
    path = location / "calibration.json"
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))  # allow_nan: writes NaN / Infinity as a hand edit would


CALIBRATION_EDITS = {
    "nan weight": lambda raw: raw["calibration"]["weights"].__setitem__(0, float("nan")),
    "zero scale": lambda raw: raw["calibration"]["scale"].__setitem__(1, 0.0),
    "infinite bias": lambda raw: raw["calibration"].__setitem__("bias", float("inf")),
    "absurd bias": lambda raw: raw["calibration"].__setitem__("bias", 1e9),
    "nan text threshold": lambda raw: raw["text"]["curve"][0].__setitem__(0, float("nan")),
    "text threshold -1e9": lambda raw: raw["text"]["curve"][0].__setitem__(0, -1e9),
    "precision above 1": lambda raw: raw["text"]["curve"][-1].__setitem__(1, 7.0),
}


@pytest.mark.parametrize("edit", list(CALIBRATION_EDITS))
def test_a_hand_edited_calibration_is_damaged_and_the_fixed_thresholds_serve(
    dataset, model_dirs, monkeypatch, tmp_path, capsys, caplog, edit
) -> None:
    """NaN weights printed `NaN` in `core recognize --json` (invalid JSON) and could make every photo a 100 %
    match; a NaN or -1e9 text threshold let text search never admit a miss."""
    from core import text_threshold
    from core.__main__ import main as core_main
    from core.calibration import FALLBACK_TEXT_MATCH_THRESHOLD

    location = resolve_build(dataset.artifacts_dir)
    _edit_calibration(location, CALIBRATION_EDITS[edit])
    index = PhotoIndex.load(dataset.artifacts_dir)
    assert index.calibration is None and index.text_calibration is None
    assert any("calibration.json is damaged" in r.getMessage() for r in caplog.records)
    assert text_threshold(index.text_calibration, None, 0.9) == FALLBACK_TEXT_MATCH_THRESHOLD
    use_environment(monkeypatch, tmp_path, dataset, model_dirs)
    photo = dataset.data_dir / index.photos[0].path
    code, out, err = run(core_main, ["recognize", str(photo), "--json"], capsys)
    assert code == 0, err
    answer = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in the JSON output"))
    assert answer["landmarks"] and "confidence" not in json.dumps(answer)  # no calibrated figure claimed


@pytest.fixture
def ivf_build(built_dataset: BuiltDataset, encoders, tmp_path: Path) -> Path:
    artifacts = tmp_path / "ivf"
    text_model = encoders.text.model_name
    build_index(built_dataset.data_dir, artifacts, encoders.image, text_model=text_model, index_kind="ivf")
    return artifacts


def _overwrite_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(range(64))
    path.write_bytes(bytes(data))


def _float32_vectors(path: Path) -> None:
    np.save(path, np.load(path).astype(np.float32))


def _manifest_edit(key: str, value: object):
    def edit(location: Path) -> None:
        path = location / "manifest.json"
        manifest = json.loads(path.read_text())
        manifest["search_index"][key] = value
        path.write_text(json.dumps(manifest))

    return edit


IVF_DAMAGE = {
    "overwritten index bytes": (lambda location: _overwrite_middle(location / "index.faiss"), "checksum"),
    "float32 vectors": (lambda location: _float32_vectors(location / "vectors.f16.npy"), "float16"),
    "nprobe 10**12": (_manifest_edit("nprobe", 10**12), "nprobe"),
    "flat over an ivf file": (_manifest_edit("kind", "flat"), "says flat"),
    "unknown kind": (_manifest_edit("kind", "hnsw"), "kind"),
}


@pytest.mark.parametrize("damage", list(IVF_DAMAGE))
def test_a_damaged_ivf_build_is_refused_at_load_in_one_line(ivf_build: Path, damage: str) -> None:
    """Overwritten bytes loaded and answered, float32 vectors answered from garbage, nprobe 10¹² was a
    MemoryError traceback, a "flat" manifest over an IVF file a RuntimeError at the first query."""
    assert PhotoIndex.load(ivf_build).search_info.sha256  # the build recorded the checksum
    harm, expected = IVF_DAMAGE[damage]
    harm(resolve_build(ivf_build))
    with pytest.raises(ArtifactsError, match=expected) as refused:
        PhotoIndex.load(ivf_build)
    assert "\n" not in str(refused.value) and "rebuild" in str(refused.value)
