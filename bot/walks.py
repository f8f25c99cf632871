"""The guide that walks: /walk (a loop through the sights near the tourist) and a live location followed
sight by sight (each sight's card once per sharing, when the tourist comes within TRIGGER_RADIUS_M).

A live location arrives as the first message (with `live_period`), then as edits of it every few seconds;
the last edit (without `live_period`) ends it. Each edit costs one nearest-sight lookup (no model): a
point that jumps faster than anyone travels is taken for a GPS glitch and only remembered, so the next
point near it confirms it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import timedelta

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Location,
    Message,
    Update,
)
from telegram.constants import ParseMode

from bot.cards import card_markup, location_request
from bot.context import GuideContext, incoming, pressed
from bot.i18n import catalog
from bot.photos import shareable_photo
from bot.state import LiveSharing
from bot.texts import Lang, distance_text, format_sight_card, format_walk, text, walk_url
from core import WALK_RADIUS_M, GeoPoint, distance_m

log = logging.getLogger(__name__)

WALK = "walk"  # callback data of the walk button under the nearby list
# Faster than this between two points of a live location (m/s, a fast train) is a GPS jump, not a move.
MAX_TRAVEL_SPEED_MPS = 70.0
# Cards one point may bring at once (sights in one building each get theirs; more would flood the chat).
CARDS_AT_ONCE = 3


async def walk(update: Update, context: GuideContext) -> None:
    """/walk: a loop through the sights near the tourist's recent location, or a one-tap request for one."""
    message = incoming(update)
    where = context.recent_location()
    if where is None:
        context.state.wants_walk = True
        await message.reply_text(text("walk_ask", context.lang), reply_markup=location_request(context.lang))
        return
    await answer_walk(message, context, where.lat, where.lon)


async def walk_pressed(update: Update, context: GuideContext) -> None:
    """The walk button under a nearby list: the loop from the location that list was for."""
    query = pressed(update)
    await query.answer()
    where = context.recent_location()
    if where is None or not isinstance(query.message, Message):
        await context.bot.send_message(_chat_id(update), text("walk_ask", context.lang))
        return
    await answer_walk(query.message, context, where.lat, where.lon)


async def answer_walk(message: Message, context: GuideContext, lat: float, lon: float) -> None:
    """The loop from (lat, lon): its sights in walking order, legs, total, and one map link holding it all."""
    lang, svc = context.lang, context.services
    context.state.wants_walk = False
    loop = await svc.compute(svc.guide.walk, lat, lon)
    if loop is None:
        await message.reply_text(text("walk_none", lang, distance=distance_text(WALK_RADIUS_M, lang)))
        return
    names = [svc.guide.index.describe(leg.landmark.xid, lang).name for leg in loop.legs]
    button = InlineKeyboardButton(text("walk_map", lang), url=walk_url(loop))
    await message.reply_text(
        format_walk(loop, names, lang), parse_mode=ParseMode.HTML, reply_markup=InlineKeyboardMarkup([[button]])
    )


def walk_button(lang: Lang) -> InlineKeyboardButton:
    return InlineKeyboardButton(text("walk_button", lang), callback_data=WALK)


async def start_following(message: Message, context: GuideContext, where: Location) -> None:
    """A live location began: follow it, and bring the card of a sight the tourist already stands at."""
    given = where.live_period or 0
    period = given.total_seconds() if isinstance(given, timedelta) else float(given)
    started = _sent_at(message)
    point = (where.latitude, where.longitude, started)
    context.state.live = LiveSharing(message.message_id, started + period, (), point)
    reached = _reached(context, where.latitude, where.longitude)  # marked before any await: see live_moved
    await message.reply_text(text("live_following", context.lang))
    svc = context.services
    far_km = svc.settings.core.location_max_km
    if not svc.guide.sights_near(where.latitude, where.longitude, far_km * 1000, 1):
        # Following goes on (the tourist may be on the way), but nothing will come soon: said once.
        await message.reply_text(text("near_none", context.lang, km=catalog(context.lang).number(far_km)))
    for xid in reached:
        await send_sight_card(message, context, xid)


async def live_moved(update: Update, context: GuideContext) -> None:
    """A followed live location moved: a sight's card the first time the tourist comes near it."""
    message = incoming(update)
    # Everything up to the card runs without an await: updates of one sharing are handled concurrently,
    # and each must see the state the one before it left (or two of them would send the same card).
    for xid in _follow(message, context):
        await send_sight_card(message, context, xid)


def _follow(message: Message, context: GuideContext) -> list[str]:
    """Move the followed sharing to this edit's point; the sights it reaches for the first time."""
    live, where = context.state.live, message.location
    if live is None or live.message_id != message.message_id or where is None:
        return []  # not a sharing this bot follows (another message, or one from before /forget)
    at = _sent_at(message)
    if where.live_period is None or at > live.until:
        context.state.live = None  # the sharing ended (its last edit has no live_period) or expired
        return []
    point = (where.latitude, where.longitude, at)
    known = [p for p in (live.last, live.suspect) if p is not None]
    if known and all(_speed(p, point) > MAX_TRAVEL_SPEED_MPS for p in known):
        # A GPS jump: remembered as a suspect (a next point near it confirms it), no card for what lies there.
        context.state.live = replace(live, suspect=point)
        return []
    context.state.live = replace(live, last=point, suspect=None)
    if not context.remember_location(where.latitude, where.longitude):
        return []
    return _reached(context, where.latitude, where.longitude)


def _sent_at(message: Message) -> float:
    """Unix time of a location: the edit's for a moved live location, else the message's."""
    stamp = message.edit_date or message.date
    return stamp.timestamp() if stamp else time.time()


def _speed(before: tuple[float, float, float], after: tuple[float, float, float]) -> float:
    metres = distance_m(GeoPoint(before[0], before[1]), GeoPoint(after[0], after[1]))
    return metres / max(1.0, after[2] - before[2])


def _reached(context: GuideContext, lat: float, lon: float) -> list[str]:
    """The sights within TRIGGER_RADIUS_M whose card this sharing has not brought yet (marked as brought);
    sights in one building (a museum's halls) come together, at most CARDS_AT_ONCE."""
    svc, live = context.services, context.state.live
    if live is None:
        return []
    # A nearest-sights lookup in a 3-d FAISS index: microseconds, so on the event loop (no model, no file).
    near = svc.guide.sights_near(lat, lon, svc.settings.trigger_radius_m, CARDS_AT_ONCE)
    new = [place.landmark.xid for place in near if place.landmark.xid not in live.seen]
    if new:
        context.state.live = replace(live, seen=(*live.seen, *new))
    return new


async def send_sight_card(message: Message, context: GuideContext, xid: str) -> None:
    """A sight's card (its most typical photo when it has one) with the buttons every card has."""
    lang, svc = context.lang, context.services
    card = svc.guide.index.describe(xid, lang)
    hits = await svc.compute(svc.guide.landmark_photos, xid, 1)
    caption = format_sight_card(card, lang, hits[0].credit if hits else None)
    markup = InlineKeyboardMarkup(card_markup(svc.guide.index.landmarks[xid], card, lang))
    photo = await svc.compute(shareable_photo, hits[0].path) if hits else None
    if photo is not None:
        await message.reply_photo(photo, caption=caption, parse_mode=ParseMode.HTML, reply_markup=markup)
    else:
        await message.reply_text(caption, parse_mode=ParseMode.HTML, reply_markup=markup)


def _chat_id(update: Update) -> int:
    if update.effective_chat is None:
        raise ValueError("a walk button pressed outside a chat")
    return update.effective_chat.id
