"""The services handed to every handler through the Application (no module-level globals)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from telegram import Update
from telegram.ext import ContextTypes

from bot.reindex import Reindexer
from bot.settings import BotSettings
from bot.texts import LANGUAGES, Lang, language_for
from bot.throttle import UserRateLimiter
from core import Guide
from core.contributions import ContributionStore

SERVICES_KEY = "services"
LANG_KEY = "lang"  # user_data: the language the user chose with /lang
T = TypeVar("T")


@dataclass
class Services:
    settings: BotSettings
    guide: Guide
    pool: ThreadPoolExecutor
    limiter: UserRateLimiter
    reindexer: Reindexer
    store: ContributionStore
    heartbeat: asyncio.Task | None = None

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """CPU work (decode, encode, search) goes to the bounded worker pool, never the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.application.bot_data[SERVICES_KEY]


def user_lang(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Lang:
    chosen = context.user_data.get(LANG_KEY) if context.user_data is not None else None
    if chosen in LANGUAGES:
        return chosen
    user = update.effective_user
    return language_for(user.language_code if user else None)
