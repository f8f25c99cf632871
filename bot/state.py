"""The bot's per-user state and the one file that keeps it across restarts (BOT_STATE_FILE).

Format (JSON, written atomically by `core.files.write_atomically`):

    {"version": 1, "users": {"<user id>": {"lang": "en", "location": {"lat": …, "lon": …, "at": …},
                                            "consent_asked": true,
                                            "live": {"message_id": …, "until": …, "seen": ["<xid>", …],
                                                     "last": [lat, lon, time]}}}}

- Versioned: an older file is migrated forward when read (`MIGRATIONS`), including the pickle file that
  versions up to 0.1 wrote with PTB's PicklePersistence.
- Tolerant: a truncated, empty or otherwise damaged file is set aside (`<file>.damaged-<time>`), said in one
  WARNING line, and the bot starts with no saved state rather than not at all.
- Prompt: every change is on disk within PTB's update interval; a user's /forget is on disk before the bot
  says it is done (`StateFile.drop_user_data` writes at once).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telegram.ext import BasePersistence, PersistenceInput

from core import set_aside, write_atomically

log = logging.getLogger(__name__)

STATE_VERSION = 1
# Seconds between PTB's writes of changed state (a /forget is written at once regardless).
UPDATE_INTERVAL_S = 60.0


@dataclass(frozen=True)
class SharedLocation:
    """A location the user shared, valid for LOCATION_TTL from `at` (Unix time)."""

    lat: float
    lon: float
    at: float

    @classmethod
    def checked(cls, lat: float, lon: float, at: float) -> SharedLocation | None:
        """None for a point that is not on Earth (NaN, ±inf, |lat| > 90, |lon| > 180)."""
        if not all(math.isfinite(v) for v in (lat, lon, at)) or abs(lat) > 90 or abs(lon) > 180:
            return None
        return cls(float(lat), float(lon), float(at))


@dataclass(frozen=True)
class LiveSharing:
    """A live location the bot follows: Telegram's message that carries it, until when, the sights whose
    card was sent during it (each once), the last point taken and the last one taken for a GPS jump (a
    second point near a jump confirms it: the tourist did travel)."""

    message_id: int
    until: float  # Unix time the sharing expires
    seen: tuple[str, ...] = ()
    last: tuple[float, float, float] | None = None  # lat, lon, Unix time
    suspect: tuple[float, float, float] | None = None  # not kept across restarts

    def to_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "until": self.until, "seen": list(self.seen), "last": self.last}

    @classmethod
    def from_dict(cls, raw: object) -> LiveSharing | None:
        if not isinstance(raw, dict):
            return None
        try:
            last = raw.get("last")
            point = tuple(float(v) for v in last) if isinstance(last, list) and len(last) == 3 else None
            seen = tuple(str(x) for x in raw.get("seen", ()) if isinstance(x, str))
            return cls(int(raw["message_id"]), float(raw["until"]), seen, point)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class UserState:
    """What the bot keeps about one user between messages (PTB's user_data). /forget drops all of it."""

    lang: str | None = None  # chosen with /lang; None: from the Telegram client's language
    location: SharedLocation | None = None
    # The photo-consent question was asked (once per user, not after every photo until answered).
    consent_asked: bool = False
    live: LiveSharing | None = None  # the live location being followed
    # /walk asked for a location: the next one shared is answered with a walk (not kept across restarts).
    wants_walk: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.lang is not None:
            data["lang"] = self.lang
        if self.consent_asked:
            data["consent_asked"] = True
        if self.location is not None:
            data["location"] = {"lat": self.location.lat, "lon": self.location.lon, "at": self.location.at}
        if self.live is not None:
            data["live"] = self.live.to_dict()
        return data

    @classmethod
    def from_dict(cls, raw: object) -> UserState:
        """Whatever a file holds: unknown keys and wrong shapes are dropped, never trusted."""
        if not isinstance(raw, dict):
            return cls()
        lang = raw.get("lang") if isinstance(raw.get("lang"), str) else None
        place = raw.get("location")
        location = None
        if isinstance(place, dict):
            try:
                location = SharedLocation.checked(float(place["lat"]), float(place["lon"]), float(place["at"]))
            except (KeyError, TypeError, ValueError):
                location = None
        live = LiveSharing.from_dict(raw.get("live"))
        return cls(lang=lang, location=location, consent_asked=raw.get("consent_asked") is True, live=live)

    @property
    def empty(self) -> bool:
        return self.lang is None and self.location is None and not self.consent_asked and self.live is None


class DamagedStateError(ValueError):
    """The state file cannot be read as any version of the format."""


def _from_v0_pickle(raw: bytes) -> dict[str, Any]:
    """Up to 0.1: PTB's PicklePersistence, {"user_data": {id: {"lang": …, "location": {…}}}, …}."""

    class _NoBot(pickle.Unpickler):
        def persistent_load(self, pid: object) -> None:  # PTB stores the Bot object as a persistent id
            return None

        def find_class(self, module: str, name: str) -> Any:
            if module in ("builtins", "collections") and name in ("dict", "list", "set", "defaultdict", "tuple"):
                return super().find_class(module, name)
            raise pickle.UnpicklingError(f"{module}.{name} is not part of the old state format")

    data = _NoBot(io.BytesIO(raw)).load()
    users = data.get("user_data") if isinstance(data, dict) else None
    return {"version": 1, "users": {str(k): v for k, v in users.items()} if isinstance(users, dict) else {}}


# version found → function returning the next version's document
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def parse_state(raw: bytes) -> dict[int, UserState]:
    """The users in a state file's bytes, whatever version wrote them; DamagedStateError if none did."""
    if raw[:1] == b"\x80":  # a pickle: the format before version 1
        try:
            document = _from_v0_pickle(raw)
        except Exception as exc:  # any unpickling failure means a damaged old file
            raise DamagedStateError(f"an old (pickle) state file that does not load: {exc}") from None
    else:
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise DamagedStateError(f"not JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("version"), int):
        raise DamagedStateError("no format version")
    version = document["version"]
    while version < STATE_VERSION:
        document = MIGRATIONS[version](document)
        version = document["version"]
    if version > STATE_VERSION:
        raise DamagedStateError(f"written by a newer version of the bot (format {version} > {STATE_VERSION})")
    users = document.get("users")
    if not isinstance(users, dict):
        raise DamagedStateError("no users")
    out = {}
    for key, value in users.items():
        if str(key).lstrip("-").isdigit():
            out[int(key)] = UserState.from_dict(value)
    return out


def render_state(users: dict[int, UserState]) -> bytes:
    document = {"version": STATE_VERSION, "users": {str(k): v.to_dict() for k, v in users.items() if not v.empty}}
    return json.dumps(document, ensure_ascii=False, sort_keys=True).encode("utf-8")


def load_state(path: Path, legacy: Path | None = None) -> dict[int, UserState]:
    """The saved users, or none: a damaged file is set aside with one warning (never a failed start).
    Without `path`, an old-format `legacy` file is migrated: written as `path`, then renamed `*.migrated`."""
    if not path.exists() and legacy is not None and legacy.is_file() and legacy != path:
        users = load_state(legacy)
        write_atomically(path, render_state(users), 0o600)
        legacy.replace(legacy.with_name(legacy.name + ".migrated"))
        log.info("bot state migrated from %s to %s (format %d)", legacy, path, STATE_VERSION)
        return users
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        return parse_state(raw)
    except DamagedStateError as exc:
        moved = set_aside(path)
        log.warning("the bot's state file %s is damaged (%s): moved to %s; starting without it", path, exc, moved)
        return {}


class StateFile(BasePersistence[UserState, dict, dict]):
    """PTB persistence for user data only, in the versioned JSON file above."""

    def __init__(self, path: Path, update_interval: float = UPDATE_INTERVAL_S, legacy: Path | None = None) -> None:
        super().__init__(
            store_data=PersistenceInput(bot_data=False, chat_data=False, user_data=True, callback_data=False),
            update_interval=update_interval,
        )
        self.path, self.legacy = path, legacy
        self._users: dict[int, UserState] | None = None
        self._write_lock = asyncio.Lock()
        self._dirty = False

    async def get_user_data(self) -> dict[int, UserState]:
        if self._users is None:
            self._users = await asyncio.to_thread(load_state, self.path, self.legacy)
            log.info("bot state: %d users from %s (format %d)", len(self._users), self.path, STATE_VERSION)
        return {k: UserState(v.lang, v.location, v.consent_asked, v.live) for k, v in self._users.items()}

    async def update_user_data(self, user_id: int, data: UserState) -> None:
        users = self._users if self._users is not None else {}
        users[user_id] = data
        self._users = users
        await self._changed()

    async def drop_user_data(self, user_id: int) -> None:
        if self._users is not None and self._users.pop(user_id, None) is not None:
            await self._changed()

    async def _changed(self) -> None:
        self._dirty = True
        await self.flush()

    async def flush(self) -> None:
        """Write what changed (off the event loop); concurrent changes coalesce into the next write."""
        async with self._write_lock:
            if not self._dirty or self._users is None:
                return
            self._dirty = False
            data = render_state(self._users)
            try:
                await asyncio.to_thread(write_atomically, self.path, data, 0o600)
            except OSError:
                self._dirty = True
                raise

    async def refresh_user_data(self, user_id: int, user_data: UserState) -> None:
        return None

    # Nothing else is persisted (store_data says so); PTB still requires the methods.
    async def get_chat_data(self) -> dict[int, dict]:
        return {}

    async def get_bot_data(self) -> dict:
        return {}

    async def get_callback_data(self) -> None:
        return None

    async def get_conversations(self, name: str) -> dict:
        return {}

    async def update_conversation(self, name: str, key: Any, new_state: object | None) -> None:
        return None

    async def update_chat_data(self, chat_id: int, data: dict) -> None:
        return None

    async def update_bot_data(self, data: dict) -> None:
        return None

    async def update_callback_data(self, data: Any) -> None:
        return None

    async def drop_chat_data(self, chat_id: int) -> None:
        return None

    async def refresh_chat_data(self, chat_id: int, chat_data: dict) -> None:
        return None

    async def refresh_bot_data(self, bot_data: dict) -> None:
        return None
