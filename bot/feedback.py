"""Learning from tourists: ✓/✗ under each photo answer, consent to keep photos, /privacy, and the admins'
/review (approve a tourist's photo into the dataset) and /stats (how often the bot is right on real photos).

Callback data (≤ 64 bytes, validated on every press; anything else is answered "expired"):
    fb:<answer>:ok | fb:<answer>:no | fb:<answer>:c<rank> | fb:<answer>:none | fb:<answer>:skip
    consent:yes | consent:no
    rv:<answer>:ok | rv:<answer>:no | rv:<answer>:other | rv:<answer>:x<rank>
"""

from __future__ import annotations

import logging
import re

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.context import GuideContext, incoming, pressed
from bot.photos import shareable_photo
from bot.texts import BUTTON_LABEL_LIMIT, CAPTION_LIMIT, Lang, clip_text, plural, text
from core import Answer, Dataset, approve, reject, stats_summary

log = logging.getLogger(__name__)

FEEDBACK, CONSENT, REVIEW = "fb:", "consent:", "rv:"
FEEDBACK_DATA = re.compile(r"^fb:([A-Za-z0-9_-]{12}):(ok|no|none|skip|c[1-5])$")
REVIEW_DATA = re.compile(r"^rv:([A-Za-z0-9_-]{12}):(ok|no|other|x[1-5])$")


def feedback_row(answer_id: str, lang: Lang) -> list[InlineKeyboardButton]:
    return [
        InlineKeyboardButton(text("right", lang), callback_data=f"{FEEDBACK}{answer_id}:ok"),
        InlineKeyboardButton(text("wrong", lang), callback_data=f"{FEEDBACK}{answer_id}:no"),
    ]


def _without_feedback(markup: InlineKeyboardMarkup | None) -> list[list[InlineKeyboardButton]]:
    rows = markup.inline_keyboard if markup else ()
    return [list(row) for row in rows if not any(str(b.callback_data or "").startswith(FEEDBACK) for b in row)]


async def _expired(update: Update, lang: Lang) -> None:
    await pressed(update).answer(text("expired", lang))


def _shown_markup(query: CallbackQuery) -> InlineKeyboardMarkup | None:
    """The buttons under the pressed message (none when Telegram no longer gives us the message)."""
    message = query.message
    return message.reply_markup if isinstance(message, Message) else None


async def feedback_pressed(update: Update, context: GuideContext) -> None:
    """✓, ✗ and the choices after ✗: recorded once, by the user who sent the photo only."""
    query, lang, svc = pressed(update), context.lang, context.services
    match = FEEDBACK_DATA.match(query.data or "")
    answer = await svc.io(svc.store.answer, match.group(1)) if match else None
    if match is None or answer is None or query.from_user is None or answer.user_id != query.from_user.id:
        await _expired(update, lang)
        return
    choice = match.group(2)
    if choice == "no":
        await query.answer()
        await _edit_markup(query, _without_feedback(_shown_markup(query)) + _choices(answer, context, lang))
        return
    label, xid = _label(answer, choice)
    outcome = await svc.io(svc.store.give_feedback, answer.id, query.from_user.id, label, xid)
    await query.answer(text("thanks" if outcome == "recorded" else outcome, lang))
    await _edit_markup(query, _without_feedback(_shown_markup(query)))


def _label(answer: Answer, choice: str) -> tuple[str, str | None]:
    if choice == "ok":
        return "confirmed", None
    if choice.startswith("c"):
        rank = int(choice[1:])
        return "corrected", answer.candidates[rank - 1] if rank <= len(answer.candidates) else None
    return ("none", None) if choice == "none" else ("unknown", None)


def _choices(answer: Answer, context: GuideContext, lang: Lang) -> list[list[InlineKeyboardButton]]:
    index = context.services.guide.index
    rows = [
        [
            InlineKeyboardButton(
                clip_text(f"{rank}. {index.describe(xid, lang).name}", BUTTON_LABEL_LIMIT),
                callback_data=f"{FEEDBACK}{answer.id}:c{rank}",
            )
        ]
        for rank, xid in enumerate(answer.candidates, 1)
        if rank > 1 and xid in index.landmarks
    ]
    rows.append(
        [
            InlineKeyboardButton(text("none_of_these", lang), callback_data=f"{FEEDBACK}{answer.id}:none"),
            InlineKeyboardButton(text("dont_know", lang), callback_data=f"{FEEDBACK}{answer.id}:skip"),
        ]
    )
    return rows


async def _edit_markup(query: CallbackQuery, rows: list[list[InlineKeyboardButton]]) -> None:
    try:
        await query.edit_message_reply_markup(InlineKeyboardMarkup(rows) if rows else None)
    except BadRequest as exc:  # "message is not modified" after a double press
        log.debug("reply markup not changed: %s", exc)


