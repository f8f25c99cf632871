"""Landmarks and their CSV row format (the dataset's places.csv, the index's landmarks.csv)."""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from core.errors import GuideError
from core.files import write_atomically

log = logging.getLogger(__name__)

PLACES_COLUMNS = ("xid", "name", "city", "city_code", "kinds", "lat", "lon", "wikidata", "osm", "description")
KINDS_SEPARATOR = ";"
# Every OpenTripMap object carries this kind, so it says nothing about a photo.
GENERIC_KINDS = frozenset({"interesting_places"})


@dataclass(frozen=True)
class Landmark:
    xid: str
    name: str
    city: str
    kinds: tuple[str, ...] = ()
    lat: float | None = None
    lon: float | None = None
    wikidata: str = ""
    osm: str = ""
    city_code: str = ""
    description: str = ""  # the published Description column (Russian), if any

    @property
    def categories(self) -> tuple[str, ...]:
        """Kinds that are worth showing as categories (the generic ones left out)."""
        return tuple(k for k in self.kinds if k not in GENERIC_KINDS)

    def to_row(self) -> dict[str, str]:
        return {
            "xid": self.xid,
            "name": self.name,
            "city": self.city,
            "city_code": self.city_code,
            "kinds": KINDS_SEPARATOR.join(self.kinds),
            "lat": "" if self.lat is None else repr(self.lat),
            "lon": "" if self.lon is None else repr(self.lon),
            "wikidata": self.wikidata,
            "osm": self.osm,
            "description": self.description,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, str | None]) -> Landmark:
        def get(key: str) -> str:
            return clean_text(row.get(key) or "").strip()

        return cls(
            xid=get("xid"),
            name=get("name"),
            city=get("city"),
            city_code=get("city_code"),
            kinds=split_kinds(get("kinds")),
            lat=parse_coordinate(get("lat")),
            lon=parse_coordinate(get("lon")),
            wikidata=get("wikidata"),
            osm=get("osm"),
            description=get("description"),
        )


# Characters no name, description, author or licence needs, taken out wherever such text enters (ingest,
# enrich, harvest, and every reader of the files people edit): bidi embeddings, overrides, isolates and
# marks, which would reorder the rest of a line inside the bot's right-to-left answers (its own isolation
# of names stays as it is), and the C0 controls and DEL (NUL among them); tabs and line breaks stay.
BIDI_AND_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: str) -> str:
    """Data text without bidi controls and control characters (see BIDI_AND_CONTROLS)."""
    return BIDI_AND_CONTROLS.sub("", value)


def split_kinds(raw: str) -> tuple[str, ...]:
    """Kinds come `;`-joined in our files and `,`-joined in the published ones; order kept, no repeats."""
    parts = raw.replace(",", KINDS_SEPARATOR).split(KINDS_SEPARATOR)
    return tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))


def parse_coordinate(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# City codes and XIDs become folder names: only these characters, so no value can climb out of DATA_DIR.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def is_safe_name(value: str) -> bool:
    """A name that can be a folder or file of the dataset as it is: no separator, no `..`, no odd character."""
    return bool(SAFE_NAME.match(value)) and ".." not in value


class CatalogError(GuideError, ValueError):
    """places.csv is missing or malformed."""


def read_places(path: Path) -> dict[str, Landmark]:
    """Landmarks by xid, in file order."""
    if not path.is_file():
        raise CatalogError(f"no landmark list at {path} (run `python -m prep ingest` first)")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"xid", "name"} - set(reader.fieldnames or ())
        if missing:
            raise CatalogError(f"{path} lacks column(s) {', '.join(sorted(missing))}")
        landmarks = [Landmark.from_row(row) for row in reader]
    # places.csv is a file people edit: an xid or city code that is no safe name could steer a photo's path
    # out of the dataset (an approval writes images/{city_code}/{xid}/…), so such rows are not trusted.
    unsafe = [lm.xid for lm in landmarks if lm.xid and not is_safe_name(lm.xid)]
    if unsafe:
        log.warning("%s: %d row(s) with an unusable xid skipped (e.g. %r)", path, len(unsafe), unsafe[0][:40])
    safe = {lm.xid: lm for lm in landmarks if lm.xid and is_safe_name(lm.xid)}
    return {
        xid: lm if not lm.city_code or is_safe_name(lm.city_code) else replace(lm, city_code="")
        for xid, lm in safe.items()
    }


def write_places(path: Path, landmarks: Iterable[Landmark]) -> None:
    """Write atomically, so a crash never leaves a half-written list."""
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=PLACES_COLUMNS)
    writer.writeheader()
    writer.writerows(lm.to_row() for lm in landmarks)
    write_atomically(path, out.getvalue().encode("utf-8"))
