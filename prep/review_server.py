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

from prep.quarantine import MARKER, PAGE, QuarantineError, check_location, decide, states
from prep.review_page import THUMBS

DEFAULT_PORT = 8765
THUMBNAIL = re.compile(r"^[0-9a-f]{24}\.jpg$")
MAX_BODY = 1_000_000  # bytes of a decision request (a group of a few thousand paths)


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

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise QuarantineError(f"cannot listen on {host}:{port} ({exc.strerror}): choose another --port") from None
    return ReviewServer(server, token)


class _Handler(BaseHTTPRequestHandler):
    quarantine: Path
    dataset: Path
    secret: str

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        return  # the admin's terminal shows the summary, not every thumbnail request

    def _route(self) -> str | None:
        """The path after the token, or None (and 403 sent) when the token is missing or wrong."""
        _, _, rest = self.path.partition("/")
        token, _, tail = rest.partition("/")
        if not hmac.compare_digest(token.encode(), self.secret.encode()):
            self._send(HTTPStatus.FORBIDDEN, b"forbidden: open the URL that `prep review` printed", "text/plain")
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

    def do_POST(self) -> None:  # noqa: N802
        route = self._route()
        if route is None:
            return
        if route != "decide":
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            if not 0 < length <= MAX_BODY:
                raise ValueError("body size")
            body = json.loads(self.rfile.read(length))
            paths, decision = list(map(str, body["paths"])), body["decision"]
            if decision not in ("keep", "remove"):
                raise ValueError("decision")
        except (ValueError, KeyError, TypeError):
            self._send(
                HTTPStatus.BAD_REQUEST,
                b'{"error": "expected {paths: [...], decision: keep|remove}"}',
                "application/json",
            )
            return
        result = decide(self.quarantine, self.dataset, paths, decision)
        self._send(HTTPStatus.OK, json.dumps(result).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")  # the token is in the URL
        self.end_headers()
        self.wfile.write(body)
