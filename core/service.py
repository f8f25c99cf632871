"""The Guide: what the bot and the CLIs call. Holds the encoders and the current index."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from core.artifacts import ArtifactsError
from core.build import BuildReport, build_index
from core.calibration import DEFAULT_MATCH_PRECISION, Calibration, text_threshold
from core.dataset import PhotoCredit
from core.embedding_cache import ProgressFn
from core.encoders import ImageEncoder, Runtime, TextEncoder, choose_runtime
from core.errors import GuideError
from core.fusion import chosen_weight, clip_is_certain, fuse, fused_evidence
from core.geo import GeoPoint, Nearby
from core.imaging import decode_image, read_gps
from core.index import PhotoIndex
from core.ranking import PhotoLocation, RankingParams, Recognition, most_typical_first
from core.recognition import DEFAULT_LOCATION_MAX_KM, rank
from core.settings import Settings, usable_cpus
from core.walks import WALK_RADIUS_M, WALK_STOPS, Loop, shortest_loop

log = logging.getLogger(__name__)

ALBUM_SIZE = 5
NEARBY_LIMIT = 5


class EmptyQueryError(GuideError, ValueError):
    """The text query has nothing to search for."""


@dataclass(frozen=True)
class PhotoHit:
    path: Path
    xid: str
    name: str
    city: str
    score: float
    credit: PhotoCredit | None = None  # author and licence, when the photo needs crediting

    def to_dict(self, relative_to: Path | None = None) -> dict:
        path = self.path
        if relative_to is not None:
            try:
                path = path.resolve().relative_to(relative_to.resolve())
            except ValueError:
                pass
        credit = None if self.credit is None else self.credit.to_dict()
        return {
            "path": str(path),
            "xid": self.xid,
            "name": self.name,
            "score": round(self.score, 4),
            "photo_credit": credit,
        }


def _build_first_index(
    settings: Settings,
    image_encoder: ImageEncoder,
    text_encoder: TextEncoder,
    place_encoder: ImageEncoder | None,
    progress: ProgressFn | None,
) -> PhotoIndex:
    if not settings.data_dir.is_dir():
        raise ArtifactsError(
            f"no index in {settings.artifacts_dir}/ and no dataset in {settings.data_dir}/ to build one "
            "from: run `python -m prep ingest RAW_DIR` (or set DATA_DIR)"
        )
    log.warning("no index yet: building it from %s (this runs once)", settings.data_dir)
    build_index(
        settings.data_dir,
        settings.artifacts_dir,
        image_encoder,
        text_model=text_encoder.model_name,
        text_encoder=text_encoder,
        progress=progress,
        place_encoder=place_encoder,
    )
    return PhotoIndex.load(settings.artifacts_dir)


def _loaded_place_encoder(runtime: Runtime) -> ImageEncoder | None:
    """PLACE_MODEL's tower, or None — off, or not loadable here (said in one line: CLIP answers alone)."""
    try:
        return runtime.place_encoder()
    except GuideError as exc:  # e.g. the serving install has no torch, and the tower no ONNX export yet
        log.warning("%s: CLIP answers alone", exc)
        return None


def _tower_answer(result: Recognition) -> dict[str, object]:
    """One tower's own top answer, as `core recognize --json` names it beside the fused one."""
    if not result.landmarks:
        return {"xid": None, "score": 0.0, "best_similarity": round(result.best_similarity, 4)}
    top = result.landmarks[0]
    return {"xid": top.xid, "score": round(top.score, 4), "best_similarity": round(top.similarity, 4)}


