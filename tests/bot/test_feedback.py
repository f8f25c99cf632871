"""Learning from tourists (issue #14): ✓/✗, corrections, consent, privacy, admin review, stats."""

from __future__ import annotations

import asyncio
import json

import pytest

from core import Guide, PhotoIndex
from core.contributions import SqliteContributionStore
from tests.helpers.bot import ADMIN, answers, bot_settings, running_bot, wait_answers
from tests.helpers.datagen import jpeg_bytes, scene


@pytest.fixture
async def learning(fake, built_dataset, model_dirs, encoders, tmp_path):
    """A bot over a private dataset copy with its own contribution store: (fake, dataset, guide, store)."""
    dataset = built_dataset.copy_to(tmp_path)
    guide = Guide(PhotoIndex.load(dataset.artifacts_dir), encoders.image, encoders.text, data_dir=dataset.data_dir)
    settings = bot_settings(
        fake, dataset, model_dirs, contrib_dir=tmp_path / "contrib", bot_state_file=tmp_path / "state.json"
    )
    async with running_bot(settings, guide):
        yield fake, dataset, guide, SqliteContributionStore(tmp_path / "contrib")


async def _consent(fake, user: int, agreed: bool) -> None:
    """The first photo's answer ends with the consent question; answer it."""
    await fake.send_photo(user, jpeg_bytes(scene(4, 600)))
    await fake.wait_for(lambda: any(c.text.startswith("May I keep") for c in fake.replies(user)))
    question = next(c for c in fake.replies(user) if c.text.startswith("May I keep"))
    await fake.press_button(user, "consent:yes" if agreed else "consent:no", question)
    await fake.wait_for(lambda: fake.sent("editMessageText", user))


async def _photo_answer(fake, user: int, photo: bytes):
    before = len(answers(fake, user))
    await fake.send_photo(user, photo)
    card = (await wait_answers(fake, user, before + 1))[before]
    data = [
        b["callback_data"]
        for row in card.params["reply_markup"]["inline_keyboard"]
        for b in row
        if "callback_data" in b
    ]
    feedback = [d for d in data if d.startswith("fb:")]
    return card, feedback[0].rsplit(":", 1)[0]  # "fb:<answer id>"


def _last_answer(store: SqliteContributionStore, user: int):
    return max((a for a in store.contributions() + _all(store) if a.user_id == user), key=lambda a: a.created_at)


def _all(store):
    return [store.answer(row[0]) for row in store._db.execute("SELECT id FROM answers")]


async def test_right_records_a_confirmation_once(learning) -> None:
    fake, _, guide, store = learning
    card, prefix = await _photo_answer(fake, 701, jpeg_bytes(scene(2, 601)))
    await fake.press_button(701, f"{prefix}:ok", card)
    await fake.wait_for(lambda: fake.sent("editMessageReplyMarkup", 701))
    rows = fake.sent("editMessageReplyMarkup", 701)[0].params.get("reply_markup", {}).get("inline_keyboard", [])
    assert not any(b.get("callback_data", "").startswith("fb:") for row in rows for b in row)  # ✓/✗ gone
    await fake.press_button(701, f"{prefix}:ok", card)  # twice
    await fake.wait_for(lambda: len(fake.sent("answerCallbackQuery")) >= 2)
    assert "already" in fake.sent("answerCallbackQuery")[-1].params["text"]
    answer = _last_answer(store, 701)
    assert answer.label == "confirmed" and answer.label_xid == answer.candidates[0]


async def test_wrong_then_another_candidate_records_a_correction(learning) -> None:
    fake, _, _, store = learning
    card, prefix = await _photo_answer(fake, 702, jpeg_bytes(scene(3, 602)))
    await fake.press_button(702, f"{prefix}:no", card)
    edited = (await fake.wait_for(lambda: fake.sent("editMessageReplyMarkup", 702)))[0]
    offered = [
        b["callback_data"]
        for row in edited.params["reply_markup"]["inline_keyboard"]
        for b in row
        if "callback_data" in b
    ]
    assert f"{prefix}:c2" in offered and f"{prefix}:none" in offered and f"{prefix}:skip" in offered
    await fake.press_button(702, f"{prefix}:c3", card)
    await fake.wait_for(lambda: len(fake.sent("editMessageReplyMarkup", 702)) >= 2)
    answer = _last_answer(store, 702)
    assert answer.label == "corrected" and answer.label_rank == 3 and answer.label_xid == answer.candidates[2]


