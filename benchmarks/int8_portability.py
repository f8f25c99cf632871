"""int8 on the CPUs it may run on: an export's parity here and on an emulated AVX2-only CPU.

    .venv/bin/python -m benchmarks.int8_portability MODEL_DIR [--json]

ONNX Runtime picks its int8 kernels from CPUID, and most cheap VPSs have AVX2 without VNNI, where
the u8s8 kernels add pairs of products in 16 bits. This runs the same probe twice, on this CPU and
under `scripts/avx2-cpu.sh` (QEMU user mode, a Haswell: AVX2 and FMA, no AVX-512, no VNNI):
- which kernels the process gets;
- a GEMM built to saturate (activations 255, weights 127 vs 63): exact on VNNI, wrong on AVX2 with
  8-bit weights, exact with 7-bit ones — proof that the emulated CPU really ran the AVX2 kernels;
- the export's int8 parity against its stored reference vectors, as the bot checks it at start.
Emulation is ~20-50x slower; the figures it gives are numbers, not times. Not part of the test suite
(one slow test runs it on the tiny export).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EMULATOR = REPO / "scripts" / "avx2-cpu.sh"
SATURATING_WEIGHTS = (127, 63)  # 8-bit and 7-bit
DEPTH = 64


def saturation(weight: int) -> tuple[float, float]:
    """(what ONNX Runtime computes, the exact value) for a GEMM whose products pairs reach 2 × 255 × weight."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    initializers = [
        numpy_helper.from_array(np.full((DEPTH, 4), weight, np.int8), "W"),
        numpy_helper.from_array(np.array(1.0, np.float32), "scale"),
        numpy_helper.from_array(np.array(0, np.int8), "zero"),
    ]
    node = helper.make_node("DynamicQuantizeMatMul", ["A", "W", "scale", "zero"], ["Y"], domain="com.microsoft")
    graph = helper.make_graph(
        [node],
        "saturation",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [1, DEPTH])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    activations = np.ones((1, DEPTH), np.float32)  # quantised to 255 with zero point 0
    return float(session.run(None, {"A": activations})[0][0, 0]), float(DEPTH * weight)


def probe(model_dir: Path) -> dict:
    """What this process's CPU does with int8: its kernels, the saturating GEMM, the export's parity."""
    from core.encoders import OnnxImageEncoder, OnnxTextEncoder, check_serving_parity, int8_kernels, read_reference

    reference = read_reference(model_dir)
    if reference is None:
        raise SystemExit(
            f"{model_dir}/ has no parity reference: export it again with `python -m prep export-onnx --int8`"
        )
    parity = check_serving_parity(reference, OnnxImageEncoder(model_dir), OnnxTextEncoder(model_dir), int8_kernels())
    gemm = {str(weight): saturation(weight) for weight in SATURATING_WEIGHTS}
    return {"kernels": parity.kernels, "parity": parity.cosines, "passed": parity.passed, "saturation": gemm}


def _run(model_dir: Path, emulated: bool) -> dict:
    command = [sys.executable, "-m", "benchmarks.int8_portability", str(model_dir), "--probe"]
    if emulated:
        command = [str(EMULATOR), *command]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{'emulated ' if emulated else ''}probe failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(results: dict[str, dict]) -> str:
    lines = []
    for where, result in results.items():
        cosines = ", ".join(f"{tower} {value:.5f}" for tower, value in result["parity"].items())
        gemm = "; ".join(
            f"{int(bits)}-bit weights {got:.0f} of {exact:.0f}" for bits, (got, exact) in result["saturation"].items()
        )
        verdict = "ok" if result["passed"] else "BELOW the bar"
        lines.append(
            f"{where:>9}: {result['kernels']}\n           parity {cosines} ({verdict}); saturating GEMM: {gemm}"
        )
    return "\n".join(lines).replace("127-bit", "8-bit").replace("63-bit", "7-bit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.model_dir)))
        return
    results = {"this CPU": _run(args.model_dir, False), "AVX2 only": _run(args.model_dir, True)}
    print(json.dumps(results, indent=2) if args.json else summary(results))


if __name__ == "__main__":
    main()
