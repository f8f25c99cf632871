"""The landmark guide's pure logic: models, index, catalog, dataset and the Guide that serves them.

The front door: `bot` and `prep` import from here (and from `core.cli`, the entry points' plumbing, and
`core.encoders`, the runtime layer that `prep export-onnx` writes for); a reach into another core module
fails `tests/test_architecture.py`. Every name below is used by bot or prep (checked by the same test).

    guide = Guide.from_settings(Settings.from_env())
    guide.recognize(jpeg_bytes).landmarks[0].landmark.name
    guide.search("белый собор у реки")

A photo's way: Guide (service) → recognition (vote + location prior) → index (FAISS). Every error a
user can cause derives from `GuideError` and reads as one line.
"""

from core.artifacts import has_index, open_cache
from core.build import BuildInProgressError, BuildReport, build_index, check_up_to_date
from core.calibration import UNKNOWN_SHARE, summary_rows, text_threshold
from core.calibration import TextCalibration as TextThresholds
from core.catalog import CatalogError, Landmark, clean_text, parse_coordinate, split_kinds
from core.contributions import (
    Answer,
    Approval,
    ContributionStore,
    SqliteContributionStore,
    Stats,
    approve,
    basic_check,
    check_store,
    reject,
    stats_summary,
)
from core.credits import licence_problem, normalised_licence, trusted_link
from core.dataset import (
    IMAGE_SUFFIXES,
    IMAGES_DIR,
    Dataset,
    DatasetPhoto,
    KeptPhoto,
    PhotoCredit,
    RemovedPhoto,
    is_safe_name,
    spreadsheet_safe,
)
from core.embedding_cache import (
    BuildCancelled,
    Embedded,
    EmbeddingCache,
    PhotoToEmbed,
    ProgressFn,
    content_hash,
    embed_missing,
    file_hash,
    no_progress,
)
from core.encoders import choose_runtime, model_id
from core.enrichment import LANGS, SOURCE_LANG, Enrichment, LandmarkInfo, LandmarkText, transliterate
from core.errors import GuideError
from core.files import file_lock, read_text_tolerantly, set_aside, write_atomically
from core.fresh_views import fresh_view_gap
from core.fusion import chosen_weight, clip_is_certain, fuse
from core.geo import EARTH_RADIUS_M, GeoPoint, Nearby, distance_m, landmark_point
from core.imaging import (
    MIN_PHOTO_SIDE,
    MODEL_INPUT_SIDE,
    ImageDecodeError,
    ImageShapeError,
    ImageTooLargeError,
    decode_image,
    photo_extension,
    telegram_photo,
)
from core.index import PhotoIndex
from core.languages import CODES, DEFAULT_LANGUAGE, Language, closest_language, language
from core.preprocess import ClipPreprocessing
from core.ranking import (
    DEFAULT_K,
    DEFAULT_SEARCH_DEPTH,
    DEFAULT_TEMPERATURE,
    PhotoLocation,
    RankingParams,
    Recognition,
    most_typical_first,
    vote,
)
from core.recognition import rank
from core.schema import open_cache_db
from core.service import ALBUM_SIZE, EmptyQueryError, Guide, PhotoHit
from core.settings import ENV_FILE, EnvReader, Settings, SettingsError, environment, usable_cpus
from core.speech import (
    RENDER_DEADLINE_S,
    STORY_LENGTH,
    Line,
    Narrator,
    SpeechError,
    Voices,
    clip_for_speech,
)
from core.voice_cache import VoiceCache
from core.walks import WALK_RADIUS_M, Loop

__all__ = [
    "ALBUM_SIZE",
    "Answer",
    "Approval",
    "BuildCancelled",
    "BuildInProgressError",
    "BuildReport",
    "CODES",
    "CatalogError",
    "ClipPreprocessing",
    "ContributionStore",
    "DEFAULT_K",
    "DEFAULT_LANGUAGE",
    "DEFAULT_SEARCH_DEPTH",
    "DEFAULT_TEMPERATURE",
    "Dataset",
    "DatasetPhoto",
    "EARTH_RADIUS_M",
    "ENV_FILE",
    "Embedded",
    "EmbeddingCache",
    "EmptyQueryError",
    "Enrichment",
    "EnvReader",
    "GeoPoint",
    "Guide",
    "GuideError",
    "IMAGES_DIR",
    "IMAGE_SUFFIXES",
    "ImageDecodeError",
    "ImageShapeError",
    "ImageTooLargeError",
    "KeptPhoto",
    "LANGS",
    "Landmark",
    "LandmarkInfo",
    "LandmarkText",
    "Language",
    "Line",
    "Loop",
    "MIN_PHOTO_SIDE",
    "MODEL_INPUT_SIDE",
    "Narrator",
    "Nearby",
    "PhotoCredit",
    "PhotoHit",
    "PhotoIndex",
    "PhotoLocation",
    "PhotoToEmbed",
    "ProgressFn",
    "RENDER_DEADLINE_S",
    "RankingParams",
    "Recognition",
    "RemovedPhoto",
    "SOURCE_LANG",
    "STORY_LENGTH",
    "Settings",
    "SettingsError",
    "SpeechError",
    "SqliteContributionStore",
    "Stats",
    "TextThresholds",
    "UNKNOWN_SHARE",
    "VoiceCache",
    "Voices",
    "WALK_RADIUS_M",
    "approve",
    "basic_check",
    "build_index",
    "check_store",
    "check_up_to_date",
    "choose_runtime",
    "clean_text",
    "clip_for_speech",
    "closest_language",
    "content_hash",
    "decode_image",
    "distance_m",
    "embed_missing",
    "environment",
    "file_hash",
    "chosen_weight",
    "clip_is_certain",
    "file_lock",
    "fresh_view_gap",
    "fuse",
    "has_index",
    "is_safe_name",
    "landmark_point",
    "language",
    "licence_problem",
    "model_id",
    "most_typical_first",
    "no_progress",
    "normalised_licence",
    "open_cache",
    "open_cache_db",
    "parse_coordinate",
    "photo_extension",
    "rank",
    "read_text_tolerantly",
    "reject",
    "set_aside",
    "split_kinds",
    "spreadsheet_safe",
    "stats_summary",
    "summary_rows",
    "telegram_photo",
    "text_threshold",
    "transliterate",
    "trusted_link",
    "usable_cpus",
    "vote",
    "write_atomically",
]
