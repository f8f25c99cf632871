"""The Wikimedia APIs as a polite client: Wikidata's and Commons' action APIs, Wikipedia's REST summaries.

One client for `prep enrich` and `prep harvest`: a descriptive User-Agent with a contact
(ENRICH_CONTACT), `maxlag=5` on the action APIs, retries with backoff on 429, 5xx and `maxlag`
(honouring Retry-After), a deadline and a size limit per answer, and an on-disk cache of every
definitive answer (`HttpCache`), so a rerun asks only for what it lacks. Errors are never cached.

A host is untrusted input: the deadline covers the whole exchange — connecting, the headers, the body
(httpx's timeouts apply to each read, so a server sending a byte every few seconds never trips them:
requests run on an asyncio client under `asyncio.timeout`) —, an answer that cannot be parsed (broken or
absurdly nested JSON) is one failed request, and a host that leaves HOST_GIVE_UP_AFTER attempts in a row
unanswered (deadline missed, no connection) is not asked again in this run: the run keeps what it has
and its report names the host.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlsplit

import httpx

from core import EnvReader, clean_text, environment, language, open_cache_db

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_WIKIDATA_API_URL = "https://www.wikidata.org/w/api.php"
DEFAULT_WIKIPEDIA_API_URL = "https://{lang}.wikipedia.org/api/rest_v1"
DEFAULT_COMMONS_API_URL = "https://commons.wikimedia.org/w/api.php"
# Wikidata's limit of ids per wbgetentities request.
WIKIDATA_BATCH = 50
# Seconds without a byte before a request fails; seconds until the whole header has arrived (Wikimedia's
# servers send it well within one); seconds the whole exchange may take (a server trickling a byte every
# few seconds never trips the first: only these two end it; 8 MB at 1 MB/s fits); the largest answer read;
# tries per request; the first backoff (doubled each retry).
REQUEST_TIMEOUT = 15.0
HEADERS_DEADLINE = 15.0
REQUEST_DEADLINE = 30.0
MAX_ANSWER_BYTES = 8 * 1024 * 1024
MAX_TRIES = 4
RETRY_BASE_SECONDS = 1.0
MAX_RETRY_AFTER = 60.0
# Attempts in a row a host may leave unanswered (deadline missed, no connection) before this run stops
# asking it: with the deadlines above, a trickling host costs at most ~1.5 min, not one per request.
HOST_GIVE_UP_AFTER = 3
# Where Commons serves thumbnails; files are fetched from there or from the configured API's own host.
COMMONS_UPLOAD_HOST = "upload.wikimedia.org"


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

    def file_url_allowed(self, url: str) -> bool:
        """Whether a photo may be fetched from `url`: https on Commons' upload host, or the configured Commons
        API's own scheme and host (a mirror, or the tests' local fake). An API answer names the URL: never
        another host."""
        try:
            parts, api = urlsplit(url), urlsplit(self.commons_api_url)
        except ValueError:
            return False
        if parts.username or parts.password:
            return False
        if parts.scheme == "https" and parts.hostname == COMMONS_UPLOAD_HOST and parts.port in (None, 443):
            return True
        return (parts.scheme, parts.netloc.lower()) == (api.scheme, api.netloc.lower())

    @property
    def user_agent(self) -> str:
        from core.cli import package_version

        contact = self.contact or "set ENRICH_CONTACT to an e-mail or URL"
        return f"landmark-guide/{package_version()} (offline data preparation for a tourist guide bot; {contact}) httpx"


class FetchError(Exception):
    """A request failed for good (after retries); the message says what and why."""


class HttpCache:
    """Definitive answers by URL (JSON 200s that are no API error, and 404s), so a rerun asks only for what
    it lacks. Nothing else is ever stored: an error page, a `maxlag` answer or a cut body is asked again.
    Only a cache: a damaged file is set aside with a warning and a new one started."""

    def __init__(self, path: Path) -> None:
        self._db = open_cache_db(path, self._open, "answer cache")

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path)
        try:
            db.execute("CREATE TABLE IF NOT EXISTS http (url TEXT PRIMARY KEY, status INTEGER, body TEXT)")
            db.execute("SELECT COUNT(*) FROM http").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

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
        self._http = _DeadlineHttp(settings.user_agent)
        self._unanswered: dict[str, int] = {}  # host → attempts in a row without an answer
        self.abandoned: set[str] = set()  # hosts this run stopped asking

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
        host = urlsplit(url).netloc.lower()
        for attempt in range(MAX_TRIES):
            if host in self.abandoned:
                raise FetchError(f"{url}: not asked: {host} left {HOST_GIVE_UP_AFTER} attempts in a row unanswered")
            try:
                status, headers, body = self._http.fetch(url)
            except (httpx.HTTPError, FetchError, OSError) as exc:
                why, wait = _short(exc), RETRY_BASE_SECONDS * 2**attempt
                if self._count_unanswered(host, why):
                    raise FetchError(f"{url}: {why}; {host} is not asked again in this run") from None
            else:
                self._unanswered.pop(host, None)
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

    def _count_unanswered(self, host: str, why: str) -> bool:
        """Count an attempt without an answer; True when that makes the host one this run gives up on."""
        self._unanswered[host] = self._unanswered.get(host, 0) + 1
        if self._unanswered[host] < HOST_GIVE_UP_AFTER:
            return False
        if host not in self.abandoned:
            self.abandoned.add(host)
            log.warning("%s left %d attempts in a row unanswered (%s): not asked again in this run", host,
                        HOST_GIVE_UP_AFTER, why)
        return True

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
        asked = set(ids)
        if unasked := [key for key in entities if key not in asked]:  # never trusted: they would become xids
            log.warning("Wikidata's answer held %d entities not asked for (e.g. %r): left out", len(unasked),
                        str(unasked[0])[:40])
        return {qid: entity for qid, entity in entities.items() if qid in asked and isinstance(entity, dict)}

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
    """The JSON value of `body`, or None when it is no JSON at all or nested too deep to parse."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
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


