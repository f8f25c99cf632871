"""The guide that speaks: 🔊 (a landmark's story as a voice message) and 🗣 (its Russian name, shown and
said, for a taxi driver or a passer-by).

A story is said in the language of the text the card shows: the reader's where the card has it, the
fallback's (usually English) where the description fell back, and a transliterated name is said from its
Russian original. Rendering runs in the compute pool under a deadline; the first send uploads, later sends
re-use the `file_id` Telegram returned (bot/voice_ids.py), and a refused file_id is uploaded again.
"""

from __future__ import annotations

import asyncio
import logging
from html import escape

from telegram import InlineKeyboardButton, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest

from bot.context import GuideContext, pressed
from bot.texts import LANGUAGES, NAME_LIMIT, Lang, clip_text, text
from core import STORY_LENGTH, Landmark, LandmarkText, Line, SpeechError, clip_for_speech

log = logging.getLogger(__name__)

LISTEN = "say:"  # callback data of 🔊: say:<language of the card>:<xid>
LOCAL = "local:"  # callback data of 🗣: local:<language of the card>:<xid>
# Telegram's limit on callback data, bytes: a card for a landmark whose id does not fit gets no voice buttons.
CALLBACK_DATA_LIMIT = 64
# Seconds a voice message may wait for a compute worker on top of its render deadline (TTS_DEADLINE).
VOICE_QUEUE_S = 5.0


def voice_row(xid: str, lang: Lang) -> list[InlineKeyboardButton]:
    """🔊 and 🗣 for a landmark's card, bound to the card's language."""
    buttons = [(text("listen", lang), f"{LISTEN}{lang}:{xid}"), (text("show_local", lang), f"{LOCAL}{lang}:{xid}")]
    return [
        InlineKeyboardButton(label, callback_data=data)
        for label, data in buttons
        if len(data.encode("utf-8")) <= CALLBACK_DATA_LIMIT
    ]


def story(card: LandmarkText, lang: Lang) -> list[Line]:
    """What 🔊 says: the name (in the language it is in), then the description, each in its own voice."""
    if card.spoken_name_lang == lang:
        lines = [Line(lang, text("narration_this_is", lang, name=card.spoken_name))]
    else:
        lines = [Line(lang, text("narration_intro", lang)), Line(card.spoken_name_lang, f"{card.spoken_name}.")]
    if card.description:
        lines.append(Line(card.description_lang or lang, clip_for_speech(card.description, STORY_LENGTH)))
    else:
        lines.append(Line(lang, text("narration_no_story", lang)))
    return lines


def local_words(landmark: Landmark, address: str = "") -> list[Line]:
    """What 🗣 says, in Russian: the place, its address and city, and how to get there."""
    place = ", ".join(part for part in (landmark.name, address, landmark.city) if part)
    return [Line("ru", f"{place}. {text('local_ask', 'ru')}")]


async def _pressed_landmark(update: Update, context: GuideContext, prefix: str) -> tuple[Lang, str] | None:
    """(card language, xid) of a voice button, the press answered; None (answered "expired") for data that
    no card of this index carries — a forged or stale button changes nothing."""
    query = pressed(update)
    lang, _, xid = (query.data or "").removeprefix(prefix).partition(":")
    if lang not in LANGUAGES or xid not in context.services.guide.index.landmarks:
        await query.answer(text("expired", context.lang))
        return None
    await query.answer()
    return lang, xid


async def listen(update: Update, context: GuideContext) -> None:
    """🔊: the landmark's story as a voice message, in the language of the card it was pressed on."""
    if (found := await _pressed_landmark(update, context, LISTEN)) is None:
        return
    lang, xid = found
    card = context.services.guide.index.describe(xid, lang)
    await send_voice(update, context, story(card, lang), clip_text(card.name, NAME_LIMIT), lang)


async def show_local(update: Update, context: GuideContext) -> None:
    """🗣: the landmark's own (Russian) name in bold with its city, and a voice saying it, for a local."""
    if (found := await _pressed_landmark(update, context, LOCAL)) is None:
        return
    lang, xid = found
    index = context.services.guide.index
    landmark, address = index.landmarks[xid], index.address(xid)
    lines = [f"<b>{escape(clip_text(landmark.name, NAME_LIMIT))}</b>"]
    lines += [escape(clip_text(part, NAME_LIMIT)) for part in (address, landmark.city) if part]
    if landmark.lat is not None and landmark.lon is not None:
        lines.append(f"<code>{landmark.lat:.5f}, {landmark.lon:.5f}</code>")
    hint = text("local_hint", lang, ask=text("local_ask", lang))  # what the Russian line says, in theirs
    lines += ["", escape(text("local_ask", "ru")), "", f"<i>{escape(hint)}</i>"]
    chat = _chat_id(update)
    await context.bot.send_message(chat, "\n".join(lines), parse_mode=ParseMode.HTML)
    await send_voice(update, context, local_words(landmark, address), clip_text(landmark.name, NAME_LIMIT), lang)


async def send_voice(update: Update, context: GuideContext, lines: list[Line], caption: str, lang: Lang) -> None:
    """The voice message of `lines` to the update's chat: by file_id when Telegram has it, else rendered and
    uploaded; a voice that cannot be made gets one short message (and one log line)."""
    svc, chat = context.services, _chat_id(update)
    key = svc.narrator.key(lines)
    if (file_id := svc.voice_ids.get(key)) is not None:
        try:
            await context.bot.send_voice(chat, file_id, caption=caption)
            return
        except BadRequest as exc:  # an id Telegram no longer knows (another bot, a purge): upload again
            log.info("cached voice file_id refused (%s): uploading again", exc.message)
            await svc.io(svc.voice_ids.forget, key)
    context.application.create_task(context.bot.send_chat_action(chat, ChatAction.RECORD_VOICE), update=update)
    try:
        deadline = svc.settings.tts_deadline_s
        voice = await asyncio.wait_for(svc.compute(svc.narrator.message, lines, deadline), deadline + VOICE_QUEUE_S)
    except (SpeechError, TimeoutError) as exc:
        log.warning("voice message not made: %s", exc if str(exc) else "past its deadline")
        await context.bot.send_message(chat, text("voice_unavailable", lang))
        return
    sent = await context.bot.send_voice(chat, voice.data, caption=caption, filename="guide.ogg")
    if sent.voice is not None:
        await svc.io(svc.voice_ids.remember, key, sent.voice.file_id)


def _chat_id(update: Update) -> int:
    if update.effective_chat is None:
        raise ValueError("a voice button pressed outside a chat")
    return update.effective_chat.id
