"""build_application(settings, guide): the one place that wires the bot together."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from telegram import BotCommand
from telegram.ext import (
    AIORateLimiter,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import feedback, handlers, narration, walks
from bot.context import SERVICES_KEY, GuideApplication, GuideContext, Services
from bot.health import heartbeat
from bot.reindex import Reindexer
from bot.settings import BotSettings
from bot.state import StateFile, UserState
from bot.texts import LANGUAGES, commands, text
from bot.throttle import UserRateLimiter
from bot.voice_ids import FILE_IDS_NAME, VoiceFileIds
from core import DEFAULT_LANGUAGE, Guide, Narrator, SqliteContributionStore, VoiceCache, Voices, language

log = logging.getLogger(__name__)

# Updates handled at once. Each waits for the worker pool, which is what really bounds the CPU work;
# this only bounds memory (downloaded photos waiting in the queue).
CONCURRENT_UPDATES = 64
# Retries of a request Telegram answered with 429 (flood control), honouring its retry_after.
FLOOD_RETRIES = 3


def build_application(settings: BotSettings, guide: Guide) -> GuideApplication:
    token = settings.require_token()
    builder = (
        ApplicationBuilder()
        .token(token)
        .context_types(ContextTypes(context=GuideContext, user_data=UserState))
        .rate_limiter(AIORateLimiter(max_retries=FLOOD_RETRIES))
        .concurrent_updates(CONCURRENT_UPDATES)
        .post_init(_post_init)
        .post_stop(_post_stop)
        .post_shutdown(_post_shutdown)
        .persistence(StateFile(settings.state_file, legacy=settings.legacy_state_file))
    )
    if settings.telegram_api_url:
        builder = builder.base_url(settings.telegram_api_url)
    if settings.telegram_file_url:
        builder = builder.base_file_url(settings.telegram_file_url)
    application = builder.build()
    voices = VoiceCache.beside(settings.core.artifacts_dir)
    narrator = Narrator(Voices(settings.core.espeak_binary, settings.core.voices_dir), voices)
    if problem := narrator.voices.problem():
        log.warning("%s", problem)
    else:
        log.info("voices: %s", narrator.voices.describe())
    application.bot_data[SERVICES_KEY] = Services(
        settings=settings,
        guide=guide,
        pool=ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="compute"),
        limiter=UserRateLimiter(),
        reindexer=Reindexer(guide, settings.core.data_dir, settings.core.artifacts_dir),
        store=SqliteContributionStore(
            settings.core.contributions_dir, settings.contrib_max_mb * 1024 * 1024, settings.contrib_per_user_day
        ),
        narrator=narrator,
        # A file_id is the uploading bot's own: the store names the bot (the token's public id part).
        voice_ids=VoiceFileIds(voices.folder / FILE_IDS_NAME, int(token.partition(":")[0])),
    )
    _add_handlers(application)
    return application


def describe_start(settings: BotSettings, guide: Guide) -> str:
    """The start line: what serves (runtime, precision, models by content) and what it knows."""
    image, text = guide.image_encoder, guide.text_encoder
    precisions = [getattr(encoder, "precision", None) for encoder in (image, text)]
    runtime = "torch" if None in precisions else f"onnx (image {precisions[0]}, text {precisions[1]})"
    index = guide.index
    cities = index.city_names("en")
    return (
        f"serving on {runtime}, {settings.workers} workers × {settings.core.threads} threads: "
        f"{image.model_name}@{image.fingerprint[:12] or '?'} + {text.model_name}; "
        f"{len(index)} photos of {len(index.indexed_xids)} landmarks in {len(cities)} cities ({', '.join(cities)})"
    )


async def describe_bot(application: GuideApplication) -> None:
    """What Telegram shows before and around a chat — the command menu, the description (before /start)
    and the short description (the bot's profile) — in each language, for every client language that
    gets it by default (a Ukrainian client: the Russian ones); English for everyone else."""
    bot = application.bot
    for code in LANGUAGES:
        for tag in language(code).telegram:
            await bot.set_my_commands([BotCommand(n, d) for n, d in commands(code)], language_code=tag)
            await bot.set_my_description(text("description", code), language_code=tag)
            await bot.set_my_short_description(text("short_description", code), language_code=tag)
    await bot.set_my_commands([BotCommand(n, d) for n, d in commands(DEFAULT_LANGUAGE)])
    await bot.set_my_description(text("description", DEFAULT_LANGUAGE))
    await bot.set_my_short_description(text("short_description", DEFAULT_LANGUAGE))


def _add_handlers(application: GuideApplication) -> None:
    new = filters.UpdateType.MESSAGE
    application.add_handlers(
        [
            CommandHandler("start", handlers.start, filters=new),
            CommandHandler("help", handlers.help_command, filters=new),
            CommandHandler("lang", handlers.lang, filters=new),
            CommandHandler("reindex", handlers.reindex, filters=new),
            CommandHandler("forget", handlers.forget, filters=new),
            CommandHandler("privacy", feedback.privacy, filters=new),
            CommandHandler("about", handlers.about, filters=new),
            CommandHandler("nearby", handlers.nearby, filters=new),
            CommandHandler("walk", walks.walk, filters=new),
            CommandHandler("review", feedback.review, filters=new),
            CommandHandler("stats", feedback.stats, filters=new),
            CallbackQueryHandler(feedback.feedback_pressed, pattern=rf"^{feedback.FEEDBACK}"),
            CallbackQueryHandler(feedback.consent_given, pattern=rf"^{feedback.CONSENT}"),
            CallbackQueryHandler(feedback.review_pressed, pattern=rf"^{feedback.REVIEW}"),
            CallbackQueryHandler(handlers.lang_chosen, pattern=handlers.LANG_PATTERN),
            CallbackQueryHandler(handlers.more_photos, pattern=rf"^{handlers.MORE_PREFIX}"),
            CallbackQueryHandler(narration.listen, pattern=rf"^{narration.LISTEN}"),
            CallbackQueryHandler(narration.show_local, pattern=rf"^{narration.LOCAL}"),
            CallbackQueryHandler(walks.walk_pressed, pattern=rf"^{walks.WALK}$"),
            MessageHandler(new & filters.PHOTO, handlers.photo),
            MessageHandler(new & filters.LOCATION, handlers.location),
            MessageHandler(new & filters.Document.ALL, handlers.document),
            MessageHandler(new & filters.COMMAND, handlers.unknown_command),
            MessageHandler(new & filters.TEXT, handlers.text_query),
            MessageHandler(filters.UpdateType.EDITED_MESSAGE & filters.LOCATION, walks.live_moved),
            MessageHandler(filters.UpdateType.EDITED_MESSAGE, handlers.edited),
            MessageHandler(new, handlers.unsupported),
            CallbackQueryHandler(handlers.stale_button),  # last: every other callback gets answered
        ]
    )
    application.add_error_handler(handlers.error)


async def _post_init(application: GuideApplication) -> None:
    await describe_bot(application)
    services_ = application.bot_data[SERVICES_KEY]
    # The sights' spatial index, built once off the event loop (live locations look it up on the loop).
    await services_.io(lambda: services_.guide.index.sight_locator)
    services_.heartbeat = asyncio.create_task(heartbeat(application, services_.settings.health_file))


async def _post_stop(application: GuideApplication) -> None:
    """Right after polling stops: a running /reindex is cancelled first (at its next batch), so the process
    ends within Docker's grace period instead of finishing a build nobody will use."""
    application.bot_data[SERVICES_KEY].reindexer.shutdown()


async def _post_shutdown(application: GuideApplication) -> None:
    services_: Services = application.bot_data[SERVICES_KEY]
    if services_.heartbeat is not None:
        services_.heartbeat.cancel()
    services_.reindexer.shutdown()
    services_.shutdown()
