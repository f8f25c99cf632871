"""`prep review`: the review page served on 127.0.0.1 with a random token, so an admin keeps or removes
candidates in the browser — on a VPS through `ssh -L`. Every decision is saved into the quarantine at
once (and keeps into the dataset's kept.csv), so closing the browser loses nothing.

Requests without the token get 403; only the page, its thumbnails, the states and decisions are served.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from core import GuideError
from prep.quarantine import MARKER, PAGE, QuarantineError, check_location, decide, states
from prep.review_page import THUMBS

DEFAULT_PORT = 8765
THUMBNAIL = re.compile(r"^[0-9a-f]{24}\.jpg$")
MAX_BODY = 1_000_000  # bytes of a decision request (a group of a few thousand paths)
IDLE_TIMEOUT_S = 30.0  # seconds a connection may sit without sending a request


@dataclass
class ReviewServer:
    server: ThreadingHTTPServer
    token: str  # text: it is part of every URL
    thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        host = str(self.server.server_address[0])
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{shown}:{self.port}/{self.token}/"

    def start(self) -> ReviewServer:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_server(qdir: Path, data_dir: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> ReviewServer:
    if not (qdir / MARKER).is_file() or not (qdir / PAGE).is_file():
        raise QuarantineError(f"{qdir} holds no review: run `python -m prep clean --quarantine {qdir}` first")
    check_location(qdir, data_dir)
    token = secrets.token_urlsafe(24)

    class Handler(_Handler):
        quarantine, dataset, secret = qdir, data_dir, token

    if not 0 <= port < 65536:  # 0: any free port
        raise QuarantineError(f"--port must be between 1 and 65535, got {port}")
    try:
        server = _Server((host, port), Handler)
    except (OSError, OverflowError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise QuarantineError(f"cannot listen on {host}:{port} ({why}): choose another --port or --host") from None
    return ReviewServer(server, token)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # an idle browser connection never keeps the process alive at Ctrl-C


class _Handler(BaseHTTPRequestHandler):
    quarantine: Path
    dataset: Path
    secret: str
    timeout = IDLE_TIMEOUT_S  # an idle or half-sent request is dropped, never held for ever

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        return  # the admin's terminal shows the summary, not every thumbnail request

    def _route(self, head: bool = False) -> str | None:
        """The path after the token, or None (and 403 sent) when the token is missing or wrong."""
        _, _, rest = self.path.partition("/")
        token, _, tail = rest.partition("/")
        if not hmac.compare_digest(token.encode(errors="replace"), self.secret.encode()):
            self._send(HTTPStatus.FORBIDDEN, b"forbidden: open the URL that `prep review` printed", "text/plain", head)
            return None
        return tail.split("?", 1)[0]

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        route = self._route()
        if route is None:
            return
        if route in ("", PAGE):
            self._send(HTTPStatus.OK, (self.quarantine / PAGE).read_bytes(), "text/html; charset=utf-8")
        elif route == "state":
            self._send(HTTPStatus.OK, json.dumps(states(self.quarantine)).encode(), "application/json")
        elif route.startswith(f"{THUMBS}/") and THUMBNAIL.match(name := route.removeprefix(f"{THUMBS}/")):
            file = self.quarantine / THUMBS / name
            if file.is_file() and not file.is_symlink():
                self._send(HTTPStatus.OK, file.read_bytes(), "image/jpeg")
            else:
                self._send(HTTPStatus.NOT_FOUND, b"no such thumbnail", "text/plain")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

    def do_HEAD(self) -> None:  # noqa: N802 - what monitors and some browsers send first
        route = self._route(head=True)
        if route is not None:
            self._send(HTTPStatus.OK if route in ("", PAGE, "state") else HTTPStatus.NOT_FOUND, b"", "text/plain", True)

    def do_POST(self) -> None:  # noqa: N802
        route = self._route()
        if route is None:
            return
        if route != "decide":
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                raise ValueError("body size")
            body = json.loads(self.rfile.read(length))
            paths, decision = body["paths"], body["decision"]
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise ValueError("paths")
            if decision not in ("keep", "remove"):
                raise ValueError("decision")
        except (ValueError, KeyError, TypeError, RecursionError, OSError):  # OSError: a read that timed out
            self._send(
                HTTPStatus.BAD_REQUEST,
                b'{"error": "expected {paths: [...], decision: keep|remove}"}',
                "application/json",
            )
            return
        try:
            result = decide(self.quarantine, self.dataset, paths, decision)
        except (GuideError, OSError) as exc:  # e.g. kept.csv locked too long: the page shows it was not saved
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, json.dumps({"error": str(exc)}).encode(), "application/json")
            return
        self._send(HTTPStatus.OK, json.dumps(result).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")  # the token is in the URL
        self.end_headers()
        if not head:
            self.wfile.write(body)
