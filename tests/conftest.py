"""Session-wide heavy fixtures: tiny offline models (built once) and a generated, indexed dataset."""

from __future__ import annotations

import os

# Before anything imports huggingface_hub: no test may reach for the hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from pathlib import Path

import pytest

from core import Settings, build_index
from prep.ingest import ingest
from prep.random_models import build_clip, build_multilingual
from tests.helpers.datagen import huge_png, make_raw_dataset
from tests.helpers.models import CITIES, PHOTOS_PER_LANDMARK, BuiltDataset, Encoders, ModelDirs, torch_encoders


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> ModelDirs:
    root = tmp_path_factory.mktemp("models")
    return ModelDirs(build_clip(root / "clip-ViT-B-32"), build_multilingual(root / "clip-ViT-B-32-multilingual-v1"))


@pytest.fixture(scope="session")
def encoders(model_dirs: ModelDirs) -> Encoders:
    return torch_encoders(model_dirs)


@pytest.fixture(scope="session")
def built_dataset(tmp_path_factory: pytest.TempPathFactory, model_dirs: ModelDirs, encoders: Encoders) -> BuiltDataset:
    root = tmp_path_factory.mktemp("dataset")
    names = make_raw_dataset(root / "raw", CITIES, PHOTOS_PER_LANDMARK)
    ingest(root / "raw", root / "data", show_progress=False)
    text = encoders.text  # as `prep build` does: text search calibrated too
    build_index(root / "data", root / "artifacts", encoders.image, text_model=text.model_name, text_encoder=text)
    return BuiltDataset(root / "raw", root / "data", root / "artifacts", names)


@pytest.fixture
def settings_for(model_dirs: ModelDirs):
    """Settings pointing at a dataset and the tiny models, as the environment would give them."""

    def make(dataset: BuiltDataset, **overrides) -> Settings:
        values = {
            "data_dir": dataset.data_dir,
            "artifacts_dir": dataset.artifacts_dir,
            "image_model": str(model_dirs.clip),
            "text_model": str(model_dirs.text),
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture(scope="session")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory, model_dirs: ModelDirs) -> Path:
    """The tiny models exported by `prep export-onnx --int8` (fp32 and int8)."""
    import warnings

    from prep.export_onnx import export

    out = tmp_path_factory.mktemp("onnx-export") / "onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export(str(model_dirs.clip), str(model_dirs.text), out, int8=True)
    return out


@pytest.fixture(scope="session")
def huge_png_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 1.5 MB PNG of 40,000 × 40,000 pixels a tourist can send as a file (made once: ~5 s)."""
    path = tmp_path_factory.mktemp("hostile") / "huge.png"
    path.write_bytes(huge_png())
    return path
