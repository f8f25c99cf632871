"""Telegram handlers: each translates one kind of update into a core call and a reply."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from html import escape
from pathlib import Path

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto, Message, PhotoSize, Update
from telegram.constants import ChatAction, FileSizeLimit, ParseMode
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot import feedback
from bot.context import LANG_KEY, services, user_lang
from bot.reindex import ReindexBusyError
from bot.texts import (
    LANGUAGES,
    STAGES,
    Lang,
    format_card,
    format_nearby,
    format_others,
    format_search_fallback,
    join_names,
    map_url,
    photo_caption,
    route_url,
    text,
)
from core import (
    ALBUM_SIZE,
    BuildCancelled,
    BuildInProgressError,
    EmptyQueryError,
    ImageDecodeError,
    ImageTooLargeError,
    PhotoHit,
    Recognition,
)
from core.dataset import IMAGE_SUFFIXES
from core.imaging import MODEL_INPUT_SIDE, ImageShapeError, photo_extension
from core.ranking import PhotoLocation

log = logging.getLogger(__name__)

MORE_PREFIX = "more:"  # callback data of "More photos": more:<xid> (XIDs are short, safe names)
# Photos shown with "nothing matches well".
WEAK_MATCHES = 3
LOCATION_KEY = "location"  # user_data: {"lat", "lon", "at"} of the last shared location


def _greeting_values(context: ContextTypes.DEFAULT_TYPE, lang_: Lang) -> dict[str, str]:
    """What /start and /help say about the loaded index: its cities, its size, an example from it."""
    index = services(context).guide.index
    cities = index.city_names(lang_)
    indexed = list(dict.fromkeys(photo.xid for photo in index.photos))
    example = index.describe(indexed[0], lang_).name if indexed else ""
    return {"cities": join_names(cities, lang_), "count": str(len(indexed)), "example": example}


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet the user and say what the bot does, with this index's cities."""
    lang_ = user_lang(update, context)
    await update.effective_message.reply_text(text("start", lang_, **_greeting_values(context, lang_)))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Explain every feature with examples from this index, and what is kept about the user."""
    lang_ = user_lang(update, context)
    ttl = f"{services(context).settings.location_ttl_hours:g}"
    values = _greeting_values(context, lang_) | {"ttl": ttl}
    values = {k: escape(v) for k, v in values.items()}
    await update.effective_message.reply_text(text("help", lang_, **values), parse_mode=ParseMode.HTML)


async def lang(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Switch the language: `/lang en` directly, or `/lang` for buttons."""
    if context.args and context.args[0].lower() in LANGUAGES:
        context.user_data[LANG_KEY] = context.args[0].lower()
        await update.effective_message.reply_text(text("lang_set", context.user_data[LANG_KEY]))
        return
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Русский", callback_data="lang:ru"),
                InlineKeyboardButton("English", callback_data="lang:en"),
            ]
        ]
    )
    await update.effective_message.reply_text(text("lang_choose", user_lang(update, context)), reply_markup=keyboard)


async def lang_chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Apply the language picked with a /lang button."""
    query = update.callback_query
    choice = (query.data or "").removeprefix("lang:")
    if choice in LANGUAGES:
        context.user_data[LANG_KEY] = choice
    await query.answer()
    await query.edit_message_text(text("lang_set", user_lang(update, context)))


async def photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Recognise the landmark in a photo, from the smallest size Telegram offers that is big enough."""
    chosen = _smallest_sufficient_size(update.effective_message.photo)
    await _recognize(update, context, chosen.file_id, chosen.file_size)


def _smallest_sufficient_size(sizes: Sequence[PhotoSize]) -> PhotoSize:
    """The model sees 224 px: Telegram's 320 px version carries all of that for a 4:3 photo and is
    ~10× fewer bytes to download and decode than the 1280 px one. The largest size if none is enough."""
    enough = [size for size in sizes if min(size.width, size.height) >= MODEL_INPUT_SIDE]
    if not enough:
        return max(sizes, key=lambda size: size.width * size.height)
    return min(enough, key=lambda size: size.width * size.height)


