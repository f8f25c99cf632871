"""`prep harvest`: any city's sights and their photos from Wikidata and Wikimedia Commons, credited.

    area (circle or box) → Wikidata geosearch, tiled (≤ 10 km, ≤ 500 a call; a full tile is split)
      → wbgetentities (P31 class, P625 coordinates, P18 image, P373 Commons category, labels,
        descriptions, sitelinks) → sights by class (prep/harvest_classes.csv; one level of P279)
      → places.csv rows (the Q-id as xid), enrichment (names, short descriptions, links at once)
      → Commons: the P18 file and the category's files (imageinfo with extmetadata, `continue`
        followed), photos only → attribution.csv first, then the 640-px thumbnails, in parallel.

Polite (prep.wikimedia: User-Agent with ENRICH_CONTACT, maxlag, retries honouring Retry-After, an
on-disk cache of the API answers, errors never cached) and resumable: the landmarks and the credits
are written before any photo, a photo already on disk is never fetched again, and a photo an admin
removed (removed.csv) is never brought back. A landmark already in the dataset with the same
Wikidata id (an NTO row) keeps its xid and folder: no duplicates.
"""

from __future__ import annotations

import csv
import hashlib
import html
import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from core import (
    CODES,
    MIN_PHOTO_SIDE,
    SOURCE_LANG,
    Dataset,
    Enrichment,
    GeoPoint,
    GuideError,
    ImageDecodeError,
    Landmark,
    PhotoCredit,
    ProgressFn,
    clean_text,
    decode_image,
    is_safe_name,
    licence_problem,
    no_progress,
    transliterate,
    trusted_link,
)
from prep.city_names import CityQuery, centre_of, city_labels, located_in
from prep.enrich import wikidata_info
from prep.wikimedia import (
    WIKIDATA_BATCH,
    FetchError,
    HttpCache,
    WikiClient,
    WikimediaSettings,
    item_ids,
    json_object,
    nested_text,
    statement_values,
)

CLASSES_FILE = Path(__file__).with_name("harvest_classes.csv")
# Wikidata's geosearch: radius at most 10 km, at most 500 results a call.
GEOSEARCH_MAX_RADIUS_M = 10_000
GEOSEARCH_LIMIT = 500
# Tiles are squares inside that circle (side × √2 / 2 ≤ 10 km); a tile that returns the limit is split
# in four down to this side.
TILE_SIDE_KM = 14.0
MIN_TILE_SIDE_KM = 0.5
KM_PER_DEGREE = 111.32
# The largest area one run takes (a city and its suburbs; a region is several runs).
MAX_RADIUS_KM = 100.0
MAX_BOX_DEGREES = 2.0
DEFAULT_PER_LANDMARK = 30
# Commons: files per category page (its API's limit is 50 for clients), pages per category at most,
# titles per imageinfo call, and the thumbnail width that is stored.
CATEGORY_PAGE = 50
MAX_CATEGORY_PAGES = 10
TITLES_PER_CALL = 50
THUMB_WIDTH = 640
# Photos only: the MIME types Commons serves raster thumbnails of (TIFF's thumbnail is a JPEG).
PHOTO_MIMES = frozenset({"image/jpeg", "image/png", "image/webp", "image/tiff"})
THUMB_SUFFIXES = {".jpg": ".jpg", ".jpeg": ".jpg", ".png": ".png", ".webp": ".webp"}
# Thumbnails fetched at once: few enough to spare upload.wikimedia.org, enough to hide latency.
DOWNLOAD_WORKERS = 4
QID = re.compile(r"^Q\d+$")
# Characters of a sight's name or a photo's author kept (Wikidata labels are far shorter; a credit is a line).
MAX_NAME_CHARS = 200
MAX_AUTHOR_CHARS = 200
TAG = re.compile(r"<[^>]+>")


class HarvestError(GuideError, ValueError):
    """The area or the options cannot be harvested as given; the message says why."""


