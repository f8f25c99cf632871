"""The place tower's first room (issue #34): a DINOv2 stand-in in the Hub repo's layout, loaded and run
by the production code, with preprocessing that matches transformers' own processor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.encoders import ModelLoadError
from core.encoders.place_torch import TorchPlaceEncoder
from prep.random_models import PLACE_PROCESSOR, build_place_model
from tests.helpers.datagen import scene


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
