"""Speech: lines of text, each in one of the guide's languages, → one OGG/Opus voice message.

Two kinds of voice, chosen per language once (`Voices`):
- espeak-ng, the default: a Debian package that speaks all seven languages with no download. It runs as
  a separate process (`espeak-ng --stdout`, text on stdin) — its GPL-3.0 stays on its side of the pipe,
  a deadline kills a render that hangs, and a missing binary is one clear error.
- Piper voices, where `VOICES_DIR` holds `<voice>.onnx` + `<voice>.onnx.json` (and, for /about, the
  voice's licence in `<voice>.MODEL_CARD`): the voice's ONNX graph runs on the ONNX Runtime the serving
  install already has, fed with espeak-ng's IPA phonemes mapped through the voice's `phoneme_id_map`,
  as Piper does — without the `piper-tts` package (GPL-3.0 from 1.3) and without torch.

Audio from every voice is brought to one rate, joined with a short pause between lines, capped in
length, and encoded as Opus in an OGG container by libsndfile (the `soundfile` wheel bundles it):
what Telegram's `sendVoice` plays as a voice message.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import shutil
import subprocess
import threading
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.errors import GuideError
from core.languages import CODES, language

log = logging.getLogger(__name__)

# The rate every voice's audio is brought to before encoding (Opus codes 8, 12, 16, 24 or 48 kHz; speech
# needs no more than 24).
OPUS_RATE = 24_000
# libsndfile's Opus "compression level" (0 best quality … 1 smallest): 0.9 gives ~32 kb/s, clear speech,
# ~240 KB a minute (measured: benchmarks/voice.py).
OPUS_COMPRESSION = 0.9
# Voice messages rendered at once: each espeak-ng process takes ~55 MB beside the bot's ~500 (measured:
# benchmarks/voice.py), so a second waits (~1.7 s a minute of speech) rather than push a 700 MB container.
RENDERS_AT_ONCE = 1
# Samples resampled at a time (bounds the working memory of a long story).
RESAMPLE_BLOCK = 65_536
# Silence between two lines (a change of language or of voice), seconds.
LINE_PAUSE_S = 0.35
# The longest voice message rendered, seconds: a story of 1–2 minutes (izi.TRAVEL's advice), with room.
MAX_SPEECH_S = 150.0
# The largest voice message kept or sent, bytes (Telegram takes 50 MB; 150 s at 32 kb/s is ~600 KB).
MAX_VOICE_BYTES = 2 * 2**20
# Seconds one render may take before it is given up (espeak-ng is killed; a Piper run is terminated).
RENDER_DEADLINE_S = 20.0
# espeak-ng's speaking rate, words per minute (its default, 175, hurries a tourist listening outdoors).
ESPEAK_WPM = 160
# How much of a description a story says, in spoken_length units (~180 words: 1–1.5 minutes of speech).
STORY_LENGTH = 1200
# Piper's own defaults for a voice whose config does not set them.
PIPER_SCALES = {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8}
# The cache key's format: bump it when the same text and voices would give different audio.
SPEECH_FORMAT = 1


class SpeechError(GuideError):
    """A voice could not speak (no espeak-ng, a render past its deadline, a broken voice file)."""


@dataclass(frozen=True)
class Line:
    """One stretch of speech in one language (a guide language code)."""

    lang: str
    text: str


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32, mono, −1…1
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0


class Voice(Protocol):
    @property
    def id(self) -> str:
        """Which voice this is, as part of the cache key ("espeak-ng:ru", "piper:ru_RU-irina-medium")."""
        ...

    def speak(self, text: str, deadline_s: float) -> Audio: ...


@dataclass(frozen=True)
class EspeakVoice:
    binary: str
    voice: str

    @property
    def id(self) -> str:
        return f"espeak-ng:{self.voice}"

    def speak(self, text: str, deadline_s: float) -> Audio:
        command = [self.binary, "-v", self.voice, "-s", str(ESPEAK_WPM), "--stdout"]
        return read_wav(_run(command, text, deadline_s))

    def phonemes(self, text: str, deadline_s: float) -> list[str]:
        """IPA phonemes, one string per clause (what Piper's voices were trained on)."""
        out = _run([self.binary, "-v", self.voice, "-q", "--ipa"], text, deadline_s)
        return [line.strip() for line in out.decode("utf-8", "replace").splitlines() if line.strip()]


def _run(command: list[str], text: str, deadline_s: float) -> bytes:
    try:
        done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, timeout=deadline_s)
    except FileNotFoundError:
        raise SpeechError(f"{command[0]} is not installed: scripts/espeak.sh installs Debian's espeak-ng") from None
    except subprocess.TimeoutExpired:
        raise SpeechError(f"{command[0]} did not finish within {deadline_s:.0f} s") from None
    if done.returncode != 0 or not done.stdout:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise SpeechError(f"{command[0]} -v {command[2]} failed: {reason[0][:200]}")
    return done.stdout


