"""One typed settings object, read from the environment and an optional `.env` file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

DEFAULT_IMAGE_MODEL = "clip-ViT-B-32"
DEFAULT_TEXT_MODEL = "clip-ViT-B-32-multilingual-v1"
BACKENDS = ("auto", "torch", "onnx")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable and says how to fix it."""


@dataclass(frozen=True)
class Settings:
    telegram_bot_token: str | None = None
    admin_ids: frozenset[int] = field(default_factory=frozenset)
    data_dir: Path = Path("data")
    artifacts_dir: Path = Path("artifacts")
    image_model: str = DEFAULT_IMAGE_MODEL
    text_model: str = DEFAULT_TEXT_MODEL
    telegram_api_url: str | None = None
    telegram_file_url: str | None = None
    # Cosine similarity the best neighbour must reach for a photo to count as a known landmark.
    # 0.70 separates same-landmark CLIP ViT-B/32 photo pairs from unrelated ones; tune with `prep eval`.
    match_threshold: float = 0.70
    # Threads doing CPU work (decode, encode, search) in the bot; one per core on a small VPS.
    workers: int = 2
    log_level: str = "INFO"
    # torch (sentence-transformers), onnx (models exported by `prep export-onnx`), or auto: onnx when an
    # export of the configured models exists in MODEL_DIR, torch otherwise.
    encoder_backend: str = "auto"
    # Where `prep export-onnx` writes and the onnx backend reads; default: `onnx/` beside ARTIFACTS_DIR.
    model_dir: Path | None = None
    # The bot's per-user state (chosen language), kept across restarts; default: ARTIFACTS_DIR/bot_state.pickle.
    bot_state_file: Path | None = None
    # Touched by the running bot every 30 s; `python -m bot.health` (the Docker healthcheck) reads it.
    health_file: Path = Path(tempfile.gettempdir()) / "landmark-guide.alive"

    @property
    def onnx_dir(self) -> Path:
        return self.model_dir if self.model_dir is not None else self.artifacts_dir.resolve().parent / "onnx"

    @property
    def state_file(self) -> Path:
        return self.bot_state_file if self.bot_state_file is not None else self.artifacts_dir / "bot_state.pickle"

    @property
    def inference_threads(self) -> int:
        """Threads per inference: the worker threads share the cores."""
        return max(1, (os.cpu_count() or 1) // self.workers)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
        """Read settings: real environment variables win over the `.env` file."""
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)

        def text(name: str, default: str | None = None) -> str | None:
            value = values.get(name, "").strip()
            return value or default

        return cls(
            telegram_bot_token=text("TELEGRAM_BOT_TOKEN"),
            admin_ids=_parse_ids(values.get("ADMIN_IDS", "")),
            data_dir=Path(text("DATA_DIR", "data")),
            artifacts_dir=Path(text("ARTIFACTS_DIR", "artifacts")),
            image_model=text("IMAGE_MODEL", DEFAULT_IMAGE_MODEL),
            text_model=text("TEXT_MODEL", DEFAULT_TEXT_MODEL),
            telegram_api_url=_parse_url("TELEGRAM_API_URL", text("TELEGRAM_API_URL")),
            telegram_file_url=_parse_url("TELEGRAM_FILE_URL", text("TELEGRAM_FILE_URL")),
            match_threshold=_parse_float("MATCH_THRESHOLD", text("MATCH_THRESHOLD"), cls.match_threshold, -1, 1),
            workers=int(_parse_float("WORKERS", text("WORKERS"), cls.workers, 1, 64, integer=True)),
            log_level=_parse_level(text("LOG_LEVEL", "INFO")),
            encoder_backend=_parse_choice("ENCODER_BACKEND", text("ENCODER_BACKEND", "auto"), BACKENDS),
            model_dir=Path(text("MODEL_DIR")) if text("MODEL_DIR") else None,
            health_file=Path(text("HEALTH_FILE") or cls.health_file),
            bot_state_file=Path(text("BOT_STATE_FILE")) if text("BOT_STATE_FILE") else None,
        )

    def require_token(self) -> str:
        if not self.telegram_bot_token:
            raise SettingsError(
                "TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather in Telegram and put its token "
                "into .env as TELEGRAM_BOT_TOKEN=123456:ABC... (see .env.example)"
            )
        token = self.telegram_bot_token
        head, _, tail = token.partition(":")
        if not head.isdigit() or not tail:
            raise SettingsError("TELEGRAM_BOT_TOKEN does not look like a bot token (expected 123456:ABC...)")
        return token


def _parse_ids(raw: str) -> frozenset[int]:
    ids = set()
    for part in raw.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            ids.add(int(part))
        except ValueError:
            raise SettingsError(f"ADMIN_IDS must be comma-separated numeric Telegram user ids, got {part!r}") from None
    return frozenset(ids)


def _parse_url(name: str, raw: str | None) -> str | None:
    if raw is None:
        return None
    if not raw.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must start with http:// or https://, got {raw!r}")
    return raw.rstrip("/")


def _parse_float(
    name: str, raw: str | None, default: float, low: float, high: float, *, integer: bool = False
) -> float:
    if raw is None:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise SettingsError(f"{name} must be {kind} between {low} and {high}, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {raw!r}")
    return value


def _parse_choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    value = raw.lower()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


def _parse_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise SettingsError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return level
