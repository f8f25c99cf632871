"""The spoken and walking guide's costs (issue #33): render time per second of audio for each voice, the
size of a minute of voice message, the memory TTS adds to the bot, and a live-location update's lookup.

    .venv/bin/python -m benchmarks.voice [--json]
    .venv-serve/bin/python -m benchmarks.voice      (the serving install: what the bot really runs)

Targets: a one-minute narration ready in ≤ 5 s on 2 vCPU with the default voice (espeak-ng), and the bot
still within its container limit (TTS adds ≤ 30 MB to the bot's process; espeak-ng runs as its own). The
Piper row runs the random-weight stand-in of `prep random-models` (one waveform per phoneme, not VITS):
it times the phonemiser, ONNX Runtime's call and the encoding around a voice, not a real voice's network
(FACTS: a real medium voice runs at ~0.03 of real time on a desktop core, ~0.8 on a Raspberry Pi 4).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_MINUTE_S = 5.0
TARGET_TTS_RSS_MB = 30.0
# ~160 words: a minute at espeak-ng's ESPEAK_WPM, the length izi.TRAVEL advises for a story.
STORY = (
    "The Golden Gate of Vladimir was built in the twelfth century as the main entrance to the city. "
    "Prince Andrey Bogolyubsky ordered it to be raised in white stone, and its arch once held gilded oak doors "
    "that gave the gate its name. Over the centuries the gate served as a fortress tower, a church and a "
    "military museum. Today it stands in the middle of a busy street, and visitors can climb inside to see "
    "a diorama of the Mongol siege of the city in twelve thirty eight. "
) * 2


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def render_cost(voices, lang: str, text: str, runs: int = 3) -> dict:
    """Best-of-`runs` wall time for `text`, split into speaking and Opus encoding, per second of audio."""
    import soundfile

    from core.speech import OPUS_RATE, encode_opus, resample

    best_speak = best_total = float("inf")
    data, seconds = b"", 0.0
    for _ in range(runs):
        started = time.perf_counter()
        audio = voices.voice(lang).speak(text, 60)
        spoken = time.perf_counter()
        data = encode_opus(resample(audio, OPUS_RATE), OPUS_RATE)
        best_speak = min(best_speak, spoken - started)
        best_total = min(best_total, time.perf_counter() - started)
        seconds = soundfile.info(io.BytesIO(data)).duration
    return {
        "voice": voices.voice(lang).id,
        "audio_s": round(seconds, 1),
        "render_s": round(best_total, 3),
        "speak_s": round(best_speak, 3),
        "s_per_audio_s": round(best_total / seconds, 4),
        "kb_per_minute": round(len(data) / 1024 / seconds * 60, 1),
    }


def tts_memory(voices) -> dict:
    """Peak RSS this process gains from the speech path (soundfile, a render of a long story) beyond what
    the bot has loaded anyway (core: NumPy, FAISS, Pillow), and espeak-ng's own process."""
    import core  # noqa: F401  (the bot's process holds it before any voice)

    before = _rss_mb()
    from core.speech import Line

    voices.render([Line("en", STORY)])
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"tts_rss_mb": round(_rss_mb() - before, 1), "espeak_rss_mb": round(children, 1)}


def live_lookup(landmarks: int, queries: int = 2000) -> dict:
    """µs per live-location update's sight lookup (the nearest sights within the trigger radius)."""
    from core import GeoPoint, Landmark
    from core.geo import LandmarkLocator

    rng = np.random.default_rng(0)
    lats, lons = 41 + rng.random(landmarks) * 28, 28 + rng.random(landmarks) * 150  # Russia's box
    locator = LandmarkLocator({f"X{k}": Landmark(f"X{k}", "", "", lat=lats[k], lon=lons[k]) for k in range(landmarks)})
    points = [GeoPoint(float(lats[k % landmarks]) + 1e-4, float(lons[k % landmarks])) for k in range(queries)]
    started = time.perf_counter()
    for point in points:
        [p for p in locator.nearest(point, 3) if p.distance_m <= 60]
    return {"landmarks": landmarks, "us_per_update": round((time.perf_counter() - started) / queries * 1e6, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.voice", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from core.speech import Voices

    espeak = Voices()
    if problem := espeak.problem():
        print(problem, file=sys.stderr)
        return 2
    memory = tts_memory(espeak)
    rows = [render_cost(espeak, "en", STORY)]
    if importlib.util.find_spec("onnx") is not None:  # the serving install cannot write the stand-in
        from prep.random_models import build_piper_voice

        with tempfile.TemporaryDirectory() as folder:
            build_piper_voice(Path(folder), "en_US-random-medium", "en", "en-us")
            rows.append(render_cost(Voices(voices_dir=Path(folder)), "en", STORY))
    lookups = [live_lookup(n) for n in (1_000, 100_000, 1_000_000)]
    minute = rows[0]["s_per_audio_s"] * 60
    result = {"engines": rows, **memory, "live": lookups, "minute_ready_s": round(minute, 2)}
    result["within_targets"] = minute <= TARGET_MINUTE_S and memory["tts_rss_mb"] <= TARGET_TTS_RSS_MB
    if args.json:
        print(json.dumps(result))
        return 0 if result["within_targets"] else 1
    for row in rows:
        print(
            f"{row['voice']}: {row['s_per_audio_s'] * 1000:.1f} ms per second of audio "
            f"({row['render_s']} s for {row['audio_s']} s, of which speaking {row['speak_s']} s), "
            f"{row['kb_per_minute']} KB a minute"
        )
    print(f"a one-minute narration with espeak-ng: {minute:.2f} s (target ≤ {TARGET_MINUTE_S:g} s)")
    print(
        f"memory: +{memory['tts_rss_mb']} MB in the bot's process (target ≤ {TARGET_TTS_RSS_MB:g}), "
        f"espeak-ng's own process {memory['espeak_rss_mb']} MB"
    )
    for lookup in lookups:
        print(f"live location: {lookup['us_per_update']} µs per update among {lookup['landmarks']:,} sights")
    return 0 if result["within_targets"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
