#!/usr/bin/env bash
# Refresh the lock files requirements/{serve,prep,dev}.txt from pyproject.toml: every package pinned, with
# the hashes of all its files on PyPI (any platform: the images are built for amd64 and arm64) and a
# "# via" line saying why it is there. Needs PyPI; run it, then scripts/test.sh, then commit the three files.
#   scripts/lock.sh            keep current versions where the ranges allow (uv's default: prefer the lock)
#   scripts/lock.sh --upgrade  newest versions the ranges allow
# torch is pinned (TORCH_VERSION) but not written: setup.sh and the Dockerfile install its CPU build first,
# and what only its CUDA build needs (nvidia-*, cuda-*, triton) is left out with it.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
UV_VERSION="${UV_VERSION:-0.13.9}"
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet "uv==$UV_VERSION"
echo "torch==$TORCH_VERSION" > "$tools/constraints.txt"
cuda_only=()
for name in torch triton cuda-bindings cuda-pathfinder cuda-toolkit $(
    "$tools/venv/bin/uv" pip compile pyproject.toml --extra prep -c "$tools/constraints.txt" --quiet \
        --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header --no-annotate \
        | grep -oE '^nvidia-[a-z0-9-]+' || true); do
    cuda_only+=(--no-emit-package "$name")
done
compile() {  # output, extras...
    local out="$1"; shift
    "$tools/venv/bin/uv" pip compile pyproject.toml "$@" "${cuda_only[@]}" -c "$tools/constraints.txt" \
        --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
        --custom-compile-command "scripts/lock.sh" ${UPGRADE:+--upgrade} --quiet -o "$out"
    # The temporary constraints file is no reason worth recording; "# via -c" alone becomes "# via" nothing.
    python3 - "$out" <<'PY'
import re, sys
path = sys.argv[1]
text = re.sub(r"\n    #   -c \S+constraints\.txt", "", open(path).read())
text = re.sub(r"    # via -c \S+constraints\.txt\n", "    # via pyproject.toml (pinned with torch's CPU build)\n", text)
text = re.sub(r"    # via\n(?!    #   )", "    # via pyproject.toml\n", text)
open(path, "w").write(text)
PY
}
[ "${1:-}" = "--upgrade" ] && UPGRADE=1
compile requirements/dev.txt --extra prep --extra dev --extra scale
# The smaller sets take the dev set's versions, so the three installs agree.
sed -E '/^ *(--hash|#)/d; s/ \\$//' requirements/dev.txt | grep -E '^[A-Za-z0-9]' > "$tools/dev-pins.txt"
cat "$tools/dev-pins.txt" >> "$tools/constraints.txt"
compile requirements/prep.txt --extra prep
compile requirements/serve.txt
echo "requirements/{serve,prep,dev}.txt written; now run scripts/test.sh"