async def document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Recognise an image sent as a file; politely refuse other files."""
    file = update.effective_message.document
    # Some clients send HEIC or WebP as application/octet-stream: the file name tells then.
    named_like_image = Path(file.file_name or "").suffix.lower() in IMAGE_SUFFIXES
    if not (file.mime_type or "").startswith("image/") and not named_like_image:
        await update.effective_message.reply_text(text("not_image_file", user_lang(update, context)))
        return
    await _recognize(update, context, file.file_id, file.file_size)


async def _recognize(update: Update, context: ContextTypes.DEFAULT_TYPE, file_id: str, size: int | None) -> None:
    message, lang_ = update.effective_message, user_lang(update, context)
    if size is not None and size > FileSizeLimit.FILESIZE_DOWNLOAD:
        await message.reply_text(text("too_big", lang_))
        return
    svc = services(context)
    if not await _within_rate_limit(update, context, lang_):
        return
    await message.reply_chat_action(ChatAction.TYPING)
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
        result: Recognition = await svc.run(svc.guide.recognize, data, remembered_location(context))
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
    consent = await svc.run(svc.store.consent, user_id)
    candidates = [hit.xid for hit in result.landmarks]
    photo, ext = (data, photo_extension(data)) if consent else (None, "")
    answer_id = await svc.run(svc.store.record_answer, user_id, candidates, result.match, answer_ms, photo, ext)
    await _answer_recognition(update, context, result, lang_, answer_id)
    if update.effective_user is not None and consent is None:
        await feedback.ask_consent(update, context, lang_)


async def _answer_recognition(
    update: Update, context: ContextTypes.DEFAULT_TYPE, result: Recognition, lang_: Lang, answer_id: str
) -> None:
    """A card for a confident answer (matched photo, description, buttons), then the other candidates."""
    message, index = update.effective_message, services(context).guide.index
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
    buttons = _card_buttons(result.landmarks[0].landmark, cards[0], result, lang_) + [rate]
    photo = await services(context).run(_read_bytes, result.matched_photo)
    markup = InlineKeyboardMarkup(buttons)
    if photo is not None:
        await message.reply_photo(photo, caption=caption, parse_mode=ParseMode.HTML, reply_markup=markup)
    else:
        await message.reply_text(caption, parse_mode=ParseMode.HTML, reply_markup=markup)
    if others:
        await message.reply_text(others, parse_mode=ParseMode.HTML)


def _read_bytes(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError:
        log.warning("indexed photo is gone: %s", path)
        return None


def _card_buttons(landmark, card, result: Recognition, lang_: Lang) -> list[list[InlineKeyboardButton]]:
    """Map, Route, Wikipedia, More photos: only for a confident answer, never for a guess."""
    start = (result.location.lat, result.location.lon) if result.location is not None else None
    links = [
        (text("map", lang_), map_url(landmark)),
        (text("route", lang_), route_url(landmark, start)),
        (text("wikipedia", lang_), card.wikipedia or None),
    ]
    row = [InlineKeyboardButton(label, url=url) for label, url in links if url]
    more = [InlineKeyboardButton(text("more_photos", lang_), callback_data=f"{MORE_PREFIX}{landmark.xid}")]
    rows = [row[:2], row[2:] + more] if row else [more]
    return [r for r in rows if r]


async def more_photos(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The "More photos" button: an album of up to 5 photos of that landmark."""
    query, lang_, svc = update.callback_query, user_lang(update, context), services(context)
    xid = (query.data or "").removeprefix(MORE_PREFIX)
    if xid not in svc.guide.index.landmarks:
        await query.answer(text("expired", lang_))
        return
    await query.answer()
    hits = await svc.run(svc.guide.landmark_photos, xid, ALBUM_SIZE)
    await _send_album(update, context, hits, lang_)


def remembered_location(context: ContextTypes.DEFAULT_TYPE) -> PhotoLocation | None:
    """The user's last shared location, while it is fresh (LOCATION_TTL)."""
    stored = context.user_data.get(LOCATION_KEY) if context.user_data is not None else None
    if not stored:
        return None
    if time.time() - stored["at"] > services(context).settings.location_ttl_hours * 3600:
        return None
    return PhotoLocation(stored["lat"], stored["lon"], "shared")


def _remember_location(context: ContextTypes.DEFAULT_TYPE, lat: float, lon: float) -> None:
    context.user_data[LOCATION_KEY] = {"lat": lat, "lon": lon, "at": time.time()}


