"""`prep clean`: run the registered checks over the folder dataset and collect candidates.

One pass reads every photo once: it is hashed, fully decoded and shown to each per-photo check;
then its pixels are released, keeping what the collection checks need (perceptual hash, colour
flags). Embedding checks get vectors through the embedding cache that `prep build` shares, so
the build after cleaning embeds nothing again.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from core import (
    Dataset,
    DatasetPhoto,
    EmbeddingCache,
    ImageDecodeError,
    PhotoToEmbed,
    ProgressFn,
    content_hash,
    embed_missing,
    most_typical_first,
    no_progress,
    usable_cpus,
)
from core.encoders import ImageEncoder
from prep.checks import (
    BY_NAME,
    CHECKS,
    PHOTO_CHECKS,
    REASONS,
    Collection,
    CollectionCheck,
    Finding,
    PhotoCheck,
    PhotoUnderReview,
)
from prep.checks.decode import read_photo

log = logging.getLogger(__name__)

# Unflagged photos per landmark shown beside its candidates on the review page.
TYPICAL_PHOTOS = 3
# The per-photo pass runs in a process pool from this many photos on, in chunks of PARALLEL_CHUNK.
PARALLEL_FROM = 400
PARALLEL_CHUNK = 32


@dataclass
class CleanResult:
    findings: list[Finding] = field(default_factory=list)  # one per flagged photo: its first reason
    all_findings: list[Finding] = field(default_factory=list)
    photos: int = 0
    checks: tuple[str, ...] = ()
    sha256: dict[str, str] = field(default_factory=dict)  # path → content hash at cleaning time
    notes: list[str] = field(default_factory=list)
    kept_earlier: int = 0  # photos not flagged again: an admin kept them for these reasons before
    typical: dict[str, list[str]] = field(default_factory=dict)  # xid → its most typical unflagged photos

    def counts(self) -> Counter:
        return Counter(f.reason for f in self.findings)


def parse_checks(raw: str | None, default: Iterable[str]) -> tuple[str, ...]:
    if not raw:
        return tuple(default)
    names = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
    return names


def analyse(
    data_dir,
    checks: tuple[str, ...],
    *,
    encoder: Callable[[], ImageEncoder] | None = None,
    cache: EmbeddingCache | None = None,
    progress: ProgressFn | None = None,
) -> CleanResult:
    """Run `checks` over every photo of the dataset; nothing is written."""
    report = progress or no_progress
    dataset = Dataset(data_dir)
    selected = [BY_NAME[name] for name in checks]
    photo_checks = [c for c in selected if isinstance(c, PhotoCheck)]
    collection_checks = [c for c in selected if isinstance(c, CollectionCheck)]
    keeps = [keep for c in collection_checks for keep in c.keeps]
    result = CleanResult(checks=checks)
    photos = dataset.photos()
    result.photos = len(photos)
    reviewed: list[PhotoUnderReview] = []
    inspect = partial(_inspect, dataset.root, tuple(c.name for c in photo_checks), tuple(keeps))
    for done, (item, findings) in enumerate(_map(inspect, photos), 1):
        result.sha256[item.path] = item.sha256
        result.all_findings += findings
        reviewed.append(item)
        report("clean", done, len(photos))
    collection = Collection(reviewed, {}, notes=result.notes)
    if any(c.needs == "embeddings" for c in selected):
        collection = _with_embeddings(collection, dataset, encoder, cache, report)
    for check in collection_checks:
        result.all_findings += check.review(collection)
    _drop_kept(result, dataset, {p.path: p.sha256 for p in reviewed})
    result.findings = _first_reason_per_photo(result.all_findings)
    result.typical = _typical(reviewed, collection.vectors, {f.path for f in result.all_findings})
    return result


def _drop_kept(result: CleanResult, dataset: Dataset, hashes: dict[str, str]) -> None:
    """An admin's earlier "keep" stands: the same photo is not flagged again for the same reasons."""
    kept = dataset.kept()
    fresh = [f for f in result.all_findings if f.reason not in getattr(kept.get(hashes[f.path]), "reasons", ())]
    result.kept_earlier = len({f.path for f in result.all_findings} - {f.path for f in fresh})
    result.all_findings = fresh


def _typical(photos: list[PhotoUnderReview], vectors: dict, flagged: set[str]) -> dict[str, list[str]]:
    """Per landmark, its unflagged photos closest to their centroid (by name when there are no embeddings)."""
    by_xid: dict[str, list[PhotoUnderReview]] = {}
    for photo in photos:
        if photo.path not in flagged and photo.decoded:
            by_xid.setdefault(photo.xid, []).append(photo)
    typical = {}
    for xid, members in by_xid.items():
        embedded = [m for m in members if m.sha256 in vectors]
        if len(embedded) == len(members) and members:
            matrix = np.stack([vectors[m.sha256] for m in members])
            members = [members[i] for i in most_typical_first(matrix)]
        typical[xid] = [m.path for m in members[:TYPICAL_PHOTOS]]
    return typical


_PHOTO_CHECK = {check.name: check for check in PHOTO_CHECKS}


def _inspect(
    root: Path, check_names: tuple[str, ...], keeps: tuple, photo: DatasetPhoto
) -> tuple[PhotoUnderReview, list[Finding]]:
    """Read one photo, run the per-photo checks, keep what collection checks need, drop the pixels."""
    item = _read(Dataset(root), photo)
    findings = [f for name in check_names if (f := _PHOTO_CHECK[name].inspect(item)) is not None]
    for keep in keeps if item.decoded else ():
        item.derived(keep)
    item.release()
    return item, findings


def _map(inspect, photos: list[DatasetPhoto]):
    """The per-photo pass on every usable core (decoding and the pixel checks are CPU-bound); in this
    process when there is one core or few photos (a process pool costs ~1 s to start)."""
    workers = usable_cpus()
    if workers < 2 or len(photos) < PARALLEL_FROM:
        yield from map(inspect, photos)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(inspect, photos, chunksize=PARALLEL_CHUNK)


def _read(dataset: Dataset, photo: DatasetPhoto) -> PhotoUnderReview:
    data = dataset.path(photo.path).read_bytes()
    digest = content_hash(data)
    try:
        return PhotoUnderReview(photo.path, photo.xid, digest, read_photo(data))
    except ImageDecodeError as exc:
        return PhotoUnderReview(photo.path, photo.xid, digest, None, str(exc))


def _with_embeddings(
    collection: Collection,
    dataset: Dataset,
    encoder: Callable[[], ImageEncoder] | None,
    cache: EmbeddingCache | None,
    progress: ProgressFn,
) -> Collection:
    if encoder is None or cache is None:
        collection.notes.append("model-based checks skipped: no image model")
        return collection
    model = encoder()
    wanted = [PhotoToEmbed(p.sha256, dataset.path(p.path), p.path) for p in collection.photos if p.decoded]
    embedded = embed_missing(model, cache, wanted, progress=progress)
    return Collection(
        collection.photos, embedded.vectors, model.encode_prompts, model.prompts_unavailable, collection.notes
    )


def _first_reason_per_photo(findings: list[Finding]) -> list[Finding]:
    order = {reason: i for i, reason in enumerate(REASONS)}
    primary: dict[str, Finding] = {}
    for finding in sorted(findings, key=lambda f: (f.path, order[f.reason])):
        primary.setdefault(finding.path, finding)
    return sorted(primary.values(), key=lambda f: (order[f.reason], f.path))
