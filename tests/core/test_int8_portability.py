"""int8 that is right on every x86 CPU: the same numbers on an emulated AVX2-only CPU as on this one,
and the check the bot runs at start against the export's stored reference."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.encoders import choose_runtime, int8_kernels, read_reference, write_reference
from core.encoders.parity import AVX2_ONLY
from core.settings import Settings

REPO = Path(__file__).parents[2]


def _runtime(model_dirs, onnx_dir: Path):
    settings = Settings(image_model=str(model_dirs.clip), text_model=str(model_dirs.text), model_dir=onnx_dir)
    runtime = choose_runtime(settings)
    return runtime, runtime.image_encoder(), runtime.text_encoder()


def test_the_serving_check_passes_on_a_good_export(model_dirs, onnx_dir) -> None:
    runtime, image, text = _runtime(model_dirs, onnx_dir)
    parity = runtime.int8_parity(image, text)
    assert parity is not None and parity.passed and set(parity.cosines) == {"image", "text"}
    assert parity.line().startswith(
        f"int8 parity on this CPU ({int8_kernels()}): image 0.9"
    ) and parity.line().endswith("ok")


def test_the_serving_check_names_the_fix_when_vectors_drift_or_the_reference_is_missing(
    model_dirs, onnx_dir, tmp_path
) -> None:
    copy = tmp_path / "onnx"
    shutil.copytree(onnx_dir, copy)
    reference = read_reference(copy)
    assert reference is not None
    # Vectors this CPU cannot reproduce, as a saturating kernel would give: the check must say so.
    rng = np.random.default_rng(1)
    drifted = reference.text_vectors + rng.normal(
        0, 0.5 * np.abs(reference.text_vectors).mean(), reference.text_vectors.shape
    )
    write_reference(copy, type(reference)(reference.images, reference.texts, reference.image_vectors, drifted))
    runtime, image, text = _runtime(model_dirs, copy)
    parity = runtime.int8_parity(image, text)
    assert parity is not None and not parity.passed and parity.cosines["image"] > 0.99 > parity.cosines["text"]
    assert "below 0.99" in parity.line() and "export-onnx --int8" in parity.line()
    (copy / "reference.npz").unlink()
    missing = runtime.int8_parity(image, text)
    assert missing is not None and not missing.passed and "cannot be checked" in missing.line()
    # Torch serves nothing quantised: nothing to check.
    torch = choose_runtime(
        Settings(image_model=str(model_dirs.clip), text_model=str(model_dirs.text), encoder_backend="torch")
    )
    assert torch.int8_parity(image, text) is None


@pytest.mark.parametrize(
    ("features", "flags", "expected"),
    [
        ({"AVX2": True, "AVX512VNNI": True}, "fpu avx2 avx512_vnni", "AVX-512 VNNI"),
        ({"AVX2": True, "AVX512VNNI": False}, "fpu avx2", AVX2_ONLY),
        ({"AVX2": True, "AVX512VNNI": False}, "fpu avx2 avx_vnni", "AVX-VNNI"),
        ({}, "fpu avx2 avx512_vnni", "AVX-512 VNNI"),  # NumPy without its table: the kernel's flags
        # QEMU emulating a Haswell on an AVX-VNNI host: /proc/cpuinfo is the host's, CPUID the Haswell's.
        ({"AVX2": True, "FMA3": True, "AVX512F": False}, "fpu avx2 fma avx512f avx_vnni", AVX2_ONLY),
        ({}, "", "unknown"),
    ],
)
def test_int8_kernels_are_named_from_cpu_features(features, flags, expected, tmp_path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert int8_kernels(features, cpuinfo) == expected


@pytest.mark.slow
def test_the_export_gives_the_same_vectors_on_an_avx2_only_cpu(onnx_dir) -> None:
    """Under QEMU emulating a Haswell (AVX2, no VNNI), a GEMM with 8-bit weights saturates, so the
    emulated CPU really runs the AVX2 kernels; the export's 7-bit weights give the same parity there."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.int8_portability", str(onnx_dir), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    here, avx2 = results["this CPU"], results["AVX2 only"]
    assert avx2["kernels"] == AVX2_ONLY
    eight_bit, seven_bit = avx2["saturation"]["127"], avx2["saturation"]["63"]
    assert eight_bit[0] < 0.9 * eight_bit[1] and seven_bit[0] == pytest.approx(seven_bit[1])
    if "VNNI" in here["kernels"]:
        assert here["saturation"]["127"][0] == pytest.approx(here["saturation"]["127"][1])
    assert avx2["passed"] and here["passed"]
    for tower in ("image", "text"):
        assert avx2["parity"][tower] == pytest.approx(here["parity"][tower], abs=1e-4)
