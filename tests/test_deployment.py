"""The Dockerfile, compose file, scripts and README stay in step with the code they run."""

import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
README = (REPO / "README.md").read_text()
DOCS = README + "".join(page.read_text() for page in sorted((REPO / "docs").glob("*.md")))
DEPLOYMENT = (REPO / "docs" / "deployment.md").read_text()
# Steps that need torch, OpenCV or scikit-learn: only the prep image has them.
NEEDS_PREP_IMAGE = {"export-onnx", "clean", "random-models"}
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


@pytest.mark.parametrize("text", [DOCS, DOCKER_COMMANDS], ids=["README and docs", "Dockerfile"])
def test_every_documented_command_exists(text: str) -> None:
    found = MODULE_COMMAND.findall(text)
    assert found
    for package, subcommand in found:
        importlib.import_module(package if "." in package or package == "bot" else f"{package}.__main__")
        if package in ("core", "prep") and subcommand:
            assert subcommand in _subcommands(package), f"python -m {package} {subcommand}"


def test_compose_commands_use_an_image_that_has_what_they_need() -> None:
    runs = re.findall(r"docker compose run --rm (?:--service-ports )?(tools|prep) ([a-z-]+)", DOCS)
    assert {image for image, _ in runs} == {"tools", "prep"}
    prep_commands = _subcommands("prep")
    for image, command in runs:
        assert command in prep_commands, command
        assert (image == "prep") == (command in NEEDS_PREP_IMAGE), f"{image} {command}"


def test_scripts_named_in_the_readme_exist_and_ci_runs_the_test_command() -> None:
    for script in set(re.findall(r"scripts/[\w.]+\.sh", DOCS)):
        assert (REPO / script).is_file(), script
    assert "scripts/test.sh" in (REPO / ".ci" / "run").read_text()
    assert "scripts/test.sh" in README


def _stages() -> dict[str, str]:
    """The Dockerfile's stages by name, each with its text."""
    parts = re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]
    return {re.search(r" AS (\w+)", part.splitlines()[0]).group(1): part for part in parts}


def test_dockerfile_lints_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), "Dockerfile"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_has_a_small_serving_image_and_a_prep_image() -> None:
    stages = _stages()
    assert list(stages)[-1] == "serve"  # the default target
    assert "torch" not in stages["serve"] and "torch" not in stages["base"]
    assert "requirements/serve.txt" in stages["base"] and "requirements/prep.txt" in stages["prep"]
    pinned = re.search(r'TORCH_VERSION="\$\{TORCH_VERSION:-([\d.]+)\}"', (REPO / "scripts" / "setup.sh").read_text())
    assert f"torch=={pinned.group(1)}" in stages["prep"] and "download.pytorch.org/whl/cpu" in stages["prep"]
    for name in ("serve", "prep"):
        stage = stages[name]
        # dependencies before the code: a code change reuses the dependency layers
        assert stage.index("COPY core") < stage.index("pip install --no-cache-dir --no-deps .")
        assert re.search(r"^USER \d+:\d+$", stage, re.M), name  # never root
    assert DOCKERFILE.index("pip install --require-hashes -r requirements/serve.txt") < DOCKERFILE.index("COPY core")
    prep_install = stages["prep"].index("pip install --require-hashes -r requirements/prep.txt")
    assert prep_install < stages["prep"].index("COPY core")
    assert "COPY prep" in stages["serve"]  # the torch-free prep steps run in the serve image
    assert "--mount=type=cache" in DOCKERFILE
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M).group(1)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base  # pinned, not :latest
    assert 'CMD ["python", "-m", "bot.health"]' in stages["serve"]


def test_lock_files_pin_every_declared_dependency_with_hashes() -> None:
    for name in ("serve.txt", "prep.txt", "dev.txt"):
        text = (REPO / "requirements" / name).read_text()
        pins = re.findall(r"^[A-Za-z0-9][^\n]*==[^\n]*$", text, re.M)
        assert pins and all(pin.endswith("\\") for pin in pins), name  # every pin is followed by its hashes
        assert "scripts/lock.sh" in text and "torch==" not in text

    def pinned(name: str) -> set[str]:
        lines = (REPO / "requirements" / name).read_text().splitlines()
        return {line.split("==")[0].lower().replace("_", "-") for line in lines if "==" in line}

    serve, prep, dev = pinned("serve.txt"), pinned("prep.txt"), pinned("dev.txt")

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[\[<>=!~ ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}

    project = PYPROJECT["project"]
    assert names(project["dependencies"]) <= serve
    # torch is pinned in setup.sh and the Dockerfile and installed first as the CPU build, not locked.
    assert names(project["optional-dependencies"]["prep"]) - {"torch"} <= serve | prep
    assert names(project["optional-dependencies"]["dev"]) <= serve | prep | dev
    assert not {"torch", "transformers", "sentence-transformers", "opencv-python-headless", "scikit-learn"} & serve
    assert names(project["optional-dependencies"]["scale"]) <= dev  # Ray: tested, never installed to serve
    assert not {"ray", "pyarrow"} & (serve | prep)
    # The project does not use pandas; only Ray Data (the [scale] extra, dev lock) brings it.
    assert "pandas" not in serve | prep
    assert _locked_via("dev.txt", "pandas") in ([], ["ray"])


def _locked_via(lock: str, package: str) -> list[str]:
    """Why a lock file holds a package: the names on its "# via" lines ([] when it is not there)."""
    lines = (REPO / "requirements" / lock).read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"{package}==")), None)
    if start is None:
        return []
    block = [line.strip() for line in lines[start + 1 :]]
    block = block[: next((i for i, line in enumerate(block) if not line.startswith(("--hash", "#"))), len(block))]
    return [line.removeprefix("# via").lstrip("# ").strip() for line in block if line.startswith("#")]


