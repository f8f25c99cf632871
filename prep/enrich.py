"""`prep enrich`: landmark names, descriptions and Wikipedia links per language, fetched once.

Sources, per landmark and language, first found wins:
  name         Wikidata label → (the dataset's own name for Russian) → transliteration, marked as such
  description  the published Description column (Russian) → Wikipedia's page summary (first 1–3
               sentences of its `extract`) → Wikidata's short description
  link         the Wikipedia article from Wikidata's sitelinks ({lang}wiki)
City names: transliterated (the dataset has no city ids to look up).

A polite client: a descriptive User-Agent with a contact (ENRICH_CONTACT), ids in batches of 50,
`maxlag=5` on Wikidata, retries with backoff on 429 and 5xx (honouring Retry-After), and an on-disk
cache of every definitive answer, so a rerun resumes where the last one stopped. A request that
fails for good leaves its fields empty and is listed in the report: the run never fails because the
network did.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from core import (
    SOURCE_LANG,
    Dataset,
    Enrichment,
    EnvReader,
    Landmark,
    LandmarkInfo,
    ProgressFn,
    environment,
    no_progress,
    transliterate,
)

DEFAULT_WIKIDATA_API_URL = "https://www.wikidata.org/w/api.php"
DEFAULT_WIKIPEDIA_API_URL = "https://{lang}.wikipedia.org/api/rest_v1"
# Wikidata's limit of ids per wbgetentities request.
WIKIDATA_BATCH = 50
# Seconds per request, tries per request, and the first backoff (doubled each retry).
REQUEST_TIMEOUT = 15.0
MAX_TRIES = 4
RETRY_BASE_SECONDS = 1.0
MAX_RETRY_AFTER = 60.0
# Sentences kept from a Wikipedia summary.
DESCRIPTION_SENTENCES = 3
QID = re.compile(r"^Q\d+$")
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[A-ZА-ЯЁ0-9«\"(])")


@dataclass(frozen=True)
class EnrichSettings:
    wikidata_api_url: str = DEFAULT_WIKIDATA_API_URL
    wikipedia_api_url: str = DEFAULT_WIKIPEDIA_API_URL
    contact: str = ""

    @classmethod
    def from_env(cls) -> EnrichSettings:
        env = EnvReader(environment())
        return cls(
            wikidata_api_url=env.url("WIKIDATA_API_URL") or DEFAULT_WIKIDATA_API_URL,
            wikipedia_api_url=env.text("WIKIPEDIA_API_URL", DEFAULT_WIKIPEDIA_API_URL),
            contact=env.text("ENRICH_CONTACT", "") or "",
        )

    @property
    def user_agent(self) -> str:
        from core.cli import package_version

        contact = self.contact or "set ENRICH_CONTACT to an e-mail or URL"
        return f"landmark-guide/{package_version()} (offline enrichment of a tourist bot; {contact}) httpx"


class FetchError(Exception):
    """A request failed for good (after retries); the message says what and why."""


class HttpCache:
    """Definitive answers by URL (200s and 404s), so a rerun asks only for what it lacks."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS http (url TEXT PRIMARY KEY, status INTEGER, body TEXT)")

    def get(self, url: str) -> tuple[int, str] | None:
        row = self._db.execute("SELECT status, body FROM http WHERE url = ?", (url,)).fetchone()
        return None if row is None else (row[0], row[1])

    def put(self, url: str, status: int, body: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO http VALUES (?, ?, ?)", (url, status, body))
        self._db.commit()

    def close(self) -> None:
        self._db.close()


class WikiClient:
    def __init__(self, settings: EnrichSettings, cache: HttpCache, sleep=time.sleep) -> None:
        self.settings, self.cache, self._sleep = settings, cache, sleep
        self._http = httpx.Client(headers={"User-Agent": settings.user_agent}, timeout=REQUEST_TIMEOUT, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def get_json(self, url: str) -> dict | None:
        """The JSON at `url` (None for 404), from the cache or with retries; FetchError when it fails for good."""
        if (cached := self.cache.get(url)) is not None:
            return None if cached[0] == 404 else json.loads(cached[1])
        why = ""
        for attempt in range(MAX_TRIES):
            try:
                response = self._http.get(url)
            except httpx.HTTPError as exc:
                why = exc.__class__.__name__
            else:
                if response.status_code in (200, 404):
                    self.cache.put(url, response.status_code, response.text)
                    return None if response.status_code == 404 else _json(response, url)
                why = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    break  # a client error will not heal by retrying
                if attempt + 1 < MAX_TRIES:
                    self._sleep(_retry_after(response, attempt))
                continue
            if attempt + 1 < MAX_TRIES:
                self._sleep(RETRY_BASE_SECONDS * 2**attempt)
        raise FetchError(f"{url}: {why}")

    def entities(self, ids: list[str], langs: tuple[str, ...]) -> dict[str, dict]:
        params = {
            "action": "wbgetentities",
            "ids": "|".join(ids),
            "props": "labels|descriptions|sitelinks",
            "languages": "|".join(langs),
            "sitefilter": "|".join(f"{lang}wiki" for lang in langs),
            "format": "json",
            "maxlag": "5",
        }
        query = "&".join(f"{k}={quote(v, safe='|')}" for k, v in params.items())
        data = self.get_json(f"{self.settings.wikidata_api_url}?{query}") or {}
        if "error" in data:
            raise FetchError(f"wikidata: {data['error'].get('code', 'error')}")
        return data.get("entities", {})

    def summary(self, lang: str, title: str) -> str:
        base = self.settings.wikipedia_api_url.replace("{lang}", lang)
        data = self.get_json(f"{base}/page/summary/{quote(title.replace(' ', '_'), safe='')}") or {}
        return str(data.get("extract") or "")


def _json(response: httpx.Response, url: str) -> dict:
    try:
        return response.json()
    except ValueError:
        raise FetchError(f"{url}: not JSON") from None


def _retry_after(response: httpx.Response, attempt: int) -> float:
    try:
        return min(MAX_RETRY_AFTER, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return RETRY_BASE_SECONDS * 2**attempt


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
    failures: list[str] = field(default_factory=list)
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
            "failures": self.failures,
            "enrichment": str(self.path) if self.path else None,
        }

    def summary(self) -> str:
        lines = [f"Enriched {self.landmarks} landmarks in {', '.join(self.langs)} → {self.path}"]
        for lang in self.langs:
            names = ", ".join(f"{n} {src}" for (lg, src), n in sorted(self.names.items()) if lg == lang) or "none"
            texts = ", ".join(f"{n} {src}" for (lg, src), n in sorted(self.descriptions.items()) if lg == lang)
            lines.append(f"  {lang}: names: {names}; descriptions: {texts or 'none'}; links: {self.links[lang]}")
        if self.failures:
            lines.append(f"  {len(self.failures)} requests failed (fields left empty; run again to retry):")
            lines += [f"    {failure}" for failure in self.failures[:10]]
        return "\n".join(lines)


def enrich(
    data_dir: Path, langs: tuple[str, ...], settings: EnrichSettings, progress: ProgressFn = no_progress
) -> EnrichReport:
    dataset = Dataset(data_dir)
    landmarks = dataset.landmarks()
    report = EnrichReport(landmarks=len(landmarks), langs=langs)
    cache = HttpCache(dataset.enrich_cache_path)
    client = WikiClient(settings, cache)
    try:
        entities = _fetch_entities(client, landmarks.values(), langs, report, progress)
        infos = {
            lm.xid: _landmark_info(client, lm, entities.get(lm.wikidata, {}), langs, report)
            for lm in _reporting(landmarks.values(), progress, "enrich")
        }
    finally:
        client.close()
        cache.close()
    cities = {lm.city for lm in landmarks.values() if lm.city}
    city_names = {city: {lang: transliterate(city) for lang in langs if lang != SOURCE_LANG} for city in sorted(cities)}
    enrichment = Enrichment({xid: info for xid, info in infos.items() if info != LandmarkInfo()}, city_names)
    dataset.write_enrichment(enrichment)
    report.path = dataset.enrichment_path
    return report


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
            entities.update(client.entities(batch, langs))
        except FetchError as exc:
            report.failures.append(f"wikidata {batch[0]}…{batch[-1]}: {exc}")
        progress("wikidata", min(start + WIKIDATA_BATCH, len(ids)), len(ids))
    return {qid: entity for qid, entity in entities.items() if "missing" not in entity}


def _landmark_info(
    client: WikiClient, landmark: Landmark, entity: dict, langs: tuple[str, ...], report: EnrichReport
) -> LandmarkInfo:
    names, transliterated, descriptions, links = {}, set(), {}, {}
    for lang in langs:
        label = (entity.get("labels", {}).get(lang) or {}).get("value", "")
        if label:
            names[lang] = label
            report.names[(lang, "wikidata")] += 1
        elif lang == SOURCE_LANG:
            report.names[(lang, "dataset")] += 1
        else:
            names[lang] = transliterate(landmark.name)
            transliterated.add(lang)
            report.names[(lang, "transliterated")] += 1
        title = (entity.get("sitelinks", {}).get(f"{lang}wiki") or {}).get("title", "")
        if title:
            links[lang] = f"https://{lang}.wikipedia.org/wiki/{quote(title.replace(' ', '_'))}"
            report.links[lang] += 1
        description, source = _description(client, landmark, entity, lang, title, report)
        if description:
            descriptions[lang] = description
            report.descriptions[(lang, source)] += 1
    return LandmarkInfo(names, frozenset(transliterated), descriptions, links)


def _description(
    client: WikiClient, landmark: Landmark, entity: dict, lang: str, title: str, report: EnrichReport
) -> tuple[str, str]:
    if lang == SOURCE_LANG and landmark.description:
        return landmark.description, "dataset"
    if title:
        try:
            if extract := first_sentences(client.summary(lang, title)):
                return extract, "wikipedia"
        except FetchError as exc:
            report.failures.append(f"wikipedia {lang}:{title}: {exc}")
    short = (entity.get("descriptions", {}).get(lang) or {}).get("value", "")
    return (short, "wikidata") if short else ("", "")
