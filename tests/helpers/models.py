"""Types and constants of the shared, session-wide test data (the fixtures are in tests/conftest.py)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.encoders.torch_runtime import SentenceTransformerImageEncoder, SentenceTransformerTextEncoder

# The shared dataset: landmarks per city and photos per landmark. Small enough to build in seconds.
CITIES = {"EKB": 8, "NN": 6}
PHOTOS_PER_LANDMARK = 6
BACKENDS = ("torch", "onnx")


@dataclass(frozen=True)
class ModelDirs:
    clip: Path
    text: Path


@dataclass(frozen=True)
class Encoders:
    image: object  # ImageEncoder
    text: object  # TextEncoder


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


def torch_encoders(models: ModelDirs) -> Encoders:
    return Encoders(SentenceTransformerImageEncoder(str(models.clip)), SentenceTransformerTextEncoder(str(models.text)))


def encoders_for(request: pytest.FixtureRequest, backend: str) -> Encoders:
    """The encoders of one runtime, both behind the same Protocols."""
    from core.encoders.onnx_runtime import OnnxImageEncoder, OnnxTextEncoder

    if backend == "torch":
        return request.getfixturevalue("encoders")
    folder = request.getfixturevalue("onnx_dir")
    return Encoders(OnnxImageEncoder(folder), OnnxTextEncoder(folder))
