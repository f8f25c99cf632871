"""The export's rewrites of the vision tower compute what CLIP computes."""

import pytest
import torch

from prep.export_onnx import _patch_embedding_as_matmul, _VisionTower


@pytest.fixture(scope="module")
def clip(model_dirs):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dirs.clip), device="cpu")[0].model
    model.set_attn_implementation("eager")
    return model.eval()


def _image_features(clip, pixels: torch.Tensor) -> torch.Tensor:
    features = clip.get_image_features(pixel_values=pixels)
    return getattr(features, "pooler_output", features)


def test_vision_tower_matches_clip_image_features(clip) -> None:
    pixels = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = _image_features(clip, pixels)
        tower = _VisionTower(clip).eval()
        plain = tower(pixels)
        with _patch_embedding_as_matmul(clip.vision_model.embeddings):
            rewritten = tower(pixels)
        after = _image_features(clip, pixels)
    assert torch.allclose(plain, expected, atol=1e-5)
    assert torch.allclose(rewritten, expected, atol=1e-5)
    # The swap is undone: the model sentence-transformers keeps using is the original one.
    assert isinstance(clip.vision_model.embeddings.patch_embedding, torch.nn.Conv2d)
    assert torch.equal(after, expected)
