"""Choosing the runtime once (ENCODER_BACKEND) and loading the encoders on it.

immich's machine-learning service puts the runtime below the model the same way: callers ask for
"the image encoder" and never see whether torch or ONNX Runtime answers.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.encoders.base import ImageEncoder, ModelLoadError, TextEncoder, model_id
from core.encoders.devices import CUDA_VARIANT, resolve_device
from core.settings import Settings

if TYPE_CHECKING:
    from core.encoders.parity import ServingParity

log = logging.getLogger(__name__)

TORCH, ONNX = "torch", "onnx"


@dataclass(frozen=True)
class Runtime:
    """The runtime ENCODER_BACKEND resolved to, for one set of settings."""

    name: str  # "torch" | "onnx"
    settings: Settings
    fallback: str = ""  # why auto chose torch although serving wants ONNX (logged where models load)
    device: str = "cpu"  # "cuda": the torch runtime on a GPU, in fp16 (core.encoders.devices)

    def image_encoder(self) -> ImageEncoder:
        if self.name == ONNX:
            from core.encoders.onnx_runtime import OnnxImageEncoder

            return OnnxImageEncoder(self.settings.onnx_dir, self.settings.threads)
        from core.encoders.torch_runtime import SentenceTransformerImageEncoder

        return SentenceTransformerImageEncoder(self.settings.image_model, self.device)

    def place_encoder(self) -> ImageEncoder | None:
        """The place tower (PLACE_MODEL), or None when it is off: on ONNX Runtime where this runtime is
        ONNX and MODEL_DIR/place holds its export, else on torch (the prep install; ModelLoadError without)."""
        name = self.settings.place_tower
        if name is None:
            return None
        from core.encoders.place_onnx import PLACE_FOLDER, OnnxPlaceEncoder, PlaceManifest

        folder = self.settings.onnx_dir / PLACE_FOLDER
        if self.name == ONNX and (folder / "place.json").is_file() and PlaceManifest.read(folder).matches(name):
            return OnnxPlaceEncoder(folder, self.settings.threads)
        if self.name == ONNX and importlib.util.find_spec("torch") is None:
            raise ModelLoadError(
                f"PLACE_MODEL {name!r} has no ONNX export in {folder}/ and this install has no torch: "
                "`python -m prep export-onnx --int8` with PLACE_MODEL set"
            )
        from core.encoders.place_torch import TorchPlaceEncoder

        return TorchPlaceEncoder(name, self.device)

    def place_cache_key(self) -> str:
        """The key the place tower will embed under, without loading it ("" when it is off)."""
        from core.encoders.base import cache_key_for
        from core.encoders.fingerprint import model_fingerprint

        name = self.settings.place_tower
        return "" if name is None else cache_key_for(model_id(name), model_fingerprint(name))

    def image_fingerprint(self) -> str:
        """The image model's content fingerprint without loading it ("" if its files are not found)."""
        if self.name == ONNX:
            from core.encoders.onnx_folder import OnnxManifest

            return OnnxManifest.read(self.settings.onnx_dir).image_fingerprint
        from core.encoders.fingerprint import model_fingerprint

        return model_fingerprint(self.settings.image_model)

    def image_cache_key(self) -> str:
        """The key the image encoder will embed under, without loading it: an index is up to date only if
        its vectors came from the runtime (and precision) that will serve it."""
        from core.encoders.base import cache_key_for

        if self.name == ONNX:
            from core.encoders.onnx_folder import OnnxManifest

            return OnnxManifest.read(self.settings.onnx_dir).image_cache_key()
        variant = CUDA_VARIANT if self.device == "cuda" else ""
        return cache_key_for(model_id(self.settings.image_model), self.image_fingerprint(), variant)

    def int8_parity(self, image: ImageEncoder, text: TextEncoder) -> ServingParity | None:
        """Parity of the loaded int8 towers on this CPU against the export's stored reference (None when
        nothing quantised serves). An export without a reference reports an empty, failed check."""
        from core.encoders.onnx_folder import read_reference
        from core.encoders.parity import ServingParity, check_serving_parity, int8_kernels

        quantised = [e for e in (image, text) if getattr(e, "precision", "fp32") != "fp32"]
        if self.name != ONNX or not quantised:
            return None
        reference = read_reference(self.settings.onnx_dir)
        if reference is None:
            return ServingParity(int8_kernels(), {}, missing_reference=True)
        return check_serving_parity(reference, image, text, int8_kernels())

    def text_encoder(self) -> TextEncoder:
        if self.name == ONNX:
            from core.encoders.onnx_runtime import OnnxTextEncoder

            return OnnxTextEncoder(self.settings.onnx_dir, self.settings.threads)
        from core.encoders.torch_runtime import SentenceTransformerTextEncoder

        return SentenceTransformerTextEncoder(self.settings.text_model)


def choose_runtime(settings: Settings, device: str = "cpu") -> Runtime:
    """auto: ONNX when an export of these models exists in MODEL_DIR, torch otherwise. `device` (prep's
    --device): a CUDA GPU it resolves to is used through torch, whatever MODEL_DIR holds."""
    if resolve_device(device) == "cuda":
        if settings.encoder_backend == ONNX:
            raise ModelLoadError(
                "ENCODER_BACKEND=onnx runs on the CPU: embed on the GPU with ENCODER_BACKEND=torch or auto, "
                "or pass --device cpu"
            )
        return Runtime(TORCH, settings, device="cuda")
    if settings.encoder_backend == TORCH:
        return Runtime(TORCH, settings)
    from core.encoders.onnx_folder import OnnxManifest, OnnxModelsError

    try:
        manifest = OnnxManifest.read(settings.onnx_dir)
    except OnnxModelsError as exc:
        if settings.encoder_backend == ONNX:
            raise ModelLoadError(f"ENCODER_BACKEND=onnx: {exc}") from None
        if (settings.onnx_dir / "onnx.json").exists():
            log.warning("%s; using torch", exc)
        note = (
            f"ENCODER_BACKEND=auto found no ONNX export in {settings.onnx_dir}/ (MODEL_DIR): serving on torch, "
            "slower and ~2.5x the memory; run `python -m prep export-onnx --int8` or point MODEL_DIR at the export"
        )
        return Runtime(TORCH, settings, fallback=note)
    wanted = (model_id(settings.image_model), model_id(settings.text_model))
    if (manifest.image_model, manifest.text_model) == wanted:
        return Runtime(ONNX, settings)
    if settings.encoder_backend == ONNX:
        raise ModelLoadError(
            f"the ONNX models in {settings.onnx_dir}/ were exported from {manifest.image_model} and "
            f"{manifest.text_model}, not from IMAGE_MODEL/TEXT_MODEL: export again with `python -m prep export-onnx`"
        )
    log.warning("ONNX models in %s are for other models; using torch", settings.onnx_dir)
    return Runtime(TORCH, settings)


def limit_threads(threads: int) -> None:
    """Threads each inference may use, once the models are loaded. Serving runs queries in several
    worker threads, so each gets a share of the cores; FAISS answers one query faster on one thread."""
    import faiss

    from core.encoders.torch_runtime import set_torch_threads

    faiss.omp_set_num_threads(1)
    set_torch_threads(threads)
