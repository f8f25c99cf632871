"""A local fake of the Wikidata action API and Wikipedia's REST page summary, in the real response shapes,
served from its own thread (prep enrich is synchronous)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class WikiEntity:
    labels: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)  # lang → Wikipedia article title


class FakeWiki:
    def __init__(self) -> None:
        self.entities: dict[str, WikiEntity] = {}
        self.extracts: dict[tuple[str, str], str] = {}  # (lang, title with underscores) → extract
        self.failures: dict[str, list[int]] = defaultdict(list)  # path part → statuses to answer first
        self.slow: set[str] = set()  # path parts answered after `delay` seconds
        self.delay = 2.0
        self.answers: dict[str, list[tuple[int, str]]] = defaultdict(list)  # path part → raw (status, body) first
        self.trickle: set[str] = set()  # path parts answered one byte every `trickle_interval` s, for ever
        self.trickle_interval = 0.2
        self.lists_for_empty_maps: set[str] = set()  # qids whose empty maps come as [] (Wikidata before 2019)
        self.requests: list[tuple[str, str, str]] = []  # (path, query, user agent)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.url = ""

    def start(self) -> FakeWiki:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/w/api.php", self._wikidata)
        app.router.add_get("/{lang}/api/rest_v1/page/summary/{title}", self._summary)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    async def _maybe_fail(self, request: web.Request, key: str) -> web.Response | None:
        self.requests.append((request.path, request.query_string, request.headers.get("User-Agent", "")))
        if key in self.slow:
            await asyncio.sleep(self.delay)
        if key in self.trickle:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            for _ in range(600):
                await response.write(b" ")
                await asyncio.sleep(self.trickle_interval)
            return response
        if self.answers[key]:
            status, body = self.answers[key].pop(0)
            return web.Response(status=status, text=body, content_type="application/json")
        if self.failures[key]:
            status = self.failures[key].pop(0)
            headers = {"Retry-After": "0"} if status == 429 else {}
            return web.json_response({"error": "fake"}, status=status, headers=headers)
        return None

    async def _wikidata(self, request: web.Request) -> web.Response:
        if (failed := await self._maybe_fail(request, "wikidata")) is not None:
            return failed
        ids = request.query["ids"].split("|")
        langs = request.query.get("languages", "en").split("|")
        assert len(ids) <= 50 and request.query.get("maxlag") == "5"
        entities = {}
        for qid in ids:
            entity = self.entities.get(qid)
            if entity is None:
                entities[qid] = {"id": qid, "missing": ""}
                continue
            if qid in self.lists_for_empty_maps:
                entities[qid] = {"type": "item", "id": qid, "labels": [], "descriptions": [], "sitelinks": []}
                continue
            entities[qid] = {
                "type": "item",
                "id": qid,
                "labels": {k: {"language": k, "value": v} for k, v in entity.labels.items() if k in langs},
                "descriptions": {k: {"language": k, "value": v} for k, v in entity.descriptions.items() if k in langs},
                "sitelinks": {
                    f"{k}wiki": {"site": f"{k}wiki", "title": v, "badges": []} for k, v in entity.titles.items()
                },
            }
        return web.json_response({"entities": entities, "success": 1})

    async def _summary(self, request: web.Request) -> web.Response:
        lang, title = request.match_info["lang"], request.match_info["title"]
        if (failed := await self._maybe_fail(request, f"{lang}:{title}")) is not None:
            return failed
        extract = self.extracts.get((lang, title))
        if extract is None:
            return web.json_response({"type": "https://mediawiki.org/wiki/HyperSwitch/errors/not_found"}, status=404)
        return web.json_response(
            {
                "type": "standard",
                "title": title.replace("_", " "),
                "extract": extract,
                "lang": lang,
                "content_urls": {"desktop": {"page": f"https://{lang}.wikipedia.org/wiki/{title}"}},
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
