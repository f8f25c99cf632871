import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.artifacts import ArtifactsError, resolve_build
from core.build import BuildInProgressError, build_index, build_lock
from core.encoders import model_id
from core.index import PhotoIndex
from tests.helpers.datagen import jpeg_bytes, scene
from tests.helpers.models import CITIES, PHOTOS_PER_LANDMARK, BuiltDataset, Encoders, ModelDirs

TOTAL = sum(CITIES.values()) * PHOTOS_PER_LANDMARK


class CountingEncoder:
    """The real encoder, counting what it is asked to embed (and optionally failing part-way)."""

    def __init__(self, inner, fail_after: int | None = None) -> None:
        self.inner, self.fail_after, self.count = inner, fail_after, 0
        self.model_name, self.cache_key, self.dim = inner.model_name, inner.cache_key, inner.dim
        self.fingerprint = inner.fingerprint

    def encode_images(self, images):
        if self.fail_after is not None and self.count + len(images) > self.fail_after:
            raise RuntimeError("simulated crash while embedding")
        self.count += len(images)
        return self.inner.encode_images(images)


@pytest.fixture
def dataset(built_dataset: BuiltDataset, tmp_path: Path) -> BuiltDataset:
    return built_dataset.copy_to(tmp_path)


def _build(dataset: BuiltDataset, encoder, model_dirs: ModelDirs, **kwargs):
    return build_index(
        dataset.data_dir, dataset.artifacts_dir, encoder, text_model=model_id(str(model_dirs.text)), **kwargs
    )


def test_built_index_layout_and_manifest(built_dataset: BuiltDataset, encoders: Encoders) -> None:
    index = PhotoIndex.load(built_dataset.artifacts_dir)
    manifest = json.loads((resolve_build(built_dataset.artifacts_dir) / "manifest.json").read_text())
    assert manifest["count"] == len(index) == TOTAL
    assert manifest["landmarks"] == sum(CITIES.values())
    assert manifest["image_model"] == encoders.image.model_name == "clip-ViT-B-32"
    assert manifest["text_model"] == "clip-ViT-B-32-multilingual-v1"
    assert manifest["dim"] == 512 and manifest["schema_version"] == 1
    assert len(manifest["dataset_fingerprint"]) == 64 and manifest["built_at"]
    vectors = index.vectors()
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert all(index.photo_path(i).is_file() for i in range(len(index)))
    assert {p.xid for p in index.photos} == set(index.landmarks)


def test_search_returns_the_photo_itself_first(built_dataset: BuiltDataset) -> None:
    index = PhotoIndex.load(built_dataset.artifacts_dir)
    similarities, rows = index.search(index.vectors()[:3], k=4)
    assert rows[:, 0].tolist() == [0, 1, 2]
    assert np.allclose(similarities[:, 0], 1.0, atol=1e-4)
    _, rows = index.search(index.vectors()[:1], k=10_000)  # k beyond the index size is clamped
    assert rows.shape == (1, TOTAL)


def test_rebuild_with_nothing_changed_embeds_nothing(dataset, encoders, model_dirs) -> None:
    encoder = CountingEncoder(encoders.image)
    report = _build(dataset, encoder, model_dirs)
    assert report.up_to_date and report.embedded == 0 and encoder.count == 0
    forced = _build(dataset, encoder, model_dirs, force=True)
    assert not forced.up_to_date and forced.embedded == 0 and forced.from_cache == TOTAL and encoder.count == 0


def test_adding_and_removing_photos_embeds_only_the_new_ones(dataset, encoders, model_dirs) -> None:
    encoder = CountingEncoder(encoders.image)
    index = PhotoIndex.load(dataset.artifacts_dir)
    first = index.photos[0]
    folder = dataset.data_dir / Path(first.path).parent
    (folder / "new_1.jpg").write_bytes(jpeg_bytes(scene(0, 101)))
    (folder / "new_2.jpg").write_bytes(jpeg_bytes(scene(0, 102)))
    (dataset.data_dir / index.photos[-1].path).unlink()

    report = _build(dataset, encoder, model_dirs)
    assert encoder.count == 2 and report.embedded == 2
    assert report.photos == TOTAL + 1
    rebuilt = PhotoIndex.load(dataset.artifacts_dir)
    paths = {p.path for p in rebuilt.photos}
    assert f"{Path(first.path).parent.as_posix()}/new_1.jpg" in paths
    assert index.photos[-1].path not in paths


def test_unreadable_and_orphan_photos_are_skipped_not_fatal(dataset, encoders, model_dirs) -> None:
    folder = dataset.data_dir / Path(PhotoIndex.load(dataset.artifacts_dir).photos[0].path).parent
    (folder / "broken.jpg").write_bytes(jpeg_bytes(scene(0, 7))[:500])
    orphan = dataset.data_dir / "images" / "EKB" / "Q_NOT_IN_PLACES"
    orphan.mkdir()
    (orphan / "x.jpg").write_bytes(jpeg_bytes(scene(3, 3)))
    report = _build(dataset, encoders.image, model_dirs)
    reasons = dict(report.skipped)
    assert len(reasons) == 2 and report.photos == TOTAL
    assert any("unreadable" in r for r in reasons.values())
    assert any("not in places.csv" in r for r in reasons.values())


