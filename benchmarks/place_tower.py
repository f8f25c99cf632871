"""What the place tower (issue #34) costs the bot: a photo's answer with CLIP alone and with both towers
fused, the process's memory, and the build's embedding, with full-size random-weight stand-ins.

    .venv/bin/python -m benchmarks.place_tower [--work .benchmark-cache] [--runs 30] [--json]

It reuses a `benchmarks.serving` work folder (full-size CLIP and its int8 export, 200 photos), writes a
full-size DINOv2-small stand-in and its int8 export beside them, builds the index with both towers, and
times each photo path in its own process: the Guide alone, on one worker's thread, and the real bot
(`python -m bot` against the fake Bot API, as `benchmarks.bot` runs it: int8, 2 workers × 1 thread
on 2 vCPU; from the update leaving getUpdates to the first reply — download, decode, both towers,
vote, card). Targets (issue #34): the answer through the real bot fused p50 ≤ 2.2× CLIP alone, the
bot's RSS ≤ 600 MB, the build's embedding ≤ 2.5× CLIP alone.
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
# The bot as deployed on 2 vCPU: (CPUs, WORKERS, threads per inference), see benchmarks.bot.
BOT_CONFIG = (2, 2, 1)


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


def measure_bot(work: Path, place: bool, runs: int) -> dict:
    """The real bot's photo answer (p50/p95, burst) and peak RSS, serving the index built with or without
    the place tower (`measure_build` builds both, each embedded by the runtime that serves it)."""
    import asyncio

    from benchmarks.bot import measure

    overrides = {
        "ARTIFACTS_DIR": str(_settings(work, place).artifacts_dir),
        "PLACE_MODEL": str(work / "models" / "dinov2-small") if place else "none",
    }
    found = asyncio.run(measure(work, "onnx-int8", BOT_CONFIG, runs, overrides))
    return {key: round(value, 1) if isinstance(value, float) else value for key, value in found.items()}


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
        measure = {"build": measure_build, "answer": measure_answer, "bot": measure_bot}[kind]
        measured = measure(args.work, place) if kind == "build" else measure(args.work, place, args.runs)
        print(json.dumps(measured))
        return 0
    prepare(args.work)
    result = {
        name: {
            "build": _child(args.work, "build", place, args.runs),
            "answer": _child(args.work, "answer", place, args.runs),
            "bot": _child(args.work, "bot", place, args.runs),
        }
        for name, place in (("clip", False), ("fused", True))
    }
    clip, fused = result["clip"], result["fused"]
    guide = fused["answer"]["p50_ms"] / clip["answer"]["p50_ms"]
    latency = fused["bot"]["photo_p50_ms"] / clip["bot"]["photo_p50_ms"]
    embed = fused["build"]["build_s"] / clip["build"]["build_s"]
    result["ratios"] = {"bot_p50": round(latency, 2), "guide_p50": round(guide, 2), "build": round(embed, 2)}
    result["within_targets"] = (
        latency <= TARGET_LATENCY_RATIO and fused["bot"]["peak_rss_mb"] <= TARGET_RSS_MB and embed <= TARGET_EMBED_RATIO
    )
    if args.json:
        print(json.dumps(result))
    else:
        for name in ("clip", "fused"):
            r = result[name]
            bot = r["bot"]
            print(
                f"{name:>5}: through the bot p50 / p95 {bot['photo_p50_ms']} / {bot['photo_p95_ms']} ms, burst "
                f"{bot['burst_photos_per_s']} photos/s, bot peak RSS {bot['peak_rss_mb']} MB; the Guide alone "
                f"p50 {r['answer']['p50_ms']} ms (a photo CLIP is sure of: {r['answer']['sure_p50_ms']} ms); "
                f"build {r['build']['build_s']} s for {r['build']['photos']} photos"
            )
        print(
            f"fused / CLIP alone: through the bot ×{latency:.2f} (target ≤ {TARGET_LATENCY_RATIO}; the Guide "
            f"alone ×{guide:.2f}), build ×{embed:.2f} (target ≤ {TARGET_EMBED_RATIO}); "
            f"bot peak RSS target ≤ {TARGET_RSS_MB:g} MB"
        )
    return 0 if result["within_targets"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
