"""What the place tower (issue #34) costs the bot: a photo's answer with CLIP alone and with both towers
fused, the process's memory, and the build's embedding, with full-size random-weight stand-ins.

    .venv/bin/python -m benchmarks.place_tower [--work .benchmark-cache] [--runs 30] [--json]

It reuses a `benchmarks.serving` work folder (full-size CLIP and its int8 export, 200 photos), writes a
full-size DINOv2-small stand-in and its int8 export beside them, builds the index with both towers, and
times each photo path in its own process, as the bot runs it (int8, 2 workers × 1 thread on 2 vCPU).
Targets (issue #34): fused p50 ≤ 2.2× CLIP alone, the bot's RSS ≤ 600 MB, the build's embedding
≤ 2.5× CLIP alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

TARGET_LATENCY_RATIO = 2.2
TARGET_RSS_MB = 600.0
TARGET_EMBED_RATIO = 2.5


def prepare(work: Path) -> None:
    from benchmarks.serving import prepare as prepare_clip
    from prep.export_onnx import export_place
    from prep.random_models import build_place_model

    prepare_clip(work)
    place = work / "models" / "dinov2-small"
    if not (place / "model.safetensors").is_file():
        build_place_model(place, "full")
    if not (work / "onnx-int8" / "place" / "place.json").is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_place(str(place), work / "onnx-int8" / "place", int8=True)


def _settings(work: Path, place: bool):
    from benchmarks.serving import _settings as clip_settings

    base = clip_settings(work, "onnx-int8", 2)
    from dataclasses import replace

    return replace(
        base,
        artifacts_dir=work / ("artifacts-place" if place else "artifacts-clip"),
        place_model=str(work / "models" / "dinov2-small") if place else "none",
    )


def measure_build(work: Path, place: bool) -> dict:
    """Seconds the build spends embedding (a fresh artifacts folder and embedding cache)."""
    import shutil

    from core import build_index
    from core.encoders import choose_runtime, limit_threads

    settings = _settings(work, place)
    shutil.rmtree(settings.artifacts_dir, ignore_errors=True)
    runtime = choose_runtime(settings)
    image, place_encoder = runtime.image_encoder(), runtime.place_encoder()
    limit_threads(2)
    started = time.perf_counter()
    report = build_index(
        settings.data_dir, settings.artifacts_dir, image, text_model=settings.text_model, place_encoder=place_encoder
    )
    return {"build_s": round(time.perf_counter() - started, 2), "photos": report.photos}


def measure_answer(work: Path, place: bool, runs: int) -> dict:
    """A 1280×960 photo's answer through the Guide as the bot builds it (one worker's thread), and RSS."""
    from core import Guide
    from core.encoders import limit_threads
    from tests.helpers.datagen import jpeg_bytes, scene

    guide = Guide.from_settings(_settings(work, place))
    limit_threads(1)
    photo = jpeg_bytes(scene(3, 77, (1280, 960)), 90)
    result = guide.recognize(photo)  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        guide.recognize(photo)
        times.append((time.perf_counter() - started) * 1000)
    # A photo CLIP is already sure of (one of the index's own): the place tower is not run for it.
    sure = sorted((work / "data").glob("images/*/*/*"))[0].read_bytes()
    guide.recognize(sure)
    sure_times = []
    for _ in range(runs):
        started = time.perf_counter()
        answered = guide.recognize(sure)
        sure_times.append((time.perf_counter() - started) * 1000)
    rss = int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1]) / 1024
    return {
        "p50_ms": round(statistics.median(times), 1),
        "sure_p50_ms": round(statistics.median(sure_times), 1),
        "sure_towers": list(answered.towers),
        "peak_rss_mb": round(rss, 1),
        "towers": list(result.towers),
    }


def _child(work: Path, kind: str, place: bool, runs: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.place_tower",
            "--work",
            str(work),
            "--runs",
            str(runs),
            "--child",
            kind,
            str(int(place)),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.place_tower", description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path(".benchmark-cache"))
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from core.cli import configure_logging

    configure_logging("ERROR")
    if args.child:
        kind, place = args.child[0], args.child[1] == "1"
        measured = measure_build(args.work, place) if kind == "build" else measure_answer(args.work, place, args.runs)
        print(json.dumps(measured))
        return 0
    prepare(args.work)
    result = {
        name: {
            "build": _child(args.work, "build", place, args.runs),
            "answer": _child(args.work, "answer", place, args.runs),
        }
        for name, place in (("clip", False), ("fused", True))
    }
    clip, fused = result["clip"], result["fused"]
    latency = fused["answer"]["p50_ms"] / clip["answer"]["p50_ms"]
    embed = fused["build"]["build_s"] / clip["build"]["build_s"]
    result["ratios"] = {"answer_p50": round(latency, 2), "build": round(embed, 2)}
    result["within_targets"] = (
        latency <= TARGET_LATENCY_RATIO
        and fused["answer"]["peak_rss_mb"] <= TARGET_RSS_MB
        and embed <= TARGET_EMBED_RATIO
    )
    if args.json:
        print(json.dumps(result))
    else:
        for name in ("clip", "fused"):
            r = result[name]
            print(
                f"{name:>5}: photo p50 {r['answer']['p50_ms']} ms (a photo CLIP is sure of: "
                f"{r['answer']['sure_p50_ms']} ms), peak RSS {r['answer']['peak_rss_mb']} MB, "
                f"build {r['build']['build_s']} s for {r['build']['photos']} photos"
            )
        print(
            f"fused / CLIP alone: answer ×{latency:.2f} (target ≤ {TARGET_LATENCY_RATIO}), build ×{embed:.2f} "
            f"(target ≤ {TARGET_EMBED_RATIO}); peak RSS target ≤ {TARGET_RSS_MB:g} MB"
        )
    return 0 if result["within_targets"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
