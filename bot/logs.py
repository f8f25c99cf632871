"""Logging for the bot: the token never reaches a log line, at any level.

httpx logs every request URL at INFO and DEBUG, and Telegram's URLs carry the token
(`/bot<token>/getMe`); exceptions may quote them too. A filter on every handler replaces each
secret with `***` in the formatted message, its arguments and the traceback text.
"""

from __future__ import annotations

import logging
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


def install_redaction(secrets: Iterable[str], logger: logging.Logger | None = None) -> RedactingFilter:
    """Put the filter on every handler of `logger` (the root by default)."""
    redacting = RedactingFilter(secrets)
    for handler in (logger or logging.getLogger()).handlers:
        handler.addFilter(redacting)
    return redacting


def configure_bot_logging(level: str, secrets: Iterable[str]) -> None:
    configure_logging(level)
    install_redaction(secrets)
    # Request lines (with the token, redacted anyway) every poll are noise below DEBUG.
    logging.getLogger("httpx").setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
