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
QUERY = "белый собор на набережной реки"  # about 16 tokens


def prepare(work: Path) -> None:
    """Models, ONNX exports and a small dataset, built once into `work` and reused."""
    import warnings

    from core.catalog import Landmark, write_places
    from prep.export_onnx import export
    from prep.random_models import build_clip, build_multilingual
    from tests.datagen import jpeg_bytes, scene

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
    photos = work / "photos"
    photos.mkdir(exist_ok=True)
    (photos / "large.jpg").write_bytes(jpeg_bytes(scene(3, 77, (1280, 960)), 90))
    (photos / "thumb.jpg").write_bytes(jpeg_bytes(scene(3, 78, (320, 240)), 90))


def measure(work: Path, runtime: str, workers: int, runs: int) -> dict:
    """In this process: one runtime, `workers` worker threads."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from core.cli import configure_logging
    from core.encoders import limit_threads, load_image_encoder, load_text_encoder, model_id
    from core.index import PhotoIndex, build_index
    from core.service import Guide
    from core.settings import Settings

    configure_logging("ERROR")
    settings = Settings(
        data_dir=work / "data",
        artifacts_dir=work / f"artifacts-{runtime}",
        image_model=str(work / "models" / "clip-ViT-B-32"),
        text_model=str(work / "models" / "clip-ViT-B-32-multilingual-v1"),
        encoder_backend="torch" if runtime == "torch" else "onnx",
        model_dir=work / runtime if runtime != "torch" else None,
        workers=max(workers, 1),
    )
    result: dict = {"runtime": runtime, "workers": workers, "threads_per_inference": settings.inference_threads}
    if workers == 0:  # build mode: index-build throughput, and the index the serving runs load
        shutil.rmtree(settings.artifacts_dir, ignore_errors=True)
        image_encoder = load_image_encoder(settings)
        started = time.perf_counter()
        report = build_index(
            settings.data_dir, settings.artifacts_dir, image_encoder, text_model=model_id(settings.text_model)
        )
        result["build_images_per_s"] = report.embedded / (time.perf_counter() - started)
        return result
    started = time.perf_counter()
    image_encoder = load_image_encoder(settings)
    guide = Guide(PhotoIndex.load(settings.artifacts_dir), image_encoder, load_text_encoder(settings))
    limit_threads(settings.inference_threads)
    result["load_s"] = time.perf_counter() - started
    large = (work / "photos" / "large.jpg").read_bytes()
    thumb = (work / "photos" / "thumb.jpg").read_bytes()

    def latency(call, n: int) -> tuple[float, float]:
        for _ in range(3):
            call()
        times = []
        for _ in range(n):
            t = time.perf_counter()
            call()
            times.append((time.perf_counter() - t) * 1000)
        return float(np.percentile(times, 50)), float(np.percentile(times, 95))

    if workers == 1:
        result["photo_1280_p50_ms"], result["photo_1280_p95_ms"] = latency(lambda: guide.recognize(large), runs)
        result["photo_320_p50_ms"], result["photo_320_p95_ms"] = latency(lambda: guide.recognize(thumb), runs)
        result["text_p50_ms"], result["text_p95_ms"] = latency(lambda: guide.search(QUERY), runs)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: guide.recognize(large), range(workers * 2)))
        t = time.perf_counter()
        list(pool.map(lambda _: guide.recognize(large), range(runs * 2)))
        result["photos_per_s"] = runs * 2 / (time.perf_counter() - t)
    memory = _memory_mb()
    result["peak_rss_mb"], result["rss_mb"] = memory["VmHWM"], memory["VmRSS"]
    return result


def _memory_mb() -> dict[str, float]:
    """This process's resident memory now and at its peak. (getrusage's ru_maxrss survives exec on
    Linux, so a child started by a large parent would report the parent's peak.)"""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def table(results: list[dict]) -> str:
    by = {(r["runtime"], r["workers"]): r for r in results if r["workers"]}
    for r in results:
        if not r["workers"]:
            by[(r["runtime"], 1)]["build_images_per_s"] = r["build_images_per_s"]
    base = by[("torch", 1)]
    rows = [
        ("photo 1280×960 p50 / p95, ms", "photo_1280_p50_ms", "photo_1280_p95_ms", True),
        ("photo 320×240 p50 / p95, ms", "photo_320_p50_ms", "photo_320_p95_ms", True),
        ("text query p50 / p95, ms", "text_p50_ms", "text_p95_ms", True),
    ]
    head = f"{'':34}" + "".join(f"{rt:>22}" for rt in RUNTIMES)
    lines = [head]
    for label, p50, p95, lower_better in rows:
        cells = []
        for runtime in RUNTIMES:
            r = by[(runtime, 1)]
            ratio = base[p50] / r[p50] if lower_better else r[p50] / base[p50]
            cells.append(f"{r[p50]:.1f} / {r[p95]:.1f} ({ratio:.1f}×)")
        lines.append(f"{label:34}" + "".join(f"{c:>22}" for c in cells))
    for workers in (1, 2):
        cells = []
        for runtime in RUNTIMES:
            r = by[(runtime, workers)]
            cells.append(f"{r['photos_per_s']:.1f} ({r['photos_per_s'] / by[('torch', workers)]['photos_per_s']:.1f}×)")
        lines.append(f"{f'throughput, {workers} worker(s), photos/s':34}" + "".join(f"{c:>22}" for c in cells))
    cells = [f"{by[(rt, 1)]['rss_mb']:.0f} / {by[(rt, 1)]['peak_rss_mb']:.0f}" for rt in RUNTIMES]
    lines.append(f"{'RSS serving / peak, MB':34}" + "".join(f"{c:>22}" for c in cells))
    cells = [f"{by[(rt, 1)]['build_images_per_s']:.1f}" for rt in RUNTIMES]
    lines.append(f"{'index build, images/s':34}" + "".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(".benchmark-cache"), help="models and data are kept here")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--measure", nargs=2, metavar=("RUNTIME", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.work, args.measure[0], int(args.measure[1]), args.runs)))
        return
    prepare(args.work)
    results = []
    for runtime in RUNTIMES:
        for workers in (0, 1, 2):
            print(f"measuring {runtime}, {workers} worker(s)…", file=sys.stderr)
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
                    runtime,
                    str(workers),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{os.cpu_count()} CPUs, {args.runs} runs per figure, random-weight full-size models")
        print(table(results))


if __name__ == "__main__":
    main()
