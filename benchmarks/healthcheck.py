"""The Docker healthcheck's cost: `python -m bot.health` runs every 60 s inside the bot's memory limit.

    .venv/bin/python -m benchmarks.healthcheck [--runs 20] [--json]

Targets (issue #20): ≤ 50 ms wall time and ≤ 20 MB peak RSS a run (the previous check imported core:
NumPy and FAISS, 1.1–1.6 s and 64 MB). Each run is a fresh process, as Docker starts it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 50.0
TARGET_RSS_MB = 20.0
PROBE = """import resource
from bot.health import main
code = main([])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, code)"""


def measure(runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        alive = Path(folder) / "alive"
        alive.write_text("1")
        env = {**os.environ, "HEALTH_FILE": str(alive)}
        times, rss = [], []
        for _ in range(runs):
            started = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
            times.append((time.perf_counter() - started) * 1000)
            kilobytes, code = out.stdout.split()
            assert code == "0", out.stdout + out.stderr
            rss.append(int(kilobytes) / 1024)
    return {"runs": runs, "p50_ms": round(statistics.median(times), 1), "max_rss_mb": round(max(rss), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.healthcheck", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.runs)
    result["within_targets"] = result["p50_ms"] <= TARGET_MS and result["max_rss_mb"] <= TARGET_RSS_MB
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"healthcheck: p50 {result['p50_ms']} ms (target ≤ {TARGET_MS:g}), peak RSS {result['max_rss_mb']} MB "
            f"(target ≤ {TARGET_RSS_MB:g}) over {args.runs} runs"
        )
    return 0 if result["within_targets"] else 1


if __name__ == "__main__":
    sys.exit(main())
