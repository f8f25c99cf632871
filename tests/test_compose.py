"""docker-compose.yml's promise, tested the way compose runs it: each service's environment exactly as the
file gives it, a non-root user, a read-only root where only the volumes (and /tmp) can be written.

No Docker engine runs here, so the container is simulated: its absolute paths are laid out under a
temporary root, the volumes are the only folders this process may write (root without the capabilities
that ignore file permissions, as in tests/test_another_users_folders.py), and the commands of
docs/deployment.md run in the install their image has (.venv-serve for `bot` and `tools`, .venv for `prep`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
import yaml

from prep.export_onnx import export_place
from prep.random_models import build_place_model
from tests.helpers.bot import REPO, TOKEN
from tests.helpers.models import BuiltDataset, ModelDirs

OTHER_UID = 12345
SETPRIV = shutil.which("setpriv")
DROP = ["--bounding-set", "-dac_override,-dac_read_search,-fowner,-chown", "--inh-caps=-all", "--"]
SERVE_PYTHON = REPO / ".venv-serve" / "bin" / "python"
PREP_PYTHON = REPO / ".venv" / "bin" / "python"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or SETPRIV is None, reason="needs root and setpriv to simulate"),
]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())


class Container:
    """One service's view: its environment (paths under `root`) and its volumes, nothing else writable."""

    def __init__(self, root: Path, service: str, dot_env: dict[str, str]) -> None:
        self.root, self.spec = root, COMPOSE["services"][service]
        self.env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(root / "app")}
        self.env |= dot_env  # env_file: .env, then `environment:` wins, as in compose
        self.env |= {k: self.path(v) if str(v).startswith("/") else str(v) for k, v in self.spec["environment"].items()}
        self.env["TMPDIR"] = self.path("/tmp")

    def path(self, inside: str) -> str:
        return str(self.root / inside.lstrip("/"))

    def run(self, python: Path, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [SETPRIV, *DROP, str(python), *argv],
            env=self.env, cwd=self.root / "app", capture_output=True, text=True, timeout=300,
        )  # fmt: skip


def _lay_out_root(root: Path, raw: Path) -> None:
    """The image's file system: everything owned by another user (read-only to us) but the volumes."""
    for volume in COMPOSE["x-common"]["volumes"]:
        _, inside, *mode = volume.split(":")
        target = root / inside.lstrip("/")
        if inside == "/raw":
            shutil.copytree(raw, target)
        target.mkdir(parents=True, exist_ok=True)
        if mode == ["ro"]:
            _give_away(target)
    for tmpfs in COMPOSE["x-common"]["tmpfs"]:
        (root / tmpfs.lstrip("/")).mkdir(parents=True, exist_ok=True)
    (root / "app").mkdir()
    _give_away(root / "app")
    os.chown(root, OTHER_UID, OTHER_UID)
    root.chmod(0o755)


def _give_away(folder: Path) -> None:
    for current, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            os.chown(Path(current) / name, OTHER_UID, OTHER_UID)
    os.chown(folder, OTHER_UID, OTHER_UID)
    folder.chmod(0o755)


def test_every_step_of_the_guide_runs_with_composes_own_environment(
    built_dataset: BuiltDataset, model_dirs: ModelDirs, onnx_dir: Path, tmp_path: Path
) -> None:
    assert SERVE_PYTHON.exists(), "scripts/test.sh sets up .venv-serve first"
    root = tmp_path / "root"
    _lay_out_root(root, built_dataset.raw_dir)
    shutil.copytree(onnx_dir, root / "models" / "onnx")  # `docker compose run --rm prep export-onnx --int8`
    place = build_place_model(tmp_path / "dinov2-small")  # PLACE_MODEL is on by default: exported with CLIP
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings are about code paths the tower does not take
        export_place(str(place), root / "models" / "onnx" / "place", int8=True)
    dot_env = {  # what the admin's .env holds (the models are the tiny stand-ins)
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "ADMIN_IDS": "1",
        "IMAGE_MODEL": str(model_dirs.clip),
        "TEXT_MODEL": str(model_dirs.text),
        "PLACE_MODEL": str(place),
        "MEMORY_LIMIT_MB": "700",  # what the container's cgroup says under compose's mem_limit
    }
    tools, prep, bot = (Container(root, name, dot_env) for name in ("tools", "prep", "bot"))
    steps = [
        (tools, SERVE_PYTHON, ["-m", "prep", "ingest", tools.path("/raw"), "--json"]),
        (prep, PREP_PYTHON, ["-m", "prep", "clean", "--quarantine", prep.path("/quarantine"), "--checks", "tiny"]),
        (tools, SERVE_PYTHON, ["-m", "prep", "build", "--json"]),
        (tools, SERVE_PYTHON, ["-m", "prep", "contributions", "list", "--json"]),
        (tools, SERVE_PYTHON, ["-m", "prep", "stats", "--json"]),
        (bot, SERVE_PYTHON, ["-m", "bot", "--check"]),
    ]
    for container, python, argv in steps:
        result = container.run(python, *argv)
        assert result.returncode == 0, (argv, result.stderr[-2000:])
        assert "Traceback" not in result.stderr
    assert (root / "state" / "contributions").is_dir() and (root / "artifacts" / "current").exists()
    assert (root / "artifacts" / "current" / "place").is_dir()  # the serving install built both towers' indexes
    assert not any((root / "app").iterdir())  # nothing was (or could be) written outside the volumes


def test_a_compose_file_without_the_state_volume_fails_the_check_naming_the_variable(
    built_dataset: BuiltDataset, model_dirs: ModelDirs, tmp_path: Path
) -> None:
    """The break of issue #20: CONTRIB_DIR defaulted to a folder no volume holds. It must name the variable."""
    root = tmp_path / "root"
    _lay_out_root(root, built_dataset.raw_dir)
    shutil.copytree(built_dataset.data_dir, root / "data", dirs_exist_ok=True)
    bot = Container(root, "bot", {"TELEGRAM_BOT_TOKEN": TOKEN, "ENCODER_BACKEND": "torch"})
    del bot.env["CONTRIB_DIR"]
    result = bot.run(PREP_PYTHON, "-m", "bot", "--check")
    assert result.returncode == 2 and "CONTRIB_DIR" in result.stderr and "Traceback" not in result.stderr


def test_models_that_would_not_fit_the_containers_memory_fail_the_check_before_loading(
    built_dataset: BuiltDataset, model_dirs: ModelDirs, tmp_path: Path
) -> None:
    """Killed while loading, a bot restarts into the same death under `restart: unless-stopped`:
    the check compares the models' expected peak with the limit and names the fix instead."""
    root = tmp_path / "root"
    _lay_out_root(root, built_dataset.raw_dir)
    shutil.copytree(built_dataset.data_dir, root / "data", dirs_exist_ok=True)
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "ENCODER_BACKEND": "torch", "MEMORY_LIMIT_MB": "300"}
    env |= {"IMAGE_MODEL": str(model_dirs.clip), "TEXT_MODEL": str(model_dirs.text)}
    bot = Container(root, "bot", env)
    result = bot.run(PREP_PYTHON, "-m", "bot", "--check")
    message = result.stderr.strip()
    assert result.returncode == 2 and message.count("\n") == 0 and "Traceback" not in message, message
    assert "serving on torch needs ~" in message and "300 MB" in message
    assert "export-onnx --int8" in message and "BOT_MEM_LIMIT" in message
