"""Every CLI step of the VPS guide, run by a user who cannot write the folders (another owner): one line,
exit 2, never a traceback (issue #15: the container user did not match the bind mounts' owner).

The tests run as root, so "another user" is simulated the way the kernel sees it: the command runs
without the capabilities that let root ignore file permissions (setpriv), against folders owned by
uid 12345 with mode 755 (readable, not writable) or 700 (not even readable).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.bot import REPO, TOKEN
from tests.helpers.datagen import jpeg_bytes, scene
from tests.helpers.models import BuiltDataset, ModelDirs

OTHER_UID = 12345
SETPRIV = shutil.which("setpriv")
DROP = ["--bounding-set", "-dac_override,-dac_read_search,-fowner,-chown", "--inh-caps=-all", "--"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or SETPRIV is None, reason="needs root and setpriv to simulate"),
]


def _as_another_user(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SETPRIV, *DROP, sys.executable, *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=180
    )


def _give_away(*folders: Path, mode: int = 0o755) -> None:
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            for name in [*dirs, *files]:
                os.chown(Path(root) / name, OTHER_UID, OTHER_UID, follow_symlinks=False)
        os.chown(folder, OTHER_UID, OTHER_UID)
        folder.chmod(mode)


@pytest.fixture
def setup(built_dataset: BuiltDataset, model_dirs: ModelDirs, tmp_path: Path):
    dataset = built_dataset.copy_to(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATA_", "ARTIFACTS_"))}
    env.update(
        PYTHONPATH=str(REPO),
        DATA_DIR=str(dataset.data_dir),
        ARTIFACTS_DIR=str(dataset.artifacts_dir),
        IMAGE_MODEL=str(model_dirs.clip),
        TEXT_MODEL=str(model_dirs.text),
        PLACE_MODEL="none",  # no DINOv2 weights here; what is tested is the folders
        MODEL_DIR=str(tmp_path / "models"),
        HEALTH_FILE=str(tmp_path / "alive"),
    )
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes(scene(0, 3)))
    return dataset, env, tmp_path


def _assert_one_line(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-1500:])
    assert "Traceback" not in result.stderr, result.stderr[-1500:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-1500:]  # progress lines may come before it
    message = errors[0]
    for word in words:
        assert word in message, message


def test_ingest_into_a_folder_of_another_user(setup, built_dataset) -> None:
    dataset, env, tmp = setup
    target = tmp / "foreign-data"
    target.mkdir()
    _give_away(target)
    result = _as_another_user(["-m", "prep", "ingest", str(built_dataset.raw_dir), "--data", str(target)], env, tmp)
    _assert_one_line(result, "Permission denied", "PUID")


def test_clean_into_a_quarantine_of_another_user(setup) -> None:
    dataset, env, tmp = setup
    quarantine = tmp / "q"
    quarantine.mkdir()
    _give_away(quarantine)
    result = _as_another_user(["-m", "prep", "clean", "--quarantine", str(quarantine), "--checks", "tiny"], env, tmp)
    _assert_one_line(result, "Permission denied")


def test_apply_on_a_dataset_of_another_user_deletes_nothing(setup) -> None:
    dataset, env, tmp = setup
    quarantine = tmp / "q"
    photo = sorted((dataset.data_dir / "images").rglob("*.jpg"))[0]
    (photo.parent / "z_dup.jpg").write_bytes(photo.read_bytes())  # an exact duplicate to clean away
    clean = subprocess.run(
        [sys.executable, "-m", "prep", "clean", "--quarantine", str(quarantine), "--checks", "duplicates"],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
    )
    assert clean.returncode == 0, clean.stderr
    before = sorted(p.name for p in photo.parent.iterdir())
    _give_away(dataset.data_dir)
    result = _as_another_user(["-m", "prep", "apply", "--quarantine", str(quarantine), "--yes"], env, tmp)
    _assert_one_line(result, "Permission denied")
    assert sorted(p.name for p in photo.parent.iterdir()) == before


def test_build_into_artifacts_of_another_user(setup) -> None:
    dataset, env, tmp = setup
    (dataset.data_dir / "images" / "EKB").joinpath("new.jpg").write_bytes(b"")  # something to rebuild
    _give_away(dataset.artifacts_dir)
    result = _as_another_user(["-m", "prep", "build", "--force"], env, tmp)
    _assert_one_line(result, "Permission denied", "artifacts")


def test_export_into_a_model_folder_of_another_user(setup) -> None:
    dataset, env, tmp = setup
    models = tmp / "models"
    models.mkdir()
    _give_away(models)
    result = _as_another_user(["-m", "prep", "export-onnx", "--out", str(models / "onnx")], env, tmp)
    _assert_one_line(result, "export failed")


def test_recognize_with_an_unreadable_index(setup) -> None:
    dataset, env, tmp = setup
    _give_away(dataset.artifacts_dir, mode=0o700)
    result = _as_another_user(["-m", "core", "recognize", "photo.jpg"], env, tmp)
    _assert_one_line(result)


def test_the_bot_with_unwritable_artifacts_stops_before_loading_models(setup) -> None:
    dataset, env, tmp = setup
    _give_away(dataset.artifacts_dir)
    result = _as_another_user(["-m", "bot", "--check"], {**env, "TELEGRAM_BOT_TOKEN": TOKEN}, tmp)
    _assert_one_line(result, "not writable", "PUID")
