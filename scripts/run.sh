#!/usr/bin/env bash
# The one command to run the bot: installs what is missing into .venv, then starts it.
# The bot itself checks the settings (a missing token is one clear line), builds the index
# from DATA_DIR if there is none yet, loads the models and starts polling.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m bot "$@"
