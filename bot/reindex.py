"""/reindex: rebuild the index in the background, report to the admin, swap it in on success."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from core import BuildReport, Guide

log = logging.getLogger(__name__)

# Seconds between progress messages to the admin: informative without hitting Telegram's limits.
PROGRESS_INTERVAL = 5.0

Notify = Callable[[str, int, int], Coroutine[Any, Any, None]]


class ReindexBusyError(RuntimeError):
    """A reindex is already running."""


class Reindexer:
    """Runs one rebuild at a time on its own thread, so the query workers keep answering.

    The slot is claimed on the event loop (no race between two admins) and released on every exit
    path; `shutdown()` (SIGTERM) cancels a running build at its next batch, keeping the old index."""

    def __init__(self, guide: Guide, data_dir: Path, artifacts_dir: Path) -> None:
        self.guide = guide
        self.data_dir = data_dir
        self.artifacts_dir = artifacts_dir
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reindex")
        self._running = False
        self._cancel = threading.Event()
        self.background: asyncio.Task[None] | None = None  # the admin-facing task around run()

    def claim(self) -> None:
        """Reserve the single reindex slot; pair it with `run()` or `release()`."""
        if self._running:
            raise ReindexBusyError("a reindex is already running")
        self._running = True

    def release(self) -> None:
        self._running = False

    async def run(self, on_progress: Notify) -> BuildReport:
        """Rebuild and swap; call `claim()` first. Errors propagate; the old index keeps serving."""
        loop = asyncio.get_running_loop()
        last_sent = 0.0

        def progress(stage: str, done: int, total: int) -> None:
            nonlocal last_sent
            now = time.monotonic()
            if now - last_sent >= PROGRESS_INTERVAL and done < total:
                last_sent = now
                asyncio.run_coroutine_threadsafe(on_progress(stage, done, total), loop)

        started = time.monotonic()
        try:
            report = await loop.run_in_executor(
                self._thread, self.guide.rebuild, self.data_dir, self.artifacts_dir, progress, self._cancel
            )
            log.info(
                "reindex done in %.1f s: %d photos, %d embedded",
                time.monotonic() - started,
                report.photos,
                report.embedded,
            )
            return report
        finally:
            self.release()

    def shutdown(self) -> None:
        """Stop a running build at its next batch; the process then exits within seconds, not minutes."""
        self._cancel.set()
        self._thread.shutdown(wait=False, cancel_futures=True)