# --- the area ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Area:
    """A circle (centre, radius) or a box (south, west, north, east), in degrees and km."""

    south: float
    west: float
    north: float
    east: float
    centre: GeoPoint | None = None
    radius_km: float = 0.0

    @classmethod
    def around(cls, text: str, radius_km: float) -> Area:
        centre = GeoPoint.parse_pair(text)
        if not 0 < radius_km <= MAX_RADIUS_KM:
            raise HarvestError(f"--radius-km must be above 0 and at most {MAX_RADIUS_KM:g}, got {radius_km:g}")
        dlat, dlon = _degrees(radius_km, centre.lat)
        return cls(centre.lat - dlat, centre.lon - dlon, centre.lat + dlat, centre.lon + dlon, centre, radius_km)

    @classmethod
    def box(cls, text: str) -> Area:
        parts = text.split(",")
        if len(parts) != 4:
            raise HarvestError(f"--bbox is SOUTH,WEST,NORTH,EAST in degrees, got {text!r}")
        south_west, north_east = GeoPoint.parse(parts[0], parts[1]), GeoPoint.parse(parts[2], parts[3])
        if south_west.lat >= north_east.lat or south_west.lon >= north_east.lon:
            raise HarvestError("--bbox: SOUTH must be below NORTH and WEST left of EAST")
        if north_east.lat - south_west.lat > MAX_BOX_DEGREES or north_east.lon - south_west.lon > MAX_BOX_DEGREES:
            raise HarvestError(f"--bbox spans more than {MAX_BOX_DEGREES:g}°: harvest a region in several runs")
        return cls(south_west.lat, south_west.lon, north_east.lat, north_east.lon)

    def contains(self, lat: float, lon: float) -> bool:
        if self.centre is not None:
            dy = (lat - self.centre.lat) * KM_PER_DEGREE
            dx = (lon - self.centre.lon) * KM_PER_DEGREE * math.cos(math.radians(self.centre.lat))
            return math.hypot(dx, dy) <= self.radius_km
        return self.south <= lat <= self.north and self.west <= lon <= self.east

    def describe(self) -> str:
        if self.centre is not None:
            return f"{self.radius_km:g} km around {self.centre.lat:.5f},{self.centre.lon:.5f}"
        return f"box {self.south:.5f},{self.west:.5f},{self.north:.5f},{self.east:.5f}"

    def tiles(self) -> list[Tile]:
        """Squares of side ≤ TILE_SIDE_KM covering the area's bounding box."""
        middle = (self.south + self.north) / 2
        height_km = (self.north - self.south) * KM_PER_DEGREE
        width_km = (self.east - self.west) * KM_PER_DEGREE * math.cos(math.radians(middle))
        rows, columns = max(1, math.ceil(height_km / TILE_SIDE_KM)), max(1, math.ceil(width_km / TILE_SIDE_KM))
        side = max(height_km / rows, width_km / columns)
        dlat, dlon = (self.north - self.south) / rows, (self.east - self.west) / columns
        return [
            Tile(self.south + (r + 0.5) * dlat, self.west + (c + 0.5) * dlon, side)
            for r in range(rows)
            for c in range(columns)
        ]


@dataclass(frozen=True)
class Tile:
    lat: float
    lon: float
    side_km: float

    @property
    def radius_m(self) -> int:
        return min(GEOSEARCH_MAX_RADIUS_M, math.ceil(self.side_km * math.sqrt(2) / 2 * 1000))

    def quarters(self) -> list[Tile]:
        dlat, dlon = _degrees(self.side_km / 4, self.lat)
        half = self.side_km / 2
        return [Tile(self.lat + sy * dlat, self.lon + sx * dlon, half) for sy in (-1, 1) for sx in (-1, 1)]


def _degrees(km: float, lat: float) -> tuple[float, float]:
    return km / KM_PER_DEGREE, km / (KM_PER_DEGREE * max(0.01, math.cos(math.radians(lat))))