def read_wav(data: bytes) -> Audio:
    """16-bit PCM WAV as espeak-ng streams it: its header's sizes are placeholders, so the chunks are
    walked and the data chunk is read to the end of the stream."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SpeechError("the voice did not produce WAV audio")
    position, rate, width, channels = 12, 0, 0, 1
    while position + 8 <= len(data):
        kind, size = data[position : position + 4], int.from_bytes(data[position + 4 : position + 8], "little")
        body = position + 8
        if kind == b"fmt ":
            channels = int.from_bytes(data[body + 2 : body + 4], "little")
            rate = int.from_bytes(data[body + 4 : body + 8], "little")
            width = int.from_bytes(data[body + 14 : body + 16], "little") // 8
        elif kind == b"data":
            if width != 2 or not rate:
                raise SpeechError("the voice produced WAV audio other than 16-bit PCM")
            pcm = np.frombuffer(data[body : len(data) - (len(data) - body) % (2 * channels)], dtype="<i2")
            # float32 all the way (a minute of speech is 5 MB so, 20 in float64 copies)
            mono = pcm.reshape(-1, channels)[:, 0] if channels > 1 else pcm
            return Audio(mono.astype(np.float32) * np.float32(1 / 32768), rate)
        position = body + size + (size & 1)
    raise SpeechError("the voice's WAV audio has no data")


class PiperVoice:
    """A Piper voice (`<name>.onnx` + `<name>.onnx.json`) on ONNX Runtime, phonemised by espeak-ng."""

    def __init__(self, model: Path, espeak_binary: str) -> None:
        self.model = model
        self.config: dict[str, Any] = json.loads(model.with_name(model.name + ".json").read_text(encoding="utf-8"))
        self.rate = int(self.config["audio"]["sample_rate"])
        self.id_map: dict[str, list[int]] = self.config["phoneme_id_map"]
        self.family = str(self.config.get("language", {}).get("family", "")).lower()
        self.phonemizer = EspeakVoice(espeak_binary, str(self.config.get("espeak", {}).get("voice", self.family)))
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        return f"piper:{self.model.stem}"

    @property
    def licence(self) -> str:
        """The licence line of the voice's model card (`<voice>.MODEL_CARD`), else "see its model card"."""
        card = self.model.with_suffix(".MODEL_CARD")
        text = card.read_text(encoding="utf-8", errors="replace") if card.is_file() else ""
        found = re.search(r"licen[cs]e\W*[:\-]?\s*(\S[^\n]*)", text, re.IGNORECASE)
        return found.group(1).strip(" *`") if found else "see the voice's model card"

    @cached_property
    def _session(self) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one render per compute worker: the worker count bounds the CPU
        return ort.InferenceSession(str(self.model), options, providers=["CPUExecutionProvider"])

    def phoneme_ids(self, clauses: Sequence[str]) -> list[int]:
        """Piper's encoding: BOS, then each phoneme followed by the pad, then EOS; clauses end with "."
        (a pause); a phoneme the voice does not know is left out."""
        ids = [*self.id_map["^"], *self.id_map["_"]]
        for clause in clauses:
            for phoneme in unicodedata.normalize("NFD", clause + "."):
                if phoneme in self.id_map:
                    ids += [*self.id_map[phoneme], *self.id_map["_"]]
        return ids + self.id_map["$"]

    def speak(self, text: str, deadline_s: float) -> Audio:
        """Clause by clause, as Piper does: a VITS voice's cost grows faster than its input, and a pause
        between sentences is the voice's own."""
        import onnxruntime as ort

        deadline = time.monotonic() + deadline_s
        clauses = self.phonemizer.phonemes(text, deadline_s)
        run = ort.RunOptions()
        timer = threading.Timer(deadline_s, lambda: setattr(run, "terminate", True))
        timer.start()
        try:
            pieces = [self._run(self.phoneme_ids([clause]), run) for clause in clauses]
        except Exception as exc:  # a terminated run, or a voice file that is not a Piper voice
            late = "past its deadline" if time.monotonic() > deadline else str(exc)[:200]
            raise SpeechError(f"the Piper voice {self.model.stem} failed: {late}") from None
        finally:
            timer.cancel()
        samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        return Audio(np.clip(samples, -1.0, 1.0), self.rate)

    def _run(self, ids: list[int], run: Any) -> np.ndarray:
        inference = {**PIPER_SCALES, **self.config.get("inference", {})}
        scales = [inference["noise_scale"], inference["length_scale"], inference["noise_w"]]
        feeds: dict[str, np.ndarray] = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array(scales, dtype=np.float32),
        }
        if int(self.config.get("num_speakers", 1)) > 1:
            feeds["sid"] = np.array([0], dtype=np.int64)
        with self._lock:  # one ONNX session, one run at a time (a second language waits its turn)
            audio = self._session.run(None, feeds, run)[0]
        return np.asarray(audio, dtype=np.float32).reshape(-1)


