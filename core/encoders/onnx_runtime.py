"""Encoders on ONNX Runtime, from the folder `python -m prep export-onnx` writes (MODEL_DIR).

Nothing here imports torch, transformers or sentence-transformers: a serving process on this
backend holds only ONNX Runtime, the `tokenizers` library, NumPy and Pillow. The folder's format
is owned by `core.encoders.onnx_folder`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.encoders.base import clip_queries, normalise_rows
from core.encoders.onnx_folder import TOKENIZER, OnnxManifest, OnnxModelsError
from core.preprocess import ClipPreprocessing

# Said by the interior check when it cannot run on this runtime.
NO_PROMPT_TOWER = "the ONNX export has no CLIP text tower for zero-shot prompts: run it with ENCODER_BACKEND=torch"


def _session(path: Path, threads: int, single_batch: bool = False) -> Any:
    import onnxruntime as ort

    if not path.is_file():
        raise OnnxModelsError(f"{path} is missing: export again with `python -m prep export-onnx`")

    options = session_options(threads)
    if single_batch:
        # A fixed batch of one lets ONNX Runtime fold the export's shape arithmetic away at load
        # (~5 % per photo, measured); batches gained little anyway, at M = 50 tokens per image the
        # int8 GEMMs already run at full speed (index builds: ~10 % slower one by one).
        options.add_free_dimension_override_by_name("batch", 1)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def session_options(threads: int) -> Any:
    """How every ONNX Runtime session here runs (the benchmark's probe too)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Pool threads spin between the operators of one run (measured ~10 % faster per photo than
    # sleeping), but stop when the run ends: idle spinning would take a small VPS's cores from the
    # other session (image vs text), the other worker and the event loop for ~50 ms after every query.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    return options


class OnnxImageEncoder:
    encode_prompts = None
    prompts_unavailable = NO_PROMPT_TOWER

    def __init__(self, model_dir: Path, threads: int = 1, precision: str | None = None) -> None:
        manifest = OnnxManifest.read(model_dir)
        self.precision, exported = manifest.choose("image", precision)
        self.model_name = manifest.image_model
        self.fingerprint = manifest.image_fingerprint
        self.dim = manifest.dim
        self.cache_key = manifest.image_cache_key(self.precision)
        self._preprocess = ClipPreprocessing.from_dict(manifest.preprocess)
        # Fixing the batch at one pays for int8 (~5 % faster, 19 MB less RSS) but not for fp32, where
        # ONNX Runtime then keeps ~100 MB more (both measured on ViT-B/32).
        self._session = _session(model_dir / exported.file, threads, single_batch=self.precision != "fp32")

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        outputs = [self._session.run(None, {"pixel_values": self._preprocess([image])})[0] for image in images]
        return normalise_rows(np.concatenate(outputs))


class OnnxTextEncoder:
    def __init__(self, model_dir: Path, threads: int = 1, precision: str | None = None) -> None:
        from tokenizers import Tokenizer

        manifest = OnnxManifest.read(model_dir)
        self.precision, exported = manifest.choose("text", precision)
        self.model_name = manifest.text_model
        self.dim = manifest.dim
        self._tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER))
        self._tokenizer.enable_truncation(max_length=manifest.text_max_length)
        self._tokenizer.enable_padding(pad_id=self._tokenizer.token_to_id("[PAD]") or 0)
        self._session = _session(model_dir / exported.file, threads)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(clip_queries(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return normalise_rows(self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0])
