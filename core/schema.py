"""Versioned SQLite files (the contribution store, the embedding cache): `PRAGMA user_version` says which
schema a file has, and `upgrade` brings it forward step by step when it is opened.

A file from before versioning has version 0; each store's first step creates its tables with
`CREATE … IF NOT EXISTS`, so it is also that file's upgrade. A file written by a newer version of the
guide is refused with one line rather than misread, and so is a file that is no SQLite database at all
(`check_file`): each store decides whether it may set such a file aside (a cache) or must refuse (data).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

from core.errors import GuideError
from core.files import set_aside

log = logging.getLogger(__name__)


class SchemaError(GuideError):
    """The file's schema is newer than this version of the guide knows."""


def upgrade(db: sqlite3.Connection, steps: Sequence[str], what: str) -> int:
    """Run the SQL of `steps[v:]` on a file at version v (each step in one transaction); returns the version."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(steps):
        raise SchemaError(
            f"{what} was written by a newer version of the guide (schema {version}, this one knows "
            f"{len(steps)}): upgrade the guide, or restore a backup made with this version"
        )
    for number in range(version, len(steps)):
        db.executescript(f"BEGIN; {steps[number]}; PRAGMA user_version = {number + 1}; COMMIT;")
    return len(steps)


class DamagedStoreError(GuideError):
    """The file is not a readable SQLite database (overwritten, cut short, another file under its name)."""


def check_file(path: Path, steps: Sequence[str], what: str) -> None:
    """Read-only: `path` (if it exists) is an intact SQLite database of a schema this version knows.
    DamagedStoreError or SchemaError, with one line saying which file and what is wrong, else nothing."""
    if not path.exists():
        return
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise DamagedStoreError(f"{what} cannot be opened ({exc})") from None
    try:
        verdict = db.execute("PRAGMA quick_check").fetchone()[0]
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise DamagedStoreError(f"{what} is not a readable database ({exc})") from None
    finally:
        db.close()
    if verdict != "ok":
        raise DamagedStoreError(f"{what} is damaged (integrity check: {str(verdict)[:120]})")
    if version > len(steps):
        raise SchemaError(
            f"{what} was written by a newer version of the guide (schema {version}, this one knows {len(steps)})"
        )


def open_cache_db(path: Path, open_db: Callable[[Path], sqlite3.Connection], what: str) -> sqlite3.Connection:
    """A cache's database, by `open_db`. A cache is only ever a cache: a file that does not open (damaged,
    or from a newer release) is moved aside with its -wal/-shm files, with a warning, and opened afresh."""
    try:
        return open_db(path)
    except (sqlite3.DatabaseError, SchemaError) as exc:
        aside = set_aside(path)
        for suffix in ("-wal", "-shm"):
            if (extra := Path(f"{path}{suffix}")).exists():
                extra.replace(Path(f"{aside}{suffix}"))
        log.warning("%s %s is damaged (%s): moved to %s, starting a new one", what, path, exc, aside)
        return open_db(path)
