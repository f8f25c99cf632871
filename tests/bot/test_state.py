"""The bot's state file: versioned, migrated forward, written atomically, read tolerantly."""

from __future__ import annotations

import asyncio
import json
import pickle
from pathlib import Path

import pytest
from telegram.ext import PersistenceInput, PicklePersistence

from bot.state import STATE_VERSION, SharedLocation, StateFile, UserState, load_state, parse_state, render_state


def _old_pickle_file(path: Path, user_data: dict) -> None:
    """A state file exactly as versions up to 0.1 wrote it: PTB's own PicklePersistence."""

    async def write() -> None:
        persistence = PicklePersistence(
            path, store_data=PersistenceInput(bot_data=False, chat_data=False, user_data=True, callback_data=False)
        )
        for user_id, data in user_data.items():
            await persistence.update_user_data(user_id, data)
        await persistence.flush()

    asyncio.run(write())


def test_the_pickle_format_of_earlier_versions_is_migrated(tmp_path: Path) -> None:
    legacy = tmp_path / "bot_state.pickle"
    _old_pickle_file(legacy, {7: {"lang": "en", "location": {"lat": 56.8, "lon": 60.6, "at": 1.0e9}}, 8: {}})
    assert legacy.read_bytes()[:1] == b"\x80"
    users = load_state(tmp_path / "bot_state.json", legacy=legacy)
    assert users[7] == UserState("en", SharedLocation(56.8, 60.6, 1.0e9))
    saved = json.loads((tmp_path / "bot_state.json").read_text())
    assert saved["version"] == STATE_VERSION and saved["users"]["7"]["lang"] == "en"
    assert not legacy.exists() and (tmp_path / "bot_state.pickle.migrated").is_file()


@pytest.mark.parametrize(
    "content",
    [b"", b"\x80\x04\x95", b'{"version": 1, "users": {"1": {"lang": "e', b"\xff\xfe garbage", b"[]", b'{"users": {}}'],
    ids=["empty", "truncated-pickle", "truncated-json", "not-utf8", "wrong-shape", "no-version"],
)
def test_a_damaged_state_file_is_set_aside_and_the_bot_starts_without_it(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "bot_state.json"
    path.write_bytes(content)
    assert load_state(path) == {}
    aside = list(tmp_path.glob("bot_state.json.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == content and not path.exists()
    assert "damaged" in caplog.text


def test_wrong_values_inside_are_dropped_not_trusted() -> None:
    raw = {"version": 1, "users": {"1": {"lang": 5, "location": {"lat": 91, "lon": 0, "at": 1}}, "x": {}, "2": []}}
    users = parse_state(json.dumps(raw).encode())
    assert users == {1: UserState(), 2: UserState()}
    assert json.loads(render_state(users))["users"] == {}  # empty states are not written


@pytest.mark.parametrize(
    "lat, lon", [(91, 0), (0, 181), (float("nan"), 0), (0, float("inf")), (123, 500), (-90.5, 10)]
)
def test_a_point_off_the_earth_is_not_a_location(lat: float, lon: float) -> None:
    assert SharedLocation.checked(lat, lon, 1.0) is None
    assert SharedLocation.checked(-90, 180, 1.0) is not None


async def test_changes_are_written_atomically_and_a_drop_at_once(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    persistence = StateFile(path)
    assert await persistence.get_user_data() == {}
    await asyncio.gather(*(persistence.update_user_data(i, UserState(lang="en")) for i in range(50)))
    assert len(json.loads(path.read_text())["users"]) == 50
    await persistence.drop_user_data(3)
    assert "3" not in json.loads(path.read_text())["users"]
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left behind
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # locations are personal data


def test_a_pickle_with_foreign_classes_is_refused_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "bot_state.json"
    path.write_bytes(pickle.dumps({"user_data": {1: Path("/etc/passwd")}}))
    assert load_state(path) == {}
    assert list(tmp_path.glob("*.damaged-*"))
