"""Telegram handlers: each translates one kind of update into a core call and a reply."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from html import escape
from pathlib import Path

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
    PhotoSize,
    Update,
)
from telegram.constants import ChatAction, FileSizeLimit, ParseMode
from telegram.error import BadRequest

from bot import feedback, walks
from bot.cards import MORE_PREFIX, card_markup, location_request
from bot.context import GuideContext, incoming, pressed
from bot.i18n import catalog
from bot.logs import is_network_failure, short_failure
from bot.nearby_intent import asks_what_is_nearby
from bot.photos import shareable_photo
from bot.reindex import ReindexBusyError
from bot.texts import (
    BUTTON_LABEL_LIMIT,
    CITIES_LIMIT,
    LANGUAGES,
    NAME_LIMIT,
    Lang,
    album_caption,
    clip_text,
    format_card,
    format_nearby,
    format_others,
    format_search_fallback,
    join_names,
    map_url,
    plural,
    text,
)
from core import (
    ALBUM_SIZE,
    IMAGE_SUFFIXES,
    MODEL_INPUT_SIDE,
    BuildCancelled,
    BuildInProgressError,
    EmptyQueryError,
    ImageDecodeError,
    ImageShapeError,
    ImageTooLargeError,
    PhotoHit,
    Recognition,
    language,
    photo_extension,
)

log = logging.getLogger(__name__)

LANG_PREFIX = "lang:"  # callback data of the /lang buttons: lang:<code of the registry>
LANG_PATTERN = "^" + LANG_PREFIX + "(" + "|".join(re.escape(code) for code in LANGUAGES) + ")$"
LANG_BUTTONS_PER_ROW = 2
# The default voice, as /about credits it: a separate program, so its GPL-3.0 does not reach the guide.
ESPEAK_CREDIT = "espeak-ng (GPL-3.0)"
# Photos shown with "nothing matches well".
WEAK_MATCHES = 3


def _greeting_values(context: GuideContext, lang_: Lang) -> dict[str, str]:
    """What /start and /help say about the loaded index: its cities, its size, an example from it."""
    index = context.services.guide.index
    cities = index.city_names(lang_)
    indexed = index.indexed_xids
    example = clip_text(index.describe(indexed[0], lang_).name, NAME_LIMIT) if indexed else ""
    named = join_names([clip_text(city, NAME_LIMIT) for city in cities], lang_)
    places = plural("n_places", len(indexed), lang_)
    return {"cities": clip_text(named, CITIES_LIMIT), "places": places, "example": example}


async def start(update: Update, context: GuideContext) -> None:
    """Greet the user and say what the bot does, with this index's cities."""
    lang_ = context.lang
    await incoming(update).reply_text(text("start", lang_, **_greeting_values(context, lang_)))


async def help_command(update: Update, context: GuideContext) -> None:
    """Explain every feature with examples from this index, and what is kept about the user."""
    lang_ = context.lang
    hours = plural("n_hours", context.services.settings.location_ttl_hours, lang_)
    values = _greeting_values(context, lang_) | {"hours": hours}
    values = {k: escape(v) for k, v in values.items()}
    await incoming(update).reply_text(text("help", lang_, **values), parse_mode=ParseMode.HTML)


async def about(update: Update, context: GuideContext) -> None:
    """Where the landmarks, descriptions, photos, models and voices come from, and under which licences."""
    lang_ = context.lang
    credits = [f"{escape(voice)} ({escape(licence)})" for voice, licence in context.services.narrator.voices.credits()]
    voices = text("about_voices", lang_, voices=join_names([ESPEAK_CREDIT, *credits], lang_))
    tower, model = "", context.services.guide.place_tower
    if model is not None:  # credited where it answers (PLACE_MODEL on, the index built with it)
        tower = "\n" + text("about_place_tower", lang_, model=escape(model))
    await incoming(update).reply_text(f"{text('about', lang_)}{tower}\n{voices}", parse_mode=ParseMode.HTML)


