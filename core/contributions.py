"""What tourists tell us: each photo answer, their ✓/✗ feedback, consent, and the photos they let us keep.
One owner of the contribution store (`CONTRIB_DIR`): the photos as files, the records in SQLite,
behind `ContributionStore` so a server database could replace it.

    CONTRIB_DIR/contributions.sqlite   answers (with feedback and review status), consent
    CONTRIB_DIR/photos/<sha256>.<ext>  photos of users who agreed to keep them

Caps: at most `max_bytes` of photos and `per_user_per_day` kept photos per user and day; past either,
the answer and feedback are still recorded (statistics) but the photo is not kept, and a warning is
logged — the store never grows without bound silently. `forget_user` deletes everything of a user.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from core.dataset import Dataset
from core.errors import GuideError
from core.schema import DamagedStoreError, SchemaError, check_file, upgrade

log = logging.getLogger(__name__)

STORE_FILE = "contributions.sqlite"
PHOTOS_DIR = "photos"
# Feedback is taken on answers at most this old; older buttons answer "expired".
FEEDBACK_TTL_S = 7 * 24 * 3600
DEFAULT_MAX_BYTES = 2 * 1024**3
DEFAULT_PER_USER_PER_DAY = 30
LABELS = ("confirmed", "corrected", "none", "unknown")
STATUSES = ("pending", "approved", "rejected")

# The store's schema, one step per version (core/schema.py): step 1 is the schema of 0.1, when the file
# had no version yet. A new column is a new step ("ALTER TABLE answers ADD COLUMN …"), never an edit here.
SCHEMA_STEPS = (
    """
CREATE TABLE IF NOT EXISTS answers (
    id TEXT PRIMARY KEY, user_id INTEGER NOT NULL, created_at REAL NOT NULL, day TEXT NOT NULL,
    candidates TEXT NOT NULL, match INTEGER NOT NULL, answer_ms REAL NOT NULL,
    sha256 TEXT, photo TEXT, label TEXT, label_xid TEXT, label_rank INTEGER, feedback_at REAL,
    status TEXT, reviewed_at REAL, dataset_path TEXT);
CREATE INDEX IF NOT EXISTS answers_user ON answers (user_id);
CREATE TABLE IF NOT EXISTS consent (user_id INTEGER PRIMARY KEY, agreed INTEGER NOT NULL, at REAL NOT NULL);
""",
    # 2: the calibrated probability the answer was right (core.calibration), for /stats to set beside ✓/✗.
    "ALTER TABLE answers ADD COLUMN confidence REAL;",
)


@dataclass(frozen=True)
class Answer:
    id: str
    user_id: int
    created_at: float
    candidates: tuple[str, ...]  # the xids shown, best first
    match: bool
    answer_ms: float
    sha256: str | None
    photo: Path | None  # kept only with consent
    label: str | None  # confirmed | corrected | none | unknown
    label_xid: str | None
    label_rank: int | None  # 1-based place of the corrected landmark among the candidates, if it was there
    status: str | None  # pending | approved | rejected (photos with a label only)
    dataset_path: str | None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "xid": self.label_xid,
            "status": self.status or "pending",
            "sha256": self.sha256,
            "user_label": "none" if self.label in (None, "none", "unknown") else self.label,
            "bot_answer": list(self.candidates),
            "label_rank": self.label_rank,
            "created_at": datetime.fromtimestamp(self.created_at, UTC).isoformat(timespec="seconds"),
            "dataset_path": self.dataset_path,
        }


class ContributionStore(Protocol):
    def record_answer(
        self,
        user_id: int,
        candidates: Sequence[str],
        match: bool,
        answer_ms: float,
        photo: bytes | None,
        ext: str,
        confidence: float | None = None,
    ) -> str: ...
    def answer(self, answer_id: str) -> Answer | None: ...
    def give_feedback(self, answer_id: str, user_id: int, label: str, xid: str | None) -> str: ...
    def consent(self, user_id: int) -> bool | None: ...
    def set_consent(self, user_id: int, agreed: bool) -> None: ...
    def forget_user(self, user_id: int) -> int: ...
    def contributions(self, status: str | None = None) -> list[Answer]: ...
    def set_status(
        self, answer_id: str, status: str, xid: str | None = None, dataset_path: str | None = None
    ) -> None: ...
    def stats(self) -> Stats: ...


def check_store(folder: Path) -> None:
    """The store in `folder` is usable (or not there yet), checked read-only before anything loads. A damaged
    one is refused, never set aside: it holds tourists' feedback and consents that a restored backup or
    sqlite3's `.recover` may still save, and an empty store in its place would hide that they are gone."""
    path = folder / STORE_FILE
    try:
        check_file(path, SCHEMA_STEPS, f"the contribution store {path}")
    except DamagedStoreError as exc:
        raise DamagedStoreError(
            f"{exc}: restore it from a backup (or rescue it with `sqlite3 {path.name} .recover`), or move it away "
            f"to start an empty store; the photos in {folder / PHOTOS_DIR} are untouched"
        ) from None
    except SchemaError as exc:
        raise SchemaError(f"{exc}: upgrade the guide, or restore a backup made with this version") from None


