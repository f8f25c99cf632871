"""`prep contributions list|approve|reject` and `prep stats` (issue #14)."""

from __future__ import annotations

from core.contributions import SqliteContributionStore
from core.dataset import Dataset
from prep.__main__ import main
from tests.helpers.cleaning_set import grayscale
from tests.helpers.cli import run, run_json, use_environment
from tests.helpers.datagen import jpeg_bytes, scene


def test_list_approve_reject_and_stats(built_dataset, model_dirs, monkeypatch, tmp_path, capsys) -> None:
    dataset = built_dataset.copy_to(tmp_path)
    use_environment(monkeypatch, tmp_path, dataset, model_dirs)
    monkeypatch.setenv("CONTRIB_DIR", str(tmp_path / "contrib"))
    xids = list(Dataset(dataset.data_dir).landmarks())
    store = SqliteContributionStore(tmp_path / "contrib")
    good, gray, rejected, unlabelled = (
        store.record_answer(user, xids[:5], True, 40.0 + user, jpeg_bytes(photo), ".jpg", 0.5 + user / 10)
        for user, photo in ((1, scene(0, 700)), (2, grayscale(scene(1, 701))), (3, scene(2, 702)), (4, scene(3, 703)))
    )
    store.give_feedback(good, 1, "corrected", xids[1])
    store.give_feedback(gray, 2, "confirmed", None)
    store.give_feedback(rejected, 3, "confirmed", None)

    listed = run_json(main, ["contributions", "list"], capsys)["contributions"]
    assert {c["id"] for c in listed} == {good, gray, rejected}  # no label, no contribution
    first = next(c for c in listed if c["id"] == good)
    assert first["status"] == "pending" and first["user_label"] == "corrected" and first["xid"] == xids[1]
    assert set(first) >= {"id", "xid", "status", "sha256", "user_label"}

    approved = run_json(main, ["contributions", "approve", good, "--xid", xids[2]], capsys)
    assert approved["status"] == "approved" and f"/{xids[2]}/" in approved["detail"]
    assert (dataset.data_dir / approved["detail"]).is_file()
    code, out, _ = run(main, ["contributions", "approve", gray, "--json"], capsys)
    assert code == 1 and "grayscale" in out  # the clean checks ran; it stays pending
    assert run_json(main, ["contributions", "reject", rejected], capsys)["status"] == "rejected"
    statuses = {c["id"]: c["status"] for c in run_json(main, ["contributions", "list"], capsys)["contributions"]}
    assert statuses == {good: "approved", gray: "pending", rejected: "rejected"}
    code, _, err = run(main, ["contributions", "approve", unlabelled], capsys)
    assert code == 2 and "no contribution" in err

    stats = run_json(main, ["stats"], capsys)["total"]
    assert stats["answered"] == 4 and stats["confirmed"] == 2 and stats["wrong"] == 1
    assert stats["right_rate"] == round(2 / 3, 4) and stats["corrected_rank"] == {"2": 1}
    assert stats["not_sure_rate"] == 0 and 40 < stats["answer_ms_p50"] < 45
    # The calibration promised 0.6, 0.7 and 0.8 for the three answers tourists judged: 70 % expected.
    assert stats["expected_right_rate"] == 0.7
    assert run(main, ["stats"], capsys)[1].startswith("total: 4 photos, right 67% (expected 70%)")
