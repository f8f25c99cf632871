"""Liveness for container healthchecks: the running bot touches a file; `python -m bot.health` checks it.

The bot has no HTTP port to probe, so while its event loop runs and its updater polls, it rewrites
HEALTH_FILE every HEARTBEAT_SECONDS; the check fails when the file is older than STALE_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from telegram.ext import Application

HEARTBEAT_SECONDS = 30
STALE_SECONDS = 120

log = logging.getLogger(__name__)


async def heartbeat(application: Application, path: Path) -> None:
    """Runs for the application's lifetime (started in post_init, cancelled at shutdown)."""
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


def main(argv: list[str] | None = None) -> int:
    import argparse

    from core.cli import package_version

    parser = argparse.ArgumentParser(
        prog="python -m bot.health",
        description=f"Exit 0 if the running bot rewrote HEALTH_FILE in the last {STALE_SECONDS} s.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.parse_args(argv)
    # Cheap on purpose (it runs every minute): no PTB, no models, only the settings.
    from bot.settings import BotSettings
    from core import GuideError

    try:
        path = BotSettings.from_env().health_file
    except GuideError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    if is_alive(path):
        return 0
    print(f"unhealthy: {path} is missing or older than {STALE_SECONDS} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
