"""A real headless Chromium (Debian's, installed by scripts/chromium.sh), driven over the DevTools protocol
with aiohttp: pages are tested as people use them, with no extra Python package and no browser download."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

REPO = Path(__file__).parents[2]
# The flags a closed network needs: no background connections, no updates, no sync.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str:
    """The browser's path (Debian's chromium here, Chrome on CI runners), installed on first use by the
    project's own script, as the test command does."""
    if not any(shutil.which(name) for name in BROWSERS):
        subprocess.run([str(REPO / "scripts" / "chromium.sh"), "--version"], check=True, capture_output=True)
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    assert found, "no Chromium: scripts/chromium.sh installs Debian's"
    return found


class Page:
    """One tab: navigate, evaluate JavaScript, take a screenshot."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket, self._ids = socket, itertools.count(1)

    async def call(self, method: str, **params: object) -> dict:
        number = next(self._ids)
        await self._socket.send_str(json.dumps({"id": number, "method": method, "params": params}))
        async for message in self._socket:
            data = json.loads(message.data)
            if data.get("id") == number:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return data.get("result", {})
        raise RuntimeError(f"{method}: the browser closed the connection")

    async def evaluate(self, expression: str) -> object:
        result = await self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def open(self, url: str, ready: str = "document.readyState === 'complete'") -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_for(ready)

    async def wait_for(self, condition: str, timeout: float = 15.0) -> None:
        """Poll until the condition holds. While a navigation is under way the condition may throw (no body
        yet): that counts as not yet, and the last such error is named if the page never gets there."""
        deadline = asyncio.get_running_loop().time() + timeout
        failure = ""
        while True:
            try:
                if await self.evaluate(f"!!({condition})"):
                    return
            except RuntimeError as error:
                failure = f" (last: {error})"
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"the page never met: {condition}{failure}")
            await asyncio.sleep(0.1)

    async def screenshot(self, path: Path) -> None:
        import base64

        path.write_bytes(base64.b64decode((await self.call("Page.captureScreenshot", format="png"))["data"]))


@asynccontextmanager
async def browser_page(profile: Path, width: int = 1200, height: int = 800) -> AsyncIterator[Page]:
    """A headless Chromium with an empty profile and one page of width × height CSS pixels."""
    process = await asyncio.create_subprocess_exec(
        chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=os.environ | {"NO_PROXY": "*"},
    )  # fmt: skip
    try:
        endpoint = await _devtools_endpoint(process)
        async with aiohttp.ClientSession(trust_env=False) as session:
            async with session.get(f"http://{endpoint}/json/list") as response:
                target = next(t for t in await response.json() if t["type"] == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=64 * 2**20) as socket:
                page = Page(socket)
                await page.call("Page.enable")
                yield page
    finally:
        process.kill()
        await process.wait()


async def _devtools_endpoint(process: asyncio.subprocess.Process) -> str:
    """host:port from Chromium's "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/…" line."""
    assert process.stderr is not None
    async with asyncio.timeout(30):
        while line := await process.stderr.readline():
            if found := re.search(rb"DevTools listening on ws://([\d.:]+)/", line):
                return found.group(1).decode()
    raise RuntimeError("Chromium did not start its DevTools endpoint")
