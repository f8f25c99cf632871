"""The artifacts' on-disk format: its one writer (`publish`) and its one reader (`read_build`).

Layout of ARTIFACTS_DIR:

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
    cache/embeddings.sqlite    embeddings by content hash (core.embedding_cache)
    .build.lock                held by the one build running (core.build)

A build is written in a fresh folder and only the final symlink swap publishes it, so a crash or an
error at any point leaves the previous index untouched and loadable. The pipeline that makes a build
is core.build; the loaded, queryable index is core.index.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from core.calibration import Calibration, TextCalibration
from core.catalog import Landmark, read_places, write_places
from core.dataset import ATTRIBUTION_FILE, PhotoCredit, read_attribution, write_attribution
from core.embedding_cache import CACHE_FILE, EmbeddingCache
from core.enrichment import ENRICHMENT_FILE, Enrichment
from core.errors import GuideError
from core.photo_table import PhotoRecord, PhotoTable
from core.vector_index import IndexInfo, VectorIndex

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CURRENT_LINK = "current"
BUILDS_DIR = "builds"
CACHE_DIR = "cache"
BUILD_LOCK = ".build"  # core.files.file_lock adds ".lock": ARTIFACTS_DIR/.build.lock
MANIFEST_FILE = "manifest.json"
INDEX_FILE = "index.faiss"
LANDMARKS_FILE = "landmarks.csv"
CALIBRATION_FILE = "calibration.json"  # core.calibration's model and figures, fitted at build
PLACE_DIR = "place"  # the place tower's vectors' index, in core.vector_index's files


class ArtifactsError(GuideError, RuntimeError):
    """Artifacts are missing, damaged or built for other models; the message says what to do."""


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
    # The place tower's second index (PLACE_MODEL, issue #34), in place/; "" and {} when built without it.
    place_model: str = ""
    place_fingerprint: str = ""
    place_vectors: str = ""  # its embedding-cache key
    place_dim: int = 0
    place_search_index: dict = field(default_factory=dict)

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
        optional = {
            "image_fingerprint",
            "image_vectors",
            "search_index",
            *(f for f in cls.__dataclass_fields__ if f.startswith("place_")),
        }
        try:
            manifest = cls(
                **{name: raw[name] for name in cls.__dataclass_fields__ if name in raw or name not in optional}
            )
        except (KeyError, TypeError) as exc:
            raise ArtifactsError(f"{path} lacks or garbles field {exc}: rebuild with `python -m prep build`") from None
        if not isinstance(manifest.dim, int) or not isinstance(manifest.image_model, str):
            raise ArtifactsError(f"{path} is damaged: rebuild with `python -m prep build`")
        return manifest


@dataclass(frozen=True)
class BuildContents:
    """Everything one build holds, as `publish` writes it and `read_build` gives it back."""

    manifest: Manifest
    records: list[PhotoRecord] | PhotoTable
    index: VectorIndex
    landmarks: list[Landmark]
    enrichment: Enrichment = field(default_factory=Enrichment)
    calibration: Calibration | None = None
    text_calibration: TextCalibration | None = None
    credits: dict[str, PhotoCredit] = field(default_factory=dict)  # photo path → credit, where one is needed
    place_index: VectorIndex | None = None  # the place tower's, row for row the same photos
    fused_calibration: Calibration | None = None  # P(right) of the fused answer (core.fusion)


def read_build(location: Path) -> BuildContents:
    """The build in `location` (a folder `resolve_build` gave), checked: ArtifactsError if it is damaged."""
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
        raise ArtifactsError(f"artifacts in {location} are inconsistent: rebuild with `python -m prep build`")
    calibration, text_calibration, fused_calibration = _read_calibration(location)
    enrichment = Enrichment.read(location / ENRICHMENT_FILE)
    return BuildContents(
        manifest,
        photos,
        index,
        list(landmarks.values()),
        enrichment,
        calibration,
        text_calibration,
        credits,
        _read_place_index(location, manifest, len(photos)),
        fused_calibration,
    )


def _read_place_index(location: Path, manifest: Manifest, rows: int) -> VectorIndex | None:
    if not manifest.place_model:
        return None
    try:
        index = VectorIndex.load(location / PLACE_DIR, IndexInfo(**manifest.place_search_index))
    except Exception as exc:
        raise ArtifactsError(f"the place tower's index in {location} is damaged ({exc}): rebuild it") from None
    if index.ntotal != rows or index.dim != manifest.place_dim:
        raise ArtifactsError(f"the place tower's index in {location} does not match its photos: rebuild it")
    return index


def _read_calibration(location: Path) -> tuple[Calibration | None, TextCalibration | None, Calibration | None]:
    """The build's photo, text and fused (both towers, core.fusion) calibrations; none (too few photos, an
    older build) or a damaged file gives None, and the fixed thresholds serve."""
    path = location / CALIBRATION_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        image = Calibration.from_dict(raw["calibration"]) if raw.get("calibration") else None
        text = TextCalibration.from_dict(raw["text"]) if raw.get("text") else None
        fused = Calibration.from_dict(raw["fused"]) if raw.get("fused") else None
        return image, text, fused
    except FileNotFoundError:
        return None, None, None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        log.warning("%s is damaged (%s): the fixed thresholds serve; `python -m prep build --force`", path, exc)
        return None, None, None


def resolve_build(artifacts_dir: Path) -> Path:
    """The folder holding the active build (ARTIFACTS_DIR/current, or ARTIFACTS_DIR itself if it is one)."""
    if (artifacts_dir / MANIFEST_FILE).is_file():
        return artifacts_dir
    current = artifacts_dir / CURRENT_LINK
    if not (current / MANIFEST_FILE).is_file():
        raise ArtifactsError(f"no index in {artifacts_dir}/: build one with `python -m prep build`")
    return current.resolve()


def has_index(artifacts_dir: Path) -> bool:
    """Whether ARTIFACTS_DIR holds a published build (nothing is loaded or checked beyond its manifest)."""
    try:
        resolve_build(artifacts_dir)
    except ArtifactsError:
        return False
    return True


def current_manifest(artifacts_dir: Path) -> Manifest | None:
    """The published build's manifest, or None when there is none (or it is damaged)."""
    try:
        return Manifest.read(resolve_build(artifacts_dir) / MANIFEST_FILE)
    except ArtifactsError:
        return None


def open_cache(artifacts_dir: Path) -> EmbeddingCache:
    """The embedding cache beside the builds."""
    return EmbeddingCache(artifacts_dir / CACHE_DIR / CACHE_FILE)


def publish(artifacts_dir: Path, build: BuildContents) -> Path:
    """Write `build` into a fresh folder under builds/, then point `current` at it in one step; the build
    before it stays (a quick manual rollback), older ones go. Returns the new build's folder."""
    manifest, index = build.manifest, build.index
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
        if build.place_index is not None:
            (staging / PLACE_DIR).mkdir()
            manifest = replace(manifest, place_search_index=build.place_index.write(staging / PLACE_DIR).to_dict())
        PhotoTable.from_records(build.records).write(staging)
        write_places(staging / LANDMARKS_FILE, build.landmarks)
        if build.enrichment.landmarks or build.enrichment.cities:
            build.enrichment.write(staging / ENRICHMENT_FILE)
        if build.credits:
            write_attribution(staging / ATTRIBUTION_FILE, build.credits)
        image, text = build.calibration, build.text_calibration
        fitted = {"calibration": image.to_dict() if image else None, "text": text.to_dict() if text else None}
        if build.fused_calibration is not None:
            fitted["fused"] = build.fused_calibration.to_dict()
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
