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

log = logging.getLogger(__name__)

# Characters kept from a text query before tokenising; the model sees at most 128 tokens anyway,
# and cutting early keeps a 4096-character message from costing a long tokenisation.
MAX_QUERY_CHARS = 1000
IMAGE_BATCH_SIZE = 32


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says which and why in one line."""


@runtime_checkable
class ImageEncoder(Protocol):
    model_name: str
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
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(name_or_path, device="cpu")
    except Exception as exc:  # the library raises many types (OSError, ValueError, HF errors)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ModelLoadError(f"cannot load model {name_or_path!r}: {first_line}") from exc


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class SentenceTransformerImageEncoder:
    """CLIP image tower through sentence-transformers (PyTorch)."""

    def __init__(self, name_or_path: str) -> None:
        self.model_name = model_id(name_or_path)
        self._model = _load_sentence_transformer(name_or_path)
        self.dim = int(self._model.get_embedding_dimension())

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(images), batch_size=IMAGE_BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False
        )
        return _normalised(vectors)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """CLIP's own (English) text tower: for zero-shot prompts, not for user queries."""
        vectors = self._model.encode(list(texts), convert_to_numpy=True, show_progress_bar=False)
        return _normalised(vectors)


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
        return _normalised(vectors)


def limit_threads(threads: int) -> None:
    """Threads each inference may use. Serving runs several queries in parallel worker threads, so
    each one gets a share of the cores; FAISS answers a single query faster on one thread."""
    import faiss

    faiss.omp_set_num_threads(1)
    try:
        import torch

        torch.set_num_threads(max(1, threads))
    except ImportError:
        pass


def load_image_encoder(name_or_path: str) -> ImageEncoder:
    return SentenceTransformerImageEncoder(name_or_path)


def load_text_encoder(name_or_path: str) -> TextEncoder:
    return SentenceTransformerTextEncoder(name_or_path)
