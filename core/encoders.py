"""Encoders turn photos and texts into L2-normalised vectors of one shared CLIP space.

The rest of the code sees only the two Protocols, so the runtime behind them
(sentence-transformers on PyTorch here, ONNX Runtime later) can change freely.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from core.settings import Settings

log = logging.getLogger(__name__)

# Characters kept from a text query before tokenising; the model sees at most 128 tokens anyway,
# and cutting early keeps a 4096-character message from costing a long tokenisation.
MAX_QUERY_CHARS = 1000
IMAGE_BATCH_SIZE = 32


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says which and why in one line."""


@runtime_checkable
class ImageEncoder(Protocol):
    model_name: str  # what the index manifest records and checks
    cache_key: str  # embedding-cache key: differs for runtimes whose vectors differ (int8)
    dim: int

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, dim) float32, rows L2-normalised."""
        ...


@runtime_checkable
class TextEncoder(Protocol):
    model_name: str
    dim: int

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, rows L2-normalised."""
        ...


def model_id(name_or_path: str) -> str:
    """A stable name for a model, used to tell whether artifacts match it.

    A local folder is known by its folder name (so moving it does not invalidate the index);
    `sentence-transformers/x` and `x` are the same hub model.
    """
    path = Path(name_or_path)
    if path.is_dir():
        return path.resolve().name
    return name_or_path.removeprefix("sentence-transformers/")


def _load_sentence_transformer(name_or_path: str):
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.disable_progress_bar()  # the per-load "Loading weights" bar

    try:
        return SentenceTransformer(name_or_path, device="cpu")
    except Exception as exc:  # the library raises many types (OSError, ValueError, HF errors)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ModelLoadError(f"cannot load model {name_or_path!r}: {first_line}") from exc


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class SentenceTransformerImageEncoder:
    """CLIP image tower through sentence-transformers (PyTorch)."""

    def __init__(self, name_or_path: str) -> None:
        self.model_name = self.cache_key = model_id(name_or_path)
        self._model = _load_sentence_transformer(name_or_path)
        self.dim = int(self._model.get_embedding_dimension())

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(images), batch_size=IMAGE_BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False
        )
        return normalise_rows(vectors)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """CLIP's own (English) text tower: for zero-shot prompts, not for user queries."""
        vectors = self._model.encode(list(texts), convert_to_numpy=True, show_progress_bar=False)
        return normalise_rows(vectors)


class SentenceTransformerTextEncoder:
    """Multilingual text encoder aligned to CLIP's image space, through sentence-transformers."""

    def __init__(self, name_or_path: str) -> None:
        self.model_name = model_id(name_or_path)
        self._model = _load_sentence_transformer(name_or_path)
        self.dim = int(self._model.get_embedding_dimension())

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        clipped = [text[:MAX_QUERY_CHARS] for text in texts]
        vectors = self._model.encode(clipped, convert_to_numpy=True, show_progress_bar=False)
        return normalise_rows(vectors)


def limit_threads(threads: int) -> None:
    """Threads each inference may use, once the models are loaded. Serving runs queries in several
    worker threads, so each gets a share of the cores; FAISS answers one query faster on one thread.
    torch is only touched if the torch backend already loaded it (importing it costs ~200 MB)."""
    import sys

    import faiss

    faiss.omp_set_num_threads(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(max(1, threads))


def use_onnx(settings: Settings) -> bool:
    """Which runtime ENCODER_BACKEND asks for (auto: ONNX when an export of these models exists)."""
    if settings.encoder_backend == "torch":
        return False
    from core.onnx_encoders import OnnxManifest, OnnxModelsError

    try:
        manifest = OnnxManifest.read(settings.onnx_dir)
    except OnnxModelsError as exc:
        if settings.encoder_backend == "onnx":
            raise ModelLoadError(f"ENCODER_BACKEND=onnx: {exc}") from None
        return False
    matches = (manifest.image_model, manifest.text_model) == (
        model_id(settings.image_model),
        model_id(settings.text_model),
    )
    if not matches and settings.encoder_backend == "onnx":
        raise ModelLoadError(
            f"the ONNX models in {settings.onnx_dir}/ were exported from {manifest.image_model} and "
            f"{manifest.text_model}, not from IMAGE_MODEL/TEXT_MODEL: export again with `python -m prep export-onnx`"
        )
    if not matches:
        log.warning("ONNX models in %s are for other models; using torch", settings.onnx_dir)
    return matches


def load_image_encoder(settings: Settings) -> ImageEncoder:
    if use_onnx(settings):
        from core.onnx_encoders import OnnxImageEncoder

        return OnnxImageEncoder(settings.onnx_dir, settings.inference_threads)
    return SentenceTransformerImageEncoder(settings.image_model)


def load_text_encoder(settings: Settings) -> TextEncoder:
    if use_onnx(settings):
        from core.onnx_encoders import OnnxTextEncoder

        return OnnxTextEncoder(settings.onnx_dir, settings.inference_threads)
    return SentenceTransformerTextEncoder(settings.text_model)
