"""Where prep embeds (issue #35): --device auto|cpu|cuda, fp16 GPU vectors under their own cache key,
and every core decoding for the GPU. No GPU here: the GPU branch is reached by telling the resolver one
exists, never by pretending torch can run on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import Settings, content_hash
from core.embedding_cache import EmbeddingCache, PhotoToEmbed, decode_all, embed_missing
from core.encoders import ModelLoadError, choose_runtime, resolve_device
from core.encoders import devices as device_module
from core.encoders import loading as loading_module
from prep.__main__ import main as prep_main
from tests.helpers.cli import run, use_environment
from tests.helpers.datagen import jpeg_bytes, scene


def test_auto_is_the_cpu_without_a_gpu_and_cuda_there_is_one_line() -> None:
    assert resolve_device("cpu") == "cpu" and resolve_device("auto") == "cpu"
    with pytest.raises(ModelLoadError, match=r"^--device cuda: torch .* sees no CUDA GPU; use --device cpu$"):
        resolve_device("cuda")
    with pytest.raises(ModelLoadError, match="--device must be one of auto, cpu, cuda"):
        resolve_device("tpu")


def test_a_driver_without_a_usable_gpu_still_gives_the_cpu_for_auto(monkeypatch) -> None:
    monkeypatch.setattr(device_module, "_nvidia_driver", lambda: True)  # a driver, but torch sees no GPU
    assert resolve_device("auto") == "cpu"


def test_a_gpu_embeds_through_torch_in_fp16_under_its_own_cache_key(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(loading_module, "resolve_device", lambda wanted: "cuda" if wanted != "cpu" else "cpu")
    settings = Settings(artifacts_dir=tmp_path / "artifacts", image_model="clip-ViT-B-32", model_dir=tmp_path)
    gpu, cpu = choose_runtime(settings, "auto"), choose_runtime(settings, "cpu")
    assert gpu.name == "torch" and gpu.device == "cuda" and cpu.device == "cpu"
    assert gpu.image_cache_key().endswith("#fp16-cuda") and "#" not in cpu.image_cache_key()
    with pytest.raises(ModelLoadError, match="ENCODER_BACKEND=onnx runs on the CPU"):
        choose_runtime(Settings(encoder_backend="onnx", model_dir=tmp_path), "cuda")


def test_prep_build_with_device_cuda_and_no_gpu_is_one_line_before_any_model_loads(
    monkeypatch, tmp_path, built_dataset, model_dirs, capsys
) -> None:
    use_environment(monkeypatch, tmp_path, built_dataset.copy_to(tmp_path / "copy"), model_dirs)
    code, out, err = run(prep_main, ["build", "--device", "cuda", "--force"], capsys)
    assert code == 2 and err.count("\n") == 1 and "--device cuda" in err and "Traceback" not in err


def _photos(tmp_path: Path, count: int) -> list[PhotoToEmbed]:
    photos = []
    for k in range(count):
        path = tmp_path / f"p{k}.jpg"
        path.write_bytes(jpeg_bytes(scene(k, k)) if k != 3 else b"not a jpeg")
        photos.append(PhotoToEmbed(content_hash(path.read_bytes()), path, path.name))
    return photos


def test_many_decoders_give_the_same_images_in_the_same_order(tmp_path: Path) -> None:
    photos = _photos(tmp_path, 9)
    one, many = decode_all(photos, 1), decode_all(photos, 4)
    assert isinstance(many[3], Exception) and isinstance(one[3], Exception)
    for a, b in zip(one, many, strict=True):
        if isinstance(a, Image.Image):
            assert isinstance(b, Image.Image) and np.array_equal(np.asarray(a), np.asarray(b))


def test_an_encoder_on_a_gpu_gets_every_core_decoding_and_the_same_vectors(tmp_path: Path, encoders) -> None:
    photos = _photos(tmp_path, 7)

    class OnTheGpu:  # the CPU encoder, saying it runs on a GPU: embed_missing then decodes in threads
        device, dim, cache_key = "cuda", encoders.image.dim, "gpu-test"

        def encode_images(self, images):
            return encoders.image.encode_images(images)

    with EmbeddingCache(tmp_path / "a.sqlite") as serial, EmbeddingCache(tmp_path / "b.sqlite") as threaded:
        expected = embed_missing(encoders.image, serial, photos)
        got = embed_missing(OnTheGpu(), threaded, photos)  # type: ignore[arg-type]
    assert set(got.vectors) == set(expected.vectors) and len(got.skipped) == 1 == len(expected.skipped)
    for sha, vector in expected.vectors.items():
        assert np.allclose(got.vectors[sha], vector, atol=1e-6)
