"""How every state file of the guide is written and read back: nothing half-written, nothing lost.

- `write_atomically`: a unique temporary file beside the target, fsynced, renamed over it (and the folder
  fsynced), so a kill or a full disk leaves the old file or the new one, never a mix; two writers never
  share a temporary file.
- `file_lock`: an exclusive lock on `<file>.lock` for read-modify-write across threads and processes
  (the review page's six parallel clicks, `prep apply` in another shell).
- `set_aside`: a damaged file is renamed to `<name>.damaged-<time>` (kept for the admin, out of the way)
  and the caller says so in one line.
- `read_text_tolerantly`: a file people edit in a spreadsheet: UTF-8 with or without a BOM, else cp1251;
  `read_table` reads such a CSV with whichever of `,` `;` tab its header was saved with.
- `UnreadableFileError`: a data file (not a cache) that cannot be read as its format says is refused in one
  line and never written over: reading it as empty and saving would lose every entry in it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
import threading
import time
from collections.abc import Collection, Iterator
from pathlib import Path

from core.errors import GuideError

# Cell separators a CSV people edit may come back with: ours, and what spreadsheets save in many locales
# (a Russian Excel writes `;`).
TABLE_DELIMITERS = (",", ";", "\t")
# Seconds a writer waits for another to finish with the same file before giving up with an error.
LOCK_TIMEOUT_S = 30.0

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` in one step (see the module docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """The rename itself survives a power cut only once the folder is synced (not possible everywhere)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_lock(path: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Exclusive use of `path` for a read-modify-write, across threads and processes."""
    from filelock import FileLock, Timeout

    key = str(path.resolve())
    with _thread_locks_guard:
        in_process = _thread_locks.setdefault(key, threading.Lock())
    if not in_process.acquire(timeout=timeout):
        raise TimeoutError(f"{path} is busy: another writer held it for {timeout:.0f} s")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(f"{path}.lock", timeout=timeout):
                yield
        except Timeout:
            raise TimeoutError(f"{path} is locked by another process for over {timeout:.0f} s") from None
    finally:
        in_process.release()


class UnreadableFileError(GuideError, ValueError):
    """A data file cannot be read as its format says (a hand edit, another program, a newer release);
    nothing was written over it. The message names the file, what is wrong and what to do."""


def set_aside(path: Path) -> Path:
    """Move a damaged file out of the way, keeping it for the admin; returns where it went."""
    target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, target)
    return target


def read_text_tolerantly(path: Path) -> str:
    """Text of a file that may have passed through a spreadsheet: UTF-8 (BOM or not), else Windows-1251."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1251", errors="replace")


def read_table(path: Path, required: Collection[str]) -> csv.DictReader:
    """The rows of a CSV file people edit, by lower-case column name: read as `read_text_tolerantly` reads,
    cut at whichever of TABLE_DELIMITERS makes the header name every `required` column. An empty file has
    no rows; a header that names them under no separator is UnreadableFileError — never read as no rows,
    which a rewrite would make true."""
    text = read_text_tolerantly(path)
    header = text.split("\n", 1)[0]
    for delimiter in TABLE_DELIMITERS:
        names = [name.strip().lower() for name in next(csv.reader([header], delimiter=delimiter), [])]
        if set(required) <= set(names):
            reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
            if reader.fieldnames:  # reading them consumes the header row; then they are named in lower case
                reader.fieldnames = names
            return reader
    if not text.strip():
        return csv.DictReader(io.StringIO(""))
    raise UnreadableFileError(
        f"{path}: its header does not name the column(s) {', '.join(sorted(required))} (separated by , ; or "
        "tab); fix the header — nothing was written over the file"
    )
