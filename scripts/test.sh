#!/usr/bin/env bash
# The one test command: sets up .venv (tests, linters) and .venv-serve (the torch-free serving install
# the tests run the bot in), lints (ruff, hadolint), runs the whole suite offline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
scripts/setup.sh serve
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check .
.venv/bin/hadolint Dockerfile
.venv/bin/python -m pytest "$@"
