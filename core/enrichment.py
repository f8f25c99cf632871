"""Landmark names, descriptions and Wikipedia links per language: the one owner of `enrichment.json`.

`prep enrich` writes it into the folder dataset (it survives re-ingest); `prep build` ships it inside
each build, so the bot never calls the network per query. `describe()` gives what a card shows in
one language, falling back to the dataset (its names and the Description column are Russian) and to
transliteration (`iuliia`, the Wikipedia scheme: "Нижний Новгород" → "Nizhny Novgorod"), marked so.

    {"schema": 1,
     "landmarks": {"W123": {"names": {"en": "…"}, "transliterated": ["en"],
                            "descriptions": {"ru": "…", "en": "…"}, "wikipedia": {"ru": "https://…"}}},
     "cities": {"Екатеринбург": {"en": "Yekaterinburg"}}}
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from core.catalog import Landmark, clean_text
from core.files import UnreadableFileError
from core.languages import CODES, name_chain

log = logging.getLogger(__name__)

ENRICHMENT_FILE = "enrichment.json"
SCHEMA = 1
LANGS = CODES  # every language of the registry (core.languages)
SOURCE_LANG = "ru"  # the language of the published dataset's names and descriptions
CYRILLIC = re.compile("[\u0400-\u04ff]")


@dataclass(frozen=True)
class LandmarkInfo:
    names: dict[str, str] = field(default_factory=dict)
    transliterated: frozenset[str] = frozenset()  # languages whose name is a transliteration
    descriptions: dict[str, str] = field(default_factory=dict)
    wikipedia: dict[str, str] = field(default_factory=dict)  # language → article URL
    # The street address as Wikidata has it (P6375, the local language's form: what a taxi driver reads).
    address: str = ""

    def to_dict(self) -> dict:
        data = {
            "names": self.names,
            "transliterated": sorted(self.transliterated),
            "descriptions": self.descriptions,
            "wikipedia": self.wikipedia,
        }
        return data | ({"address": self.address} if self.address else {})

    def over(self, older: LandmarkInfo | None) -> LandmarkInfo:
        """This info, with what only `older` has kept (a request that failed this time loses nothing)."""
        if older is None:
            return self
        return LandmarkInfo(
            older.names | self.names,
            self.transliterated | (older.transliterated - set(self.names)),
            older.descriptions | self.descriptions,
            older.wikipedia | self.wikipedia,
            self.address or older.address,
        )

    @classmethod
    def from_dict(cls, raw: dict) -> LandmarkInfo:
        def texts(key: str) -> dict[str, str]:
            value = raw.get(key) or {}
            return {str(k): clean_text(v) for k, v in value.items() if isinstance(v, str) and clean_text(v).strip()}

        address = raw.get("address")
        return cls(
            texts("names"),
            frozenset(raw.get("transliterated") or ()),
            texts("descriptions"),
            texts("wikipedia"),
            clean_text(address).strip() if isinstance(address, str) else "",
        )


@dataclass(frozen=True)
class Enrichment:
    landmarks: dict[str, LandmarkInfo] = field(default_factory=dict)
    cities: dict[str, dict[str, str]] = field(default_factory=dict)  # city as in the dataset → language → name

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "landmarks": {xid: info.to_dict() for xid, info in sorted(self.landmarks.items())},
            "cities": self.cities,
        }

    def write(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Enrichment:
        """The file's content (none if missing). UnreadableFileError if it cannot be read — broken JSON, a
        newer schema, wrong shapes: the dataset's copy is then refused, never read as empty and overwritten."""
        if not path.is_file():
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise UnreadableFileError(f"{path} is not readable JSON ({_short(exc)}): {FIX}") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("schema"), int):
            raise UnreadableFileError(f"{path} is not an enrichment file (no schema number): {FIX}")
        if raw["schema"] > SCHEMA:
            raise UnreadableFileError(
                f"{path} was written by a newer version of the guide (schema {raw['schema']}, this one reads "
                f"{SCHEMA}): upgrade the guide, or restore a backup made with this version"
            )
        try:
            landmarks = {str(xid): LandmarkInfo.from_dict(info) for xid, info in raw.get("landmarks", {}).items()}
            cities = {
                clean_text(str(c)): {str(k): clean_text(str(v)) for k, v in names.items()}
                for c, names in raw.get("cities", {}).items()
            }
        except (ValueError, TypeError, AttributeError) as exc:
            raise UnreadableFileError(f"{path} has an entry of the wrong shape ({_short(exc)}): {FIX}") from None
        return cls(landmarks, cities)

    @classmethod
    def read(cls, path: Path) -> Enrichment:
        """A build's copy, for serving: unreadable gives an empty enrichment with a warning, never an error
        (cards then fall back to the dataset's names and to transliteration)."""
        try:
            return cls.load(path)
        except UnreadableFileError as exc:
            log.warning("%s; cards fall back to the dataset's names", exc)
            return cls()


