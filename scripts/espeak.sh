#!/usr/bin/env bash
# espeak-ng, the guide's default voice (all seven languages, no download): the one on the PATH, else
# Debian's, installed on first use like Chromium for the browser tests (with sudo when not root).
# Called by scripts/setup.sh; the Docker image installs it in its serve stage. Arguments go to espeak-ng.
set -euo pipefail
if ! command -v espeak-ng >/dev/null; then
    echo "installing espeak-ng (Debian) for the spoken guide…" >&2
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    ($sudo apt-get install -y -qq espeak-ng >/dev/null 2>&1) \
        || ($sudo apt-get update -qq && $sudo apt-get install -y -qq espeak-ng >/dev/null)
fi
exec espeak-ng "$@"
