"""The place tower on ONNX Runtime (issue #34): its export folder's one writer and reader, and the encoder
a serving process runs it with — no torch, no transformers.

Layout (MODEL_DIR/place/, written by `prep export-onnx` when PLACE_MODEL is set):
    place.json        the model exported (name, content fingerprint), dimension, preprocessing, files
    place.onnx        DINOv2 → pooled CLS token, fp32 (place.int8.onnx: dynamic int8, 7-bit weights)

Its own folder and manifest, beside CLIP's `onnx.json` (core.encoders.onnx_folder), so that exporting,
adding or dropping the tower never touches the CLIP export the bot already serves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from core.encoders.base import model_id, normalise_rows
from core.encoders.onnx_folder import ExportedFile, OnnxModelsError, choose_file, exported_cache_key, model_file
from core.preprocess import ClipPreprocessing

PLACE_FOLDER = "place"
PLACE_MANIFEST = "place.json"
PLACE_SCHEMA = 1
REEXPORT = "export it again with `python -m prep export-onnx` (PLACE_MODEL set)"


@dataclass(frozen=True)
class PlaceManifest:
    model: str
    fingerprint: str
    dim: int
    preprocess: dict
    files: dict[str, ExportedFile] = field(default_factory=dict)  # precision → file

    def with_file(self, precision: str, exported: ExportedFile | None) -> PlaceManifest:
        files = dict(self.files)
        if exported is None:
            files.pop(precision, None)
        else:
            files[precision] = exported
        return replace(self, files=files)

    def write(self, folder: Path) -> None:
        tmp = folder / f".{PLACE_MANIFEST}.tmp"
        tmp.write_text(json.dumps(asdict(self) | {"schema": PLACE_SCHEMA}, indent=2), encoding="utf-8")
        tmp.replace(folder / PLACE_MANIFEST)

    @classmethod
    def read(cls, folder: Path) -> PlaceManifest:
        path = folder / PLACE_MANIFEST
        if not path.is_file():
            raise OnnxModelsError(f"no ONNX export of the place tower in {folder}/: {REEXPORT}")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("schema") != PLACE_SCHEMA:
                raise ValueError(f"schema {raw.get('schema')!r}")
            files = {
                p: ExportedFile(**(e | {"quantised": tuple(e.get("quantised", ()))})) for p, e in raw["files"].items()
            }
            return cls(str(raw["model"]), str(raw["fingerprint"]), int(raw["dim"]), dict(raw["preprocess"]), files)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise OnnxModelsError(f"{path} is damaged ({exc}): {REEXPORT}") from None

    def choose(self, precision: str | None = None) -> tuple[str, ExportedFile]:
        return choose_file(self.files, precision, "place tower", f"{PLACE_MANIFEST}: {REEXPORT}")

    def cache_key(self, precision: str | None = None) -> str:
        return exported_cache_key(self.model, self.fingerprint, *self.choose(precision))

    def matches(self, name_or_path: str) -> bool:
        """Whether this export is of PLACE_MODEL (by its name; the content is checked against the index)."""
        return self.model == model_id(name_or_path)


class OnnxPlaceEncoder:
    """The place tower from its export folder: the int8 file when there is one, else fp32."""

    prompts_unavailable = "the place tower embeds photos only: zero-shot prompts use CLIP"
    encode_prompts = None
    tower = "place"

    def __init__(self, folder: Path, threads: int = 1, precision: str | None = None) -> None:
        from core.encoders.onnx_runtime import session_options

        manifest = PlaceManifest.read(folder)
        self.precision, exported = manifest.choose(precision)
        self.model_name, self.fingerprint, self.dim = manifest.model, manifest.fingerprint, manifest.dim
        self.cache_key = manifest.cache_key(self.precision)
        self.device = "cpu"
        self._preprocess = ClipPreprocessing.from_dict(manifest.preprocess)
        path = folder / exported.file
        if not path.is_file():
            raise OnnxModelsError(f"{path} is missing: {REEXPORT}")
        import onnxruntime as ort

        self._session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        outputs = [self._session.run(None, {"pixel_values": self._preprocess([image])})[0] for image in images]
        return normalise_rows(np.concatenate(outputs))


def place_model_file(precision: str) -> str:
    return model_file("place", precision)
