"""The vectors of an index build and how they are searched: exact while they fit, IVF beyond.

Two kinds, chosen at build (`prep build --index auto|flat|ivf`) and recorded in the manifest:

- **flat**: `IndexFlatIP` in memory — exact; 2 KB a photo (512-d float32), so `auto` keeps it up to
  FLAT_MAX_VECTORS photos (205 MB beside ~450 MB of int8 models in the 700 MB the bot is given).
- **ivf**: an inverted file over `nlist` centroids with 4-bit fast-scan product quantisation
  (`IVF{nlist},PQ{dim/8}x4fs`, 32 bytes a photo: 32 MB at a million) finds k + 200 candidates,
  and their exact cosines, from the float16 vectors memory-mapped from `vectors.f16.npy` (1 KB a
  photo on disk; only the pages of the candidates are read), give the order. `nprobe` is chosen at
  build as the smallest that reaches TARGET_RECALL recall@20 against exact search for RECALL_QUERIES
  sampled photos left out of a copy of the index (new photos, as tourists send), and that recall is
  stored. A rebuild adds to the previous
  build's trained index (`trained.faiss`) unless the data grew past RETRAIN_GROWTH × what it was
  trained on or new vectors lie RETRAIN_DISTORTION × farther from their centroids: then it retrains.

This module writes and reads these files; `core.artifacts` places them in a build folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import mmap
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import faiss
import numpy as np

log = logging.getLogger(__name__)

INDEX_KINDS = ("auto", "flat", "ivf")
# `auto`: exact flat search up to this many vectors (see the module docstring), IVF beyond.
FLAT_MAX_VECTORS = 100_000
# IVF: centroids ≈ √N rounded to a power of two, within these bounds; training vectors per centroid.
MIN_NLIST, MAX_NLIST = 16, 16_384
TRAIN_PER_LIST = 64
# Candidates re-ranked exactly: k + RERANK × RECALL_K (200 beyond the k asked for: the vote's deep
# search for 100 neighbours reads 300 rows, not 1,000); the recall bar and how it is measured.
RERANK = 10
TARGET_RECALL = 0.95
RECALL_K = 20
RECALL_QUERIES = 1000  # at most a tenth of the vectors; the bar applies to the mean minus 2 standard errors
NPROBES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# When a rebuild retrains instead of adding to the previous build's trained index.
RETRAIN_GROWTH = 2.0
RETRAIN_DISTORTION = 1.15
DRIFT_SAMPLE = 2000
SEED = 0
# Bytes read at a time to checksum an index file at load (hashing 200 MB costs ~0.3 s).
CHECKSUM_CHUNK = 4 * 1024 * 1024

INDEX_FILE = "index.faiss"
VECTORS_FILE = "vectors.f16.npy"
TRAINED_FILE = "trained.faiss"
TRAINED_INFO_FILE = "trained.json"


@dataclass(frozen=True)
class IndexInfo:
    """How a build's vectors are searched (stored in its manifest)."""

    kind: str = "flat"
    nlist: int = 0
    nprobe: int = 0
    recall_at_20: float | None = None  # measured at build against exact search (1.0 for flat)
    trained_on: int = 0  # vectors the IVF was trained on (0 for flat)
    retrained: bool = False  # this build trained it (False: the previous build's training was reused)
    sha256: str = ""  # of index.faiss as written (older builds: "", not checked)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Training:
    """What an IVF's training saw: how many vectors and their mean distance to their centroid."""

    vectors: int
    distortion: float


