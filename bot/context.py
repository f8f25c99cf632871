"""The typed context every handler gets: the services, the user's state and language, and two pools.

PTB builds one `GuideContext` per update (`ContextTypes(context=GuideContext, user_data=UserState)` in
`bot/app.py`), so a handler reads `context.services`, `context.state` and `context.lang` instead of
string keys. Blocking work never runs on the event loop: `services.compute` (decode, encode, search:
the CPU pool, WORKERS threads) and `services.io` (SQLite, files: a separate pool, so a store locked by a
backup delays only the answers that need it, never another user's /start).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from telegram import CallbackQuery, Message, Update
from telegram.ext import Application, CallbackContext, ExtBot

from bot.reindex import Reindexer
from bot.settings import BotSettings
from bot.state import SharedLocation, UserState
from bot.texts import LANGUAGES, Lang, language_for
from bot.throttle import UserRateLimiter
from bot.voice_ids import VoiceFileIds
from core import ContributionStore, Guide, Narrator, PhotoLocation

SERVICES_KEY = "services"
# Threads for blocking I/O (the contribution store, photo files): small, and apart from the CPU pool.
IO_THREADS = 4
T = TypeVar("T")


@dataclass
class Services:
    """What the handlers use, built once in `bot/app.py` (no module-level globals)."""

    settings: BotSettings
    guide: Guide
    pool: ThreadPoolExecutor
    limiter: UserRateLimiter
    reindexer: Reindexer
    store: ContributionStore
    narrator: Narrator
    voice_ids: VoiceFileIds
    io_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="io")
    )
    heartbeat: asyncio.Task[None] | None = None

    async def compute(self, function: Callable[..., T], *args: object) -> T:
        """CPU work (decode, encode, search) in the bounded worker pool."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)

    async def io(self, function: Callable[..., T], *args: object) -> T:
        """Blocking I/O (the store, files) in its own pool."""
        return await asyncio.get_running_loop().run_in_executor(self.io_pool, function, *args)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.io_pool.shutdown(wait=False, cancel_futures=True)


GuideApplication = Application[Any, "GuideContext", UserState, dict, dict, Any]


class GuideContext(CallbackContext[ExtBot[None], UserState, dict, dict]):
    """The context of one update: typed access to the services and to the sender's state."""

    def __init__(self, application: GuideApplication, chat_id: int | None = None, user_id: int | None = None):
        super().__init__(application, chat_id=chat_id, user_id=user_id)
        self.client_language: str | None = None

    @classmethod
    def from_update(cls, update: object, application: Any) -> GuideContext:
        context = super().from_update(update, application)
        if isinstance(update, Update) and update.effective_user is not None:
            context.client_language = update.effective_user.language_code
        return context

    @property
    def services(self) -> Services:
        services: Services = self.application.bot_data[SERVICES_KEY]
        return services

    @property
    def state(self) -> UserState:
        """The sender's state; an update without a user (a channel post) gets a throwaway one."""
        return self.user_data if self.user_data is not None else UserState()

    @property
    def lang(self) -> Lang:
        """The language chosen with /lang, else the closest to the Telegram client's."""
        chosen = self.state.lang
        if chosen in LANGUAGES:
            return chosen
        return language_for(self.client_language)

    def recent_location(self) -> PhotoLocation | None:
        """The user's last shared location, while it is fresh (LOCATION_TTL)."""
        stored = self.state.location
        if stored is None or time.time() - stored.at > self.services.settings.location_ttl_hours * 3600:
            return None
        return PhotoLocation(stored.lat, stored.lon, "shared")

    def remember_location(self, lat: float, lon: float) -> bool:
        """Keep a shared point for the next photos; False (nothing kept) for a point that is not on Earth."""
        checked = SharedLocation.checked(lat, lon, time.time())
        if checked is not None:
            self.state.location = checked
        return checked is not None


def incoming(update: Update) -> Message:
    """The message a message handler was registered for (its filter guarantees one)."""
    if update.effective_message is None:
        raise ValueError("an update without a message reached a message handler")
    return update.effective_message


def pressed(update: Update) -> CallbackQuery:
    """The button press a callback handler was registered for."""
    if update.callback_query is None:
        raise ValueError("an update without a callback query reached a callback handler")
    return update.callback_query