def test_failed_build_leaves_the_previous_index_loadable(dataset, encoders, model_dirs) -> None:
    before = PhotoIndex.load(dataset.artifacts_dir)
    folder = dataset.data_dir / Path(before.photos[0].path).parent
    for i in range(40):
        (folder / f"more_{i}.jpg").write_bytes(jpeg_bytes(scene(0, 200 + i)))
    with pytest.raises(RuntimeError, match="simulated crash"):
        _build(dataset, CountingEncoder(encoders.image, fail_after=35), model_dirs)
    after = PhotoIndex.load(dataset.artifacts_dir)
    assert after.location == before.location and len(after) == TOTAL
    assert not [p for p in (dataset.artifacts_dir / "builds").iterdir() if p.name.startswith(".tmp")]

    # What was embedded before the crash is kept: the next build only embeds the rest.
    encoder = CountingEncoder(encoders.image)
    report = _build(dataset, encoder, model_dirs)
    assert report.photos == TOTAL + 40 and encoder.count == 40 - 32


def test_second_concurrent_build_is_refused(dataset, encoders, model_dirs) -> None:
    with build_lock(dataset.artifacts_dir):
        with pytest.raises(BuildInProgressError):
            _build(dataset, encoders.image, model_dirs, force=True)


def test_only_two_builds_are_kept(dataset, encoders, model_dirs) -> None:
    for _ in range(3):
        _build(dataset, encoders.image, model_dirs, force=True)
    assert len(list((dataset.artifacts_dir / "builds").iterdir())) == 2
    PhotoIndex.load(dataset.artifacts_dir)


def test_missing_other_model_and_other_schema_give_clear_errors(dataset, tmp_path) -> None:
    with pytest.raises(ArtifactsError, match="prep build"):
        PhotoIndex.load(tmp_path / "empty")
    index = PhotoIndex.load(dataset.artifacts_dir)
    with pytest.raises(ArtifactsError, match="IMAGE_MODEL"):
        index.check_models("clip-ViT-L-14")
    manifest_path = resolve_build(dataset.artifacts_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps(manifest | {"schema_version": 99}))
    with pytest.raises(ArtifactsError, match="schema version 99"):
        PhotoIndex.load(dataset.artifacts_dir)


def test_damaged_index_file_is_reported(dataset) -> None:
    (resolve_build(dataset.artifacts_dir) / "index.faiss").write_bytes(b"garbage")
    with pytest.raises(ArtifactsError, match="damaged"):
        PhotoIndex.load(dataset.artifacts_dir)


def test_moved_data_dir_can_be_given_explicitly(dataset, tmp_path) -> None:
    moved = tmp_path / "moved"
    shutil.move(dataset.data_dir, moved)
    index = PhotoIndex.load(dataset.artifacts_dir)
    assert index.photo_path(0, moved).is_file()


def test_the_photo_table_is_memory_mapped_from_columns_beside_photos_csv(dataset: BuiltDataset) -> None:
    """Issue #35: ~100 B a photo on the heap (10 M photos: ~1 GB before the models). The loaded index maps
    the columns; photos.csv stays for people and for builds made before them."""
    import csv

    location = resolve_build(dataset.artifacts_dir)
    index = PhotoIndex.load(dataset.artifacts_dir)
    assert isinstance(index.photos.xid_codes, np.memmap)
    with (location / "photos.csv").open(encoding="utf-8") as f:
        rows = [(r["path"], r["xid"], r["sha256"]) for r in csv.DictReader(f)]
    assert [(p.path, p.xid, p.sha256) for p in index.photos] == rows
    assert index.photos_of(rows[0][1]) and index.has_photos(rows[-1][1])
    shutil.rmtree(location / "photos")  # a build from before the columns
    older = PhotoIndex.load(dataset.artifacts_dir)
    assert [(p.path, p.xid, p.sha256) for p in older.photos] == rows and not isinstance(
        older.photos.xid_codes, np.memmap
    )


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: np.save(folder / "xid_codes.npy", np.load(folder / "xid_codes.npy").astype(np.int64)),
        lambda folder: np.save(folder / "xid_codes.npy", np.load(folder / "xid_codes.npy") + 10_000),
        lambda folder: np.save(folder / "ends.npy", np.load(folder / "ends.npy")[:-1]),
        lambda folder: (folder / "paths.bin").write_bytes((folder / "paths.bin").read_bytes()[:-3]),
        lambda folder: (folder / "xids.json").write_text('{"not": "a list"}'),
    ],
    ids=["dtype", "codes past the landmarks", "a row short", "paths cut", "xids not a list"],
)
def test_damaged_photo_columns_are_refused_at_load(dataset: BuiltDataset, damage) -> None:
    damage(resolve_build(dataset.artifacts_dir) / "photos")
    with pytest.raises(ArtifactsError, match="damaged|inconsistent"):
        PhotoIndex.load(dataset.artifacts_dir)
