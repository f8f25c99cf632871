"""The buttons under a landmark's card, wherever a card is sent (a recognised photo, a sight reached on a
live location): one owner, so that every card offers the same things; and the one-tap location request
that "what is near" and /walk both send."""

from __future__ import annotations

from telegram import InlineKeyboardButton, KeyboardButton, ReplyKeyboardMarkup

from bot.narration import voice_row
from bot.texts import Lang, map_url, route_url, text
from core import Landmark, LandmarkText

MORE_PREFIX = "more:"  # callback data of "More photos": more:<xid> (XIDs are short, safe names)


def card_markup(
    landmark: Landmark, card: LandmarkText, lang: Lang, start: tuple[float, float] | None = None
) -> list[list[InlineKeyboardButton]]:
    """🔊 🗣, then Map, Route, Wikipedia and More photos (a route from `start` when the tourist's point is known)."""
    links = [
        (text("map", lang), map_url(landmark)),
        (text("route", lang), route_url(landmark, start)),
        (text("wikipedia", lang), card.wikipedia or None),
    ]
    row = [InlineKeyboardButton(label, url=url) for label, url in links if url]
    more = [InlineKeyboardButton(text("more_photos", lang), callback_data=f"{MORE_PREFIX}{landmark.xid}")]
    rows = [voice_row(landmark.xid, lang), row[:2], row[2:] + more] if row else [voice_row(landmark.xid, lang), more]
    return [r for r in rows if r]


def location_request(lang: Lang) -> ReplyKeyboardMarkup:
    """A keyboard with one button that shares the tourist's location (Telegram asks them first)."""
    button = KeyboardButton(text("nearby_button", lang), request_location=True)
    return ReplyKeyboardMarkup([[button]], resize_keyboard=True, one_time_keyboard=True)