def new_answer_id() -> str:
    """12 characters (fits callback data, cannot be guessed) that never start with "-": an ID is typed on
    the command line (`prep contributions approve ID`), where a leading dash reads as an option."""
    while (answer_id := secrets.token_urlsafe(9)).startswith("-"):
        pass
    return answer_id


class SqliteContributionStore:
    """The default store: one SQLite file and a folder of photos; safe to use from several threads."""

    def __init__(
        self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES, per_user_per_day: int = DEFAULT_PER_USER_PER_DAY
    ) -> None:
        self.folder, self.max_bytes, self.per_user_per_day = folder, max_bytes, per_user_per_day
        check_store(folder)
        (folder / PHOTOS_DIR).mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(folder / STORE_FILE, check_same_thread=False, timeout=30)
        upgrade(self._db, SCHEMA_STEPS, f"the contribution store {folder / STORE_FILE}")
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    # --- answers and feedback ----------------------------------------------------------------------
    def record_answer(
        self,
        user_id: int,
        candidates: Sequence[str],
        match: bool,
        answer_ms: float,
        photo: bytes | None,
        ext: str,
        confidence: float | None = None,
    ) -> str:
        answer_id = new_answer_id()
        now = time.time()
        day = datetime.fromtimestamp(now, UTC).date().isoformat()
        sha, path = None, None
        if photo is not None:
            import hashlib

            sha = hashlib.sha256(photo).hexdigest()
            path = self._keep_photo(user_id, day, sha, photo, ext)
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO answers (id, user_id, created_at, day, candidates, match, answer_ms, sha256, photo, "
                "confidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (answer_id, user_id, now, day, json.dumps(list(candidates)), int(match), answer_ms, sha, path)
                + (confidence,),
            )
        return answer_id

    def _keep_photo(self, user_id: int, day: str, sha: str, photo: bytes, ext: str) -> str | None:
        kept_today = self._db.execute(
            "SELECT COUNT(*) FROM answers WHERE user_id = ? AND day = ? AND photo IS NOT NULL", (user_id, day)
        ).fetchone()[0]
        if kept_today >= self.per_user_per_day:
            log.info("contribution cap: user %s has %d photos today; this one is not kept", user_id, kept_today)
            return None
        if self._photos_bytes() + len(photo) > self.max_bytes:
            log.warning(
                "contribution store %s is full (%d bytes): photos are no longer kept", self.folder, self.max_bytes
            )
            return None
        name = f"{PHOTOS_DIR}/{sha}{ext if ext.startswith('.') and len(ext) <= 6 else '.jpg'}"
        target = self.folder / name
        if not target.exists():
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(photo)
            tmp.replace(target)
        return name

    def _photos_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.folder / PHOTOS_DIR).iterdir() if p.is_file())

    def answer(self, answer_id: str) -> Answer | None:
        row = self._db.execute(f"SELECT {COLUMNS} FROM answers WHERE id = ?", (answer_id,)).fetchone()
        return None if row is None else self._answer(row)

    def _answer(self, row: tuple) -> Answer:
        (id_, user, created, candidates, match, ms, sha, photo, label, label_xid, rank, status, path) = row
        return Answer(
            id_, user, created, tuple(json.loads(candidates)), bool(match), ms, sha,
            self.folder / photo if photo else None, label, label_xid, rank, status, path,
        )  # fmt: skip

    def give_feedback(self, answer_id: str, user_id: int, label: str, xid: str | None) -> str:
        """ "recorded", or why not: "expired" (unknown, too old, or not this user's answer) or "already"."""
        if label not in LABELS:
            return "expired"
        with self._lock, self._db:
            answer = self.answer(answer_id)
            if answer is None or answer.user_id != user_id or time.time() - answer.created_at > FEEDBACK_TTL_S:
                return "expired"
            if answer.label is not None:
                return "already"
            if label == "confirmed":
                xid = answer.candidates[0] if answer.candidates else None
            rank = answer.candidates.index(xid) + 1 if xid in answer.candidates else None
            status = "pending" if answer.photo is not None and label in ("confirmed", "corrected") else None
            self._db.execute(
                "UPDATE answers SET label = ?, label_xid = ?, label_rank = ?, feedback_at = ?, status = ? WHERE id = ?",
                (label, xid, rank, time.time(), status, answer_id),
            )
        return "recorded"

    # --- consent and privacy -----------------------------------------------------------------------------
    def consent(self, user_id: int) -> bool | None:
        row = self._db.execute("SELECT agreed FROM consent WHERE user_id = ?", (user_id,)).fetchone()
        return None if row is None else bool(row[0])

    def set_consent(self, user_id: int, agreed: bool) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO consent VALUES (?, ?, ?)", (user_id, int(agreed), time.time()))

    def forget_user(self, user_id: int) -> int:
        """Delete the user's answers, feedback, consent and kept photos; returns how many answers."""
        with self._lock, self._db:
            photos = [
                r[0]
                for r in self._db.execute(
                    "SELECT photo FROM answers WHERE user_id = ? AND photo IS NOT NULL", (user_id,)
                )
            ]
            count = self._db.execute("DELETE FROM answers WHERE user_id = ?", (user_id,)).rowcount
            self._db.execute("DELETE FROM consent WHERE user_id = ?", (user_id,))
        for photo in photos:
            still_used = self._db.execute("SELECT 1 FROM answers WHERE photo = ?", (photo,)).fetchone()
            if not still_used:
                (self.folder / photo).unlink(missing_ok=True)
        return count

    # --- admin review ---------------------------------------------------------------------------------
    def contributions(self, status: str | None = None) -> list[Answer]:
        query = f"SELECT {COLUMNS} FROM answers WHERE status IS NOT NULL"
        rows = self._db.execute(
            query + (" AND status = ?" if status else "") + " ORDER BY created_at", (status,) if status else ()
        )
        return [self._answer(row) for row in rows]

    def set_status(self, answer_id: str, status: str, xid: str | None = None, dataset_path: str | None = None) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE answers SET status = ?, reviewed_at = ?, label_xid = COALESCE(?, label_xid), "
                "dataset_path = COALESCE(?, dataset_path) WHERE id = ?",
                (status, time.time(), xid, dataset_path, answer_id),
            )

    # --- real-world accuracy -----------------------------------------------------------------------------
    def stats(self) -> Stats:
        rows = self._db.execute(
            "SELECT day, match, answer_ms, label, label_rank, confidence FROM answers ORDER BY day"
        ).fetchall()
        days: dict[str, list] = {}
        for row in rows:
            days.setdefault(row[0], []).append(row)
        return Stats(Figures.of(rows), {day: Figures.of(day_rows) for day, day_rows in days.items()})


