"""`prep harvest` against a local fake of Wikidata and Commons in their real response shapes (issue #24):
classes kept and dropped, the merge with an NTO dataset, photos only, credits, politeness, resuming."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from core import Dataset, Landmark, PhotoIndex, build_index
from core.dataset import RemovedPhoto, read_attribution
from core.service import Guide
from prep import harvest as harvest_module
from prep.__main__ import main
from prep.harvest import Area, SightClasses
from tests.helpers.cli import run, run_json
from tests.helpers.datagen import jpeg_bytes, scene
from tests.helpers.fake_wiki import CommonsFile, FakeWiki, WikiEntity

KAZAN = (55.7963, 49.1088)
CITY = "Казань"


def near(dlat: float, dlon: float) -> tuple[float, float]:
    return KAZAN[0] + dlat, KAZAN[1] + dlon


def _file(wiki: FakeWiki, title: str, seed: int, **fields) -> str:
    wiki.files[title] = CommonsFile(jpeg_bytes(scene(seed % 40, seed, (640, 480))), **fields)
    return title


def _stage(wiki: FakeWiki) -> None:
    """A small Kazan: a cathedral with a big category, a church known only through its subclass, a
    museum with one image, an NTO landmark already in the dataset, and things that are no sights."""
    wiki.entities["Q2977"] = WikiEntity(labels={"en": "cathedral"})
    wiki.entities["Q9001"] = WikiEntity(labels={"en": "Orthodox church building"}, subclass_of=["Q16970"])
    wiki.entities["Q9002"] = WikiEntity(labels={"en": "office building"}, subclass_of=["Q4830453"])
    cathedral = "Annunciation Cathedral (Kazan)"
    members = [_file(wiki, f"File:Cathedral {i}.jpg", 100 + i) for i in range(60)]
    members.insert(3, _file(wiki, "File:Cathedral plan.svg", 1, mime="image/svg+xml"))
    members.insert(5, _file(wiki, "File:Bells.ogg", 2, mime="audio/ogg"))
    members.insert(7, _file(wiki, "File:Guide.pdf", 3, mime="application/pdf"))
    members.insert(9, _file(wiki, "File:Cathedral tiny.jpg", 4, width=60, height=45))
    wiki.categories[cathedral] = members
    _file(wiki, "File:Annunciation Cathedral.jpg", 5, artist='<span lang="en">Jane &amp; <b>John</b></span>')
    wiki.entities["Q1001"] = WikiEntity(
        labels={"ru": "Благовещенский собор", "en": "Annunciation Cathedral", "zh-hans": "天使报喜大教堂"},
        descriptions={"en": "cathedral in Kazan"},
        titles={"en": "Annunciation Cathedral, Kazan"},
        classes=["Q2977", "Q41176"],
        coordinates=near(0.001, 0.002),
        image="Annunciation_Cathedral.jpg",  # as Wikidata stores it: MediaWiki normalises the title
        category=cathedral,
    )
    _file(wiki, "File:Peter and Paul.jpg", 6, license="CC0", license_url="")
    wiki.entities["Q1002"] = WikiEntity(
        labels={"ru": "Петропавловский собор"},
        classes=["Q9001"],
        coordinates=near(-0.002, 0.0),
        image="Peter and Paul.jpg",
    )
    _file(wiki, "File:National Museum.jpg", 7)
    wiki.entities["Q1003"] = WikiEntity(
        labels={"en": "National Museum"}, classes=["Q33506"], coordinates=near(0.0, -0.003), image="National Museum.jpg"
    )
    wiki.entities["Q1004"] = WikiEntity(labels={"en": "Stop 5"}, classes=["Q953806"], coordinates=near(0.001, 0.0))
    wiki.entities["Q1005"] = WikiEntity(
        labels={"en": "Tatneft office"}, classes=["Q9002"], coordinates=near(0.0, 0.001)
    )
    wiki.entities["Q1006"] = WikiEntity(
        labels={"en": "Small monument"}, classes=["Q4989906"], coordinates=near(0.002, 0)
    )
    _file(wiki, "File:Old Tower.jpg", 8)
    wiki.entities["Q1007"] = WikiEntity(
        labels={"ru": "Сююмбике"}, classes=["Q12518"], coordinates=near(0.0, 0.004), image="Old Tower.jpg"
    )
    wiki.entities["Q1008"] = WikiEntity(labels={"en": "Far Tower"}, classes=["Q12518"], coordinates=near(0.3, 0.0))
    for qid, entity in wiki.entities.items():
        if entity.coordinates:
            wiki.places[qid] = entity.coordinates


def _nto_dataset(data: Path) -> Landmark:
    """A contest-style dataset whose landmark W55 is Wikidata's Q1007."""
    known = Landmark("W55", "Башня Сююмбике", "Казань", ("architecture",), *near(0.0, 0.004), "Q1007", city_code="KZN")
    Dataset(data).write_landmarks([known])
    Dataset(data).write_photo("images/KZN/W55/own.jpg", jpeg_bytes(scene(9, 1)))
    return known


