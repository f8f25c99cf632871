"""`python -m prep ingest|build|eval|random-models`: the offline pipeline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.catalog import CatalogError
from core.cli import StageProgress, configure_logging, die, load_settings, run_cli
from core.encoders import ModelLoadError, load_image_encoder, load_text_encoder, model_id
from core.index import ArtifactsError, BuildInProgressError, BuildReport, PhotoIndex, build_index
from core.ranking import DEFAULT_K, DEFAULT_SEARCH_DEPTH, DEFAULT_TEMPERATURE, RankingParams
from core.settings import Settings


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m prep", description="Offline dataset pipeline.")
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser("ingest", help="published {CITY}_places.csv + {CITY}_images.csv → folder dataset")
    ingest.add_argument("raw_dir", type=Path, help="folder with the published CSV files")
    ingest.add_argument("--data", type=Path, help="folder dataset to write (default: DATA_DIR or ./data)")
    ingest.add_argument("--json", action="store_true", help="print the summary as JSON")

    build = commands.add_parser("build", help="embed the folder dataset and (re)build the index")
    build.add_argument("--data", type=Path, help="folder dataset (default: DATA_DIR)")
    build.add_argument("--artifacts", type=Path, help="where the index goes (default: ARTIFACTS_DIR)")
    build.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    build.add_argument("--json", action="store_true", help="print the summary as JSON")

    evaluation = commands.add_parser("eval", help="leave-one-out accuracy of recognition and text search")
    evaluation.add_argument("--artifacts", type=Path, help="index folder (default: ARTIFACTS_DIR)")
    evaluation.add_argument("--k", type=int, default=DEFAULT_K, help=f"neighbours that vote (default {DEFAULT_K})")
    evaluation.add_argument(
        "--temperature",
        type=float,
        default=DEFAULT_TEMPERATURE,
        help=f"vote temperature (default {DEFAULT_TEMPERATURE})",
    )
    evaluation.add_argument("--threshold", type=float, help="match threshold (default: MATCH_THRESHOLD)")
    evaluation.add_argument("--no-text", action="store_true", help="skip the text → photo part (no text model)")
    evaluation.add_argument("--json", action="store_true", help="print the figures as JSON")

    models = commands.add_parser("random-models", help="write random-weight models in the real on-disk layout")
    models.add_argument("out_dir", type=Path)
    models.add_argument("--size", choices=("tiny", "full"), default="tiny")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    settings = load_settings()
    configure_logging(settings.log_level if settings.log_level != "INFO" else "WARNING")
    handler = {"ingest": _ingest, "build": _build, "eval": _eval, "random-models": _random_models}[args.command]
    return handler(args, settings)


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from prep.ingest import IngestError, ingest

    if not args.raw_dir.is_dir():
        die(f"{args.raw_dir} is not a folder")
    try:
        report = ingest(args.raw_dir, args.data or settings.data_dir, show_progress=not args.json)
    except IngestError as exc:
        die(str(exc))
    print(json.dumps(report.to_dict(), ensure_ascii=False) if args.json else report.summary())
    return 0


def build_summary(report: BuildReport) -> str:
    if report.up_to_date:
        return (
            f"Index is up to date: {report.photos} photos of {report.landmarks} landmarks "
            f"(checked in {report.seconds:.1f} s)"
        )
    lines = [
        f"Indexed {report.photos} photos of {report.landmarks} landmarks in {report.seconds:.1f} s: "
        f"{report.embedded} embedded, {report.from_cache} from cache, {len(report.skipped)} skipped",
        f"→ {report.location}",
    ]
    lines += [f"  skipped {path}: {reason}" for path, reason in report.skipped[:10]]
    if len(report.skipped) > 10:
        lines.append(f"  … and {len(report.skipped) - 10} more")
    return "\n".join(lines)


def _build(args: argparse.Namespace, settings: Settings) -> int:
    data_dir = args.data or settings.data_dir
    artifacts_dir = args.artifacts or settings.artifacts_dir
    if not data_dir.is_dir():
        die(f"no dataset at {data_dir}/: run `python -m prep ingest RAW_DIR` first or set DATA_DIR")
    try:
        encoder = load_image_encoder(settings.image_model)
    except ModelLoadError as exc:
        die(str(exc))
    progress = StageProgress(enabled=not args.json)
    try:
        report = build_index(
            data_dir,
            artifacts_dir,
            encoder,
            text_model=model_id(settings.text_model),
            progress=progress,
            force=args.force,
        )
    except (CatalogError, BuildInProgressError) as exc:
        die(str(exc))
    finally:
        progress.close()
    print(json.dumps(report.to_dict(), ensure_ascii=False) if args.json else build_summary(report))
    return 0


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from prep.evaluate import evaluate

    try:
        index = PhotoIndex.load(args.artifacts or settings.artifacts_dir)
        text_encoder = None
        if not args.no_text:
            text_encoder = load_text_encoder(settings.text_model)
            index.check_models(index.manifest.image_model, text_encoder.model_name, text_encoder.dim)
        params = RankingParams(
            k=args.k,
            temperature=args.temperature,
            search_depth=max(args.k, DEFAULT_SEARCH_DEPTH),
            match_threshold=settings.match_threshold if args.threshold is None else args.threshold,
        )
        result = evaluate(index, params, text_encoder, show_progress=not args.json)
    except (ArtifactsError, ModelLoadError, ValueError) as exc:
        die(str(exc))
    print(json.dumps(result.to_dict()) if args.json else result.table())
    return 0


def _random_models(args: argparse.Namespace, settings: Settings) -> int:
    from prep.random_models import build_clip, build_multilingual

    clip = build_clip(args.out_dir / "clip-ViT-B-32", args.size)
    text = build_multilingual(args.out_dir / "clip-ViT-B-32-multilingual-v1", args.size)
    print(f"random-weight models written: IMAGE_MODEL={clip} TEXT_MODEL={text}")
    return 0


if __name__ == "__main__":
    run_cli(main)