# --- which items are sights ----------------------------------------------------------------------
@dataclass(frozen=True)
class SightClasses:
    """Wikidata classes a tourist calls a sight (with the dataset kinds they bring), and classes that
    are known not to be (the reason a skip is reported with). Order matters: the first listed class
    an item has decides its kinds, so specific classes come before general ones."""

    keep: dict[str, tuple[str, tuple[str, ...]]]  # qid → (label, kinds), in file order
    drop: dict[str, str]  # qid → label

    @classmethod
    def read(cls, paths: Iterable[Path]) -> SightClasses:
        keep: dict[str, tuple[str, tuple[str, ...]]] = {}
        drop: dict[str, str] = {}
        for path in paths:
            for row in csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()):
                qid, label = (row.get("qid") or "").strip(), (row.get("label") or "").strip()
                kinds = tuple(k.strip() for k in (row.get("kinds") or "").split(",") if k.strip())
                if not QID.match(qid):
                    raise HarvestError(f"{path}: {qid!r} is not a Wikidata class id (Q…)")
                if kinds:
                    keep[qid] = (label, kinds)
                    drop.pop(qid, None)
                else:
                    drop[qid] = label
                    keep.pop(qid, None)
        return cls(keep, drop)

    def classify(self, classes: list[str], parents: dict[str, list[str]], labels: dict[str, str]) -> Verdict:
        """Kinds for an item of `classes` (its P31 values), looking one P279 level up for the others."""
        lineage = [(c, c) for c in classes] + [(c, p) for c in classes for p in parents.get(c, [])]
        for qid, (label, kinds) in self.keep.items():
            if any(ancestor == qid for _, ancestor in lineage):
                return Verdict(kinds=(*kinds, "interesting_places"), label=label)
        for _, ancestor in lineage:
            if ancestor in self.drop:
                return Verdict(reason=f"not a sight: {self.drop[ancestor]}")
        if not classes:
            return Verdict(reason="no class (P31)")
        return Verdict(reason=f"other class: {labels.get(classes[0]) or classes[0]}")


@dataclass(frozen=True)
class Verdict:
    kinds: tuple[str, ...] = ()
    label: str = ""  # the class that made it a sight
    reason: str = ""  # why it is not one


# --- Wikidata items ------------------------------------------------------------------------------
def coordinates(entity: dict) -> tuple[float, float] | None:
    """The item's first usable P625 (finite, on the Earth: a latitude of 1000 or NaN is no place)."""
    for value in statement_values(entity, "P625"):
        if isinstance(value, dict):
            lat, lon = value.get("latitude"), value.get("longitude")
            if isinstance(lat, int | float) and isinstance(lon, int | float) and on_earth(float(lat), float(lon)):
                return float(lat), float(lon)
    return None


def on_earth(lat: float, lon: float) -> bool:
    return math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180


def first_string(entity: dict, prop: str) -> str:
    return next((v for v in statement_values(entity, prop) if isinstance(v, str) and v.strip()), "")


@dataclass(frozen=True)
class Sight:
    qid: str
    entity: dict
    lat: float
    lon: float
    verdict: Verdict
    image: str  # P18: a Commons file name ("" if none)
    category: str  # P373: a Commons category name ("" if none)

    def name(self) -> str:
        """The dataset's `name` is the source language's (Russian), else English, else any label."""
        labels = json_object(self.entity.get("labels"))
        for code in (SOURCE_LANG, "en", *sorted(labels)):
            if value := nested_text(labels, code, "value"):
                return " ".join(value.split())[:MAX_NAME_CHARS]
        return ""


# --- Commons files -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommonsPhoto:
    title: str  # "File:…"
    thumb_url: str
    credit: PhotoCredit

    def file_name(self) -> str:
        suffix = THUMB_SUFFIXES.get(Path(urlparse(self.thumb_url).path).suffix.lower(), ".jpg")
        return f"commons-{hashlib.sha1(self.title.encode()).hexdigest()[:16]}{suffix}"


def plain_text(markup: str) -> str:
    """Commons' extmetadata is HTML (an author is often a link): its text, entities decoded, without bidi
    controls or control characters (core.clean_text)."""
    return " ".join(clean_text(html.unescape(TAG.sub(" ", markup))).split())


