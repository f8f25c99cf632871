#!/usr/bin/env bash
# Creates .venv in the repo root and installs the project into it (CPU-only torch first).
# Re-running is cheap: nothing is reinstalled unless pyproject.toml or this script changed.
# On your own machine, point TORCH_INDEX_URL at PyTorch's CPU wheel index (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
extras="${1:-}"
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.installed"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16) $TORCH_VERSION $extras"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    pip_args=(--quiet)
    .venv/bin/python -m pip install "${pip_args[@]}" --upgrade pip
    torch_args=()
    [ -n "${TORCH_INDEX_URL:-}" ] && torch_args=(--index-url "$TORCH_INDEX_URL")
    # torch first and pinned: otherwise sentence-transformers drags in a CUDA build.
    .venv/bin/python -m pip install "${pip_args[@]}" "${torch_args[@]}" "torch==$TORCH_VERSION"
    .venv/bin/python -m pip install "${pip_args[@]}" -e ".${extras:+[$extras]}" "torch==$TORCH_VERSION"
    echo "$want" > "$stamp"
fi
