#!/usr/bin/env bash
# A headless-capable Chromium for the tests that use a page as people do (the review page): the one on
# the PATH (Debian's chromium, or Chrome as CI runners have it), else Debian's, installed on first use
# like qemu-user for the AVX2 test (with sudo when not root). Arguments go to the browser.
set -euo pipefail
for name in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$name" >/dev/null; then exec "$name" "$@"; fi
done
echo "installing chromium (Debian) for the browser tests…" >&2
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
($sudo apt-get install -y -qq chromium >/dev/null 2>&1) || ($sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null)
exec chromium "$@"