HARVEST = ["harvest", "--around", f"{KAZAN[0]},{KAZAN[1]}", "--radius-km", "2", "--city", CITY, "--per-landmark", "8"]


def test_a_city_is_harvested_into_the_folder_dataset_with_credits(wiki, tmp_path, capsys) -> None:
    _stage(wiki)
    known = _nto_dataset(tmp_path / "data")
    report = run_json(main, HARVEST, capsys)
    assert report["city_code"] == "Kazan" and report["found"] == 7  # Q1008 lies 33 km away
    assert report["by_class"] == {"cathedral": 1, "church building": 1, "museum": 1, "tower": 1}
    assert report["skipped"] == {
        "not a sight: bus stop": 1,
        "not a sight: business": 1,  # its class is an office building, a subclass of business
        "no photo on Commons (P18, P373)": 1,
    }
    assert report["new_landmarks"] == 3 and report["merged_landmarks"] == 1
    assert report["photos_skipped"]["not a photo (image/svg+xml)"] == 1
    assert {"not a photo (audio/ogg)", "not a photo (application/pdf)", "too small"} <= set(report["photos_skipped"])

    dataset = Dataset(tmp_path / "data")
    places = dataset.landmarks()
    assert set(places) == {"W55", "Q1001", "Q1002", "Q1003"}  # the NTO row kept its xid: no duplicate
    assert places["W55"] == known
    cathedral = places["Q1001"]
    assert cathedral.wikidata == "Q1001" and cathedral.city == CITY and cathedral.city_code == "Kazan"
    assert cathedral.name == "Благовещенский собор" and "cathedrals" in cathedral.categories
    assert places["Q1002"].categories == ("religion", "churches")  # through P279, one level up
    assert places["Q1003"].name == "National Museum"  # no Russian label: English

    photos = sorted(p.path for p in dataset.photos())
    cathedral_photos = [p for p in photos if p.startswith("images/Kazan/Q1001/")]
    assert len(cathedral_photos) == 8  # its P18 image and the first 7 photos of its category
    merged = [p for p in photos if p.startswith("images/KZN/W55/")]  # into the NTO landmark's own folder
    assert len(merged) == 2 and "images/KZN/W55/own.jpg" in merged
    credits = dataset.attribution()
    assert set(credits) == {p for p in photos if "commons-" in p}  # every harvested photo, nothing else
    main_photo = next(c for c in credits.values() if c.source_url.endswith("File:Annunciation_Cathedral.jpg"))
    assert main_photo.author == "Jane & John" and main_photo.license == "CC BY-SA 4.0"  # plain text, not HTML
    assert main_photo.license_url == "https://creativecommons.org/licenses/by-sa/4.0"
    assert next(c for c in credits.values() if "Peter" in c.source_url).license_url == ""  # CC0: no licence URL
    assert sum(wiki.downloads.values()) == len(credits)

    info = dataset.enrichment().landmarks["Q1001"]
    assert info.names["zh-Hans"] == "天使报喜大教堂" and info.descriptions["en"] == "cathedral in Kazan"
    assert info.wikipedia["en"].endswith("/Annunciation_Cathedral%2C_Kazan")
    agents = {agent for _, _, agent in wiki.requests}
    assert agents and all("admin@example.org" in agent for agent in agents)
    code, out, _ = run(main, HARVEST, capsys)
    assert code == 0 and "cathedral" in out and "not a sight: bus stop" in out and "already there" in out