def commons_photo(page: dict, settings: WikimediaSettings) -> tuple[CommonsPhoto | None, str]:
    """The page's file as a photo to store, or None and why not: a photo, large enough, under a free licence
    (core.licence_problem), with a thumbnail on a host files may come from; links only to trusted pages."""
    info = next((i for i in page.get("imageinfo", []) if isinstance(i, dict)), None)
    if info is None:
        return None, "missing on Commons"
    mime = str(info.get("mime", ""))
    if mime not in PHOTO_MIMES:
        return None, f"not a photo ({mime or 'unknown type'})"
    if min(int(info.get("width") or 0), int(info.get("height") or 0)) < MIN_PHOTO_SIDE:
        return None, "too small"
    meta = json_object(info.get("extmetadata"))

    def field_text(name: str) -> str:
        return plain_text(str(json_object(meta.get(name)).get("value", "")))

    license_ = field_text("LicenseShortName")
    if problem := licence_problem(license_):
        return None, f"{problem} ({license_[:40]})" if license_ else problem
    thumb = str(info.get("thumburl") or "")
    if not thumb:
        return None, "no thumbnail"
    if not settings.file_url_allowed(thumb):
        return None, "thumbnail on another host"
    author = field_text("Artist") or field_text("Credit") or "unknown author"
    source = trusted_link(str(info.get("descriptionurl") or ""))
    credit = PhotoCredit(author[:MAX_AUTHOR_CHARS], license_, trusted_link(field_text("LicenseUrl")), source)
    return CommonsPhoto(clean_text(str(page.get("title", ""))), thumb, credit), ""


# --- the report ----------------------------------------------------------------------------------
@dataclass
class HarvestReport:
    city: str
    city_code: str
    area: str
    tiles: int = 0
    found: int = 0  # items geosearch returned inside the area
    kept: Counter = field(default_factory=Counter)  # class label → sights
    skipped: Counter = field(default_factory=Counter)  # reason → items
    new_landmarks: int = 0
    merged_landmarks: int = 0  # already in the dataset under the same Wikidata id
    photos_new: int = 0
    photos_present: int = 0  # on disk from an earlier run: not fetched again
    photos_skipped: Counter = field(default_factory=Counter)  # reason → Commons files
    failures: list[str] = field(default_factory=list)
    abandoned_hosts: list[str] = field(default_factory=list)  # stopped answering in time: not asked again
    seconds: float = 0.0
    data_dir: str = ""

    def to_dict(self) -> dict:
        return {
            "city": self.city,
            "city_code": self.city_code,
            "area": self.area,
            "tiles": self.tiles,
            "found": self.found,
            "sights": sum(self.kept.values()),
            "by_class": dict(self.kept.most_common()),
            "skipped": dict(self.skipped.most_common()),
            "new_landmarks": self.new_landmarks,
            "merged_landmarks": self.merged_landmarks,
            "photos_new": self.photos_new,
            "photos_present": self.photos_present,
            "photos_skipped": dict(self.photos_skipped.most_common()),
            "failures": self.failures,
            "abandoned_hosts": self.abandoned_hosts,
            "seconds": round(self.seconds, 1),
            "data_dir": self.data_dir,
        }

    def summary(self) -> str:
        lines = [
            f"Harvested {self.city} ({self.area}, {self.tiles} geosearch tiles) into {self.data_dir}",
            f"  {self.found} Wikidata items found, {sum(self.kept.values())} sights "
            f"({self.new_landmarks} new, {self.merged_landmarks} already in the dataset)",
        ]
        lines += [f"    {n:>5}  {label}" for label, n in self.kept.most_common()]
        if self.skipped:
            lines.append("  skipped:")
            lines += [f"    {n:>5}  {reason}" for reason, n in self.skipped.most_common(12)]
        lines.append(f"  photos: {self.photos_new} downloaded, {self.photos_present} already there (not fetched)")
        lines += [f"    {n:>5}  skipped: {reason}" for reason, n in self.photos_skipped.most_common()]
        if self.failures:
            lines.append(f"  {len(self.failures)} requests failed (run again to retry):")
            lines += [f"    {failure}" for failure in self.failures[:10]]
        lines += [f"  stopped asking {host}: it left several requests in a row unanswered; what it gave is kept"
                  for host in self.abandoned_hosts]
        lines.append(
            f"  credits in attribution.csv ({self.seconds:.0f} s); next: prep clean, review, apply, build"
        )
        return "\n".join(lines)


# --- the run -------------------------------------------------------------------------------------
def city_code(city: str) -> str:
    """The city's folder name: its transliteration, letters and digits only ("Казань" → "Kazan")."""
    code = re.sub(r"[^A-Za-z0-9_-]", "", transliterate(city).replace(" ", "_"))
    if not code or not is_safe_name(code):
        raise HarvestError(f"--city {city!r} gives no usable folder name: add --city-code (letters, digits)")
    return code[:64]


