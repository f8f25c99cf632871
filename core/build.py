"""The build: the folder dataset → a published index (core.artifacts), incrementally, one at a time.

Photos are hashed (memoised by size and mtime), only those the embedding cache lacks are embedded, the
vectors' index is built (IVF past its size, reusing the previous build's training), the calibration is
fitted on the index's own photos, and the result is published atomically. `check_up_to_date` answers
"nothing to do" without any model. One build runs at a time per artifacts folder (`build_lock`, on
core.files' lock: a `prep build` and a `/reindex` may race).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from core.artifacts import (
    BUILD_LOCK,
    CALIBRATION_FILE,
    CURRENT_LINK,
    PLACE_DIR,
    SCHEMA_VERSION,
    BuildContents,
    Manifest,
    current_manifest,
    open_cache,
    publish,
    resolve_build,
)
from core.calibration import Calibration, SearchFn, TextCalibration, calibrate, calibrate_text
from core.catalog import Landmark
from core.dataset import PLACES_FILE, Dataset, DatasetPhoto
from core.embedding_cache import (
    Embedded,
    EmbeddingCache,
    EmbedFn,
    PhotoToEmbed,
    ProgressFn,
    embed_missing,
    no_progress,
)
from core.encoders.base import ImageEncoder, TextEncoder
from core.enrichment import Enrichment, describe
from core.errors import GuideError
from core.files import file_lock
from core.fusion import calibrate_fused
from core.languages import CODES
from core.photo_table import PhotoRecord
from core.ranking import RankingParams
from core.vector_index import VectorIndex, build_vector_index


class BuildInProgressError(GuideError, RuntimeError):
    """Another build holds the artifacts lock."""


@dataclass(frozen=True)
class BuildReport:
    photos: int
    landmarks: int
    embedded: int
    from_cache: int
    skipped: tuple[tuple[str, str], ...] = ()  # (path, reason): unreadable files, unknown landmarks
    seconds: float = 0.0
    up_to_date: bool = False
    location: str = ""
    index: dict = field(default_factory=dict)  # core.vector_index.IndexInfo of the published build
    place_model: str = ""  # the place tower whose second index the build keeps ("": none)
    place_embedded: int = 0  # its vectors computed in this build (the rest: from the cache)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["skipped"] = [{"path": p, "reason": r} for p, r in self.skipped]
        return data

    def summary(self, listed: int = 10) -> str:
        if self.up_to_date:
            return (
                f"Index is up to date: {self.photos} photos of {self.landmarks} landmarks "
                f"(checked in {self.seconds:.1f} s)"
            )
        lines = [
            f"Indexed {self.photos} photos of {self.landmarks} landmarks in {self.seconds:.1f} s: "
            f"{self.embedded} embedded, {self.from_cache} from cache, {len(self.skipped)} skipped",
            f"→ {self.location}",
        ]
        if self.index.get("kind") == "ivf":
            i = self.index
            reuse = "trained now" if i["retrained"] else f"training of {i['trained_on']} vectors reused"
            lines.append(
                f"  search: IVF{i['nlist']} (nprobe {i['nprobe']}, recall@20 {i['recall_at_20']:.3f}; {reuse})"
            )
        if self.place_model:
            lines.append(f"  place tower {self.place_model}: its own index, {self.place_embedded} embedded")
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped[:listed]]
        if len(self.skipped) > listed:
            lines.append(f"  … and {len(self.skipped) - listed} more")
        return "\n".join(lines)


@contextlib.contextmanager
def build_lock(artifacts_dir: Path) -> Iterator[None]:
    """One build at a time per artifacts folder: a second one fails at once with BuildInProgressError."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(file_lock(artifacts_dir / BUILD_LOCK, timeout=0))
        except TimeoutError:
            raise BuildInProgressError(f"another build of {artifacts_dir}/ is running") from None
        yield


@dataclass(frozen=True)
class _Scan:
    landmarks: dict[str, Landmark]
    photos: list[DatasetPhoto]
    hashes: list[str]
    skipped: list[tuple[str, str]]
    fingerprint: str


def _scan(dataset: Dataset, cache: EmbeddingCache, report_progress: ProgressFn) -> _Scan:
    """The dataset's photos with their content hashes (memoised by size and mtime) and its fingerprint."""
    landmarks = dataset.landmarks()
    skipped: list[tuple[str, str]] = []
    photos: list[DatasetPhoto] = []
    for photo in dataset.photos():
        if photo.xid in landmarks:
            photos.append(photo)
        else:
            skipped.append((photo.path, f"landmark {photo.xid} is not in {PLACES_FILE}"))
    hashes: list[str] = []
    present: list[DatasetPhoto] = []
    for done, photo in enumerate(photos, 1):
        try:
            hashes.append(cache.hash_file(dataset.path(photo.path)))
            present.append(photo)
        except OSError as exc:  # deleted or made unreadable while the build runs
            skipped.append((photo.path, f"vanished or unreadable during the build ({exc.strerror or exc})"))
        if done % 200 == 0 or done == len(photos):
            report_progress("hash", done, len(photos))
    photos = present
    cache.commit()
    return _Scan(landmarks, photos, hashes, skipped, _fingerprint(photos, hashes, dataset))


