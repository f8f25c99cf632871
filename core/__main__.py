"""`python -m core recognize IMAGE` and `python -m core search "TEXT"`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

from core.cli import configure_logging, die, emit, guarded, load_settings, package_version, run_cli
from core.imaging import ImageDecodeError, read_image_file
from core.ranking import Recognition
from core.service import Guide, PhotoHit
from core.settings import Settings


@dataclass(frozen=True)
class RecognizeReport:
    result: Recognition

    def to_dict(self) -> dict:
        return self.result.to_dict()

    def summary(self) -> str:
        result = self.result
        verdict = "recognised" if result.match else "not sure — no landmark matches closely"
        lines = [f"{verdict} (best similarity {result.best_similarity:.3f})", "", " #  score  landmark"]
        for rank, hit in enumerate(result.landmarks, 1):
            lines.append(f"{rank:>2}  {hit.score:5.3f}  {hit.landmark.name} ({hit.landmark.city}) [{hit.xid}]")
        lines += ["", " #  score  category"]
        for rank, category in enumerate(result.categories, 1):
            lines.append(f"{rank:>2}  {category.score:5.3f}  {category.category}")
        return "\n".join(lines)


@dataclass(frozen=True)
class SearchReport:
    hits: list[PhotoHit]
    cwd: Path

    def to_dict(self) -> dict:
        return {"photos": [hit.to_dict(relative_to=self.cwd) for hit in self.hits]}

    def summary(self) -> str:
        lines = [" #  score  landmark / photo"]
        for rank, hit in enumerate(self.hits, 1):
            lines.append(f"{rank:>2}  {hit.score:5.3f}  {hit.name} ({hit.city})")
            lines.append(f"           {hit.to_dict(relative_to=self.cwd)['path']}")
        return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Recognise landmarks, search photos.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
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


def _guide(args: argparse.Namespace, settings: Settings) -> Guide:
    overrides: dict = {"artifacts_dir": args.artifacts or settings.artifacts_dir}
    if args.data:
        overrides["data_dir"] = args.data
    return Guide.from_settings(replace(settings, **overrides))


def _recognize(args: argparse.Namespace, settings: Settings) -> RecognizeReport:
    image = read_image_file(args.image)  # before any model loads: a bad path costs nothing
    guide = _guide(args, settings)
    try:
        return RecognizeReport(guide.recognize(image))
    except ImageDecodeError as exc:
        die(f"{args.image}: {exc}")


def _search(args: argparse.Namespace, settings: Settings) -> SearchReport:
    if not args.text.strip():
        die("the search text is empty")
    return SearchReport(_guide(args, settings).search(args.text), Path.cwd())


COMMANDS = {"recognize": _recognize, "search": _search}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    configure_logging("WARNING")
    emit(guarded(lambda: COMMANDS[args.command](args, settings)), args.json)
    return 0


if __name__ == "__main__":
    run_cli(lambda: main())
