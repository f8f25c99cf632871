"""A local fake of the Hugging Face Hub's model endpoints that `huggingface_hub.snapshot_download` uses —
the revision (`/api/models/{repo}/revision/{rev}`: its commit), the file tree at that commit
(`/api/models/{repo}/tree/{commit}`) and `resolve` (HEAD for the metadata the client checks, GET for the
bytes) — in the real response shapes, served from its own thread."""

from __future__ import annotations

import hashlib
from pathlib import Path

from aiohttp import web

from tests.helpers.threaded_server import ThreadedServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub(ThreadedServer):
    """Serves model repositories from folders: {"facebook/dinov2-small": Path(...)}."""

    def __init__(self, repos: dict[str, Path]) -> None:
        self.repos = repos
        self.requests: list[str] = []  # "METHOD path", in order
        super().__init__()

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("GET", "/api/models/{owner}/{name}/revision/{revision}", self._revision)
        router.add_route("GET", "/api/models/{owner}/{name}/tree/{revision}", self._tree)
        router.add_route("*", "/{owner}/{name}/resolve/{revision}/{path:.+}", self._resolve)

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
