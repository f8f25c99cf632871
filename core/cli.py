"""Command-line plumbing shared by `python -m core`, `python -m prep` and `python -m bot`."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import NoReturn

from tqdm import tqdm

from core.settings import Settings, SettingsError

EXIT_USAGE = 2


def die(message: str, code: int = EXIT_USAGE) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def load_settings(*, all_cores: bool = False) -> Settings:
    """Settings from the environment and `.env`; an invalid value ends the command with one line.

    all_cores: for commands that run one inference at a time (prep, the query CLI). WORKERS is the
    bot's concurrency and splits the cores between its workers; here one stream gets them all."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        die(str(exc))
    return replace(settings, workers=1) if all_cores else settings


def configure_logging(level: str = "WARNING") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Model loading chatter (weight-loading bars, deprecation notes) is noise for our users. Only
    # environment variables here: importing transformers would cost the ONNX backend ~250 MB.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in ("transformers", "sentence_transformers", "httpx", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)


class StageProgress:
    """A tqdm bar per stage for callbacks of the form progress(stage, done, total)."""

    LABELS = {"hash": "checking files", "embed": "embedding", "clean": "checking", "export": "exporting"}
    UNITS = {"export": " steps"}

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled or total == 0:
            return
        bar = self._bars.get(stage)
        if bar is None:
            bar = self._bars[stage] = tqdm(
                total=total, desc=self.LABELS.get(stage, stage), unit=self.UNITS.get(stage, " photos")
            )
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


def run_cli(main: Callable[[], int]) -> NoReturn:
    """Exit with main's code; Ctrl-C ends quietly with 130 instead of a traceback."""
    try:
        code = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    raise SystemExit(code)