# What to do about an unreadable enrichment.json (nothing has written over it).
FIX = "fix it by hand, or move it away and run `python -m prep enrich` to fetch it anew; it was left as it is"


def _short(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}"[:160]


@dataclass(frozen=True)
class LandmarkText:
    """A landmark as a card shows it in one language."""

    name: str
    original: str  # the dataset's name, shown beside `name` when it differs
    city: str
    description: str
    wikipedia: str  # in this language, else along its fallback chain, else any, else ""
    transliterated: bool
    # The language the name is in when it is not the reader's (taken along the fallback chain), else "".
    fallback: str = ""
    # The language the description is in (the reader's, or one along the fallback chain); "" without one.
    description_lang: str = ""
    # The language to say the name in: where it was found, Russian for a transliterated one (its original
    # is said instead), else the reader's (a French name in the dataset reads as it is).
    spoken_name_lang: str = ""

    @property
    def spoken_name(self) -> str:
        """The name as a voice should say it: a transliteration is said from its original."""
        return self.original if self.transliterated else self.name


def transliterate(text: str) -> str:
    import iuliia

    return iuliia.WIKIPEDIA.translate(text)


def city_name(city: str, enrichment: Enrichment, lang: str) -> str:
    if lang == SOURCE_LANG or not city:
        return city
    names = enrichment.cities.get(city, {})
    return next((names[code] for code in name_chain(lang) if names.get(code)), "") or transliterate(city)


def describe(landmark: Landmark, enrichment: Enrichment, lang: str) -> LandmarkText:
    """What a card shows in `lang`: each text in the reader's language, else along its fallback chain
    (core.languages: usually English), else the dataset's own (Russian) name transliterated — marked."""
    info = enrichment.landmarks.get(landmark.xid, LandmarkInfo())
    chain = name_chain(lang) if lang in CODES else (lang,)
    # The dataset's own name and description are the source language's, unless Wikidata has better.
    names = {SOURCE_LANG: landmark.name} | info.names
    name, found_in = _first(names, chain, skip=info.transliterated)
    # Only Cyrillic is transliterated (and marked so): a French or Polish name in the dataset reads as it is.
    transliterated = not name and CYRILLIC.search(landmark.name) is not None
    if not name:
        name = transliterate(landmark.name) if transliterated else landmark.name
    description, description_lang = _first({SOURCE_LANG: landmark.description} | info.descriptions, chain)
    link, _ = _first(info.wikipedia, chain)
    return LandmarkText(
        name=name,
        original=landmark.name,
        city=city_name(landmark.city, enrichment, lang),
        description=description,
        wikipedia=link or next(iter(info.wikipedia.values()), ""),
        transliterated=transliterated,
        fallback=found_in if found_in and found_in != lang else "",
        description_lang=description_lang,
        spoken_name_lang=found_in or (SOURCE_LANG if transliterated else lang),
    )


def _first(texts: dict[str, str], chain: tuple[str, ...], skip: frozenset[str] = frozenset()) -> tuple[str, str]:
    """The first text along `chain` (and the language it is in); languages in `skip` do not count."""
    return next(((texts[code], code) for code in chain if texts.get(code) and code not in skip), ("", ""))
