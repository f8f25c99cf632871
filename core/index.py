"""The artifacts: a FAISS inner-product index of the dataset's photos, their metadata and a manifest.

Writing and reading the format both live here. Layout of ARTIFACTS_DIR:

    current -> builds/<id>     symlink, swapped atomically when a build succeeds
    builds/<id>/index.faiss    the vectors' index (core.vector_index): exact IndexFlatIP over L2-normalised
                               image embeddings (inner product = cosine), or, for large datasets, IVF with
                               fast-scan PQ + builds/<id>/vectors.f16.npy (exact re-ranking, memory-mapped)
                               + trained.faiss/trained.json (the training, reused by the next build)
    builds/<id>/photos.csv     row i of the index: path (relative to the data dir), xid, sha256
    builds/<id>/photos/        the same rows as columns the bot memory-maps (core.photo_table)
    builds/<id>/landmarks.csv  the dataset's whole catalog (places.csv columns), with or without photos
    builds/<id>/enrichment.json  names, descriptions, links per language (core.enrichment), if enriched
    builds/<id>/attribution.csv  credits of the indexed photos that need them (core.dataset's format), if any
    builds/<id>/calibration.json how often an answer is right, fitted on this build (core.calibration)
    builds/<id>/manifest.json  schema version, models, dimension, counts, dataset fingerprint, build time
    cache/embeddings.sqlite    embeddings by content hash (see embedding_cache.py)

A build happens in a fresh folder and only the final symlink swap publishes it, so a crash or an
error at any point leaves the previous index untouched and loadable.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import numpy as np

from core.calibration import Calibration, TextCalibration, calibrate, calibrate_text
from core.catalog import Landmark, read_places, write_places
from core.dataset import (
    ATTRIBUTION_FILE,
    PLACES_FILE,
    Dataset,
    DatasetPhoto,
    PhotoCredit,
    read_attribution,
    write_attribution,
)
from core.embedding_cache import (
    CACHE_FILE,
    EmbeddingCache,
    EmbedFn,
    PhotoToEmbed,
    ProgressFn,
    embed_missing,
    no_progress,
)
from core.encoders.base import ImageEncoder, TextEncoder
from core.enrichment import ENRICHMENT_FILE, Enrichment, LandmarkText, city_name, describe
from core.errors import GuideError
from core.geo import LandmarkLocator
from core.languages import CODES
from core.photo_table import PhotoRecord, PhotoTable, as_photo_table
from core.ranking import RankingParams
from core.vector_index import IndexInfo, VectorIndex, build_vector_index

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CURRENT_LINK = "current"
BUILDS_DIR = "builds"
CACHE_DIR = "cache"
LOCK_FILE = ".build.lock"
MANIFEST_FILE = "manifest.json"
INDEX_FILE = "index.faiss"
LANDMARKS_FILE = "landmarks.csv"
CALIBRATION_FILE = "calibration.json"  # core.calibration's model and figures, fitted at build


class ArtifactsError(GuideError, RuntimeError):
    """Artifacts are missing, damaged or built for other models; the message says what to do."""


class BuildInProgressError(GuideError, RuntimeError):
    """Another build holds the artifacts lock."""


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    image_model: str
    text_model: str
    dim: int
    count: int
    landmarks: int
    dataset_fingerprint: str
    built_at: str
    data_dir: str
    image_fingerprint: str = ""  # the image model's content (older builds: "", i.e. unknown)
    image_vectors: str = ""  # the embedding-cache key of its vectors: model, content and runtime (int8…)
    search_index: dict = field(default_factory=dict)  # core.vector_index.IndexInfo (older builds: {}, flat)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise ArtifactsError(
                f"{path} is damaged ({exc.__class__.__name__}): rebuild with `python -m prep build`"
            ) from None
        if not isinstance(raw, dict):
            raise ArtifactsError(f"{path} is damaged (not a JSON object): rebuild with `python -m prep build`")
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise ArtifactsError(
                f"artifacts in {path.parent} have schema version {raw.get('schema_version')}, this program reads "
                f"version {SCHEMA_VERSION}: rebuild them with `python -m prep build`"
            )
        optional = {"image_fingerprint", "image_vectors", "search_index"}
        try:
            manifest = cls(
                **{name: raw[name] for name in cls.__dataclass_fields__ if name in raw or name not in optional}
            )
        except (KeyError, TypeError) as exc:
            raise ArtifactsError(f"{path} lacks or garbles field {exc}: rebuild with `python -m prep build`") from None
        if not isinstance(manifest.dim, int) or not isinstance(manifest.image_model, str):
            raise ArtifactsError(f"{path} is damaged: rebuild with `python -m prep build`")
        return manifest


class PhotoIndex:
    """A loaded, read-only index: safe to query from several threads at once."""

    def __init__(
        self,
        manifest: Manifest,
        photos: Sequence[PhotoRecord],
        landmarks: dict[str, Landmark],
        index: VectorIndex,
        location: Path,
        enrichment: Enrichment | None = None,
        calibration: Calibration | None = None,
        text_calibration: TextCalibration | None = None,
        credits: dict[str, PhotoCredit] | None = None,
    ) -> None:
        self.credits = credits or {}  # photo path → author and licence, for the photos that need crediting
        self.calibration = calibration  # None: too few photos to fit one, or a build from before it
        self.text_calibration = text_calibration  # None: too few names, or built without the text model
        self.manifest = manifest
        self.photos = as_photo_table(photos)
        self.landmarks = landmarks
        self.location = location
        self.enrichment = enrichment or Enrichment()
        self._index = index

    def __len__(self) -> int:
        return len(self.photos)

    @property
    def dim(self) -> int:
        return self.manifest.dim

    @property
    def data_dir(self) -> Path:
        return Path(self.manifest.data_dir)

    @classmethod
    def load(cls, artifacts_dir: Path) -> PhotoIndex:
        location = resolve_build(artifacts_dir)
        manifest = Manifest.read(location / MANIFEST_FILE)
        try:
            index = VectorIndex.load(location, IndexInfo(**manifest.search_index))
            photos = PhotoTable.read(location)
            landmarks = read_places(location / LANDMARKS_FILE)
            credits = read_attribution(location / ATTRIBUTION_FILE)  # never served uncredited: damaged if unread
        except Exception as exc:
            raise ArtifactsError(
                f"artifacts in {location} are damaged ({exc}): rebuild with `python -m prep build`"
            ) from None
        if index.ntotal != len(photos) or index.dim != manifest.dim:
            raise ArtifactsError(
                f"artifacts in {location} are inconsistent: rebuild with `python -m prep build`"
            ) from None
        enrichment = Enrichment.read(location / ENRICHMENT_FILE)
        calibrations = _read_calibration(location)
        return cls(manifest, photos, landmarks, index, location, enrichment, *calibrations, credits=credits)

    def check_models(
        self, image_model: str, text_model: str | None = None, dim: int | None = None, fingerprint: str = ""
    ) -> None:
        """Refuse to serve vectors from one model against queries from another (by name and by content)."""
        if self.manifest.image_model != image_model:
            raise ArtifactsError(
                f"the index was built with image model {self.manifest.image_model!r} but IMAGE_MODEL is "
                f"{image_model!r}: rebuild it with `python -m prep build` or set IMAGE_MODEL back"
            )
        built_with = self.manifest.image_fingerprint
        if fingerprint and built_with and fingerprint != built_with:
            raise ArtifactsError(
                f"the index was built with other weights under the name {image_model!r} "
                f"({built_with[:12]}, now {fingerprint[:12]}): rebuild it with `python -m prep build`"
            )
        if dim is not None and dim != self.manifest.dim:
            raise ArtifactsError(f"the index has dimension {self.manifest.dim}, the text model gives {dim}")
        if text_model is not None and text_model != self.manifest.text_model:
            log.warning("index built for text model %s, serving %s", self.manifest.text_model, text_model)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarities and row numbers of the k nearest photos; rows are -1 past the index size."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        k = max(1, min(k, len(self.photos))) if len(self.photos) else 1
        return self._index.search(queries, k)

    def neighbours(
        self, similarities: np.ndarray, rows: np.ndarray, exclude_sha256: str | None = None
    ) -> tuple[list[float], list[str]]:
        """One query's search result as (similarities, landmark xids), without the -1 padding and,
        for leave-one-out evaluation, without the copies of the query photo itself."""
        keep = [
            (float(s), int(r))
            for s, r in zip(similarities, rows, strict=True)
            if r >= 0 and (exclude_sha256 is None or self.photos.sha256(r) != exclude_sha256)
        ]
        return [s for s, _ in keep], [self.photos.xid(r) for _, r in keep]

    def describe(self, xid: str, lang: str) -> LandmarkText:
        """A landmark's name, city, description and link in `lang` (enriched, or the dataset's, or transliterated)."""
        return describe(self.landmarks[xid], self.enrichment, lang)

    def city_names(self, lang: str) -> list[str]:
        """The cities of the indexed photos' landmarks, in `lang`, in catalog order."""
        cities = dict.fromkeys(lm.city for xid, lm in self.landmarks.items() if self.has_photos(xid) and lm.city)
        return [city_name(city, self.enrichment, lang) for city in cities]

    def photos_of(self, xid: str) -> list[int]:
        """Rows of a landmark's indexed photos."""
        return [int(r) for r in self._rows_by_xid.get(xid, ())]

    def _landmark_similarities(
        self, vector: np.ndarray, xid: str, exclude_sha256: str | None = None
    ) -> tuple[list[int], np.ndarray]:
        """The rows of a landmark's photos (without copies of `exclude_sha256`) and their cosine to `vector`."""
        rows = [int(r) for r in self._rows_by_xid.get(xid, ())]
        if exclude_sha256 is not None:
            rows = [r for r in rows if self.photos.sha256(r) != exclude_sha256]
        if not rows:
            return [], np.zeros(0, dtype=np.float32)
        matrix = self._index.rows(rows)
        return rows, matrix @ np.asarray(vector, dtype=np.float32).reshape(-1)

    def best_row(self, vector: np.ndarray, xid: str) -> int | None:
        """The row of the landmark's photo closest to `vector`."""
        rows, similarities = self._landmark_similarities(vector, xid)
        return rows[int(np.argmax(similarities))] if rows else None

    @cached_property
    def locator(self) -> LandmarkLocator:
        """The catalog's landmarks with coordinates, by distance (built on first use)."""
        return LandmarkLocator(self.landmarks)

    @cached_property
    def sight_locator(self) -> LandmarkLocator:
        """The landmarks that have indexed photos (the sights a walk or a live location leads to), by distance."""
        return LandmarkLocator({xid: self.landmarks[xid] for xid in self.indexed_xids if xid in self.landmarks})

    @cached_property
    def _rows_by_xid(self) -> dict[str, np.ndarray]:
        return self.photos.rows_by_xid()

    @cached_property
    def _copies(self) -> dict[bytes, int]:
        return self.photos.copies()

    def copies(self, sha256: str) -> int:
        """How many indexed photos have this content (1 for a content held once or not at all: the number
        serves as a search-depth margin, and a set of a million hashes would cost ~100 MB)."""
        return self._copies.get(bytes.fromhex(sha256), 1) if len(sha256) == 64 else 1

    def has_photos(self, xid: str) -> bool:
        return xid in self._rows_by_xid

    @property
    def indexed_xids(self) -> list[str]:
        """The landmarks that have indexed photos, in the order of their first photo."""
        return list(self._rows_by_xid)

    def best_similarity(self, vector: np.ndarray, xid: str, exclude_sha256: str | None = None) -> float:
        """Cosine similarity of `vector` to the closest indexed photo of landmark `xid` (-1 if it has none)."""
        rows, similarities = self._landmark_similarities(vector, xid, exclude_sha256)
        return float(similarities.max()) if rows else -1.0

    def vector(self, row: int) -> np.ndarray:
        return self._index.vector(row)

    def vectors(self) -> np.ndarray:
        return self._index.all_vectors()

    @property
    def search_info(self) -> IndexInfo:
        """How this build's vectors are searched (flat, or IVF with its nlist, nprobe and recall)."""
        return self._index.info

    def credit(self, row: int) -> PhotoCredit | None:
        """Who made the photo at `row` and its licence, when it needs crediting (harvested photos)."""
        return self.credits.get(self.photos[row].path)

    def photo_path(self, row: int, data_dir: Path | None = None) -> Path:
        return (data_dir or self.data_dir) / self.photos[row].path


