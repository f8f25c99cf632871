"""The landmark guide's pure logic: models, index, catalog, dataset and the Guide that serves them.

The public API, for `bot`, `prep` and scripts. Submodules named in the README's map (e.g.
`core.dataset`, `core.encoders`, `core.imaging`) are public too; anything else is internal.

    guide = Guide.from_settings(Settings.from_env())
    guide.recognize(jpeg_bytes).landmarks[0].landmark.name
    guide.search("белый собор у реки")

Every error a user can cause derives from `GuideError` and reads as one line.
"""

from core.catalog import CatalogError, Landmark
from core.dataset import Dataset, DatasetPhoto
from core.embedding_cache import BuildCancelled, ProgressFn
from core.encoders import ImageEncoder, ModelLoadError, TextEncoder, choose_runtime, load_encoders, model_id
from core.errors import GuideError
from core.geo import GeoError, GeoPoint, Nearby
from core.imaging import ImageDecodeError, ImageTooLargeError, decode_image
from core.index import (
    ArtifactsError,
    BuildInProgressError,
    BuildReport,
    PhotoIndex,
    build_index,
    check_up_to_date,
    open_cache,
)
from core.ranking import CategoryHit, LandmarkHit, PhotoLocation, RankingParams, Recognition, vote
from core.service import ALBUM_SIZE, EmptyQueryError, Guide, PhotoHit
from core.settings import EnvReader, Settings, SettingsError, environment, usable_cpus

__all__ = [
    "ALBUM_SIZE",
    "ArtifactsError",
    "BuildCancelled",
    "BuildInProgressError",
    "BuildReport",
    "CatalogError",
    "CategoryHit",
    "Dataset",
    "DatasetPhoto",
    "EmptyQueryError",
    "EnvReader",
    "GeoError",
    "GeoPoint",
    "Guide",
    "GuideError",
    "ImageDecodeError",
    "ImageEncoder",
    "ImageTooLargeError",
    "Landmark",
    "LandmarkHit",
    "ModelLoadError",
    "Nearby",
    "PhotoHit",
    "PhotoIndex",
    "PhotoLocation",
    "ProgressFn",
    "RankingParams",
    "Recognition",
    "Settings",
    "SettingsError",
    "TextEncoder",
    "build_index",
    "check_up_to_date",
    "choose_runtime",
    "decode_image",
    "environment",
    "load_encoders",
    "model_id",
    "open_cache",
    "usable_cpus",
    "vote",
]