def test_a_rerun_resumes_without_asking_or_downloading_twice(wiki, tmp_path, capsys) -> None:
    _stage(wiki)
    broken = "File:Cathedral 2.jpg"
    wiki.failures[f"thumb:{broken}"] = [503] * 10  # fails for good in the first run
    first = run_json(main, HARVEST, capsys)
    assert first["photos_skipped"] == first["photos_skipped"] | {"download failed (run again to retry)": 1}
    assert any(broken in failure for failure in first["failures"])
    wiki.failures[f"thumb:{broken}"].clear()  # the server has recovered
    asked = len(wiki.requests)
    downloads = dict(wiki.downloads)
    second = run_json(main, HARVEST, capsys)
    api_calls = [path for path, _, _ in wiki.requests[asked:] if path.endswith("api.php")]
    assert api_calls == []  # every answer came from the on-disk cache
    assert second["photos_new"] == 1 and second["photos_present"] == first["photos_new"]
    assert wiki.downloads[broken] == 1 and all(wiki.downloads[t] == n for t, n in downloads.items())


def test_a_photo_removed_in_review_is_never_brought_back(wiki, tmp_path, capsys) -> None:
    _stage(wiki)
    run_json(main, HARVEST, capsys)
    dataset = Dataset(tmp_path / "data")
    victim = next(p for p in dataset.photos() if p.xid == "Q1001")
    dataset.record_removed(RemovedPhoto(victim.path, "x" * 64, "duplicate"))
    dataset.path(victim.path).unlink()
    again = run_json(main, HARVEST, capsys)
    assert again["photos_skipped"]["removed earlier by review"] == 1 and again["photos_new"] == 0
    assert not dataset.path(victim.path).exists()


