"""`python -m core recognize IMAGE... [--near LAT,LON]`, `search "TEXT"` and `nearby LAT LON`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from core.cli import Report, configure_logging, die, emit, guarded, load_settings, package_version, run_cli
from core.geo import GeoPoint, Nearby
from core.imaging import ImageDecodeError, read_image_file
from core.index import PhotoIndex
from core.ranking import PhotoLocation, Recognition
from core.service import NEARBY_LIMIT, Guide, PhotoHit
from core.settings import Settings


@dataclass(frozen=True)
class RecognizeReport:
    """One photo's answer, or why it has none (a photo that cannot be read or decoded)."""

    image: Path
    result: Recognition | None
    error: str = ""
    # What a match had to reach: ("precision", MATCH_PRECISION) when calibrated, else ("similarity", MATCH_THRESHOLD).
    asked: tuple[str, float] | None = None

    def to_dict(self) -> dict:
        return self.result.to_dict() if self.result is not None else {"error": self.error}

    def summary(self) -> str:
        result = self.result
        if result is None:
            return f"{self.image}: {self.error}"
        lines = [self._verdict(result)]
        if result.location is not None:
            where = f"{result.location.lat:.5f},{result.location.lon:.5f} ({result.location.source})"
            effect = "re-weighted by distance" if result.prior_applied else "no landmark near it: not used"
            lines.append(f"location {where}: {effect}")
        lines += ["", " #  score  landmark"]
        for rank, hit in enumerate(result.landmarks, 1):
            away = f", {_distance(hit.distance_m)}" if hit.distance_m is not None else ""
            lines.append(f"{rank:>2}  {hit.score:5.3f}  {hit.landmark.name} ({hit.landmark.city}{away}) [{hit.xid}]")
        lines += ["", " #  score  category"]
        for rank, category in enumerate(result.categories, 1):
            lines.append(f"{rank:>2}  {category.score:5.3f}  {category.category}")
        return "\n".join(lines)

    def _verdict(self, result: Recognition) -> str:
        """ "recognised (…)", or "not sure" with why: the figure the rule looked at, below what was asked."""
        sure = f"{100 * result.confidence:.0f} % likely right" if result.confidence is not None else ""
        similarity = f"best similarity {result.best_similarity:.3f}"
        if result.match:
            return f"recognised ({similarity}{', ' + sure if sure else ''})"
        if not result.landmarks:
            return "not sure: no landmark in the index resembles it"
        kind, value = self.asked or ("", 0.0)
        if kind == "precision" and sure:
            return f"not sure: {sure}, below the {100 * value:.0f} % asked (MATCH_PRECISION)"
        if kind == "similarity":
            return f"not sure: {similarity}, below the {value:.2f} asked (MATCH_THRESHOLD)"
        return f"not sure ({similarity}{', ' + sure if sure else ''})"


@dataclass(frozen=True)
class NearbyReport:
    places: list[Nearby]

    def to_dict(self) -> dict:
        return {
            "landmarks": [
                {
                    "xid": n.landmark.xid,
                    "name": n.landmark.name,
                    "city": n.landmark.city,
                    "lat": n.landmark.lat,
                    "lon": n.landmark.lon,
                    "distance_m": round(n.distance_m),
                }
                for n in self.places
            ]
        }

    def summary(self) -> str:
        if not self.places:
            return "no landmark with coordinates in the index"
        lines = [" #  distance  direction  landmark"]
        for rank, n in enumerate(self.places, 1):
            lines.append(
                f"{rank:>2}  {_distance(n.distance_m):>8}  {n.direction:<9}  {n.landmark.name} ({n.landmark.city})"
            )
        return "\n".join(lines)


