import re
from pathlib import Path

import pytest

from bot.settings import BotSettings
from core.settings import DEFAULT_IMAGE_MODEL, Settings, SettingsError, _cgroup_cpu_quota, environment


def test_defaults_without_any_variable(tmp_path: Path) -> None:
    settings = BotSettings.from_env({}, env_file=tmp_path / "missing.env")
    assert settings.telegram_bot_token is None
    assert settings.core.data_dir == Path("data") and settings.core.artifacts_dir == Path("artifacts")
    assert settings.core.image_model == DEFAULT_IMAGE_MODEL
    assert settings.admin_ids == frozenset()


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TELEGRAM_BOT_TOKEN=123:abc\nADMIN_IDS=1, 2\nDATA_DIR=/srv/data\n")
    settings = BotSettings.from_env({"DATA_DIR": "/other"}, env_file=env_file)
    assert settings.telegram_bot_token == "123:abc"
    assert settings.admin_ids == frozenset({1, 2})
    assert settings.core.data_dir == Path("/other")


def test_env_file_exports_third_party_variables_without_overriding(tmp_path: Path, monkeypatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("HF_HOME=/srv/hf\nOMP_NUM_THREADS=7\nDATA_DIR=/from-file\n")
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("DATA_DIR", "/from-env")
    values = environment(env_file)
    import os

    assert os.environ["HF_HOME"] == "/srv/hf" and os.environ["OMP_NUM_THREADS"] == "1"
    assert Settings.from_env(env_file=env_file).data_dir == Path("/from-env")
    assert values["HF_HOME"] == "/srv/hf"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ADMIN_IDS", "12,alice"),
        ("TELEGRAM_API_URL", "localhost:8081"),
        ("MATCH_THRESHOLD", "high"),
        ("MATCH_THRESHOLD", "3"),
        ("MATCH_PRECISION", "1.5"),
        ("TEXT_MATCH_THRESHOLD", "x"),
        ("WORKERS", "0"),
        ("WORKERS", "1.5"),
        ("LOG_LEVEL", "loud"),
        ("ENCODER_BACKEND", "tensorflow"),
    ],
)
def test_invalid_value_names_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        BotSettings.from_env({variable: value}, env_file=None)


def test_thresholds_are_calibrated_unless_set_by_hand(tmp_path: Path) -> None:
    example = Settings.from_env({}, env_file=Path(__file__).parents[2] / ".env.example")
    assert example.match_threshold is None and example.text_match_threshold is None  # empty: calibrated
    assert example.ranking_params().match_precision == 0.9
    manual = Settings.from_env({"MATCH_THRESHOLD": "0.8", "TEXT_MATCH_THRESHOLD": "0.25"}, env_file=None)
    assert manual.ranking_params().match_precision is None and manual.ranking_params().match_threshold == 0.8
    assert manual.text_match_threshold == 0.25
    assert Settings.from_env({"MATCH_PRECISION": "0.75"}, env_file=None).ranking_params().match_precision == 0.75


def test_core_settings_hold_only_what_core_uses() -> None:
    fields = set(Settings.__dataclass_fields__)
    assert not fields & {"telegram_bot_token", "admin_ids", "workers", "health_file", "bot_state_file"}
    assert Settings.from_env({"TELEGRAM_BOT_TOKEN": "1:x"}, env_file=None) == Settings()


def test_missing_token_says_how_to_get_one() -> None:
    with pytest.raises(SettingsError, match="BotFather"):
        BotSettings().require_token()
    with pytest.raises(SettingsError, match="does not look like"):
        BotSettings(telegram_bot_token="nonsense").require_token()
    assert BotSettings(telegram_bot_token="42:XYZ").require_token() == "42:XYZ"


def test_cpu_quota_of_a_container_is_read(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert _cgroup_cpu_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert _cgroup_cpu_quota(tmp_path) is None
    assert _cgroup_cpu_quota(tmp_path / "absent") is None


def test_env_example_lists_every_setting() -> None:
    """Every variable the code reads (`env.<kind>("NAME"…)` in any package) is explained in .env.example."""
    repo = Path(__file__).parents[2]
    example = (repo / ".env.example").read_text()
    code = "".join(path.read_text() for package in ("core", "bot", "prep") for path in (repo / package).rglob("*.py"))
    read = set(re.findall(r'\benv\.[a-z_]+\(\s*"([A-Z][A-Z0-9_]+)"', code))
    assert {"TELEGRAM_BOT_TOKEN", "DATA_DIR", "VOICES_DIR", "TRIGGER_RADIUS_M"} <= read  # the pattern finds them
    assert [variable for variable in sorted(read) if f"\n{variable}=" not in example] == []
