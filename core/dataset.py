"""The folder dataset, known only to the `Dataset` type:

    DATA_DIR/places.csv                          one row per landmark (columns: core.catalog)
    DATA_DIR/images/{CITY}/{XID}/{file}          the photos
    DATA_DIR/removed.csv                         photos deleted by `prep apply`: ingest never brings them back
    DATA_DIR/ingest_report.csv                   rows the last `prep ingest` skipped, with the reason
    DATA_DIR/kept.csv                            photos an admin kept in review: never flagged again for those
                                                 reasons, never deleted by `prep apply`
    DATA_DIR/contributions.csv                   tourists' photos an admin approved into the dataset
    DATA_DIR/enrichment.json                     names, descriptions, links per language (core.enrichment)
    DATA_DIR/attribution.csv                     author, licence and source of each photo that needs crediting
                                                 (harvested from Wikimedia Commons); the build ships its rows
    DATA_DIR/.enrich_cache.sqlite                `prep enrich`'s HTTP cache, so a rerun resumes
    DATA_DIR/.harvest_cache.sqlite               `prep harvest`'s HTTP cache (Wikidata and Commons answers)

Every prep step and the index build reach these files through a `Dataset`, never by name.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.catalog import Landmark, clean_text, is_safe_name, read_places, write_places
from core.enrichment import ENRICHMENT_FILE, Enrichment
from core.errors import GuideError
from core.files import UnreadableFileError, file_lock, read_table, write_atomically

PLACES_FILE = "places.csv"
IMAGES_DIR = "images"
REMOVED_FILE = "removed.csv"
INGEST_REPORT_FILE = "ingest_report.csv"
KEPT_FILE = "kept.csv"
CONTRIBUTIONS_FILE = "contributions.csv"
CONTRIBUTION_COLUMNS = ("path", "sha256", "contribution", "added_at")
KEPT_COLUMNS = ("sha256", "path", "reasons", "kept_at")
ENRICH_CACHE_FILE = ".enrich_cache.sqlite"
HARVEST_CACHE_FILE = ".harvest_cache.sqlite"
ATTRIBUTION_FILE = "attribution.csv"
ATTRIBUTION_COLUMNS = ("path", "author", "license", "license_url", "source_url")
REMOVED_COLUMNS = ("path", "sha256", "reason", "removed_at")
INGEST_REPORT_COLUMNS = ("source", "row", "name", "reason")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif"})


# A cell starting with one of these is run as a formula by spreadsheets (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """Text for a report CSV that people open in a spreadsheet: formula-like text gets a leading `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class UnsafePathError(GuideError, ValueError):
    """A path or name from an editable file would lead outside the dataset; nothing was touched."""


@dataclass(frozen=True)
class DatasetPhoto:
    path: str  # relative to DATA_DIR, with forward slashes
    city_code: str
    xid: str


@dataclass(frozen=True)
class PhotoCredit:
    """Who made a photo and under which licence: what a card or album shows beside it."""

    author: str  # plain text
    license: str  # short name: "CC BY-SA 4.0", "CC0", "Public domain"
    license_url: str  # empty for the public domain
    source_url: str  # the file's page (Wikimedia Commons)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def read_attribution(path: Path) -> dict[str, PhotoCredit]:
    """Credits by photo path (relative to DATA_DIR); a missing file is none. Read as a spreadsheet may have
    saved it (core.files.read_table); a row without a licence is kept (a rewrite keeps it as it was) but
    credits nothing on a card. A header without the path and licence columns, or a row with more cells
    than the header or without a path, is UnreadableFileError: rows not understood are never dropped."""
    if not path.is_file():
        return {}
    credits = {}
    reader = read_table(path, ("path", "license"))
    for row in reader:
        relative = clean_text(row.get("path") or "").strip()
        if None in row or (not relative and any((v or "").strip() for v in row.values())):
            raise UnreadableFileError(
                f"{path}, line {reader.line_num}: a row without a path or with more cells than the header; "
                "fix that line — nothing was written over the file"
            )
        if relative:
            values = (clean_text(row.get(column) or "").strip() for column in ATTRIBUTION_COLUMNS[1:])
            credits[relative] = PhotoCredit(*values)
    return credits


def write_attribution(path: Path, credits: dict[str, PhotoCredit]) -> None:
    """All credits at once, atomically, sorted by path (the dataset's file and each build's copy)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(ATTRIBUTION_COLUMNS)
    for relative, credit in sorted(credits.items()):
        writer.writerow([relative, credit.author, credit.license, credit.license_url, credit.source_url])
    write_atomically(path, out.getvalue().encode("utf-8"))


@dataclass(frozen=True)
class KeptPhoto:
    sha256: str  # decisions follow the content, wherever the file is moved
    path: str
    reasons: frozenset[str]
    kept_at: str = ""


@dataclass(frozen=True)
class RemovedPhoto:
    path: str
    sha256: str
    reason: str


class Dataset:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r})"

    @property
    def places_path(self) -> Path:
        return self.root / PLACES_FILE

    @property
    def images_dir(self) -> Path:
        return self.root / IMAGES_DIR

    @property
    def ingest_report_path(self) -> Path:
        return self.root / INGEST_REPORT_FILE

    @property
    def removed_path(self) -> Path:
        return self.root / REMOVED_FILE

    @property
    def enrichment_path(self) -> Path:
        return self.root / ENRICHMENT_FILE

    @property
    def enrich_cache_path(self) -> Path:
        return self.root / ENRICH_CACHE_FILE

    @property
    def harvest_cache_path(self) -> Path:
        return self.root / HARVEST_CACHE_FILE

    @property
    def attribution_path(self) -> Path:
        return self.root / ATTRIBUTION_FILE

    def attribution(self) -> dict[str, PhotoCredit]:
        return read_attribution(self.attribution_path)

    def record_attribution(self, credits: dict[str, PhotoCredit]) -> None:
        """Add or update credits (before their photos are written: a photo never exists uncredited)."""
        if not credits:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.attribution_path):
            write_attribution(self.attribution_path, self.attribution() | credits)

    def enrichment(self) -> Enrichment:
        """The dataset's enrichment (UnreadableFileError if the file is damaged: never read as empty)."""
        return Enrichment.load(self.enrichment_path)

    def write_enrichment(self, enrichment: Enrichment) -> None:
        enrichment.write(self.enrichment_path)

    def has_photos(self) -> bool:
        return self.images_dir.is_dir()

    # --- landmarks -------------------------------------------------------------------------------
    def landmarks(self) -> dict[str, Landmark]:
        """Landmarks by xid (CatalogError if places.csv is missing or malformed)."""
        return read_places(self.places_path)

    def write_landmarks(self, landmarks: Iterable[Landmark]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_places(self.places_path, landmarks)

    # --- photos ----------------------------------------------------------------------------------
    def photos(self) -> list[DatasetPhoto]:
        """Every photo of the dataset, sorted by path; hidden files, links and unknown suffixes ignored."""
        photos: list[DatasetPhoto] = []
        if not self.images_dir.is_dir():
            return photos
        for file in self.images_dir.glob("*/*/*"):
            if file.name.startswith(".") or file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if file.is_symlink() or not file.is_file():
                continue
            city_code, xid = file.parent.parent.name, file.parent.name
            photos.append(DatasetPhoto(file.relative_to(self.root).as_posix(), city_code, xid))
        photos.sort(key=lambda p: p.path)
        return photos

    def path(self, relative: str) -> Path:
        """A dataset file from a relative path, often read from a file someone can edit (report.csv, kept.csv,
        the store): no absolute path, `..`, empty part, backslash or NUL leads out of DATA_DIR."""
        parts = relative.split("/")
        if any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts):
            raise UnsafePathError(f"{relative!r} is not a path inside the dataset")
        return self.root.joinpath(*parts)

    @staticmethod
    def photo_relative(city_code: str, xid: str, file_name: str) -> str:
        for value in (city_code, xid, file_name):
            if not is_safe_name(value):
                raise UnsafePathError(f"{value!r} cannot be a folder or file name in the dataset")
        return f"{IMAGES_DIR}/{city_code}/{xid}/{file_name}"

    def write_photo(self, relative: str, data: bytes) -> bool:
        """Write atomically; True if written, False if the same bytes were already there."""
        target = self.path(relative)
        if target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        return True

    # --- review decisions ------------------------------------------------------------------------
    def removed_paths(self) -> set[str]:
        if not self.removed_path.is_file():
            return set()
        # A header no one can read refuses (UnreadableFileError): read as none, removed photos would come back.
        return {path for row in read_table(self.removed_path, ("path",)) if (path := (row.get("path") or "").strip())}

    def record_removed(self, photo: RemovedPhoto) -> None:
        """Append one deletion (called right after the file is deleted, so a crash loses no record)."""
        new = not self.removed_path.is_file()
        with self.removed_path.open("a", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(REMOVED_COLUMNS)
            writer.writerow([photo.path, photo.sha256, photo.reason, datetime.now(UTC).isoformat(timespec="seconds")])

    @property
    def kept_path(self) -> Path:
        return self.root / KEPT_FILE

    def kept(self) -> dict[str, KeptPhoto]:
        """Review decisions to keep a photo, by content hash. Read tolerantly (a spreadsheet's BOM, Windows
        encodings, `;` separators, short rows, extra columns); a row without a hash cannot protect anything
        and is skipped. A header without `sha256` refuses (UnreadableFileError): read as no decisions,
        `prep apply` would delete what the admin kept."""
        if not self.kept_path.is_file():
            return {}
        rows = read_table(self.kept_path, ("sha256",))
        kept = {}
        for row in rows:
            sha = (row.get("sha256") or "").strip().lower()
            if len(sha) != 64:
                continue
            reasons = frozenset(filter(None, (row.get("reasons") or "").split(";")))
            kept[sha] = KeptPhoto(sha, (row.get("path") or "").strip(), reasons, row.get("kept_at") or "")
        return kept

    def record_kept(self, photos: Iterable[KeptPhoto]) -> None:
        """Add (or widen: the union of reasons) keep decisions; read-modify-write under a lock, atomically."""
        photos = list(photos)
        if not photos:
            return  # nothing to record: the file is not rewritten (nor created)
        with file_lock(self.kept_path):
            kept = self.kept()
            now = datetime.now(UTC).isoformat(timespec="seconds")
            for photo in photos:
                previous = kept.get(photo.sha256)
                reasons = photo.reasons | (previous.reasons if previous else frozenset())
                kept[photo.sha256] = KeptPhoto(photo.sha256, photo.path, reasons, photo.kept_at or now)
            self._write_kept(kept.values())

    def forget_kept(self, sha256s: Iterable[str]) -> None:
        drop = set(sha256s)
        if not drop:
            return
        with file_lock(self.kept_path):
            kept = self.kept()
            if drop & set(kept):
                self._write_kept(photo for photo in kept.values() if photo.sha256 not in drop)

    def _write_kept(self, photos: Iterable[KeptPhoto]) -> None:
        out = io.StringIO(newline="")
        writer = csv.writer(out)
        writer.writerow(KEPT_COLUMNS)
        for photo in sorted(photos, key=lambda p: p.path):
            writer.writerow([photo.sha256, photo.path, ";".join(sorted(photo.reasons)), photo.kept_at])
        write_atomically(self.kept_path, out.getvalue().encode("utf-8"))

    def remove_contribution(self, relative: str, sha256: str) -> str:
        """Take an approved contribution back out (recorded in removed.csv); returns what was done."""
        target = self.path(relative)
        if target.is_symlink() or not target.is_file():
            return f"{relative} was already gone"
        if sha256 and hashlib.sha256(target.read_bytes()).hexdigest() != sha256:
            return f"{relative} changed since it was approved: left in place"
        target.unlink()
        self.record_removed(RemovedPhoto(relative, sha256, "rejected contribution"))
        return f"{relative} removed from the dataset"

    def add_contribution(self, landmark: Landmark, data: bytes, sha256: str, ext: str, contribution: str) -> str:
        """Write an approved photo under its landmark (never over an existing file) and record it."""
        relative = self.photo_relative(landmark.city_code or "contrib", landmark.xid, f"contrib_{sha256[:16]}{ext}")
        target = self.path(relative)
        if target.exists():
            raise FileExistsError(f"{relative} already exists")
        self.write_photo(relative, data)
        new = not (self.root / CONTRIBUTIONS_FILE).is_file()
        with (self.root / CONTRIBUTIONS_FILE).open("a", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(CONTRIBUTION_COLUMNS)
            writer.writerow([relative, sha256, contribution, datetime.now(UTC).isoformat(timespec="seconds")])
        return relative

    # --- ingest report ---------------------------------------------------------------------------
    def write_ingest_report(self, rows: Iterable[tuple[str, int, str, str]]) -> Path:
        with self.ingest_report_path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(INGEST_REPORT_COLUMNS)
            writer.writerows([spreadsheet_safe(cell) for cell in row] for row in rows)
        return self.ingest_report_path


def list_photos(data_dir: Path) -> list[DatasetPhoto]:
    """Shorthand for `Dataset(data_dir).photos()`."""
    return Dataset(data_dir).photos()