async def lang(update: Update, context: GuideContext) -> None:
    """Switch the language: `/lang en` directly, or `/lang` for buttons."""
    wanted = {code.lower(): code for code in LANGUAGES}.get(context.args[0].lower()) if context.args else None
    if wanted is not None:
        context.state.lang = wanted
        await incoming(update).reply_text(text("lang_set", context.lang))
        return
    buttons = [InlineKeyboardButton(language(code).name, callback_data=LANG_PREFIX + code) for code in LANGUAGES]
    rows = [buttons[k : k + LANG_BUTTONS_PER_ROW] for k in range(0, len(buttons), LANG_BUTTONS_PER_ROW)]
    await incoming(update).reply_text(text("lang_choose", context.lang), reply_markup=InlineKeyboardMarkup(rows))


async def lang_chosen(update: Update, context: GuideContext) -> None:
    """Apply the language picked with a /lang button."""
    query = pressed(update)
    choice = (query.data or "").removeprefix(LANG_PREFIX)
    if choice in LANGUAGES:
        context.state.lang = choice
    await query.answer()
    await query.edit_message_text(text("lang_set", context.lang))


async def photo(update: Update, context: GuideContext) -> None:
    """Recognise the landmark in a photo, from the smallest size Telegram offers that is big enough."""
    message = incoming(update)
    chosen = _smallest_sufficient_size(message.photo)
    await _recognize(message, update, context, chosen.file_id, chosen.file_size)


def _smallest_sufficient_size(sizes: Sequence[PhotoSize]) -> PhotoSize:
    """The model sees 224 px: Telegram's 320 px version carries all of that for a 4:3 photo and is
    ~10× fewer bytes to download and decode than the 1280 px one. The largest size if none is enough."""
    enough = [size for size in sizes if min(size.width, size.height) >= MODEL_INPUT_SIDE]
    if not enough:
        return max(sizes, key=lambda size: size.width * size.height)
    return min(enough, key=lambda size: size.width * size.height)


async def document(update: Update, context: GuideContext) -> None:
    """Recognise an image sent as a file; politely refuse other files."""
    message = incoming(update)
    file = message.document
    if file is None:
        raise ValueError("a document handler got a message without a document")
    # Some clients send HEIC or WebP as application/octet-stream: the file name tells then.
    named_like_image = Path(file.file_name or "").suffix.lower() in IMAGE_SUFFIXES
    if not (file.mime_type or "").startswith("image/") and not named_like_image:
        await message.reply_text(text("not_image_file", context.lang))
        return
    await _recognize(message, update, context, file.file_id, file.file_size)


async def _recognize(message: Message, update: Update, context: GuideContext, file_id: str, size: int | None) -> None:
    """Download, recognise in the compute pool, record, answer (`update` only scopes the background task
    and names the sender)."""
    lang_ = context.lang
    if size is not None and size > FileSizeLimit.FILESIZE_DOWNLOAD:
        await message.reply_text(text("too_big", lang_))
        return
    svc = context.services
    if not await _within_rate_limit(message, _sender(update), context, lang_):
        return
    # "typing…" goes out beside the download, not before it: one round trip to Telegram less per photo.
    context.application.create_task(message.reply_chat_action(ChatAction.TYPING), update=update)
    try:
        data = bytes(await (await context.bot.get_file(file_id)).download_as_bytearray())
    except BadRequest as exc:
        if "too big" not in exc.message.lower():
            raise
        # Telegram does not always report a size up front; it refuses the download instead.
        await message.reply_text(text("too_big", lang_))
        return
    started = time.monotonic()
    try:
        result: Recognition = await svc.compute(svc.guide.recognize, data, context.recent_location())
    except ImageTooLargeError:
        await message.reply_text(text("too_many_pixels", lang_))
        return
    except ImageShapeError:
        await message.reply_text(text("too_elongated", lang_))
        return
    except ImageDecodeError as exc:
        log.info("undecodable image from user %s: %s", update.effective_user.id if update.effective_user else "?", exc)
        await message.reply_text(text("bad_image", lang_))
        return
    answer_ms = (time.monotonic() - started) * 1000
    # Every answer is recorded for the statistics; the photo only with the user's consent.
    user_id = update.effective_user.id if update.effective_user else 0
    consent = await svc.io(svc.store.consent, user_id)
    candidates = [hit.xid for hit in result.landmarks]
    photo, ext = (data, photo_extension(data)) if consent else (None, "")
    answer_id = await svc.io(
        svc.store.record_answer, user_id, candidates, result.match, answer_ms, photo, ext, result.confidence
    )
    await _answer_recognition(message, context, result, lang_, answer_id)
    # Asked once: a burst of photos must not bring a burst of identical questions (set before the await).
    if update.effective_user is not None and consent is None and not context.state.consent_asked:
        context.state.consent_asked = True
        await feedback.ask_consent(message, lang_)


