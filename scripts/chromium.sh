#!/usr/bin/env bash
# Debian's headless-capable Chromium for the tests that use a page as people do (the review page);
# installed on first use, like qemu-user for the AVX2 test. Arguments go to chromium.
set -euo pipefail
if ! command -v chromium >/dev/null; then
    echo "installing chromium (Debian) for the browser tests…" >&2
    (apt-get install -y -qq chromium >/dev/null 2>&1) || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
fi
exec chromium "$@"
