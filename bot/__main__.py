"""`python -m bot`: check the settings and the data, load models and index once, then poll Telegram."""

from __future__ import annotations

import argparse
import logging

from bot.logs import configure_bot_logging
from bot.preflight import preflight
from bot.settings import BotSettings
from core import GuideError
from core.cli import die, explain_os_error, package_version, run_cli

log = logging.getLogger("bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="The landmark guide's Telegram bot. Settings come from the environment and .env "
        "(see .env.example); nothing is loaded before they and the data have been checked.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("--check", action="store_true", help="check settings and data, then exit (loads no model)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = BotSettings.from_env()
        token = settings.require_token()
        configure_bot_logging(settings.core.log_level, secrets=(token,))
        preflight(settings)
    except GuideError as exc:
        die(str(exc))
    except OSError as exc:
        die(explain_os_error(exc))
    if args.check:
        print("settings and data look fine")
        return 0
    return _serve(settings)


def _serve(settings: BotSettings) -> int:
    # Imported here: PTB and the models cost seconds and memory that --help and --check never need.
    from telegram import Update

    from bot.app import build_application
    from core import Guide
    from core.encoders import limit_threads

    core = settings.core
    log.info("loading models and index (image: %s, text: %s)", core.image_model, core.text_model)
    try:
        guide = Guide.from_settings(core, build_missing=True, progress=_log_progress)
    except GuideError as exc:
        die(str(exc))
    limit_threads(core.threads)
    application = build_application(settings, guide)
    # run_polling stops cleanly on SIGINT and SIGTERM and returns; the process then exits with 0.
    application.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0


def _log_progress(stage: str, done: int, total: int) -> None:
    if done == total or done % 1000 == 0:
        log.info("building the index: %s %d/%d", stage, done, total)


if __name__ == "__main__":
    run_cli(lambda: main())
