"""Speech (issue #33): espeak-ng in all seven languages, Piper voices on ONNX Runtime, OGG/Opus out, the
disk cache, and every way a voice can fail said in one line."""

from __future__ import annotations

import io
import logging
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile

from core import CODES
from core.speech import (
    MAX_SPEECH_S,
    OPUS_RATE,
    Audio,
    EspeakVoice,
    Line,
    Narrator,
    SpeechError,
    Voices,
    clip_for_speech,
    read_wav,
    resample,
    spoken_length,
)
from core.voice_cache import VoiceCache
from prep.random_models import PIPER_SAMPLES_PER_ID, build_piper_voice

SAY = {
    "ru": "Золотые ворота во Владимире.",
    "en": "The Golden Gate of Vladimir.",
    "zh-Hans": "弗拉基米尔的金门。",
    "ar": "البوابة الذهبية في فلاديمير.",
    "tr": "Vladimir'deki Altın Kapı.",
    "de": "Das Goldene Tor von Wladimir.",
    "fa": "دروازه طلایی ولادیمیر.",
}


def _audio(data: bytes) -> tuple[soundfile._SoundFileInfo, np.ndarray]:
    info = soundfile.info(io.BytesIO(data))
    samples, _ = soundfile.read(io.BytesIO(data), dtype="float32")
    return info, samples


@pytest.fixture(scope="module")
def piper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("voices")
    build_piper_voice(folder, "de_DE-random-medium", "de", "de")
    return folder


@pytest.mark.parametrize("lang", CODES)
def test_espeak_speaks_every_language_as_an_ogg_opus_voice_message(lang: str) -> None:
    data = Voices().render([Line(lang, SAY[lang])])
    info, samples = _audio(data)
    assert data[:4] == b"OggS" and b"OpusHead" in data[:64]
    assert info.format == "OGG" and info.subtype == "OPUS" and info.samplerate == OPUS_RATE and info.channels == 1
    assert 0.8 < info.duration < 10 and np.abs(samples).max() > 0.05  # speech, not silence


def test_lines_in_two_languages_are_one_message_and_the_key_names_voices_and_texts() -> None:
    voices = Voices()
    one, two = [Line("de", SAY["de"])], [Line("de", SAY["de"]), Line("ru", SAY["ru"])]
    assert _audio(voices.render(two))[0].duration > _audio(voices.render(one))[0].duration + 0.8
    keys = {voices.key(one), voices.key(two), voices.key([Line("en", SAY["de"])]), voices.key([Line("de", "Tor.")])}
    assert len(keys) == 4 and voices.key(one) == Voices().key(one)  # stable across processes, distinct per text


def test_a_piper_voice_speaks_its_language_on_onnx_runtime_and_espeak_the_others(piper_dir: Path) -> None:
    voices = Voices(voices_dir=piper_dir)
    assert voices.voice("de").id == "piper:de_DE-random-medium" and voices.voice("ru").id == "espeak-ng:ru"
    piper = voices.piper["de"]
    clauses = piper.phonemizer.phonemes("Das Goldene Tor. Wladimir!", 10)
    ids = piper.phoneme_ids(clauses)
    assert len(clauses) == 2 and ids[0] == piper.id_map["^"][0] and ids[-1] == piper.id_map["$"][0]
    assert len(ids) > 20 and ids[1::2][:-1] == [piper.id_map["_"][0]] * len(ids[1::2][:-1])  # pad after each
    audio = piper.speak("Das Goldene Tor. Wladimir!", 10)
    spoken = [piper.phoneme_ids([clause]) for clause in clauses]  # clause by clause, as Piper runs a voice
    assert audio.rate == 22050 and len(audio.samples) == sum(map(len, spoken)) * PIPER_SAMPLES_PER_ID
    assert _audio(voices.render([Line("de", SAY["de"])]))[0].duration > 0.3
    assert voices.credits() == [("de_DE-random-medium", "CC0 (random weights, for tests)")]
    assert voices.describe() == "piper:de_DE-random-medium (de); espeak-ng (the rest)"
    assert Voices().describe() == "espeak-ng (ru, en, zh-Hans, ar, tr, de, fa)"
    assert voices.key([Line("de", "x")]) != Voices().key([Line("de", "x")])  # another voice, another file


def test_a_voice_file_that_cannot_be_read_is_left_out_with_a_warning(tmp_path: Path, caplog) -> None:
    (tmp_path / "tr_TR-broken.onnx").write_bytes(b"not onnx")
    (tmp_path / "tr_TR-broken.onnx.json").write_text("{not json")
    with caplog.at_level(logging.WARNING):
        voices = Voices(voices_dir=tmp_path)
    assert voices.voice("tr").id == "espeak-ng:tr" and "tr_TR-broken.onnx left out" in caplog.text


