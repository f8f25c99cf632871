"""The loaded index: a published build (core.artifacts) held in memory and queried from many threads —
vector search, a landmark's photos, names in every language, and where its sights are.

The format belongs to core.artifacts; the build that writes it is core.build.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from core.artifacts import ArtifactsError, Manifest, read_build, resolve_build
from core.calibration import Calibration, TextCalibration
from core.catalog import Landmark
from core.dataset import PhotoCredit
from core.enrichment import Enrichment, LandmarkText, city_name, describe
from core.geo import LandmarkLocator
from core.photo_table import PhotoRecord, as_photo_table
from core.vector_index import IndexInfo, VectorIndex

log = logging.getLogger(__name__)


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
        place_index: VectorIndex | None = None,
        fused_calibration: Calibration | None = None,
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
        self.place_index = place_index  # the place tower's (issue #34), row for row these photos
        self.fused_calibration = fused_calibration  # both towers' evidence (core.fusion); None without it

    def __len__(self) -> int:
        return len(self.photos)

    @property
    def dim(self) -> int:
        return self._index.dim

    @property
    def towers(self) -> list[str]:
        """The photo towers this build holds vectors of: CLIP's image model, and the place tower's."""
        return [self.manifest.image_model] + ([self.manifest.place_model] if self.place_index is not None else [])

    def place_view(self) -> PhotoIndex | None:
        """The same photos and landmarks searched by the place tower's vectors (None without it): the
        place tower's own answer, fused with CLIP's (core.fusion) and measured alone by `prep eval`."""
        return self._place_view

    @cached_property
    def _place_view(self) -> PhotoIndex | None:
        if self.place_index is None:
            return None
        view = PhotoIndex(self.manifest, self.photos, self.landmarks, self.place_index, self.location, self.enrichment)
        # Shared, not rebuilt: the same rows, landmarks and places.
        view._rows_by_xid, view._copies, view.locator = self._rows_by_xid, self._copies, self.locator
        return view

    @property
    def data_dir(self) -> Path:
        return Path(self.manifest.data_dir)

    @classmethod
    def load(cls, artifacts_dir: Path) -> PhotoIndex:
        location = resolve_build(artifacts_dir)
        build = read_build(location)
        landmarks = {landmark.xid: landmark for landmark in build.landmarks}
        return cls(
            build.manifest,
            build.records,
            landmarks,
            build.index,
            location,
            build.enrichment,
            build.calibration,
            build.text_calibration,
            credits=build.credits,
            place_index=build.place_index,
            fused_calibration=build.fused_calibration,
        )

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

    def address(self, xid: str) -> str:
        """A landmark's street address where Wikidata has one (local form), else ""."""
        info = self.enrichment.landmarks.get(xid)
        return info.address if info is not None else ""

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