def piper_voices(folder: Path | None, espeak_binary: str) -> dict[str, PiperVoice]:
    """The configured Piper voice of each guide language (the first by name where a folder holds several);
    a voice that cannot be read is left out with a warning (espeak-ng speaks that language then)."""
    found: dict[str, PiperVoice] = {}
    if folder is None or not folder.is_dir():
        return found
    for model in sorted(folder.glob("*.onnx")):
        try:
            voice = PiperVoice(model, espeak_binary)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("voice %s left out: %s", model.name, exc)
            continue
        for code in CODES:
            if language(code).family == voice.family:
                found.setdefault(code, voice)
    return found


class Voices:
    """The voice of each guide language: a configured Piper voice, else espeak-ng's."""

    def __init__(self, espeak_binary: str = "espeak-ng", voices_dir: Path | None = None) -> None:
        self.espeak_binary = espeak_binary
        self.piper = piper_voices(voices_dir, espeak_binary)

    def problem(self) -> str | None:
        """Why no voice can speak (no espeak-ng program), else None: said once when the bot starts."""
        if shutil.which(self.espeak_binary) is None:
            return f"{self.espeak_binary} not found: 🔊 and 🗣 will say the voice is unavailable (scripts/espeak.sh)"
        return None

    def describe(self) -> str:
        """Which voice speaks which language, for the start log: "piper:de_DE-… (de); espeak-ng (the rest)"."""
        piper = [f"{voice.id} ({lang})" for lang, voice in sorted(self.piper.items())]
        rest = "the rest" if piper else ", ".join(CODES)
        return "; ".join([*piper, f"{self.espeak_binary} ({rest})"])

    def voice(self, lang: str) -> Voice:
        return self.piper.get(lang) or EspeakVoice(self.espeak_binary, language(lang).espeak_voice)

    def key(self, lines: Sequence[Line]) -> str:
        """What a rendering of `lines` is cached under: the voices and texts (not the time, not the user)."""
        spoken = [[self.voice(line.lang).id, line.text] for line in lines]
        raw = json.dumps([SPEECH_FORMAT, OPUS_RATE, OPUS_COMPRESSION, spoken], ensure_ascii=False)
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]

    def credits(self) -> list[tuple[str, str]]:
        """(voice, licence) of every configured Piper voice, for /about."""
        return sorted({(voice.model.stem, voice.licence) for voice in self.piper.values()})

    def render(self, lines: Sequence[Line], deadline_s: float = RENDER_DEADLINE_S) -> bytes:
        """The lines spoken one after another, as OGG/Opus bytes (SpeechError when a voice fails)."""
        pieces: list[np.ndarray] = []
        pause = np.zeros(int(LINE_PAUSE_S * OPUS_RATE), dtype=np.float32)
        deadline = time.monotonic() + deadline_s  # for the whole message, however many lines it has
        for line in lines:
            if not line.text.strip():
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise SpeechError(f"the voice message took over {deadline_s:.0f} s")
            pieces += [resample(self.voice(line.lang).speak(line.text, left), OPUS_RATE), pause]
        if not pieces:
            raise SpeechError("nothing to say")
        samples = np.concatenate(pieces)[: int(MAX_SPEECH_S * OPUS_RATE)]
        data = encode_opus(samples, OPUS_RATE)
        if len(data) > MAX_VOICE_BYTES:
            raise SpeechError(f"the voice message would be {len(data) // 1024} KB, over {MAX_VOICE_BYTES // 1024} KB")
        return data