def _read_calibration(location: Path) -> tuple[Calibration | None, TextCalibration | None]:
    """The build's photo and text calibrations; none (too few photos, an older build) or a damaged
    file gives None, and the fixed thresholds serve."""
    path = location / CALIBRATION_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        image = Calibration.from_dict(raw["calibration"]) if raw.get("calibration") else None
        text = TextCalibration.from_dict(raw["text"]) if raw.get("text") else None
        return image, text
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        log.warning("%s is damaged (%s): the fixed thresholds serve; `python -m prep build --force`", path, exc)
        return None, None


def resolve_build(artifacts_dir: Path) -> Path:
    """The folder holding the active build (ARTIFACTS_DIR/current, or ARTIFACTS_DIR itself if it is one)."""
    if (artifacts_dir / MANIFEST_FILE).is_file():
        return artifacts_dir
    current = artifacts_dir / CURRENT_LINK
    if not (current / MANIFEST_FILE).is_file():
        raise ArtifactsError(f"no index in {artifacts_dir}/: build one with `python -m prep build`")
    return current.resolve()


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
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped[:listed]]
        if len(self.skipped) > listed:
            lines.append(f"  … and {len(self.skipped) - listed} more")
        return "\n".join(lines)


@contextmanager
def build_lock(artifacts_dir: Path) -> Iterator[None]:
    """One build at a time per artifacts folder (a `prep build` and a /reindex may race)."""
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    with (artifacts_dir / LOCK_FILE).open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildInProgressError(f"another build of {artifacts_dir}/ is running") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_cache(artifacts_dir: Path) -> EmbeddingCache:
    return EmbeddingCache(artifacts_dir / CACHE_DIR / CACHE_FILE)


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
) -> BuildReport | None:
    previous = _current_manifest(artifacts_dir)
    if (
        previous is None
        or index_kind not in ("auto", previous.search_index.get("kind", "flat"))  # asked for another kind
        or previous.dataset_fingerprint != scan.fingerprint
        or previous.image_model != image_model
        or previous.text_model != text_model
        or previous.image_vectors != image_vectors
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
) -> BuildReport | None:
    """An "up to date" report if the published index matches the dataset and models, else None.
    Reads no image whose size and mtime are unchanged, and needs no model: callers can skip loading one."""
    started = time.monotonic()
    with build_lock(artifacts_dir), open_cache(artifacts_dir) as cache:
        scan = _scan(Dataset(data_dir), cache, progress or no_progress)
        return _up_to_date(artifacts_dir, scan, image_model, text_model, image_vectors, started, index_kind)


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
) -> BuildReport:
    """Embed the folder dataset (reusing cached embeddings) and publish a new index atomically.
    With `text_encoder`, text search is calibrated too (core.calibration).
    Setting `cancel` stops it between batches with BuildCancelled; nothing is published then."""
    started = time.monotonic()
    report_progress = progress or no_progress
    dataset = Dataset(data_dir)
    with build_lock(artifacts_dir), open_cache(artifacts_dir) as cache:
        scan = _scan(dataset, cache, report_progress)
        names = (encoder.model_name, text_model, encoder.cache_key)
        if not force and (report := _up_to_date(artifacts_dir, scan, *names, started, index_kind)):
            return report
        landmarks, photos, hashes, fingerprint = scan.landmarks, scan.photos, scan.hashes, scan.fingerprint
        to_embed = [PhotoToEmbed(h, dataset.path(p.path), p.path) for p, h in zip(photos, hashes, strict=True)]
        embedded = embed(encoder, cache, to_embed, progress=report_progress, cancel=cancel)
        vectors, skipped = embedded.vectors, scan.skipped + embedded.skipped
        records = [PhotoRecord(p.path, p.xid, h) for p, h in zip(photos, hashes, strict=True) if h in vectors]
        matrix = np.stack([vectors[r.sha256] for r in records]) if records else np.zeros((0, encoder.dim))
        indexed_xids = {r.xid for r in records}
        report_progress("index", 0, 1)
        previous = resolve_build(artifacts_dir) if (artifacts_dir / CURRENT_LINK).exists() else None
        index = build_vector_index(matrix, index_kind, previous)
        report_progress("index", 1, 1)
        manifest = Manifest(
            schema_version=SCHEMA_VERSION,
            image_model=encoder.model_name,
            image_fingerprint=encoder.fingerprint,
            image_vectors=encoder.cache_key,
            text_model=text_model,
            dim=encoder.dim,
            count=len(records),
            landmarks=len(indexed_xids),
            dataset_fingerprint=fingerprint,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            data_dir=str(data_dir.resolve()),
            search_index=index.info.to_dict(),
        )
        report_progress("calibrate", 0, 2)
        row_xids = [r.xid for r in records]
        calibration = calibrate(index.search, row_xids, [r.sha256 for r in records], matrix, landmarks, RankingParams())
        report_progress("calibrate", 1, 2)
        enrichment, attribution = dataset.enrichment(), dataset.attribution()
        text_calibration = None
        if text_encoder is not None:
            named = {x: _text_queries(landmarks[x], enrichment) for x in indexed_xids}
            text_calibration = calibrate_text(index.search, text_encoder.encode_texts, row_xids, named)
        report_progress("calibrate", 2, 2)
        # The whole catalog ships with the index: "nearby" lists landmarks with or without photos.
        location = _publish(
            artifacts_dir,
            manifest,
            records,
            index,
            list(landmarks.values()),
            enrichment,
            (calibration, text_calibration),
            {r.path: credit for r in records if (credit := attribution.get(r.path)) is not None and credit.license},
        )
        return BuildReport(
            photos=len(records),
            landmarks=len(indexed_xids),
            embedded=embedded.embedded,
            from_cache=sum(1 for r in records if r.sha256 in embedded.cached),
            skipped=tuple(skipped),
            seconds=time.monotonic() - started,
            location=str(location),
            index=index.info.to_dict(),
        )


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


