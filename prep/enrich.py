"""`prep enrich`: landmark names, descriptions and Wikipedia links per language, fetched once.

Sources, per landmark and language, first found wins:
  name         Wikidata label → (the dataset's own name for Russian) → transliteration, marked as such
  description  the published Description column (Russian) → Wikipedia's page summary (first 1–3
               sentences of its `extract`) → Wikidata's short description
  link         the Wikipedia article from Wikidata's sitelinks ({lang}wiki)
City names: the labels of the city's Wikidata item, found from its landmarks' P131 walked up or by
searching its name (prep.city_names); a language without a label reads a transliteration.
What a run could not fetch keeps what enrichment.json already had; an enrichment.json that cannot be read
is refused before any request (never read as empty and written over).

A polite client (prep.wikimedia): a descriptive User-Agent with a contact (ENRICH_CONTACT), ids in batches of 50,
`maxlag=5` on Wikidata, retries with backoff on 429 and 5xx (honouring Retry-After), and an on-disk
cache of every definitive answer, so a rerun resumes where the last one stopped. A request that
fails for good leaves its fields empty and is listed in the report: the run never fails because the
network did.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from core import (
    SOURCE_LANG,
    Dataset,
    Enrichment,
    Landmark,
    LandmarkInfo,
    ProgressFn,
    clean_text,
    language,
    no_progress,
)
from prep.city_names import CityQuery, centre_of, city_labels, located_in
from prep.wikimedia import (
    WIKIDATA_BATCH,
    FetchError,
    HttpCache,
    WikiClient,
    WikimediaSettings,
    nested_text,
    statement_values,
)

# Sentences kept from a Wikipedia summary.
DESCRIPTION_SENTENCES = 3
# Characters of a street address kept (a real one is far shorter; a vandalised one is not shown whole).
ADDRESS_LIMIT = 200
QID = re.compile(r"^Q\d+$")
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[A-ZА-ЯЁ0-9«\"(])")


def first_sentences(text: str, count: int = DESCRIPTION_SENTENCES) -> str:
    sentences = SENTENCE_END.split(" ".join(text.split()))
    return " ".join(sentences[:count]).strip()


@dataclass
class EnrichReport:
    landmarks: int = 0
    langs: tuple[str, ...] = ()
    names: Counter = field(default_factory=Counter)  # (lang, source) → count
    descriptions: Counter = field(default_factory=Counter)
    links: Counter = field(default_factory=Counter)  # lang → count
    cities: dict[str, int] = field(default_factory=dict)  # city → languages named by its Wikidata item
    failures: list[str] = field(default_factory=list)
    abandoned_hosts: list[str] = field(default_factory=list)  # stopped answering in time: not asked again
    path: Path | None = None

    def to_dict(self) -> dict:
        def nested(counter: Counter) -> dict:
            out: dict = {}
            for (lang, source), n in sorted(counter.items()):
                out.setdefault(lang, {})[source] = n
            return out

        return {
            "landmarks": self.landmarks,
            "langs": list(self.langs),
            "names": nested(self.names),
            "descriptions": nested(self.descriptions),
            "wikipedia_links": dict(sorted(self.links.items())),
            "cities": self.cities,
            "failures": self.failures,
            "abandoned_hosts": self.abandoned_hosts,
            "enrichment": str(self.path) if self.path else None,
        }

    def summary(self) -> str:
        lines = [f"Enriched {self.landmarks} landmarks in {', '.join(self.langs)} → {self.path}"]
        for lang in self.langs:
            names = ", ".join(f"{n} {src}" for (lg, src), n in sorted(self.names.items()) if lg == lang) or "none"
            texts = ", ".join(f"{n} {src}" for (lg, src), n in sorted(self.descriptions.items()) if lg == lang)
            lines.append(f"  {lang}: names: {names}; descriptions: {texts or 'none'}; links: {self.links[lang]}")
        for city, named in sorted(self.cities.items()):
            source = f"named in {named} languages by Wikidata" if named else "no Wikidata item found: transliterated"
            lines.append(f"  city {city}: {source}")
        if self.failures:
            lines.append(f"  {len(self.failures)} requests failed (what the last run found is kept; run again):")
            lines += [f"    {failure}" for failure in self.failures[:10]]
        lines += [f"  stopped asking {host}: it left requests in a row unanswered" for host in self.abandoned_hosts]
        return "\n".join(lines)


def enrich(
    data_dir: Path, langs: tuple[str, ...], settings: WikimediaSettings, progress: ProgressFn = no_progress
) -> EnrichReport:
    dataset = Dataset(data_dir)
    landmarks = dataset.landmarks()
    previous = dataset.enrichment()  # an unreadable file is refused here, before any request
    report = EnrichReport(landmarks=len(landmarks), langs=langs)
    cache = HttpCache(dataset.enrich_cache_path)
    client = WikiClient(settings, cache)
    try:
        entities = _fetch_entities(client, landmarks.values(), langs, report, progress)
        found = _city_names(client, landmarks.values(), entities, langs, report)  # Wikidata's requests first
        infos = {
            lm.xid: _landmark_info(client, lm, entities.get(lm.wikidata, {}), langs, report)
            for lm in _reporting(landmarks.values(), progress, "enrich")
        }
    finally:
        report.abandoned_hosts = sorted(client.abandoned)
        client.close()
        cache.close()
    # Wikidata's names win; what it did not give this time stays as the last run found it.
    city_names = previous.cities | {city: previous.cities.get(city, {}) | names for city, names in found.items()}
    # What this run could not fetch (a failed request, a host given up) keeps what the last run found.
    fetched = {xid: info.over(previous.landmarks.get(xid)) for xid, info in infos.items()}
    kept = previous.landmarks | {xid: info for xid, info in fetched.items() if info != LandmarkInfo()}
    dataset.write_enrichment(Enrichment(kept, dict(sorted(city_names.items()))))
    report.path = dataset.enrichment_path
    return report


def _city_names(
    client: WikiClient, landmarks: Iterable[Landmark], entities: dict[str, dict], langs: tuple[str, ...], report
) -> dict[str, dict[str, str]]:
    """Each city's names from its Wikidata item (prep.city_names), found from its landmarks' P131."""
    by_city: dict[str, list[Landmark]] = {}
    for landmark in landmarks:
        if landmark.city:
            by_city.setdefault(landmark.city, []).append(landmark)
    found = {}
    for city, members in sorted(by_city.items()):
        units = located_in(entities.get(lm.wikidata, {}) for lm in members)
        query = CityQuery(city, units, centre_of((lm.lat, lm.lon) for lm in members))
        found[city] = city_labels(client, query, langs, report.failures)
        report.cities[city] = len(found[city])
    return found


def _reporting(items: Iterable[Landmark], progress: ProgressFn, stage: str):
    """The items, calling progress(stage, done, total) after each."""
    items = list(items)
    for done, item in enumerate(items, 1):
        yield item
        progress(stage, done, len(items))


def _fetch_entities(
    client: WikiClient, landmarks: Iterable[Landmark], langs: tuple[str, ...], report: EnrichReport, progress
) -> dict[str, dict]:
    ids = sorted({lm.wikidata for lm in landmarks if QID.match(lm.wikidata)})
    entities: dict[str, dict] = {}
    for start in range(0, len(ids), WIKIDATA_BATCH):
        batch = ids[start : start + WIKIDATA_BATCH]
        try:
            entities.update(client.entities(batch, langs, claims=True))  # claims: P131, for the city
        except FetchError as exc:
            report.failures.append(f"wikidata {batch[0]}…{batch[-1]}: {exc}")
        progress("wikidata", min(start + WIKIDATA_BATCH, len(ids)), len(ids))
    return {qid: entity for qid, entity in entities.items() if "missing" not in entity}


def _landmark_info(
    client: WikiClient, landmark: Landmark, entity: dict, langs: tuple[str, ...], report: EnrichReport
) -> LandmarkInfo:
    """Names, descriptions and links in each language as Wikidata and Wikipedia have them. A language
    without a label gets nothing here: cards fall back along its chain (core.languages) at read time."""
    known = wikidata_info(entity, langs)
    descriptions = {}
    for lang in langs:
        report.names[
            (lang, "wikidata" if lang in known.names else "dataset" if lang == SOURCE_LANG else "fallback")
        ] += 1
        if lang in known.wikipedia:
            report.links[lang] += 1
        title = nested_text(entity.get("sitelinks"), f"{language(lang).wikipedia}wiki", "title")
        description, source = _description(client, landmark, entity, lang, title, report)
        if description:
            descriptions[lang] = description
            report.descriptions[(lang, source)] += 1
    return LandmarkInfo(known.names, frozenset(), descriptions, known.wikipedia, known.address)


def street_address(entity: dict) -> str:
    """The item's street address (P6375, monolingual text): the Russian one first, as locals write it."""
    values = [v for v in statement_values(entity, "P6375") if isinstance(v, dict) and isinstance(v.get("text"), str)]
    values.sort(key=lambda v: v.get("language") != SOURCE_LANG)
    return clean_text(values[0]["text"]).strip()[:ADDRESS_LIMIT] if values else ""