def _up_to_date(
    artifacts_dir: Path,
    scan: _Scan,
    image_model: str,
    text_model: str,
    image_vectors: str,
    started: float,
    index_kind: str = "auto",
    place_vectors: str = "",
) -> BuildReport | None:
    previous = current_manifest(artifacts_dir)
    if (
        previous is None
        or index_kind not in ("auto", previous.search_index.get("kind", "flat"))  # asked for another kind
        or previous.dataset_fingerprint != scan.fingerprint
        or previous.image_model != image_model
        or previous.text_model != text_model
        or previous.image_vectors != image_vectors
        or previous.place_vectors != place_vectors  # the place tower added, dropped or changed
        or not (resolve_build(artifacts_dir) / CALIBRATION_FILE).is_file()  # built before calibration
    ):
        return None
    return BuildReport(
        photos=previous.count,
        landmarks=previous.landmarks,
        embedded=0,
        from_cache=previous.count,
        skipped=tuple(scan.skipped),
        seconds=time.monotonic() - started,
        up_to_date=True,
        location=str(resolve_build(artifacts_dir)),
    )


def check_up_to_date(
    data_dir: Path,
    artifacts_dir: Path,
    *,
    image_model: str,
    text_model: str,
    image_vectors: str,
    progress: ProgressFn | None = None,
    index_kind: str = "auto",
    place_vectors: str = "",
) -> BuildReport | None:
    """An "up to date" report if the published index matches the dataset and models, else None.
    Reads no image whose size and mtime are unchanged, and needs no model: callers can skip loading one."""
    started = time.monotonic()
    with build_lock(artifacts_dir), open_cache(artifacts_dir) as cache:
        scan = _scan(Dataset(data_dir), cache, progress or no_progress)
        names = (image_model, text_model, image_vectors)
        return _up_to_date(artifacts_dir, scan, *names, started, index_kind, place_vectors)


def build_index(
    data_dir: Path,
    artifacts_dir: Path,
    encoder: ImageEncoder,
    *,
    text_model: str,
    text_encoder: TextEncoder | None = None,
    progress: ProgressFn | None = None,
    force: bool = False,
    cancel: threading.Event | None = None,
    index_kind: str = "auto",
    embed: EmbedFn = embed_missing,
    place_encoder: ImageEncoder | None = None,
) -> BuildReport:
    """Embed the folder dataset (reusing cached embeddings) and publish a new index atomically.
    With `text_encoder`, text search is calibrated too (core.calibration); with `place_encoder`, the
    place tower's vectors get a second index, row for row the same photos (issue #34).
    Setting `cancel` stops it between batches with BuildCancelled; nothing is published then."""
    started = time.monotonic()
    report_progress = progress or no_progress
    dataset = Dataset(data_dir)
    with build_lock(artifacts_dir), open_cache(artifacts_dir) as cache:
        scan = _scan(dataset, cache, report_progress)
        names = (encoder.model_name, text_model, encoder.cache_key)
        place_key = place_encoder.cache_key if place_encoder is not None else ""
        if not force and (report := _up_to_date(artifacts_dir, scan, *names, started, index_kind, place_key)):
            return report
        landmarks, photos, hashes = scan.landmarks, scan.photos, scan.hashes
        to_embed = [PhotoToEmbed(h, dataset.path(p.path), p.path) for p, h in zip(photos, hashes, strict=True)]
        embedded = embed(encoder, cache, to_embed, progress=report_progress, cancel=cancel)
        vectors, skipped = embedded.vectors, scan.skipped + embedded.skipped
        place = _embed_place(place_encoder, cache, to_embed, report_progress, cancel, embed)
        kept = [h in vectors and (place is None or h in place.vectors) for h in hashes]
        records = [PhotoRecord(p.path, p.xid, h) for p, h, k in zip(photos, hashes, kept, strict=True) if k]
        matrix = np.stack([vectors[r.sha256] for r in records]) if records else np.zeros((0, encoder.dim))
        report_progress("index", 0, 1)
        previous = resolve_build(artifacts_dir) if (artifacts_dir / CURRENT_LINK).exists() else None
        index = build_vector_index(matrix, index_kind, previous)
        place_index = _place_index(place_encoder, place, records, index_kind, previous)
        report_progress("index", 1, 1)
        manifest = _manifest(encoder, text_model, records, scan.fingerprint, data_dir, index.info.to_dict())
        if place_encoder is not None and place_index is not None:
            manifest = replace(
                manifest,
                place_model=place_encoder.model_name,
                place_fingerprint=place_encoder.fingerprint,
                place_vectors=place_encoder.cache_key,
                place_dim=place_encoder.dim,
            )
        enrichment, attribution = dataset.enrichment(), dataset.attribution()
        calibration, text_calibration = _calibrate(
            index.search, records, matrix, landmarks, enrichment, text_encoder, report_progress
        )
        fused_calibration = None
        if place_index is not None and place is not None and records:
            place_matrix = np.stack([place.vectors[r.sha256] for r in records])
            row_xids, row_sha = [r.xid for r in records], [r.sha256 for r in records]
            fused_calibration = calibrate_fused(
                index.search,
                matrix,
                place_index.search,
                place_matrix,
                row_xids,
                row_sha,
                landmarks,
                RankingParams(),
                calibration,
            )
        # The whole catalog ships with the index: "nearby" lists landmarks with or without photos.
        credits = {r.path: c for r in records if (c := attribution.get(r.path)) is not None and c.license}
        location = publish(
            artifacts_dir,
            BuildContents(
                manifest,
                records,
                index,
                list(landmarks.values()),
                enrichment,
                calibration,
                text_calibration,
                credits,
                place_index,
                fused_calibration,
            ),
        )
        return BuildReport(
            photos=len(records),
            landmarks=manifest.landmarks,
            embedded=embedded.embedded,
            from_cache=sum(1 for r in records if r.sha256 in embedded.cached),
            skipped=tuple(skipped),
            seconds=time.monotonic() - started,
            location=str(location),
            index=index.info.to_dict(),
            place_model=manifest.place_model,
            place_embedded=place.embedded if place is not None else 0,
        )


