"""`python -m bot`: check the settings, load models and index once, then poll Telegram."""

from __future__ import annotations

import logging

from telegram import Update

from bot.app import build_application
from core.catalog import CatalogError
from core.cli import configure_logging, die, load_settings, run_cli
from core.encoders import ModelLoadError, limit_threads
from core.index import ArtifactsError, BuildInProgressError
from core.service import Guide
from core.settings import SettingsError

log = logging.getLogger("bot")


def main(argv: list[str] | None = None) -> int:
    settings = load_settings()
    try:
        settings.require_token()
    except SettingsError as exc:
        die(str(exc))
    configure_logging(settings.log_level)
    log.info("loading models and index (image: %s, text: %s)", settings.image_model, settings.text_model)
    try:
        guide = Guide.from_settings(settings, build_missing=True, progress=_log_progress)
    except (ArtifactsError, ModelLoadError, CatalogError, BuildInProgressError) as exc:
        die(str(exc))
    limit_threads(settings.inference_threads)
    application = build_application(settings, guide)
    # run_polling stops cleanly on SIGINT and SIGTERM and returns; the process then exits with 0.
    application.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0


def _log_progress(stage: str, done: int, total: int) -> None:
    if done == total or done % 1000 == 0:
        log.info("building the index: %s %d/%d", stage, done, total)


if __name__ == "__main__":
    run_cli(main)
