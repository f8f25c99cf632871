"""The Dockerfile, compose file, scripts and README stay in step with the code they run."""

import importlib
import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
README = (REPO / "README.md").read_text()
DOCKERFILE = (REPO / "Dockerfile").read_text()
DOCKER_COMMANDS = DOCKERFILE.replace('", "', " ")  # exec-form ["python", "-m", "bot"] read as a command line
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())

# `python -m package subcommand` in the README and Dockerfile; subcommands come from each CLI's parser.
MODULE_COMMAND = re.compile(r"python -m (core|prep|bot|benchmarks\.\w+|bot\.health)(?: ([a-z][a-z-]+))?")


def _subcommands(package: str) -> set[str]:
    module = importlib.import_module(f"{package}.__main__")
    parser = module.build_parser()
    choices = next(a.choices for a in parser._actions if getattr(a, "choices", None))
    return set(choices)


def test_console_scripts_point_at_real_functions() -> None:
    for name, target in PYPROJECT["project"]["scripts"].items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), name


@pytest.mark.parametrize("text", [README, DOCKER_COMMANDS], ids=["README", "Dockerfile"])
def test_every_documented_command_exists(text: str) -> None:
    found = MODULE_COMMAND.findall(text)
    assert found
    for package, subcommand in found:
        importlib.import_module(package if "." in package or package == "bot" else f"{package}.__main__")
        if package in ("core", "prep") and subcommand:
            assert subcommand in _subcommands(package), f"python -m {package} {subcommand}"


def test_scripts_named_in_the_readme_exist_and_ci_runs_the_test_command() -> None:
    for script in set(re.findall(r"scripts/[\w.]+\.sh", README)):
        assert (REPO / script).is_file(), script
    assert "scripts/test.sh" in (REPO / ".ci" / "run").read_text()
    assert "scripts/test.sh" in README


def test_docker_image_uses_the_cpu_torch_pinned_by_the_scripts() -> None:
    pinned = re.search(r'TORCH_VERSION="\$\{TORCH_VERSION:-([\d.]+)\}"', (REPO / "scripts" / "setup.sh").read_text())
    assert pinned
    assert f"torch=={pinned.group(1)} --index-url https://download.pytorch.org/whl/cpu" in DOCKERFILE
    assert DOCKERFILE.index("--index-url https://download.pytorch.org/whl/cpu") < DOCKERFILE.index("pip install .")
    assert "USER guide" in DOCKERFILE and "HEALTHCHECK" in DOCKERFILE


def test_compose_restarts_and_reads_the_env_file() -> None:
    compose = (REPO / "docker-compose.yml").read_text()
    assert "restart: unless-stopped" in compose and "env_file: .env" in compose
    for folder in ("/data", "/artifacts", "/models"):
        assert f":{folder}" in compose