def test_compose_runs_as_the_host_user_hardened_and_limited() -> None:
    import yaml

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    bot, tools, prep = (compose["services"][name] for name in ("bot", "tools", "prep"))
    for service in (bot, tools, prep):
        assert service["user"] == "${PUID:-1000}:${PGID:-1000}" and service["init"] is True
        assert service["cap_drop"] == ["ALL"] and "no-new-privileges:true" in service["security_opt"]
        assert service["read_only"] is True and "/tmp" in service["tmpfs"]
        assert service["mem_limit"] and service["env_file"] == ".env"
        mounts = {volume.split(":")[1] for volume in service["volumes"]}
        assert {"/data", "/artifacts", "/quarantine", "/models", "/state"} <= mounts
        assert all(volume.startswith("./") for volume in service["volumes"])  # bind mounts the host user owns
        assert service["image"].startswith("${GUIDE_IMAGE:-")  # the published image; build is the fallback
    assert bot["build"]["target"] == tools["build"]["target"] == "serve" and prep["build"]["target"] == "prep"
    assert bot["restart"] == "unless-stopped"  # back after a reboot; Docker's backoff bounds a crash loop
    assert prep["profiles"] == ["prep"] and tools["profiles"] == ["tools"]
    assert all(port.startswith("127.0.0.1:") for s in (tools, prep) for port in s.get("ports", []))
    state = compose["x-common"]["environment"]
    assert state["CONTRIB_DIR"].startswith("/state/") and state["BOT_STATE_FILE"].startswith("/state/")


def test_the_vps_guide_creates_the_folders_and_ids_before_the_first_run() -> None:
    guide = DEPLOYMENT[: DEPLOYMENT.index("\n## ", 5)]
    assert "mkdir -p data artifacts quarantine models state raw" in guide
    assert "PUID=$(id -u)" in guide and "PGID=$(id -g)" in guide
    steps = guide.index("mkdir -p"), guide.rindex("docker compose up -d")
    assert steps[0] < steps[1]
    # Review is its own step: no command block applies the quarantine unreviewed.
    assert "apply --quarantine /quarantine --yes" not in guide
    assert guide.index("prep export-onnx") < guide.index("run --rm tools build")


@pytest.mark.parametrize("module", ["bot", "bot.health", "prep", "core"])
@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_load_nothing(module: str, flag: str) -> None:
    code = f"""
import runpy, sys
sys.argv = ["{module}", "{flag}"]
try:
    runpy.run_module("{module}", run_name="__main__")
except SystemExit as exit:
    assert exit.code in (0, None), exit.code
heavy = ("torch", "transformers", "sentence_transformers", "onnxruntime", "telegram", "cv2", "sklearn", "imagehash")
heavy = [m for m in heavy if m in sys.modules]
print("loaded:", heavy)
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("loaded: []"), result.stdout[-500:]


def test_ci_runs_the_test_command_on_every_push_and_pull_request_with_actions_pinned_by_sha() -> None:
    """Issue #35: the tests ran only when a version tag was pushed, on actions pinned by movable tags."""
    import yaml  # in the dev lock (through transformers and ray)

    workflows = {path.name: path.read_text() for path in (REPO / ".github" / "workflows").glob("*.yml")}
    tests = yaml.safe_load(workflows["tests.yml"])
    triggers = tests[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["push"]["branches"] == ["main"] and "pull_request" in triggers
    steps = tests["jobs"]["test"]["steps"]
    assert any(step.get("run") == "scripts/test.sh" for step in steps)
    assert any(step.get("with", {}).get("cache") == "pip" for step in steps)
    uses = [
        line.split("uses:")[1].split("#")[0].strip()
        for text in workflows.values()
        for line in text.splitlines()
        if "uses:" in line
    ]
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref) for ref in uses), uses
    assert "tags" in yaml.safe_load(workflows["images.yml"])[True]["push"]  # images still publish on tags only
