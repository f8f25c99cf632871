"""Encoders: photos and texts → L2-normalised vectors of one CLIP space, on torch or ONNX Runtime.

base           the Protocols, ModelLoadError, model_id
torch_runtime  sentence-transformers (prep's runtime; imports torch lazily)
onnx_runtime   ONNX Runtime (the serving runtime; no torch)
onnx_folder    the ONNX model folder format (written by `prep export-onnx`, read here)
loading        ENCODER_BACKEND resolved once: choose_runtime, load_encoders
"""

from core.encoders.base import ImageEncoder, ModelLoadError, PromptEncoder, TextEncoder, model_id, normalise_rows
from core.encoders.loading import Encoders, Runtime, choose_runtime, limit_threads, load_encoders
from core.encoders.onnx_folder import OnnxManifest, OnnxModelsError

__all__ = [
    "Encoders",
    "ImageEncoder",
    "ModelLoadError",
    "OnnxManifest",
    "OnnxModelsError",
    "PromptEncoder",
    "Runtime",
    "TextEncoder",
    "choose_runtime",
    "limit_threads",
    "load_encoders",
    "model_id",
    "normalise_rows",
]
