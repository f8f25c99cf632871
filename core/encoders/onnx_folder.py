"""The ONNX model folder (MODEL_DIR): its one writer and reader, beside the runtime that loads it.

Layout:
    onnx.json          models it was exported from, dimension, preprocessing, files and parity
    image.onnx         CLIP vision tower + projection, fp32 (image.int8.onnx: dynamic int8)
    text.onnx          multilingual transformer + mean pooling + dense, fp32 (text.int8.onnx)
    tokenizer.json     the text model's tokenizer
    reference.npz      parity inputs and the source models' vectors for them (the serving check)

`prep export-onnx` stages a folder, writes the model files under `model_file()` names and the
manifest through `OnnxManifest.write`; the ONNX runtime reads it with `OnnxManifest.read`, which
turns every kind of damage into one OnnxModelsError line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from core.encoders.base import ModelLoadError, cache_key_for
from core.encoders.parity import REFERENCE_NAME, Reference

MANIFEST = "onnx.json"
TOKENIZER = "tokenizer.json"
REFERENCE = REFERENCE_NAME
ONNX_SCHEMA = 1
TOWERS = ("image", "text")
PRECISIONS = ("int8", "fp32")  # preferred first
REEXPORT = "export again with `python -m prep export-onnx`"


def _exported(entry: dict) -> ExportedFile:
    return ExportedFile(**(entry | {"quantised": tuple(entry.get("quantised", ()))}))


class OnnxModelsError(ModelLoadError):
    """The exported models are missing, damaged or do not match the configured ones."""


def model_file(tower: str, precision: str) -> str:
    return f"{tower}.onnx" if precision == "fp32" else f"{tower}.{precision}.onnx"


@dataclass(frozen=True)
class ExportedFile:
    file: str
    cosine: float | None = None  # parity with sentence-transformers, measured at export
    sha256: str = ""  # of quantised files: their vectors get cache entries of their own
    quantised: tuple[str, ...] = ()  # operator types stored in int8 (empty: a float file)
    portable: bool = False  # integer GEMM weights within ±64: no 16-bit saturation on AVX2 CPUs


@dataclass(frozen=True)
class OnnxManifest:
    image_model: str
    text_model: str
    dim: int
    preprocess: dict
    text_max_length: int
    files: dict[str, dict[str, ExportedFile]] = field(default_factory=dict)  # tower → precision → file
    image_fingerprint: str = ""  # content of the model exported (core.encoders.fingerprint)
    text_fingerprint: str = ""

    def with_file(self, tower: str, precision: str, exported: ExportedFile | None) -> OnnxManifest:
        """A copy with one file added, replaced, or (None) dropped."""
        files = {t: dict(p) for t, p in self.files.items()}
        files.setdefault(tower, {})
        if exported is None:
            files[tower].pop(precision, None)
        else:
            files[tower][precision] = exported
        return replace(self, files=files)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["schema"] = ONNX_SCHEMA
        return data

    def write(self, model_dir: Path) -> None:
        tmp = model_dir / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        tmp.replace(model_dir / MANIFEST)

    @classmethod
    def read(cls, model_dir: Path) -> OnnxManifest:
        path = model_dir / MANIFEST
        if not path.is_file():
            raise OnnxModelsError(f"no exported ONNX models in {model_dir}/: run `python -m prep export-onnx`")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise OnnxModelsError(f"{path} is damaged ({exc.__class__.__name__}): {REEXPORT}") from None
        if not isinstance(raw, dict) or raw.get("schema") != ONNX_SCHEMA:
            raise OnnxModelsError(f"{path} has another schema: {REEXPORT}")
        try:
            files = {
                tower: {precision: _exported(entry) for precision, entry in raw["files"].get(tower, {}).items()}
                for tower in TOWERS
            }
            manifest = cls(
                image_model=str(raw["image_model"]),
                text_model=str(raw["text_model"]),
                dim=int(raw["dim"]),
                preprocess=dict(raw["preprocess"]),
                text_max_length=int(raw["text_max_length"]),
                files=files,
                image_fingerprint=str(raw.get("image_fingerprint", "")),
                text_fingerprint=str(raw.get("text_fingerprint", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise OnnxModelsError(f"{path} lacks or garbles field {exc}: {REEXPORT}") from None
        return manifest

    def image_cache_key(self, precision: str | None = None) -> str:
        """The embedding-cache key of this export's image vectors at `precision` (default: the best one).
        Quantised vectors differ slightly from fp32/torch ones, and from another export's: they get keys of
        their own, so that an index never mixes two of them."""
        chosen, exported = self.choose("image", precision)
        return exported_cache_key(self.image_model, self.image_fingerprint, chosen, exported)

    def choose(self, tower: str, precision: str | None = None) -> tuple[str, ExportedFile]:
        """The model file of `tower` at `precision`, or at the best one exported (int8 before fp32)."""
        return choose_file(self.files.get(tower, {}), precision, tower, f"the ONNX manifest: {REEXPORT}")


def choose_file(
    available: dict[str, ExportedFile], precision: str | None, tower: str, where: str
) -> tuple[str, ExportedFile]:
    """(precision, file) of an export: the one asked for, or the best exported (PRECISIONS' order)."""
    for candidate in (precision,) if precision else PRECISIONS:
        if candidate in available:
            return candidate, available[candidate]
    wanted = f"{precision} {tower}" if precision else tower
    raise OnnxModelsError(f"no {wanted} model in {where}")


def exported_cache_key(model: str, fingerprint: str, precision: str, exported: ExportedFile) -> str:
    """The embedding-cache key of an export's vectors: quantised ones get keys of their own, by file."""
    variant = f"{precision}@{exported.sha256[:12]}" if precision != "fp32" else ""
    return cache_key_for(model, fingerprint, variant)


def write_reference(model_dir: Path, reference: Reference) -> None:
    """The parity inputs and the source models' vectors for them, for the check at serving time."""
    arrays: dict[str, np.ndarray] = {f"image_{k}": image for k, image in enumerate(reference.images)}
    arrays |= {
        "texts": np.array(reference.texts),
        "image_vectors": reference.image_vectors.astype(np.float32),
        "text_vectors": reference.text_vectors.astype(np.float32),
    }
    tmp = model_dir / f".{REFERENCE}.tmp.npz"
    np.savez_compressed(tmp, allow_pickle=False, **arrays)
    tmp.replace(model_dir / REFERENCE)


def read_reference(model_dir: Path) -> Reference | None:
    """The stored reference, or None for an export made before it was stored (or a damaged one)."""
    path = model_dir / REFERENCE
    try:
        with np.load(path, allow_pickle=False) as stored:
            images = tuple(stored[f"image_{k}"] for k in range(len(stored.files) - 3))
            return Reference(
                images, tuple(str(t) for t in stored["texts"]), stored["image_vectors"], stored["text_vectors"]
            )
    except (OSError, ValueError, KeyError):
        return None
