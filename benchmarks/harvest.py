"""How long `prep harvest` takes for a city of ~300 sights at the polite rate, against the local fake
of Wikidata and Commons answering with a chosen latency (no network here: the latencies are inputs).

    .venv/bin/python -m benchmarks.harvest [--sights 300] [--api-latency 0.4] [--thumb-latency 0.25] [--json]

A synthetic city: SIGHTS sights with a P18 image and a Commons category of 40 files, and 3× as many
items that are no sights (streets, bus stops, companies), within 5 km. Every API answer waits
--api-latency seconds and every thumbnail --thumb-latency (Wikimedia from a European VPS: roughly
0.2–0.6 s for an action-API answer with extmetadata, 0.1–0.4 s for a 640-px thumbnail). The run is
real: requests, JSON, tiling, class checks, parallel downloads, writes. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CENTRE = (55.7963, 49.1088)
PHOTOS_PER_CATEGORY = 40
NOT_SIGHTS = ("Q79007", "Q953806", "Q4830453")


def stage(wiki, sights: int) -> None:
    import random

    from tests.helpers.datagen import jpeg_bytes, scene
    from tests.helpers.fake_wiki import CommonsFile, WikiEntity

    rng = random.Random(0)
    photo = jpeg_bytes(scene(1, 1, (640, 480)))  # one thumbnail body: the bytes do not matter here
    for i in range(sights * 4):
        qid = f"Q{100_000 + i}"
        place = (CENTRE[0] + rng.uniform(-0.04, 0.04), CENTRE[1] + rng.uniform(-0.07, 0.07))
        if i % 4:
            wiki.entities[qid] = WikiEntity(labels={"ru": f"Улица {i}"}, classes=[NOT_SIGHTS[i % 3]], coordinates=place)
        else:
            category = f"Sight {i}"
            titles = [f"File:Sight {i} view {k}.jpg" for k in range(PHOTOS_PER_CATEGORY)]
            for title in titles:
                wiki.files[title] = CommonsFile(photo)
            wiki.categories[category] = titles
            wiki.entities[qid] = WikiEntity(
                labels={"ru": f"Собор {i}", "en": f"Cathedral {i}"},
                classes=["Q16970"],
                coordinates=place,
                image=f"Sight {i} view 0.jpg",
                category=category,
            )
        wiki.places[qid] = place


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sights", type=int, default=300)
    parser.add_argument("--per-landmark", type=int, default=30)
    parser.add_argument("--api-latency", type=float, default=0.4)
    parser.add_argument("--thumb-latency", type=float, default=0.25)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from prep.harvest import CLASSES_FILE, Area, SightClasses, harvest
    from prep.wikimedia import WikimediaSettings
    from tests.helpers.fake_wiki import FakeWiki

    wiki = FakeWiki().start()
    try:
        stage(wiki, args.sights)
        wiki.latency = {"api": args.api_latency, "thumb": args.thumb_latency}
        settings = WikimediaSettings(f"{wiki.url}/w/api.php", "", f"{wiki.url}/commons/w/api.php", "benchmark")
        with tempfile.TemporaryDirectory() as folder:

            def timed_run():
                started = time.perf_counter()
                area, classes = Area.around(f"{CENTRE[0]},{CENTRE[1]}", 5), SightClasses.read([CLASSES_FILE])
                done = harvest(Path(folder) / "data", area, "Казань", "Kazan", args.per_landmark, classes, settings)
                return done, time.perf_counter() - started

            report, seconds = timed_run()
            asked = len(wiki.requests)
            _, rerun = timed_run()  # everything cached and on disk
        kinds = Counter(
            "thumbnail" if "/thumb/" in path else "commons" if "commons" in path else "wikidata"
            for path, _, _ in wiki.requests[:asked]
        )
    finally:
        wiki.stop()
    result = {
        "sights": sum(report.kept.values()),
        "items": report.found,
        "photos": report.photos_new,
        "requests": dict(kinds),
        "api_latency_s": args.api_latency,
        "thumb_latency_s": args.thumb_latency,
        "minutes": round(seconds / 60, 1),
        "rerun_seconds": round(rerun, 1),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['sights']} sights of {result['items']} items, {result['photos']} photos: "
        f"{kinds['wikidata']} Wikidata + {kinds['commons']} Commons API calls, {kinds['thumbnail']} thumbnails; "
        f"{result['minutes']} min at {args.api_latency} s per API answer and {args.thumb_latency} s per thumbnail "
        f"(rerun from the cache: {result['rerun_seconds']} s)",
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
