"""How much memory serving on a runtime will take, known before any model loads: from the sizes of
the model files it would load. A container whose limit is below that is killed while loading, over
and over under a restart policy; the bot's preflight says so in one line instead.

Fitted on `python -m benchmarks.bot` (the real bot process, full-size models, peak RSS after photos
and text queries; 2026-12-01, one run): ONNX int8 (214 MB of files) 501 MB, ONNX fp32 (850 MB)
1,364 MB, torch (1,097 MB of safetensors) 1,071 MB; peak ≈ PROCESS_BASE_MB + Σ file MB × LOAD_FACTOR.
The issue's AVX2 measurement of an int8 image + fp32 text export (1,118 MB) is predicted at 1,031 MB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.encoders.loading import ONNX, Runtime

# Python, NumPy, PTB, FAISS, tokenizers, Pillow and a small index, with no model (MB).
PROCESS_BASE_MB = {"onnx": 250, "torch": 330}
# Resident MB per MB of model file: ONNX Runtime prepacks weights into copies of its own (more for
# fp32); torch maps the safetensors and never touches CLIP's unused text tower.
LOAD_FACTOR = {"int8": 1.2, "fp32": 1.32, "torch": 0.68}
# Above this share of the limit the process has no room for a burst of photos or a rebuild.
HEADROOM = 0.9
WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass(frozen=True)
class Footprint:
    """Expected peak resident memory of a serving process, and what it is made of."""

    peak_mb: int
    parts: tuple[str, ...]  # e.g. "image int8 84 MB", for the message

    def describe(self) -> str:
        return f"~{self.peak_mb} MB ({', '.join(self.parts)})"


def expected_footprint(runtime: Runtime) -> Footprint | None:
    """The expected peak for serving on `runtime` (None when the model files are not local folders)."""
    if runtime.name == ONNX:
        from core.encoders.onnx_folder import OnnxManifest

        manifest = OnnxManifest.read(runtime.settings.onnx_dir)
        sized = []
        for tower in ("image", "text"):
            precision, exported = manifest.choose(tower)
            sized.append((f"{tower} {precision}", precision, _mb(runtime.settings.onnx_dir / exported.file)))
        return _footprint(PROCESS_BASE_MB["onnx"], sized + _place_tower(runtime))
    folders = (("image", runtime.settings.image_model), ("text", runtime.settings.text_model))
    sized = []
    for tower, name in folders:
        folder = Path(name).expanduser()
        if not folder.is_dir():
            return None  # a hub name: its files are wherever the hub cache keeps them
        weights = sum(_mb(path) for path in folder.rglob("*") if path.suffix in WEIGHT_SUFFIXES)
        sized.append((f"{tower} torch", "torch", weights))
    return _footprint(PROCESS_BASE_MB["torch"], sized)


def _place_tower(runtime: Runtime) -> list[tuple[str, str, float]]:
    """The place tower's export when PLACE_MODEL asks for it (none exported: it will not load, nothing to add).
    Counted like CLIP's files, so on the safe side: DINOv2-S int8 (24 MB) added ~5 MB to the bot's measured
    peak (benchmarks.place_tower), where this counts 29."""
    from core.encoders.place_onnx import PLACE_FOLDER, PLACE_MANIFEST, PlaceManifest

    folder = runtime.settings.onnx_dir / PLACE_FOLDER
    if runtime.settings.place_tower is None or not (folder / PLACE_MANIFEST).is_file():
        return []
    precision, exported = PlaceManifest.read(folder).choose()
    return [(f"place {precision}", precision, _mb(folder / exported.file))]


def _footprint(base: int, sized: list[tuple[str, str, float]]) -> Footprint:
    peak = base + sum(size * LOAD_FACTOR[precision] for _, precision, size in sized)
    parts = tuple(f"{label} {size:.0f} MB" for label, _, size in sized)
    return Footprint(round(peak), parts)


def _mb(path: Path) -> float:
    try:
        return path.stat().st_size / 2**20
    except OSError:
        return 0.0


def container_limit_mb(cgroup: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The memory this process's cgroup may use (Docker's mem_limit, systemd's MemoryMax), or None."""
    for file in (cgroup / "memory.max", cgroup / "memory" / "memory.limit_in_bytes"):
        try:
            raw = file.read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 2**60:  # cgroup v1 says "no limit" with a huge number, v2 with "max"
            return int(raw) // 2**20
        return None
    return None
