import numpy as np
import pytest
from PIL import Image

from prep.__main__ import main
from tests.helpers.cli import run, run_json, use_environment
from tests.helpers.models import CITIES, PHOTOS_PER_LANDMARK


@pytest.fixture
def dataset(built_dataset, tmp_path):
    return built_dataset.copy_to(tmp_path)


def test_build_twice_second_embeds_nothing(monkeypatch, tmp_path, dataset, model_dirs, capsys) -> None:
    use_environment(monkeypatch, tmp_path, dataset, model_dirs)
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "fresh-artifacts"))
    first = run_json(main, ["build"], capsys)
    # A fresh artifacts folder has a fresh cache: every photo is embedded once.
    assert first["embedded"] == first["photos"] and not first["up_to_date"]
    assert first["photos"] == sum(CITIES.values()) * PHOTOS_PER_LANDMARK

    def no_model(self):
        raise AssertionError("an up-to-date check must not load the model")

    with monkeypatch.context() as patch:
        patch.setattr("core.encoders.loading.Runtime.image_encoder", no_model)
        second = run_json(main, ["build"], capsys)
    assert second["up_to_date"] and second["embedded"] == 0
    code, out, _ = run(main, ["build"], capsys)
    assert code == 0 and "up to date" in out


def test_build_without_dataset_is_a_clear_error(monkeypatch, tmp_path, dataset, model_dirs, capsys) -> None:
    use_environment(monkeypatch, tmp_path, dataset, model_dirs)
    code, _, err = run(main, ["build", "--data", str(tmp_path / "nothing")], capsys)
    assert code == 2 and "prep ingest" in err


def test_eval_reports_accuracy_far_above_chance(monkeypatch, tmp_path, dataset, model_dirs, capsys) -> None:
    use_environment(monkeypatch, tmp_path, dataset, model_dirs)
    data = run_json(main, ["eval"], capsys)
    assert data["photos"] == sum(CITIES.values()) * PHOTOS_PER_LANDMARK
    chance = 1 / sum(CITIES.values())
    assert data["top1"] >= 8 * chance and data["top5"] >= 0.9 and data["top5"] >= data["top1"]
    assert 0 < data["category_precision5"] <= 1
    assert 0 <= data["text_precision5"] <= 1
    assert data["params"]["k"] == 20
    calibration = data["text_similarity"]  # how to set TEXT_MATCH_THRESHOLD for this index and model
    for spread in (calibration["names"], calibration["generic"]):
        assert -1 <= spread["p5"] <= spread["p50"] <= spread["p95"] <= 1
    assert calibration["suggested_threshold"] >= calibration["generic"]["p95"] or calibration["separable"]
    narrow = run_json(main, ["eval", "--k", "1", "--no-text"], capsys)
    assert narrow["text_precision5"] is None and narrow["text_similarity"] is None and narrow["params"]["k"] == 1
    code, out, _ = run(main, ["eval", "--no-text"], capsys)
    assert code == 0 and "top-1" in out and "precision@5" in out


def test_eval_with_geo_noise_reports_both_side_by_side(monkeypatch, tmp_path, dataset, model_dirs, capsys) -> None:
    use_environment(monkeypatch, tmp_path, dataset, model_dirs)
    result = run_json(main, ["eval", "--no-text", "--geo-noise", "150"], capsys)
    geo = result["geo"]
    assert geo["noise_m"] == 150 and geo["photos"] == result["photos"]
    assert geo["top1_without"] == result["top1"]  # the same leave-one-out, without the prior
    assert geo["top1_with"] >= 0.95 and geo["top1_with"] >= geo["top1_without"]
    assert geo["top5_with"] >= geo["top1_with"]
    code, out, _ = run(main, ["eval", "--no-text", "--geo-noise", "150"], capsys)
    assert code == 0 and "without / with prior" in out
    code, _, err = run(main, ["eval", "--no-text", "--geo-noise", "-5"], capsys)
    assert code == 2 and "--geo-noise" in err


def test_after_an_onnx_export_build_re_embeds_with_the_serving_runtime(
    monkeypatch, tmp_path, dataset, model_dirs, onnx_dir, capsys
) -> None:
    """An index built by torch and queried by int8 ONNX mixes two runtimes' vectors: `prep build` redoes it."""
    from core import PhotoIndex

    use_environment(monkeypatch, tmp_path, dataset, model_dirs)
    assert run_json(main, ["build"], capsys)["up_to_date"]  # torch, as built
    monkeypatch.setenv("MODEL_DIR", str(onnx_dir))  # ENCODER_BACKEND=auto now picks the int8 export
    report = run_json(main, ["build"], capsys)
    assert not report["up_to_date"] and report["embedded"] == report["photos"]
    assert "#int8@" in PhotoIndex.load(dataset.artifacts_dir).manifest.image_vectors
    assert run_json(main, ["build"], capsys)["up_to_date"]


