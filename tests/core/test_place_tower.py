"""The place tower's first room (issue #34): a DINOv2 stand-in in the Hub repo's layout, loaded and run
by the production code, with preprocessing that matches transformers' own processor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core import decode_image
from core.encoders import ModelLoadError
from core.encoders.place_torch import TorchPlaceEncoder
from prep.random_models import PLACE_PROCESSOR, build_place_model
from tests.helpers.datagen import jpeg_bytes, scene


@pytest.fixture(scope="module")
def place_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_place_model(tmp_path_factory.mktemp("models") / "dinov2-small")


def test_the_stand_in_has_the_hub_repos_files_and_loads_as_dinov2(place_dir: Path) -> None:
    from transformers import AutoConfig, AutoImageProcessor

    files = sorted(p.name for p in place_dir.iterdir())
    assert files == ["config.json", "model.safetensors", "preprocessor_config.json"]
    assert AutoConfig.from_pretrained(place_dir).model_type == "dinov2"
    assert type(AutoImageProcessor.from_pretrained(place_dir)).__name__.startswith("BitImageProcessor")


def test_our_preprocessing_is_the_models_own_processor_and_the_vectors_follow(place_dir: Path) -> None:
    from transformers import AutoImageProcessor, AutoModel

    encoder = TorchPlaceEncoder(str(place_dir))
    images = [scene(k, k, (640, 480)) for k in range(3)] + [scene(5, 1, (300, 500))]
    ours = encoder.preprocess(images)
    theirs = AutoImageProcessor.from_pretrained(place_dir)(images=images, return_tensors="np")["pixel_values"]
    assert ours.shape == theirs.shape == (4, 3, 224, 224) and np.abs(ours - theirs).max() < 1e-5
    model = AutoModel.from_pretrained(place_dir).eval()
    with torch.inference_mode():
        expected = model(pixel_values=torch.from_numpy(theirs)).pooler_output.numpy()
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    vectors = encoder.encode_images(images)
    assert vectors.shape == (4, encoder.dim) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert float(np.min(np.sum(vectors * expected, axis=1))) > 0.999


def test_it_is_known_by_content_and_tells_photos_apart(place_dir: Path, tmp_path: Path) -> None:
    encoder = TorchPlaceEncoder(str(place_dir))
    assert encoder.model_name == "dinov2-small" and len(encoder.fingerprint) == 64
    assert encoder.cache_key.startswith("dinov2-small@") and encoder.encode_prompts is None
    same = encoder.encode_images([scene(1, 0), scene(1, 0)])
    other = encoder.encode_images([scene(2, 0)])
    assert float(same[0] @ same[1]) > 0.9999 and float(same[0] @ other[0]) < 0.9999
    other_weights = TorchPlaceEncoder(str(build_place_model(tmp_path / "dinov2-small", seed=1)))
    assert other_weights.cache_key != encoder.cache_key  # one name, other weights: never one cache entry


def test_a_place_model_that_cannot_load_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="PLACE_MODEL .*no such folder"):
        TorchPlaceEncoder(str(tmp_path / "absent"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    (broken / "preprocessor_config.json").write_text(str(PLACE_PROCESSOR).replace("'", '"'))
    with pytest.raises(ModelLoadError, match="cannot load PLACE_MODEL"):
        TorchPlaceEncoder(str(broken))


def test_a_hub_name_is_downloaded_once_into_the_cache_and_then_loads_without_the_network(
    place_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PLACE_MODEL's default is a Hub name (facebook/dinov2-small): fetched once from the Hub (here a local
    fake with the Hub's own endpoints), only the files the tower loads, then served from the cache."""
    import huggingface_hub.constants

    from tests.helpers.fake_hub import FakeHub

    hub = FakeHub({"facebook/dinov2-small": place_dir}).start()
    (place_dir / "pytorch_model.bin").write_bytes(b"the Hub repo's other copy of the weights: never fetched")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the suite runs offline
    try:
        downloaded = TorchPlaceEncoder("facebook/dinov2-small")
        # A download cut short (the weights missing from the snapshot) is completed, not loaded half.
        snapshot = next((tmp_path / "hf" / "hub").glob("models--facebook--dinov2-small/snapshots/*"))
        (snapshot / "model.safetensors").unlink()
        TorchPlaceEncoder("facebook/dinov2-small")
        assert (snapshot / "model.safetensors").is_file()
    finally:
        hub.stop()
        (place_dir / "pytorch_model.bin").unlink()
    fetched = sorted(r.rsplit("/", 1)[1] for r in hub.requests if r.startswith("GET /facebook/"))
    assert fetched == ["config.json", "model.safetensors", "preprocessor_config.json"]  # the cut one: from its blob
    photo = decode_image(jpeg_bytes(scene(2, 5)))
    local = TorchPlaceEncoder(str(place_dir))
    assert np.allclose(downloaded.encode_images([photo]), local.encode_images([photo]), atol=1e-6)
    assert downloaded.model_name == "facebook/dinov2-small" and downloaded.fingerprint == local.fingerprint
    asked = len(hub.requests)
    assert TorchPlaceEncoder("facebook/dinov2-small").fingerprint == local.fingerprint  # the Hub is down now
    assert len(hub.requests) == asked
    # Not in the cache and the Hub out of reach (offline, or no such repository): one line naming the way out.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match="PLACE_MODEL 'facebook/dinov2-small' is not downloaded") as refused:
        TorchPlaceEncoder("facebook/dinov2-small")
    assert "PLACE_MODEL=none" in str(refused.value) and "\n" not in str(refused.value)


