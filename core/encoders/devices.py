"""Where prep's torch runtime embeds: `--device auto|cpu|cuda`, resolved once per run.

auto takes a CUDA GPU when torch sees one, else the CPU; cuda without one is one line. Serving never
asks (the bot runs ONNX Runtime on the CPU). On a GPU the image tower runs in fp16 with large batches,
and its vectors get their own embedding-cache key (`#fp16-cuda`): they agree with the CPU's fp32
vectors to ~1e-3 in cosine, but the cache promises that one key means one runtime's vectors.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from core.encoders.base import ModelLoadError

DEVICES = ("auto", "cpu", "cuda")
# The embedding-cache variant of vectors computed in fp16 on a CUDA GPU.
CUDA_VARIANT = "fp16-cuda"
# Photos per forward pass on a GPU (an H200 embeds CLIP B/32 fastest at 256–1024: docs/benchmarks.md).
GPU_IMAGE_BATCH = 256


def _nvidia_driver() -> bool:
    """Whether an NVIDIA driver is on this machine at all: auto then need not import torch to learn no."""
    return Path("/proc/driver/nvidia").exists() or shutil.which("nvidia-smi") is not None


def resolve_device(wanted: str) -> str:
    """ "cpu" or "cuda" for a --device choice; ModelLoadError (one line) for cuda where there is none."""
    if wanted not in DEVICES:
        raise ModelLoadError(f"--device must be one of {', '.join(DEVICES)}, got {wanted!r}")
    if wanted == "cpu" or (wanted == "auto" and not _nvidia_driver()):
        return "cpu"
    if importlib.util.find_spec("torch") is None:
        if wanted == "cuda":
            raise ModelLoadError("--device cuda needs torch (the prep install: pip install '.[prep]')")
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if wanted == "cuda":
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise ModelLoadError(f"--device cuda: torch {torch.__version__} ({build}) sees no CUDA GPU; use --device cpu")
    return "cpu"