def test_eval_reports_the_calibration_serving_uses_and_plots_it(
    monkeypatch, tmp_path, dataset, model_dirs, capsys
) -> None:
    use_environment(monkeypatch, tmp_path, dataset, model_dirs)
    monkeypatch.delenv("MATCH_THRESHOLD", raising=False)
    monkeypatch.delenv("TEXT_MATCH_THRESHOLD", raising=False)
    plot = tmp_path / "calibration.png"
    data = run_json(main, ["eval", "--plot", str(plot)], capsys)
    calibration = data["calibration"]
    assert calibration["match_precision"] == 0.9 and calibration["match_threshold"] is None  # calibrated
    assert calibration["expected_precision"] >= 0.9 and 0 < calibration["expected_coverage"] < 1
    assert calibration["text_calibrated"]
    # The tiny random text model reaches no precision: then no text answer is a match, and eval says so.
    if calibration["text_target_reached"]:
        assert -1 <= calibration["text_match_threshold"] <= 1
    else:
        assert calibration["text_match_threshold"] is None and calibration["text_expected_coverage"] == 0
        code, out, _ = run(main, ["eval"], capsys)
        assert code == 0 and 'every text answer says "nothing matches well"' in out
    thresholds = [t for t, _, _ in calibration["operating_points"]]
    assert thresholds == sorted(thresholds) and 0.9 in thresholds
    coverages = [c for _, _, c in calibration["operating_points"]]
    assert coverages == sorted(coverages, reverse=True)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    # The eval's match rate is the calibrated rule's, on leave-one-out queries of known landmarks.
    assert 0 < data["match_rate"] <= 1
    # Set by hand, both thresholds override the calibration and the report says so.
    monkeypatch.setenv("MATCH_THRESHOLD", "0.5")
    monkeypatch.setenv("TEXT_MATCH_THRESHOLD", "0.31")
    manual = run_json(main, ["eval", "--no-text"], capsys)["calibration"]
    assert manual["match_threshold"] == 0.5 and manual["expected_precision"] is None
    assert manual["text_match_threshold"] == 0.31 and not manual["text_calibrated"]
    code, out, _ = run(main, ["eval", "--no-text"], capsys)
    assert code == 0 and "similarity ≥ 0.50 (MATCH_THRESHOLD)" in out and "(TEXT_MATCH_THRESHOLD)" in out
    assert "at P ≥ 0.90: precision / coverage" in out
    code, _, err = run(main, ["eval", "--no-text", "--plot", str(tmp_path / "missing" / "x.png")], capsys)
    assert code == 2 and "--plot" in err


def test_operating_points_that_coincide_share_one_label_on_the_plot() -> None:
    """Issue #32: "P≥0.50" to "P≥0.95" were printed over each other where the curve is flat."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from prep.evaluate import _label_points

    figure, axes = plt.subplots()
    _label_points(axes, [(0.55, 1.0, "P≥0.50"), (0.55, 1.0, "P≥0.70"), (0.56, 1.0, "P≥0.80"), (0.9, 0.6, "P≥0.95")])
    assert sorted(t.get_text() for t in axes.texts) == ["P≥0.50, 0.70, 0.80", "P≥0.95"]
    plt.close(figure)


def test_eval_measures_the_calibration_on_views_it_never_saw(monkeypatch, tmp_path, model_dirs, capsys) -> None:
    """Issue #34: the gap between the confidence given to fresh views and how often they are right,
    for a fit on rows (before) and on views (as built). Each landmark here is shot from three
    viewpoints (three scenes the tiny model tells apart), three near-duplicate shots each."""
    from prep.ingest import ingest
    from tests.helpers.datagen import make_raw_dataset, scene
    from tests.helpers.models import BuiltDataset

    def viewpoint(landmark: int, shot: int) -> Image.Image:
        return scene(5_000 + 3 * landmark + shot % 3, shot)

    names = make_raw_dataset(tmp_path / "raw", {"EKB": 12, "NN": 8}, 9, view=viewpoint)
    ingest(tmp_path / "raw", tmp_path / "data", show_progress=False)
    use_environment(
        monkeypatch, tmp_path, BuiltDataset(tmp_path / "raw", tmp_path / "data", tmp_path / "a", names), model_dirs
    )
    run_json(main, ["build"], capsys)
    fresh = run_json(main, ["eval", "--no-text"], capsys)["fresh_views"]
    assert fresh["unmeasured"] is None and fresh["views"] > 20 and fresh["match_precision"] == 0.9
    assert fresh["fresh_known"] > 0 and fresh["fresh_unknown"] > 0
    assert set(fresh["fits"]) == {"rows", "views"}
    for fit in fresh["fits"].values():
        assert 0 <= fit["predicted"] <= 1 and 0 <= fit["observed"] <= 1 and 0 <= fit["coverage"] <= 1
        assert fit["reachable_coverage"] >= 0 and fit["calibration_error"] >= 0
    code, out, _ = run(main, ["eval", "--no-text"], capsys)
    assert code == 0 and "calibration on fresh views" in out and "fitted leave-view-out (built)" in out


def test_alpha_query_expansion_adds_the_nearest_photos_but_never_the_querys_own_copies() -> None:
    from prep.evaluate import QE_ALPHA, _expanded

    vectors = np.eye(4, dtype=np.float32)
    hashes = ["a", "a", "b", "c"]  # row 1 is a copy of row 0
    query = vectors[:1]
    similarities, rows = np.array([[1.0, 1.0, 0.5, 0.2]]), np.array([[0, 1, 2, 3]])
    expanded = _expanded(query, similarities, rows, vectors, hashes, ["a"])
    # Rows 0 and 1 are the query's own content: the two nearest others are rows 2 and 3, by similarity^α.
    wanted = np.array([1.0, 0.0, 0.5**QE_ALPHA, 0.2**QE_ALPHA])
    assert np.allclose(expanded[0], wanted / np.linalg.norm(wanted))
