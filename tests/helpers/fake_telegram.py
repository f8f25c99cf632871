"""A local fake of the Telegram Bot API, enough to run a real python-telegram-bot Application.

Serves getUpdates with real long polling (offset, timeout), getFile and file downloads, and records
every other call with its parameters and uploaded files. Tests push updates as users would send them.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image, UnidentifiedImageError

BOT_USER = {
    "id": 999,
    "is_bot": True,
    "first_name": "Guide",
    "username": "guide_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
JSON_FIELDS = {"reply_markup", "media", "commands", "reply_parameters", "allowed_updates", "link_preview_options"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)  # when the call reached the server

    @property
    def text(self) -> str:
        """What the user reads: a message's text or a photo's caption."""
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None


class FakeTelegram:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.url = ""
        self._updates: list[dict] = []
        self._files: dict[str, bytes] = {}
        self._downloads: list[str] = []
        self.too_big: set[str] = set()  # file ids whose getFile Telegram refuses ("file is too big")
        self.voices: dict[str, bytes] = {}  # file_id → the OGG/Opus voice message uploaded with sendVoice
        self._failures: dict[str, list[int]] = {}
        self._ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._changed = asyncio.Condition()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.rejected_tokens: set[str] = set()  # answered 401 Unauthorized, as Telegram answers a revoked token
        self.delivered: dict[int, float] = {}  # update_id → when getUpdates first handed it to the bot

    # --- server -----------------------------------------------------------------------------------
    async def start(self, port: int = 0) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._closing = True
        async with self._changed:
            self._changed.notify_all()  # wake pending long polls: aiohttp does not cancel them
        if self._runner is not None:
            await self._runner.cleanup()

    # --- what tests do ------------------------------------------------------------------------------
    def fail(self, method: str, times: int = 1, retry_after: int = 1, status: int = 429) -> None:
        """Answer the next `times` calls of `method` with 429 Too Many Requests (or `status`, e.g. 500)."""
        self._failures[method] = [(retry_after, status)] * times

    def add_file(self, data: bytes, file_size: int | None = None) -> dict:
        file_id = f"file{next(self._ids)}"
        self._files[file_id] = data
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": len(data) if file_size is None else file_size,
        }

    async def send(
        self,
        user_id: int,
        *,
        language_code: str = "en",
        edited: bool = False,
        message_id: int | None = None,
        at: float | None = None,
        **content: Any,
    ) -> int:
        """Push an update with a message from `user_id` carrying `content` (text=…, photo=[…], …); an edit
        of message `message_id` (a live location moving) at Unix time `at` when given."""
        sent_at = int(time.time() if at is None else at)
        message = {
            "message_id": next(self._message_ids) if message_id is None else message_id,
            "date": sent_at,
            "chat": {"id": user_id, "type": "private", "first_name": f"User{user_id}"},
            "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}", "language_code": language_code},
            **content,
        }
        if "text" in content and content["text"].startswith("/"):
            command = content["text"].split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if edited:
            message["edit_date"] = sent_at
        return await self._push({"edited_message" if edited else "message": message})

    async def send_photo(
        self,
        user_id: int,
        data: bytes,
        file_size: int | None = None,
        *,
        larger: list[tuple[bytes, int, int]] = (),
        **kw: Any,
    ) -> int:
        """A photo as Telegram offers it: a 90 px thumbnail (not decodable here, so using it shows),
        `data` at its own size, then any `larger` (data, width, height) versions."""
        width, height = _image_size(data)
        small = self.add_file(data[: max(1, len(data) // 10)])
        sizes = [small | {"width": 90, "height": 90 * height // width}]
        sizes.append(self.add_file(data, file_size) | {"width": width, "height": height})
        sizes += [self.add_file(more) | {"width": w, "height": h} for more, w, h in larger]
        return await self.send(user_id, photo=sizes, **kw)

    def downloaded(self) -> list[str]:
        """File ids whose bytes were fetched, oldest first."""
        return list(self._downloads)

    def file(self, file_id: str) -> bytes:
        return self._files[file_id]

    async def share_live_location(self, user_id: int, lat: float, lon: float, period: int = 900, **kw: Any) -> int:
        """A live location starts (returns its message id: its moves are edits of that message)."""
        message_id = next(self._message_ids)
        location = {"latitude": lat, "longitude": lon, "live_period": period}
        await self.send(user_id, message_id=message_id, location=location, **kw)
        return message_id

    async def move_live_location(
        self, user_id: int, message_id: int, lat: float, lon: float, *, period: int | None = 900, **kw: Any
    ) -> int:
        """The live location `message_id` moved; `period=None`: Telegram's last edit, which ends the sharing."""
        location = {"latitude": lat, "longitude": lon} | ({"live_period": period} if period is not None else {})
        return await self.send(user_id, edited=True, message_id=message_id, location=location, **kw)

    async def send_document(
        self, user_id: int, data: bytes, mime: str, name: str, file_size: int | None = None, **kw: Any
    ) -> int:
        file = self.add_file(data, file_size)
        return await self.send(user_id, document=file | {"mime_type": mime, "file_name": name}, **kw)

    async def press_button(self, user_id: int, data: str, message: Call, language_code: str | None = None) -> int:
        result = message.params["_result"]
        sender = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
        return await self._push(
            {
                "callback_query": {
                    "id": str(next(self._ids)),
                    "chat_instance": "ci",
                    "data": data,
                    "message": result,
                    "from": sender | ({"language_code": language_code} if language_code else {}),
                }
            }
        )

    def sent(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (chat_id is None or c.chat_id == chat_id)]

    def replies(self, chat_id: int) -> list[Call]:
        """Answers a user sees: messages, albums, photos and edits (not chat actions)."""
        kinds = {"sendMessage", "sendMediaGroup", "sendPhoto", "editMessageText", "sendVoice"}
        return [c for c in self.calls if c.method in kinds and c.chat_id == chat_id]

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 20.0) -> Any:
        async with self._changed:
            return await asyncio.wait_for(self._changed.wait_for(condition), timeout)

    async def wait_replies(self, chat_id: int, count: int = 1, timeout: float = 20.0) -> list[Call]:
        await self.wait_for(lambda: len(self.replies(chat_id)) >= count, timeout)
        return self.replies(chat_id)

    # --- internals ------------------------------------------------------------------------------------
    async def _push(self, update: dict) -> int:
        update_id = next(self._ids)
        async with self._changed:
            self._updates.append({"update_id": update_id, **update})
            self._changed.notify_all()
        return update_id

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] in self.rejected_tokens:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        params, files = await self._params(request)
        if method == "getUpdates":
            return _ok(await self._get_updates(params))
        pending_failures = self._failures.get(method)
        if pending_failures:
            retry_after, status = pending_failures.pop(0)
            await self._record(Call(f"{method}:{status}", params, files))
            if status != 429:
                return web.json_response(
                    {"ok": False, "error_code": status, "description": "Internal Server Error"}, status=status
                )
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {retry_after}",
                    "parameters": {"retry_after": retry_after},
                },
                status=429,
            )
        result = self._result(method, params, files)
        if isinstance(result, web.Response):
            return result
        params["_result"] = result
        await self._record(Call(method, params, files))
        return _ok(result)

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                elif key in JSON_FIELDS:
                    params[key] = json.loads(value)
                else:
                    params[key] = value
        return params, files

    async def _get_updates(self, params: dict[str, Any]) -> list[dict]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        async with self._changed:
            if offset:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self._updates or self._closing), timeout)
            except TimeoutError:
                pass
            now = time.monotonic()
            for update in self._updates:
                self.delivered.setdefault(update["update_id"], now)
            return list(self._updates)

    def _result(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if method == "getMe":
            return BOT_USER
        if method == "getFile":
            file_id = params["file_id"]
            if file_id in self.too_big:
                return web.json_response(
                    {"ok": False, "error_code": 400, "description": "Bad Request: file is too big"}, status=400
                )
            if file_id not in self._files:
                return web.json_response(
                    {"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"}, status=400
                )
            return {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "file_size": len(self._files[file_id]),
                "file_path": f"photos/{file_id}.jpg",
            }
        if (refused := _over_telegram_limits(method, params)) is not None:
            return web.json_response({"ok": False, "error_code": 400, "description": refused}, status=400)
        if method in {"sendMessage", "sendPhoto", "editMessageText"}:
            return self._message(params)
        if method == "sendVoice":
            return self._voice(params, files)
        if method == "sendMediaGroup":
            return [
                self._message(params)
                | {"photo": [{"file_id": item["media"], "file_unique_id": "x", "width": 1, "height": 1}]}
                for item in params["media"]
            ]
        return True

    def _voice(self, params: dict[str, Any], files: dict[str, bytes]) -> dict | web.Response:
        """sendVoice as Telegram answers it: an uploaded OGG/Opus file gets a file_id; a file_id is re-sent
        only if Telegram knows it ("wrong file identifier" otherwise)."""
        if "voice" in files:
            data = files["voice"]
            if not (data[:4] == b"OggS" and b"OpusHead" in data[:64]):
                return _bad_request("Bad Request: VOICE_MESSAGES_FORBIDDEN or not an OGG/Opus voice")
            file_id = f"voice{next(self._ids)}"
            self.voices[file_id] = data
        else:
            file_id = str(params.get("voice", ""))
            if file_id not in self.voices:
                return _bad_request("Bad Request: wrong file identifier/HTTP URL specified")
        voice = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "duration": 1,
            "mime_type": "audio/ogg",
            "file_size": len(self.voices[file_id]),
        }
        return self._message(params) | {"voice": voice}

    def _message(self, params: dict[str, Any]) -> dict:
        chat_id = int(params.get("chat_id", 0))
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": BOT_USER,
        }
        if "text" in params:
            message["text"] = params["text"]
        return message

    async def _download(self, request: web.Request) -> web.Response:
        file_id = request.match_info["path"].rsplit("/", 1)[-1].removesuffix(".jpg")
        if file_id not in self._files:
            raise web.HTTPNotFound()
        self._downloads.append(file_id)
        return web.Response(body=self._files[file_id])


# What Telegram refuses of the bot's self-description (Bot API: setMyDescription ≤ 512 characters,
# setMyShortDescription ≤ 120, a command's description 1–256, language_code two letters or none).
def _over_telegram_limits(method: str, params: dict[str, Any]) -> str | None:
    code = params.get("language_code")
    if method.startswith("setMy") and code is not None and not (len(code) == 2 and code.isalpha()):
        return "Bad Request: language_code is invalid"
    if method == "setMyDescription" and len(params.get("description", "")) > 512:
        return "Bad Request: description is too long"
    if method == "setMyShortDescription" and len(params.get("short_description", "")) > 120:
        return "Bad Request: short description is too long"
    if method == "setMyCommands" and any(not 1 <= len(c["description"]) <= 256 for c in params["commands"]):
        return "Bad Request: command description must be 1-256 characters"
    return None


def _image_size(data: bytes) -> tuple[int, int]:
    """The size Telegram would state; hostile test inputs that are not images get a camera-like one."""
    try:
        return Image.open(io.BytesIO(data)).size
    except (UnidentifiedImageError, OSError, ValueError):
        return 1280, 960


def _bad_request(description: str) -> web.Response:
    return web.json_response({"ok": False, "error_code": 400, "description": description}, status=400)


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})
