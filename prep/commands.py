"""What each `python -m prep` command does: read its arguments, run the step, return a report.

Reports have `to_dict()` (printed for `--json`) and `summary()` (for people); `prep/__main__.py`
prints them in one place. Heavy modules (torch, OpenCV, scikit-learn) are imported inside the
command that needs them, so `--help` and cheap commands load nothing.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from core import (
    BuildReport,
    Dataset,
    Settings,
    build_index,
    check_up_to_date,
    choose_runtime,
    embed_missing,
    model_id,
    open_cache,
)
from core.cli import die
from prep.progress import StageProgress

EXIT_DECLINED = 1
CONTRIBUTION_ID = re.compile(r"[A-Za-z0-9_-]{12}")


def ingest(args: argparse.Namespace, settings: Settings):
    from prep.ingest import ingest as run_ingest

    if not args.raw_dir.is_dir():
        die(f"{args.raw_dir} is not a folder")
    return run_ingest(args.raw_dir, args.data or settings.data_dir, show_progress=not args.json)


def enrich(args: argparse.Namespace, settings: Settings):
    from core import LANGS
    from prep.enrich import enrich as run_enrich
    from prep.wikimedia import WikimediaSettings

    data_dir = args.data or settings.data_dir
    langs = tuple(dict.fromkeys(part.strip() for part in args.langs.split(",") if part.strip()))
    if not langs or any(lang not in LANGS for lang in langs):
        die(f"--langs takes a comma-separated list from: {', '.join(LANGS)}")
    if not Dataset(data_dir).places_path.is_file():
        die(f"no places.csv in {data_dir}/: run `python -m prep ingest RAW_DIR` first or set DATA_DIR")
    progress = StageProgress(enabled=not args.json)
    try:
        return run_enrich(data_dir, langs, WikimediaSettings.from_env(), progress)
    finally:
        progress.close()


def harvest(args: argparse.Namespace, settings: Settings):
    from core import GuideError
    from prep.harvest import CLASSES_FILE, Area, SightClasses, city_code
    from prep.harvest import harvest as run_harvest
    from prep.wikimedia import WikimediaSettings

    try:  # every option is checked before the first request
        if (args.around is None) == (args.bbox is None):
            die("give the area as --around LAT,LON --radius-km R, or as --bbox SOUTH,WEST,NORTH,EAST")
        if args.around is not None and args.radius_km is None:
            die("--around needs --radius-km")
        area = Area.around(args.around, args.radius_km) if args.around else Area.box(args.bbox)
        code = args.city_code or city_code(args.city)
        if not 1 <= args.per_landmark <= 500:
            die("--per-landmark must be from 1 to 500")
        extra = [path for path in args.classes or [] if path.is_file() or die(f"--classes: no file {path}")]
        classes = SightClasses.read([CLASSES_FILE, *extra])
    except GuideError as exc:
        die(str(exc))
    progress = StageProgress(enabled=not args.json)
    try:
        data_dir = args.data or settings.data_dir
        return run_harvest(
            data_dir, area, args.city, code, args.per_landmark, classes, WikimediaSettings.from_env(), progress
        )
    finally:
        progress.close()


def _embed_engine(args: argparse.Namespace, settings: Settings):
    """How the build embeds missing photos: here, or on Ray (checked before anything loads)."""
    if args.address and args.engine != "ray":
        die("--address goes with --engine ray")
    embed = embed_missing
    if args.engine == "ray":
        try:
            import ray  # noqa: F401  # the [scale] extra
        except ImportError:
            die("--engine ray needs Ray: pip install '.[scale]' (or use the default local engine)")
        from prep.ray_engine import ray_embedder

        embed = ray_embedder(settings, args.address)
    return embed


def build(args: argparse.Namespace, settings: Settings) -> BuildReport:
    data_dir = args.data or settings.data_dir
    artifacts_dir = args.artifacts or settings.artifacts_dir
    if not data_dir.is_dir():
        die(f"no dataset at {data_dir}/: run `python -m prep ingest RAW_DIR` first or set DATA_DIR")
    embed = _embed_engine(args, settings)
    progress = StageProgress(enabled=not args.json)
    try:
        if not args.force:
            # Checked before any model is loaded: an unchanged dataset costs seconds, not a model load.
            runtime = choose_runtime(settings, args.device)
            names = {"image_model": model_id(settings.image_model), "text_model": model_id(settings.text_model)}
            vectors = runtime.image_cache_key()  # after export-onnx: rebuild with the runtime that serves
            report = check_up_to_date(
                data_dir,
                artifacts_dir,
                progress=progress,
                image_vectors=vectors,
                index_kind=args.index,
                place_vectors=runtime.place_cache_key(),
                **names,
            )
            if report is not None:
                return report
        runtime = choose_runtime(settings, args.device)
        place = runtime.place_encoder()  # PLACE_MODEL first: one that cannot load stops the build before CLIP loads
        encoder = runtime.image_encoder()
        text_encoder = runtime.text_encoder()  # the build calibrates text search on the dataset's names
        return build_index(
            data_dir,
            artifacts_dir,
            encoder,
            text_model=text_encoder.model_name,
            text_encoder=text_encoder,
            progress=progress,
            force=args.force,
            index_kind=args.index,
            embed=embed,
            place_encoder=place,  # PLACE_MODEL: a second index beside CLIP's (issue #34)
        )
    finally:
        progress.close()


@dataclass(frozen=True)
class CleanReport:
    photos: int
    candidates: int
    by_reason: dict[str, int]
    checks: tuple[str, ...]
    quarantine: Path
    notes: tuple[str, ...] = ()
    kept_earlier: int = 0

    def to_dict(self) -> dict:
        return {
            "kept_earlier": self.kept_earlier,
            "photos": self.photos,
            "candidates": self.candidates,
            "by_reason": self.by_reason,
            "checks": list(self.checks),
            "quarantine": str(self.quarantine),
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        from prep.checks import REASONS

        lines = [f"Checked {self.photos} photos with: {', '.join(self.checks)}"]
        lines += [f"  note: {note}" for note in self.notes]
        width = max([len(r) for r in REASONS] + [6])
        lines.append(f"  {'reason':<{width}}  candidates")
        lines += [f"  {r:<{width}}  {self.by_reason[r]:>10}" for r in REASONS if r in self.by_reason]
        lines.append(f"  {'total':<{width}}  {self.candidates:>10}")
        if self.kept_earlier:
            lines.append(f"  {self.kept_earlier} photos kept earlier were not flagged again (kept.csv)")
        lines.append(
            f"Copied to {self.quarantine}/. Review next: `python -m prep review --quarantine {self.quarantine}` "
            f"(or open {self.quarantine / 'index.html'} and delete the copies of photos to keep), then "
            "`python -m prep apply`. The dataset was not touched."
        )
        return "\n".join(lines)


def clean(args: argparse.Namespace, settings: Settings) -> CleanReport:
    from prep.checks import DEFAULT_CHECKS
    from prep.clean import analyse, parse_checks
    from prep.quarantine import check_location, harvest_kept, write_quarantine

    data_dir = args.data or settings.data_dir
    if not Dataset(data_dir).has_photos():
        die(f"no photos in {data_dir}/images: run `python -m prep ingest RAW_DIR` first or set DATA_DIR")
    try:
        checks = parse_checks(args.checks, DEFAULT_CHECKS)
    except ValueError as exc:
        die(str(exc))
    check_location(args.quarantine, data_dir)
    harvest_kept(args.quarantine, data_dir)  # decisions made in the last review outlive its quarantine
    progress = StageProgress(enabled=not args.json)
    runtime = choose_runtime(settings, args.device)
    with open_cache(args.artifacts or settings.artifacts_dir) as cache:
        try:
            result = analyse(data_dir, checks, encoder=runtime.image_encoder, cache=cache, progress=progress)
            write_quarantine(result, data_dir, args.quarantine)
        finally:
            progress.close()
    return CleanReport(
        result.photos,
        len(result.findings),
        dict(result.counts()),
        checks,
        args.quarantine,
        tuple(result.notes),
        result.kept_earlier,
    )


@dataclass(frozen=True)
class ReviewReport:
    quarantine: Path
    states: dict[str, str]

    def to_dict(self) -> dict:
        kept = sorted(p for p, s in self.states.items() if s == "keep")
        return {"quarantine": str(self.quarantine), "kept": kept, "to_remove": len(self.states) - len(kept)}

    def summary(self) -> str:
        kept = sum(1 for s in self.states.values() if s == "keep")
        return (
            f"Review saved: {kept} kept, {len(self.states) - kept} to remove. Next: "
            f"`python -m prep apply --quarantine {self.quarantine}`"
        )


def review(args: argparse.Namespace, settings: Settings) -> ReviewReport:
    import getpass
    import socket

    from prep.quarantine import states
    from prep.review_server import make_server

    data_dir = args.data or settings.data_dir
    server = make_server(args.quarantine, data_dir, args.host, args.port)
    print(f"Review page: {server.url}", flush=True)
    print(
        f"On a server, open it from your laptop through an SSH tunnel:\n"
        f"  ssh -N -L {server.port}:127.0.0.1:{server.port} {getpass.getuser()}@{socket.gethostname()}\n"
        f"then browse the same URL. Decisions are saved as you click; stop with Ctrl-C.",
        flush=True,
    )
    try:
        server.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server.server_close()
    return ReviewReport(args.quarantine, states(args.quarantine))


@dataclass(frozen=True)
class ApplyReport:
    deleted: tuple = ()  # PlannedDeletion
    kept: tuple[tuple[str, str], ...] = ()
    data_dir: Path = Path(".")
    declined: bool = False
    exit_code: int = 0

    def to_dict(self) -> dict:
        return {
            "deleted": [{"path": d.path, "reason": d.reason} for d in self.deleted],
            "kept": [{"path": c, "why": w} for c, w in self.kept],
        }

    def summary(self) -> str:
        lines = [f"  not deleting {copy}: {why}" for copy, why in self.kept]
        if self.declined:
            return "\n".join([*lines, "Nothing deleted."])
        if not self.deleted:
            return "\n".join([*lines, "Nothing to delete: no photo in the quarantine matches the dataset."])
        lines += [f"deleted {item.path} ({item.reason})" for item in self.deleted]
        lines.append(
            f"Deleted {len(self.deleted)} photos (listed in {Dataset(self.data_dir).removed_path}, so ingest will "
            "not bring them back). Run `python -m prep build` to update the index."
        )
        return "\n".join(lines)


def apply(args: argparse.Namespace, settings: Settings) -> ApplyReport:
    from prep.quarantine import apply_plan, plan_apply

    data_dir = args.data or settings.data_dir
    plan = plan_apply(data_dir, args.quarantine)
    if plan.delete and not args.yes:
        if args.json or not sys.stdin.isatty():
            die("add --yes to delete without a prompt")
        for copy, why in plan.kept:
            print(f"  not deleting {copy}: {why}")
        for item in plan.delete:
            print(f"  {item.reason:<10} {item.path}")
        answer = input(f"Delete these {len(plan.delete)} photos from {data_dir}? [y/N] ")
        if answer.strip().lower() not in {"y", "yes"}:
            return ApplyReport(declined=True, exit_code=EXIT_DECLINED, data_dir=data_dir)
    deleted = tuple(apply_plan(plan, data_dir, args.quarantine)) if plan.delete else ()
    return ApplyReport(deleted, plan.kept, data_dir)


def evaluate(args: argparse.Namespace, settings: Settings):
    from core import DEFAULT_SEARCH_DEPTH, PhotoIndex, RankingParams
    from prep.evaluate import (
        calibration_report,
        evaluate_fused,
        fresh_view_report,
        geo_evaluation,
        plot_calibration,
        query_expansion,
        tower_figures,
    )
    from prep.evaluate import evaluate as run_evaluation

    if args.geo_noise is not None and not 0 <= args.geo_noise <= 100_000:
        die("--geo-noise must be a distance in metres from 0 to 100000")
    if args.plot is not None and (args.plot.suffix.lower() != ".png" or not args.plot.parent.is_dir()):
        die(f"--plot needs a .png file in an existing folder, got {args.plot}")
    index = PhotoIndex.load(args.artifacts or settings.artifacts_dir)
    text_encoder = None
    if not args.no_text:
        text_encoder = choose_runtime(settings).text_encoder()
        index.check_models(index.manifest.image_model, text_encoder.model_name, text_encoder.dim)
    try:
        manual = settings.match_threshold if args.threshold is None else args.threshold
        serving = settings.ranking_params() if manual is None else RankingParams(match_threshold=manual)
        depth = max(args.k, DEFAULT_SEARCH_DEPTH)
        params = replace(serving, k=args.k, temperature=args.temperature, search_depth=depth)
        result = run_evaluation(index, params, text_encoder, show_progress=not args.json)
        if (place := index.place_view()) is not None:  # each tower alone, side by side (fused: issue #34's next step)
            alone = run_evaluation(place, params, show_progress=not args.json)
            fused = evaluate_fused(index, place, params, show_progress=not args.json)
            result = replace(
                result,
                towers={
                    index.manifest.image_model: tower_figures(result),
                    index.manifest.place_model: tower_figures(alone),
                    "fused": fused,
                },
            )
        report = calibration_report(index, params, settings.text_match_threshold, settings.match_precision)
        fresh = fresh_view_report(index, params, settings.match_precision)
        result = replace(result, calibration=report, fresh_views=fresh)
        if args.plot is not None:
            plot_calibration(index, args.plot, settings.match_precision)
        if args.query_expansion:
            expansion = query_expansion(result, index, params, index.place_view(), show_progress=not args.json)
            result = replace(result, query_expansion=expansion)
        if args.geo_noise is not None:
            geo = geo_evaluation(index, params, args.geo_noise, settings.location_max_km, show_progress=not args.json)
            result = replace(result, geo=geo)
        return result
    except ValueError as exc:
        die(str(exc))


@dataclass(frozen=True)
class ExportReport:
    out: Path
    results: tuple = ()  # ParityResult

    def to_dict(self) -> dict:
        return {
            "out": str(self.out),
            "results": [
                {
                    "tower": r.tower,
                    "precision": r.precision,
                    "form": r.form,
                    "min_cosine": r.min_cosine,
                    "required": r.required,
                    "written": r.passed,
                    "portable": r.portable,
                }
                for r in self.results
            ],
        }

    def summary(self) -> str:
        lines = [
            f"ONNX models written to {self.out}/",
            f"  {'model':<6} {'precision':<18} {'min cosine':>10} {'required':>8}",
        ]
        for r in self.results:
            verdict = "ok" if r.passed else "FAILED parity: not written"
            if r.passed and r.precision == "int8":
                verdict += ", 7-bit weights: the same on AVX2 and VNNI CPUs" if r.portable else ", NOT portable"
            precision = f"{r.precision} ({r.form})" if r.form else r.precision
            lines.append(f"  {r.tower:<6} {precision:<18} {r.min_cosine:>10.5f} {r.required:>8}  {verdict}")
        lines.append(
            "With ENCODER_BACKEND=auto (the default) the bot and prep now use them; int8 is preferred when present."
        )
        return "\n".join(lines)


def export_onnx(args: argparse.Namespace, settings: Settings) -> ExportReport:
    import warnings

    from core.encoders import PLACE_FOLDER, place_model_folder
    from prep.export_onnx import export, export_place

    out = args.out or settings.onnx_dir
    progress = StageProgress(enabled=not args.json)
    try:
        if settings.place_tower is not None:  # fetched (or refused) before any export work is done
            place_model_folder(settings.place_tower)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's tracer warnings are about code paths we do not use
            results = export(settings.image_model, settings.text_model, out, int8=args.int8, progress=progress)
            if settings.place_tower is not None:  # PLACE_MODEL: its own folder beside CLIP's (issue #34)
                results += export_place(settings.place_tower, out / PLACE_FOLDER, int8=args.int8)
    except Exception as exc:  # model loading, export and parity failures all end the same way
        die(f"export failed: {exc}")
    finally:
        progress.close()
    return ExportReport(out, tuple(results))


@dataclass(frozen=True)
class RandomModelsReport:
    clip: Path
    text: Path
    voices: Path | None = None
    place: Path | None = None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        voices, place = (None if p is None else str(p) for p in (self.voices, self.place))
        return {"image_model": str(self.clip), "text_model": str(self.text), "voices_dir": voices, "place_model": place}

    def summary(self) -> str:
        return (
            f"random-weight models written: IMAGE_MODEL={self.clip} TEXT_MODEL={self.text} VOICES_DIR={self.voices}"
            f" (and the place tower's stand-in, {self.place})"
        )


def random_models(args: argparse.Namespace, settings: Settings) -> RandomModelsReport:
    from prep.random_models import build_clip, build_multilingual, build_piper_voice, build_place_model

    clip = build_clip(args.out_dir / "clip-ViT-B-32", args.size)
    text = build_multilingual(args.out_dir / "clip-ViT-B-32-multilingual-v1", args.size)
    # A Russian Piper voice stand-in: VOICES_DIR's layout, for the narration path that is not espeak-ng's.
    voices = args.out_dir / "voices"
    build_piper_voice(voices, "ru_RU-random-medium", "ru", "ru")
    place = build_place_model(args.out_dir / "dinov2-small", args.size)  # issue #34's place tower, in its Hub layout
    return RandomModelsReport(clip, text, voices, place)


def contributions(args: argparse.Namespace, settings: Settings):
    """list, approve ID [--xid XID], reject ID."""
    import importlib.util

    from core import SqliteContributionStore, approve, reject
    from prep.contributions import ContributionsReport, DecisionReport, clean_check

    if args.action == "approve" and importlib.util.find_spec("cv2") is None:
        die(
            "approving runs every `prep clean` check, which needs the prep install (OpenCV, ImageHash): "
            "`docker compose run --rm prep contributions approve ID`, or `pip install '.[prep]'`"
        )
    if args.action != "list" and args.id is None:
        die(f"`contributions {args.action}` needs the contribution's ID (see `contributions list`)")
    if args.action != "list" and not CONTRIBUTION_ID.fullmatch(args.id):  # bytes that are no text stop here too
        die(f"no contribution {args.id.encode(errors='replace').decode()!r}: IDs are 12 letters, digits, - or _")
    store = SqliteContributionStore(settings.contributions_dir)
    try:
        if args.action == "list":
            return ContributionsReport(store.contributions())
        answer = store.answer(args.id)
        if answer is None or answer.status is None:
            die(f"no contribution {args.id!r} (see `python -m prep contributions list`)")
        if args.action == "reject":  # an approved photo leaves the dataset again
            return DecisionReport(args.id, "rejected", detail=reject(store, Dataset(settings.data_dir), args.id))
        result = approve(store, Dataset(settings.data_dir), args.id, args.xid, check=clean_check)
        decided = store.answer(args.id)
        return DecisionReport(args.id, (decided.status if decided else None) or "pending", result)
    finally:
        store.close()


def stats(args: argparse.Namespace, settings: Settings):
    from core import SqliteContributionStore
    from prep.contributions import StatsReport

    store = SqliteContributionStore(settings.contributions_dir)
    try:
        return StatsReport(store.stats())
    finally:
        store.close()
