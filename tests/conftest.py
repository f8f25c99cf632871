"""Session-wide heavy fixtures: tiny offline models (built once) and a generated, indexed dataset."""

from __future__ import annotations

import os

# Before anything imports huggingface_hub: no test may reach for the hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.encoders import SentenceTransformerImageEncoder, SentenceTransformerTextEncoder, model_id
from core.index import build_index
from core.settings import Settings
from prep.ingest import ingest
from prep.random_models import build_clip, build_multilingual
from tests.datagen import make_raw_dataset

# The shared dataset: landmarks per city and photos per landmark. Small enough to build in seconds.
CITIES = {"EKB": 8, "NN": 6}
PHOTOS_PER_LANDMARK = 6


@dataclass(frozen=True)
class ModelDirs:
    clip: Path
    text: Path


@dataclass(frozen=True)
class Encoders:
    image: SentenceTransformerImageEncoder
    text: SentenceTransformerTextEncoder


@dataclass(frozen=True)
class BuiltDataset:
    raw_dir: Path
    data_dir: Path
    artifacts_dir: Path
    names: dict[str, list[str]]

    def copy_to(self, target: Path) -> BuiltDataset:
        """A private, writable copy for tests that change the dataset or the artifacts."""
        shutil.copytree(self.data_dir, target / "data")
        shutil.copytree(self.artifacts_dir, target / "artifacts", symlinks=True)
        return BuiltDataset(self.raw_dir, target / "data", target / "artifacts", self.names)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> ModelDirs:
    root = tmp_path_factory.mktemp("models")
    return ModelDirs(build_clip(root / "clip-ViT-B-32"), build_multilingual(root / "clip-ViT-B-32-multilingual-v1"))


@pytest.fixture(scope="session")
def encoders(model_dirs: ModelDirs) -> Encoders:
    return Encoders(
        SentenceTransformerImageEncoder(str(model_dirs.clip)), SentenceTransformerTextEncoder(str(model_dirs.text))
    )


@pytest.fixture(scope="session")
def built_dataset(tmp_path_factory: pytest.TempPathFactory, model_dirs: ModelDirs, encoders: Encoders) -> BuiltDataset:
    root = tmp_path_factory.mktemp("dataset")
    names = make_raw_dataset(root / "raw", CITIES, PHOTOS_PER_LANDMARK)
    ingest(root / "raw", root / "data", show_progress=False)
    build_index(root / "data", root / "artifacts", encoders.image, text_model=model_id(str(model_dirs.text)))
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


BACKENDS = ("torch", "onnx")


def encoders_for(request: pytest.FixtureRequest, backend: str) -> Encoders:
    """The encoders of one runtime, both behind the same Protocols."""
    from core.onnx_encoders import OnnxImageEncoder, OnnxTextEncoder

    if backend == "torch":
        return request.getfixturevalue("encoders")
    folder = request.getfixturevalue("onnx_dir")
    return Encoders(OnnxImageEncoder(folder), OnnxTextEncoder(folder))