def harvest(
    data_dir: Path,
    area: Area,
    city: str,
    code: str,
    per_landmark: int,
    classes: SightClasses,
    settings: WikimediaSettings,
    progress: ProgressFn = no_progress,
) -> HarvestReport:
    started = time.monotonic()
    city = clean_text(city).strip()
    dataset = Dataset(data_dir)
    # The files this run adds to are read first: one that cannot be read is refused before any request.
    dataset.enrichment(), dataset.attribution(), dataset.removed_paths()
    if dataset.places_path.is_file():
        dataset.landmarks()
    data_dir.mkdir(parents=True, exist_ok=True)
    report = HarvestReport(city, code, area.describe(), data_dir=str(data_dir))
    cache = HttpCache(dataset.harvest_cache_path)
    client = WikiClient(settings, cache)
    try:
        points = _geosearch(client, area, report, progress)
        entities = _entities(client, sorted(points), CODES, report, progress)
        sights = _sights(client, entities, points, classes, report)
        centre = area.centre or centre_of([(area.south, area.west), (area.north, area.east)])
        query = CityQuery(city, located_in(sight.entity for sight in sights), centre)
        names = city_labels(client, query, CODES, report.failures)
        xids = _merge_landmarks(dataset, sights, city, code, names, report)
        photos = _photos(client, sights, per_landmark, report, progress)
        _download(client, dataset, xids, photos, report, progress)
    finally:
        report.abandoned_hosts = sorted(client.abandoned)
        client.close()
        cache.close()
    report.seconds = time.monotonic() - started
    return report


def _geosearch(client: WikiClient, area: Area, report: HarvestReport, progress: ProgressFn) -> dict[str, GeoPoint]:
    points: dict[str, GeoPoint] = {}
    queue = area.tiles()
    done = 0
    while queue:
        tile = queue.pop(0)
        params = {
            "action": "query",
            "list": "geosearch",
            "gscoord": f"{tile.lat:.6f}|{tile.lon:.6f}",
            "gsradius": str(tile.radius_m),
            "gslimit": str(GEOSEARCH_LIMIT),
            "gsnamespace": "0",
        }
        try:
            hits = json_object(client.action(client.settings.wikidata_api_url, params).get("query")).get("geosearch")
        except FetchError as exc:
            report.failures.append(f"geosearch {tile.lat:.4f},{tile.lon:.4f}: {exc}")
            hits = []
        hits = [h for h in hits or [] if isinstance(h, dict)]
        report.tiles += 1
        if len(hits) >= GEOSEARCH_LIMIT and tile.side_km / 2 >= MIN_TILE_SIDE_KM:
            queue += tile.quarters()  # a full answer may have left some out: ask for each quarter
        for hit in hits:
            qid, lat, lon = str(hit.get("title", "")), hit.get("lat"), hit.get("lon")
            if QID.match(qid) and isinstance(lat, int | float) and isinstance(lon, int | float):
                if on_earth(float(lat), float(lon)) and area.contains(float(lat), float(lon)):
                    points[qid] = GeoPoint(float(lat), float(lon))
        done += 1
        progress("geosearch", done, done + len(queue))
    report.found = len(points)
    return points


def _entities(
    client: WikiClient, ids: list[str], langs: tuple[str, ...], report: HarvestReport, progress: ProgressFn
) -> dict[str, dict]:
    entities: dict[str, dict] = {}
    for start in range(0, len(ids), WIKIDATA_BATCH):
        batch = ids[start : start + WIKIDATA_BATCH]
        try:
            entities.update(client.entities(batch, langs, claims=True))
        except FetchError as exc:
            report.failures.append(f"wikidata {batch[0]}…{batch[-1]}: {exc}")
        progress("wikidata", min(start + WIKIDATA_BATCH, len(ids)), len(ids))
    return {qid: entity for qid, entity in entities.items() if "missing" not in entity}


