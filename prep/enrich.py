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
    language,
    no_progress,
    transliterate,
)

DEFAULT_WIKIDATA_API_URL = "https://www.wikidata.org/w/api.php"
DEFAULT_WIKIPEDIA_API_URL = "https://{lang}.wikipedia.org/api/rest_v1"
# Wikidata's limit of ids per wbgetentities request.
WIKIDATA_BATCH = 50
# Seconds without a byte before a request fails, seconds a whole request may take (a server trickling a
# byte every few seconds never trips the first), the largest answer read, tries per request, and the
# first backoff (doubled each retry).
REQUEST_TIMEOUT = 15.0
REQUEST_DEADLINE = 45.0
MAX_ANSWER_BYTES = 8 * 1024 * 1024
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
    """Definitive answers by URL (JSON 200s that are no API error, and 404s), so a rerun asks only for what
    it lacks. Nothing else is ever stored: an error page, a `maxlag` answer or a cut body is asked again."""

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
        """The JSON object at `url` (None for 404), from the cache or with retries; FetchError when it fails
        for good. Only answers that are what we asked for are cached (see HttpCache)."""
        if (cached := self.cache.get(url)) is not None:
            if cached[0] == 404:
                return None
            if isinstance(data := _parse(cached[1]), dict):
                return data  # (a damaged entry left by an older version is simply asked again)
        why = ""
        for attempt in range(MAX_TRIES):
            try:
                status, headers, body = self._fetch(url)
            except (httpx.HTTPError, FetchError) as exc:
                why, wait = _short(exc), RETRY_BASE_SECONDS * 2**attempt
            else:
                data = _parse(body) if status == 200 else None
                if status == 404:
                    self.cache.put(url, 404, "")
                    return None
                if status == 200 and isinstance(data, dict) and "error" not in data:
                    self.cache.put(url, 200, body)
                    return data
                if status == 200 and isinstance(data, dict):  # an API error in a 200 (MediaWiki does that)
                    code = _mapping(data.get("error")).get("code")
                    if code != "maxlag":
                        raise FetchError(f"{url}: API error {code!r}")  # will not heal by retrying
                    why = "maxlag: the servers lag behind, asked to wait"
                elif status == 200:
                    why = "not a JSON object"
                else:
                    why = f"HTTP {status}"
                    if status != 429 and status < 500:
                        break  # a client error will not heal by retrying
                wait = _retry_after(headers, attempt)
            if attempt + 1 < MAX_TRIES:
                self._sleep(wait)
        raise FetchError(f"{url}: {why}")

    def _fetch(self, url: str) -> tuple[int, httpx.Headers, str]:
        """One request, with a deadline for the whole answer and a size limit."""
        deadline = time.monotonic() + REQUEST_DEADLINE
        chunks, size = [], 0
        with self._http.stream("GET", url) as response:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise FetchError(f"answer over {MAX_ANSWER_BYTES // 2**20} MB")
                if time.monotonic() > deadline:
                    raise FetchError(f"no complete answer in {REQUEST_DEADLINE:.0f} s")
                chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks).decode("utf-8", errors="replace")

    def entities(self, ids: list[str], langs: tuple[str, ...]) -> dict[str, dict]:
        params = {
            "action": "wbgetentities",
            "ids": "|".join(ids),
            "props": "labels|descriptions|sitelinks",
            "languages": "|".join(code for lang in langs for code in language(lang).label_codes),
            "sitefilter": "|".join(f"{language(lang).wikipedia}wiki" for lang in langs),
            "format": "json",
            "maxlag": "5",
        }
        query = "&".join(f"{k}={quote(v, safe='|')}" for k, v in params.items())
        data = self.get_json(f"{self.settings.wikidata_api_url}?{query}") or {}
        entities = _mapping(data.get("entities"))
        return {qid: entity for qid, entity in entities.items() if isinstance(entity, dict)}

    def summary(self, edition: str, title: str) -> str:
        base = self.settings.wikipedia_api_url.replace("{lang}", edition)
        data = self.get_json(f"{base}/page/summary/{quote(title.replace(' ', '_'), safe='')}") or {}
        extract = data.get("extract")
        return extract if isinstance(extract, str) else ""


def _parse(body: str) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _short(error: Exception) -> str:
    return str(error) if isinstance(error, FetchError) else error.__class__.__name__


def _retry_after(headers: httpx.Headers, attempt: int) -> float:
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(headers.get("Retry-After", ""))))
    except ValueError:
        return RETRY_BASE_SECONDS * 2**attempt


def _mapping(value: object) -> dict:
    """A JSON object as a dict; anything else (Wikidata sent `[]` for empty maps until 2019) as empty."""
    return value if isinstance(value, dict) else {}


def _text(container: object, key: str, field: str) -> str:
    """container[key][field] when each level has the shape Wikidata documents, else ""."""
    value = _mapping(_mapping(container).get(key)).get(field)
    return value if isinstance(value, str) else ""


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
    """Names, descriptions and links in each language as Wikidata and Wikipedia have them. A language
    without a label gets nothing here: cards fall back along its chain (core.languages) at read time."""
    names, descriptions, links = {}, {}, {}
    for lang in langs:
        entry = language(lang)
        label = next((value for code in entry.label_codes if (value := _text(entity.get("labels"), code, "value"))), "")
        if label:
            names[lang] = label
            report.names[(lang, "wikidata")] += 1
        else:
            report.names[(lang, "dataset" if lang == SOURCE_LANG else "fallback")] += 1
        title = _text(entity.get("sitelinks"), f"{entry.wikipedia}wiki", "title")
        if title:
            links[lang] = f"https://{entry.wikipedia}.wikipedia.org/wiki/{quote(title.replace(' ', '_'))}"
            report.links[lang] += 1
        description, source = _description(client, landmark, entity, lang, title, report)
        if description:
            descriptions[lang] = description
            report.descriptions[(lang, source)] += 1
    return LandmarkInfo(names, frozenset(), descriptions, links)


def _description(
    client: WikiClient, landmark: Landmark, entity: dict, lang: str, title: str, report: EnrichReport
) -> tuple[str, str]:
    if lang == SOURCE_LANG and landmark.description:
        return landmark.description, "dataset"
    entry = language(lang)
    if title:
        try:
            if extract := first_sentences(client.summary(entry.wikipedia, title)):
                return extract, "wikipedia"
        except FetchError as exc:
            report.failures.append(f"wikipedia {entry.wikipedia}:{title}: {exc}")
    descriptions = entity.get("descriptions")
    short = next((value for code in entry.label_codes if (value := _text(descriptions, code, "value"))), "")
    return (short, "wikidata") if short else ("", "")
