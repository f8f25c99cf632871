#!/usr/bin/env bash
# Creates a virtual environment and installs the project into it from the lock files (pinned, with hashes;
# scripts/lock.sh refreshes them from pyproject.toml).
#   scripts/setup.sh          .venv       serving + prep (what scripts/run.sh needs)
#   scripts/setup.sh dev      .venv       + tests and linters (what scripts/test.sh needs)
#   scripts/setup.sh serve    .venv-serve the serving install only: bot + core on ONNX Runtime, no torch
# torch is always the CPU build: a local wheel when pip finds one without the network, else PyTorch's
# CPU index (TORCH_INDEX_URL), never the multi-GB CUDA build an unpinned `torch` resolves to.
# Re-running is cheap: nothing is reinstalled unless pyproject.toml, this script or a lock file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-prep}"
case "$profile" in
    serve) venv=.venv-serve lock=requirements/serve.txt target=. ;;
    prep) venv=.venv lock=requirements/prep.txt target=".[prep]" ;;
    dev) venv=.venv lock=requirements/dev.txt target=".[prep,dev,scale]" ;;
    *) echo "usage: scripts/setup.sh [serve|prep|dev]" >&2; exit 2 ;;
esac
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
stamp="$venv/.installed"
want="$(cat pyproject.toml scripts/setup.sh requirements/*.txt | sha256sum | cut -c1-16) $profile"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    pip=("$venv/bin/python" -m pip install --quiet)
    "${pip[@]}" --upgrade pip
    if [ "$profile" != serve ]; then
        # torch first and pinned: otherwise sentence-transformers drags in a CUDA build. Without its
        # dependencies (they are in the lock file): a local wheel then installs with no network at all.
        "${pip[@]}" --no-deps --no-index "torch==$TORCH_VERSION" 2>/dev/null \
            || "${pip[@]}" --no-deps --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION"
    fi
    "${pip[@]}" --require-hashes -r "$lock"
    "${pip[@]}" --no-deps -e "$target"
    "$venv/bin/python" -m pip check >/dev/null
    echo "$want" > "$stamp"
fi
# The guide's default voice (a Debian package, run as a separate program): installed where missing. Not
# fatal: without it (no apt, no sudo) the bot runs and 🔊 says the voice is unavailable; the tests need it.
scripts/espeak.sh --version >/dev/null \
    || echo "warning: espeak-ng is not installed (apt-get install espeak-ng): the bot will not speak" >&2
