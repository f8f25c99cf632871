"""A local fake of the Wikidata action API (wbgetentities with claims, geosearch), the Commons action
API (imageinfo with extmetadata, categorymembers with `continue`), Commons' thumbnails and Wikipedia's
REST page summary, in the real response shapes, served from its own thread (prep is synchronous)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from aiohttp import web

from tests.helpers.threaded_server import ThreadedServer


@dataclass
class WikiEntity:
    labels: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)  # lang → Wikipedia article title
    classes: list[str] = field(default_factory=list)  # P31
    subclass_of: list[str] = field(default_factory=list)  # P279
    located_in: list[str] = field(default_factory=list)  # P131: the administrative unit it lies in
    coordinates: tuple[float, float] | None = None  # P625
    image: str = ""  # P18: a Commons file name
    category: str = ""  # P373: a Commons category
    addresses: dict[str, str] = field(default_factory=dict)  # P6375: language → street address

    def claims(self) -> dict:
        def statement(prop: str, datatype: str, value: object, rank: str = "normal") -> dict:
            kinds = {"wikibase-item": "wikibase-entityid", "globe-coordinate": "globecoordinate"}
            kind = kinds.get(datatype, datatype if datatype == "monolingualtext" else "string")
            snak = {"snaktype": "value", "property": prop, "datavalue": {"value": value, "type": kind}}
            return {"mainsnak": snak | {"datatype": datatype}, "type": "statement", "id": f"{prop}$x", "rank": rank}

        def item(qid: str) -> dict:
            return {"entity-type": "item", "numeric-id": int(qid[1:]), "id": qid}

        claims: dict[str, list] = {}
        for prop, values in (("P31", self.classes), ("P279", self.subclass_of), ("P131", self.located_in)):
            if values:
                claims[prop] = [statement(prop, "wikibase-item", item(q)) for q in values]
        if self.coordinates:
            lat, lon = self.coordinates
            value = {"latitude": lat, "longitude": lon, "altitude": None, "precision": 1e-06}
            claims["P625"] = [
                statement("P625", "globe-coordinate", value | {"globe": "http://www.wikidata.org/entity/Q2"})
            ]
        if self.image:
            claims["P18"] = [statement("P18", "commonsMedia", self.image)]
        if self.category:
            claims["P373"] = [statement("P373", "string", self.category)]
        if self.addresses:
            claims["P6375"] = [
                statement("P6375", "monolingualtext", {"text": text, "language": lang})
                for lang, text in self.addresses.items()
            ]
        return claims


@dataclass
class CommonsFile:
    data: bytes
    mime: str = "image/jpeg"
    width: int = 1600
    height: int = 1200
    artist: str = '<a href="//commons.wikimedia.org/wiki/User:Ann" title="User:Ann">Ann Example</a>'
    license: str = "CC BY-SA 4.0"
    license_url: str = "https://creativecommons.org/licenses/by-sa/4.0"
    thumb_url: str = ""  # where imageinfo says the thumbnail is ("" : this server's /thumb/)
    description_url: str = ""  # the file's page imageinfo names ("" : Commons' own)


class FakeWiki(ThreadedServer):
    def __init__(self) -> None:
        self.entities: dict[str, WikiEntity] = {}
        self.extracts: dict[tuple[str, str], str] = {}  # (lang, title with underscores) → extract
        self.failures: dict[str, list[int]] = defaultdict(list)  # path part → statuses to answer first
        self.slow: set[str] = set()  # path parts answered after `delay` seconds
        self.delay = 2.0
        self.answers: dict[str, list[tuple[int, str]]] = defaultdict(list)  # path part → raw (status, body) first
        self.trickle: set[str] = set()  # path parts answered one byte every `trickle_interval` s, for ever
        self.trickle_interval = 0.2
        self.trickle_headers: set[str] = set()  # path parts whose status line and headers come a byte at a time
        self.extra_entities: dict[str, dict] = {}  # put into every wbgetentities answer, asked for or not
        self.lists_for_empty_maps: set[str] = set()  # qids whose empty maps come as [] (Wikidata before 2019)
        self.requests: list[tuple[str, str, str]] = []  # (path, query, user agent)
        self.places: dict[str, tuple[float, float]] = {}  # qid → where geosearch finds it
        self.files: dict[str, CommonsFile] = {}  # "File:Name.jpg" → the file
        self.categories: dict[str, list[str]] = {}  # category name → its files' titles
        self.downloads: Counter = Counter()  # "File:Name.jpg" → thumbnail downloads
        self.latency = {"api": 0.0, "thumb": 0.0}  # seconds every answer of that kind waits (benchmarks)
        super().__init__()

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/w/api.php", self._wikidata)
        router.add_get("/commons/w/api.php", self._commons)
        router.add_get("/thumb/{name}", self._thumb)
        router.add_get("/{lang}/api/rest_v1/page/summary/{title}", self._summary)

    async def _maybe_fail(self, request: web.Request, key: str) -> web.Response | None:
        self.requests.append((request.path, request.query_string, request.headers.get("User-Agent", "")))
        if wait := self.latency["thumb" if key.startswith("thumb:") else "api"]:
            await asyncio.sleep(wait)
        if key in self.slow:
            await asyncio.sleep(self.delay)
        if key in self.trickle_headers:
            transport = request.transport
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"." * 600:
                if transport is None or transport.is_closing():
                    break
                transport.write(bytes([byte]))
                await asyncio.sleep(self.trickle_interval)
            raise asyncio.CancelledError  # the connection is the client's to drop; nothing more is sent
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
        if request.query.get("list") == "geosearch":
            return await self._geosearch(request)
        if request.query.get("action") == "wbsearchentities":
            return await self._search(request)
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
            if "claims" in request.query.get("props", ""):
                entities[qid] = {"claims": entity.claims()}
            entities[qid] = entities.get(qid, {}) | {
                "type": "item",
                "id": qid,
                "labels": {k: {"language": k, "value": v} for k, v in entity.labels.items() if k in langs},
                "descriptions": {k: {"language": k, "value": v} for k, v in entity.descriptions.items() if k in langs},
                "sitelinks": {
                    f"{k}wiki": {"site": f"{k}wiki", "title": v, "badges": []} for k, v in entity.titles.items()
                },
            }
        return web.json_response({"entities": entities | self.extra_entities, "success": 1})

    async def _search(self, request: web.Request) -> web.Response:
        """wbsearchentities: items whose label in any language starts with the search text, as Wikidata
        answers (`search` list of {id, label, description, match})."""
        if (failed := await self._maybe_fail(request, "search")) is not None:
            return failed
        query, limit = request.query["search"].casefold(), int(request.query.get("limit", "7"))
        hits = []
        for qid, entity in self.entities.items():
            label = next((v for v in entity.labels.values() if v.casefold().startswith(query)), None)
            if label is not None:
                match = {"type": "label", "language": "ru", "text": label}
                hits.append({"id": qid, "title": qid, "label": label, "description": "", "match": match})
        return web.json_response({"searchinfo": {"search": query}, "search": hits[:limit], "success": 1})

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

    async def _geosearch(self, request: web.Request) -> web.Response:
        if (failed := await self._maybe_fail(request, "geosearch")) is not None:
            return failed
        lat, lon = (float(x) for x in request.query["gscoord"].split("|"))
        radius, limit = int(request.query["gsradius"]), int(request.query["gslimit"])
        assert radius <= 10_000 and limit <= 500 and request.query.get("maxlag") == "5"
        hits = []
        for qid, (plat, plon) in self.places.items():
            dy = (plat - lat) * 111_320
            dx = (plon - lon) * 111_320 * math.cos(math.radians(lat))
            if (dist := math.hypot(dx, dy)) <= radius:
                hits.append(
                    {
                        "pageid": int(qid[1:]),
                        "ns": 0,
                        "title": qid,
                        "lat": plat,
                        "lon": plon,
                        "dist": round(dist, 1),
                        "primary": "",
                    }
                )
        hits.sort(key=lambda h: h["dist"])
        return web.json_response({"batchcomplete": "", "query": {"geosearch": hits[:limit]}})

    def _page(self, title: str, width: int) -> dict:
        file = self.files[title]
        name = title.removeprefix("File:")
        ratio = width / file.width
        meta = {
            "DateTime": {"value": "2020-01-01 10:00:00", "source": "mediawiki-metadata", "hidden": ""},
            "Artist": {"value": file.artist, "source": "commons-desc-page"},
            "LicenseShortName": {"value": file.license, "source": "commons-desc-page", "hidden": ""},
            "Credit": {
                "value": '<span class="int-own-work">Own work</span>',
                "source": "commons-desc-page",
                "hidden": "",
            },
        }
        if file.license_url:
            meta["LicenseUrl"] = {"value": file.license_url, "source": "commons-desc-page", "hidden": ""}
        info = {
            "thumburl": file.thumb_url or f"{self.url}/thumb/{quote(name)}",
            "thumbwidth": width,
            "thumbheight": round(file.height * ratio),
            "url": f"{self.url}/original/{quote(name)}",
            "descriptionurl": file.description_url
            or f"https://commons.wikimedia.org/wiki/{quote(title.replace(' ', '_'), safe=':/')}",
            "descriptionshorturl": "https://commons.wikimedia.org/w/index.php?curid=1",
            "size": len(file.data),
            "width": file.width,
            "height": file.height,
            "mime": file.mime,
            "extmetadata": meta,
        }
        return {
            "pageid": abs(hash(title)) % 10**8,
            "ns": 6,
            "title": title,
            "imagerepository": "local",
            "imageinfo": [info],
        }

    async def _commons(self, request: web.Request) -> web.Response:
        if (failed := await self._maybe_fail(request, "commons")) is not None:
            return failed
        query = request.query
        assert query.get("maxlag") == "5" and query.get("prop") == "imageinfo" and "extmetadata" in query["iiprop"]
        width = int(query["iiurlwidth"])
        if "titles" in query:
            pages, normalized = {}, []
            for index, asked in enumerate(query["titles"].split("|")):
                title = asked.replace("_", " ")
                title = title[:5] + title[5:6].upper() + title[6:]
                if title != asked:
                    normalized.append({"from": asked, "to": title})
                if title in self.files:
                    page = self._page(title, width)
                    pages[str(page["pageid"])] = page
                else:
                    pages[str(-1 - index)] = {"ns": 6, "title": title, "missing": "", "known": ""}
            answer: dict = {"batchcomplete": "", "query": {"pages": pages}}
            if normalized:
                answer["query"]["normalized"] = normalized
            return web.json_response(answer)
        assert query["generator"] == "categorymembers" and query["gcmtype"] == "file"
        members = self.categories.get(query["gcmtitle"].removeprefix("Category:"), [])
        limit, start = int(query["gcmlimit"]), int(query.get("gcmcontinue", "file|0").split("|")[1])
        chunk = members[start : start + limit]
        answer = {"batchcomplete": ""}
        if chunk:
            answer["query"] = {"pages": {str(p["pageid"]): p for p in (self._page(t, width) for t in chunk)}}
        if start + limit < len(members):
            answer["continue"] = {"gcmcontinue": f"file|{start + limit}", "continue": "gcmcontinue||"}
        return web.json_response(answer)

    async def _thumb(self, request: web.Request) -> web.Response:
        title = "File:" + unquote(request.match_info["name"])
        if (failed := await self._maybe_fail(request, f"thumb:{title}")) is not None:
            return failed
        self.downloads[title] += 1
        file = self.files.get(title)
        if file is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=file.data, content_type="image/jpeg")
