"""Liveness for container healthchecks: the running bot touches a file; `python -m bot.health` checks it.

The bot has no HTTP port to probe, so while its event loop runs and its updater polls, it rewrites
HEALTH_FILE every HEARTBEAT_SECONDS; the check fails when the file is older than STALE_SECONDS.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from telegram.ext import Application

DEFAULT_HEALTH_FILE = Path(tempfile.gettempdir()) / "landmark-guide.alive"
HEARTBEAT_SECONDS = 30
STALE_SECONDS = 120

log = logging.getLogger(__name__)


async def heartbeat(application: Application, path: Path) -> None:
    """Runs for the application's lifetime (started in post_init, cancelled at shutdown)."""
    import asyncio  # here: the healthcheck imports this module and must stay light (26 ms for asyncio alone)

    while True:
        if application.updater is not None and not application.updater.running:
            await asyncio.sleep(1)  # post_init runs just before polling starts
            continue
        try:
            path.write_text(f"{time.time():.0f}\n")
        except OSError:
            log.warning("cannot write the health file %s", path, exc_info=True)
        await asyncio.sleep(HEARTBEAT_SECONDS)


def is_alive(path: Path, now: float | None = None) -> bool:
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return False
    return age <= STALE_SECONDS


def _parser() -> argparse.ArgumentParser:
    import argparse
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("landmark-guide")
    except PackageNotFoundError:
        installed = "unknown"
    parser = argparse.ArgumentParser(
        prog="python -m bot.health",
        description=f"Exit 0 if the running bot rewrote HEALTH_FILE in the last {STALE_SECONDS} s.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed}")
    return parser


def health_file(environ: dict[str, str] | None = None, env_file: str = ".env") -> Path:
    """HEALTH_FILE as the bot reads it (the environment wins over .env), without importing core."""
    value = (os.environ if environ is None else environ).get("HEALTH_FILE", "").strip()
    if not value and Path(env_file).is_file():
        from dotenv import dotenv_values

        value = (dotenv_values(env_file).get("HEALTH_FILE") or "").strip()
    return Path(value) if value else DEFAULT_HEALTH_FILE


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments:  # --help, --version: the light path below is what Docker runs, with no arguments
        _parser().parse_args(arguments)
    # Light on purpose (Docker runs it every minute inside the bot's memory limit): the environment and
    # one file's age; no core, NumPy, FAISS, ONNX Runtime, Pillow or PTB (tests/bot/test_health.py).
    path = health_file()
    if is_alive(path):
        return 0
    print(f"unhealthy: {path} is missing or older than {STALE_SECONDS} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
