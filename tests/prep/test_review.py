"""`prep review` and decisions that stick (issue #13)."""

from __future__ import annotations

import csv
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from core.dataset import Dataset
from prep.__main__ import main
from prep.review_server import make_server
from tests.helpers.cleaning_set import PIXEL_CHECKS, inject_bad_photos, snapshot
from tests.helpers.cli import run_json

pytestmark = pytest.mark.slow  # end to end: the whole suite (CI) runs it, the fast loop does not


@pytest.fixture
def reviewed(dataset, tmp_path, capsys):
    """A cleaned dataset and its review server: (dataset, qdir, server, {path: reason})."""
    expected = inject_bad_photos(dataset)
    qdir = tmp_path / "q"
    run_json(main, ["clean", "--quarantine", str(qdir), "--checks", PIXEL_CHECKS], capsys)
    server = make_server(qdir, dataset.data_dir, port=0).start()
    yield dataset, qdir, server, expected
    server.shutdown()


OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never through a proxy


def _get(url: str) -> tuple[int, bytes]:
    try:
        with OPENER.open(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _decide(server, paths: list[str], decision: str) -> dict:
    request = urllib.request.Request(
        f"{server.url}decide",
        data=json.dumps({"paths": paths, "decision": decision}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with OPENER.open(request, timeout=10) as response:
        return json.loads(response.read())


def test_the_server_listens_on_loopback_and_wants_its_token(reviewed) -> None:
    _, qdir, server, _ = reviewed
    assert server.server.server_address[0] == "127.0.0.1" and len(server.token) >= 32
    status, page = _get(server.url)
    assert status == 200 and page == (qdir / "index.html").read_bytes()
    base = server.url.removesuffix(f"{server.token}/")
    for url in (base, f"{base}state", f"{base}wrong-token/", f"{base}{server.token[:-1]}/state"):
        assert _get(url)[0] == 403, url
    thumbnail = next((qdir / ".thumbs").iterdir()).name
    assert _get(f"{server.url}.thumbs/{thumbnail}")[0] == 200
    assert _get(f"{server.url}.thumbs/../report.csv")[0] == 404


def test_keep_and_remove_persist_at_once_and_groups_toggle_together(reviewed) -> None:
    dataset, qdir, server, expected = reviewed
    gray = next(p for p, r in expected.items() if r == "grayscale")
    assert json.loads(_get(f"{server.url}state")[1])[gray] == "remove"
    assert _decide(server, [gray], "keep") == {gray: "keep"}
    assert not (qdir / "grayscale" / Path(gray).relative_to("images")).exists()
    assert json.loads(_get(f"{server.url}state")[1])[gray] == "keep"
    kept = Dataset(dataset.data_dir).kept()
    assert any(k.path == gray and "grayscale" in k.reasons for k in kept.values())
    assert _decide(server, [gray], "remove") == {gray: "remove"}
    assert (qdir / "grayscale" / Path(gray).relative_to("images")).is_file()
    assert not Dataset(dataset.data_dir).kept()
    group = list(expected)  # one landmark: all the injected photos
    states = _decide(server, group, "keep")
    assert set(states) == set(group) and set(states.values()) == {"keep"}


def test_kept_photos_are_never_deleted_nor_flagged_again(reviewed, capsys) -> None:
    dataset, qdir, server, expected = reviewed
    collage = next(p for p, r in expected.items() if r == "collage")
    tiny = next(p for p, r in expected.items() if r == "tiny")
    _decide(server, [collage], "keep")  # kept in the page
    (qdir / "tiny" / Path(tiny).relative_to("images")).unlink()  # kept the old way
    result = run_json(main, ["apply", "--quarantine", str(qdir), "--yes"], capsys)
    deleted = {d["path"] for d in result["deleted"]}
    assert collage not in deleted and tiny not in deleted
    assert (dataset.data_dir / collage).is_file() and (dataset.data_dir / tiny).is_file()
    assert {k.path for k in Dataset(dataset.data_dir).kept().values()} >= {collage, tiny}

    before = snapshot(dataset.data_dir)
    again = run_json(main, ["clean", "--quarantine", str(qdir), "--checks", PIXEL_CHECKS], capsys)
    assert again["kept_earlier"] == 2 and again["candidates"] == 0
    with (qdir / "report.csv").open() as f:
        assert not {row["path"] for row in csv.DictReader(f)} & {collage, tiny}
    assert run_json(main, ["apply", "--quarantine", str(qdir), "--yes"], capsys)["deleted"] == []
    assert snapshot(dataset.data_dir) == before


def test_remove_on_a_copy_deleted_by_hand_leaves_it_kept(reviewed) -> None:
    """The page cannot bring back a copy the admin deleted: the photo stays kept, and so does its record."""
    dataset, qdir, server, expected = reviewed
    tiny = next(p for p, r in expected.items() if r == "tiny")
    (qdir / "tiny" / Path(tiny).relative_to("images")).unlink()
    assert _decide(server, [tiny], "remove") == {tiny: "keep"}
    assert any(k.path == tiny for k in Dataset(dataset.data_dir).kept().values())


def test_cleaning_without_decisions_writes_no_kept_file(reviewed) -> None:
    dataset, *_ = reviewed
    assert not (dataset.data_dir / "kept.csv").exists()


async def test_in_a_real_browser_the_not_saved_bar_shows_at_any_scroll_and_filters_leave_no_empty_heading(
    reviewed, tmp_path
) -> None:
    """Issue #32: the bar sat under the sticky header once the page was scrolled, and a filtered-out
    reason kept its heading over nothing. Tested as the page is used: headless Chromium, the live server."""
    from tests.helpers.browser import browser_page

    _, _, server, _ = reviewed
    async with browser_page(tmp_path / "profile", width=1000, height=600) as page:
        await page.open(
            server.url, "document.body.classList.contains('live') && document.getElementById('counts').textContent"
        )
        reasons = await page.evaluate(
            "[...document.getElementById('reason').options].map(o => o.value).filter(Boolean)"
        )
        assert len(reasons) >= 2
        for reason in [*reasons, ""]:
            shown = await page.evaluate(
                "(() => { const s = document.getElementById('reason'); s.value = " + json.dumps(reason) + ";"
                " s.dispatchEvent(new Event('change'));"
                " return [...document.querySelectorAll('section.reason')].filter(r => !r.classList.contains('hidden'))"
                "   .map(r => [r.querySelector('h2').id,"
                "              r.querySelectorAll('figure.candidate:not(.hidden)').length]); })()"
            )
            assert shown and all(count > 0 for _, count in shown), (reason, shown)
            if reason:
                assert len(shown) < len(reasons) or len(reasons) == 1  # the other reasons' headings are gone
        server.shutdown()  # prep review stopped: the next decision cannot be saved
        await page.evaluate("document.querySelector('figure.candidate button[data-decision=keep]').click()")
        await page.wait_for("!document.getElementById('trouble').classList.contains('hidden')")
        height = await page.evaluate("document.documentElement.scrollHeight - innerHeight")
        assert height > 600  # a page long enough to scroll
        for y in (0, height // 2, height):
            seen = await page.evaluate(
                f"(() => {{ scrollTo(0, {y}); const bar = document.getElementById('trouble');"
                " const r = bar.getBoundingClientRect();"
                " const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);"
                " const inside = r.top >= 0 && r.bottom <= innerHeight && r.height > 0;"
                " return [inside, bar.contains(top), bar.textContent]; })()"
            )
            assert seen[0] and seen[1] and seen[2].startswith("Not saved"), (y, seen)
        await page.screenshot(tmp_path / "not-saved.png")