async def test_none_of_these_and_forged_and_foreign_presses(learning) -> None:
    fake, _, _, store = learning
    card, prefix = await _photo_answer(fake, 703, jpeg_bytes(scene(5, 603)))
    for user, data in ((704, f"{prefix}:ok"), (703, "fb:AAAAAAAAAAAA:ok"), (703, f"{prefix}:c9"), (703, "fb:x")):
        await fake.press_button(user, data, card)
    await fake.wait_for(lambda: len(fake.sent("answerCallbackQuery")) >= 4)
    assert all("expired" in c.params["text"] for c in fake.sent("answerCallbackQuery"))
    assert _last_answer(store, 703).label is None  # nothing recorded
    await fake.press_button(703, f"{prefix}:none", card)
    await fake.wait_for(lambda: len(fake.sent("answerCallbackQuery")) >= 5)
    assert _last_answer(store, 703).label == "none"


async def test_consent_decides_whether_the_photo_is_kept_and_forget_removes_everything(learning) -> None:
    fake, _, _, store = learning
    await _consent(fake, 705, agreed=False)
    await _photo_answer(fake, 705, jpeg_bytes(scene(1, 604)))
    assert _last_answer(store, 705).photo is None and store.consent(705) is False
    await _consent(fake, 706, agreed=True)
    card, prefix = await _photo_answer(fake, 706, jpeg_bytes(scene(1, 605)))
    kept = _last_answer(store, 706).photo
    assert kept is not None and kept.is_file()
    await fake.send(706, text="/forget")
    await fake.wait_for(lambda: any("deleted" in c.text for c in fake.replies(706)))
    assert not kept.exists() and store.consent(706) is None
    assert not [a for a in _all(store) if a.user_id == 706]


async def test_an_approved_correction_becomes_part_of_the_index(learning) -> None:
    """Through Telegram alone: consent, a correction, the admin's /review approve, /reindex."""
    fake, dataset, guide, store = learning
    await _consent(fake, 707, agreed=True)
    tourist = jpeg_bytes(scene(6, 606))
    card, prefix = await _photo_answer(fake, 707, tourist)
    await fake.press_button(707, f"{prefix}:no", card)
    await fake.wait_for(lambda: fake.sent("editMessageReplyMarkup", 707))
    await fake.press_button(707, f"{prefix}:c2", card)
    await fake.wait_for(lambda: _last_answer(store, 707).label == "corrected")
    target = _last_answer(store, 707).label_xid

    await fake.send(7, text="/review")  # not an admin
    assert "administrators only" in (await fake.wait_replies(7))[0].text
    await fake.send(ADMIN, text="/review")
    item = (await fake.wait_for(lambda: fake.sent("sendPhoto", ADMIN)))[0]
    assert item.files["photo"] == tourist
    await fake.press_button(ADMIN, f"rv:{prefix.removeprefix('fb:')}:ok", item)
    done = await fake.wait_for(lambda: [c for c in fake.replies(ADMIN) if "Added to the dataset" in c.text])
    path = done[0].text.split("dataset: ")[1].split(". ")[0]
    assert (dataset.data_dir / path).read_bytes() == tourist and f"/{target}/" in path
    assert _last_answer(store, 707).status == "approved"

    await fake.send(ADMIN, text="/reindex")
    await fake.wait_for(lambda: any("Index updated" in c.text for c in fake.replies(ADMIN)), timeout=60)
    assert any(p.path == path for p in guide.index.photos), [p.path for p in guide.index.photos if "contrib" in p.path]
    from core.imaging import decode_image

    vector = guide.image_encoder.encode_images([decode_image(tourist, draft=True)])
    similarities, rows = guide.index.search(vector, 1)
    assert guide.index.photos[rows[0][0]].path == path and similarities[0][0] > 0.999  # its own nearest neighbour


async def test_stats_for_admins(learning) -> None:
    fake, _, _, _ = learning
    card, prefix = await _photo_answer(fake, 708, jpeg_bytes(scene(2, 607)))
    await fake.press_button(708, f"{prefix}:ok", card)
    await asyncio.sleep(0.3)
    await fake.send(ADMIN, text="/stats")
    text = (await fake.wait_for(lambda: [c for c in fake.replies(ADMIN) if c.text.startswith("total")]))[0].text
    assert "right 100% (expected " in text and "✓1" in text and "photos" in text  # beside the calibrated promise
    await fake.send(708, text="/stats")
    await fake.wait_for(lambda: any("administrators only" in c.text for c in fake.replies(708)))


async def test_privacy_says_what_is_kept(learning) -> None:
    fake, _, _, _ = learning
    await fake.send(709, text="/privacy")
    text = (await fake.wait_replies(709))[0].text
    assert "language" in text and "location (3 hours)" in text and "only if you agreed" in text and "/forget" in text