def wikidata_info(entity: dict, langs: tuple[str, ...]) -> LandmarkInfo:
    """What a Wikidata item says by itself, per language: its label, short description and Wikipedia
    article (no request: `prep harvest` fills cards with it at once, `prep enrich` adds summaries)."""
    names: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    links: dict[str, str] = {}
    for lang in langs:
        entry = language(lang)
        for key, found in (("labels", names), ("descriptions", descriptions)):
            texts = entity.get(key)
            if value := next((v for code in entry.label_codes if (v := nested_text(texts, code, "value"))), ""):
                found[lang] = value
        title = nested_text(entity.get("sitelinks"), f"{entry.wikipedia}wiki", "title")
        if title:
            links[lang] = f"https://{entry.wikipedia}.wikipedia.org/wiki/{quote(title.replace(' ', '_'))}"
    return LandmarkInfo(names, frozenset(), descriptions, links, street_address(entity))


def _description(
    client: WikiClient, landmark: Landmark, entity: dict, lang: str, title: str, report: EnrichReport
) -> tuple[str, str]:
    if lang == SOURCE_LANG and landmark.description:
        return landmark.description, "dataset"
    entry = language(lang)
    if title:
        try:
            if extract := first_sentences(clean_text(client.summary(entry.wikipedia, title))):
                return extract, "wikipedia"
        except FetchError as exc:
            report.failures.append(f"wikipedia {entry.wikipedia}:{title}: {exc}")
    descriptions = entity.get("descriptions")
    short = next((value for code in entry.label_codes if (value := nested_text(descriptions, code, "value"))), "")
    return (short, "wikidata") if short else ("", "")
