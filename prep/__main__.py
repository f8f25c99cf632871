"""`python -m prep ingest|clean|apply|build|eval|random-models`: the offline pipeline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.catalog import CatalogError
from core.cli import StageProgress, configure_logging, die, load_settings, run_cli
from core.encoders import ModelLoadError, load_image_encoder, load_text_encoder, model_id
from core.index import (
    ArtifactsError,
    BuildInProgressError,
    BuildReport,
    PhotoIndex,
    build_index,
    check_up_to_date,
    open_cache,
)
from core.ranking import DEFAULT_K, DEFAULT_SEARCH_DEPTH, DEFAULT_TEMPERATURE, RankingParams
from core.settings import Settings
from prep.checks import CHECKS, DEFAULT_CHECKS, REASONS


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

    clean = commands.add_parser("clean", help="find bad photos and copy them into a review quarantine")
    clean.add_argument("--data", type=Path, help="folder dataset (default: DATA_DIR)")
    clean.add_argument(
        "--quarantine", type=Path, default=Path("quarantine"), help="review folder (default: quarantine)"
    )
    clean.add_argument("--artifacts", type=Path, help="where the embedding cache lives (default: ARTIFACTS_DIR)")
    clean.add_argument("--checks", help=f"comma-separated, from: {', '.join(CHECKS)} (default: all but interior)")
    clean.add_argument("--json", action="store_true", help="print the summary as JSON")

    apply = commands.add_parser("apply", help="delete from the dataset the photos still in the quarantine")
    apply.add_argument("--data", type=Path, help="folder dataset (default: DATA_DIR)")
    apply.add_argument(
        "--quarantine", type=Path, default=Path("quarantine"), help="review folder (default: quarantine)"
    )
    apply.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    apply.add_argument("--json", action="store_true", help="print what was deleted as JSON (needs --yes)")

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

    onnx = commands.add_parser("export-onnx", help="export IMAGE_MODEL and TEXT_MODEL to ONNX for fast serving")
    onnx.add_argument("--out", type=Path, help="model folder (default: MODEL_DIR, or onnx/ beside ARTIFACTS_DIR)")
    onnx.add_argument("--int8", action="store_true", help="also write dynamically quantised int8 models")
    onnx.add_argument("--json", action="store_true", help="print the parity results as JSON")

    models = commands.add_parser("random-models", help="write random-weight models in the real on-disk layout")
    models.add_argument("out_dir", type=Path)
    models.add_argument("--size", choices=("tiny", "full"), default="tiny")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    settings = load_settings(all_cores=True)
    configure_logging(settings.log_level if settings.log_level != "INFO" else "WARNING")
    handler = {
        "ingest": _ingest,
        "build": _build,
        "clean": _clean,
        "apply": _apply,
        "eval": _eval,
        "export-onnx": _export_onnx,
        "random-models": _random_models,
    }[args.command]
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
    progress = StageProgress(enabled=not args.json)
    if not args.force:
        # Checked before any model is loaded: an unchanged dataset costs seconds, not a model load.
        try:
            report = check_up_to_date(
                data_dir,
                artifacts_dir,
                image_model=model_id(settings.image_model),
                text_model=model_id(settings.text_model),
                progress=progress,
            )
        except (CatalogError, BuildInProgressError) as exc:
            die(str(exc))
        if report is not None:
            progress.close()
            print(json.dumps(report.to_dict(), ensure_ascii=False) if args.json else build_summary(report))
            return 0
    try:
        encoder = load_image_encoder(settings)
    except ModelLoadError as exc:
        die(str(exc))
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


def _clean(args: argparse.Namespace, settings: Settings) -> int:
    from prep.clean import analyse, parse_checks
    from prep.quarantine import QuarantineError, check_location, write_quarantine

    data_dir = args.data or settings.data_dir
    if not (data_dir / "images").is_dir():
        die(f"no photos in {data_dir}/images: run `python -m prep ingest RAW_DIR` first or set DATA_DIR")
    try:
        checks = parse_checks(args.checks, DEFAULT_CHECKS)
        check_location(args.quarantine, data_dir)
    except (ValueError, QuarantineError) as exc:
        die(str(exc))

    def encoder():
        try:
            return load_image_encoder(settings)
        except ModelLoadError as exc:
            die(str(exc))

    progress = StageProgress(enabled=not args.json)
    with open_cache(args.artifacts or settings.artifacts_dir) as cache:
        try:
            result = analyse(data_dir, checks, encoder=encoder, cache=cache, progress=progress)
            write_quarantine(result, data_dir, args.quarantine)
        except QuarantineError as exc:
            die(str(exc))
        finally:
            progress.close()
    counts = result.counts()
    if args.json:
        print(
            json.dumps(
                {
                    "photos": result.photos,
                    "candidates": len(result.findings),
                    "by_reason": dict(counts),
                    "checks": list(checks),
                    "quarantine": str(args.quarantine),
                    "notes": result.notes,
                }
            )
        )
        return 0
    print(f"Checked {result.photos} photos with: {', '.join(checks)}")
    for note in result.notes:
        print(f"  note: {note}")
    width = max([len(r) for r in REASONS] + [6])
    print(f"  {'reason':<{width}}  candidates")
    for reason in REASONS:
        if reason in counts:
            print(f"  {reason:<{width}}  {counts[reason]:>10}")
    print(f"  {'total':<{width}}  {len(result.findings):>10}")
    print(
        f"Copied to {args.quarantine}/ — review {args.quarantine / 'index.html'}, delete the copies of photos to "
        f"keep, then run `python -m prep apply`. The dataset was not touched."
    )
    return 0


def _apply(args: argparse.Namespace, settings: Settings) -> int:
    from prep.quarantine import QuarantineError, apply_plan, plan_apply

    data_dir = args.data or settings.data_dir
    try:
        plan = plan_apply(data_dir, args.quarantine)
    except QuarantineError as exc:
        die(str(exc))
    if not args.json:
        for copy, why in plan.kept:
            print(f"  not deleting {copy}: {why}")
    if not plan.delete:
        if args.json:
            print(json.dumps({"deleted": [], "kept": [{"path": c, "why": w} for c, w in plan.kept]}))
        else:
            print("Nothing to delete: no photo in the quarantine matches the dataset.")
        return 0
    if not args.yes:
        if args.json or not sys.stdin.isatty():
            die("add --yes to delete without a prompt")
        for item in plan.delete:
            print(f"  {item.reason:<10} {item.path}")
        answer = input(f"Delete these {len(plan.delete)} photos from {data_dir}? [y/N] ")
        if answer.strip().lower() not in {"y", "yes"}:
            print("Nothing deleted.")
            return 1
    deleted = apply_plan(plan, data_dir)
    if args.json:
        print(
            json.dumps(
                {
                    "deleted": [{"path": d.path, "reason": d.reason} for d in deleted],
                    "kept": [{"path": c, "why": w} for c, w in plan.kept],
                },
                ensure_ascii=False,
            )
        )
    else:
        for item in deleted:
            print(f"deleted {item.path} ({item.reason})")
        print(
            f"Deleted {len(deleted)} photos (listed in {data_dir}/removed.csv, so ingest will not bring them back). "
            "Run `python -m prep build` to update the index."
        )
    return 0


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from prep.evaluate import evaluate

    try:
        index = PhotoIndex.load(args.artifacts or settings.artifacts_dir)
        text_encoder = None
        if not args.no_text:
            text_encoder = load_text_encoder(settings)
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


def _export_onnx(args: argparse.Namespace, settings: Settings) -> int:
    import warnings

    from prep.export_onnx import export

    out = args.out or settings.onnx_dir
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's tracer warnings are about code paths we do not use
            progress = StageProgress(enabled=not args.json)
            results = export(settings.image_model, settings.text_model, out, int8=args.int8, progress=progress)
    except Exception as exc:  # model loading, export and parity failures all end the same way
        die(f"export failed: {exc}")
    if args.json:
        print(
            json.dumps(
                {
                    "out": str(out),
                    "results": [
                        {
                            "tower": r.tower,
                            "precision": r.precision,
                            "min_cosine": r.min_cosine,
                            "required": r.required,
                            "written": r.passed,
                        }
                        for r in results
                    ],
                }
            )
        )
        return 0
    print(f"ONNX models written to {out}/")
    print(f"  {'model':<6} {'precision':<9} {'min cosine':>10} {'required':>8}")
    for r in results:
        verdict = "ok" if r.passed else "FAILED parity: not written"
        print(f"  {r.tower:<6} {r.precision:<9} {r.min_cosine:>10.5f} {r.required:>8}  {verdict}")
    print("With ENCODER_BACKEND=auto (the default) the bot and prep now use them; int8 is preferred when present.")
    return 0


def _random_models(args: argparse.Namespace, settings: Settings) -> int:
    from prep.random_models import build_clip, build_multilingual

    clip = build_clip(args.out_dir / "clip-ViT-B-32", args.size)
    text = build_multilingual(args.out_dir / "clip-ViT-B-32-multilingual-v1", args.size)
    print(f"random-weight models written: IMAGE_MODEL={clip} TEXT_MODEL={text}")
    return 0


if __name__ == "__main__":
    run_cli(main)
