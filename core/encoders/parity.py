"""Parity of exported models with the models they came from: the inputs, the bar, and the check a
serving process runs on its own CPU.

An int8 file's numbers depend on the CPU that runs it: ONNX Runtime picks its integer kernels from
CPUID, and on x86-64 without VNNI the u8s8 kernels add pairs of products in 16 bits, which saturate
unless the weights use 7 bits (`prep export-onnx` writes them so). `prep export-onnx` measures parity
on the machine that exports and stores the inputs and the reference vectors (`onnx_folder`); the bot
measures again on the machine that serves, at start, and says so in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.encoders.base import ImageEncoder, TextEncoder

# Minimum cosine between the reference (sentence-transformers) embedding and the exported one.
FP32_MIN_COSINE = 0.999
INT8_MIN_COSINE = 0.99
PARITY_TEXTS = (
    "Храм на Крови",
    "white cathedral by the river",
    "Нижегородский кремль зимой",
    "a monument in a park",
    "памятник",
)
# The u8s8 kernels of x86-64 CPUs without VNNI add two u8×s8 products in a signed 16-bit lane:
# 2 × 255 × 64 = 32,640 fits, 2 × 255 × 127 does not. Weights within ±64 never saturate.
SATURATION_FREE_WEIGHT = 64
REFERENCE_NAME = "reference.npz"  # the file name onnx_folder stores the reference under
# The int8 kernels ONNX Runtime picks, by CPU feature, best first. Features are read the way the
# runtimes read them (CPUID, through NumPy's dispatch table) and, for those NumPy does not list,
# from the kernel's flags: /proc/cpuinfo shows the host's flags even in an emulator.
AVX2_ONLY = "AVX2, no VNNI: 16-bit sums, 7-bit weights needed"
INT8_KERNELS = (
    ("AVX512VNNI", "AVX-512 VNNI"),
    ("avx_vnni", "AVX-VNNI"),
    ("AVX2", AVX2_ONLY),
    ("ASIMDDP", "ARM dot product"),
)


def parity_images() -> list[Image.Image]:
    """A few varied inputs: gradients, noise, flat colours, portrait and landscape shapes."""
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))]
    ramp = np.linspace(0, 255, 300, dtype=np.float32)
    images.append(Image.fromarray(np.stack([np.tile(ramp, (400, 1))] * 3, -1).astype(np.uint8)))
    images.append(Image.new("RGB", (256, 256), (200, 40, 40)))
    blocks = np.kron(rng.integers(0, 256, (6, 8, 3)), np.ones((40, 40, 1))).astype(np.uint8)
    images.append(Image.fromarray(blocks))
    return images


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


def int8_kernels(features: dict[str, bool] | None = None, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """Which int8 kernels this CPU gets ("unknown" where neither source says)."""
    cpuid = _cpu_features() if features is None else features
    have = {name for name, present in cpuid.items() if present}
    flags = _cpuinfo_flags(cpuinfo)
    # NumPy's CPUID table lacks AVX-VNNI (the VEX form): /proc/cpuinfo adds it, unless /proc/cpuinfo
    # describes another CPU than the one executing (QEMU user mode shows the host's), seen as a
    # disagreement on a flag both sources know.
    if cpuid and any((flag in flags) != bool(cpuid.get(name)) for flag, name in CPUINFO_CPUID_FLAGS):
        flags = set()
    if not have:
        have.update(flag.upper().replace("AVX512_VNNI", "AVX512VNNI") for flag in flags)
    if "avx_vnni" in flags:
        have.add("avx_vnni")
    return next((name for feature, name in INT8_KERNELS if feature in have), "unknown")


# Flags named in both /proc/cpuinfo and NumPy's CPUID table: where they disagree, cpuinfo is not ours.
CPUINFO_CPUID_FLAGS = (("avx2", "AVX2"), ("fma", "FMA3"), ("avx512f", "AVX512F"), ("avx512bw", "AVX512BW"))


def _cpuinfo_flags(cpuinfo: Path) -> set[str]:
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def _cpu_features() -> dict[str, bool]:
    try:
        from numpy._core._multiarray_umath import __cpu_features__  # type: ignore[import-not-found]  # CPUID

        return dict(__cpu_features__)
    except ImportError:  # a NumPy that moved it: fall back to /proc/cpuinfo alone
        return {}


@dataclass(frozen=True)
class Reference:
    """Inputs and the vectors the source models gave for them, stored beside an export."""

    images: tuple[np.ndarray, ...]  # RGB uint8 arrays
    texts: tuple[str, ...]
    image_vectors: np.ndarray
    text_vectors: np.ndarray

    def pil_images(self) -> list[Image.Image]:
        return [Image.fromarray(array) for array in self.images]


@dataclass(frozen=True)
class ServingParity:
    """Parity of the quantised towers on the CPU that serves, against the stored reference."""

    kernels: str
    cosines: dict[str, float]  # tower → min cosine, quantised towers only
    required: float = INT8_MIN_COSINE
    missing_reference: bool = False  # an export older than the stored reference

    @property
    def passed(self) -> bool:
        return not self.missing_reference and all(value >= self.required for value in self.cosines.values())

    def line(self) -> str:
        if self.missing_reference:
            return (
                f"int8 parity on this CPU ({self.kernels}) cannot be checked: the export has no {REFERENCE_NAME}; "
                "export again with `python -m prep export-onnx --int8` (7-bit weights, right on every x86 CPU)"
            )
        figures = ", ".join(f"{tower} {value:.5f}" for tower, value in self.cosines.items())
        if self.passed:
            return f"int8 parity on this CPU ({self.kernels}): {figures} (≥ {self.required}): ok"
        return (
            f"int8 parity on this CPU ({self.kernels}): {figures}, below {self.required}: answers may be off; "
            "export again with `python -m prep export-onnx --int8` (7-bit weights, right on every x86 CPU)"
        )


def check_serving_parity(
    reference: Reference, image_encoder: ImageEncoder, text_encoder: TextEncoder, kernels: str
) -> ServingParity:
    """Encode the stored inputs with the loaded quantised encoders and compare with the reference."""
    cosines: dict[str, float] = {}
    if getattr(image_encoder, "precision", "fp32") != "fp32":
        cosines["image"] = min_cosine(image_encoder.encode_images(reference.pil_images()), reference.image_vectors)
    if getattr(text_encoder, "precision", "fp32") != "fp32":
        cosines["text"] = min_cosine(text_encoder.encode_texts(list(reference.texts)), reference.text_vectors)
    return ServingParity(kernels, cosines)
