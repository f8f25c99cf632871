"""Progress for prep's long steps: a tqdm bar per stage on a terminal, plain periodic lines otherwise
(a bar redrawn line by line would fill a log file)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import TextIO, TypeVar

from tqdm import tqdm

LABELS = {
    "hash": "checking files",
    "embed": "embedding",
    "clean": "checking",
    "export": "exporting",
    "wikidata": "asking Wikidata",
    "enrich": "describing",
    "evaluate": "evaluating",
    "geo": "evaluating with locations",
    "calibrate": "calibrating",
    "index": "indexing",
    "geosearch": "finding sights",
    "commons": "listing Commons photos",
    "download": "downloading photos",
}
UNITS = {
    "export": "steps",
    "wikidata": "ids",
    "enrich": "landmarks",
    "evaluate": "batches",
    "calibrate": "steps",
    "index": "steps",
    "geosearch": "tiles",
    "commons": "landmarks",
}
T = TypeVar("T")
# Seconds between plain progress lines when stderr is not a terminal.
LINE_INTERVAL = 10.0


class StageProgress:
    """Callback of the form progress(stage, done, total)."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.bars = self.stream.isatty()
        self._bars: dict[str, tqdm] = {}
        self._last_line: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled or total == 0:
            return
        if self.bars:
            self._bar(stage, done, total)
        else:
            self._line(stage, done, total)

    def _bar(self, stage: str, done: int, total: int) -> None:
        bar = self._bars.get(stage)
        if bar is None:
            unit = " " + UNITS.get(stage, "photos")
            bar = self._bars[stage] = tqdm(total=total, desc=LABELS.get(stage, stage), unit=unit, file=self.stream)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def _line(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        first = stage not in self._last_line
        if first or done >= total or now - self._last_line[stage] >= LINE_INTERVAL:
            self._last_line[stage] = now
            unit = UNITS.get(stage, "photos")
            print(f"{LABELS.get(stage, stage)}: {done}/{total} {unit}", file=self.stream, flush=True)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


def progress_over(items: Iterable[T], stage: str, total: int | None = None, enabled: bool = True) -> Iterator[T]:
    """Iterate with progress: a bar on a terminal, periodic plain lines in a log (`total` if not sized)."""
    if total is None:
        items = items if isinstance(items, Sized) else list(items)
        total = len(items)
    count = total
    progress = StageProgress(enabled=enabled)
    try:
        for done, item in enumerate(items, 1):
            yield item
            progress(stage, done, count)
    finally:
        progress.close()
