"""Versioned SQLite files (the contribution store, the embedding cache): `PRAGMA user_version` says which
schema a file has, and `upgrade` brings it forward step by step when it is opened.

A file from before versioning has version 0; each store's first step creates its tables with
`CREATE … IF NOT EXISTS`, so it is also that file's upgrade. A file written by a newer version of the
guide is refused with one line rather than misread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from core.errors import GuideError


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
