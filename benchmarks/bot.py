"""The bot as tourists and the VPS see it: photo replies through the real bot, and its peak memory.

    .venv/bin/python -m benchmarks.bot [--work DIR] [--photos N] [--json]

Runs `python -m bot` (the real process, as Docker runs it) against the fake Bot API with the
full-size random-weight models of `benchmarks.serving`, once per configuration: runtime (torch,
ONNX int8) × CPUs given to the process (taskset: 1 or 2) × WORKERS (1 or 2; each worker's inference
gets CPUs // WORKERS threads, as the bot sizes them). For each it measures, server side, the time
from the update leaving getUpdates to the first reply reaching the server, for a 1280×960 photo
(download, decode, encode, search, vote, card), one photo at a time (p50/p95); the throughput of a
burst of photos from different users; and the process's peak RSS with both towers loaded after
photos and text queries. Ratios are against torch with the same CPUs and WORKERS, in the same run.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.serving import QUERY, prepare

REPO = Path(__file__).resolve().parents[1]
RUNTIMES = ("torch", "onnx-int8")
CONFIGS = ((2, 2, 1), (2, 2, 2), (2, 1, 2), (1, 1, 1), (1, 2, 1))  # (CPUs, WORKERS, threads per inference)
BURST = 8
WARM_UP = 3
# Between photos sent one at a time: each answer is ~4 messages (typing, card, others, consent) and the
# bot keeps Telegram's ~30 messages/s per bot (AIORateLimiter), which photos back to back would exceed,
# timing the limiter instead of the bot. The burst meets that limit on purpose: it is the real ceiling.
PACE_S = 0.3


def _artifacts(work: Path, runtime: str) -> Path:
    """An index embedded by the runtime that serves it (the bot warns about any other)."""
    from benchmarks.serving import _settings
    from core.build import build_index
    from core.encoders import choose_runtime, model_id

    artifacts = work / f"bot-artifacts-{runtime}"
    if not (artifacts / "current").exists():
        settings = _settings(work, runtime, 1)
        encoder = choose_runtime(settings).image_encoder()
        build_index(settings.data_dir, artifacts, encoder, text_model=model_id(settings.text_model))
    return artifacts


def _env(
    work: Path, runtime: str, workers: int, threads: int, fake_url: str, state: Path, overrides: dict[str, str]
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ADMIN_"))}
    env.update(
        TELEGRAM_BOT_TOKEN="123456:BENCHMARK",
        TELEGRAM_API_URL=f"{fake_url}/bot",
        TELEGRAM_FILE_URL=f"{fake_url}/file/bot",
        NO_PROXY="127.0.0.1,localhost",
        DATA_DIR=str(work / "data"),
        ARTIFACTS_DIR=str(_artifacts(work, runtime)),
        IMAGE_MODEL=str(work / "models" / "clip-ViT-B-32"),
        TEXT_MODEL=str(work / "models" / "clip-ViT-B-32-multilingual-v1"),
        ENCODER_BACKEND="torch" if runtime == "torch" else "onnx",
        MODEL_DIR=str(work / runtime) if runtime != "torch" else str(state / "none"),
        WORKERS=str(workers),
        INFERENCE_THREADS=str(threads),
        BOT_STATE_FILE=str(state / "bot_state.json"),
        HEALTH_FILE=str(state / "health"),
        CONTRIB_DIR=str(state / "contributions"),
        LOG_LEVEL="WARNING",
        PLACE_MODEL="none",  # CLIP alone unless `overrides` says otherwise (benchmarks.place_tower)
        PYTHONPATH=str(REPO),
    )
    return env | overrides


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(
    work: Path, runtime: str, config: tuple[int, int, int], photos: int, overrides: dict[str, str] | None = None
) -> dict:
    """One configuration's figures; `overrides`: environment the bot gets besides (another index, PLACE_MODEL)."""
    from tests.helpers.fake_telegram import FakeTelegram

    cpus, workers, threads = config
    large = (work / "photos" / "large.jpg").read_bytes()
    fake = FakeTelegram()
    await fake.start()
    state = Path(tempfile.mkdtemp(prefix="bot-bench-"))
    cpu_list = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:cpus])
    process = await asyncio.create_subprocess_exec(
        "taskset",
        "-c",
        cpu_list,
        sys.executable,
        "-m",
        "bot",
        env=_env(work, runtime, workers, threads, fake.url, state, overrides or {}),
        cwd=state,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    users = iter(range(10_000, 1_000_000))
    latencies: list[float] = []
    try:
        waiting = asyncio.create_task(fake.wait_for(lambda: fake.sent("setMyCommands"), timeout=600))
        ended = asyncio.create_task(process.wait())
        await asyncio.wait({waiting, ended}, return_when=asyncio.FIRST_COMPLETED)
        if ended.done():
            waiting.cancel()
            raise RuntimeError("the bot ended before it was ready")
        ended.cancel()

        async def reply_ms(user: int) -> float:
            update = await fake.send_photo(user, large)
            reply = (await fake.wait_replies(user, 1, timeout=120))[0]
            return (reply.at - fake.delivered[update]) * 1000

        for _ in range(WARM_UP):
            await reply_ms(next(users))
        for _ in range(photos):
            await asyncio.sleep(PACE_S)
            latencies.append(await reply_ms(next(users)))
        await asyncio.sleep(1.0)
        started = time.monotonic()
        await asyncio.gather(*(reply_ms(next(users)) for _ in range(BURST)))
        burst_s = time.monotonic() - started
        for _ in range(3):
            user = next(users)
            await fake.send(user, text=QUERY)
            await fake.wait_for(lambda user=user: fake.sent("sendMediaGroup", user), timeout=120)
        rss = _peak_rss_mb(process.pid)
    except RuntimeError:
        pass
    finally:
        if process.returncode is None:
            process.terminate()
        _, stderr = await process.communicate()
        await fake.stop()
        shutil.rmtree(state, ignore_errors=True)
    if process.returncode not in (0, -15) or not latencies:
        raise SystemExit(f"the bot failed ({runtime}): {stderr.decode()[-2000:]}")
    latencies.sort()
    return {
        "runtime": runtime,
        "cpus": cpus,
        "workers": workers,
        "threads": threads,
        "photo_p50_ms": statistics.median(latencies),
        "photo_p95_ms": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
        "burst_photos_per_s": BURST / burst_s,
        "peak_rss_mb": rss,
    }


def table(results: list[dict]) -> str:
    torch = {(r["cpus"], r["workers"], r["threads"]): r for r in results if r["runtime"] == "torch"}
    lines = [
        f"{'CPUs':>4} {'workers×threads':>15} {'runtime':>10} {'photo p50 / p95, ms':>22} {'vs torch':>8} "
        f"{'burst photos/s':>14} {'peak RSS, MB':>12}"
    ]
    for r in results:
        base = torch[(r["cpus"], r["workers"], r["threads"])]
        lines.append(
            f"{r['cpus']:>4} {str(r['workers']) + ' × ' + str(r['threads']):>15} {r['runtime']:>10} "
            f"{r['photo_p50_ms']:>10.1f} / {r['photo_p95_ms']:<9.1f} {base['photo_p50_ms'] / r['photo_p50_ms']:>7.1f}× "
            f"{r['burst_photos_per_s']:>14.1f} {r['peak_rss_mb']:>12.0f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(".benchmark-cache"), help="models and data are kept here")
    parser.add_argument("--photos", type=int, default=20, help="photos one at a time per configuration")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from core.encoders import int8_kernels

    work = args.work.resolve()  # the bot runs in a folder of its own
    prepare(work)
    cpus = len(os.sched_getaffinity(0))
    results = []
    for config in CONFIGS:
        if config[0] > cpus:
            continue
        for runtime in RUNTIMES:
            cpus_, workers, threads = config
            print(f"measuring {runtime} on {cpus_} CPU(s), {workers} workers × {threads} threads…", file=sys.stderr)
            results.append(asyncio.run(measure(work, runtime, config, args.photos)))
    if args.json:
        print(json.dumps({"int8_kernels": int8_kernels(), "results": results}, indent=2))
    else:
        print(f"int8 kernels: {int8_kernels()}; {args.photos} photos one at a time + a burst of {BURST} per row")
        print(table(results))


if __name__ == "__main__":
    main()