def _distance(metres: float) -> str:
    return f"{metres:.0f} m" if metres < 1000 else f"{metres / 1000:.1f} km"


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
    recognize = commands.add_parser(
        "recognize", help="top-5 landmarks and categories for each photo (several: one model load)"
    )
    recognize.add_argument("images", type=Path, nargs="+", metavar="IMAGE")
    recognize.add_argument(
        "--near", metavar="LAT,LON", help="where the photo was taken (EXIF GPS in the file is read otherwise)"
    )
    search = commands.add_parser("search", help="top-5 photos for a text query (Russian or English)")
    search.add_argument("text")
    nearby = commands.add_parser("nearby", help="the landmarks nearest to a point (no model is loaded)")
    nearby.add_argument("lat", help="latitude, degrees (-90..90)")
    nearby.add_argument("lon", help="longitude, degrees (-180..180)")
    nearby.add_argument("--limit", type=int, default=NEARBY_LIMIT, help=f"how many (default {NEARBY_LIMIT})")
    for command in (recognize, search, nearby):
        command.add_argument("--artifacts", type=Path, help="index folder (default: ARTIFACTS_DIR)")
        command.add_argument("--data", type=Path, help="dataset folder, if moved since the build")
        command.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _guide(args: argparse.Namespace, settings: Settings) -> Guide:
    overrides: dict = {"artifacts_dir": args.artifacts or settings.artifacts_dir}
    if args.data:
        overrides["data_dir"] = args.data
    return Guide.from_settings(replace(settings, **overrides))


@dataclass(frozen=True)
class RecognizeBatchReport:
    """Several photos in one run (one model load): one JSON object per photo and line, with its path."""

    reports: tuple[RecognizeReport, ...]

    @property
    def failed(self) -> bool:
        return any(report.result is None for report in self.reports)

    def to_dict(self) -> dict:
        return {"photos": [{"image": str(r.image)} | r.to_dict() for r in self.reports]}

    def json_lines(self) -> list[dict]:
        return [{"image": str(r.image)} | r.to_dict() for r in self.reports]

    def summary(self) -> str:
        return "\n\n".join(f"== {r.image}\n{r.summary()}" if r.result else r.summary() for r in self.reports)


def _recognize(args: argparse.Namespace, settings: Settings) -> Report:
    near = None
    if args.near is not None:  # checked before any model loads, like the files
        point = GeoPoint.parse_pair(args.near)
        near = PhotoLocation(point.lat, point.lon, "argument")
    if len(args.images) == 1:  # one photo: exactly today's answer, and a bad file is one line and exit 2
        image = read_image_file(args.images[0])
        try:
            one = _guide(args, settings)
            return RecognizeReport(args.images[0], one.recognize(image, near, exif=near is None), asked=_asked(one))
        except ImageDecodeError as exc:
            die(f"{args.images[0]}: {exc}")
    readable: dict[Path, bytes | str] = {}
    for path in args.images:
        try:
            readable[path] = read_image_file(path)
        except ImageDecodeError as exc:
            readable[path] = str(exc)
    guide = _guide(args, settings) if any(isinstance(v, bytes) for v in readable.values()) else None
    reports = []
    for path, data in readable.items():
        if isinstance(data, str) or guide is None:
            reports.append(RecognizeReport(path, None, str(data)))
            continue
        try:
            result = guide.recognize(data, near=near, exif=near is None)
            reports.append(RecognizeReport(path, result, asked=_asked(guide)))
        except ImageDecodeError as exc:
            reports.append(RecognizeReport(path, None, str(exc)))
    return RecognizeBatchReport(tuple(reports))


def _asked(guide: Guide) -> tuple[str, float]:
    """The rule the guide's answers are matched by (core.service.Guide.recognize_vector)."""
    precision = guide.params.match_precision
    if guide.index.calibration is not None and precision is not None:
        return "precision", precision
    return "similarity", guide.params.match_threshold


def _search(args: argparse.Namespace, settings: Settings) -> SearchReport:
    if not args.text.strip():
        die("the search text is empty")
    return SearchReport(_guide(args, settings).search(args.text), Path.cwd())


def _nearby(args: argparse.Namespace, settings: Settings) -> NearbyReport:
    point = GeoPoint.parse(args.lat, args.lon)
    if args.limit < 1:
        die("--limit must be at least 1")
    index = PhotoIndex.load(args.artifacts or settings.artifacts_dir)
    return NearbyReport(index.locator.nearest(point, args.limit))


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], Report]] = {
    "recognize": _recognize,
    "search": _search,
    "nearby": _nearby,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    configure_logging("WARNING")
    report = guarded(lambda: COMMANDS[args.command](args, settings))
    emit(report, args.json)
    return 1 if getattr(report, "failed", False) else 0  # some of several photos had no answer


if __name__ == "__main__":
    run_cli(lambda: main())
