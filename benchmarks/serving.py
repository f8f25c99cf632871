"""Serving speed and memory of each runtime, with architecture-identical random-weight models.

    .venv/bin/python -m benchmarks.serving [--work DIR] [--runs N] [--json]

Builds full-size random-weight ViT-B/32 CLIP and multilingual DistilBERT models offline (same
compute and memory as the published ones), exports them to ONNX (fp32 and dynamic int8), builds
an index, then measures each runtime in its own process (so peak RSS is that runtime's alone):
photo latency end to end (decode + preprocess + encode + search + vote) for a 1280×960 JPEG and a
320×240 thumbnail, text-query latency, throughput with 1 and 2 worker threads, peak RSS with both
models loaded, and index-build throughput. Ratios are against sentence-transformers on torch, in
the same run. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RUNTIMES = ("torch", "onnx-fp32", "onnx-int8")
# Latencies are measured as the bot runs by default: BOT_WORKERS workers, each inference with
# usable CPUs // BOT_WORKERS threads (2 × 1 on 2 cores). Two threads for one photo flattered ONNX
# (3.4-3.8× torch) against what the bot then did (2.2-2.8×); `benchmarks.bot` measures the bot itself.
BOT_WORKERS = 2
QUERY = "белый собор на набережной реки"  # about 16 tokens


def prepare(work: Path) -> None:
    """Models, ONNX exports and a small dataset, built once into `work` and reused."""
    import warnings

    from core.catalog import Landmark, write_places
    from prep.export_onnx import export
    from prep.random_models import build_clip, build_multilingual
    from tests.helpers.datagen import jpeg_bytes, scene

    models = work / "models"
    if not (models / "clip-ViT-B-32" / "modules.json").exists():
        print("building full-size random-weight models…", file=sys.stderr)
        build_clip(models / "clip-ViT-B-32", "full")
        build_multilingual(models / "clip-ViT-B-32-multilingual-v1", "full")
    if not (work / "onnx-int8" / "onnx.json").exists():
        print("exporting to ONNX (fp32 + int8)…", file=sys.stderr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export(
                str(models / "clip-ViT-B-32"),
                str(models / "clip-ViT-B-32-multilingual-v1"),
                work / "onnx-int8",
                int8=True,
            )
        fp32 = work / "onnx-fp32"
        shutil.rmtree(fp32, ignore_errors=True)
        shutil.copytree(work / "onnx-int8", fp32)
        manifest = json.loads((fp32 / "onnx.json").read_text())
        for tower in manifest["files"].values():
            tower.pop("int8", None)
        (fp32 / "onnx.json").write_text(json.dumps(manifest))
    data = work / "data"
    if not (data / "places.csv").exists():
        landmarks = []
        for k in range(40):
            xid = f"L{k}"
            landmarks.append(Landmark(xid, f"Landmark {k}", "City", ("architecture", "churches"), 56.0, 60.0))
            folder = data / "images" / "CITY" / xid
            folder.mkdir(parents=True, exist_ok=True)
            for view in range(5):
                (folder / f"{view}.jpg").write_bytes(jpeg_bytes(scene(k, view)))
        write_places(data / "places.csv", landmarks)
    if not (work / "artifacts" / "current").exists():
        from core.build import build_index
        from core.encoders import choose_runtime, model_id

        settings = _settings(work, "onnx-fp32", 1)
        build_index(
            data,
            settings.artifacts_dir,
            choose_runtime(settings).image_encoder(),
            text_model=model_id(settings.text_model),
        )
    photos = work / "photos"
    photos.mkdir(exist_ok=True)
    (photos / "large.jpg").write_bytes(jpeg_bytes(scene(3, 77, (1280, 960)), 90))
    (photos / "thumb.jpg").write_bytes(jpeg_bytes(scene(3, 78, (320, 240)), 90))


def _settings(work: Path, runtime: str, workers: int):
    from core.settings import Settings, usable_cpus

    return Settings(
        data_dir=work / "data",
        artifacts_dir=work / "artifacts",
        image_model=str(work / "models" / "clip-ViT-B-32"),
        place_model="none",  # CLIP serving; benchmarks.place_tower adds the place tower to it
        text_model=str(work / "models" / "clip-ViT-B-32-multilingual-v1"),
        encoder_backend="torch" if runtime == "torch" else "onnx",
        model_dir=work / runtime if runtime != "torch" else None,
        inference_threads=max(1, usable_cpus() // workers),
    )


def _guide(work: Path, runtime: str, workers: int):
    from core import Guide, PhotoIndex
    from core.encoders import choose_runtime

    settings = _settings(work, runtime, workers)
    chosen = choose_runtime(settings)
    return Guide(PhotoIndex.load(settings.artifacts_dir), chosen.image_encoder(), chosen.text_encoder())


def measure_build(work: Path, runtime: str) -> dict:
    """Index-build throughput of one runtime, into a fresh artifacts folder of its own."""
    from core.build import build_index
    from core.encoders import choose_runtime, model_id

    settings = _settings(work, runtime, 1)
    artifacts = work / f"build-{runtime}"
    shutil.rmtree(artifacts, ignore_errors=True)
    encoder = choose_runtime(settings).image_encoder()
    started = time.perf_counter()
    report = build_index(settings.data_dir, artifacts, encoder, text_model=model_id(settings.text_model))
    return {"runtime": runtime, "build_images_per_s": report.embedded / (time.perf_counter() - started)}


def measure_memory(work: Path, runtime: str) -> dict:
    """Resident memory of a serving process of one runtime with both models loaded."""
    from core.encoders import limit_threads

    guide = _guide(work, runtime, 1)
    limit_threads(_settings(work, runtime, 1).threads)
    large = (work / "photos" / "large.jpg").read_bytes()
    for _ in range(5):
        guide.recognize(large)
        guide.search(QUERY)
    memory = _memory_mb()
    return {"runtime": runtime, "peak_rss_mb": memory["VmHWM"], "rss_mb": memory["VmRSS"]}


def _gemm_probe(threads: int):
    """One int8 GEMM of the tower's commonest shape (50 tokens × 768 → 3072, as in every MLP), run by
    ONNX Runtime as the quantised model runs it. Its rate says how fast this machine is right now."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from core.encoders import session_options

    tokens, width, hidden = 50, 768, 3072
    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.integers(-127, 128, (width, hidden), dtype=np.int8), "W")
    scale = numpy_helper.from_array(np.array(0.01, np.float32), "scale")
    zero = numpy_helper.from_array(np.array(0, np.int8), "zero")
    node = helper.make_node("DynamicQuantizeMatMul", ["A", "W", "scale", "zero"], ["Y"], domain="com.microsoft")
    graph = helper.make_graph(
        [node],
        "gemm",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [tokens, width])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [tokens, hidden])],
        [weights, scale, zero],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    options = session_options(threads)
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    inputs = {"A": rng.standard_normal((tokens, width)).astype(np.float32)}

    def gmacs_per_s() -> float:
        started = time.perf_counter()
        for _ in range(20):
            session.run(None, inputs)
        return 20 * tokens * width * hidden / (time.perf_counter() - started) / 1e9

    onnx.checker.check_model(model)
    return gmacs_per_s