async def _answer_recognition(
    message: Message, context: GuideContext, result: Recognition, lang_: Lang, answer_id: str
) -> None:
    """A card for a confident answer (matched photo, description, buttons), then the other candidates."""
    index = context.services.guide.index
    if not result.landmarks:
        await message.reply_text(text("nothing_found", lang_))
        return
    cards = [index.describe(hit.xid, lang_) for hit in result.landmarks]
    rate = feedback.feedback_row(answer_id, lang_)
    others = format_others(result, cards, lang_, skip_first=result.match)
    if not result.match:  # no card for a guess: the list itself is the answer, and it takes the feedback
        await message.reply_text(others, parse_mode=ParseMode.HTML, reply_markup=InlineKeyboardMarkup([rate]))
        return
    caption = format_card(result, cards[0], lang_)
    start = (result.location.lat, result.location.lon) if result.location is not None else None
    buttons = card_markup(result.landmarks[0].landmark, cards[0], lang_, start) + [rate]
    photo = await context.services.compute(shareable_photo, result.matched_photo)
    markup = InlineKeyboardMarkup(buttons)
    if photo is not None:
        await message.reply_photo(photo, caption=caption, parse_mode=ParseMode.HTML, reply_markup=markup)
    else:
        await message.reply_text(caption, parse_mode=ParseMode.HTML, reply_markup=markup)
    if others:
        await message.reply_text(others, parse_mode=ParseMode.HTML)


async def more_photos(update: Update, context: GuideContext) -> None:
    """The "More photos" button: an album of up to 5 photos of that landmark."""
    query, lang_, svc = pressed(update), context.lang, context.services
    xid = (query.data or "").removeprefix(MORE_PREFIX)
    if xid not in svc.guide.index.landmarks:
        await query.answer(text("expired", lang_))
        return
    await query.answer()
    hits = await svc.compute(svc.guide.landmark_photos, xid, ALBUM_SIZE)
    await _send_album(update, context, hits, lang_)


async def nearby(update: Update, context: GuideContext) -> None:
    """/nearby (or "what is nearby" typed): the nearest landmarks to a recent location, or a one-tap button."""
    stored = context.recent_location()
    if stored is not None and stored.source == "shared":
        await _answer_nearby(incoming(update), context, stored.lat, stored.lon)
        return
    lang_ = context.lang
    await incoming(update).reply_text(text("nearby_ask", lang_), reply_markup=location_request(lang_))


async def location(update: Update, context: GuideContext) -> None:
    """A shared location: remember it, then a walk (when /walk asked for it), the sight the tourist stands
    at (a live location, followed from now on), or the nearest landmarks."""
    message, lang_ = incoming(update), context.lang
    where = message.location
    if where is None or not context.remember_location(where.latitude, where.longitude):
        await message.reply_text(text("bad_location", lang_))
        return
    if context.state.wants_walk:
        await walks.answer_walk(message, context, where.latitude, where.longitude)
    elif where.live_period:
        await walks.start_following(message, context, where)
    else:
        await _answer_nearby(message, context, where.latitude, where.longitude)


