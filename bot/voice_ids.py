"""Telegram's `file_id` of every voice message the bot has uploaded, so that a later 🔊 re-sends it
instead of uploading it again: `<ARTIFACTS_DIR>/voices/telegram_file_ids.json`.

Format (JSON, written atomically): {"version": 1, "bot": "<bot id>", "files": {"<voice key>": "<file_id>"}}.
A file_id is valid only for the bot that uploaded it, so the store names its bot and starts empty for
another. Damaged: set aside with one warning (the voices are uploaded again). A write that fails (a full
disk) is logged once; the ids then live in memory until the bot stops.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from core import set_aside, write_atomically

log = logging.getLogger(__name__)

FILE_IDS_VERSION = 1
FILE_IDS_NAME = "telegram_file_ids.json"
# Voice messages whose file_id is kept, at most (the oldest are dropped: they are only uploaded again).
MAX_FILE_IDS = 100_000


class VoiceFileIds:
    def __init__(self, path: Path, bot_id: int | None = None) -> None:
        self.path, self.bot_id = path, bot_id
        self._lock = threading.Lock()
        self._ids = self._read()
        self._warned = False

    def _read(self) -> dict[str, str]:
        try:
            raw = self.path.read_bytes()
        except OSError as exc:  # none yet, or a place that cannot hold it: voices are uploaded again
            if not isinstance(exc, FileNotFoundError):
                log.warning("voice file ids %s unreadable (%s): voices are uploaded again", self.path, exc)
            return {}
        try:
            document = json.loads(raw)
            files = document["files"]
            if document.get("version") != FILE_IDS_VERSION or not isinstance(files, dict):
                raise ValueError(f"format {document.get('version')!r}")
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            log.warning("voice file ids %s unreadable (%s): set aside as %s", self.path, exc, set_aside(self.path))
            return {}
        if self.bot_id is not None and document.get("bot") != str(self.bot_id):
            return {}  # another bot's uploads: its file_ids mean nothing to this one
        return {str(k): v for k, v in files.items() if isinstance(v, str) and v}

    def get(self, key: str) -> str | None:
        return self._ids.get(key)

    def remember(self, key: str, file_id: str) -> None:
        """Keep `file_id` for `key` (blocking: an io-pool job)."""
        with self._lock:
            self._ids[key] = file_id
            while len(self._ids) > MAX_FILE_IDS:
                self._ids.pop(next(iter(self._ids)))
            self._write()

    def forget(self, key: str) -> None:
        """Telegram refused the id: the next press uploads again."""
        with self._lock:
            if self._ids.pop(key, None) is not None:
                self._write()

    def _write(self) -> None:
        document = {"version": FILE_IDS_VERSION, "bot": str(self.bot_id or ""), "files": self._ids}
        try:
            write_atomically(self.path, json.dumps(document, sort_keys=True).encode("utf-8"))
        except OSError as exc:
            if not self._warned:
                log.warning("voice file ids not saved (%s): they are kept in memory until the bot stops", exc)
                self._warned = True