def test_a_crowded_tile_is_split_until_nothing_is_left_out(wiki, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(harvest_module, "GEOSEARCH_LIMIT", 4)
    for i in range(12):
        qid = f"Q{2000 + i}"
        _file(wiki, f"File:Sight {i}.jpg", 200 + i)
        wiki.entities[qid] = WikiEntity(
            labels={"en": f"Sight {i}"}, classes=["Q4989906"], coordinates=near(i * 0.0007, 0), image=f"Sight {i}.jpg"
        )
        wiki.places[qid] = wiki.entities[qid].coordinates  # type: ignore[assignment]
    report = run_json(main, [*HARVEST[:-2], "--per-landmark", "1"], capsys)
    assert report["found"] == 12 and report["tiles"] > 1 and report["new_landmarks"] == 12
    geosearches = [q for path, q, _ in wiki.requests if "geosearch" in q]
    assert all("gsradius=" in q and int(q.split("gsradius=")[1].split("&")[0]) <= 10_000 for q in geosearches)


def test_a_box_is_tiled_within_the_api_radius() -> None:
    area = Area.box("55.70,48.95,55.90,49.30")  # ~22 × 22 km
    tiles = area.tiles()
    assert len(tiles) == 4 and all(t.radius_m <= 10_000 for t in tiles)
    assert area.contains(55.8, 49.1) and not area.contains(56.0, 49.1)
    circle = Area.around("55.79,49.10", 3)
    assert circle.contains(55.79, 49.14) and not circle.contains(55.79, 49.16)  # 2.5 km vs 3.8 km east


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--city", CITY], "--around LAT,LON --radius-km R, or as --bbox"),
        (["--around", "95,49", "--radius-km", "2", "--city", CITY], "latitude"),
        (["--around", "55.8,49.1", "--city", CITY], "--around needs --radius-km"),
        (["--around", "55.8,49.1", "--radius-km", "500", "--city", CITY], "--radius-km"),
        (["--bbox", "55.9,49.3,55.7,48.9", "--city", CITY], "SOUTH must be below NORTH"),
        (["--bbox", "50,40,55,45", "--city", CITY], "several runs"),
        (["--around", "55.8,49.1", "--radius-km", "2", "--city", "???"], "--city-code"),
        (["--around", "55.8,49.1", "--radius-km", "2", "--city", CITY, "--per-landmark", "0"], "--per-landmark"),
    ],
)
def test_bad_options_are_one_line_before_any_request(wiki, capsys, argv, message) -> None:
    code, _, err = run(main, ["harvest", *argv], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert wiki.requests == []


def test_the_class_list_can_be_extended(tmp_path) -> None:
    extra = tmp_path / "extra.csv"
    extra.write_text('qid,label,kinds\nQ12518,tower,\nQ7777,lighthouse,"architecture,towers"\n')
    classes = SightClasses.read([harvest_module.CLASSES_FILE, extra])
    assert "Q12518" in classes.drop and classes.keep["Q7777"] == ("lighthouse", ("architecture", "towers"))
    verdict = classes.classify(["Q7777"], {}, {})
    assert verdict.label == "lighthouse" and "interesting_places" in verdict.kinds
    assert classes.classify(["Q12518"], {}, {}).reason == "not a sight: tower"
    assert classes.classify(["Q424242"], {}, {"Q424242": "pumping station"}).reason == "other class: pumping station"


def test_a_harvested_photo_is_credited_where_it_is_shown(wiki, tmp_path, capsys, encoders) -> None:
    """The build ships the credits; the matched photo's credit comes with the answer and the albums."""
    _stage(wiki)
    run_json(main, HARVEST, capsys)
    data = tmp_path / "data"
    build_index(data, tmp_path / "artifacts", encoders.image, text_model=encoders.text.model_name)
    index = PhotoIndex.load(tmp_path / "artifacts")
    shipped = read_attribution(index.location / "attribution.csv")
    assert shipped == Dataset(data).attribution()
    guide = Guide(index, encoders.image, encoders.text, data_dir=data)
    photo = next(p for p in Dataset(data).photos() if p.xid == "Q1001")
    result = guide.recognize(Dataset(data).path(photo.path).read_bytes())
    assert result.landmarks[0].xid == "Q1001" and result.matched_photo == str(data / photo.path)  # itself
    assert result.photo_credit == shipped[photo.path]
    assert result.to_dict()["photo_credit"]["author"] == "Ann Example"
    hits = guide.landmark_photos("Q1001")
    assert hits and all(hit.credit == shipped[str(hit.path.relative_to(data))] for hit in hits)
    with (data / "attribution.csv").open(encoding="utf-8") as f:
        assert next(csv.reader(f)) == ["path", "author", "license", "license_url", "source_url"]


def test_the_harvested_city_is_named_in_every_language_from_its_wikidata_item(wiki, tmp_path, capsys) -> None:
    """Issue #32: the city's labels, found from the sights' P131 walked up, go into enrichment.json."""
    from core.enrichment import city_name

    _stage(wiki)
    wiki.entities["Q1001"].located_in = ["Q900002"]
    wiki.entities["Q900002"] = WikiEntity(labels={"ru": "Вахитовский район"}, located_in=["Q900"])
    wiki.entities["Q900"] = WikiEntity(labels={"ru": "Казань", "de": "Kasan", "zh-hans": "喀山", "ar": "قازان"})
    run_json(main, HARVEST, capsys)
    enrichment = Dataset(tmp_path / "data").enrichment()
    assert [city_name(CITY, enrichment, lang) for lang in ("de", "zh-Hans", "ar", "tr")] == [
        "Kasan",
        "喀山",
        "قازان",
        "Kazan",  # no Turkish label: along the chain, then transliterated
    ]
