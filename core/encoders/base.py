"""What every runtime's encoders are: L2-normalised vectors of one shared CLIP space.

The rest of the code sees only these Protocols, so the runtime behind them (sentence-transformers
on PyTorch, or ONNX Runtime) is chosen once, in `core.encoders.loading`, and changes nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from core.errors import GuideError

# Characters kept from a text query before tokenising; the model sees at most 128 tokens anyway,
# and cutting early keeps a 4096-character message from costing a long tokenisation.
MAX_QUERY_CHARS = 1000

# CLIP's own (English) text tower, for zero-shot prompts (the interior check), not for user queries.
PromptEncoder = Callable[[Sequence[str]], np.ndarray]


class ModelLoadError(GuideError, RuntimeError):
    """A model could not be loaded; the message says which and why in one line."""


@runtime_checkable
class ImageEncoder(Protocol):
    model_name: str  # what the index manifest records and checks
    fingerprint: str  # the model's content (core.encoders.fingerprint); "" if unknown
    cache_key: str  # embedding-cache key: name, content, and runtime where vectors differ (int8)
    dim: int
    # Zero-shot text scoring against these image vectors, or None where the runtime lacks the
    # image model's text tower; `prompts_unavailable` then says why.
    prompts_unavailable: str

    @property
    def encode_prompts(self) -> PromptEncoder | None: ...

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


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def clip_queries(texts: Sequence[str]) -> list[str]:
    return [text[:MAX_QUERY_CHARS] for text in texts]


def cache_key_for(model_name: str, fingerprint: str, variant: str = "") -> str:
    """Embedding-cache key: the same name with other weights, or int8 vectors, never share entries."""
    key = f"{model_name}@{fingerprint[:12]}" if fingerprint else model_name
    return f"{key}#{variant}" if variant else key
