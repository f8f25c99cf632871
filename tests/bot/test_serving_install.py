"""The serving install: `python -m bot` in `.venv-serve` (no torch, transformers, OpenCV, scikit-learn),
on an ONNX export, end to end against the fake Bot API; and the bot's fail-fast start (issue #15)."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.bot import REPO, TOKEN, bot_env, start_bot_process
from tests.helpers.datagen import jpeg_bytes, scene

SERVE_PYTHON = REPO / ".venv-serve" / "bin" / "python"
PREP_ONLY = ("torch", "transformers", "sentence_transformers", "cv2", "sklearn", "imagehash", "onnx")


@pytest.fixture(scope="session")
def serve_python() -> Path:
    """`.venv-serve`, made by `scripts/setup.sh serve` (scripts/test.sh does it first; cheap when done)."""
    result = subprocess.run(["scripts/setup.sh", "serve"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return SERVE_PYTHON


def test_the_serving_install_has_none_of_the_prep_packages(serve_python: Path) -> None:
    code = f"import importlib.util as u; print([m for m in {PREP_ONLY!r} if u.find_spec(m)])"
    result = subprocess.run([str(serve_python), "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


async def test_the_bot_serves_from_the_serving_install_on_onnx(
    serve_python, fake, built_dataset, model_dirs, onnx_dir, tmp_path
) -> None:
    dataset = built_dataset.copy_to(tmp_path)
    env = bot_env(fake, dataset, model_dirs, ENCODER_BACKEND="onnx", MODEL_DIR=str(onnx_dir), LOG_LEVEL="DEBUG")
    process = await start_bot_process(env, tmp_path, python=str(serve_python))
    try:
        await fake.wait_for(lambda: fake.sent("setMyCommands"), timeout=60)
        await fake.send_photo(61, jpeg_bytes(scene(0, 90)))
        card = (await fake.wait_replies(61, timeout=30))[0]
        assert card.text.startswith("This is most likely")
        # The spoken guide on the serving install: espeak-ng, soundfile's Opus, no torch.
        listen = next(b for row in card.params["reply_markup"]["inline_keyboard"] for b in row if b["text"][0] == "🔊")
        await fake.press_button(61, listen["callback_data"], card)
        voice = (await fake.wait_for(lambda: fake.sent("sendVoice", 61), timeout=30))[0]
        assert voice.files["voice"][:4] == b"OggS"
        await fake.send(62, text="белый собор у реки")
        await fake.wait_for(lambda: fake.sent("sendMediaGroup", 62), timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    log = stderr.decode()
    assert process.returncode == 0, log[-2000:]
    # DEBUG logs every request URL (httpx), and Telegram's URLs carry the token: it must be redacted.
    assert "getUpdates" in log and "***" in log
    # The int8 towers were checked against the export's reference on this CPU, in one line.
    assert re.search(r"int8 parity on this CPU \(.+\): image 0\.\d+, text 0\.\d+ \(≥ 0\.99\): ok", log), log[-2000:]
    assert TOKEN not in log and TOKEN.split(":")[1] not in log


async def test_the_serving_install_without_an_export_says_what_to_do(
    serve_python, fake, built_dataset, model_dirs, tmp_path
) -> None:
    env = bot_env(fake, built_dataset, model_dirs, MODEL_DIR=str(tmp_path / "no-export"))
    process = await start_bot_process(env, tmp_path, python=str(serve_python))
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    message = stderr.decode().strip()
    assert process.returncode == 2 and message.count("\n") == 0 and "export-onnx" in message


async def test_an_empty_data_dir_is_one_line_before_any_model_loads(fake, model_dirs, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    from tests.helpers.models import BuiltDataset

    nothing = BuiltDataset(tmp_path / "raw", tmp_path / "empty", tmp_path / "no-artifacts", {})
    env = bot_env(fake, nothing, model_dirs)
    started = time.monotonic()
    process = await start_bot_process(env, tmp_path)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    message = stderr.decode().strip()
    assert process.returncode == 2 and message.count("\n") == 0 and "nothing to serve" in message
    assert "loading models" not in message and time.monotonic() - started < 10
    assert not fake.sent("getMe")  # it never got as far as Telegram
