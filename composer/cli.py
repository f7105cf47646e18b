"""The ``composer`` command: parses arguments, calls the pipeline, shows progress, maps errors.

Subcommands: ``validate``, ``schema``, ``plan``, ``render``, ``report``, ``analyze``,
``compose``, ``sim``, ``config``, ``export``. Every
:class:`~composer.errors.ComposerError` becomes a message on stderr and its exit code
(2 for a bad storyboard); no traceback reaches the user for them. No logic of its own
lives here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from composer._version import __version__
from composer.backends import API_BACKENDS, BACKENDS, calls_service
from composer.errors import ComposerError, StoryboardError
from composer.plan.model import Plan
from composer.terminal import BatchDisplay, ProgressBar
from composer.timecode import parse_fps

if TYPE_CHECKING:
    from composer.config import Effective
    from composer.jobs.remote import JobSettings
    from composer.pipeline import RenderOptions
    from composer.plan.io import Source


def _seconds(frames: int, fps: Fraction) -> str:
    return f"{float(Fraction(frames) / fps):7.2f}"


def plan_table(plan: Plan) -> str:
    """A readable summary of a plan: outputs, segments, chunks, timings, API calls, cost."""
    fps = parse_fps(plan.output.fps)
    spec = plan.output
    lines = [
        f"{plan.storyboard.title or Path(plan.storyboard.path).name}: {len(plan.outputs)} output(s) of "
        f"{spec.frames} frames ({float(Fraction(spec.frames) / fps):g} s) at {spec.width}x{spec.height} {spec.fps} fps, "
        f"backend {plan.generation.backend} ({plan.generation.model_id})",
        "",
        f"{'segment':<8} {'scene':<16} {'start s':>7} {'end s':>7} {'clip s':>7}  {'join':<10} chunks (s)",
    ]
    for output in plan.outputs:
        lines.append(f"{output.name}")
        cursor = 0
        for i, seg in enumerate(output.segments):
            join = output.joins[i] if i < len(output.joins) else None
            join_text = (
                "" if join is None else (f"fade {join.frames}f" if join.kind == "crossfade" else "cut")
            )
            chunks = " + ".join(f"{c.duration_s:g}" for c in seg.chunks)
            cont = f"  (continues {seg.continues.segment})" if seg.continues else ""
            image = "  (image)" if seg.image else ""
            lines.append(
                f"  {seg.id:<6} {seg.scene_id[:16]:<16} {_seconds(cursor, fps)} {_seconds(cursor + seg.nominal_frames, fps)} "
                f"{_seconds(seg.clip_frames, fps)}  {join_text:<10} {chunks}{cont}{image}"
            )
            cursor += seg.nominal_frames
    lines.append("")
    cost = plan.estimated_cost_usd
    lines.append(
        f"{len(plan.segments)} segments, {plan.api_calls} API calls, {plan.generated_seconds:g} s generated, "
        f"estimated cost ${cost:.2f}"
    )
    lines.extend(f"note: {n}" for n in plan.notes)
    return "\n".join(lines)


def _cmd_validate(args: argparse.Namespace) -> int:
    from composer.pipeline import lint_storyboard, validate

    plan = validate(args.file, backend=args.backend, strict=args.strict)
    print(
        f"{args.file}: ok ({len(plan.outputs)} output(s), {len(plan.segments)} segments, {plan.api_calls} API calls)"
    )
    for note in plan.notes:
        print(f"note: {note}")
    # Advice, not errors: stderr and exit 0 (under --strict, validate has already refused them).
    warnings = lint_storyboard(args.file, backend=args.backend)
    for warning in warnings:
        print(warning, file=sys.stderr)
    if warnings:
        count = len(warnings)
        print(
            f"{count} prompt warning{'s' if count != 1 else ''}; they do not block a render "
            "(--strict makes them errors; see 'Prompt lint' in docs/storyboard.md)",
            file=sys.stderr,
        )
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from composer.storyboard.model import Storyboard

    schema = Storyboard.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "composer storyboard v1"
    print(json.dumps(schema, indent=2))
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from composer.jobs.cache import write_json_atomic
    from composer.pipeline import load_and_plan
    from composer.plan.io import read_source

    source = read_source(args.file)  # read once: the settings and the plan both need it
    settings = _effective(args, source)
    # A plan.json is planned as the path it is, and reported as not a storyboard.
    board = source.storyboard if source.storyboard is not None else args.file
    _, plan = load_and_plan(
        board,
        backend=settings.given("backend"),
        model=settings.given("model"),
        prices=settings.given("prices"),
    )
    if args.json is None:
        print(plan_table(plan))
    elif args.json == "-":
        print(json.dumps(plan.model_dump(mode="json"), indent=2))
    else:
        write_json_atomic(Path(args.json), plan.model_dump(mode="json"))
        print(f"wrote {args.json}")
    return 0


def _continuity(pairs: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError:
            raise ComposerError(
                f"--continuity {pair!r}: expected KEY=NUMBER, e.g. brightness_regenerate=4 "
                "(keys: see the continuity block in docs/storyboard.md)"
            ) from None
    return out


def _effective(args: argparse.Namespace, file: str | Source | None) -> Effective:
    """The command's settings: its options over the storyboard, environment and config file."""
    from composer.config import effective_settings

    # argparse's names -> the settings' names; an option a subcommand lacks counts as not given.
    names = {
        "backend": "backend",
        "model": "model",
        "base_url": "base_url",
        "proxy": "proxy",
        "concurrency": "concurrency",
        "rpm": "rpm",
        "poll_interval": "poll_interval_s",
        "budget": "budget_usd",
        "ambiguous_retries": "ambiguous_retries",
        "workers": "workers",
    }
    return effective_settings(
        {setting: getattr(args, option, None) for option, setting in names.items()}, file
    )


