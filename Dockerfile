# Landmark guide bot for a small CPU-only VPS.
#   docker compose build && docker compose up -d        (see "Deploy on a VPS" in the README)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TOKENIZERS_PARALLELISM=false \
    HF_HOME=/models/hf \
    DATA_DIR=/data \
    ARTIFACTS_DIR=/artifacts \
    MODEL_DIR=/models/onnx \
    HEALTH_FILE=/tmp/landmark-guide.alive

WORKDIR /app

# CPU-only torch first, from PyTorch's CPU wheel index: the unpinned torch that sentence-transformers
# asks for would otherwise pull a multi-GB CUDA build. Keep the version in step with scripts/setup.sh.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY core ./core
COPY prep ./prep
COPY bot ./bot
RUN pip install . "torch==2.13.0"

RUN useradd --create-home --uid 10001 guide \
    && mkdir -p /data /artifacts /models /quarantine \
    && chown -R guide /data /artifacts /models /quarantine
USER guide

# Models are downloaded once into /models (a volume), so restarts and rebuilds of the image reuse them.
VOLUME ["/models", "/artifacts"]

# First start downloads the models and builds the index if there is none: allow for it.
HEALTHCHECK --interval=60s --timeout=10s --start-period=30m --retries=3 CMD ["python", "-m", "bot.health"]

CMD ["python", "-m", "bot"]