async def _answer_nearby(message: Message, context: GuideContext, lat: float, lon: float) -> None:
    lang_, svc = context.lang, context.services
    places = await svc.compute(svc.guide.nearby, lat, lon)
    ttl = svc.settings.location_ttl_hours
    if not places or places[0].distance_m > svc.settings.core.location_max_km * 1000:
        # Nothing near: the location will not change any answer, so no promise that it will.
        km = catalog(lang_).number(svc.settings.core.location_max_km)
        await message.reply_text(text("near_none", lang_, km=km))
        return
    # Names as the card shows them, in the tourist's language (the list and its buttons alike).
    names = [svc.guide.index.describe(place.landmark.xid, lang_).name for place in places]
    buttons = [
        [InlineKeyboardButton(clip_text(f"🗺 {name}", BUTTON_LABEL_LIMIT), url=url)]
        for place, name in zip(places, names, strict=True)
        if (url := map_url(place.landmark))
    ]
    await message.reply_text(
        format_nearby(places, names, lang_, ttl),
        parse_mode=ParseMode.HTML,
        reply_markup=InlineKeyboardMarkup([*buttons, [walks.walk_button(lang_)]]),
    )


async def forget(update: Update, context: GuideContext) -> None:
    """Delete everything kept about the user: language, location, rate-limit history."""
    lang_ = context.lang
    user = update.effective_user
    if user is not None:
        context.application.drop_user_data(user.id)
        # On disk before the reply says so: the next regular write could be a minute (or a crash) away.
        await context.application.update_persistence()
        context.services.limiter.forget(user.id)
        await context.services.io(context.services.store.forget_user, user.id)
    await incoming(update).reply_text(text("forgotten", lang_))


async def text_query(update: Update, context: GuideContext) -> None:
    """Search photos by any text and answer with an album."""
    message, lang_ = incoming(update), context.lang
    query = message.text or ""
    if not query.strip():
        await message.reply_text(text("empty_query", lang_))
        return
    if asks_what_is_nearby(query):
        await nearby(update, context)
        return
    if not await _within_rate_limit(message, _sender(update), context, lang_):
        return
    svc = context.services
    await message.reply_chat_action(ChatAction.UPLOAD_PHOTO)
    try:
        hits: list[PhotoHit] = await svc.compute(svc.guide.search, query, ALBUM_SIZE)
    except EmptyQueryError:
        await message.reply_text(text("empty_query", lang_))
        return
    weak = bool(hits) and hits[0].score < svc.guide.text_threshold()
    if weak:  # the closest photos still follow, each marked as no sure match
        await message.reply_text(text("no_match", lang_))
        hits = hits[:WEAK_MATCHES]
    await _send_album(update, context, hits, lang_, weak)


async def _send_album(
    update: Update, context: GuideContext, hits: list[PhotoHit], lang_: Lang, weak: bool = False
) -> None:
    """Photos with captions in the user's language (marked when they match weakly); text when there are
    too few for an album."""
    index = context.services.guide.index
    captions = [index.describe(hit.xid, lang_) for hit in hits]
    credited = [album_caption(c.name, c.city, hit.credit, lang_, weak) for c, hit in zip(captions, hits, strict=True)]
    album = await context.services.compute(_read_album, hits, credited)
    if len(album) < 2:  # Telegram albums need 2–10 items
        pairs = [(c.name, c.city) for c in captions[:1]]
        await incoming(update).reply_text(format_search_fallback(pairs, lang_))
        return
    await incoming(update).reply_media_group(album)


def _read_album(hits: list[PhotoHit], captions: list[str]) -> list[InputMediaPhoto]:
    album = []
    for hit, caption in zip(hits, captions, strict=True):
        if (data := shareable_photo(hit.path)) is not None:
            album.append(
                InputMediaPhoto(data, caption=caption, parse_mode=ParseMode.HTML, filename=Path(hit.path).name)
            )
    return album


def describe_update(update: object) -> str:
    """ "update 812 (message)": what the logs may say of an update. A tourist's text, photo and location are
    theirs: `/forget` and `/privacy` do not reach the logs, so the logs never hold them."""
    if not isinstance(update, Update):
        return f"a {type(update).__name__}"
    kind = next((name for name in Update.ALL_TYPES if getattr(update, name, None) is not None), "unknown")
    return f"update {update.update_id} ({kind})"


def _sender(update: Update) -> int:
    """Who a request counts against: the user, or the chat for updates without one (channel posts)."""
    if update.effective_user is not None:
        return update.effective_user.id
    return -(update.effective_chat.id if update.effective_chat is not None else 0) or -1


