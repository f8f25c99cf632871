"""`prep harvest` and `prep enrich` against hostile or broken answers, and the dataset files they add to
(issue #31 rows 3–9, 11, 12): nothing unlicensed, off-site or bidi-laden reaches tourists, nothing the
admin has is overwritten, and no server can stall or crash a run."""

from __future__ import annotations

import time

import pytest

from bot.texts import credit_line
from core import Dataset, PhotoCredit
from core.dataset import ATTRIBUTION_FILE, read_attribution
from prep import wikimedia as wikimedia_module
from prep.__main__ import main
from tests.helpers.cli import run, run_json
from tests.helpers.fake_wiki import FakeWiki, WikiEntity
from tests.prep.test_harvest import HARVEST, _file, _stage, near

pytestmark = pytest.mark.slow  # end to end against the fake Wikimedia

BIDI = "\u202e\u2066\u200f\x00"


def _sight(wiki: FakeWiki, qid: str, where: tuple[float, float], image: str, **fields) -> None:
    wiki.entities[qid] = WikiEntity(classes=["Q4989906"], coordinates=where, image=image, **fields)
    wiki.places[qid] = where


def test_entities_not_asked_for_and_impossible_coordinates_never_reach_places_csv(wiki, tmp_path, capsys) -> None:
    """Row 5: keys like `../../x` or `P31` in wbgetentities, lat 1000 and NaN: once cached, every rerun aborted."""
    _stage(wiki)
    junk = WikiEntity(labels={"en": "Junk"}, classes=["Q4989906"], coordinates=near(0, 0), image="Old Tower.jpg")
    wiki.extra_entities = {"../../x": {"id": "../../x", "claims": junk.claims()}, "P31": {"id": "P31"}}
    _sight(wiki, "Q3001", near(0.001, 0.001), "Old Tower.jpg", labels={"en": "Far North"})
    _sight(wiki, "Q3002", near(0.001, 0.002), "Old Tower.jpg", labels={"en": "Not a Number"})
    wiki.entities["Q3001"].coordinates = (1000.0, 49.1)
    wiki.entities["Q3002"].coordinates = (float("nan"), 49.1)
    for _ in range(2):  # the rerun reads the same answers from the cache
        report = run_json(main, HARVEST, capsys)
        assert report["skipped"]["bad coordinates (P625)"] == 2
        places = Dataset(tmp_path / "data").landmarks()
        assert set(places) == {"Q1001", "Q1002", "Q1003", "Q1007"}
        assert all(-90 <= lm.lat <= 90 for lm in places.values())


def test_only_free_licences_from_commons_hosts_are_stored_and_credits_link_only_known_pages(
    wiki, tmp_path, capsys
) -> None:
    """Rows 6, 7, 8: non-free licences, a thumbnail on another host, links to a phishing site."""
    non_free = ["Fair use", "All rights reserved", "CC BY-NC-ND 4.0", "Non-free media"]
    titles = [_file(wiki, f"File:Refused {i}.jpg", 300 + i, license=name) for i, name in enumerate(non_free)]
    titles.append(_file(wiki, "File:Elsewhere.jpg", 310, thumb_url="https://evil.example/thumb/Elsewhere.jpg"))
    phishing = "https://commons.wikimedia.org.evil.example/wiki/File:Phish.jpg"
    titles.append(
        _file(wiki, "File:Phish.jpg", 311, description_url=phishing, license_url="https://evil.example/cc-by-sa")
    )
    titles.append(_file(wiki, "File:Free.jpg", 312, license="CC BY 2.0 de"))
    wiki.categories["Square"] = titles
    _sight(wiki, "Q4001", near(0, 0.001), "", labels={"en": "Square"}, category="Square")
    report = run_json(main, [*HARVEST[:-2], "--per-landmark", "30"], capsys)
    skipped = report["photos_skipped"]
    assert {f"non-free licence ({name})" for name in non_free} <= set(skipped)
    assert skipped["thumbnail on another host"] == 1
    credits = Dataset(tmp_path / "data").attribution()
    assert sorted(c.license for c in credits.values()) == ["CC BY 2.0 de", "CC BY-SA 4.0"]
    phish = next(c for c in credits.values() if c.license == "CC BY-SA 4.0")
    assert phish.source_url == "" and phish.license_url == ""  # shown as text, never as a link
    assert wiki.downloads["File:Elsewhere.jpg"] == 0 and not any("evil" in path for path, _, _ in wiki.requests)
    # A hand-edited attribution.csv is not trusted either: the bot links only Commons and licence pages.
    line = credit_line(PhotoCredit("Ann", "CC BY-SA 4.0", "https://evil.example/l", phishing), "en")
    assert "<a" not in line and "Ann" in line
    good = PhotoCredit(
        "Ann",
        "CC BY 4.0",
        "https://creativecommons.org/licenses/by/4.0",
        "https://commons.wikimedia.org/wiki/File:A.jpg",
    )
    assert credit_line(good, "en").count("<a href=") == 2


