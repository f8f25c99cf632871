"""`python -m bot`: check the settings and the data, load models and index once, then poll Telegram.

Runs unattended: Telegram unreachable (at start or later) is one log line per retry with a capped
backoff, never an exit; a token Telegram rejects is one line and exit code 2 (a restart would not fix
it); SIGTERM/SIGINT stop cleanly with 0. No expected failure prints a traceback, and the token is
redacted from everything the process writes, tracebacks of unexpected errors included.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import traceback
from typing import TYPE_CHECKING

from bot.logs import RedactingFilter, configure_bot_logging
from bot.preflight import preflight
from bot.settings import BotSettings
from core import GuideError
from core.cli import EXIT_USAGE, die, explain_os_error, package_version, run_cli

if TYPE_CHECKING:
    from bot.context import GuideApplication
    from core import Guide

log = logging.getLogger("bot")

# Waits between attempts to reach Telegram at start: doubling from the first, capped (a VPS booting
# before its network, a Telegram outage); PTB's own polling loop retries the same way once running.
START_RETRY_FIRST_S = 1.0
START_RETRY_MAX_S = 60.0
EXIT_TOKEN_REJECTED = EXIT_USAGE


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
    redact = RedactingFilter([token]).redact
    sys.excepthook = lambda kind, value, tb: sys.stderr.write(
        redact("".join(traceback.format_exception(kind, value, tb)))
    )
    return _serve(settings)


def _serve(settings: BotSettings) -> int:
    # Imported here: PTB and the models cost seconds and memory that --help and --check never need.
    from bot.app import build_application, describe_start
    from core import Guide
    from core.encoders import choose_runtime, limit_threads

    core = settings.core
    log.info("loading models and index (image: %s, text: %s)", core.image_model, core.text_model)
    try:
        guide = Guide.from_settings(core, build_missing=True, progress=_log_progress)
    except GuideError as exc:
        die(str(exc))
    limit_threads(core.threads)
    log.info("%s", describe_start(settings, guide))
    parity = choose_runtime(core).int8_parity(guide.image_encoder, guide.text_encoder)
    if parity is not None:
        log.log(logging.INFO if parity.passed else logging.WARNING, "%s", parity.line())
    application = build_application(settings, guide)
    return asyncio.run(_poll_until_stopped(application, guide))


async def _poll_until_stopped(application: GuideApplication, guide: Guide) -> int:
    """run_polling's steps, with a start that waits for Telegram instead of exiting."""
    from telegram import Update
    from telegram.error import InvalidToken

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        if not await _connect(application, stop):
            return 0  # stopped while waiting for Telegram
    except InvalidToken:
        log.error("Telegram rejected TELEGRAM_BOT_TOKEN: check it with @BotFather and fix it in .env")
        return EXIT_TOKEN_REJECTED
    try:
        if application.post_init is not None:
            await application.post_init(application)
        assert application.updater is not None
        await application.updater.start_polling(allowed_updates=Update.ALL_TYPES, error_callback=_polling_failed)
        await application.start()
        log.info("bot @%s ready: %d photos indexed", application.bot.username, len(guide.index))
        await stop.wait()
    finally:
        await _stop(application)
    return 0


async def _connect(application: GuideApplication, stop: asyncio.Event) -> bool:
    """Initialise (getMe) until Telegram answers; False if asked to stop first."""
    from telegram.error import NetworkError

    delay = START_RETRY_FIRST_S
    while True:
        try:
            await application.initialize()
            return True
        except NetworkError as exc:  # TimedOut is one too; InvalidToken is not and ends the start
            log.warning("Telegram is unreachable (%s): retrying in %.0f s", _short(exc), delay)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return False
        except TimeoutError:
            delay = min(delay * 2, START_RETRY_MAX_S)


def _polling_failed(error: Exception) -> None:
    """PTB retries polling itself with a growing pause; one line per failure is enough."""
    log.warning("polling Telegram failed (%s): retrying", _short(error))


def _short(error: BaseException) -> str:
    return f"{error.__class__.__name__}: {error}"[:200]


async def _stop(application: GuideApplication) -> None:
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if application.running:
        await application.stop()
    if application.post_stop is not None:
        await application.post_stop(application)
    await application.shutdown()
    if application.post_shutdown is not None:
        await application.post_shutdown(application)


def _log_progress(stage: str, done: int, total: int) -> None:
    if done == total or done % 1000 == 0:
        log.info("building the index: %s %d/%d", stage, done, total)


if __name__ == "__main__":
    run_cli(lambda: main())