def _sights(
    client: WikiClient,
    entities: dict[str, dict],
    points: dict[str, GeoPoint],
    classes: SightClasses,
    report: HarvestReport,
) -> list[Sight]:
    of = {qid: item_ids(statement_values(entity, "P31")) for qid, entity in entities.items()}
    unknown = sorted({c for cs in of.values() for c in cs} - set(classes.keep) - set(classes.drop))
    # One level up (P279) for classes the list does not name: "Orthodox church building" is a church.
    class_entities = _entities(client, unknown, ("en",), report, no_progress)
    parents = {qid: item_ids(statement_values(entity, "P279")) for qid, entity in class_entities.items()}
    labels = {
        qid: str(json_object(json_object(e.get("labels")).get("en")).get("value", ""))
        for qid, e in class_entities.items()
    }
    sights = []
    for qid in sorted(entities):
        entity = entities[qid]
        verdict = classes.classify(of[qid], parents, labels)
        image, category = first_string(entity, "P18"), first_string(entity, "P373")
        own = coordinates(entity)
        place = own or (points[qid].lat, points[qid].lon)
        sight = Sight(qid, entity, place[0], place[1], verdict, image, category)
        # Statements that give no place on the Earth (lat 1000, NaN) make the whole item suspect.
        reason = "bad coordinates (P625)" if own is None and statement_values(entity, "P625") else ""
        reason = reason or verdict.reason or ("no photo on Commons (P18, P373)" if not image and not category else "")
        reason = reason or ("no name" if not sight.name() else "")
        if reason:
            report.skipped[reason] += 1
            continue
        report.kept[verdict.label] += 1
        sights.append(sight)
    return sights


def _merge_landmarks(
    dataset: Dataset, sights: list[Sight], city: str, code: str, city_names: dict[str, str], report: HarvestReport
) -> dict[str, tuple[str, str]]:
    """Add the sights to places.csv and enrichment.json (written before any photo), with the city's names
    from Wikidata; return each sight's (city folder, xid) — an existing landmark's own when the dataset
    has it already."""
    existing = dataset.landmarks() if dataset.places_path.is_file() else {}
    by_wikidata = {lm.wikidata: lm for lm in existing.values() if lm.wikidata}
    enrichment = dataset.enrichment()
    landmarks, infos, where = dict(existing), dict(enrichment.landmarks), {}
    for sight in sights:
        known = existing.get(sight.qid) or by_wikidata.get(sight.qid)
        if known is not None:
            report.merged_landmarks += 1
            where[sight.qid] = (known.city_code or code, known.xid)
            continue
        report.new_landmarks += 1
        landmarks[sight.qid] = Landmark(
            sight.qid, sight.name(), city, sight.verdict.kinds, sight.lat, sight.lon, sight.qid, city_code=code
        )
        infos.setdefault(sight.qid, wikidata_info(sight.entity, CODES))
        where[sight.qid] = (code, sight.qid)
    cities = dict(enrichment.cities)
    cities[city] = cities.get(city, {}) | city_names  # none found: cards transliterate at read time
    dataset.write_landmarks(landmarks.values())
    dataset.write_enrichment(Enrichment(infos, cities))
    return where


def _photos(
    client: WikiClient, sights: list[Sight], per_landmark: int, report: HarvestReport, progress: ProgressFn
) -> dict[str, list[CommonsPhoto]]:
    """Up to `per_landmark` photos per sight: its P18 image first, then its category's files."""
    images = _imageinfo_by_title(client, [f"File:{s.image}" for s in sights if s.image], report)
    photos: dict[str, list[CommonsPhoto]] = {}
    for done, sight in enumerate(sights, 1):
        chosen: dict[str, CommonsPhoto] = {}
        if sight.image:
            page = images.get(_title(f"File:{sight.image}"))
            photo, why = commons_photo(page, client.settings) if page else (None, "missing on Commons")
            if photo is None:
                report.photos_skipped[why] += 1
            else:
                chosen[photo.title] = photo
        if sight.category and len(chosen) < per_landmark:
            for photo in _category_photos(client, sight.category, per_landmark - len(chosen), set(chosen), report):
                chosen[photo.title] = photo
        photos[sight.qid] = list(chosen.values())[:per_landmark]
        progress("commons", done, len(sights))
    return photos


def _imageinfo_by_title(client: WikiClient, titles: list[str], report: HarvestReport) -> dict[str, dict]:
    pages: dict[str, dict] = {}
    unique = sorted(set(titles))
    for start in range(0, len(unique), TITLES_PER_CALL):
        batch = unique[start : start + TITLES_PER_CALL]
        params = {"action": "query", "titles": "|".join(batch)} | _IMAGEINFO
        try:
            answer = client.action(client.settings.commons_api_url, params)
        except FetchError as exc:
            report.failures.append(f"commons {batch[0]}…: {exc}")
            continue
        query = json_object(answer.get("query"))
        for page in json_object(query.get("pages")).values():
            if isinstance(page, dict) and "missing" not in page:
                pages[_title(str(page.get("title", "")))] = page
    return pages