def _place_encoder(runtime: Runtime, index: PhotoIndex, loaded: ImageEncoder | None = None) -> ImageEncoder | None:
    """The place tower when PLACE_MODEL asks for it and this process can run it; CLIP answers alone where the
    index lacks its vectors (until a rebuild — `/reindex` included — adds them, the tower kept for it) or
    holds another tower's, each said in one line. `loaded`: the tower already in memory."""
    wanted, built = runtime.settings.place_tower, index.manifest.place_model
    if wanted is None:
        if built:
            log.info("the index holds the place tower %s; PLACE_MODEL is off: CLIP answers alone", built)
        return None
    encoder = loaded or _loaded_place_encoder(runtime)
    if encoder is None:
        return None
    if not built:
        log.warning(
            "PLACE_MODEL is set but the index was built without it: CLIP answers alone until /reindex or "
            "`prep build` adds the tower's vectors"
        )
        return encoder
    manifest = index.manifest
    both_known = encoder.fingerprint and manifest.place_fingerprint
    if encoder.model_name != built or (both_known and encoder.fingerprint != manifest.place_fingerprint):
        log.warning("PLACE_MODEL is not the place tower the index was built with: CLIP answers alone (`prep build`)")
        return None
    if encoder.cache_key != manifest.place_vectors:  # e.g. built on torch, served int8: close, not the same
        log.info("the place tower's vectors come from %s, %s serves them", manifest.place_vectors, encoder.cache_key)
    return encoder


