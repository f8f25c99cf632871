"""Precision and recall of every cleaning check on the labelled evaluation set of the tests.

    .venv/bin/python -m benchmarks.cleaning_quality [--model DIR]

Without --model it builds the tiny random-weight CLIP the tests use (outliers then measure that
model, not the real one); with --model it uses a real `clip-ViT-B-32` folder.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="IMAGE_MODEL folder or name (default: a tiny random-weight CLIP)")
    args = parser.parse_args()

    from core.artifacts import open_cache
    from core.cli import configure_logging
    from core.encoders.torch_runtime import SentenceTransformerImageEncoder
    from prep.checks import DEFAULT_CHECKS
    from prep.clean import analyse
    from prep.random_models import build_clip
    from tests.helpers.cleaning_set import format_table, precision_recall, write_quality_dataset

    configure_logging("WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = args.model or str(build_clip(root / "clip-ViT-B-32"))
        encoder = SentenceTransformerImageEncoder(model)
        labels = write_quality_dataset(root / "data")
        with open_cache(root / "artifacts") as cache:
            result = analyse(root / "data", DEFAULT_CHECKS, encoder=lambda: encoder, cache=cache)
        print(f"{len(labels)} labelled photos; model for outliers: {model}")
        print(format_table(precision_recall(labels, result.all_findings)))


if __name__ == "__main__":
    main()
