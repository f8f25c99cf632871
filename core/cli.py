"""Command-line plumbing shared by `python -m core`, `python -m prep` and `python -m bot`.

Every command returns a report object (`to_dict()` for `--json`, `summary()` for people) and
`emit` prints it, so the choice between the two forms is made in one place.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from typing import NoReturn, Protocol, TypeVar

from core.errors import GuideError
from core.settings import Settings

EXIT_USAGE = 2
T = TypeVar("T")


class Report(Protocol):
    def to_dict(self) -> dict: ...

    def summary(self) -> str: ...


def package_version() -> str:
    """The installed version, for every entry point's --version (nothing heavy is imported)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("landmark-guide")
    except PackageNotFoundError:
        return "unknown"


def die(message: str, code: int = EXIT_USAGE) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def explain_os_error(exc: OSError) -> str:
    """One line for a file-system failure: what, where, and for permissions what to do."""
    where = f": {exc.filename}" if exc.filename else ""
    message = f"{exc.strerror or exc.__class__.__name__}{where}"
    if isinstance(exc, PermissionError):
        message += " (run as the owner of that folder; under Docker set PUID/PGID in .env to your `id -u`/`id -g`)"
    return message


def guarded(action: Callable[[], T]) -> T:
    """Run a command's work: a GuideError or an OSError (permissions, a full disk…) ends it with one line."""
    try:
        return action()
    except GuideError as exc:
        die(str(exc))
    except OSError as exc:
        die(explain_os_error(exc))


def emit(report: Report, as_json: bool) -> None:
    """The report as its summary, or as JSON: one object, or one per line for reports of several items."""
    if not as_json:
        print(report.summary())
        return
    lines = getattr(report, "json_lines", None)
    for item in lines() if callable(lines) else [report.to_dict()]:
        print(json.dumps(item, ensure_ascii=False))


def load_settings() -> Settings:
    """Core's settings from the environment and `.env`; an invalid value ends the command with one line."""
    try:
        return Settings.from_env()
    except GuideError as exc:
        die(str(exc))


def configure_logging(level: str = "WARNING") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Model loading chatter (weight-loading bars, deprecation notes) is noise for our users. Only
    # environment variables here: importing transformers would cost the ONNX backend ~250 MB.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in ("transformers", "sentence_transformers", "httpx", "httpcore", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_cli(main: Callable[[], int]) -> NoReturn:
    """Exit with main's code. A GuideError that escaped is one line and exit 2; Ctrl-C ends quietly
    with 130 instead of a traceback."""
    try:
        code = main()
    except GuideError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    except BrokenPipeError:  # `… | head`: the reader left; no traceback, no error line
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    except OSError as exc:
        print(f"error: {explain_os_error(exc)}", file=sys.stderr)
        code = EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    raise SystemExit(code)