class Guide:
    """Recognition and search over one index; `swap` replaces the index without stopping queries.

    Queries read `self._index` once at their start, so a swap in another thread never mixes two
    indexes inside one answer, and the old index lives until its last query is done.
    """

    def __init__(
        self,
        index: PhotoIndex,
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        params: RankingParams | None = None,
        data_dir: Path | None = None,
        location_max_km: float = DEFAULT_LOCATION_MAX_KM,
        text_match_threshold: float | None = None,
        match_precision: float = DEFAULT_MATCH_PRECISION,
        place_encoder: ImageEncoder | None = None,
    ) -> None:
        index.check_models(
            image_encoder.model_name, text_encoder.model_name, text_encoder.dim, image_encoder.fingerprint
        )
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.params = params or RankingParams()
        self.data_dir = data_dir
        self.location_max_km = location_max_km
        self.text_match_threshold = text_match_threshold  # set by hand (TEXT_MATCH_THRESHOLD), else calibrated
        self.match_precision = match_precision
        self.place_encoder = place_encoder  # the place tower (core.fusion); None: CLIP answers alone
        # The place tower runs here while CLIP answers on the caller's thread: its time overlaps CLIP's on a
        # spare core (through the bot, 2.33× → 1.54× CLIP alone, 2 vCPU). A thread per usable CPU, so
        # each compute worker's photo can have its tower run at once; under load they simply queue.
        self._tower_pool = (
            ThreadPoolExecutor(usable_cpus(), thread_name_prefix="place-tower") if place_encoder is not None else None
        )
        self._index = index
        self._swap_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, build_missing: bool = False, progress: ProgressFn | None = None
    ) -> Guide:
        """Load the index and both models once. With build_missing, an absent index is first built
        from DATA_DIR with the image model just loaded (not a second copy of it)."""
        try:
            index: PhotoIndex | None = PhotoIndex.load(settings.artifacts_dir)
        except ArtifactsError:
            if not build_missing:
                raise  # before loading any model: a missing index is reported at once
            index = None
        runtime = choose_runtime(settings)
        if runtime.fallback:
            log.warning("%s", runtime.fallback)
        image_encoder = runtime.image_encoder()
        text_encoder = place = None
        if index is None:  # the build calibrates text search too: the text model is needed first
            text_encoder, place = runtime.text_encoder(), _loaded_place_encoder(runtime)
            index = _build_first_index(settings, image_encoder, text_encoder, place, progress)
        # Check the index before loading the second model: a mismatch is then reported at once.
        index.check_models(image_encoder.model_name, fingerprint=image_encoder.fingerprint)
        if index.manifest.image_vectors and index.manifest.image_vectors != image_encoder.cache_key:
            log.warning(
                "the index was embedded by another runtime (%s) than the one serving (%s): run `python -m prep build`",
                index.manifest.image_vectors,
                image_encoder.cache_key,
            )
        text_encoder = text_encoder or runtime.text_encoder()
        place_encoder = _place_encoder(runtime, index, place)
        return cls(
            index,
            image_encoder,
            text_encoder,
            settings.ranking_params(),
            data_dir=settings.data_dir if settings.data_dir.is_dir() else None,
            location_max_km=settings.location_max_km,
            text_match_threshold=settings.text_match_threshold,
            match_precision=settings.match_precision,
            place_encoder=place_encoder,
        )

    @property
    def index(self) -> PhotoIndex:
        return self._index

    @property
    def place_tower(self) -> str | None:
        """The place tower photo answers fuse now (its model's name), or None: CLIP answers alone."""
        if self.place_encoder is None or self._index.place_view() is None:
            return None
        return self.place_encoder.model_name

    def swap(self, index: PhotoIndex) -> None:
        encoder = self.image_encoder
        index.check_models(encoder.model_name, self.text_encoder.model_name, self.text_encoder.dim, encoder.fingerprint)
        _ = index.sight_locator  # built here (a build thread), not on the event loop at the first live location
        with self._swap_lock:
            self._index = index
        log.info("index swapped: %d photos from %s", len(index), index.location)

    def rebuild(
        self,
        data_dir: Path,
        artifacts_dir: Path,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> BuildReport:
        """Incremental build with the encoder already in memory, then swap the result in.
        On any error, or when `cancel` is set, the index in use is untouched (build_index publishes atomically)."""
        report = build_index(
            data_dir,
            artifacts_dir,
            self.image_encoder,
            text_model=self.text_encoder.model_name,
            text_encoder=self.text_encoder,
            progress=progress,
            cancel=cancel,
            place_encoder=self.place_encoder,  # kept (and brought up to date) when this process runs it
        )
        if Path(report.location).resolve() != self._index.location.resolve():
            self.swap(PhotoIndex.load(artifacts_dir))
        return report

    def recognize(
        self, image: bytes | Image.Image, near: PhotoLocation | None = None, exif: bool = True
    ) -> Recognition:
        """Top landmarks and categories for a photo (bytes are decoded; ImageDecodeError if they can't be).

        near: where the photo was taken, if known (a shared location). exif: read the file's GPS tags,
        which then win over `near` (they say where this very photo was taken)."""
        if isinstance(image, bytes):
            if exif and (gps := read_gps(image)) is not None:
                near = PhotoLocation(gps[0], gps[1], "exif")
            image = decode_image(image, draft=True)
        index = self._index
        place = index.place_view() if self.place_encoder is not None else None
        if place is None or self._tower_pool is None or self.place_encoder is None:
            return self.recognize_vector(self.image_encoder.encode_images([image])[0], index, near)
        # Decoded once, seen by both towers: the place tower starts first, on another thread.
        pending = self._tower_pool.submit(self.place_encoder.encode_images, [image])
        vector = self.image_encoder.encode_images([image])
        clip = rank(index, vector[0], self.params, near, self.location_max_km)
        if clip_is_certain(index.calibration, clip):  # CLIP is sure already: the tower's answer is not waited for
            pending.cancel()  # and not run at all when it is still queued (a busy process)
            result = self._answered(clip, vector[0], index, index.calibration)
            return replace(result, towers=(index.towers[0],), tower_answers={index.towers[0]: _tower_answer(clip)})
        return self.recognize_fused(vector[0], pending.result()[0], index, place, near, clip)

    def recognize_fused(
        self,
        vector: np.ndarray,
        place_vector: np.ndarray,
        index: PhotoIndex,
        place: PhotoIndex,
        near: PhotoLocation | None = None,
        clip: Recognition | None = None,
    ) -> Recognition:
        """Both towers' votes (each with the location prior), fused, with the fused calibration's P(right)."""
        clip = clip or rank(index, vector, self.params, near, self.location_max_km)
        alone = rank(place, place_vector, self.params, near, self.location_max_km)
        calibration = index.fused_calibration
        fused = fuse(clip, alone, self.params, chosen_weight(calibration))
        result = self._answered(fused, vector, index, calibration, fused_evidence(clip, alone))
        answers = {name: _tower_answer(r) for name, r in zip(index.towers, (clip, alone), strict=True)}
        return replace(result, towers=tuple(index.towers), tower_answers=answers) if result.landmarks else result

    def recognize_vector(
        self, vector: np.ndarray, index: PhotoIndex | None = None, near: PhotoLocation | None = None
    ) -> Recognition:
        index = index or self._index
        result = rank(index, vector, self.params, near, self.location_max_km)
        return self._answered(result, vector, index, index.calibration)

    def _answered(
        self,
        result: Recognition,
        vector: np.ndarray,
        index: PhotoIndex,
        calibration: Calibration | None,
        features: np.ndarray | None = None,
    ) -> Recognition:
        """A ranked answer made final: P(right) from `calibration` (on `features`, else the vote's own
        evidence) and the match it decides, then the top landmark's photo closest to the query."""
        if not result.landmarks:
            return result
        if calibration is not None:
            confidence = (
                calibration.confidence(result)
                if features is None
                else float(calibration.probabilities(features[None, :])[0])
            )
            precision = self.params.match_precision
            match = confidence >= precision if precision is not None else result.match
            result = replace(result, confidence=confidence, match=match)
        row = index.best_row(vector, result.landmarks[0].xid)
        if row is None:
            return result
        return replace(result, matched_photo=str(index.photo_path(row, self.data_dir)), photo_credit=index.credit(row))

    def landmark_photos(self, xid: str, limit: int = ALBUM_SIZE) -> list[PhotoHit]:
        """Up to `limit` photos of one landmark, the most typical first (closest to its photos' mean)."""
        index = self._index
        rows = index.photos_of(xid)
        if not rows:
            return []
        vectors = np.stack([index.vector(r) for r in rows])
        centre = vectors.mean(axis=0)
        landmark = index.landmarks[xid]
        return [
            PhotoHit(
                index.photo_path(rows[i], self.data_dir),
                xid,
                landmark.name,
                landmark.city,
                float(vectors[i] @ centre),
                index.credit(rows[i]),
            )
            for i in most_typical_first(vectors)[:limit]
        ]

    def nearby(self, lat: float, lon: float, limit: int = NEARBY_LIMIT) -> list[Nearby]:
        """The catalog's landmarks nearest to a point (with or without photos), nearest first."""
        return self._index.locator.nearest(GeoPoint(lat, lon), limit)

    def sights_near(self, lat: float, lon: float, radius_m: float, limit: int = WALK_STOPS) -> list[Nearby]:
        """Up to `limit` landmarks with photos within `radius_m` of a point, nearest first (no model: a
        live location asks this on every update)."""
        found = self._index.sight_locator.nearest(GeoPoint(lat, lon), limit)
        return [place for place in found if place.distance_m <= radius_m]

    def walk(self, lat: float, lon: float, stops: int = WALK_STOPS, radius_m: float = WALK_RADIUS_M) -> Loop | None:
        """The shortest loop from a point through up to `stops` nearby sights and back (None: none near)."""
        sights = self.sights_near(lat, lon, radius_m, stops)
        return shortest_loop(GeoPoint(lat, lon), [place.landmark for place in sights])

    def text_threshold(self) -> float:
        """The similarity a text query's best photo needs to be a match (below: "nothing matches well")."""
        return text_threshold(self._index.text_calibration, self.text_match_threshold, self.match_precision)

    def search(self, text: str, limit: int = ALBUM_SIZE) -> list[PhotoHit]:
        """The photos that best match a text query in any language the text model knows."""
        query = " ".join(text.split())
        if not query:
            raise EmptyQueryError("the query is empty")
        index = self._index
        vector = self.text_encoder.encode_texts([query])
        similarities, rows = index.search(vector, limit)
        hits = []
        for similarity, row in zip(similarities[0], rows[0], strict=True):
            if row < 0:
                continue
            record = index.photos[row]
            landmark = index.landmarks[record.xid]
            hits.append(
                PhotoHit(
                    index.photo_path(row, self.data_dir),
                    record.xid,
                    landmark.name,
                    landmark.city,
                    float(similarity),
                    index.credit(row),
                )
            )
        return hits
