"""Encoders: photos and texts → L2-normalised vectors of one CLIP space, on torch or ONNX Runtime.

base           the Protocols, ModelLoadError, model_id
torch_runtime  sentence-transformers (prep's runtime; imports torch lazily)
onnx_runtime   ONNX Runtime (the serving runtime; no torch)
onnx_folder    the ONNX model folder format (written by `prep export-onnx`, read here)
loading        ENCODER_BACKEND resolved once: choose_runtime
fingerprint    a model folder's content, to know models by what they are, not by their name

The front door of the runtime layer: `prep export-onnx` (the ONNX folder's writer sits beside its reader)
and the benchmarks use it; everything else goes through `core`.
"""

from core.encoders.base import ImageEncoder, ModelLoadError, PromptEncoder, TextEncoder, model_id, normalise_rows
from core.encoders.fingerprint import model_fingerprint
from core.encoders.loading import Runtime, choose_runtime, limit_threads
from core.encoders.onnx_folder import TOKENIZER, ExportedFile, OnnxManifest, OnnxModelsError, model_file
from core.encoders.onnx_runtime import OnnxImageEncoder, OnnxTextEncoder, session_options

__all__ = [
    "TOKENIZER",
    "ExportedFile",
    "ImageEncoder",
    "ModelLoadError",
    "OnnxImageEncoder",
    "OnnxManifest",
    "OnnxModelsError",
    "OnnxTextEncoder",
    "PromptEncoder",
    "Runtime",
    "TextEncoder",
    "choose_runtime",
    "limit_threads",
    "model_fingerprint",
    "model_file",
    "model_id",
    "normalise_rows",
    "session_options",
]
