"""Encoders on sentence-transformers (PyTorch): the runtime `prep` embeds and exports with.

torch and sentence-transformers are imported only when a model is loaded here, so a serving
process on the ONNX runtime never pays for them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from core.encoders.base import ModelLoadError, PromptEncoder, cache_key_for, clip_queries, model_id, normalise_rows
from core.encoders.devices import CUDA_VARIANT, GPU_IMAGE_BATCH
from core.encoders.fingerprint import model_fingerprint, model_folder

IMAGE_BATCH_SIZE = 32


def load_sentence_transformer(name_or_path: str, device: str = "cpu") -> Any:
    try:
        import transformers
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ModelLoadError(
            f"the torch runtime needs the prep extra ({exc.name} is missing): pip install '.[prep]', "
            "or export ONNX models and set ENCODER_BACKEND=onnx"
        ) from None

    transformers.logging.disable_progress_bar()  # the per-load "Loading weights" bar
    # Once downloaded, a hub model loads from its cached folder: no hub request, no minute of retries
    # when the network is down at start-up.
    local = model_folder(name_or_path)
    try:
        return SentenceTransformer(str(local) if local is not None else name_or_path, device=device)
    except Exception as exc:  # the library raises many types (OSError, ValueError, HF errors)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ModelLoadError(f"cannot load model {name_or_path!r}: {first_line}") from exc


class SentenceTransformerImageEncoder:
    """CLIP image tower through sentence-transformers, with CLIP's own text tower for zero-shot prompts."""

    prompts_unavailable = ""

    def __init__(self, name_or_path: str, device: str = "cpu") -> None:
        self.model_name = model_id(name_or_path)
        self.device = device
        self._model = load_sentence_transformer(name_or_path, device)
        self._batch = IMAGE_BATCH_SIZE
        variant = ""
        if device == "cuda":  # fp16 and large batches: the GPU's own speed (core.encoders.devices)
            self._model.half()
            self._batch, variant = GPU_IMAGE_BATCH, CUDA_VARIANT
        # After loading: a hub model is in the local cache now.
        self.fingerprint = model_fingerprint(name_or_path)
        self.cache_key = cache_key_for(self.model_name, self.fingerprint, variant)
        self.dim = int(self._model.get_embedding_dimension())
        self.encode_prompts: PromptEncoder | None = self._encode_prompts

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(images), batch_size=self._batch, convert_to_numpy=True, show_progress_bar=False
        )
        return normalise_rows(np.asarray(vectors, dtype=np.float32))

    def _encode_prompts(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(list(texts), convert_to_numpy=True, show_progress_bar=False)
        return normalise_rows(vectors)


class SentenceTransformerTextEncoder:
    """Multilingual text encoder aligned to CLIP's image space, through sentence-transformers."""

    def __init__(self, name_or_path: str) -> None:
        self.model_name = model_id(name_or_path)
        self._model = load_sentence_transformer(name_or_path)
        self.dim = int(self._model.get_embedding_dimension())

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(clip_queries(texts), convert_to_numpy=True, show_progress_bar=False)
        return normalise_rows(vectors)


def set_torch_threads(threads: int) -> None:
    """Only if this runtime already loaded torch (importing it just for this costs ~200 MB)."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(max(1, threads))
