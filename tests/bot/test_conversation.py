"""End to end: the real Application against the fake Bot API, one scenario per test."""

import asyncio
import io
import logging
from html import escape
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.bot import answers, bot_settings, running_bot, wait_answers
from tests.helpers.datagen import jpeg_bytes, scene
from tests.helpers.fake_telegram import FakeTelegram

pytestmark = pytest.mark.slow  # end to end: the whole suite (CI) runs it, the fast loop does not

USER = 42


async def test_start_and_help_in_the_users_language(bot: FakeTelegram) -> None:
    await bot.send(USER, text="/start", language_code="ru")
    await bot.send(USER + 1, text="/help", language_code="pt-br")  # a language the guide does not speak: English
    await bot.send(USER + 2, text="/help", language_code="de-AT")
    await bot.send(USER + 3, text="/start", language_code="zh-hans")
    ru = (await bot.wait_replies(USER))[0]
    en = (await bot.wait_replies(USER + 1))[0]
    de = (await bot.wait_replies(USER + 2))[0]
    zh = (await bot.wait_replies(USER + 3))[0]
    assert "Пришлите фото" in ru.text and "14 мест" in ru.text  # the plural form for 14
    assert "Photo → landmark" in en.text and en.params["parse_mode"] == "HTML"
    assert "Foto → Sehenswürdigkeit" in de.text and "3 Stunden" in de.text
    assert zh.text.startswith("您好") and "14 个地方" in zh.text


