"""`python -m bot` as a VPS runs it: it waits out a Telegram outage at start, a rejected token is one line
and exit 2, and the token appears in no byte the process writes."""

from __future__ import annotations

import asyncio
import signal
import socket
from urllib.parse import quote

import pytest

from tests.helpers.bot import TOKEN, bot_env, start_bot_process
from tests.helpers.datagen import jpeg_bytes, scene
from tests.helpers.fake_telegram import FakeTelegram

pytestmark = pytest.mark.slow  # processes against the fake Bot API


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _assert_no_secret(output: bytes) -> None:
    for form in (TOKEN, quote(TOKEN, safe=""), TOKEN.split(":")[1]):
        assert form.encode() not in output, f"the token ({form[:6]}…) was written"


async def _lines(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode(errors="replace"))


async def test_telegram_unreachable_at_start_is_waited_out_without_a_traceback(
    built_dataset, model_dirs, tmp_path
) -> None:
    port = _free_port()
    fake = FakeTelegram()
    fake.url = f"http://127.0.0.1:{port}"  # nothing listens there yet: a network blip at boot
    dataset = built_dataset.copy_to(tmp_path)
    process = await start_bot_process(bot_env(fake, dataset, model_dirs), tmp_path)
    lines: list[str] = []
    reader = asyncio.create_task(_lines(process.stderr, lines))
    try:
        for _ in range(300):
            if sum("Telegram is unreachable" in line for line in lines) >= 2:
                break
            await asyncio.sleep(0.1)
        assert sum("Telegram is unreachable" in line for line in lines) >= 2, "".join(lines)[-2000:]
        assert process.returncode is None  # still running, not given up
        await fake.start(port)  # Telegram is back
        await fake.wait_for(lambda: fake.sent("setMyCommands"), timeout=60)
        await fake.send_photo(61, jpeg_bytes(scene(0, 90)))
        assert (await fake.wait_replies(61, timeout=30))[0].text.startswith("This is most likely")
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)
        await reader
        await fake.stop()
    log = "".join(lines)
    assert process.returncode == 0, log[-2000:]
    assert "Traceback" not in log
    retries = [line for line in lines if "Telegram is unreachable" in line]
    assert all(line.count("\n") == 1 for line in retries) and "retrying in 1 s" in retries[0]
    _assert_no_secret(log.encode())


async def test_a_rejected_token_is_one_line_and_exit_2(fake, built_dataset, model_dirs, tmp_path) -> None:
    fake.rejected_tokens.add(TOKEN)
    process = await start_bot_process(bot_env(fake, built_dataset, model_dirs), tmp_path)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 2, stderr.decode()[-2000:]
    errors = [line for line in stderr.decode().splitlines() if " ERROR " in line or "Traceback" in line]
    assert len(errors) == 1 and "rejected TELEGRAM_BOT_TOKEN" in errors[0] and "BotFather" in errors[0]
    _assert_no_secret(stdout + stderr)


@pytest.mark.parametrize("content", [b"this is not a database" * 200, b"SQLite format 3\x00" + b"\xff" * 4000])
async def test_a_damaged_contribution_store_is_one_line_and_exit_2_before_any_model_loads(
    fake, built_dataset, model_dirs, tmp_path, content
) -> None:
    """Under `restart: unless-stopped` a traceback after the model load would be a crash loop (issue #31, row 2).
    The store is refused, not set aside: it holds tourists' feedback that a backup or `.recover` may save."""
    store = tmp_path / "contrib" / "contributions.sqlite"
    store.parent.mkdir()
    store.write_bytes(content)
    env = bot_env(fake, built_dataset, model_dirs, CONTRIB_DIR=str(store.parent))
    process = await start_bot_process(env, tmp_path)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2, stderr.decode()[-2000:]
    lines = stderr.decode().splitlines()
    assert len(lines) == 1 and "contributions.sqlite" in lines[0] and "backup" in lines[0], lines
    assert store.read_bytes() == content and [p.name for p in store.parent.iterdir()] == [store.name]


async def test_telegram_unreachable_while_the_bot_stops_is_one_line_per_failure(
    fake, built_dataset, model_dirs, tmp_path
) -> None:
    """PTB's updater logged a 60-line traceback when its last getUpdates failed at shutdown (issue #31)."""
    process = await start_bot_process(bot_env(fake, built_dataset, model_dirs), tmp_path)
    lines: list[str] = []
    reader = asyncio.create_task(_lines(process.stderr, lines))
    try:
        for _ in range(600):
            if any("ready" in line for line in lines):
                break
            await asyncio.sleep(0.1)
        assert any("ready" in line for line in lines), "".join(lines)[-2000:]
        await fake.stop()  # Telegram goes away; the bot notices while polling and at its last getUpdates
        await asyncio.sleep(2)
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)
        await reader
    log = "".join(lines)
    assert process.returncode == 0, log[-2000:]
    assert "Traceback" not in log and all(line[:4].isdigit() for line in lines), log[-3000:]
    assert any("get_updates" in line or "polling Telegram failed" in line for line in lines), log[-2000:]