def _current_manifest(artifacts_dir: Path) -> Manifest | None:
    try:
        return Manifest.read(resolve_build(artifacts_dir) / MANIFEST_FILE)
    except ArtifactsError:
        return None


def _publish(
    artifacts_dir: Path,
    manifest: Manifest,
    records: list[PhotoRecord],
    index: VectorIndex,
    landmarks: list[Landmark],
    enrichment: Enrichment,
    calibrations: tuple[Calibration | None, TextCalibration | None],
    credits: dict[str, PhotoCredit],
) -> Path:
    builds = artifacts_dir / BUILDS_DIR
    builds.mkdir(parents=True, exist_ok=True)
    # Unique even for two builds in one second: the live build's folder must never be overwritten.
    build_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{manifest.dataset_fingerprint[:8]}-{uuid.uuid4().hex[:6]}"
    staging = builds / f".tmp-{build_id}"
    final = builds / build_id
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        # The manifest records the index file's checksum: a file damaged later is refused at load.
        manifest = replace(manifest, search_index=index.write(staging).to_dict())
        PhotoTable.from_records(records).write(staging)
        write_places(staging / LANDMARKS_FILE, landmarks)
        if enrichment.landmarks or enrichment.cities:
            enrichment.write(staging / ENRICHMENT_FILE)
        if credits:
            write_attribution(staging / ATTRIBUTION_FILE, credits)
        image, text = calibrations
        fitted = {"calibration": image.to_dict() if image else None, "text": text.to_dict() if text else None}
        (staging / CALIBRATION_FILE).write_text(json.dumps(fitted, indent=1), encoding="utf-8")
        # The manifest goes last: a folder without one is never taken for a build.
        (staging / MANIFEST_FILE).write_text(json.dumps(asdict(manifest), indent=2), encoding="utf-8")
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = (artifacts_dir / CURRENT_LINK).resolve() if (artifacts_dir / CURRENT_LINK).exists() else None
    link_tmp = artifacts_dir / f".{CURRENT_LINK}.tmp"
    link_tmp.unlink(missing_ok=True)
    os.symlink(Path(BUILDS_DIR) / build_id, link_tmp)
    os.replace(link_tmp, artifacts_dir / CURRENT_LINK)
    _prune(builds, keep={final.resolve(), previous})
    return final


def _prune(builds: Path, keep: set[Path | None]) -> None:
    """Keep the new build and the one before it (for a quick manual rollback); drop the rest."""
    for child in builds.iterdir():
        if child.is_dir() and child.resolve() not in keep:
            shutil.rmtree(child, ignore_errors=True)