def test_a_missing_or_hanging_or_failing_espeak_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match="not installed: scripts/espeak.sh"):
        Voices(str(tmp_path / "no-espeak")).render([Line("en", "Hello.")])
    hangs = tmp_path / "hangs"
    hangs.write_text("#!/bin/sh\nsleep 30\n")
    hangs.chmod(hangs.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(SpeechError, match="did not finish within 1 s"):
        Voices(str(hangs)).render([Line("en", "Hello.")], deadline_s=1.0)
    fails = tmp_path / "fails"
    fails.write_text("#!/bin/sh\necho 'espeak-ng: no audio device' >&2\nexit 1\n")
    fails.chmod(fails.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(SpeechError, match="failed: espeak-ng: no audio device"):
        EspeakVoice(str(fails), "en-us").speak("Hello.", 10)
    with pytest.raises(SpeechError, match="nothing to say"):
        Voices().render([Line("en", "  ")])


def test_the_wav_espeak_streams_is_read_to_its_end_whatever_its_header_says() -> None:
    pcm = (np.sin(np.arange(22050) / 5) * 10000).astype("<i2").tobytes()
    header = b"RIFF\xff\xff\xff\x7fWAVEfmt " + (16).to_bytes(4, "little")
    header += (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (22050).to_bytes(4, "little")
    header += (44100).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    audio = read_wav(header + b"data\xff\xff\xff\x7f" + pcm + b"\x01")  # a placeholder size and an odd byte
    assert audio.rate == 22050 and len(audio.samples) == 22050 and abs(audio.samples.max() - 10000 / 32768) < 1e-3
    with pytest.raises(SpeechError):
        read_wav(b"not a wav at all")


def test_long_stories_are_cut_at_a_sentence_and_no_voice_message_runs_past_its_cap() -> None:
    story = "The cathedral was built in the twelfth century. " * 100
    cut = clip_for_speech(story, 1200)
    assert spoken_length(cut) <= 1200 and cut.endswith(".") and len(cut) > 900
    chinese = "这座大教堂建于十二世纪。" * 200
    assert spoken_length(clip_for_speech(chinese, 1200)) <= 1200 and clip_for_speech(chinese, 1200).endswith("。")
    endless = Voices().render([Line("en", "Go on and on. " * 110)])
    assert MAX_SPEECH_S - 1 <= _audio(endless)[0].duration <= MAX_SPEECH_S + 0.1  # it ran on: it was cut
    up = resample(Audio(np.ones(16000, dtype=np.float32), 16000), OPUS_RATE)
    assert len(up) == OPUS_RATE and np.allclose(up, 1.0)


def test_the_cache_keeps_each_message_once_trims_the_oldest_and_survives_a_read_only_disk(
    tmp_path: Path, caplog
) -> None:
    cache = VoiceCache(tmp_path / "voices", max_bytes=25_000)
    narrator = Narrator(Voices(), cache)
    lines = [Line("en", "The Golden Gate.")]
    first = narrator.message(lines)
    assert (tmp_path / "voices" / f"{first.key}.ogg").read_bytes() == first.data
    assert narrator.message(lines).data == first.data
    for word in ("one", "two", "three", "four", "five", "six"):
        narrator.message([Line("en", f"The gate number {word}, the biggest in the town.")])
    assert sum(p.stat().st_size for p in (tmp_path / "voices").glob("*.ogg")) <= 25_000
    with pytest.raises(ValueError):
        cache.get("../../etc/passwd")
    # A disk that takes nothing (here: the folder's place is a file): the voice is still made, said once.
    (tmp_path / "blocked").write_bytes(b"")
    blocked = Narrator(Voices(), VoiceCache(tmp_path / "blocked" / "voices"))
    with caplog.at_level(logging.WARNING):
        made = blocked.message([Line("en", "A new one.")])
        blocked.message([Line("en", "Another new one.")])
    assert made.data[:4] == b"OggS" and caplog.text.count("not kept on disk") == 1


def test_a_missing_espeak_is_named_once_at_start(tmp_path: Path) -> None:
    assert Voices().problem() is None
    assert "scripts/espeak.sh" in (Voices(str(tmp_path / "none")).problem() or "")


def test_two_presses_of_one_new_story_render_it_once(tmp_path: Path) -> None:
    import threading

    renders = []
    voices = Voices()
    original = voices.render

    def counted(lines, deadline_s=20.0):
        renders.append(lines)
        return original(lines, deadline_s)

    voices.render = counted  # type: ignore[method-assign]
    narrator = Narrator(voices, VoiceCache(tmp_path / "voices"))
    lines = [Line("en", "The same story, pressed twice at once.")]
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(narrator.message(lines).data)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(renders) == 1 and len(results) == 2 and results[0] == results[1]