def statement_values(entity: dict, prop: str) -> list[object]:
    """The values of an item's statements for `prop`: deprecated ones and "no/some value" left out,
    preferred ones first."""
    statements = [s for s in json_object(entity.get("claims")).get(prop, []) if isinstance(s, dict)]
    statements.sort(key=lambda s: s.get("rank") != "preferred")
    values = []
    for statement in statements:
        if statement.get("rank") == "deprecated":
            continue
        value = json_object(json_object(statement.get("mainsnak")).get("datavalue")).get("value")
        if value is not None:
            values.append(value)
    return values


def item_ids(values: list[object]) -> list[str]:
    return [v["id"] for v in values if isinstance(v, dict) and isinstance(v.get("id"), str)]


def nested_text(container: object, key: str, field: str) -> str:
    """container[key][field] when each level has the shape Wikidata documents, else "" (bidi controls and
    control characters taken out: core.clean_text)."""
    value = json_object(json_object(container).get(key)).get(field)
    return clean_text(value).strip() if isinstance(value, str) else ""


class _DeadlineHttp:
    """GET requests held to a deadline for the whole exchange: an httpx.AsyncClient on a private event loop
    (its own thread), so that `asyncio.timeout` can end a request wherever it stalls. Callable from any
    thread (harvest downloads from several at once)."""

    def __init__(self, user_agent: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="wikimedia-http", daemon=True)
        self._thread.start()
        self._client = self._run(self._make_client(user_agent))

    @staticmethod
    async def _make_client(user_agent: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(headers={"User-Agent": user_agent}, timeout=REQUEST_TIMEOUT, trust_env=False)

    def _run(self, coroutine: Coroutine[object, object, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def fetch(self, url: str) -> tuple[int, httpx.Headers, bytes]:
        return self._run(self._fetch(url))

    async def _fetch(self, url: str) -> tuple[int, httpx.Headers, bytes]:
        try:
            async with asyncio.timeout(REQUEST_DEADLINE):
                request = self._client.build_request("GET", url)
                try:
                    response = await asyncio.wait_for(self._client.send(request, stream=True), HEADERS_DEADLINE)
                except TimeoutError:
                    raise FetchError(f"no complete header in {HEADERS_DEADLINE:.0f} s") from None
                try:
                    return response.status_code, response.headers, await _body(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise FetchError(f"no complete answer in {REQUEST_DEADLINE:.0f} s") from None

    def close(self) -> None:
        try:
            self._run(self._client.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                self._loop.close()


async def _body(response: httpx.Response) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise FetchError(f"answer over {MAX_ANSWER_BYTES // 2**20} MB")
        chunks.append(chunk)
    return b"".join(chunks)


