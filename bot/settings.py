"""The bot's settings: core's, plus what only the Telegram side needs (token, admins, workers, files)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from bot.health import DEFAULT_HEALTH_FILE
from core import ENV_FILE, RENDER_DEADLINE_S, EnvReader, Settings, SettingsError, environment, usable_cpus

# Photos/queries worked on at once; they share the cores (one per core on a small VPS).
DEFAULT_WORKERS = 2
MAX_WORKERS = 64
# Contribution store caps: megabytes of kept photos, photos kept per user and day.
DEFAULT_CONTRIB_MAX_MB = 2048
DEFAULT_CONTRIB_PER_USER_DAY = 30
# Hours a shared location is applied to the user's next photos.
DEFAULT_LOCATION_TTL_HOURS = 3.0
STATE_FILE_NAME = "bot_state.json"
# Where versions up to 0.1 kept it (PTB pickle): read once and migrated to STATE_FILE_NAME.
LEGACY_STATE_FILE_NAME = "bot_state.pickle"
# A live location this close to a sight (metres) brings its card.
DEFAULT_TRIGGER_RADIUS_M = 60.0


@dataclass(frozen=True)
class BotSettings:
    core: Settings = field(default_factory=Settings)
    telegram_bot_token: str | None = None
    admin_ids: frozenset[int] = frozenset()
    telegram_api_url: str | None = None
    telegram_file_url: str | None = None
    workers: int = DEFAULT_WORKERS
    # Touched by the running bot every 30 s; `python -m bot.health` (the Docker healthcheck) reads it.
    health_file: Path = DEFAULT_HEALTH_FILE
    # The bot's per-user state (chosen language, last location), kept across restarts;
    # default: ARTIFACTS_DIR/bot_state.json (bot/state.py owns the format).
    bot_state_file: Path | None = None
    location_ttl_hours: float = DEFAULT_LOCATION_TTL_HOURS
    contrib_max_mb: int = DEFAULT_CONTRIB_MAX_MB
    contrib_per_user_day: int = DEFAULT_CONTRIB_PER_USER_DAY
    # The memory the bot may use, checked against the models' expected peak before they load;
    # default: the container's limit as its cgroup says (compose's mem_limit), none on a bare host.
    memory_limit_mb: int | None = None
    # A live location this close to a sight with photos brings its card (once per sight per sharing).
    trigger_radius_m: float = DEFAULT_TRIGGER_RADIUS_M
    # Seconds one voice message may take to render before the tourist is told it is unavailable.
    tts_deadline_s: float = RENDER_DEADLINE_S

    def __post_init__(self) -> None:
        # Each worker's inference gets its share of the usable cores (set once, here).
        if self.core.inference_threads is None:
            threads = max(1, usable_cpus() // self.workers)
            object.__setattr__(self, "core", replace(self.core, inference_threads=threads))

    @property
    def state_file(self) -> Path:
        return self.bot_state_file if self.bot_state_file is not None else self.core.artifacts_dir / STATE_FILE_NAME

    @property
    def legacy_state_file(self) -> Path:
        """The pickle file of versions up to 0.1, migrated when the state file does not exist yet."""
        return self.state_file.with_name(LEGACY_STATE_FILE_NAME)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ENV_FILE) -> BotSettings:
        env = EnvReader(environment(env_file, environ))
        return cls(
            core=Settings.from_reader(env),
            telegram_bot_token=env.text("TELEGRAM_BOT_TOKEN"),
            admin_ids=_parse_ids(env.text("ADMIN_IDS", "") or ""),
            telegram_api_url=env.url("TELEGRAM_API_URL"),
            telegram_file_url=env.url("TELEGRAM_FILE_URL"),
            workers=env.whole("WORKERS", DEFAULT_WORKERS, 1, MAX_WORKERS),
            health_file=env.path("HEALTH_FILE", DEFAULT_HEALTH_FILE),
            bot_state_file=env.path("BOT_STATE_FILE"),
            location_ttl_hours=env.number("LOCATION_TTL", DEFAULT_LOCATION_TTL_HOURS, 0, 24 * 30),
            contrib_max_mb=env.whole("CONTRIB_MAX_MB", DEFAULT_CONTRIB_MAX_MB, 0, 10**7),
            contrib_per_user_day=env.whole("CONTRIB_PER_USER_DAY", DEFAULT_CONTRIB_PER_USER_DAY, 0, 10**6),
            memory_limit_mb=env.whole("MEMORY_LIMIT_MB", 0, 0, 10**7) or None,
            trigger_radius_m=env.number("TRIGGER_RADIUS_M", DEFAULT_TRIGGER_RADIUS_M, 5, 5000),
            tts_deadline_s=env.number("TTS_DEADLINE", RENDER_DEADLINE_S, 0.5, 120),
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
