"""The photos the bot sends: always a Telegram-safe rendition (≤ 1280 px, JPEG, ≤ 10 MB) of a file, which
stays as it is (the dataset and the contribution store keep the originals)."""

from __future__ import annotations

import logging
from pathlib import Path

from core import GuideError, telegram_photo

log = logging.getLogger(__name__)


def shareable_photo(path: Path | str | None) -> bytes | None:
    """The photo at `path` as Telegram accepts it, or None when it is gone or unreadable (logged)."""
    if path is None:
        return None
    try:
        return telegram_photo(Path(path).read_bytes())
    except OSError:
        log.warning("photo is gone: %s", path)
    except GuideError as exc:
        log.warning("photo cannot be sent (%s): %s", exc, path)
    return None