def _huge_jpeg() -> bytes:
    """A 48 MP-class original as phones send it as a file (9000×6700): Telegram refuses it as a photo."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (9000, 6700), (120, 140, 90)).save(out, "JPEG", quality=80)
    return out.getvalue()


async def test_a_huge_tourist_photo_reaches_review_as_a_telegram_safe_copy(learning) -> None:
    import io

    from PIL import Image

    fake, _, _, store = learning
    await _consent(fake, 711, agreed=True)
    await fake.send_document(711, _huge_jpeg(), "image/jpeg", "IMG_0001.JPG")

    def rated() -> list:
        return [c for c in fake.replies(711) if "fb:" in json.dumps(c.params.get("reply_markup", {}))]

    card = (await fake.wait_for(lambda: len(rated()) >= 2 and rated(), timeout=60))[-1]
    prefix = next(
        b["callback_data"] for row in card.params["reply_markup"]["inline_keyboard"] for b in row
        if b.get("callback_data", "").startswith("fb:")
    ).rsplit(":", 1)[0]  # fmt: skip
    await fake.press_button(711, f"{prefix}:ok", card)
    await fake.wait_for(lambda: _last_answer(store, 711).status == "pending")
    await fake.send(ADMIN, text="/review")
    item = (await fake.wait_for(lambda: fake.sent("sendPhoto", ADMIN)))[0]
    shown = Image.open(io.BytesIO(item.files["photo"]))
    assert shown.format == "JPEG" and max(shown.size) <= 1280 and len(item.files["photo"]) <= 10 * 1024 * 1024
    assert _last_answer(store, 711).photo.stat().st_size > 10 * len(item.files["photo"])  # the original is kept


async def test_a_double_approve_adds_the_photo_once_and_answers_both_presses(learning) -> None:
    fake, dataset, _, store = learning
    await _consent(fake, 712, agreed=True)
    card, prefix = await _photo_answer(fake, 712, jpeg_bytes(scene(5, 612)))
    await fake.press_button(712, f"{prefix}:ok", card)
    await fake.wait_for(lambda: _last_answer(store, 712).status == "pending")
    await fake.send(ADMIN, text="/review")
    item = (await fake.wait_for(lambda: fake.sent("sendPhoto", ADMIN)))[0]
    answered = len(fake.sent("answerCallbackQuery"))
    data = f"rv:{prefix.removeprefix('fb:')}:ok"
    await asyncio.gather(fake.press_button(ADMIN, data, item), fake.press_button(ADMIN, data, item))
    await fake.wait_for(lambda: len(fake.sent("answerCallbackQuery")) >= answered + 2)
    await asyncio.sleep(0.5)
    added = [c for c in fake.replies(ADMIN) if "Added to the dataset" in c.text]
    assert len(added) == 1 and not any("went wrong" in c.text for c in fake.replies(ADMIN))
    assert len(list((dataset.data_dir / "images").rglob("contrib_*"))) == 1


async def test_a_store_locked_by_a_backup_delays_no_one_else(learning) -> None:
    import sqlite3
    import time

    fake, _, _, store = learning
    card, prefix = await _photo_answer(fake, 713, jpeg_bytes(scene(2, 613)))
    backup = sqlite3.connect(store.folder / "contributions.sqlite", isolation_level=None)
    backup.execute("BEGIN EXCLUSIVE")  # an admin's sqlite3 shell, a backup tool
    try:
        await fake.press_button(713, f"{prefix}:ok", card)  # waits for the lock, off the event loop
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await fake.send(714, text="/start")
        await fake.wait_replies(714, timeout=10)
        assert time.monotonic() - started < 3
    finally:
        backup.execute("ROLLBACK")
        backup.close()
    await fake.wait_for(lambda: _last_answer(store, 713).label == "confirmed", timeout=40)


def test_reject_after_approve_takes_the_photo_out_of_the_dataset(tmp_path, built_dataset) -> None:
    from core import Dataset, approve, basic_check, reject

    dataset = built_dataset.copy_to(tmp_path)
    store = SqliteContributionStore(tmp_path / "contrib")
    xid = next(iter(Dataset(dataset.data_dir).landmarks()))
    answer_id = store.record_answer(9, [xid], True, 10.0, jpeg_bytes(scene(7, 99)), ".jpg")
    store.give_feedback(answer_id, 9, "confirmed", None)
    approval = approve(store, Dataset(dataset.data_dir), answer_id, check=basic_check)
    assert approval.ok and (dataset.data_dir / approval.detail).is_file()
    assert "removed" in reject(store, Dataset(dataset.data_dir), answer_id)
    assert not (dataset.data_dir / approval.detail).exists() and store.answer(answer_id).status == "rejected"
    assert approval.detail in Dataset(dataset.data_dir).removed_paths()