async def location(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A shared (or live) location: remember it and list the nearest landmarks."""
    message, lang_, svc = update.effective_message, user_lang(update, context), services(context)
    where = message.location
    _remember_location(context, where.latitude, where.longitude)
    places = await svc.run(svc.guide.nearby, where.latitude, where.longitude)
    ttl = svc.settings.location_ttl_hours
    if not places or places[0].distance_m > svc.settings.core.location_max_km * 1000:
        km = f"{svc.settings.core.location_max_km:g}"
        await message.reply_text(text("near_none", lang_, km=km) + "\n\n" + text("near_kept", lang_, ttl=f"{ttl:g}"))
        return
    buttons = [
        [InlineKeyboardButton(f"🗺 {place.landmark.name}"[:64], url=url)]
        for place in places
        if (url := map_url(place.landmark))
    ]
    await message.reply_text(
        format_nearby(places, lang_, ttl),
        parse_mode=ParseMode.HTML,
        reply_markup=InlineKeyboardMarkup(buttons) if buttons else None,
    )


async def live_location(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A live location moved: update the stored point quietly (an update arrives every few seconds)."""
    where = update.effective_message.location
    _remember_location(context, where.latitude, where.longitude)


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Delete everything kept about the user: language, location, rate-limit history."""
    lang_ = user_lang(update, context)
    user = update.effective_user
    if user is not None:
        context.application.drop_user_data(user.id)
        services(context).limiter.forget(user.id)
        await services(context).run(services(context).store.forget_user, user.id)
    await update.effective_message.reply_text(text("forgotten", lang_))


async def text_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Search photos by any text and answer with an album."""
    message, lang_ = update.effective_message, user_lang(update, context)
    if not message.text.strip():
        await message.reply_text(text("empty_query", lang_))
        return
    if not await _within_rate_limit(update, context, lang_):
        return
    svc = services(context)
    await message.reply_chat_action(ChatAction.UPLOAD_PHOTO)
    try:
        hits: list[PhotoHit] = await svc.run(svc.guide.search, message.text, ALBUM_SIZE)
    except EmptyQueryError:
        await message.reply_text(text("empty_query", lang_))
        return
    if hits and hits[0].score < svc.settings.core.text_match_threshold:
        await message.reply_text(text("no_match", lang_))
        hits = hits[:WEAK_MATCHES]
    await _send_album(update, context, hits, lang_)


async def _send_album(update: Update, context: ContextTypes.DEFAULT_TYPE, hits: list[PhotoHit], lang_: Lang) -> None:
    """Photos with captions in the user's language; text when there are too few for an album."""
    index = services(context).guide.index
    captions = [index.describe(hit.xid, lang_) for hit in hits]
    album = await services(context).run(_read_album, hits, [photo_caption(c.name, c.city) for c in captions])
    if len(album) < 2:  # Telegram albums need 2–10 items
        pairs = [(c.name, c.city) for c in captions[:1]]
        await update.effective_message.reply_text(format_search_fallback(pairs, lang_))
        return
    await update.effective_message.reply_media_group(album)


def _read_album(hits: list[PhotoHit], captions: list[str]) -> list[InputMediaPhoto]:
    album = []
    for hit, caption in zip(hits, captions, strict=True):
        if (data := _read_bytes(str(hit.path))) is not None:
            album.append(InputMediaPhoto(data, caption=caption, filename=Path(hit.path).name))
    return album


def _sender(update: Update) -> int:
    """Who a request counts against: the user, or the chat for updates without one (channel posts)."""
    if update.effective_user is not None:
        return update.effective_user.id
    return -(update.effective_chat.id if update.effective_chat is not None else 0) or -1


async def _within_rate_limit(update: Update, context: ContextTypes.DEFAULT_TYPE, lang_: Lang) -> bool:
    if services(context).limiter.allow(_sender(update)):
        return True
    await update.effective_message.reply_text(text("rate_limited", lang_))
    return False


async def stale_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any callback no other handler takes (forged, old, unknown): answer it, so the client stops spinning."""
    await update.callback_query.answer(text("expired", user_lang(update, context)), show_alert=False)


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Point at /help for commands the bot does not have."""
    await update.effective_message.reply_text(text("unknown_command", user_lang(update, context)))


async def edited(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Ask for a fresh message instead of silently ignoring an edit."""
    await update.effective_message.reply_text(text("edited", user_lang(update, context)))


async def unsupported(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, voice, locations, videos…: say what the bot understands."""
    await update.effective_message.reply_text(text("unsupported", user_lang(update, context)))


async def reindex(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Admins only: rebuild the index in the background and swap it in."""
    message, lang_, svc = update.effective_message, user_lang(update, context), services(context)
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
        context.application.create_task(_run_reindex(context, status, lang_), update=update)
    except BaseException:
        svc.reindexer.release()  # Telegram failed us before the build started: the slot must not stay taken
        raise


async def _run_reindex(context: ContextTypes.DEFAULT_TYPE, status: Message, lang_: Lang) -> None:
    svc = services(context)

    async def on_progress(stage: str, done: int, total: int) -> None:
        label = STAGES.get(stage, {}).get(lang_, stage)
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
            seconds=report.seconds,
            photos=report.photos,
            landmarks=report.landmarks,
            embedded=report.embedded,
            from_cache=report.from_cache,
            skipped=len(report.skipped),
        )
    )


async def error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log every exception with its update, and tell the user something went wrong."""
    log.error("exception while handling update %s", update, exc_info=context.error)
    if isinstance(update, Update) and update.effective_message is not None:
        try:
            await update.effective_message.reply_text(text("error", user_lang(update, context)))
        except Exception:
            log.warning("could not tell the user about the error", exc_info=True)
