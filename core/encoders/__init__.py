"""Encoders: photos and texts → L2-normalised vectors of one CLIP space, on torch or ONNX Runtime.

base           the Protocols, ModelLoadError, model_id
torch_runtime  sentence-transformers (prep's runtime; imports torch lazily)
onnx_runtime   ONNX Runtime (the serving runtime; no torch)
onnx_folder    the ONNX model folder format (written by `prep export-onnx`, read here)
loading        ENCODER_BACKEND resolved once: choose_runtime
place_torch    the place tower (DINOv2, issue #34) on torch; place_onnx: its export folder and ONNX encoder
devices        prep's --device auto|cpu|cuda resolved once (fp16 on a GPU, its own cache key)
fingerprint    a model folder's content, to know models by what they are, not by their name
footprint      the memory serving on a runtime will take, from its files, before they load
parity         parity inputs, the bar, this CPU's int8 kernels, and the check a serving process runs

The front door of the runtime layer: `prep export-onnx` (the ONNX folder's writer sits beside its reader)
and the benchmarks use it; everything else goes through `core`.
"""

from core.encoders.base import ImageEncoder, ModelLoadError, PromptEncoder, TextEncoder, model_id, normalise_rows
from core.encoders.devices import DEVICES, GPU_IMAGE_BATCH, resolve_device
from core.encoders.fingerprint import model_fingerprint
from core.encoders.footprint import HEADROOM, Footprint, container_limit_mb, expected_footprint
from core.encoders.loading import Runtime, choose_runtime, limit_threads
from core.encoders.onnx_folder import (
    TOKENIZER,
    ExportedFile,
    OnnxManifest,
    OnnxModelsError,
    model_file,
    read_reference,
    write_reference,
)
from core.encoders.onnx_runtime import OnnxImageEncoder, OnnxTextEncoder, session_options
from core.encoders.parity import (
    FP32_MIN_COSINE,
    INT8_MIN_COSINE,
    PARITY_TEXTS,
    SATURATION_FREE_WEIGHT,
    Reference,
    ServingParity,
    check_serving_parity,
    int8_kernels,
    min_cosine,
    parity_images,
)
from core.encoders.place_onnx import PLACE_FOLDER, OnnxPlaceEncoder, PlaceManifest, place_model_file
from core.encoders.place_torch import TorchPlaceEncoder, place_model_folder

__all__ = [
    "PLACE_FOLDER",
    "OnnxPlaceEncoder",
    "PlaceManifest",
    "TorchPlaceEncoder",
    "place_model_file",
    "place_model_folder",
    "DEVICES",
    "GPU_IMAGE_BATCH",
    "resolve_device",
    "FP32_MIN_COSINE",
    "INT8_MIN_COSINE",
    "PARITY_TEXTS",
    "SATURATION_FREE_WEIGHT",
    "TOKENIZER",
    "HEADROOM",
    "Footprint",
    "container_limit_mb",
    "expected_footprint",
    "Reference",
    "ServingParity",
    "check_serving_parity",
    "int8_kernels",
    "min_cosine",
    "parity_images",
    "read_reference",
    "write_reference",
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