class VectorIndex:
    """A build's searchable vectors (thread-safe for queries, like the FAISS index under it)."""

    def __init__(
        self,
        index: faiss.Index,
        info: IndexInfo,
        exact: np.ndarray | None = None,
        trained: tuple[faiss.Index, Training] | None = None,
    ) -> None:
        self._index = index
        self.info = info
        self._exact = exact  # ivf: the float16 vectors, row by row (memory-mapped when loaded)
        self._trained = trained  # ivf, just built: the trained empty index, for the next build
        if info.kind == "ivf":
            faiss.extract_index_ivf(index).nprobe = info.nprobe

    def probe(self, nprobe: int) -> None:
        """Search more or fewer inverted lists than chosen at build (benchmarks compare them)."""
        if self.info.kind == "ivf":
            faiss.extract_index_ivf(self._index).nprobe = nprobe

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarities and rows of the k nearest vectors per query (rows -1 past the end)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if self._exact is None:
            return self._index.search(queries, k)
        _, candidates = self._index.search(queries, min(self.ntotal, k + RERANK * RECALL_K) or 1)
        similarities = np.full((len(queries), k), -np.inf, dtype=np.float32)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        for i, found in enumerate(candidates):
            found = found[found >= 0]
            exact = self.rows(found) @ queries[i]
            best = np.argsort(-exact, kind="stable")[:k]
            similarities[i, : len(best)], rows[i, : len(best)] = exact[best], found[best]
        return similarities, rows

    def rows(self, rows: np.ndarray | list[int]) -> np.ndarray:
        """The exact vectors of some rows (float32)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self._exact is not None:
            order = np.argsort(rows)  # sorted reads from the mapped file
            out = np.empty((len(rows), self.dim), dtype=np.float32)
            out[order] = self._exact[rows[order]]
            return out
        return np.stack([self._index.reconstruct(int(r)) for r in rows]) if len(rows) else np.zeros((0, self.dim))

    def vector(self, row: int) -> np.ndarray:
        return self.rows([row])[0]

    def all_vectors(self) -> np.ndarray:
        if self._exact is not None:
            return np.asarray(self._exact, dtype=np.float32)
        return self._index.reconstruct_n(0, self.ntotal)

    def write(self, folder: Path) -> IndexInfo:
        """Write the files; returns the info to record in the manifest, with the index file's checksum."""
        faiss.write_index(self._index, str(folder / INDEX_FILE))
        if self._exact is not None:
            np.save(folder / VECTORS_FILE, np.asarray(self._exact, dtype=np.float16))
        if self._trained is not None:
            trained, training = self._trained
            faiss.write_index(trained, str(folder / TRAINED_FILE))
            (folder / TRAINED_INFO_FILE).write_text(json.dumps(asdict(training)), encoding="utf-8")
        self.info = replace(self.info, sha256=file_sha256(folder / INDEX_FILE))
        return self.info

    @classmethod
    def load(cls, folder: Path, info: IndexInfo) -> VectorIndex:
        """The build's index, after what is cheap to check (ValueError saying what does not fit): the kind,
        the index file against its checksum, that the file is an index of that kind, nprobe within its
        lists, the float16 vectors' dtype and shape. A damaged file must not answer from garbage."""
        if info.kind not in ("flat", "ivf"):
            raise ValueError(f"unknown index kind {info.kind!r}")
        path = folder / INDEX_FILE
        if info.sha256 and file_sha256(path) != info.sha256:
            raise ValueError(f"{INDEX_FILE} does not match the checksum in the manifest")
        index = faiss.read_index(str(path))
        _check_kind(index, info)
        exact = _map_vectors(folder / VECTORS_FILE) if info.kind == "ivf" else None
        if exact is not None and (exact.shape != (index.ntotal, index.d)):
            raise ValueError(f"{VECTORS_FILE} holds {exact.shape}, the index {index.ntotal} × {index.d}")
        return cls(index, info, exact)


def _check_kind(index: faiss.Index, info: IndexInfo) -> None:
    """The file holds the kind of index the manifest says, searched by inner product, with a usable nprobe."""
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise ValueError(f"{INDEX_FILE} is not an inner-product index")
    if info.kind == "flat":
        if not isinstance(index, faiss.IndexFlat):
            raise ValueError(f"the manifest says flat, {INDEX_FILE} holds {type(index).__name__}")
        return
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        raise ValueError(f"the manifest says ivf, {INDEX_FILE} holds {type(index).__name__}") from None
    if not (isinstance(info.nprobe, int) and 1 <= info.nprobe <= ivf.nlist):
        raise ValueError(f"nprobe {info.nprobe!r} is outside 1–{ivf.nlist}, the index's lists")


def file_sha256(path: Path) -> str:
    """The file's SHA-256, read in chunks (an index file can be hundreds of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHECKSUM_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _map_vectors(path: Path) -> np.ndarray:
    """The .npy file's rows, memory-mapped for random access: the kernel's readahead (128 KB around
    each 1 KB row read) would otherwise pull the whole file into memory within a few hundred queries."""
    with path.open("rb") as f:
        major, _ = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if fortran or len(shape) != 2:
        raise ValueError(f"{path.name} is not a row-major matrix")
    if np.dtype(dtype) != np.float16:
        raise ValueError(f"{path.name} holds {np.dtype(dtype).name}, not float16")
    mapped.madvise(mmap.MADV_RANDOM)
    return np.frombuffer(mapped, dtype=dtype, count=shape[0] * shape[1], offset=offset).reshape(shape)


def choose_kind(kind: str, count: int) -> str:
    if kind not in INDEX_KINDS:
        raise ValueError(f"index kind must be one of {', '.join(INDEX_KINDS)}, got {kind!r}")
    if kind != "auto":
        return kind
    return "flat" if count <= FLAT_MAX_VECTORS else "ivf"


def nlist_for(count: int) -> int:
    return int(min(MAX_NLIST, max(MIN_NLIST, 2 ** round(math.log2(max(1.0, math.sqrt(count)))))))


def build_vector_index(matrix: np.ndarray, kind: str = "auto", previous: Path | None = None) -> VectorIndex:
    """The searchable index of `matrix` (unit rows). `previous`: the last build's folder, whose trained
    IVF is reused when it still fits the data."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    count, dim = matrix.shape
    if choose_kind(kind, count) == "flat" or count == 0:
        flat = faiss.IndexFlatIP(dim)
        if count:
            flat.add(matrix)
        return VectorIndex(flat, IndexInfo("flat", recall_at_20=1.0))
    trained, training, retrained = _trained(matrix, previous)
    index = faiss.clone_index(trained)
    index.add(matrix)
    exact = matrix.astype(np.float16)
    nprobe, recall = _choose_nprobe(trained, matrix)
    nlist = faiss.extract_index_ivf(index).nlist
    info = IndexInfo("ivf", nlist, nprobe, recall, training.vectors, retrained)
    return VectorIndex(index, info, exact, (trained, training))