async def ask_consent(message: Message, lang: Lang) -> None:
    """Asked once per user, after their first answer (in reply to the photo's message)."""
    keyboard = InlineKeyboardMarkup(
        [[
            InlineKeyboardButton(text("consent_yes", lang), callback_data=f"{CONSENT}yes"),
            InlineKeyboardButton(text("consent_no", lang), callback_data=f"{CONSENT}no"),
        ]]
    )  # fmt: skip
    await message.reply_text(text("consent_ask", lang), reply_markup=keyboard)


async def consent_given(update: Update, context: GuideContext) -> None:
    """Yes or no to keeping the user's photos; stored, and changeable (asked again after /forget)."""
    query, lang = pressed(update), context.lang
    choice = (query.data or "").removeprefix(CONSENT)
    if choice not in ("yes", "no") or query.from_user is None:
        await _expired(update, lang)
        return
    await context.services.io(context.services.store.set_consent, query.from_user.id, choice == "yes")
    await query.answer()
    await query.edit_message_text(text("consent_saved_yes" if choice == "yes" else "consent_saved_no", lang))


async def privacy(update: Update, context: GuideContext) -> None:
    """What the bot keeps about a user, and how to delete it."""
    lang = context.lang
    hours = plural("n_hours", context.services.settings.location_ttl_hours, lang)
    await incoming(update).reply_text(text("privacy", lang, hours=hours), parse_mode=ParseMode.HTML)


def _is_admin(update: Update, context: GuideContext) -> bool:
    user = update.effective_user
    return user is not None and user.id in context.services.settings.admin_ids


async def review(update: Update, context: GuideContext) -> None:
    """Admins: the oldest pending contribution — the photo, the user's label, the bot's answer."""
    lang, message, svc = context.lang, incoming(update), context.services
    if not _is_admin(update, context):
        await message.reply_text(text("not_admin", lang))
        return
    pending = await svc.io(svc.store.contributions, "pending")
    index = svc.guide.index
    for answer in pending:
        # A Telegram-safe copy (≤ 1280 px, JPEG): a tourist's 48 MP original would be refused by Telegram
        # and block every item after it. An item whose photo cannot be shown is skipped, not a dead end.
        photo = await svc.compute(shareable_photo, answer.photo)
        if photo is None:
            log.warning("contribution %s: its photo cannot be shown; skipped in /review", answer.id)
            continue
        names = [index.describe(x, lang).name if x in index.landmarks else x for x in answer.candidates]
        label = index.describe(answer.label_xid, lang).name if answer.label_xid in index.landmarks else "?"
        caption = text(
            "review_item", lang, left=len(pending), label=label, kind=answer.label, answer=", ".join(names[:3])
        )
        keyboard = InlineKeyboardMarkup(
            [[
                InlineKeyboardButton(text("approve", lang), callback_data=f"{REVIEW}{answer.id}:ok"),
                InlineKeyboardButton(text("reject", lang), callback_data=f"{REVIEW}{answer.id}:no"),
                InlineKeyboardButton(text("another", lang), callback_data=f"{REVIEW}{answer.id}:other"),
            ]]
        )  # fmt: skip
        await message.reply_photo(photo, caption=clip_text(caption, CAPTION_LIMIT), reply_markup=keyboard)
        return
    await message.reply_text(text("review_empty", lang))


async def review_pressed(update: Update, context: GuideContext) -> None:
    """Approve (after the checks), reject, or pick another landmark for a contribution."""
    query, lang, svc = pressed(update), context.lang, context.services
    match = REVIEW_DATA.match(query.data or "")
    answer = await svc.io(svc.store.answer, match.group(1)) if match else None
    if match is None or answer is None or not _is_admin(update, context) or answer.status != "pending":
        await _expired(update, lang)
        return
    action = match.group(2)
    if action == "other":
        await query.answer()
        rows = [
            [
                InlineKeyboardButton(
                    svc.guide.index.describe(x, lang).name[:60], callback_data=f"{REVIEW}{answer.id}:x{r}"
                )
            ]
            for r, x in enumerate(answer.candidates, 1)
            if x in svc.guide.index.landmarks
        ]
        await _edit_markup(query, rows)
        return
    dataset = Dataset(svc.settings.core.data_dir)
    if action == "no":
        await svc.io(reject, svc.store, dataset, answer.id)
        await query.answer(text("rejected", lang))
        await _edit_markup(query, [])
        return
    rank = int(action[1:]) if action.startswith("x") else 0
    xid = answer.candidates[rank - 1] if 0 < rank <= len(answer.candidates) else None
    await query.answer()
    result = await svc.compute(approve, svc.store, dataset, answer.id, xid)
    await _edit_markup(query, [])
    key = "approved" if result.ok else "not_approved"
    await query.get_bot().send_message(query.from_user.id, text(key, lang, detail=result.detail))


async def stats(update: Update, context: GuideContext) -> None:
    """Admins: real-world accuracy from tourists' feedback, in total and for the last days."""
    lang = context.lang
    if not _is_admin(update, context):
        await incoming(update).reply_text(text("not_admin", lang))
        return
    figures = await context.services.io(context.services.store.stats)
    await incoming(update).reply_text(stats_summary(figures))
