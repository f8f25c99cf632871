"""A local aiohttp server on its own thread and event loop, for code under test that is synchronous (prep):
the fakes of Wikimedia (fake_wiki) and of the Hugging Face Hub (fake_hub) are such servers, each adding
its own routes."""

from __future__ import annotations

import asyncio
import threading
from typing import Self

from aiohttp import web


class ThreadedServer:
    def __init__(self) -> None:
        self.url = ""  # http://127.0.0.1:<port>, once started
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def routes(self, router: web.UrlDispatcher) -> None:
        """Add the server's routes (each fake its own)."""
        raise NotImplementedError

    def start(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        app = web.Application()
        self.routes(app.router)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
