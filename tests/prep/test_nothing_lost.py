"""Issue #21's data-loss findings, each replayed: the review page, apply, kept.csv, report.csv, places.csv."""

from __future__ import annotations

import csv
import http.client
import json
import threading

import pytest

from core import Dataset, KeptPhoto, file_hash
from core.dataset import UnsafePathError
from prep.__main__ import main
from prep.quarantine import apply_plan, decide, plan_apply
from prep.review_server import make_server
from tests.helpers.cli import run

pytestmark = pytest.mark.slow  # whole clean/review/apply runs


def _post(port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", path, body=body, headers=headers or {"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()


def test_six_parallel_keeps_lose_nothing_and_leave_kept_csv_whole(cleaned) -> None:
    dataset, qdir, expected = cleaned
    server = make_server(qdir, dataset.data_dir, port=0).start()
    try:
        paths = sorted(expected)
        port = server.port
        barrier = threading.Barrier(len(paths))
        results: list[int] = []

        def keep(path: str) -> None:
            barrier.wait()
            body = json.dumps({"paths": [path], "decision": "keep"}).encode()
            results.append(_post(port, f"/{server.token}/decide", body)[0])

        threads = [threading.Thread(target=keep, args=(p,)) for p in paths]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        server.shutdown()
    assert results == [200] * len(paths)
    kept_file = Dataset(dataset.data_dir).kept_path
    rows = list(csv.DictReader(kept_file.open(encoding="utf-8")))
    assert {row["path"] for row in rows} == set(paths) and all(len(row["sha256"]) == 64 for row in rows)
    assert [p.name for p in kept_file.parent.glob(".kept.csv*")] == []  # no temporary file left


def test_apply_rechecks_at_the_moment_it_deletes(cleaned) -> None:
    """A keep made while `apply` waited at its y/N prompt must win."""
    dataset, qdir, expected = cleaned
    plan = plan_apply(dataset.data_dir, qdir)
    planned = {item.path for item in plan.delete}
    kept_meanwhile = sorted(planned)[0]
    decide(qdir, dataset.data_dir, [kept_meanwhile], "keep")  # the review page, during the prompt
    deleted = {item.path for item in apply_plan(plan, dataset.data_dir, qdir)}
    assert kept_meanwhile not in deleted and (dataset.data_dir / kept_meanwhile).is_file()
    assert deleted == planned - {kept_meanwhile}


@pytest.mark.parametrize("edit", ["bom", "short-row", "latin-1", "semicolons"])
def test_a_hand_edited_kept_csv_keeps_every_decision(cleaned, capsys, edit: str) -> None:
    dataset, qdir, expected = cleaned
    decide(qdir, dataset.data_dir, sorted(expected), "keep")
    for path in expected:  # the copies come back, as if the page had never been used: only kept.csv protects
        decide(qdir, dataset.data_dir, [path], "remove")
    Dataset(dataset.data_dir).record_kept(
        KeptPhoto(file_hash(dataset.data_dir / p), p, frozenset({r})) for p, r in expected.items()
    )
    kept = Dataset(dataset.data_dir).kept_path
    text = kept.read_text(encoding="utf-8")
    if edit == "bom":
        kept.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # a spreadsheet's "CSV UTF-8"
    elif edit == "short-row":
        kept.write_text(text + "abc\n", encoding="utf-8")
    elif edit == "semicolons":  # a Russian-locale spreadsheet's "CSV" (issue #31, row 4's sibling)
        rows = list(csv.reader(text.splitlines()))
        kept.write_text("\n".join(";".join(f'"{cell}"' for cell in row) for row in rows) + "\n", encoding="cp1251")
    else:
        kept.write_bytes(text.encode("utf-8") + "é,images/x/y/z.jpg,grayscale,\n".encode("latin-1"))
    code, out, err = run(main, ["apply", "--quarantine", str(qdir), "--yes", "--json"], capsys)
    assert code == 0 and "Traceback" not in err, err
    assert json.loads(out)["deleted"] == []
    assert all((dataset.data_dir / p).is_file() for p in expected)


def test_a_path_with_dotdot_in_report_csv_moves_nothing(cleaned, tmp_path) -> None:
    dataset, qdir, expected = cleaned
    victim = sorted(expected)[0]
    report = qdir / "report.csv"
    rows = list(csv.DictReader(report.open(encoding="utf-8")))
    evil = dict(rows[0], path=f"images/../{victim}", reason=rows[0]["reason"])
    with report.open("a", newline="", encoding="utf-8") as f:
        csv.DictWriter(f, fieldnames=list(rows[0])).writerow(evil)
    before = sorted(p.as_posix() for p in dataset.data_dir.rglob("*"))
    assert decide(qdir, dataset.data_dir, [evil["path"]], "keep") == {}
    assert sorted(p.as_posix() for p in dataset.data_dir.rglob("*")) == before


def test_a_hostile_city_code_cannot_steer_a_write_out_of_the_dataset(dataset, tmp_path) -> None:
    places = dataset.data_dir / "places.csv"
    rows = list(csv.DictReader(places.open(encoding="utf-8")))
    rows[0]["city_code"] = "../../outside"
    rows[1]["xid"] = "../evil"
    with places.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    landmarks = Dataset(dataset.data_dir).landmarks()
    assert "../evil" not in landmarks and landmarks[rows[0]["xid"]].city_code == ""
    with pytest.raises(UnsafePathError):
        Dataset.photo_relative("../../outside", "W1", "a.jpg")
    with pytest.raises(UnsafePathError):
        Dataset(dataset.data_dir).path("images/../../etc/passwd")
    assert not (tmp_path / "outside").exists()


def test_the_review_server_answers_malformed_requests_and_refuses_a_bad_port(cleaned, capsys) -> None:
    dataset, qdir, _ = cleaned
    server = make_server(qdir, dataset.data_dir, port=0).start()
    try:
        decide_url = f"/{server.token}/decide"
        assert _post(server.port, decide_url, b"{}", {"Content-Length": "nope"})[0] == 400
        nested = b"[" * 100_000 + b"]" * 100_000
        assert _post(server.port, decide_url, nested)[0] == 400
        assert _post(server.port, decide_url, b'{"paths": [1], "decision": "keep"}')[0] == 400
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("HEAD", f"/{server.token}/")
        response = connection.getresponse()
        assert response.status == 200 and response.read() == b""
    finally:
        server.shutdown()
    code, _, err = run(main, ["review", "--quarantine", str(qdir), "--port", "99999"], capsys)
    assert code == 2 and "Traceback" not in err and "--port" in err


@pytest.mark.parametrize("name", ["kept.csv", "removed.csv"])
def test_a_review_file_whose_header_nobody_can_read_stops_apply_and_ingest(cleaned, capsys, name: str) -> None:
    """Read as empty, an unreadable kept.csv would let apply delete what the admin kept, and an unreadable
    removed.csv would let ingest bring back what review removed: both refuse in one line instead."""
    dataset, qdir, expected = cleaned
    path = dataset.data_dir / name
    path.write_text("Hash|Pfad|Gründe\nabc|images/x/y/z.jpg|grayscale\n", encoding="utf-8")
    command = ["apply", "--quarantine", str(qdir), "--yes"] if name == "kept.csv" else ["ingest", str(dataset.raw_dir)]
    code, _, err = run(main, command, capsys)
    assert code == 2 and name in err and len(err.strip().splitlines()) == 1, err
    assert all((dataset.data_dir / p).is_file() for p in expected)
    assert path.read_text(encoding="utf-8").startswith("Hash|Pfad")
