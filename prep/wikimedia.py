"""The Wikimedia APIs as a polite client: Wikidata's and Commons' action APIs, Wikipedia's REST summaries.

One client for `prep enrich` and `prep harvest`: a descriptive User-Agent with a contact
(ENRICH_CONTACT), `maxlag=5` on the action APIs, retries with backoff on 429, 5xx and `maxlag`
(honouring Retry-After), a deadline and a size limit per answer, and an on-disk cache of every
definitive answer (`HttpCache`), so a rerun asks only for what it lacks. Errors are never cached.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from core import EnvReader, environment, language

DEFAULT_WIKIDATA_API_URL = "https://www.wikidata.org/w/api.php"
DEFAULT_WIKIPEDIA_API_URL = "https://{lang}.wikipedia.org/api/rest_v1"
DEFAULT_COMMONS_API_URL = "https://commons.wikimedia.org/w/api.php"
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
@dataclass(frozen=True)
class WikimediaSettings:
    wikidata_api_url: str = DEFAULT_WIKIDATA_API_URL
    wikipedia_api_url: str = DEFAULT_WIKIPEDIA_API_URL
    commons_api_url: str = DEFAULT_COMMONS_API_URL
    contact: str = ""

    @classmethod
    def from_env(cls) -> WikimediaSettings:
        env = EnvReader(environment())
        return cls(
            wikidata_api_url=env.url("WIKIDATA_API_URL") or DEFAULT_WIKIDATA_API_URL,
            wikipedia_api_url=env.text("WIKIPEDIA_API_URL", DEFAULT_WIKIPEDIA_API_URL),
            commons_api_url=env.url("COMMONS_API_URL") or DEFAULT_COMMONS_API_URL,
            contact=env.text("ENRICH_CONTACT", "") or "",
        )

    @property
    def user_agent(self) -> str:
        from core.cli import package_version

        contact = self.contact or "set ENRICH_CONTACT to an e-mail or URL"
        return f"landmark-guide/{package_version()} (offline data preparation for a tourist guide bot; {contact}) httpx"


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
    def __init__(self, settings: WikimediaSettings, cache: HttpCache, sleep=time.sleep) -> None:
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

        def judge(status: int, body: bytes) -> Verdict:
            if status == 404:
                self.cache.put(url, 404, "")
                return Verdict(done=True)
            text = body.decode("utf-8", errors="replace")
            data = _parse(text) if status == 200 else None
            if status == 200 and isinstance(data, dict) and "error" not in data:
                self.cache.put(url, 200, text)
                return Verdict(done=True, value=data)
            if status == 200 and isinstance(data, dict):  # an API error in a 200 (MediaWiki does that)
                code = json_object(data.get("error")).get("code")
                if code != "maxlag":
                    raise FetchError(f"{url}: API error {code!r}")  # will not heal by retrying
                return Verdict(why="maxlag: the servers lag behind, asked to wait")
            return Verdict(why="not a JSON object") if status == 200 else _http_error(status)

        value = self._retrying(url, judge)
        return value if isinstance(value, dict) else None

    def get_bytes(self, url: str) -> bytes:
        """A file (a photo thumbnail) with the same retries; not cached here: the file written is the cache.
        Safe to call from several threads at once (httpx's pool; the SQLite cache is not touched)."""

        def judge(status: int, body: bytes) -> Verdict:
            return Verdict(done=True, value=body) if status == 200 else _http_error(status)

        value = self._retrying(url, judge)
        assert isinstance(value, bytes)
        return value

    def action(self, api_url: str, params: dict[str, str]) -> dict:
        """A MediaWiki action API call (JSON, `maxlag`), cached; {} for a 404."""
        query = "&".join(f"{k}={quote(v, safe='|')}" for k, v in (params | {"format": "json", "maxlag": "5"}).items())
        return self.get_json(f"{api_url}?{query}") or {}

    def _retrying(self, url: str, judge: Callable[[int, bytes], Verdict]) -> object:
        why = ""
        for attempt in range(MAX_TRIES):
            try:
                status, headers, body = self._fetch(url)
            except (httpx.HTTPError, FetchError) as exc:
                why, wait = _short(exc), RETRY_BASE_SECONDS * 2**attempt
            else:
                verdict = judge(status, body)
                if verdict.done:
                    return verdict.value
                why = verdict.why
                if not verdict.retry:
                    break  # a client error will not heal by retrying
                wait = _retry_after(headers, attempt)
            if attempt + 1 < MAX_TRIES:
                self._sleep(wait)
        raise FetchError(f"{url}: {why}")

    def _fetch(self, url: str) -> tuple[int, httpx.Headers, bytes]:
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
            return response.status_code, response.headers, b"".join(chunks)

    def entities(self, ids: list[str], langs: tuple[str, ...], claims: bool = False) -> dict[str, dict]:
        """Wikidata items by id (up to WIKIDATA_BATCH), with labels, descriptions and sitelinks in `langs`,
        and their statements when `claims`."""
        params = {
            "action": "wbgetentities",
            "ids": "|".join(ids),
            "props": "labels|descriptions|sitelinks" + ("|claims" if claims else ""),
            "languages": "|".join(code for lang in langs for code in language(lang).label_codes),
            "sitefilter": "|".join(f"{language(lang).wikipedia}wiki" for lang in langs),
        }
        data = self.action(self.settings.wikidata_api_url, params)
        entities = json_object(data.get("entities"))
        return {qid: entity for qid, entity in entities.items() if isinstance(entity, dict)}

    def summary(self, edition: str, title: str) -> str:
        base = self.settings.wikipedia_api_url.replace("{lang}", edition)
        data = self.get_json(f"{base}/page/summary/{quote(title.replace(' ', '_'), safe='')}") or {}
        extract = data.get("extract")
        return extract if isinstance(extract, str) else ""


@dataclass(frozen=True)
class Verdict:
    """What one answer means: done (with its value), or why not and whether asking again may help."""

    done: bool = False
    value: object = None
    why: str = ""
    retry: bool = True


def _http_error(status: int) -> Verdict:
    return Verdict(why=f"HTTP {status}", retry=status == 429 or status >= 500)


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


def json_object(value: object) -> dict:
    """A JSON object as a dict; anything else (Wikidata sent `[]` for empty maps until 2019) as empty."""
    return value if isinstance(value, dict) else {}


def nested_text(container: object, key: str, field: str) -> str:
    """container[key][field] when each level has the shape Wikidata documents, else ""."""
    value = json_object(json_object(container).get(key)).get(field)
    return value if isinstance(value, str) else ""