def _cmd_config(args: argparse.Namespace) -> int:
    settings = _effective(args, args.file)
    if args.json:
        print(json.dumps({"version": 1, **settings.model_dump(mode="json")}, indent=2))
    else:
        print(settings.text())
    return 0


def _job_settings(args: argparse.Namespace, settings: Effective) -> JobSettings:
    from composer.jobs.remote import JobSettings

    for name in ("concurrency", "rpm"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ComposerError(f"--{name} must be at least 1, not {value}")
    for name in ("poll_interval", "budget", "ambiguous_retries"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise ComposerError(f"--{name.replace('_', '-')} must not be negative, not {value:g}")
    defaults = JobSettings()
    # `settings` holds the options above, or the config file's values where one was not given.
    retries = settings.given("ambiguous_retries")
    return JobSettings(
        concurrency=settings.given("concurrency") or defaults.concurrency,
        requests_per_minute=settings.given("rpm"),
        poll_interval_s=settings.given("poll_interval_s"),
        budget_usd=settings.given("budget_usd"),
        # None: $COMPOSER_AMBIGUOUS_RETRIES, else 1, as JobSettings reads them itself.
        ambiguous_retries=defaults.ambiguous_retries if retries is None else retries,
    )


def _render_options(args: argparse.Namespace, settings: Effective) -> RenderOptions:
    """What ``composer render`` asks for, built once from its options and the effective settings."""
    from composer.pipeline import RenderOptions

    # A preview or final pass fixes its own model (fast / quality) unless the command line names one.
    passes = args.preview or args.final
    cache_dir = settings.given("cache_dir")
    return RenderOptions(
        backend=args.backend if passes else settings.given("backend"),
        model=args.model if passes else settings.given("model"),
        force=args.force,
        cache_dir=Path(cache_dir) if cache_dir is not None else None,
        workers=settings.given("workers"),
        regenerate=False if args.no_regenerate else None,
        max_attempts=args.max_attempts,
        continuity=_continuity(args.continuity),
        base_url=settings.given("base_url"),
        proxy=settings.given("proxy"),
        jobs=_job_settings(args, settings),
        prices=settings.given("prices"),
        preview=args.preview,
        final_from=Path(args.from_dir) if args.from_dir else None,
        keep=tuple(args.keep),
        metrics_file=Path(args.metrics_file) if args.metrics_file else None,
    )


def _cmd_render(args: argparse.Namespace) -> int:
    from composer import pipeline
    from composer.plan.io import read_source

    if len(args.files) > 1 or args.ray:
        return _render_batch(args)
    args.file = args.files[0] if args.files else None
    if args.final != bool(args.from_dir):
        raise ComposerError("--final and --from RUN_DIR go together: --final --from renders/<stem>-preview")
    if args.file is None and not args.final:
        raise ComposerError("give the storyboard to render: composer render FILE")
    # The storyboard (or plan.json) is read once, here; the settings, lint and render share it.
    source = read_source(args.file) if args.file is not None else None
    settings = _effective(args, source)
    options = _render_options(args, settings)
    if source is not None and source.storyboard is not None:  # a plan.json has no prompts left to lint
        for warning in pipeline.lint_storyboard(source.storyboard, backend=options.backend):
            print(warning, file=sys.stderr)  # warnings never block a render
    bar = ProgressBar(sys.stderr)
    try:
        result = pipeline.run(source, options, args.out, bar)
    finally:
        bar.close()
    m = result.manifest
    for record in m.outputs:
        state = "written" if record.composed else "up to date"
        print(f"{record.path}  {record.frames} frames, {record.duration_s:g} s ({state})")
    if result.report is not None:
        r = result.report.summary
        # Joins between different scenes are meant to change the picture: only same-scene ones are scored.
        seams = f"{r.seams_passed}/{r.seams} seams passed" if r.seams else "no same-scene seams to score"
        print(
            f"drift report: {result.report_path}  ({r.segments_passed}/{r.segments} segments passed, "
            f"{r.segments_regenerated} regenerated, {r.segments_flagged} flagged; {seams})"
        )
    api = m.metrics.backends.get(m.backend) if m.metrics is not None else None
    if api is not None and calls_service(m.backend):
        print(
            f"API: {api.operations} operation(s), ${api.cost_usd:.2f}, {api.retries} retries, "
            f"{api.resumed} resumed, {api.possible_duplicates} possible duplicate(s)"
            + (f" (up to ${m.possibly_charged_usd:.2f} more)" if m.possibly_charged_usd else "")
        )
    print(
        f"{m.generated} take(s) generated, {m.cache_hits} from cache; "
        f"{m.timings_s['total']:.1f} s total; manifest: {result.manifest_path}"
    )
    from composer.cache_cli import money_lines

    for line in money_lines(m):
        print(line)
    if args.metrics_file:
        print(f"metrics: {Path(args.metrics_file).resolve()}")
    return 0


def _render_batch(args: argparse.Namespace) -> int:
    from composer.batch import render_many

    if args.final or args.from_dir or args.keep:
        raise ComposerError(
            "--final and --from finish one preview: render a batch's storyboards one by one for that"
        )
    if not args.files:
        raise ComposerError("give the storyboards to render: composer render A.yaml B.yaml [--ray [ADDRESS]]")
    options = _render_options(args, _effective(args, None))
    display = BatchDisplay([Path(f).stem for f in args.files], sys.stderr)
    batch = render_many(args.files, args.out or "renders", options, ray=args.ray, on_progress=display)
    if display.tty:
        sys.stderr.write("\n")
    for result in batch.storyboards:
        if result.status == "complete":
            print(
                f"{result.name}: {len(result.outputs)} output(s) in {result.out_dir}, ${result.cost_usd:.2f}"
            )
        else:
            print(f"{result.name}: failed: {result.error}", file=sys.stderr)
    cost = sum(r.cost_usd for r in batch.storyboards)
    print(
        f"batch: {len(batch.storyboards) - len(batch.failures)}/{len(batch.storyboards)} storyboards complete, "
        f"${cost:.2f}, {batch.wall_s:.1f} s ({batch.mode}); {batch.batch_path}"
    )
    return 1 if batch.failures else 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from composer.analysis import analyze_clip, score_seams
    from composer.report import write_html
    from composer.report.build import analysis_report

    paths = [Path(p) for p in args.clips]
    for path in paths:
        if not path.is_file():
            raise ComposerError(f"{path}: no such file")
    results = [
        analyze_clip(p, camera_planned=args.camera, with_curves=args.html is not None, fast=args.fast)
        for p in paths
    ]
    seams = score_seams(paths) if args.seams and len(paths) > 1 else []
    if args.json:
        # Curves are for the page; the JSON keeps the per-clip facts and verdicts.
        data: dict[str, object] = {
            "version": 1,
            "clips": [
                r.model_dump(mode="json", exclude={"seam_with_next": True, "drift": {"curves"}})
                for r in results
            ],
        }
        if args.seams:
            data["seams"] = [
                {"from": str(a), "to": str(b), **s.model_dump(mode="json")}
                for a, b, s in zip(paths, paths[1:], seams, strict=False)
            ]
        print(json.dumps(data, indent=2))
    else:
        for r in results:
            cuts = ", ".join(f"{d.t_s:.2f}s" for d in r.discontinuities) or "none"
            print(
                f"{r.path}: {r.duration_s:.2f} s at {r.fps:g} fps, {r.frames_analyzed} frames; "
                f"drift {r.drift.verdict}"
                + (f" (worst: {r.drift.worst})" if r.drift.worst else "")
                + f"; discontinuities: {cuts}"
            )
            for finding in r.findings:
                print(f"  {finding.verdict}: {finding.explanation}")
        for a, b, s in zip(paths, paths[1:], seams, strict=False):
            fired = ", ".join(s.fired) or "nothing fired"
            print(f"seam {a.name} -> {b.name}: {s.verdict} ({fired})")
    if args.html:
        page = write_html(analysis_report(results, seams), Path(args.html))
        print(f"report: {page}", file=sys.stderr)
    levels = {"warn": 1, "regenerate": 2}
    if args.fail_on:
        worst = max(
            [levels.get(r.drift.verdict, 0) for r in results]
            + [levels.get(s.verdict, 0) for s in seams]
            + [2 if r.discontinuities else 0 for r in results]
        )
        if worst >= levels[args.fail_on]:
            return 1
    return 0


def _cmd_compose(args: argparse.Namespace) -> int:
    from composer.compose.clips import compose_clips
    from composer.pipeline import Progress

    paths = [Path(p) for p in args.clips]
    for path in paths:
        if not path.is_file():
            raise ComposerError(f"{path}: no such file")
    bar = ProgressBar(sys.stderr)

    def progress(done: int, total: int) -> None:
        bar(Progress("compose", done, total, Path(args.out).name))

    try:
        result = compose_clips(
            paths,
            Path(args.out),
            crossfade_s=args.crossfade,
            length_s=args.length,
            cut_at=args.cut_at,
            on_progress=progress,
        )
    finally:
        bar.close()
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    how = (
        "copied bodies + re-encoded crossfades"
        if result.check.method == "smart"
        else f"full re-encode ({result.check.reason})"
    )
    print(f"{result.path}  {result.frames} frames at {result.width}x{result.height} {result.fps} fps; {how}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import webbrowser

    from composer.report import rebuild

    page = rebuild(Path(args.run_dir))
    print(page)
    if args.open:
        webbrowser.open(page.resolve().as_uri())
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from composer.timeline import export

    for path in export(Path(args.run_dir), args.format, Path(args.out) if args.out else None):
        print(path)
    return 0


#: The backends, from the one table (composer/backends/__init__.py).
_BACKEND_HELP = "instead of the storyboard's: " + ", ".join(BACKENDS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="composer",
        description="Storyboard -> generated segments -> exact-length videos with crossfades.",
    )
    parser.add_argument("--version", action="version", version=f"composer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a storyboard (format, images, planning); exit 2 if bad")
    p.add_argument("file")
    p.add_argument("--backend", help="check against this backend instead of the storyboard's")
    p.add_argument("--strict", action="store_true", help="treat prompt-lint warnings as errors (exit 2)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("schema", help="print the storyboard JSON Schema (for editors)")
    p.set_defaults(func=_cmd_schema)

    p = sub.add_parser("plan", help="show how a storyboard will be cut into outputs, segments and chunks")
    p.add_argument("file")
    p.add_argument("--backend", help=_BACKEND_HELP)
    p.add_argument("--model", help="fast, quality, or a model id")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="write plan.json to FILE (or stdout)")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("render", help="generate and compose the outputs")
    p.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="storyboard or plan.json (with --final: default the preview's); several storyboards "
        "render as a batch, each into DIR/<stem>/ with DIR/batch.json",
    )
    p.add_argument(
        "-o",
        "--out",
        metavar="DIR",
        help="output folder (default renders/<storyboard stem>/; for a batch, the folder of its folders, default renders/)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const=True,
        default=None,
        metavar="ADDRESS",
        help="render the storyboards on a Ray cluster (default address: $RAY_ADDRESS; put --ray after the "
        "files, or give the address); needs pip install 'composer[ray]' (docs/cluster.md)",
    )
    p.add_argument("--backend", help=_BACKEND_HELP)
    p.add_argument("--model", help="fast, quality, or a model id")
    p.add_argument(
        "--force", action="store_true", help="generate every take again and recompose every output"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="segments generated at once (default 2, or 1 on a one-core machine)",
    )
    p.add_argument("--no-regenerate", action="store_true", help="check drift and seams but only report")
    p.add_argument("--max-attempts", type=int, default=None, help="attempts per segment (default 3)")
    p.add_argument(
        "--preview",
        action="store_true",
        help="the fast model at the smallest size the backend makes (into renders/<stem>-preview/)",
    )
    p.add_argument(
        "--final",
        action="store_true",
        help="the quality model, reusing the seeds a preview approved (needs --from)",
    )
    p.add_argument("--from", dest="from_dir", metavar="RUN_DIR", help="the preview render to finish")
    p.add_argument(
        "--keep", nargs="+", default=[], metavar="SEG", help="with --final: only these segments (e.g. o1-s2)"
    )
    p.add_argument(
        "--continuity",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a continuity threshold, e.g. brightness_regenerate=4 (repeatable)",
    )
    p.add_argument(
        "--metrics-file",
        metavar="FILE",
        help="also write the run metrics in Prometheus text format, a failed render's too (docs/metrics.md)",
    )
    api = p.add_argument_group(f"API backends ({', '.join(API_BACKENDS)})")
    api.add_argument(
        "--base-url", metavar="URL", help="the service's base URL (a relay, a proxy, `composer sim`)"
    )
    api.add_argument("--proxy", metavar="URL", help="HTTP(S) proxy (default: HTTPS_PROXY and friends)")
    api.add_argument(
        "--budget",
        type=float,
        metavar="USD",
        help="stop before submitting anything that would pass this cost",
    )
    api.add_argument("--concurrency", type=int, metavar="N", help="operations in flight at once (default 10)")
    api.add_argument(
        "--ambiguous-retries",
        type=int,
        metavar="N",
        help="creates sent again after one whose answer was lost, each a possible duplicate charge "
        "(default 1, $COMPOSER_AMBIGUOUS_RETRIES; docs/cache.md)",
    )
    api.add_argument(
        "--rpm", type=int, metavar="N", help="create requests per minute (default: the backend's)"
    )
    api.add_argument(
        "--poll-interval", type=float, metavar="S", help="first wait before polling (default: the backend's)"
    )
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser(
        "analyze", help="check any clips for drift, jumps and cuts (and the seams between them)"
    )
    p.add_argument("clips", nargs="+", metavar="CLIP")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--html", metavar="FILE", help="also write a drift report page")
    p.add_argument("--seams", action="store_true", help="score each join between consecutive clips")
    p.add_argument(
        "--fast",
        action="store_true",
        help="read only the frames others refer to (about every other one): quicker triage of long footage",
    )
    p.add_argument(
        "--camera",
        metavar="TEXT",
        help='the camera move the clips should have ("static", "slow pan left", "push in"): camera motion '
        "it does not ask for is judged; without it the camera path is only reported",
    )
    p.add_argument(
        "--fail-on", choices=["warn", "regenerate"], help="exit 1 when anything reaches this level"
    )
    p.set_defaults(func=_cmd_analyze)

    p = sub.add_parser("compose", help="join clips from anywhere with crossfades (copying what it can)")
    p.add_argument("clips", nargs="+", metavar="CLIP")
    p.add_argument("-o", "--out", required=True, metavar="OUT.mp4")
    p.add_argument("--crossfade", type=float, default=1.0, metavar="S", help="crossfade seconds (default 1)")
    p.add_argument(
        "--length",
        type=float,
        default=None,
        metavar="S",
        help="exact output length (trim or hold the last frame)",
    )
    p.add_argument(
        "--cut-at",
        type=int,
        nargs="*",
        default=[],
        metavar="N",
        help="clip numbers (1-based) that start with a hard cut instead of a crossfade",
    )
    p.set_defaults(func=_cmd_compose)

    p = sub.add_parser(
        "sim",
        help="serve the gemini, vertex, openai and relay protocols on loopback (the simulator)",
        add_help=False,
    )
    # Only for the listing: main() hands everything after `sim` to the simulator's own parser,
    # because argparse's REMAINDER in a subparser rejects options such as `--port`.
    p.add_argument("sim_args", nargs=argparse.REMAINDER, help="see `composer sim --help`")

    p = sub.add_parser("report", help="rebuild report.html from a render folder's report.json")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--open", action="store_true", help="open the page in a browser")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "export",
        help="write a render folder's timeline for an editor: otio, otioz, fcpxml, xmeml, edl, mlt, xges (docs/timeline.md)",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument(
        "--format",
        choices=["otio", "otioz", "fcpxml", "xmeml", "edl", "mlt", "xges"],
        default="otio",
        help="default otio",
    )
    p.add_argument(
        "-o",
        "--out",
        metavar="FILE",
        help="default RUN_DIR/timeline.<format>; EDL, MLT and GES: one file per output (FILE-part01.edl, ...) when there are several",
    )
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser(
        "config", help="show the effective settings and where each came from (docs/configuration.md)"
    )
    p.add_argument("file", nargs="?", metavar="FILE", help="include what this storyboard (or plan.json) says")
    p.add_argument("--backend", help="as render's --backend")
    p.add_argument("--model", help="as render's --model")
    p.add_argument("--json", action="store_true", help="print the settings as JSON")
    p.set_defaults(func=_cmd_config)
    from composer import cache_cli

    cache_cli.add_parser(sub)
    return parser


def _failed_render_money_lines(exc: ComposerError) -> list[str]:
    """The money lines of a render that failed after writing its manifest (none otherwise).

    Read back from the manifest on disk, the record the user keeps: possible duplicate charges
    with their operation ids and send times, and paid work left by earlier runs.
    """
    if exc.manifest_path is None:
        return []
    from composer.cache_cli import money_lines
    from composer.export.manifest import Manifest

    try:
        manifest = Manifest.model_validate_json(exc.manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [f"(could not read {exc.manifest_path} to list possible duplicate charges)"]
    return money_lines(manifest)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 bad input, 3 environment, 130 stopped)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sim"]:
        from composer.sim import main as sim_main

        return sim_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except StoryboardError as exc:
        count = len(exc.issues)
        for issue in exc.issues:
            print(f"{issue}", file=sys.stderr)
        print(f"{count} problem{'s' if count != 1 else ''} found; nothing was generated", file=sys.stderr)
        return exc.exit_code
    except ComposerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        for line in _failed_render_money_lines(exc):
            print(line, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
