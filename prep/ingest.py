"""Published NTO CSVs (`{CITY}_places.csv` + `{CITY}_images.csv`, base64 photos) → the folder dataset."""

from __future__ import annotations

import base64
import binascii
import codecs
import csv
import io
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from core import (
    CatalogError,
    Dataset,
    GuideError,
    ImageDecodeError,
    Landmark,
    clean_text,
    decode_image,
    is_safe_name,
    parse_coordinate,
    photo_extension,
    split_kinds,
)

PLACES_SUFFIX = "_places.csv"
IMAGES_SUFFIX = "_images.csv"
NAME_COLUMNS = ("name", "place", "title")
IMAGE_COLUMNS = ("img", "image", "photo", "base64")
# The dataset holds photos a few hundred pixels wide: a field this long is base64 of ~75 MB, not a photo.
MAX_FIELD_CHARS = 100_000_000


@dataclass(frozen=True)
class Skipped:
    source: str
    row: int
    name: str
    reason: str


@dataclass
class CityReport:
    city: str
    landmarks: int = 0
    written: int = 0
    unchanged: int = 0
    skipped: Counter = field(default_factory=Counter)


@dataclass
class IngestReport:
    cities: list[CityReport] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    report_path: Path | None = None

    @property
    def written(self) -> int:
        return sum(c.written for c in self.cities)

    @property
    def unchanged(self) -> int:
        return sum(c.unchanged for c in self.cities)

    def to_dict(self) -> dict:
        return {
            "cities": [
                {
                    "city": c.city,
                    "landmarks": c.landmarks,
                    "written": c.written,
                    "unchanged": c.unchanged,
                    "skipped": dict(c.skipped),
                }
                for c in self.cities
            ],
            "written": self.written,
            "unchanged": self.unchanged,
            "skipped": len(self.skipped),
            "report": str(self.report_path) if self.report_path else None,
        }

    def summary(self) -> str:
        lines = []
        for c in self.cities:
            reasons = ", ".join(f"{n} {r}" for r, n in c.skipped.most_common())
            lines.append(
                f"{c.city}: {c.landmarks} landmarks, {c.written} photos written, {c.unchanged} already there, "
                f"{sum(c.skipped.values())} skipped" + (f" ({reasons})" if reasons else "")
            )
        lines.append(
            f"Total: {self.written} written, {self.unchanged} unchanged, {len(self.skipped)} skipped"
            + (f" — reasons in {self.report_path}" if self.skipped and self.report_path else "")
        )
        return "\n".join(lines)


class IngestError(GuideError, ValueError):
    """The input folder cannot be ingested at all (the message says why)."""


# Encodings tried, line by line, after UTF-8: the published files are UTF-8, but a file re-saved by a
# spreadsheet on Russian Windows is cp1251. UTF-16 is recognised by its byte-order mark.
FALLBACK_ENCODING = "cp1251"
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@contextmanager
def text_lines(path: Path) -> Iterator[Iterator[str]]:
    """The lines of a CSV file as text, whatever its encoding: UTF-16 with a BOM as a whole; otherwise
    each line as UTF-8 (BOM dropped), or cp1251 where it is not valid UTF-8, so one foreign line never
    stops the run."""
    with path.open("rb") as raw:
        head = raw.read(2)
        raw.seek(0)
        if head in UTF16_BOMS:
            with io.TextIOWrapper(raw, encoding="utf-16", newline="") as text:
                yield iter(text)
            return
        yield _decoded_lines(raw)


def _decoded_lines(raw) -> Iterator[str]:
    for number, line in enumerate(raw):
        if number == 0 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError:
            yield line.decode(FALLBACK_ENCODING, errors="replace")


def decode_base64_photo(raw: str) -> bytes:
    """Base64 in any of the circulating wrappings: `b'...'` literals, data: URLs, whitespace, no padding."""
    text = raw.strip()
    if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        text = text[2:-1]
    if text.startswith("data:"):
        text = text.partition(",")[2]
    # Whitespace, and the escaped line breaks a bytes literal may carry.
    text = re.sub(r"\s+|\\n|\\r", "", text)
    text = text.replace("-", "+").replace("_", "/")  # URL-safe alphabet
    if not text:
        raise ValueError("empty image field")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None


def _column(fieldnames: Sequence[str], candidates: tuple[str, ...]) -> str | None:
    lowered = {name.strip().lower(): name for name in fieldnames}
    return next((lowered[c] for c in candidates if c in lowered), None)


def _name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def read_raw_places(path: Path, city_code: str, skipped: list[Skipped]) -> dict[str, Landmark]:
    """Landmarks by name key; rows with the same name in a city merged (first XID and place, union of kinds)."""
    by_name: dict[str, Landmark] = {}
    with text_lines(path) as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        keys = ("xid", "name", "kind", "city", "osm", "lat", "lon", "description")
        columns = {key: _column(fields, (key,)) for key in keys}
        wikidata = _column(fields, ("wikidata",))
        new_wikidata = _column(fields, ("newwikidata",))
        if columns["xid"] is None or columns["name"] is None:
            raise IngestError(f"{path.name}: no XID/Name columns (found: {', '.join(fields)})")

        def get(row: dict, column: str | None) -> str:
            return clean_text(row.get(column) or "").strip() if column else ""

        for number, row in enumerate(reader):
            xid, name = get(row, columns["xid"]), " ".join(get(row, columns["name"]).split())
            if not name or not xid:
                skipped.append(Skipped(path.name, number, name, "no XID or Name"))
                continue
            if not is_safe_name(xid):
                skipped.append(Skipped(path.name, number, name, f"unsafe XID {xid!r}"))
                continue
            landmark = Landmark(
                xid=xid,
                name=name,
                city=get(row, columns["city"]) or city_code,
                city_code=city_code,
                kinds=split_kinds(get(row, columns["kind"])),
                lat=parse_coordinate(get(row, columns["lat"])),
                lon=parse_coordinate(get(row, columns["lon"])),
                wikidata=get(row, wikidata) or get(row, new_wikidata),
                osm=get(row, columns["osm"]),
                description=" ".join(get(row, columns["description"]).split()),
            )
            key = _name_key(name)
            first = by_name.get(key)
            if first is None:
                by_name[key] = landmark
            else:
                merged_kinds = tuple(dict.fromkeys(first.kinds + landmark.kinds))
                by_name[key] = replace(first, kinds=merged_kinds)
    return by_name


