"""Core's settings (dataset, index, models, runtime), read from the environment and `.env`.

The bot composes these with its own (token, admins, workers…) in `bot/settings.py`; every
variable is read by `EnvReader`, so an invalid value always fails with one line naming it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from dotenv import dotenv_values, load_dotenv

from core.calibration import DEFAULT_MATCH_PRECISION
from core.errors import GuideError
from core.ranking import RankingParams

# The location prior's reach (core.recognition), defined here with the other defaults.
DEFAULT_LOCATION_MAX_KM = 10.0

DEFAULT_IMAGE_MODEL = "clip-ViT-B-32"
DEFAULT_TEXT_MODEL = "clip-ViT-B-32-multilingual-v1"
# The place tower (issue #34): DINOv2 ViT-S/14, Apache-2.0, 21 M parameters — on published photo → photo
# benchmarks it tells buildings apart far better than CLIP B/32 (docs/benchmarks.md).
DEFAULT_PLACE_MODEL = "facebook/dinov2-small"
DEFAULT_DATA_DIR = Path("data")
DEFAULT_ARTIFACTS_DIR = Path("artifacts")
DEFAULT_LOG_LEVEL = "INFO"
BACKENDS = ("auto", "torch", "onnx")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
ENV_FILE = ".env"


class SettingsError(GuideError, ValueError):
    """A setting is missing or invalid; the message names the variable and says how to fix it."""


def usable_cpus() -> int:
    """CPUs this process may really use: its affinity mask and a container's CPU quota, not the host's count
    (a container limited to 2 CPUs on a 16-core host must not start 16 threads per inference)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(cpus, math.ceil(quota)) if quota else cpus)


