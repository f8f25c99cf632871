# syntax=docker/dockerfile:1.7
# Two images from one file (docs/deployment.md); CI publishes both for amd64 and arm64 on a tag:
#   serve (default)  the bot on ONNX Runtime, no torch: docker compose up -d; also the prep steps that
#                    need no torch (ingest, enrich, build, review, apply, contributions, stats):
#                    docker compose run --rm tools <command>
#   prep             + CPU-only torch, OpenCV, scikit-learn: export-onnx and clean:
#                    docker compose run --rm prep <command>
# Dependencies come from the pinned lock files and are installed before the code is copied, so a code
# change rebuilds only the last layers. Containers run as the host user (PUID/PGID in compose).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/models/hf \
    DATA_DIR=/data \
    ARTIFACTS_DIR=/artifacts \
    MODEL_DIR=/models/onnx \
    HEALTH_FILE=/tmp/landmark-guide.alive \
    CONTRIB_DIR=/state/contributions \
    BOT_STATE_FILE=/state/bot_state.json
WORKDIR /app
COPY requirements/serve.txt requirements/
# hadolint ignore=DL3042
RUN --mount=type=cache,target=/root/.cache/pip pip install --require-hashes -r requirements/serve.txt

FROM base AS prep
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY requirements/prep.txt requirements/
# torch first, from PyTorch's CPU index: the default build of torch on Linux is a multi-GB CUDA one.
# hadolint ignore=DL3042
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0 \
    && pip install --require-hashes -r requirements/prep.txt
COPY pyproject.toml README.md LICENSE ./
COPY core ./core
COPY bot ./bot
COPY prep ./prep
RUN pip install --no-cache-dir --no-deps . && mkdir -p /data /artifacts /models /quarantine /state
USER 10001:10001
ENTRYPOINT ["python", "-m", "prep"]
CMD ["--help"]

FROM base AS serve
# espeak-ng: the guide's default voice, all seven languages, no download (~16 MB with its libraries). It
# runs as a separate program (core/speech.py). Not pinned: Debian's bookworm security updates replace it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md LICENSE ./
COPY core ./core
COPY bot ./bot
COPY prep ./prep
RUN pip install --no-cache-dir --no-deps . && mkdir -p /data /artifacts /models /quarantine /state
# Overridden by compose with the host user's ids, so bind mounts stay writable both ways.
USER 10001:10001
# Cheap on purpose: reads one file's age (no PTB, no models). It marks the container unhealthy when the
# bot's event loop stops; Docker does not restart unhealthy containers by itself (see the README).
HEALTHCHECK --interval=60s --timeout=10s --start-period=10m --retries=3 CMD ["python", "-m", "bot.health"]
CMD ["python", "-m", "bot"]
