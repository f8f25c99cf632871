from pathlib import Path

import pytest

from core.settings import DEFAULT_IMAGE_MODEL, Settings, SettingsError


def test_defaults_without_any_variable(tmp_path: Path) -> None:
    settings = Settings.from_env({}, env_file=tmp_path / "missing.env")
    assert settings.telegram_bot_token is None
    assert settings.data_dir == Path("data") and settings.artifacts_dir == Path("artifacts")
    assert settings.image_model == DEFAULT_IMAGE_MODEL
    assert settings.admin_ids == frozenset()


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TELEGRAM_BOT_TOKEN=123:abc\nADMIN_IDS=1, 2\nDATA_DIR=/srv/data\n")
    settings = Settings.from_env({"DATA_DIR": "/other"}, env_file=env_file)
    assert settings.telegram_bot_token == "123:abc"
    assert settings.admin_ids == frozenset({1, 2})
    assert settings.data_dir == Path("/other")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ADMIN_IDS", "12,alice"),
        ("TELEGRAM_API_URL", "localhost:8081"),
        ("MATCH_THRESHOLD", "high"),
        ("MATCH_THRESHOLD", "3"),
        ("WORKERS", "0"),
        ("LOG_LEVEL", "loud"),
        ("ENCODER_BACKEND", "tensorflow"),
    ],
)
def test_invalid_value_names_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value}, env_file=None)


def test_missing_token_says_how_to_get_one() -> None:
    with pytest.raises(SettingsError, match="BotFather"):
        Settings().require_token()
    with pytest.raises(SettingsError, match="does not look like"):
        Settings(telegram_bot_token="nonsense").require_token()
    assert Settings(telegram_bot_token="42:XYZ").require_token() == "42:XYZ"


def test_env_example_lists_every_setting() -> None:
    example = (Path(__file__).parents[2] / ".env.example").read_text()
    for variable in (
        "TELEGRAM_BOT_TOKEN",
        "ADMIN_IDS",
        "DATA_DIR",
        "ARTIFACTS_DIR",
        "IMAGE_MODEL",
        "TEXT_MODEL",
        "TELEGRAM_API_URL",
        "TELEGRAM_FILE_URL",
        "MATCH_THRESHOLD",
        "WORKERS",
        "LOG_LEVEL",
        "ENCODER_BACKEND",
        "MODEL_DIR",
        "HEALTH_FILE",
        "BOT_STATE_FILE",
    ):
        assert f"{variable}=" in example, variable