def _image_rows(path: Path) -> Iterator[tuple[int, str, str]]:
    csv.field_size_limit(min(sys.maxsize, MAX_FIELD_CHARS))
    with text_lines(path) as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        name_col, image_col = _column(fields, NAME_COLUMNS), _column(fields, IMAGE_COLUMNS)
        if name_col is None or image_col is None:
            raise IngestError(f"{path.name}: expected name and img columns, found: {', '.join(fields)}")
        number = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # an absurdly long or broken record: skip it, keep reading
                yield number, "", f"\0{exc}"
                number += 1
                continue
            yield number, (row.get(name_col) or ""), (row.get(image_col) or "")
            number += 1


def ingest(raw_dir: Path, data_dir: Path, *, show_progress: bool = True) -> IngestReport:
    places_files = sorted(raw_dir.glob(f"*{PLACES_SUFFIX}"))
    if not places_files:
        raise IngestError(f"no *{PLACES_SUFFIX} files in {raw_dir}")
    data_dir.mkdir(parents=True, exist_ok=True)
    dataset = Dataset(data_dir)
    removed = dataset.removed_paths()
    report = IngestReport()
    landmarks_by_city: dict[str, list[Landmark]] = {}

    for places_file in places_files:
        city_code = places_file.name[: -len(PLACES_SUFFIX)]
        if not is_safe_name(city_code):
            report.skipped.append(Skipped(places_file.name, -1, "", f"unsafe city code {city_code!r}"))
            continue
        city = CityReport(city_code)
        report.cities.append(city)
        place_skips: list[Skipped] = []
        by_name = read_raw_places(places_file, city_code, place_skips)
        report.skipped += place_skips
        landmarks_by_city[city_code] = list(by_name.values())
        city.landmarks = len(by_name)

        images_file = raw_dir / f"{city_code}{IMAGES_SUFFIX}"
        if not images_file.is_file():
            report.skipped.append(Skipped(images_file.name, -1, "", "images file missing"))
            continue
        rows = _image_rows(images_file)
        for number, name, encoded in _with_progress(rows, city_code, show_progress):
            try:
                written = _ingest_photo(encoded, by_name.get(_name_key(name)), city_code, number, dataset, removed)
            except RowSkipped as exc:
                report.skipped.append(Skipped(images_file.name, number, name.strip(), str(exc)))
                city.skipped[exc.kind] += 1
                continue
            if written:
                city.written += 1
            else:
                city.unchanged += 1

    _merge_places(dataset, landmarks_by_city)
    report.report_path = dataset.write_ingest_report((s.source, s.row, s.name, s.reason) for s in report.skipped)
    return report


def _with_progress(rows, city_code: str, enabled: bool):
    """Rows of a city's images file, with a bar on a terminal (rows are not counted ahead: files are large)."""
    from prep.progress import LINE_INTERVAL

    if not enabled:
        yield from rows
        return
    if sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(rows, desc=city_code, unit=" photos")
        return
    last = time.monotonic()
    for done, row in enumerate(rows, 1):
        yield row
        if time.monotonic() - last >= LINE_INTERVAL:
            last = time.monotonic()
            print(f"{city_code}: {done} rows", file=sys.stderr, flush=True)


class RowSkipped(ValueError):
    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


def _ingest_photo(
    encoded: str, landmark: Landmark | None, city_code: str, number: int, dataset: Dataset, removed: set[str]
) -> bool:
    """Write one photo; True if written, False if already there; RowSkipped with the reason otherwise."""
    if encoded.startswith("\0"):
        raise RowSkipped("unreadable CSV record", encoded[1:])
    if landmark is None:
        raise RowSkipped("unknown place")
    try:
        data = decode_base64_photo(encoded)
        decode_image(data, draft=True)
    except (ValueError, ImageDecodeError) as exc:
        raise RowSkipped("undecodable", str(exc)) from None
    extension = photo_extension(data)
    relative = dataset.photo_relative(city_code, landmark.xid, f"{city_code}_{number}{extension}")
    if relative in removed:
        raise RowSkipped("removed by review", relative)
    return dataset.write_photo(relative, data)


def _merge_places(dataset: Dataset, landmarks_by_city: dict[str, list[Landmark]]) -> None:
    """Replace the ingested cities' rows; rows of cities not in this run are kept."""
    kept: list[Landmark] = []
    try:
        kept = [lm for lm in dataset.landmarks().values() if lm.city_code not in landmarks_by_city]
    except CatalogError:
        pass  # no places.csv yet
    fresh = [lm for city in landmarks_by_city.values() for lm in city]
    seen: set[str] = set()
    merged = []
    for landmark in kept + fresh:
        if landmark.xid not in seen:
            seen.add(landmark.xid)
            merged.append(landmark)
    dataset.write_landmarks(merged)