def resample(audio: Audio, rate: int) -> np.ndarray:
    """Linear interpolation to `rate`: speech from 16–22 kHz voices loses nothing audible at 24 kHz.
    In blocks of RESAMPLE_BLOCK samples, so the float64 working arrays stay small."""
    if audio.rate == rate or not len(audio.samples):
        return audio.samples
    count = int(round(len(audio.samples) * rate / audio.rate))
    samples, last = audio.samples, len(audio.samples) - 1
    out = np.empty(count, dtype=np.float32)
    for start in range(0, count, RESAMPLE_BLOCK):
        positions = np.arange(start, min(count, start + RESAMPLE_BLOCK), dtype=np.float64) * (audio.rate / rate)
        left = np.minimum(positions.astype(np.int64), last)
        share = (positions - left).astype(np.float32)
        out[start : start + len(positions)] = samples[left] * (1 - share) + samples[np.minimum(left + 1, last)] * share
    return out


def encode_opus(samples: np.ndarray, rate: int) -> bytes:
    import soundfile

    out = io.BytesIO()
    soundfile.write(out, samples, rate, format="OGG", subtype="OPUS", compression_level=OPUS_COMPRESSION)
    return out.getvalue()


def spoken_length(text: str) -> float:
    """Roughly how long a text takes to say, in Latin-letter equivalents: a Chinese character is a
    syllable, about three letters' worth (so one cap on length suits every script)."""
    return sum(3.0 if "\u3400" <= ch <= "\u9fff" else 1.0 for ch in text)


def clip_for_speech(text: str, budget: float) -> str:
    """`text` cut at the last sentence end (else word) that fits `budget` (spoken_length units)."""
    if spoken_length(text) <= budget:
        return text
    used, cut = 0.0, 0
    for position, ch in enumerate(text):
        used += 3.0 if "\u3400" <= ch <= "\u9fff" else 1.0
        if used > budget:
            cut = position
            break
    head = text[:cut]
    sentence = max(head.rfind(mark) for mark in ".!?。！？؟")
    if sentence > len(head) // 2:
        return head[: sentence + 1]
    return head.rsplit(" ", 1)[0] if " " in head else head


@dataclass(frozen=True)
class VoiceMessage:
    key: str  # the cache key: the same voices and texts always give the same key
    data: bytes  # OGG/Opus


class Narrator:
    """Voice messages for lines of text: from the disk cache, else rendered (and then kept)."""

    def __init__(self, voices: Voices, cache: Any) -> None:
        self.voices, self.cache = voices, cache  # cache: core.voice_cache.VoiceCache (or one like it)
        self._rendering = threading.BoundedSemaphore(RENDERS_AT_ONCE)

    def key(self, lines: Sequence[Line]) -> str:
        return self.voices.key(lines)

    def message(self, lines: Sequence[Line], deadline_s: float = RENDER_DEADLINE_S) -> VoiceMessage:
        """Blocking (a compute-pool job): cached bytes, or a render within `deadline_s` (SpeechError)."""
        key = self.key(lines)
        data = self.cache.get(key)
        if data is None:
            started = time.monotonic()
            if not self._rendering.acquire(timeout=deadline_s):
                raise SpeechError(f"other voice messages kept the voice busy for {deadline_s:.0f} s")
            try:
                # A press that waited for the same story finds it made: rendered once, not twice.
                data = self.cache.get(key)
                if data is None:
                    data = self.voices.render(lines, max(0.1, deadline_s - (time.monotonic() - started)))
                    self.cache.put(key, data)
            finally:
                self._rendering.release()
        return VoiceMessage(key, data)