def _trained(matrix: np.ndarray, previous: Path | None) -> tuple[faiss.Index, Training, bool]:
    reused = _reusable(matrix, previous)
    if reused is not None:
        return reused[0], reused[1], False
    count, dim = matrix.shape
    nlist = nlist_for(count)
    sample = _sample(matrix, min(count, TRAIN_PER_LIST * nlist))
    started = time.monotonic()
    index = faiss.index_factory(dim, f"IVF{nlist},PQ{dim // 8}x4fs", faiss.METRIC_INNER_PRODUCT)
    index.train(sample)
    log.info("IVF%d trained on %d vectors in %.1f s", nlist, len(sample), time.monotonic() - started)
    return index, Training(count, _distortion(index, sample)), True


def _reusable(matrix: np.ndarray, previous: Path | None) -> tuple[faiss.Index, Training] | None:
    """The previous build's trained IVF, if it exists, has this dimension and still fits the data."""
    if previous is None or not (previous / TRAINED_FILE).is_file():
        return None
    try:
        index = faiss.read_index(str(previous / TRAINED_FILE))
        training = Training(**json.loads((previous / TRAINED_INFO_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, RuntimeError, RecursionError) as exc:
        log.warning("the previous build's trained index is unreadable (%s): retraining", exc)
        return None
    distortion = training.distortion
    if not (
        isinstance(training.vectors, int)
        and training.vectors > 0
        and isinstance(distortion, int | float)
        and math.isfinite(distortion)
    ):
        log.warning("the previous build's training record is damaged (%s): retraining", training)
        return None
    if index.d != matrix.shape[1] or len(matrix) > RETRAIN_GROWTH * training.vectors:
        return None
    drift = _distortion(index, _sample(matrix, DRIFT_SAMPLE)) / max(training.distortion, 1e-9)
    if drift > RETRAIN_DISTORTION:
        log.info("the data drifted from the trained centroids (%.2f×): retraining", drift)
        return None
    return index, training


def _distortion(index: faiss.Index, sample: np.ndarray) -> float:
    """Mean 1 − cosine of the sample to its nearest centroid."""
    similarities, _ = faiss.extract_index_ivf(index).quantizer.search(sample, 1)
    return float(np.mean(1.0 - similarities[:, 0]))


def _sample(matrix: np.ndarray, size: int) -> np.ndarray:
    rows = np.random.default_rng(SEED).choice(len(matrix), size=min(size, len(matrix)), replace=False)
    return np.ascontiguousarray(matrix[np.sort(rows)])


def _choose_nprobe(trained: faiss.Index, matrix: np.ndarray) -> tuple[int, float]:
    """The smallest nprobe whose recall@20 reaches the bar for photos the index does not hold: sampled
    vectors are left out of a copy of the index and searched in it (a member would find its own list)."""
    held_out = np.zeros(len(matrix), dtype=bool)
    held_out[
        np.random.default_rng(SEED).choice(len(matrix), size=min(RECALL_QUERIES, len(matrix) // 10), replace=False)
    ] = True
    queries, rest = np.ascontiguousarray(matrix[held_out]), np.ascontiguousarray(matrix[~held_out])
    flat = faiss.IndexFlatIP(matrix.shape[1])
    flat.add(rest)
    _, truth = flat.search(queries, RECALL_K)
    del flat
    index = faiss.clone_index(trained)
    index.add(rest)
    probe = VectorIndex(index, IndexInfo("ivf", nprobe=1), rest.astype(np.float16))
    recall = 0.0
    for nprobe in NPROBES:
        probe.probe(nprobe)
        _, found = probe.search(queries, RECALL_K)
        shares = np.array([len(set(t) & set(f)) / RECALL_K for t, f in zip(truth, found, strict=True)])
        recall = float(shares.mean())
        lower = recall - 2 * float(shares.std()) / np.sqrt(len(shares))  # ~97.5 % sure the recall is above
        if lower >= TARGET_RECALL or nprobe >= faiss.extract_index_ivf(index).nlist:
            return nprobe, recall
    return NPROBES[-1], recall
