"""A local fake of the Hugging Face Hub's model endpoints that `huggingface_hub.snapshot_download` uses —
the revision (`/api/models/{repo}/revision/{rev}`: its commit), the file tree at that commit
(`/api/models/{repo}/tree/{commit}`) and `resolve` (HEAD for the metadata the client checks, GET for the
bytes) — in the real response shapes, served from its own thread."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path

from aiohttp import web

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Serves model repositories from folders: {"facebook/dinov2-small": Path(...)}."""

    def __init__(self, repos: dict[str, Path]) -> None:
        self.repos = repos
        self.requests: list[str] = []  # "METHOD path", in order
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> FakeHub:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/api/models/{owner}/{name}/revision/{revision}", self._revision)
        app.router.add_route("GET", "/api/models/{owner}/{name}/tree/{revision}", self._tree)
        app.router.add_route("*", "/{owner}/{name}/resolve/{revision}/{path:.+}", self._resolve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    def _folder(self, request: web.Request) -> Path:
        self.requests.append(f"{request.method} {request.path}")
        repo = f"{request.match_info['owner']}/{request.match_info['name']}"
        if repo not in self.repos:
            raise web.HTTPNotFound(headers={"X-Error-Code": "RepoNotFound"}, text="Repository not found")
        return self.repos[repo]

    async def _revision(self, request: web.Request) -> web.Response:
        folder = self._folder(request)
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        repo = f"{request.match_info['owner']}/{request.match_info['name']}"
        return web.json_response(
            {
                "_id": "0" * 24,
                "id": repo,
                "modelId": repo,
                "sha": COMMIT,
                "private": False,
                "disabled": False,
                "gated": False,
                "tags": [],
                "siblings": [{"rfilename": name} for name in files],
            }
        )

    async def _tree(self, request: web.Request) -> web.Response:
        folder = self._folder(request)
        entries = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            data = path.read_bytes()
            oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob id, as the Hub gives
            entries.append({"type": "file", "oid": oid, "size": len(data), "path": path.relative_to(folder).as_posix()})
        return web.json_response(entries)

    async def _resolve(self, request: web.Request) -> web.StreamResponse:
        path = self._folder(request) / request.match_info["path"]
        if not path.is_file():
            raise web.HTTPNotFound(headers={"X-Error-Code": "EntryNotFound"}, text="Entry not found")
        data = path.read_bytes()
        headers = {
            "X-Repo-Commit": COMMIT,
            "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
            "Content-Length": str(len(data)),
            "Content-Type": "application/octet-stream",
        }
        if request.method == "HEAD":
            return web.Response(headers=headers)
        return web.Response(body=data, headers=headers)
