"""The ``composer`` command: parses arguments, calls the pipeline, shows progress, maps errors.

Subcommands: ``validate``, ``schema``, ``plan``, ``render``. Every
:class:`~composer.errors.ComposerError` becomes a message on stderr and its exit code
(2 for a bad storyboard); no traceback reaches the user for them. No logic of its own
lives here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TextIO

from composer._version import __version__
from composer.errors import ComposerError, StoryboardError
from composer.plan.model import Plan
from composer.timecode import parse_fps


class ProgressBar:
    """One line per stage on a terminal, redrawn in place; a line every ~10% otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._stage = ""
        self._last_step = -1
        self._started = time.perf_counter()

    def __call__(self, progress: object) -> None:
        stage, done, total, detail = (getattr(progress, k) for k in ("stage", "done", "total", "detail"))
        if stage != self._stage:
            if self._stage and self.tty:
                self.stream.write("\n")
            self._stage, self._last_step, self._started = stage, -1, time.perf_counter()
        fraction = min(1.0, done / total) if total else 1.0
        elapsed = time.perf_counter() - self._started
        label = f"{stage:<9}"
        if self.tty:
            width = 30
            filled = round(fraction * width)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r{label}[{bar}] {fraction * 100:5.1f}%  {elapsed:6.1f}s  {detail[:40]:<40}")
            if fraction >= 1.0:
                self.stream.write("\n")
                self._stage = ""
        else:
            step = int(fraction * 10)
            if step != self._last_step:
                self._last_step = step
                self.stream.write(f"{label}{fraction * 100:5.1f}%  {elapsed:6.1f}s  {detail}\n")
        self.stream.flush()


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
    from composer.pipeline import validate

    plan = validate(args.file, backend=args.backend)
    print(
        f"{args.file}: ok ({len(plan.outputs)} output(s), {len(plan.segments)} segments, {plan.api_calls} API calls)"
    )
    for note in plan.notes:
        print(f"note: {note}")
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

    _, plan = load_and_plan(args.file, backend=args.backend, model=args.model)
    if args.json is None:
        print(plan_table(plan))
    elif args.json == "-":
        print(json.dumps(plan.model_dump(mode="json"), indent=2))
    else:
        write_json_atomic(Path(args.json), plan.model_dump(mode="json"))
        print(f"wrote {args.json}")
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from composer.pipeline import render

    bar = ProgressBar(sys.stderr)
    result = render(
        args.file,
        args.out,
        backend=args.backend,
        model=args.model,
        force=args.force,
        workers=args.workers,
        on_progress=bar,
    )
    m = result.manifest
    for record in m.outputs:
        state = "written" if record.composed else "up to date"
        print(f"{record.path}  {record.frames} frames, {record.duration_s:g} s ({state})")
    print(
        f"{m.generated} take(s) generated, {m.cache_hits} from cache; "
        f"{m.timings_s['total']:.1f} s total; manifest: {result.manifest_path}"
    )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import webbrowser

    from composer.report import rebuild

    page = rebuild(Path(args.run_dir))
    print(page)
    if args.open:
        webbrowser.open(page.resolve().as_uri())
    return 0


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
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("schema", help="print the storyboard JSON Schema (for editors)")
    p.set_defaults(func=_cmd_schema)

    p = sub.add_parser("plan", help="show how a storyboard will be cut into outputs, segments and chunks")
    p.add_argument("file")
    p.add_argument("--backend")
    p.add_argument("--model", help="fast, quality, or a model id")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="write plan.json to FILE (or stdout)")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("render", help="generate and compose the outputs")
    p.add_argument("file")
    p.add_argument("-o", "--out", metavar="DIR", help="output folder (default renders/<storyboard stem>/)")
    p.add_argument("--backend")
    p.add_argument("--model", help="fast, quality, or a model id")
    p.add_argument(
        "--force", action="store_true", help="generate every take again and recompose every output"
    )
    p.add_argument("--workers", type=int, default=None, help="segments generated at once (default 2)")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("report", help="rebuild report.html from a render folder's report.json")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--open", action="store_true", help="open the page in a browser")
    p.set_defaults(func=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 bad input, 3 environment, 130 stopped)."""
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
        return exc.exit_code
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