_IMAGEINFO = {"prop": "imageinfo", "iiprop": "url|mime|size|extmetadata", "iiurlwidth": str(THUMB_WIDTH)}


def _title(title: str) -> str:
    """A file title as MediaWiki normalises it: spaces for underscores, first letter upper case."""
    name = " ".join(title.replace("_", " ").split())
    prefix, _, rest = name.partition(":")
    return f"{prefix}:{rest[:1].upper()}{rest[1:]}" if rest else name


def _category_photos(
    client: WikiClient, category: str, wanted: int, seen: set[str], report: HarvestReport
) -> Iterator[CommonsPhoto]:
    params = {
        "action": "query",
        "generator": "categorymembers",
        "gcmtitle": f"Category:{category}",
        "gcmtype": "file",
        "gcmlimit": str(CATEGORY_PAGE),
    } | _IMAGEINFO
    given = 0
    for _ in range(MAX_CATEGORY_PAGES):
        try:
            answer = client.action(client.settings.commons_api_url, params)
        except FetchError as exc:
            report.failures.append(f"commons Category:{category}: {exc}")
            return
        pages = json_object(json_object(answer.get("query")).get("pages")).values()
        for page in (p for p in pages if isinstance(p, dict)):  # the category's order (its sort keys)
            photo, why = commons_photo(page, client.settings)
            if photo is None:
                report.photos_skipped[why] += 1
            elif photo.title not in seen:
                seen.add(photo.title)
                yield photo
                given += 1
                if given >= wanted:
                    return
        follow = json_object(answer.get("continue"))
        if not follow:
            return
        params = params | {k: str(v) for k, v in follow.items()}


def _download(
    client: WikiClient,
    dataset: Dataset,
    where: dict[str, tuple[str, str]],
    photos: dict[str, list[CommonsPhoto]],
    report: HarvestReport,
    progress: ProgressFn,
) -> None:
    """Credits first (a photo is never on disk uncredited), then the thumbnails not yet there."""
    removed = dataset.removed_paths()
    planned: list[tuple[str, CommonsPhoto]] = []
    credits: dict[str, PhotoCredit] = {}
    for qid, chosen in photos.items():
        folder, xid = where[qid]
        for photo in chosen:
            relative = Dataset.photo_relative(folder, xid, photo.file_name())
            if relative in removed:
                report.photos_skipped["removed earlier by review"] += 1
            elif dataset.path(relative).is_file():
                report.photos_present += 1
                credits[relative] = photo.credit
            else:
                planned.append((relative, photo))
                credits[relative] = photo.credit
    dataset.record_attribution(credits)
    _fetch_all(client, dataset, planned, report, progress)


def _fetch_all(
    client: WikiClient,
    dataset: Dataset,
    planned: list[tuple[str, CommonsPhoto]],
    report: HarvestReport,
    progress: ProgressFn,
) -> None:
    def fetch(relative: str, photo: CommonsPhoto) -> str:
        data = client.get_bytes(photo.thumb_url)
        decode_image(data, draft=True)  # an error page or a cut file never becomes a photo
        dataset.write_photo(relative, data)
        return relative

    pool = ThreadPoolExecutor(max_workers=DOWNLOAD_WORKERS, thread_name_prefix="harvest")
    pending: dict[Future, tuple[str, CommonsPhoto]] = {}
    queue = list(planned)
    done = 0
    try:
        while queue or pending:
            while queue and len(pending) < 2 * DOWNLOAD_WORKERS:  # bounded: a Ctrl-C leaves little in flight
                relative, photo = queue.pop(0)
                pending[pool.submit(fetch, relative, photo)] = (relative, photo)
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                relative, photo = pending.pop(future)
                try:
                    future.result()
                    report.photos_new += 1
                except (FetchError, ImageDecodeError) as exc:
                    report.photos_skipped["download failed (run again to retry)"] += 1
                    report.failures.append(f"{photo.title}: {exc}")
                done += 1
                progress("download", done, len(planned))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
