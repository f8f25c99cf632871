"""The index's rows — each photo's path, landmark and content hash — kept off the heap.

A build writes them twice: `photos.csv` for people (and builds from before this format), and, for the
serving process, columns it memory-maps instead of reading, so a million photos cost the bot kilobytes of
heap rather than ~100 MB (10 M: ~1 GB), and only the pages of the rows a query touches are read:

    photos/paths.bin      the UTF-8 paths, end to end
    photos/ends.npy       int64: where each row's path ends in paths.bin
    photos/xid_codes.npy  int32: each row's landmark, as a number into xids.json
    photos/sha256.npy     uint8 (rows × 32): each row's SHA-256
    photos/xids.json      the landmark ids, in code order

This module writes and reads them; core.artifacts places them in a build folder.
"""

from __future__ import annotations

import csv
import json
import mmap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np

PHOTOS_CSV = "photos.csv"
COLUMNS_DIR = "photos"
PATHS, ENDS, CODES, HASHES, XIDS = "paths.bin", "ends.npy", "xid_codes.npy", "sha256.npy", "xids.json"


@dataclass(frozen=True)
class PhotoRecord:
    path: str  # relative to the data dir
    xid: str
    sha256: str


class PhotoTable(Sequence[PhotoRecord]):
    """The rows as a read-only sequence of PhotoRecord over compact columns (arrays in memory for a build,
    memory-mapped files for a loaded index)."""

    def __init__(
        self, paths: bytes | mmap.mmap, ends: np.ndarray, xid_names: list[str], codes: np.ndarray, sha: np.ndarray
    ) -> None:
        if not len(ends) == len(codes) == len(sha) or (len(sha) and sha.shape[1:] != (32,)):
            raise ValueError("the photo table's columns disagree in length or shape")
        self._paths, self._ends, self._xid_names = paths, ends, xid_names
        self.xid_codes, self._sha = codes, sha

    @classmethod
    def from_records(cls, records: Iterable[PhotoRecord]) -> PhotoTable:
        paths: list[bytes] = []
        xids: dict[str, int] = {}
        codes: list[int] = []
        hashes: list[bytes] = []
        for record in records:
            paths.append(record.path.encode("utf-8"))
            codes.append(xids.setdefault(record.xid, len(xids)))
            hashes.append(bytes.fromhex(record.sha256))  # SHA-256 in hex (core.embedding_cache): 32 bytes
        return cls(
            b"".join(paths),
            np.cumsum([len(p) for p in paths], dtype=np.int64),
            list(xids),
            np.asarray(codes, dtype=np.int32),
            np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, 32),
        )

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, row: int) -> PhotoRecord: ...
    @overload
    def __getitem__(self, row: slice) -> list[PhotoRecord]: ...
    def __getitem__(self, row: int | slice) -> PhotoRecord | list[PhotoRecord]:
        if isinstance(row, slice):
            return [self[r] for r in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(row)
        return PhotoRecord(self.path(row), self.xid(row), self.sha256(row))

    def path(self, row: int) -> str:
        start = int(self._ends[row - 1]) if row else 0
        return bytes(self._paths[start : int(self._ends[row])]).decode("utf-8")

    def xid(self, row: int) -> str:
        return self._xid_names[self.xid_codes[row]]

    def sha256(self, row: int) -> str:
        return self._sha[row].tobytes().hex()

    def rows_by_xid(self) -> dict[str, np.ndarray]:
        order = np.argsort(self.xid_codes, kind="stable")
        bounds = np.searchsorted(self.xid_codes[order], np.arange(len(self._xid_names) + 1))
        return {name: order[bounds[i] : bounds[i + 1]] for i, name in enumerate(self._xid_names)}

    def copies(self) -> dict[bytes, int]:
        """How many rows share each content (only contents held more than once)."""
        if not len(self):
            return {}
        unique, counts = np.unique(self._sha, axis=0, return_counts=True)
        return {row.tobytes(): int(n) for row, n in zip(unique, counts, strict=True) if n > 1}

    # --- the format ----------------------------------------------------------------------------------
    def write(self, folder: Path) -> None:
        """photos.csv and the columns (see the module docstring) into a build folder."""
        with (folder / PHOTOS_CSV).open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "xid", "sha256"])
            writer.writerows((r.path, r.xid, r.sha256) for r in self)
        columns = folder / COLUMNS_DIR
        columns.mkdir()
        (columns / PATHS).write_bytes(bytes(self._paths))
        np.save(columns / ENDS, np.asarray(self._ends, dtype=np.int64))
        np.save(columns / CODES, np.asarray(self.xid_codes, dtype=np.int32))
        np.save(columns / HASHES, np.asarray(self._sha, dtype=np.uint8))
        (columns / XIDS).write_text(json.dumps(self._xid_names, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> PhotoTable:
        """The build's table: its columns memory-mapped, or photos.csv read into memory for a build made
        before them. ValueError when the columns disagree (a damaged build)."""
        columns = folder / COLUMNS_DIR
        if not columns.is_dir():
            with (folder / PHOTOS_CSV).open(newline="", encoding="utf-8") as f:
                return cls.from_records(PhotoRecord(r["path"], r["xid"], r["sha256"]) for r in csv.DictReader(f))
        xids = json.loads((columns / XIDS).read_text(encoding="utf-8"))
        if not isinstance(xids, list) or not all(isinstance(x, str) for x in xids):
            raise ValueError(f"{COLUMNS_DIR}/{XIDS} is not a list of landmark ids")
        ends, codes = _mapped(columns / ENDS, np.int64), _mapped(columns / CODES, np.int32)
        table = cls(_map_bytes(columns / PATHS), ends, xids, codes, _mapped(columns / HASHES, np.uint8))
        if len(table) and (int(ends[-1]) != len(table._paths) or int(codes.max()) >= len(xids) or codes.min() < 0):
            raise ValueError(f"{COLUMNS_DIR}/ columns do not fit together")
        return table


def _mapped(path: Path, dtype: type) -> np.ndarray:
    array = np.load(path, mmap_mode="r")
    if array.dtype != dtype:
        raise ValueError(f"{path.name} holds {array.dtype}, not {np.dtype(dtype).name}")
    return array


def _map_bytes(path: Path) -> bytes | mmap.mmap:
    """The file's bytes, memory-mapped (an empty file cannot be mapped: it is no bytes)."""
    if path.stat().st_size == 0:
        return b""
    with path.open("rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def as_photo_table(table: Sequence[PhotoRecord]) -> PhotoTable:
    """`table` as a PhotoTable (a list of records is packed)."""
    return table if isinstance(table, PhotoTable) else PhotoTable.from_records(table)