def test_a_build_with_the_place_tower_keeps_its_own_index_and_adds_only_its_vectors(
    place_dir: Path, built_dataset, encoders, tmp_path: Path
) -> None:
    from core.artifacts import PLACE_DIR, resolve_build
    from core.build import build_index
    from core.index import PhotoIndex

    dataset = built_dataset.copy_to(tmp_path)
    place = TorchPlaceEncoder(str(place_dir))
    text_model = encoders.text.model_name
    clip_only = build_index(dataset.data_dir, dataset.artifacts_dir, encoders.image, text_model=text_model)
    assert clip_only.place_model == "" and not (resolve_build(dataset.artifacts_dir) / PLACE_DIR).exists()
    both = build_index(
        dataset.data_dir, dataset.artifacts_dir, encoders.image, text_model=text_model, place_encoder=place
    )
    assert not both.up_to_date and both.embedded == 0 and both.place_embedded == both.photos  # CLIP's: cached
    assert "place tower dinov2-small" in both.summary()
    index = PhotoIndex.load(dataset.artifacts_dir)
    assert index.towers == [index.manifest.image_model, "dinov2-small"] and index.manifest.place_dim == place.dim
    view = index.place_view()
    assert view is not None and len(view) == len(index) and view.dim == place.dim != index.dim
    row = 5
    photo = index.photo_path(row, dataset.data_dir)
    vector = place.encode_images([decode_image(photo.read_bytes(), draft=True)])
    _, rows = view.search(vector, 1)
    assert view.photos[int(rows[0][0])].sha256 == index.photos[row].sha256  # its own photo, found by its tower
    assert index.fused_calibration is not None and index.fused_calibration.features[-1] == "agreement"
    assert index.calibration is not None and len(index.calibration.features) == 3  # CLIP's own, kept beside it
    again = build_index(
        dataset.data_dir, dataset.artifacts_dir, encoders.image, text_model=text_model, place_encoder=place
    )
    assert again.up_to_date  # nothing changed, tower included
    dropped = build_index(dataset.data_dir, dataset.artifacts_dir, encoders.image, text_model=text_model)
    assert not dropped.up_to_date and PhotoIndex.load(dataset.artifacts_dir).place_view() is None


def test_prep_eval_measures_each_tower_alone_side_by_side(
    place_dir: Path, built_dataset, model_dirs, tmp_path: Path, monkeypatch, capsys
) -> None:
    from prep.__main__ import main as prep_main
    from tests.helpers.cli import run, run_json, use_environment

    use_environment(monkeypatch, tmp_path, built_dataset.copy_to(tmp_path / "copy"), model_dirs)
    monkeypatch.setenv("PLACE_MODEL", str(place_dir))
    built = run_json(prep_main, ["build", "--force"], capsys)
    assert built["place_model"] == "dinov2-small" and built["place_embedded"] == built["photos"]
    report = run_json(prep_main, ["eval", "--no-text"], capsys)
    assert set(report["towers"]) == {"clip-ViT-B-32", "dinov2-small", "fused"}
    assert report["towers"]["clip-ViT-B-32"]["top1"] == report["top1"]
    assert all(0 <= figures["top1"] <= figures["top5"] <= 1 for figures in report["towers"].values())
    # The random stand-in helps nothing: the build gives it no more of the vote than the data allows, and
    # the fused answer does not lose to CLIP alone.
    assert report["towers"]["fused"]["top1"] >= report["towers"]["clip-ViT-B-32"]["top1"]
    code, out, _ = run(prep_main, ["eval", "--no-text"], capsys)
    assert code == 0 and "each photo tower alone, and fused" in out and "dinov2-small" in out
    # Alpha query expansion, measured for CLIP and fused: the plain figures are the eval's own.
    expansion = run_json(prep_main, ["eval", "--no-text", "--query-expansion"], capsys)["query_expansion"]
    assert (
        expansion["clip"]["top1"] == report["top1"] and expansion["fused"]["top1"] == report["towers"]["fused"]["top1"]
    )
    assert all(0 <= expansion[name]["top1_expanded"] <= 1 for name in ("clip", "fused"))
    code, out, _ = run(prep_main, ["eval", "--no-text", "--query-expansion"], capsys)
    assert code == 0 and "alpha query expansion (n = 2, α = 3)" in out