def test_bidi_controls_and_nul_are_stripped_where_text_enters(wiki, tmp_path, capsys) -> None:
    """Row 9: U+202E and friends in a name or an author reversed the rest of an ar/fa/en line."""
    _file(wiki, "File:Mirror.jpg", 320, artist=f"Eve{BIDI} Example", license=f"CC BY{BIDI}-SA 4.0")
    _sight(
        wiki,
        "Q5001",
        near(0.0, 0.002),
        "Mirror.jpg",
        labels={"ru": f"Зеркальный{BIDI} дом", "en": f"Mirror{BIDI} House"},
    )
    run_json(main, [*HARVEST[:-2], "--per-landmark", "3"], capsys)
    dataset = Dataset(tmp_path / "data")
    landmark = dataset.landmarks()["Q5001"]
    assert landmark.name == "Зеркальный дом"
    assert dataset.enrichment().landmarks["Q5001"].names["en"] == "Mirror House"
    (credit,) = dataset.attribution().values()
    assert (credit.author, credit.license) == ("Eve Example", "CC BY-SA 4.0")
    raw = (tmp_path / "data" / "places.csv").read_text() + (tmp_path / "data" / ATTRIBUTION_FILE).read_text()
    assert not any(ch in raw for ch in BIDI)


@pytest.mark.parametrize("command", [HARVEST, ["enrich"]])
@pytest.mark.parametrize(
    "content",
    ['{"schema": 1, "landmarks": {},}', '{"schema": 7, "landmarks": {}}', "[" * 100_000],
    ids=["comma", "newer", "deep"],
)
def test_an_unreadable_enrichment_json_is_refused_and_never_overwritten(
    wiki, tmp_path, capsys, command, content
) -> None:
    """Row 3: a stray comma or a newer release's file was read as empty, then harvest wrote over it."""
    _stage(wiki)
    data = tmp_path / "data"
    run_json(main, HARVEST, capsys)  # a dataset with places.csv for enrich
    path = data / "enrichment.json"
    path.write_text(content)
    asked = len(wiki.requests)
    code, out, err = run(main, command, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "enrichment.json" in err, err
    assert path.read_text() == content and len(wiki.requests) == asked  # refused before any request


def test_an_attribution_csv_saved_by_a_spreadsheet_keeps_every_credit(wiki, tmp_path, capsys) -> None:
    """Row 4: `;` separators read as no credits, and a rerun then wrote 70 of 81 photos out of it."""
    _stage(wiki)
    run_json(main, HARVEST, capsys)
    path = tmp_path / "data" / ATTRIBUTION_FILE
    before = read_attribution(path)
    path.write_text(path.read_text().replace(",", ";"), encoding="cp1251")  # a Russian-locale spreadsheet
    assert read_attribution(path) == before
    run_json(main, HARVEST, capsys)
    assert read_attribution(path) == before
    path.write_text("Pfad|Autor|Lizenz\nimages/x.jpg|Ann|CC0\n")  # a header nobody can read
    code, _, err = run(main, HARVEST, capsys)
    assert code == 2 and "attribution.csv" in err and path.read_text().startswith("Pfad|Autor")


def test_a_server_trickling_its_headers_is_given_up_in_bounded_time(wiki, tmp_path, capsys, monkeypatch) -> None:
    """Row 11: headers one byte at a time kept harvest on its first request for ever, and enrich asked such
    a host again and again. The deadline covers the headers; after a few misses in a row the host is dropped."""
    monkeypatch.setattr(wikimedia_module, "HEADERS_DEADLINE", 1.0)
    monkeypatch.setattr(wikimedia_module, "REQUEST_DEADLINE", 2.0)
    _stage(wiki)
    wiki.trickle_headers.add("geosearch")
    started = time.monotonic()
    report = run_json(main, HARVEST, capsys)
    assert time.monotonic() - started < 20
    host = wiki.url.removeprefix("http://")
    assert report["abandoned_hosts"] == [host] and report["new_landmarks"] == 0
    assert sum("geosearch" in q for _, q, _ in wiki.requests) == wikimedia_module.HOST_GIVE_UP_AFTER
    code, out, _ = run(main, HARVEST, capsys)
    assert code == 0 and f"stopped asking {host}" in out


def test_enrich_against_a_trickling_host_stops_asking_it_and_keeps_what_it_had(
    wiki, tmp_path, capsys, monkeypatch, built_dataset, model_dirs
) -> None:
    monkeypatch.setattr(wikimedia_module, "REQUEST_DEADLINE", 1.0)
    dataset = built_dataset.copy_to(tmp_path / "nto")
    monkeypatch.setenv("DATA_DIR", str(dataset.data_dir))
    landmarks = list(Dataset(dataset.data_dir).landmarks().values())
    for lm in landmarks:
        wiki.entities[lm.wikidata] = WikiEntity(labels={"en": f"Sight {lm.xid}"})
    run_json(main, ["enrich", "--langs", "ru,en"], capsys)
    names = {x: i.names["en"] for x, i in Dataset(dataset.data_dir).enrichment().landmarks.items()}
    assert len(names) == len(landmarks)
    (dataset.data_dir / ".enrich_cache.sqlite").unlink()  # nothing cached: every answer must come anew
    wiki.trickle.add("wikidata")
    started = time.monotonic()
    report = run_json(main, ["enrich", "--langs", "ru,en"], capsys)
    assert time.monotonic() - started < 15 and report["abandoned_hosts"]
    kept = {x: i.names["en"] for x, i in Dataset(dataset.data_dir).enrichment().landmarks.items()}
    assert kept == names  # what the failed run could not fetch is what the last run found


def test_an_absurdly_nested_answer_is_one_failed_request(wiki, tmp_path, capsys) -> None:
    """Row 12: 400 KB of `[[[[…]]]]` ended the harvest with a RecursionError traceback."""
    _stage(wiki)
    wiki.answers["commons"] = [(200, "[" * 200_000 + "]" * 200_000)] * wikimedia_module.MAX_TRIES
    code, out, err = run(main, [*HARVEST, "--json"], capsys)
    assert code == 0 and "Traceback" not in err
    assert any("not a JSON object" in failure for failure in __import__("json").loads(out)["failures"])


def test_a_damaged_answer_cache_is_set_aside_and_started_afresh(tmp_path) -> None:
    """The harvest/enrich answer cache is only a cache: like the embedding cache, it never stops a run."""
    from prep.wikimedia import HttpCache

    path = tmp_path / ".harvest_cache.sqlite"
    path.write_bytes(b"not a database" * 300)
    cache = HttpCache(path)
    cache.put("https://example.org/a", 200, "{}")
    assert cache.get("https://example.org/a") == (200, "{}")
    cache.close()
    assert [p.name.startswith(".harvest_cache.sqlite.damaged-") for p in tmp_path.iterdir()].count(True) == 1
