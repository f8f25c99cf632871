"""Checks the bot runs before loading any model: a bot with nothing to serve must say so in one line
within a second, not after a model load (and not over and over under a restart policy).

Each check is a small function in CHECKS; the first failure raises a PreflightError.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

from bot.settings import BotSettings
from core import Dataset, GuideError, check_store, has_index
from core.encoders import HEADROOM, ModelLoadError, choose_runtime, container_limit_mb, expected_footprint


class PreflightError(GuideError):
    """The bot cannot start with these settings and files; the message says what to do."""


def check_something_to_serve(settings: BotSettings) -> None:
    """An index, or a dataset to build one from."""
    if has_index(settings.core.artifacts_dir):
        return
    dataset = Dataset(settings.core.data_dir)
    if not dataset.places_path.is_file() or not dataset.has_photos():
        raise PreflightError(
            f"nothing to serve: no index in {settings.core.artifacts_dir}/ and no dataset (places.csv + images/) "
            f"in {settings.core.data_dir}/: run `python -m prep ingest RAW_DIR` and `python -m prep build` "
            "(or set DATA_DIR / ARTIFACTS_DIR)"
        )


def _writable_dir(path: Path) -> bool:
    """Whether files can be created in `path` (or in the nearest existing parent that would hold it)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def check_writable(settings: BotSettings) -> None:
    """The state file, the health file and (to build or reindex) the artifacts folder."""
    places = {
        "BOT_STATE_FILE": settings.state_file.parent,
        "HEALTH_FILE": settings.health_file.parent,
        "ARTIFACTS_DIR": settings.core.artifacts_dir,
        "CONTRIB_DIR": settings.core.contributions_dir,
    }
    for variable, folder in places.items():
        if not _writable_dir(folder):
            raise PreflightError(
                f"{folder}/ is not writable by this user (uid {os.getuid()}): set {variable} to a folder it can "
                "write (under Docker: inside a mounted volume, see docker-compose.yml; if it is one, the folder's "
                "owner must be PUID/PGID from .env)"
            )


def check_state_file(settings: BotSettings) -> None:
    """The state file is a file (or not there yet): a folder in its place would end the bot after its start."""
    path = settings.state_file
    if path.exists() and (path.is_symlink() or not path.is_file()):
        raise PreflightError(f"BOT_STATE_FILE {path} is not a regular file: remove it or set BOT_STATE_FILE")


def check_contribution_store(settings: BotSettings) -> None:
    """The contribution store opens (read-only here): a damaged one would end the bot after its models load,
    then again at every restart."""
    try:
        check_store(settings.core.contributions_dir)
    except GuideError as exc:
        raise PreflightError(f"CONTRIB_DIR: {exc}") from None


def check_models(settings: BotSettings) -> None:
    """The runtime resolves (an ONNX export is read, not loaded) and local model folders exist."""
    try:
        runtime = choose_runtime(settings.core)
    except ModelLoadError as exc:
        raise PreflightError(str(exc)) from None
    if runtime.name != "torch":
        return
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("sentence_transformers") is None:
        raise PreflightError(
            f"no ONNX export of IMAGE_MODEL/TEXT_MODEL in {settings.core.onnx_dir}/ and this is the serving install "
            "(no torch): export them with `python -m prep export-onnx --int8` (Docker: "
            "`docker compose run --rm prep export-onnx --int8`) or set MODEL_DIR"
        )
    for variable, name in (("IMAGE_MODEL", settings.core.image_model), ("TEXT_MODEL", settings.core.text_model)):
        looks_local = name.startswith((".", "/", "~")) or os.sep in name.removeprefix("sentence-transformers/")
        if looks_local and not Path(name).expanduser().is_dir():
            raise PreflightError(f"{variable} points at {name}, which is not a folder")


def check_memory(settings: BotSettings) -> None:
    """The models' expected peak fits the memory the bot may use: a container killed while loading
    them restarts into the same death, silently, under `restart: unless-stopped`."""
    limit = settings.memory_limit_mb or container_limit_mb()
    if limit is None:
        return
    runtime = choose_runtime(settings.core)
    footprint = expected_footprint(runtime)
    if footprint is None or footprint.peak_mb <= HEADROOM * limit:
        return
    if runtime.name == "torch":
        fix = "export the models to ONNX int8 (`docker compose run --rm prep export-onnx --int8`)"
    else:
        fix = "export them again with `python -m prep export-onnx --int8` (Docker: `docker compose run --rm prep "
        fix += "export-onnx --int8`)"
    raise PreflightError(
        f"serving on {runtime.name} needs {footprint.describe()} at its peak, more than {HEADROOM:.0%} of the "
        f"{limit} MB this process may use: {fix}, or raise the limit (BOT_MEM_LIMIT in .env) to at least "
        f"{round(footprint.peak_mb / HEADROOM / 50 + 0.5) * 50} MB"
    )


CHECKS: tuple[Callable[[BotSettings], None], ...] = (
    check_something_to_serve,
    check_writable,
    check_state_file,
    check_contribution_store,
    check_models,
    check_memory,
)


def preflight(settings: BotSettings) -> None:
    for check in CHECKS:
        check(settings)