async def _within_rate_limit(message: Message, sender: int, context: GuideContext, lang_: Lang) -> bool:
    """Whether `sender` may ask now; if not, they are told so in reply to `message`."""
    if context.services.limiter.allow(sender):
        return True
    await message.reply_text(text("rate_limited", lang_))
    return False


async def stale_button(update: Update, context: GuideContext) -> None:
    """Any callback no other handler takes (forged, old, unknown): answer it, so the client stops spinning."""
    await pressed(update).answer(text("expired", context.lang), show_alert=False)


async def unknown_command(update: Update, context: GuideContext) -> None:
    """Point at /help for commands the bot does not have."""
    await incoming(update).reply_text(text("unknown_command", context.lang))


async def edited(update: Update, context: GuideContext) -> None:
    """Ask for a fresh message instead of silently ignoring an edit."""
    await incoming(update).reply_text(text("edited", context.lang))


async def unsupported(update: Update, context: GuideContext) -> None:
    """Stickers, voice, locations, videos…: say what the bot understands."""
    await incoming(update).reply_text(text("unsupported", context.lang))


async def reindex(update: Update, context: GuideContext) -> None:
    """Admins only: rebuild the index in the background and swap it in."""
    message, lang_, svc = incoming(update), context.lang, context.services
    user = update.effective_user
    if user is None or user.id not in svc.settings.admin_ids:
        await message.reply_text(text("not_admin", lang_))
        return
    try:
        svc.reindexer.claim()
    except ReindexBusyError:
        await message.reply_text(text("reindex_busy", lang_))
        return
    try:
        status = await message.reply_text(text("reindex_started", lang_, data_dir=svc.settings.core.data_dir))
        # A plain task, not application.create_task: PTB's stop() would wait for the whole build before
        # post_stop could cancel it (SIGTERM then ended in Docker's SIGKILL).
        svc.reindexer.background = asyncio.create_task(_run_reindex(context, status, lang_))
    except BaseException:
        svc.reindexer.release()  # Telegram failed us before the build started: the slot must not stay taken
        raise


async def _run_reindex(context: GuideContext, status: Message, lang_: Lang) -> None:
    svc = context.services

    async def on_progress(stage: str, done: int, total: int) -> None:
        label = text(f"stage:{stage}", lang_) if catalog(lang_).has(f"stage:{stage}") else stage
        try:
            await status.edit_text(text("reindex_progress", lang_, stage=label, done=done, total=total))
        except Exception:  # a progress note that fails (edited too fast, deleted) must not stop the build
            log.debug("progress message not updated", exc_info=True)

    try:
        report = await svc.reindexer.run(on_progress)
    except BuildInProgressError:
        await status.reply_text(text("reindex_busy", lang_))
        return
    except BuildCancelled:
        log.info("reindex cancelled: the bot is stopping; the old index stays")
        return
    except Exception as exc:
        log.exception("reindex failed")
        await status.reply_text(text("reindex_failed", lang_, error=f"{exc.__class__.__name__}: {exc}"[:500]))
        return
    key = "reindex_up_to_date" if report.up_to_date else "reindex_done"
    await status.reply_text(
        text(
            key,
            lang_,
            seconds=catalog(lang_).number(report.seconds, 1),
            photos=plural("n_photos", report.photos, lang_),
            landmarks=plural("n_landmarks", report.landmarks, lang_),
            embedded=report.embedded,
            from_cache=report.from_cache,
            skipped=len(report.skipped),
        )
    )


async def error(update: object, context: GuideContext) -> None:
    """Log every exception with its update's id and kind (never its content), and tell the user."""
    what = describe_update(update)
    if context.error is not None and is_network_failure(context.error):
        log.warning("network failure while handling %s: %s", what, short_failure(context.error))
    else:
        log.error("exception while handling %s", what, exc_info=context.error)
    if isinstance(update, Update) and incoming(update) is not None:
        try:
            await incoming(update).reply_text(text("error", context.lang))
        except Exception:
            log.warning("could not tell the user about the error", exc_info=True)
