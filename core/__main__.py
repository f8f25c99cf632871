"""`python -m core recognize IMAGE` and `python -m core search "TEXT"`."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from core.catalog import CatalogError
from core.cli import configure_logging, die, load_settings, run_cli
from core.encoders import ModelLoadError
from core.imaging import ImageDecodeError
from core.index import ArtifactsError
from core.ranking import Recognition
from core.service import EmptyQueryError, Guide, PhotoHit


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Recognise landmarks, search photos.")
    commands = parser.add_subparsers(dest="command", required=True)
    recognize = commands.add_parser("recognize", help="top-5 landmarks and categories for a photo")
    recognize.add_argument("image", type=Path)
    search = commands.add_parser("search", help="top-5 photos for a text query (Russian or English)")
    search.add_argument("text")
    for command in (recognize, search):
        command.add_argument("--artifacts", type=Path, help="index folder (default: ARTIFACTS_DIR)")
        command.add_argument("--data", type=Path, help="dataset folder, if moved since the build")
        command.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    settings = load_settings(all_cores=True)
    configure_logging("WARNING")
    if args.command == "recognize":
        try:
            image = args.image.read_bytes()
        except OSError as exc:
            die(f"cannot read {args.image}: {exc.strerror or exc}")
    elif not args.text.strip():
        die("the search text is empty")
    overrides = {"artifacts_dir": args.artifacts or settings.artifacts_dir}
    if args.data:
        overrides["data_dir"] = args.data
    try:
        guide = Guide.from_settings(replace(settings, **overrides))
        if args.command == "recognize":
            result = guide.recognize(image)
            print(json.dumps(result.to_dict(), ensure_ascii=False) if args.json else recognition_table(result))
        else:
            hits = guide.search(args.text)
            cwd = Path.cwd()
            payload = {"photos": [hit.to_dict(relative_to=cwd) for hit in hits]}
            print(json.dumps(payload, ensure_ascii=False) if args.json else search_table(hits, cwd))
    except ImageDecodeError as exc:
        die(f"{args.image}: {exc}")
    except (ArtifactsError, ModelLoadError, CatalogError, EmptyQueryError) as exc:
        die(str(exc))
    return 0


def recognition_table(result: Recognition) -> str:
    verdict = "recognised" if result.match else "not sure — no landmark matches closely"
    lines = [f"{verdict} (best similarity {result.best_similarity:.3f})", "", " #  score  landmark"]
    for rank, hit in enumerate(result.landmarks, 1):
        lines.append(f"{rank:>2}  {hit.score:5.3f}  {hit.landmark.name} ({hit.landmark.city}) [{hit.xid}]")
    lines += ["", " #  score  category"]
    for rank, category in enumerate(result.categories, 1):
        lines.append(f"{rank:>2}  {category.score:5.3f}  {category.category}")
    return "\n".join(lines)


def search_table(hits: list[PhotoHit], cwd: Path) -> str:
    lines = [" #  score  landmark / photo"]
    for rank, hit in enumerate(hits, 1):
        lines.append(f"{rank:>2}  {hit.score:5.3f}  {hit.name} ({hit.city})")
        lines.append(f"           {hit.to_dict(relative_to=cwd)['path']}")
    return "\n".join(lines)


if __name__ == "__main__":
    run_cli(main)
