"""`python -m prep ingest|harvest|enrich|clean|review|apply|build|eval|export-onnx|contributions|stats|random-models`.

A parser and a table of commands; what each command does is in `prep/commands.py`, and every
command's report is printed here, once (`--json` or the human summary).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core import CODES, DEFAULT_K, DEFAULT_TEMPERATURE, Settings
from core.cli import Report, configure_logging, emit, guarded, load_settings, package_version, run_cli
from core.encoders import DEVICES
from prep import commands

QUARANTINE = Path("quarantine")


@dataclass(frozen=True)
class Command:
    help: str
    run: Callable[[argparse.Namespace, Settings], Report]
    arguments: Callable[[argparse.ArgumentParser], None]
    json: bool = True  # takes --json


def _ingest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("raw_dir", type=Path, help="folder with the published CSV files")
    p.add_argument("--data", type=Path, help="folder dataset to write (default: DATA_DIR or ./data)")


def _enrich_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, help="folder dataset (default: DATA_DIR)")
    p.add_argument(
        "--langs",
        default=",".join(CODES),
        help=f"languages to fill, from the registry (default: all: {','.join(CODES)})",
    )


def _harvest_args(p: argparse.ArgumentParser) -> None:
    from prep.harvest import DEFAULT_PER_LANDMARK

    p.add_argument("--around", metavar="LAT,LON", help="centre of the area (with --radius-km)")
    p.add_argument("--radius-km", type=float, metavar="R", help="radius of the area around --around, in km")
    p.add_argument("--bbox", metavar="S,W,N,E", help="the area as a box: south, west, north, east in degrees")
    p.add_argument("--city", required=True, help="the city's name as cards show it (e.g. Казань)")
    p.add_argument("--city-code", help="its folder under images/ (default: the name transliterated, e.g. Kazan)")
    p.add_argument("--data", type=Path, help="folder dataset to add to (default: DATA_DIR)")
    p.add_argument(
        "--per-landmark",
        type=int,
        default=DEFAULT_PER_LANDMARK,
        metavar="N",
        help=f"photos per landmark at most (default {DEFAULT_PER_LANDMARK})",
    )
    p.add_argument(
        "--classes",
        type=Path,
        action="append",
        metavar="FILE.csv",
        help="more Wikidata classes (qid,label,kinds; empty kinds: not a sight) on top of prep/harvest_classes.csv",
    )


def _build_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, help="folder dataset (default: DATA_DIR)")
    p.add_argument("--artifacts", type=Path, help="where the index goes (default: ARTIFACTS_DIR)")
    p.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    p.add_argument(
        "--index",
        choices=("auto", "flat", "ivf"),
        default="auto",
        help="exact flat search, or IVF with product quantisation and exact re-ranking for millions of photos "
        "(default auto: flat up to 100,000 photos)",
    )
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="embed the missing photos here (default) or with Ray Data (the [scale] extra) into the same cache",
    )
    p.add_argument("--address", help="with --engine ray: a Ray cluster to join (ray://host:10001 or auto)")
    _device_arg(p)


def _device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where photos are embedded: a CUDA GPU when torch sees one (auto, the default), the CPU, or cuda "
        "(fails when there is none); on a GPU the torch runtime runs in fp16 with its own cache key",
    )


def _clean_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, help="folder dataset (default: DATA_DIR)")
    p.add_argument("--quarantine", type=Path, default=QUARANTINE, help="review folder (default: quarantine)")
    p.add_argument("--artifacts", type=Path, help="where the embedding cache lives (default: ARTIFACTS_DIR)")
    _device_arg(p)
    from prep.checks import CHECKS, REGISTRY

    opt_in = ", ".join(check.name for check in REGISTRY if check.opt_in)
    p.add_argument("--checks", help=f"comma-separated, from: {', '.join(CHECKS)} (default: all but {opt_in})")


def _review_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, help="folder dataset (default: DATA_DIR)")
    p.add_argument("--quarantine", type=Path, default=QUARANTINE, help="review folder (default: quarantine)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; in a container 0.0.0.0, with the port "
        "published on the host's 127.0.0.1 as docker-compose.yml does)",
    )


def _apply_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, help="folder dataset (default: DATA_DIR)")
    p.add_argument("--quarantine", type=Path, default=QUARANTINE, help="review folder (default: quarantine)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--artifacts", type=Path, help="index folder (default: ARTIFACTS_DIR)")
    p.add_argument("--k", type=int, default=DEFAULT_K, help=f"neighbours that vote (default {DEFAULT_K})")
    p.add_argument(
        "--temperature",
        type=float,
        default=DEFAULT_TEMPERATURE,
        help=f"vote temperature (default {DEFAULT_TEMPERATURE})",
    )
    p.add_argument(
        "--threshold",
        type=float,
        help="similarity a match needs, instead of the index's calibration (default: MATCH_THRESHOLD if set)",
    )
    p.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="draw the reliability diagram and the precision-coverage curve (needs matplotlib: the prep extra)",
    )
    p.add_argument("--no-text", action="store_true", help="skip the text → photo part (no text model)")
    p.add_argument(
        "--geo-noise",
        type=float,
        metavar="METERS",
        help="also evaluate with a simulated location within METERS of each photo's landmark, with and without "
        "the location prior",
    )
    p.add_argument(
        "--query-expansion",
        action="store_true",
        help="also measure top-1 with alpha query expansion (each query plus its nearest photos, searched again), "
        "for CLIP and fused: answers do not use it, this says whether they should",
    )


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="model folder (default: MODEL_DIR, or onnx/ beside ARTIFACTS_DIR)")
    p.add_argument("--int8", action="store_true", help="also write dynamically quantised int8 models")


def _contributions_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "approve", "reject"))
    p.add_argument("id", nargs="?", help="the contribution (from `list`)")
    p.add_argument("--xid", help="with approve: file it under this landmark instead of the user's label")


def _no_args(p: argparse.ArgumentParser) -> None:
    return None


def _random_models_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("out_dir", type=Path)
    p.add_argument("--size", choices=("tiny", "full"), default="tiny")


COMMANDS: dict[str, Command] = {
    "ingest": Command(
        "published {CITY}_places.csv + {CITY}_images.csv → folder dataset", commands.ingest, _ingest_args
    ),
    "enrich": Command(
        "names, descriptions and Wikipedia links per language (Wikidata, Wikipedia), once",
        commands.enrich,
        _enrich_args,
    ),
    "harvest": Command(
        "a city's sights and their freely licensed photos from Wikidata and Wikimedia Commons, credited",
        commands.harvest,
        _harvest_args,
    ),
    "clean": Command("find bad photos and copy them into a review quarantine", commands.clean, _clean_args),
    "review": Command(
        "serve the review page (127.0.0.1, a random token) to keep or remove candidates in the browser",
        commands.review,
        _review_args,
    ),
    "apply": Command("delete from the dataset the photos still in the quarantine", commands.apply, _apply_args),
    "build": Command("embed the folder dataset and (re)build the index", commands.build, _build_args),
    "eval": Command("leave-one-out accuracy of recognition and text search", commands.evaluate, _eval_args),
    "export-onnx": Command(
        "export IMAGE_MODEL and TEXT_MODEL to ONNX for fast serving", commands.export_onnx, _export_args
    ),
    "contributions": Command(
        "tourists' photos with their labels: list, approve into the dataset (after the clean checks), reject",
        commands.contributions,
        _contributions_args,
    ),
    "stats": Command("real-world accuracy from tourists' ✓/✗ feedback, per day and in total", commands.stats, _no_args),
    "random-models": Command(
        "write random-weight models in the real on-disk layout", commands.random_models, _random_models_args
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m prep", description="Offline dataset pipeline.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        command.arguments(sub)
        if command.json:
            sub.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    configure_logging(settings.log_level if settings.log_level != "INFO" else "WARNING")
    report = guarded(lambda: COMMANDS[args.command].run(args, settings))
    emit(report, getattr(args, "json", False))
    return getattr(report, "exit_code", 0)


if __name__ == "__main__":
    run_cli(lambda: main())