def _cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs granted by a cgroup v2 `cpu.max` (`max 100000` means unlimited), or None."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def environment(env_file: str | Path | None = ENV_FILE, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables to read settings from: the real environment wins over the `.env` file.

    For the real environment (environ=None) the `.env` values are also exported into `os.environ`
    (without overriding), so third-party variables in it (HF_HOME, OMP_NUM_THREADS…) take effect."""
    if environ is None:
        if env_file is not None and Path(env_file).is_file():
            load_dotenv(env_file, override=False)
        return dict(os.environ)
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(environ)
    return values


class EnvReader:
    """Typed reads of environment variables; each failure is a SettingsError naming the variable."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values

    @overload
    def text(self, name: str) -> str | None: ...
    @overload
    def text(self, name: str, default: str) -> str: ...
    def text(self, name: str, default: str | None = None) -> str | None:
        value = (self.values.get(name) or "").strip()
        return value or default

    @overload
    def path(self, name: str) -> Path | None: ...
    @overload
    def path(self, name: str, default: Path) -> Path: ...
    def path(self, name: str, default: Path | None = None) -> Path | None:
        value = self.text(name)
        return Path(value) if value else default

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number between {low} and {high}, got {raw!r}") from None
        if not low <= value <= high:
            raise SettingsError(f"{name} must be between {low} and {high}, got {raw!r}")
        return value

    def optional_number(self, name: str, low: float, high: float) -> float | None:
        """A number when the variable is set (and not empty), else None."""
        return None if self.text(name) is None else self.number(name, 0.0, low, high)

    def whole(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name)
        if raw is not None and not raw.lstrip("-").isdigit():
            raise SettingsError(f"{name} must be a whole number between {low} and {high}, got {raw!r}")
        return int(self.number(name, default, low, high))

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self.text(name, default) or default
        if raw.lower() not in {c.lower() for c in choices}:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return next(c for c in choices if c.lower() == raw.lower())

    def url(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is None:
            return None
        if not raw.startswith(("http://", "https://")):
            raise SettingsError(f"{name} must start with http:// or https://, got {raw!r}")
        return raw.rstrip("/")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = DEFAULT_DATA_DIR
    artifacts_dir: Path = DEFAULT_ARTIFACTS_DIR
    image_model: str = DEFAULT_IMAGE_MODEL
    text_model: str = DEFAULT_TEXT_MODEL
    # Set by hand: the cosine similarity the best neighbour must reach for a photo to count as a known
    # landmark. None (default): the index's calibration decides, at MATCH_PRECISION.
    match_threshold: float | None = None
    # The estimated probability of being right a photo answer needs to be a match (core.calibration).
    match_precision: float = DEFAULT_MATCH_PRECISION
    log_level: str = DEFAULT_LOG_LEVEL
    # torch (sentence-transformers), onnx (models exported by `prep export-onnx`), or auto: onnx when an
    # export of the configured models exists in MODEL_DIR, torch otherwise.
    encoder_backend: str = "auto"
    # Where `prep export-onnx` writes and the onnx backend reads; default: `onnx/` beside ARTIFACTS_DIR.
    model_dir: Path | None = None
    # Set by hand: the cosine similarity a text query's best photo must reach to count as a match (below
    # it the bot says nothing matches well). None (default): the index's text calibration decides, at
    # MATCH_PRECISION (core.calibration).
    text_match_threshold: float | None = None
    # A photo's location re-weights the vote only when some landmark lies this close to it (core.recognition).
    location_max_km: float = DEFAULT_LOCATION_MAX_KM
    # Tourists' answers, feedback and (with consent) photos; default: contributions/ beside ARTIFACTS_DIR.
    contrib_dir: Path | None = None
    # Threads one inference may use. None: every usable CPU (prep, the query CLI); the bot gives each
    # of its workers a share.
    inference_threads: int | None = None
    # The place tower (issue #34, core.fusion): a DINOv2 model (Hub name or folder in the Hub's layout)
    # embedded by `prep build` beside CLIP and fused into photo answers; "none": CLIP alone.
    place_model: str = DEFAULT_PLACE_MODEL
    # Piper voices (`<voice>.onnx` + `.onnx.json`, one per language) that narrate instead of espeak-ng.
    voices_dir: Path | None = None
    # The espeak-ng program: the default voice of every language, and the phonemiser of Piper voices.
    espeak_binary: str = "espeak-ng"

    @property
    def onnx_dir(self) -> Path:
        return self.model_dir if self.model_dir is not None else self.artifacts_dir.resolve().parent / "onnx"

    @property
    def contributions_dir(self) -> Path:
        if self.contrib_dir is not None:
            return self.contrib_dir
        return self.artifacts_dir.resolve().parent / "contributions"

    @property
    def place_tower(self) -> str | None:
        """PLACE_MODEL, or None when it is off ("none" or empty)."""
        return None if self.place_model.strip().lower() in ("", "none") else self.place_model

    def ranking_params(self) -> RankingParams:
        """How answers are ranked and called matches: calibrated unless MATCH_THRESHOLD is set by hand."""
        if self.match_threshold is not None:
            return RankingParams(match_threshold=self.match_threshold)
        return RankingParams(match_precision=self.match_precision)

    @property
    def threads(self) -> int:
        return self.inference_threads or usable_cpus()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ENV_FILE) -> Settings:
        """Read settings: real environment variables win over the `.env` file."""
        return cls.from_reader(EnvReader(environment(env_file, environ)))

    @classmethod
    def from_reader(cls, env: EnvReader) -> Settings:
        return cls(
            data_dir=env.path("DATA_DIR", DEFAULT_DATA_DIR),
            artifacts_dir=env.path("ARTIFACTS_DIR", DEFAULT_ARTIFACTS_DIR),
            image_model=env.text("IMAGE_MODEL", DEFAULT_IMAGE_MODEL),
            text_model=env.text("TEXT_MODEL", DEFAULT_TEXT_MODEL),
            match_threshold=env.optional_number("MATCH_THRESHOLD", -1, 1),
            match_precision=env.number("MATCH_PRECISION", DEFAULT_MATCH_PRECISION, 0, 1),
            log_level=env.choice("LOG_LEVEL", DEFAULT_LOG_LEVEL, LOG_LEVELS),
            encoder_backend=env.choice("ENCODER_BACKEND", "auto", BACKENDS),
            model_dir=env.path("MODEL_DIR"),
            contrib_dir=env.path("CONTRIB_DIR"),
            text_match_threshold=env.optional_number("TEXT_MATCH_THRESHOLD", -1, 1),
            location_max_km=env.number("LOCATION_MAX_KM", DEFAULT_LOCATION_MAX_KM, 0, 20_000),
            inference_threads=env.whole("INFERENCE_THREADS", 0, 0, 1024) or None,
            voices_dir=env.path("VOICES_DIR"),
            place_model=env.text("PLACE_MODEL", DEFAULT_PLACE_MODEL),
            espeak_binary=env.text("ESPEAK_NG", "espeak-ng"),
        )