def vision_tower_gmacs(config: dict) -> float:
    """Multiply-adds of the exported image tower (the last layer for the class token only)."""
    vision = config.get("vision_config", {})
    width, hidden = vision.get("hidden_size", 768), vision.get("intermediate_size", 3072)
    layers, patch, side = (
        vision.get("num_hidden_layers", 12),
        vision.get("patch_size", 32),
        vision.get("image_size", 224),
    )
    patches = (side // patch) ** 2
    tokens = patches + 1
    layer = tokens * (4 * width * width + 2 * width * hidden) + 2 * tokens * tokens * width
    last = 2 * tokens * width * width + 2 * width * width + 2 * width * hidden + 2 * tokens * width
    patch_embedding = patches * 3 * patch * patch * width
    projection = width * config.get("projection_dim", 512)
    return (patch_embedding + (layers - 1) * layer + last + projection) / 1e9


def measure_speed(work: Path, workers: int, runs: int) -> list[dict]:
    """All runtimes loaded in one process and measured interleaved, query by query, so that the
    load of a shared machine falls on all of them alike and the ratios are fair."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from core.encoders import limit_threads

    guides = {runtime: _guide(work, runtime, workers) for runtime in RUNTIMES}
    threads = _settings(work, "torch", workers).threads
    limit_threads(threads)
    large = (work / "photos" / "large.jpg").read_bytes()
    thumb = (work / "photos" / "thumb.jpg").read_bytes()
    calls = {
        "photo_1280": lambda guide: guide.recognize(large),
        "photo_320": lambda guide: guide.recognize(thumb),
        "text": lambda guide: guide.search(QUERY),
    }
    probe = _gemm_probe(threads)
    rates: list[float] = []
    times: dict[tuple[str, str], list[float]] = {(r, c): [] for r in RUNTIMES for c in calls}
    photos: dict[str, float] = dict.fromkeys(RUNTIMES, 0.0)
    seconds: dict[str, float] = dict.fromkeys(RUNTIMES, 0.0)
    with ThreadPoolExecutor(workers) as pool:
        for _ in range(3):  # warm-up
            for guide in guides.values():
                for call in calls.values():
                    call(guide)
        for _ in range(runs):
            for runtime, guide in guides.items():
                if workers == BOT_WORKERS:
                    for name, call in calls.items():
                        started = time.perf_counter()
                        call(guide)
                        times[(runtime, name)].append((time.perf_counter() - started) * 1000)
                if workers == BOT_WORKERS:
                    rates.append(probe())
                started = time.perf_counter()
                list(pool.map(lambda _, g=guide: g.recognize(large), range(2 * workers)))
                seconds[runtime] += time.perf_counter() - started
                photos[runtime] += 2 * workers
    results = []
    for runtime in RUNTIMES:
        result = {"runtime": runtime, "workers": workers, "photos_per_s": photos[runtime] / seconds[runtime]}
        if workers == BOT_WORKERS:
            result["machine_int8_gmacs_per_s"] = float(np.median(rates))
        for name in calls if workers == BOT_WORKERS else ():
            result[f"{name}_p50_ms"] = float(np.percentile(times[(runtime, name)], 50))
            result[f"{name}_p95_ms"] = float(np.percentile(times[(runtime, name)], 95))
        results.append(result)
    return results


def _memory_mb() -> dict[str, float]:
    """This process's resident memory now and at its peak. (getrusage's ru_maxrss survives exec on
    Linux, so a child started by a large parent would report the parent's peak.)"""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def table(speed: dict[int, list[dict]], memory: list[dict], build: list[dict]) -> str:
    one = {r["runtime"]: r for r in speed[BOT_WORKERS]}
    base = one["torch"]
    lines = [f"{'':36}" + "".join(f"{runtime:>22}" for runtime in RUNTIMES)]
    for label, key in (
        ("photo 1280×960 p50 / p95, ms", "photo_1280"),
        ("photo 320×240 p50 / p95, ms", "photo_320"),
        ("text query p50 / p95, ms", "text"),
    ):
        cells = [
            f"{one[r][key + '_p50_ms']:.1f} / {one[r][key + '_p95_ms']:.1f} "
            f"({base[key + '_p50_ms'] / one[r][key + '_p50_ms']:.1f}×)"
            for r in RUNTIMES
        ]
        lines.append(f"{label:36}" + "".join(f"{c:>22}" for c in cells))
    for workers, rows in sorted(speed.items()):
        by = {r["runtime"]: r for r in rows}
        cells = [
            f"{by[r]['photos_per_s']:.1f} ({by[r]['photos_per_s'] / by['torch']['photos_per_s']:.1f}×)"
            for r in RUNTIMES
        ]
        label = f"throughput, {workers} worker(s), photos/s"
        lines.append(f"{label:36}" + "".join(f"{c:>22}" for c in cells))
    mem = {r["runtime"]: r for r in memory}
    cells = [f"{mem[r]['rss_mb']:.0f} / {mem[r]['peak_rss_mb']:.0f}" for r in RUNTIMES]
    lines.append(f"{'RSS serving / peak, MB':36}" + "".join(f"{c:>22}" for c in cells))
    builds = {r["runtime"]: r for r in build}
    cells = [f"{builds[r]['build_images_per_s']:.1f}" for r in RUNTIMES]
    lines.append(f"{'index build, images/s':36}" + "".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)


# The targets for ONNX int8 on 2 cores: (label, measured value, passes).
def targets(speed: dict[int, list[dict]], memory: list[dict]) -> list[tuple[str, float, bool]]:
    one = {r["runtime"]: r for r in speed[BOT_WORKERS]}
    int8, torch = one["onnx-int8"], one["torch"]
    rss = {r["runtime"]: r for r in memory}["onnx-int8"]["peak_rss_mb"]
    checks = []
    for key, size in (("photo_1280", "1280×960"), ("photo_320", "320×240")):
        checks.append((f"int8 photo {size} p50 ≤ 40 ms", int8[f"{key}_p50_ms"], int8[f"{key}_p50_ms"] <= 40))
        ratio = torch[f"{key}_p50_ms"] / int8[f"{key}_p50_ms"]
        checks.append((f"int8 photo {size} ≥ 3× torch", ratio, ratio >= 3))
    checks.append(("int8 text query p50 ≤ 15 ms", int8["text_p50_ms"], int8["text_p50_ms"] <= 15))
    checks.append(("int8 serving peak RSS ≤ 500 MB", rss, rss <= 500))
    return checks


def machine(speed: dict[int, list[dict]], work: Path) -> dict:
    """How fast the machine was during the run, and what that allows the int8 image tower at best."""
    config = json.loads((work / "models" / "clip-ViT-B-32" / "0_CLIPModel" / "config.json").read_text())
    rate = speed[BOT_WORKERS][0]["machine_int8_gmacs_per_s"]
    gmacs = vision_tower_gmacs(config)
    return {"int8_gemm_gmacs_per_s": rate, "image_tower_gmacs": gmacs, "image_tower_gemm_floor_ms": 1000 * gmacs / rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(".benchmark-cache"), help="models and data are kept here")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "ARG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        from core.cli import configure_logging

        configure_logging("ERROR")
        kind, arg = args.measure
        if kind == "build":
            print(json.dumps(measure_build(args.work, arg)))
        elif kind == "memory":
            print(json.dumps(measure_memory(args.work, arg)))
        else:
            print(json.dumps(measure_speed(args.work, int(arg), args.runs)))
        return
    prepare(args.work)
    from core.encoders import int8_kernels

    def child(kind: str, arg: str):
        print(f"measuring {kind} {arg}…", file=sys.stderr)
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.serving",
                "--work",
                str(args.work),
                "--runs",
                str(args.runs),
                "--measure",
                kind,
                arg,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])

    build = [child("build", runtime) for runtime in RUNTIMES]
    memory = [child("memory", runtime) for runtime in RUNTIMES]
    speed = {workers: child("speed", str(workers)) for workers in (1, 2)}
    if args.json:
        checks = [{"target": label, "value": value, "met": met} for label, value, met in targets(speed, memory)]
        configuration = {"workers": BOT_WORKERS, "threads": _settings(args.work, "torch", BOT_WORKERS).threads}
        report = {"build": build, "memory": memory, "speed": speed, "machine": machine(speed, args.work)}
        report |= {"int8_kernels": int8_kernels(), "latency_configuration": configuration}
        print(json.dumps(report | {"targets": checks}, indent=2))
    else:
        threads = _settings(args.work, "torch", BOT_WORKERS).threads
        print(f"{len(os.sched_getaffinity(0))} CPUs, int8 kernels: {int8_kernels()}")
        print(
            f"latencies as the bot runs: {BOT_WORKERS} workers × {threads} thread(s) per inference; "
            f"{args.runs} interleaved runs per figure, random-weight full-size models"
        )
        print(table(speed, memory, build))
        state = machine(speed, args.work)
        print(
            f"\nmachine during the run: int8 GEMM {state['int8_gemm_gmacs_per_s']:.0f} G multiply-adds/s "
            f"(ONNX Runtime, {threads} threads); the int8 image tower's {state['image_tower_gmacs']:.2f} G "
            f"multiply-adds need ≥ {state['image_tower_gemm_floor_ms']:.0f} ms at that rate"
        )
        print("targets (ONNX int8):")
        for label, value, met in targets(speed, memory):
            print(f"  {'met ' if met else 'MISSED'} {label}: {value:.1f}")


if __name__ == "__main__":
    main()
