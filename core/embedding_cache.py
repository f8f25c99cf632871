"""Embeddings cached by image content hash, shared by `prep build`, `prep clean` and `/reindex`.

One SQLite file: transactional, so a crash mid-build keeps what was already embedded, and a
rebuild after adding a few photos embeds only those. File hashes are memoised by
(size, mtime) so that an unchanged dataset is not even re-read.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from core.encoders.base import ImageEncoder
from core.errors import GuideError
from core.imaging import ImageDecodeError, decode_image
from core.schema import SchemaError, open_cache_db, upgrade
from core.settings import usable_cpus

log = logging.getLogger(__name__)

CACHE_FILE = "embeddings.sqlite"
# Photos embedded per call of the encoder.
EMBED_BATCH = 32


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_hash(path: Path) -> str:
    return content_hash(path.read_bytes())


class BuildCancelled(GuideError):
    """A build was asked to stop (the process is shutting down); the index in use is untouched."""


# The cache's schema, one step per version (core/schema.py); step 1 is the schema of 0.1.
CACHE_SCHEMA_STEPS = (
    """
    CREATE TABLE IF NOT EXISTS embeddings (
        model TEXT NOT NULL, sha256 TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, sha256));
    CREATE TABLE IF NOT EXISTS files (
        path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL)
    """,
)


class EmbeddingCache:
    """A cache is only ever a cache: a damaged file is moved aside and started afresh (with a warning),
    and a stored vector of the wrong length is treated as missing, so a build never fails on it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = open_cache_db(path, self._open, "embedding cache")  # a newer one is set aside too

    def _open(self, path: Path) -> sqlite3.Connection:
        # timeout: `prep build` and the bot's /reindex may briefly touch it at once.
        db = sqlite3.connect(path, timeout=30)
        try:
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("integrity check failed")
            db.execute("PRAGMA journal_mode=WAL")
            upgrade(db, CACHE_SCHEMA_STEPS, f"the embedding cache {path}")
        except (sqlite3.DatabaseError, SchemaError):
            db.close()
            raise
        return db

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def hash_file(self, path: Path) -> str:
        """Content hash of `path`, read from disk only when its size or mtime changed."""
        stat = path.stat()
        key = str(path.resolve())
        row = self._db.execute("SELECT size, mtime_ns, sha256 FROM files WHERE path = ?", (key,)).fetchone()
        if row is not None and row[0] == stat.st_size and row[1] == stat.st_mtime_ns:
            return row[2]
        digest = file_hash(path)
        self._db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", (key, stat.st_size, stat.st_mtime_ns, digest)
        )
        return digest

    def get(self, model: str, hashes: Iterable[str], dim: int | None = None) -> dict[str, np.ndarray]:
        """Cached vectors by hash; with `dim`, a vector of another length (truncated, or another model's)
        is left out, so it is embedded again and overwritten."""
        found: dict[str, np.ndarray] = {}
        width = None if dim is None else dim * np.dtype(np.float32).itemsize
        wanted = list(dict.fromkeys(hashes))
        for start in range(0, len(wanted), 500):  # stay under SQLite's bound-parameter limit
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT sha256, vector FROM embeddings WHERE model = ? AND sha256 IN ({marks})", (model, *chunk)
            )
            for digest, blob in rows:
                if isinstance(blob, bytes) and (width is None or len(blob) == width) and len(blob) % 4 == 0:
                    found[digest] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, model: str, vectors: Mapping[str, np.ndarray]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)",
            [(model, digest, np.asarray(v, dtype=np.float32).tobytes()) for digest, v in vectors.items()],
        )
        self._db.commit()

    def commit(self) -> None:
        self._db.commit()


# progress(stage, done, total): stages "hash" and "embed" of a build, "clean" of `prep clean`.
ProgressFn = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class PhotoToEmbed:
    sha256: str
    path: Path
    label: str  # how reports name it (the dataset-relative path)


@dataclass
class Embedded:
    vectors: dict[str, np.ndarray]  # sha256 → vector, cached and fresh
    embedded: int = 0  # how many were computed now
    cached: set[str] = field(default_factory=set)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (label, reason)


# How a build gets its vectors: embed_missing here, or an engine that fills the same cache elsewhere
# (prep.ray_engine) and returns the same Embedded.
EmbedFn = Callable[..., "Embedded"]


def _decode(photo: PhotoToEmbed) -> Image.Image | Exception:
    try:
        return decode_image(photo.path.read_bytes(), draft=True)
    except (ImageDecodeError, OSError) as exc:
        return exc


def decode_all(photos: Sequence[PhotoToEmbed], decoders: int = 1) -> list[Image.Image | Exception]:
    """Each photo decoded as the encoders expect it (or the error it raised), in order; with several
    decoders, in threads (Pillow decodes outside the GIL)."""
    if decoders <= 1 or len(photos) < 2:
        return [_decode(photo) for photo in photos]
    with ThreadPoolExecutor(max_workers=min(decoders, len(photos)), thread_name_prefix="decode") as pool:
        return list(pool.map(_decode, photos))


def embed_missing(
    encoder: ImageEncoder,
    cache: EmbeddingCache,
    photos: Sequence[PhotoToEmbed],
    *,
    progress: ProgressFn = no_progress,
    batch_size: int = EMBED_BATCH,
    cancel: threading.Event | None = None,
) -> Embedded:
    """Vectors for `photos`: from the cache where it has them, else decoded, embedded in batches and
    cached. Shared by the index build and `prep clean`, so either one leaves the other nothing to do.
    Identical files are embedded once; unreadable or vanished files are skipped and listed."""
    # On a GPU, decoding is what bounds the speed (~300 JPEGs/s a core): every core decodes for it.
    decoders = usable_cpus() if getattr(encoder, "device", "cpu") == "cuda" else 1
    result = Embedded(cache.get(encoder.cache_key, [p.sha256 for p in photos], dim=encoder.dim))
    result.cached = set(result.vectors)
    missing = list({p.sha256: p for p in photos if p.sha256 not in result.vectors}.values())
    progress("embed", 0, len(missing))
    for start in range(0, len(missing), batch_size):
        if cancel is not None and cancel.is_set():
            # What was embedded so far is already in the cache: the next build resumes from there.
            raise BuildCancelled(f"build cancelled after {result.embedded} of {len(missing)} new photos")
        images, digests = [], []
        batch = missing[start : start + batch_size]
        for photo, decoded in zip(batch, decode_all(batch, decoders), strict=True):
            if isinstance(decoded, Exception):
                result.skipped.append((photo.label, f"unreadable: {getattr(decoded, 'strerror', None) or decoded}"))
            else:
                images.append(decoded)
                digests.append(photo.sha256)
        if images:
            fresh = dict(zip(digests, encoder.encode_images(images), strict=True))
            cache.put(encoder.cache_key, fresh)
            result.vectors.update(fresh)
            result.embedded += len(fresh)
        progress("embed", min(start + batch_size, len(missing)), len(missing))
    return result
