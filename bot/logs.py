"""Logging for the bot: the token never reaches a log line, at any level, and a network failure is one line.

httpx logs every request URL at INFO and DEBUG, and Telegram's URLs carry the token
(`/bot<token>/getMe`); exceptions may quote them too. A filter on every handler replaces each
secret with `***` in the formatted message, its arguments and the traceback text.

PTB logs some network failures with their traceback (60 lines when Telegram is unreachable while the bot
stops: the last getUpdates that confirms what was read). A second filter turns every record about a
network failure — Telegram's NetworkError (not its BadRequest answers), httpx's transport errors, a
refused or reset connection — into its one line: the message and the failure's name.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from urllib.parse import quote

from core.cli import configure_logging

REDACTED = "***"


def token_forms(token: str) -> tuple[str, ...]:
    """How a bot token shows up in logs: as is, URL-encoded (`%3A`: file download URLs), and its secret
    half alone, which covers any other encoding of the colon."""
    forms = {token, quote(token, safe=""), token.partition(":")[2]}
    # Longest first, so the whole token is replaced before its half.
    return tuple(sorted((f for f in forms if len(f) >= 8), key=len, reverse=True))


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(form for secret in secrets if secret for form in token_forms(secret))

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self.redact(message), None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def is_network_failure(error: BaseException | None) -> bool:
    """Telegram or the network did not answer (rather than answered no, or the code failed)."""
    telegram_errors = sys.modules.get("telegram.error")  # not imported: no Telegram error can exist yet
    if telegram_errors is not None and isinstance(error, telegram_errors.NetworkError):
        return not isinstance(error, telegram_errors.BadRequest)
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(error, httpx.TransportError):
        return True
    return isinstance(error, ConnectionError | TimeoutError)


def short_failure(error: BaseException) -> str:
    return f"{error.__class__.__name__}: {error}"[:200]


class NetworkFailuresInOneLine(logging.Filter):
    """A record about a network failure keeps its message and names the failure; its traceback is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and is_network_failure(error):
            record.msg, record.args = f"{record.getMessage()} ({short_failure(error)})", None
            record.exc_info, record.exc_text = None, None
        return True


def install_redaction(secrets: Iterable[str], logger: logging.Logger | None = None) -> RedactingFilter:
    """Put the filter on every handler of `logger` (the root by default)."""
    redacting = RedactingFilter(secrets)
    for handler in (logger or logging.getLogger()).handlers:
        handler.addFilter(redacting)
    return redacting


def configure_bot_logging(level: str, secrets: Iterable[str]) -> None:
    configure_logging(level)
    for handler in logging.getLogger().handlers:  # before the redaction: it formats the traceback it keeps
        handler.addFilter(NetworkFailuresInOneLine())
    install_redaction(secrets)
    # Request lines (with the token, redacted anyway) every poll are noise below DEBUG.
    logging.getLogger("httpx").setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