def _embed_place(
    encoder: ImageEncoder | None,
    cache: EmbeddingCache,
    photos: list[PhotoToEmbed],
    report_progress: ProgressFn,
    cancel: threading.Event | None,
    embed: EmbedFn = embed_missing,
) -> Embedded | None:
    """The place tower's vectors, by the same engine (here or on Ray) through the same content-keyed
    cache under the tower's own key: adding the tower to an index embeds only its vectors."""
    if encoder is None:
        return None
    return embed(
        encoder, cache, photos, progress=lambda _, done, total: report_progress("place", done, total), cancel=cancel
    )


def _place_index(
    encoder: ImageEncoder | None,
    place: Embedded | None,
    records: list[PhotoRecord],
    index_kind: str,
    previous: Path | None,
) -> VectorIndex | None:
    """The place tower's index (the same kind rules as CLIP's, its own IVF training reused)."""
    if encoder is None or place is None:
        return None
    matrix = np.stack([place.vectors[r.sha256] for r in records]) if records else np.zeros((0, encoder.dim))
    before = previous / PLACE_DIR if previous is not None and (previous / PLACE_DIR).is_dir() else None
    return build_vector_index(matrix, index_kind, before)


def _manifest(
    encoder: ImageEncoder, text_model: str, records: list[PhotoRecord], fingerprint: str, data_dir: Path, search: dict
) -> Manifest:
    return Manifest(
        schema_version=SCHEMA_VERSION,
        image_model=encoder.model_name,
        image_fingerprint=encoder.fingerprint,
        image_vectors=encoder.cache_key,
        text_model=text_model,
        dim=encoder.dim,
        count=len(records),
        landmarks=len({r.xid for r in records}),
        dataset_fingerprint=fingerprint,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        data_dir=str(data_dir.resolve()),
        search_index=search,
    )


def _calibrate(
    search: SearchFn,
    records: list[PhotoRecord],
    matrix: np.ndarray,
    landmarks: dict[str, Landmark],
    enrichment: Enrichment,
    text_encoder: TextEncoder | None,
    report_progress: ProgressFn,
) -> tuple[Calibration | None, TextCalibration | None]:
    """How often photo answers are right (and, with a text model, text answers), fitted on this build."""
    report_progress("calibrate", 0, 2)
    row_xids = [r.xid for r in records]
    calibration = calibrate(search, row_xids, [r.sha256 for r in records], matrix, landmarks, RankingParams())
    report_progress("calibrate", 1, 2)
    text_calibration = None
    if text_encoder is not None:
        named = {x: _text_queries(landmarks[x], enrichment) for x in dict.fromkeys(row_xids)}
        text_calibration = calibrate_text(search, text_encoder.encode_texts, row_xids, named)
    report_progress("calibrate", 2, 2)
    return calibration, text_calibration


def _text_queries(landmark: Landmark, enrichment: Enrichment) -> set[str]:
    """How tourists name a landmark in text search: its name in each language, alone and with its city."""
    texts = (describe(landmark, enrichment, lang) for lang in CODES)
    return {form for text in texts for form in (text.name, f"{text.name}, {text.city}" if text.city else text.name)}


def _fingerprint(photos: list[DatasetPhoto], hashes: list[str], dataset: Dataset) -> str:
    digest = hashlib.sha256(dataset.places_path.read_bytes())
    for shipped in (dataset.enrichment_path, dataset.attribution_path):  # they change what the index ships
        if shipped.is_file():
            digest.update(shipped.read_bytes())
    for photo, sha in zip(photos, hashes, strict=True):
        digest.update(f"{photo.path}\t{photo.xid}\t{sha}\n".encode())
    return digest.hexdigest()