COLUMNS = (
    "id, user_id, created_at, candidates, match, answer_ms, sha256, photo, label, label_xid, label_rank, status, "
    "dataset_path"
)


@dataclass(frozen=True)
class Figures:
    """Real-world accuracy over some answers, from tourists' ✓/✗."""

    answered: int
    confirmed: int
    wrong: int
    right_rate: float | None  # confirmed / (confirmed + wrong), None without feedback
    # What the calibration promised for those same answers (mean confidence of the ones with ✓/✗ and a
    # calibrated figure): far from right_rate, the dataset or the tourists' photos have drifted.
    expected_right_rate: float | None
    corrected_rank: dict[str, int]  # where the right landmark was among the candidates ("not shown" too)
    not_sure_rate: float | None
    answer_ms_p50: float | None
    answer_ms_p95: float | None

    @classmethod
    def of(cls, rows: list[tuple]) -> Figures:
        """rows: (day, match, answer_ms, label, label_rank, confidence)."""
        right = sum(1 for r in rows if r[3] == "confirmed")
        wrong = sum(1 for r in rows if r[3] in ("corrected", "none"))
        promised = [r[5] for r in rows if r[3] in ("confirmed", "corrected", "none") and r[5] is not None]
        ranks = [r[4] for r in rows if r[3] == "corrected"]
        times = np.array([r[2] for r in rows], dtype=float) if rows else np.array([np.nan])
        return cls(
            answered=len(rows),
            confirmed=right,
            wrong=wrong,
            right_rate=round(right / (right + wrong), 4) if right + wrong else None,
            expected_right_rate=round(float(np.mean(promised)), 4) if promised else None,
            corrected_rank={str(k): ranks.count(k) for k in range(1, 6) if k in ranks}
            | ({"not shown": sum(1 for k in ranks if k is None)} if None in ranks else {}),
            not_sure_rate=round(sum(1 for r in rows if not r[1]) / len(rows), 4) if rows else None,
            answer_ms_p50=round(float(np.percentile(times, 50)), 1) if rows else None,
            answer_ms_p95=round(float(np.percentile(times, 95)), 1) if rows else None,
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Stats:
    total: Figures
    days: dict[str, Figures]  # ISO day → its figures, oldest first

    def to_dict(self) -> dict[str, object]:
        return {"total": self.total.to_dict(), "days": {day: f.to_dict() for day, f in self.days.items()}}


@dataclass(frozen=True)
class Approval:
    ok: bool
    detail: str  # the dataset path written, or why the photo was not added


# One decision on a contribution at a time in this process (approve and reject read, check, then write).
_decisions = threading.Lock()
# A check of a photo before it joins the dataset: None when fine, else the reason.
PhotoCheck = Callable[[bytes, Dataset, str], str | None]


def basic_check(data: bytes, dataset: Dataset, xid: str) -> str | None:
    """What the serving install can check: it decodes, within the shape and size limits, is not tiny,
    and is not already in the dataset (`prep contributions approve` runs every `prep clean` check)."""
    import hashlib

    from core.imaging import MIN_PHOTO_SIDE, ImageDecodeError, decode_image

    try:
        image = decode_image(data, draft=True, draft_side=MIN_PHOTO_SIDE)
    except ImageDecodeError as exc:
        return f"unreadable: {exc}"
    if min(image.size) < MIN_PHOTO_SIDE:
        return f"tiny: {image.width}×{image.height} px"
    digest = hashlib.sha256(data).hexdigest()
    for photo in dataset.photos():
        if photo.xid == xid and hashlib.sha256(dataset.path(photo.path).read_bytes()).hexdigest() == digest:
            return f"duplicate: the same file is already {photo.path}"
    return None


def approve(
    store: ContributionStore, dataset: Dataset, answer_id: str, xid: str | None = None, check: PhotoCheck = basic_check
) -> Approval:
    """Write a pending contribution's photo into the dataset under its landmark (`xid` overrides the user's
    label) after `check`; a photo that fails is left pending with the reason."""
    with _decisions:  # two presses of Approve (or the bot and the CLI) never add the photo twice
        answer = store.answer(answer_id)
        if answer is None or answer.status is None:
            return Approval(False, "no such contribution")
        if answer.status == "approved":
            return Approval(False, f"already approved: {answer.dataset_path}")
        target = xid or answer.label_xid
        landmarks = dataset.landmarks()
        if target is None or target not in landmarks:
            return Approval(False, f"landmark {target!r} is not in places.csv")
        if answer.photo is None or not answer.photo.is_file():
            return Approval(False, "the photo is gone (the user used /forget?)")
        data = answer.photo.read_bytes()
        if why := check(data, dataset, target):
            return Approval(False, why)
        try:
            sha = answer.sha256 or ""
            path = dataset.add_contribution(landmarks[target], data, sha, answer.photo.suffix, answer_id)
        except (GuideError, FileExistsError) as exc:
            return Approval(False, str(exc))
        store.set_status(answer_id, "approved", target, path)
        return Approval(True, path)


def reject(store: ContributionStore, dataset: Dataset, answer_id: str) -> str:
    """Reject a contribution; one approved earlier also leaves the dataset (recorded in removed.csv),
    so "rejected" never means "still indexed". Returns what was done, in a few words."""
    with _decisions:
        answer = store.answer(answer_id)
        if answer is None or answer.status is None:
            return "no such contribution"
        removed = ""
        if answer.status == "approved" and answer.dataset_path:
            removed = dataset.remove_contribution(answer.dataset_path, answer.sha256 or "")
        store.set_status(answer_id, "rejected")
        return f"rejected; {removed}" if removed else "rejected"


def _ms(value: float | None) -> str:
    """A latency for /stats: "–" when there are no answers to measure (never "None")."""
    return "–" if value is None else f"{value:.0f}"


def stats_summary(stats: Stats, days: int = 7) -> str:
    """Total and the last `days` days, one line each, as /stats and `prep stats` print them."""

    def line(name: str, f: Figures) -> str:
        rate = "n/a" if f.right_rate is None else f"{100 * f.right_rate:.0f}%"
        if f.expected_right_rate is not None:
            rate += f" (expected {100 * f.expected_right_rate:.0f}%)"
        unsure = "n/a" if f.not_sure_rate is None else f"{100 * f.not_sure_rate:.0f}%"
        ranks = ", ".join(f"#{k}: {v}" for k, v in f.corrected_rank.items()) or "–"
        return (
            f"{name}: {f.answered} photos, right {rate} (✓{f.confirmed} ✗{f.wrong}), "
            f"not sure {unsure}, p50/p95 {_ms(f.answer_ms_p50)}/{_ms(f.answer_ms_p95)} ms, corrected at {ranks}"
        )

    lines = [line("total", stats.total)]
    lines += [line(day, f) for day, f in list(stats.days.items())[-days:]]
    return "\n".join(lines)
