"""The services handed to every handler through the Application (no module-level globals)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from telegram.ext import ContextTypes

from bot.reindex import Reindexer
from bot.settings import BotSettings
from bot.throttle import UserRateLimiter
from core import Guide

SERVICES_KEY = "services"
T = TypeVar("T")


@dataclass
class Services:
    settings: BotSettings
    guide: Guide
    pool: ThreadPoolExecutor
    limiter: UserRateLimiter
    reindexer: Reindexer
    heartbeat: asyncio.Task | None = None

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """CPU work (decode, encode, search) goes to the bounded worker pool, never the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.application.bot_data[SERVICES_KEY]