def test_core_recognize_answers_with_both_towers_fused_and_names_them(
    place_dir: Path, built_dataset, model_dirs, tmp_path: Path, monkeypatch, capsys, caplog
) -> None:
    import logging

    from core.__main__ import main as core_main
    from prep.__main__ import main as prep_main
    from tests.helpers.cli import run_json, use_environment

    dataset = built_dataset.copy_to(tmp_path / "copy")
    use_environment(monkeypatch, tmp_path, dataset, model_dirs)
    monkeypatch.setenv("PLACE_MODEL", str(place_dir))
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(sorted(dataset.data_dir.glob("images/*/*/*"))[0].read_bytes())
    with caplog.at_level(logging.WARNING):  # asked for, but the index was built without it
        before = run_json(core_main, ["recognize", str(photo)], capsys)
    assert "towers" not in before and "built without it: CLIP answers alone" in caplog.text  # until a rebuild
    run_json(prep_main, ["build", "--force"], capsys)
    sure = run_json(core_main, ["recognize", str(photo)], capsys)  # a dataset photo: CLIP alone is certain
    assert sure["towers"] == ["clip-ViT-B-32"] and sure["landmarks"][0]["confidence"] >= 0.95
    photo.write_bytes(jpeg_bytes(scene(3, 77, (640, 480))))  # a new view: CLIP is not sure, both towers answer
    fused = run_json(core_main, ["recognize", str(photo)], capsys)
    assert fused["towers"] == ["clip-ViT-B-32", "dinov2-small"]
    assert set(fused["evidence"]) == {"clip-ViT-B-32", "dinov2-small"}
    assert all(set(answer) == {"xid", "score", "best_similarity"} for answer in fused["evidence"].values())
    assert 0 <= fused["landmarks"][0]["confidence"] <= 1  # the fused calibration's P(right)
    # The index holds the tower but PLACE_MODEL is off: CLIP answers alone, and says so.
    monkeypatch.setenv("PLACE_MODEL", "none")
    with caplog.at_level(logging.INFO):
        alone = run_json(core_main, ["recognize", str(photo)], capsys)
    assert "towers" not in alone and "CLIP answers alone" in caplog.text


def _export_place(place_dir: Path, out: Path):
    import warnings

    from prep.export_onnx import export_place

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings are about code paths the tower does not take
        return export_place(str(place_dir), out, int8=True)


def test_the_place_tower_exports_to_onnx_with_parity_and_serves_without_torch(place_dir: Path, tmp_path: Path) -> None:
    from core.encoders import OnnxPlaceEncoder, PlaceManifest

    results = _export_place(place_dir, tmp_path / "onnx" / "place")
    assert [(r.precision, r.passed) for r in results] == [("fp32", True), ("int8", True)]
    assert results[1].portable  # 7-bit weights: the same on AVX2 without VNNI
    manifest = PlaceManifest.read(tmp_path / "onnx" / "place")
    assert manifest.model == "dinov2-small" and set(manifest.files) == {"fp32", "int8"}
    torch_tower, images = TorchPlaceEncoder(str(place_dir)), [scene(k, k) for k in range(4)]
    for precision, required in (("fp32", 0.999), ("int8", 0.99)):
        onnx_tower = OnnxPlaceEncoder(tmp_path / "onnx" / "place", precision=precision)
        cosines = np.sum(onnx_tower.encode_images(images) * torch_tower.encode_images(images), axis=1)
        assert float(cosines.min()) >= required, precision
    served = OnnxPlaceEncoder(tmp_path / "onnx" / "place")
    assert served.precision == "int8" and served.cache_key.startswith("dinov2-small@") and "#int8@" in served.cache_key
    assert served.fingerprint == torch_tower.fingerprint  # the same weights, known by content