async def test_photo_gets_a_card_then_the_other_candidates(bot: FakeTelegram, shared_guide) -> None:
    photo = jpeg_bytes(scene(2, 60))
    expected = shared_guide.recognize(photo)
    assert expected.match
    await bot.send_photo(USER, photo, language_code="en")
    card, others = await bot.wait_replies(USER, 2)
    index, best = shared_guide.index, expected.landmarks[0]
    described = index.describe(best.xid, "en")
    assert card.method == "sendPhoto" and card.text.startswith("This is most likely:")
    title = f"<b>{escape(described.name)}</b> ({escape(best.landmark.name)}) <i>(transliterated)</i>"
    assert card.text.splitlines()[1] == title  # no English label without enrichment: transliterated, marked
    # The calibrated probability of being right, not the vote share.
    assert expected.confidence is not None and f"{round(100 * expected.confidence)}%" in card.text
    assert card.files["photo"] == Path(expected.matched_photo).read_bytes()  # the dataset photo that matched
    buttons = [b for row in card.params["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["callback_data"] for b in buttons[:2]] == [f"say:en:{best.xid}", f"local:en:{best.xid}"]
    urls = [b.get("url", "") for b in buttons[2:]]
    assert urls[0].startswith(f"https://www.openstreetmap.org/?mlat={best.landmark.lat:.6f}")
    assert "openstreetmap.org/directions" in urls[1] and buttons[-3]["callback_data"] == f"more:{best.xid}"
    assert [b["text"] for b in buttons[-2:]] == ["✓ Right", "✗ Wrong"]
    assert others.text.startswith("Other candidates:")
    lines = others.text.splitlines()
    for rank, hit in enumerate(expected.landmarks[1:], 2):
        assert lines[rank - 1].startswith(f"{rank}. {escape(index.describe(hit.xid, 'en').name)}")
    assert "Categories:" in others.text and "interesting_places" not in others.text and "_" not in others.text
    actions = bot.sent("sendChatAction", USER)
    assert actions and actions[0].params["action"] == "typing"

    await bot.press_button(USER, f"more:{best.xid}", card)
    album = (await bot.wait_for(lambda: bot.sent("sendMediaGroup", USER)))[0]
    assert 2 <= len(album.params["media"]) <= 5 and all(
        i["caption"].endswith(described.city) for i in album.params["media"]
    )
    assert bot.sent("answerCallbackQuery")


async def test_an_unsure_answer_has_no_card_and_no_map(fake, built_dataset, model_dirs, shared_guide, tmp_path) -> None:
    from core import Guide, RankingParams

    strict = Guide(
        shared_guide.index,
        shared_guide.image_encoder,
        shared_guide.text_encoder,
        RankingParams(match_threshold=1.01),  # nothing is ever sure
        data_dir=built_dataset.data_dir,
    )
    settings = bot_settings(fake, built_dataset, model_dirs, bot_state_file=tmp_path / "state.json")
    async with running_bot(settings, strict):
        await fake.send_photo(USER, jpeg_bytes(scene(0, 63)))
        (reply,) = await fake.wait_replies(USER)
        await asyncio.sleep(0.2)
    assert len(answers(fake, USER)) == 1
    # A guess has no map or route: its only buttons are the feedback ones.
    buttons = [b for row in reply.params["reply_markup"]["inline_keyboard"] for b in row]
    assert reply.method == "sendMessage" and reply.text.startswith("🤔")
    assert [b["text"] for b in buttons] == ["✓ Right", "✗ Wrong"] and not any("url" in b for b in buttons)
    assert reply.text.splitlines()[1].startswith("1. ") and "Categories:" in reply.text


async def test_photo_is_fetched_at_the_smallest_size_the_model_can_use(bot: FakeTelegram, shared_guide) -> None:
    view = scene(2, 61, (1280, 960))
    small = jpeg_bytes(view.resize((320, 240)))
    await bot.send_photo(
        USER, small, larger=[(jpeg_bytes(view.resize((800, 600))), 800, 600), (jpeg_bytes(view), 1280, 960)]
    )
    reply = (await bot.wait_replies(USER))[0]
    (downloaded,) = bot.downloaded()
    assert bot.file(downloaded) == small
    assert shared_guide.recognize(small).landmarks[0].landmark.name in reply.text.splitlines()[1]
    # A wide photo's 320 px version is 180 px high, too small for the model: the next size up is used.
    wide = scene(2, 62, (1280, 720))
    medium = jpeg_bytes(wide.resize((800, 450)))
    await bot.send_photo(USER + 1, jpeg_bytes(wide.resize((320, 180))), larger=[(medium, 800, 450)])
    await bot.wait_replies(USER + 1)
    assert bot.file(bot.downloaded()[-1]) == medium


async def test_image_sent_as_a_file_is_recognised(bot: FakeTelegram) -> None:
    await bot.send_document(USER, jpeg_bytes(scene(1, 61)), "image/jpeg", "IMG_0001.JPG", language_code="ru")
    card, others = await bot.wait_replies(USER, 2)
    assert card.text.startswith("Это, скорее всего:") and "Категории" in others.text


async def test_text_gets_an_album_of_five_captioned_photos(bot: FakeTelegram) -> None:
    await bot.send(USER, text="Храм на Крови", language_code="ru")
    reply = (await bot.wait_replies(USER))[0]
    assert reply.method == "sendMediaGroup"
    media = reply.params["media"]
    assert len(media) == 5 and all(item["type"] == "photo" for item in media)
    assert all(item["caption"] for item in media)
    assert len(reply.files) == 5 and all(data[:2] == b"\xff\xd8" for data in reply.files.values())
    assert bot.sent("sendChatAction", USER)[0].params["action"] == "upload_photo"


async def test_lang_buttons_switch_the_language(bot: FakeTelegram) -> None:
    await bot.send(USER, text="/lang", language_code="ru")
    menu = (await bot.wait_replies(USER))[0]
    assert [b["callback_data"] for b in menu.params["reply_markup"]["inline_keyboard"][0]] == ["lang:ru", "lang:en"]
    await bot.press_button(USER, "lang:en", menu)
    await bot.wait_for(lambda: bot.sent("editMessageText", USER))
    assert bot.sent("answerCallbackQuery")
    await bot.send(USER, text="/start", language_code="ru")
    replies = await bot.wait_replies(USER, 3)
    assert replies[-1].text.startswith("Hello!")
    await bot.send(USER, text="/lang ru", language_code="ru")
    assert (await bot.wait_replies(USER, 4))[-1].text.startswith("Готово")


async def test_the_chosen_language_survives_a_restart(fake, built_dataset, model_dirs, shared_guide, tmp_path) -> None:
    dataset = built_dataset.copy_to(tmp_path)
    settings = bot_settings(fake, dataset, model_dirs)
    async with running_bot(settings, shared_guide):
        await fake.send(USER, text="/lang en", language_code="ru")
        assert (await fake.wait_replies(USER))[0].text.startswith("Done")
    assert settings.state_file == dataset.artifacts_dir / "bot_state.json" and settings.state_file.is_file()
    async with running_bot(settings, shared_guide):
        await fake.send(USER, text="/start", language_code="ru")
        assert (await fake.wait_replies(USER, 2))[-1].text.startswith("Hello!")


async def test_hostile_and_odd_inputs_each_get_a_short_helpful_reply(bot: FakeTelegram, huge_png_file) -> None:
    bomb = io.BytesIO()
    Image.new("L", (12_000, 6_000)).save(bomb, "PNG")
    cases = [
        (101, dict(photo_bytes=b"\xff\xd8 definitely not a jpeg"), "can't open"),
        (102, dict(photo_bytes=jpeg_bytes(scene(0, 1)), file_size=25 * 1024 * 1024), "over 20 MB"),
        (103, dict(document=(bomb.getvalue(), "image/png", "bomb.png")), "too large"),
        (110, dict(document=(_elongated_png(), "image/png", "strip.png")), "too elongated"),
        # 1.5 MB, 40,000 × 40,000 px: its GPS was read by decoding it all (issue #31, row 1)
        (111, dict(document=(huge_png_file.read_bytes(), "image/png", "huge.png")), "too large"),
        (104, dict(document=(b"%PDF-1.4", "application/pdf", "ticket.pdf")), "not an image"),
        (
            105,
            dict(
                sticker={
                    "file_id": "s",
                    "file_unique_id": "s",
                    "type": "regular",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                }
            ),
            "photos and text only",
        ),
        (106, dict(voice={"file_id": "v", "file_unique_id": "v", "duration": 2}), "photos and text only"),
        (
            107,
            dict(venue={"location": {"latitude": 56.8, "longitude": 60.6}, "title": "x", "address": "y"}),
            "photos and text only",
        ),
        (108, dict(text="/frobnicate"), "/help"),
        (109, dict(text="ok", edited=True), "edited"),
    ]
    for user, case, _ in cases:
        if "photo_bytes" in case:
            await bot.send_photo(user, case["photo_bytes"], file_size=case.get("file_size"))
        elif "document" in case:
            await bot.send_document(user, *case["document"])
        else:
            await bot.send(user, **case)
    for user, _, expected in cases:
        reply = (await bot.wait_replies(user))[0]
        assert expected in reply.text, (user, reply.text)
        assert len(reply.text) < 300
    # Only the corrupt photo, the bombs and the strip were downloaded: not the 25 MB photo, not the PDF.
    assert len(bot.sent("getFile")) == 4


def _elongated_png() -> bytes:
    """137 KB that CLIP's resize would have turned into gigabytes (issue #16, row 4)."""
    buffer = io.BytesIO()
    Image.new("L", (100, 400_000)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


async def test_a_download_telegram_refuses_as_too_big_gets_the_size_message(bot: FakeTelegram) -> None:
    file = bot.add_file(b"\xff\xd8", file_size=None)
    bot.too_big.add(file["file_id"])
    del file["file_size"]  # Telegram does not always say how big a document is
    await bot.send(USER, document=file | {"mime_type": "image/jpeg", "file_name": "huge.jpg"})
    reply = (await bot.wait_replies(USER))[0]
    assert "over 20 MB" in reply.text


async def test_longest_possible_text_is_searched(bot: FakeTelegram) -> None:
    await bot.send(USER, text=("собор " * 700)[:4096])
    reply = (await bot.wait_replies(USER))[0]
    assert reply.method == "sendMediaGroup" and len(reply.params["media"]) == 5


async def test_a_burst_of_30_photos_from_10_users_is_all_answered(bot: FakeTelegram) -> None:
    users = range(200, 210)
    for round_ in range(3):
        for i, user in enumerate(users):
            await bot.send_photo(user, jpeg_bytes(scene(i % 14, 300 + round_)))
    for user in users:
        replies = await wait_answers(bot, user, 3, timeout=60)
        assert len(replies) == 3
        assert all("%" in r.text or "unlikely" in r.text for r in replies)  # an answer, not an error


async def test_a_fast_user_is_asked_to_wait(bot: FakeTelegram) -> None:
    for view in range(8):
        await bot.send_photo(USER, jpeg_bytes(scene(0, 400 + view)))
    replies = await wait_answers(bot, USER, 8, timeout=60)
    texts = [r.text for r in replies]
    assert sum("wait a few seconds" in t for t in texts) == 3
    assert sum(t.startswith("This is most likely") for t in texts) == 5


async def test_flood_control_429_is_retried(bot: FakeTelegram) -> None:
    bot.fail("sendMessage", times=1, retry_after=1)
    await bot.send(USER, text="/start")
    reply = (await bot.wait_replies(USER, timeout=30))[0]
    assert reply.text.startswith("Hello!")
    assert [c.method for c in bot.calls if c.method.startswith("sendMessage")] == ["sendMessage:429", "sendMessage"]


async def test_an_unexpected_error_is_logged_and_the_user_told(
    bot: FakeTelegram, shared_guide, monkeypatch, caplog
) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("index exploded")

    monkeypatch.setattr(shared_guide, "search", broken)
    await bot.send(USER, text="кремль")
    reply = (await bot.wait_replies(USER))[0]
    assert "Something went wrong" in reply.text
    assert any("index exploded" in (r.exc_text or "") or r.exc_info for r in caplog.records)


async def test_updates_without_a_user_are_rate_limited_by_chat(bot: FakeTelegram) -> None:
    """Issue #16 row 14: a message with no `from` (sent on behalf of a chat) is still throttled."""
    import time as clock

    for i in range(7):
        await bot._push(
            {
                "message": {
                    "message_id": 9000 + i,
                    "date": int(clock.time()),
                    "chat": {"id": 4242, "type": "private", "first_name": "Anon"},
                    "text": f"собор {i}",
                }
            }
        )
    await bot.wait_for(lambda: len(bot.replies(4242)) + len(bot.sent("sendMediaGroup", 4242)) >= 7, timeout=60)
    assert any(
        "wait" in c.params.get("text", "").lower() or "подожд" in c.params.get("text", "") for c in bot.replies(4242)
    )


@pytest.mark.parametrize("data", ["lang:xx", "nonsense", "fb:1:2:3", ""])
async def test_every_callback_is_answered_even_unknown_ones(bot: FakeTelegram, data: str) -> None:
    await bot.send(77, text="/lang")
    prompt = (await bot.wait_replies(77))[0]
    await bot.press_button(77, data or "x", prompt)
    answered = await bot.wait_for(lambda: bot.sent("answerCallbackQuery"))
    assert "expired" in answered[0].params.get("text", "")


async def test_phone_photos_sent_as_files_are_answered(bot: FakeTelegram) -> None:
    """Issue #15: an iPhone HEIC, and a 60-megapixel JPEG (decoded at 1/8 scale, not refused)."""
    heic = io.BytesIO()
    scene(0, 7).resize((640, 480)).save(heic, "HEIF")
    huge = io.BytesIO()
    scene(1, 7).resize((9000, 6700)).save(huge, "JPEG", quality=60)
    assert len(huge.getvalue()) < 20 * 1024 * 1024
    await bot.send_document(201, heic.getvalue(), "image/heic", "IMG_0001.HEIC")
    await bot.send_document(202, huge.getvalue(), "image/jpeg", "IMG_0002.JPG")
    for user in (201, 202):
        reply = (await bot.wait_replies(user, timeout=30))[0]
        assert reply.text.startswith(("This is most likely", "I'm not sure")), reply.text


def test_the_token_is_redacted_from_every_log_form() -> None:
    import logging

    from bot.logs import RedactingFilter

    token = "123456:SECRET-part_xyz"
    record = logging.LogRecord(
        "httpx", logging.DEBUG, "", 0, "POST %s", ("https://x/bot123456%3ASECRET-part_xyz/getMe",), None
    )
    try:
        raise RuntimeError(f"failed https://api.telegram.org/bot{token}/getMe")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    RedactingFilter([token]).filter(record)
    text = record.getMessage() + record.exc_text
    assert "SECRET" not in text and "***" in text


async def test_a_failing_update_is_logged_by_id_and_kind_never_by_its_content(
    bot: FakeTelegram, shared_guide, monkeypatch, caplog
) -> None:
    """The error handler logged the whole Update: a tourist's text and location in logs `/forget` cannot reach."""

    def broken(*args, **kwargs):
        raise RuntimeError("search index exploded")

    monkeypatch.setattr(shared_guide, "search", broken)
    with caplog.at_level(logging.INFO):
        await bot.send(USER, text="hotel Tverskaya 7 room 512")
        reply = (await bot.wait_replies(USER))[0]
    assert "went wrong" in reply.text
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "exception while handling update" in logged and "(message)" in logged
    assert "Tverskaya" not in logged and "search index exploded" in logged
