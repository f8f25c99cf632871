"""The rendered voice messages on disk: `<ARTIFACTS_DIR>/voices/<key>.ogg`, one file per (voices, texts).

The key (`Voices.key`) names the voices and the exact texts, so a new description, another language or
another voice is a new file and never a stale one. Files are written atomically; past VOICE_CACHE_MAX_MB
the least recently used are removed (a removed file is simply rendered again when asked for). A disk
that is full or read-only makes the cache a no-op with one warning: the voice is still sent.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

from core.files import write_atomically

log = logging.getLogger(__name__)

VOICES_FOLDER = "voices"
# Megabytes of rendered voice messages kept (~4,000 one-minute stories).
VOICE_CACHE_MAX_MB = 1024
_KEY = re.compile(r"^[0-9a-f]{16,64}$")


class VoiceCache:
    def __init__(self, folder: Path, max_bytes: int = VOICE_CACHE_MAX_MB * 2**20) -> None:
        self.folder, self.max_bytes = folder, max_bytes
        self._lock = threading.Lock()
        self._warned = False

    @classmethod
    def beside(cls, artifacts_dir: Path) -> VoiceCache:
        return cls(artifacts_dir / VOICES_FOLDER)

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"not a voice cache key: {key!r}")
        return self.folder / f"{key}.ogg"

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            os.utime(path)  # recently used: kept longest
        except OSError:
            pass
        return data or None

    def put(self, key: str, data: bytes) -> None:
        """Keep `data`; a failure to write (a full disk) is logged once and otherwise ignored."""
        try:
            write_atomically(self._path(key), data)
            self._trim()
        except OSError as exc:
            if not self._warned:
                log.warning("voice messages are not kept on disk (%s): each is rendered again when asked", exc)
                self._warned = True

    def _trim(self) -> None:
        with self._lock:
            files = [(p.stat(), p) for p in self.folder.glob("*.ogg")]
            total = sum(s.st_size for s, _ in files)
            for stat, path in sorted(files, key=lambda item: item[0].st_mtime):
                if total <= self.max_bytes:
                    break
                path.unlink(missing_ok=True)
                total -= stat.st_size