def test_the_serving_runtime_answers_with_both_towers_from_their_onnx_exports(
    place_dir: Path, built_dataset, encoders, settings_for, onnx_dir: Path, tmp_path: Path, caplog
) -> None:
    import logging
    import shutil
    import threading

    from core import Guide, build_index
    from core.encoders import OnnxPlaceEncoder

    dataset = built_dataset.copy_to(tmp_path / "copy")
    model_dir = tmp_path / "onnx"
    shutil.copytree(onnx_dir, model_dir)
    _export_place(place_dir, model_dir / "place")
    text_model = encoders.text.model_name
    build_index(
        dataset.data_dir,
        dataset.artifacts_dir,
        encoders.image,
        text_model=text_model,
        place_encoder=TorchPlaceEncoder(str(place_dir)),
    )
    settings = settings_for(dataset, encoder_backend="onnx", model_dir=model_dir, place_model=str(place_dir))
    with caplog.at_level(logging.INFO):
        guide = Guide.from_settings(settings)
    assert isinstance(guide.place_encoder, OnnxPlaceEncoder)  # int8 on ONNX Runtime: what the bot serves
    assert "come from" in caplog.text  # built on torch, served int8: said, and served
    threads: list[str] = []
    place_encode = guide.place_encoder.encode_images

    def spied(images):  # the real tower, noting the thread it runs on
        threads.append(threading.current_thread().name)
        return place_encode(images)

    guide.place_encoder.encode_images = spied  # type: ignore[method-assign]
    result = guide.recognize(jpeg_bytes(scene(3, 77, (640, 480))))  # a new view: CLIP alone is not sure
    assert result.towers == ("clip-ViT-B-32", "dinov2-small") and result.confidence is not None
    # The tower ran beside CLIP, on its own thread, not after it on the caller's (its time overlaps CLIP's).
    assert len(threads) == 1 and threads[0].startswith("place-tower") and threads[0] != threading.current_thread().name


def test_the_bots_first_index_holds_the_place_tower_when_it_can_run(
    place_dir: Path, built_dataset, settings_for, tmp_path: Path
) -> None:
    """A bot started on a dataset with no index builds one (build_missing): with the tower as well, loaded
    once for the build and kept for the answers."""
    from core import Guide

    settings = settings_for(
        built_dataset, artifacts_dir=tmp_path / "artifacts", encoder_backend="torch", place_model=str(place_dir)
    )
    guide = Guide.from_settings(settings, build_missing=True)
    assert guide.index.towers == ["clip-ViT-B-32", "dinov2-small"] and guide.index.place_view() is not None
    assert isinstance(guide.place_encoder, TorchPlaceEncoder)
    result = guide.recognize(jpeg_bytes(scene(3, 77, (640, 480))))  # a new view: CLIP alone is not sure
    assert result.towers == ("clip-ViT-B-32", "dinov2-small")


def test_an_index_built_without_the_tower_gets_it_at_the_next_rebuild(
    place_dir: Path, built_dataset, settings_for, tmp_path: Path, caplog
) -> None:
    """Upgrading: PLACE_MODEL is on (the default) but the index predates the tower. CLIP answers alone and
    says so once; the tower is kept loaded, so the bot's /reindex (Guide.rebuild) adds its vectors and the
    swapped-in index answers with both."""
    import logging

    from core import Guide

    dataset = built_dataset.copy_to(tmp_path / "copy")
    settings = settings_for(dataset, encoder_backend="torch", place_model=str(place_dir))
    with caplog.at_level(logging.WARNING):
        guide = Guide.from_settings(settings)
    assert guide.index.place_view() is None and "until /reindex or `prep build` adds" in caplog.text
    assert guide.place_tower is None  # loaded, but not answering (nor credited by /about) yet
    photo = jpeg_bytes(scene(3, 77, (640, 480)))  # a new view: CLIP alone is not sure
    assert guide.recognize(photo).towers == ()
    report = guide.rebuild(dataset.data_dir, dataset.artifacts_dir)
    assert report.embedded == 0 and report.place_embedded == report.photos  # only the tower's vectors
    assert guide.recognize(photo).towers == ("clip-ViT-B-32", "dinov2-small") and guide.place_tower == "dinov2-small"
