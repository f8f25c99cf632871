#!/usr/bin/env bash
# The one test command: sets up .venv (scripts/setup.sh), lints, runs the whole suite offline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
