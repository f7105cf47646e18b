"""The pipeline: storyboard -> plan -> takes -> outputs -> manifest. The programmatic entry point.

``validate`` and ``plan_storyboard`` stop after planning; ``render`` runs everything and
returns a typed :class:`RenderResult`. Nothing is written before the storyboard has been
fully checked and planned, so bad input never leaves a folder behind; every file is
written under a temporary name and renamed. What does not live here: argument parsing and
terminal output (``cli.py``), or any stage's own logic.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from composer import ffmpeg
from composer._version import __version__
from composer.backends import registry
from composer.checks import ContinuityJudge
from composer.compose.render import compose_output, prepare_take
from composer.errors import EnvironmentProblem, Interrupted, Issue, PlanError, StoryboardError
from composer.export.manifest import Manifest, OutputRecord, TakeRecord, read_outputs, versions
from composer.imaging import file_sha256
from composer.jobs.cache import Take, TakeCache, write_json_atomic
from composer.jobs.runner import Runner, TakeEvent
from composer.plan.model import Plan, Segment
from composer.plan.planner import make_plan
from composer.report import write_report
from composer.report.build import build_report
from composer.report.model import Report
from composer.storyboard.load import LoadedStoryboard, load_storyboard
from composer.storyboard.model import ContinuitySettings
from composer.timecode import parse_fps, to_seconds


@dataclass(frozen=True)
class Progress:
    """A progress report: ``stage`` is 'generate' or 'compose'; ``done`` of ``total`` units."""

    stage: str
    done: float
    total: float
    detail: str = ""


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True)
class RenderResult:
    """What a render wrote."""

    out_dir: Path
    outputs: list[Path]
    plan_path: Path
    manifest_path: Path
    manifest: Manifest
    plan: Plan = field(repr=False)
    report_path: Path | None = None
    report: Report | None = field(default=None, repr=False)


def _override(loaded: LoadedStoryboard, backend: str | None, model: str | None) -> LoadedStoryboard:
    updates = {k: v for k, v in (("backend", backend), ("model", model)) if v}
    if not updates:
        return loaded
    sb = loaded.storyboard
    generation = sb.generation.model_copy(update=updates)
    return LoadedStoryboard(sb.model_copy(update={"generation": generation}), loaded.path, loaded.positions)


def load_and_plan(
    path: str | Path, *, backend: str | None = None, model: str | None = None
) -> tuple[LoadedStoryboard, Plan]:
    """Load and plan a storyboard file; every problem is a located StoryboardError."""
    loaded = _override(load_storyboard(path), backend, model)
    storyboard = loaded.storyboard
    name = storyboard.generation.backend
    try:
        capabilities = registry.capabilities(name)
    except EnvironmentProblem as exc:
        if backend:  # came from the command line, not the file
            raise
        raise StoryboardError([loaded.locate("generation.backend", str(exc))]) from None
    images = sorted({s.image for s in storyboard.scenes if s.image})
    try:
        plan = make_plan(
            storyboard,
            capabilities,
            storyboard_path=str(loaded.path.resolve()),
            storyboard_sha256=file_sha256(loaded.path),
            image_hashes={p: file_sha256(p) for p in images},
            composer_version=__version__,
        )
    except PlanError as exc:
        raise StoryboardError([loaded.locate(exc.field, str(exc))]) from None
    return loaded, plan


def read_plan(path: str | Path) -> Plan | None:
    """The plan in ``path`` if it is a ``plan.json`` (rendering from it needs no storyboard), else None."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # not readable JSON: let the storyboard loader say what is wrong
    if not isinstance(data, dict) or "outputs" not in data or "capabilities" not in data:
        return None
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise StoryboardError(
            [
                Issue(
                    str(path),
                    None,
                    None,
                    where,
                    f"not a valid plan.json ({first['msg']}); make one with `composer plan FILE --json`",
                )
            ]
        ) from None


def validate(path: str | Path, *, backend: str | None = None) -> Plan:
    """Check a storyboard completely (format, images, planning); returns its plan."""
    return load_and_plan(path, backend=backend)[1]


def default_out_dir(storyboard_path: Path) -> Path:
    return Path("renders") / storyboard_path.stem


def _inputs_key(plan: Plan, index: int, take_keys: list[str]) -> str:
    output = plan.outputs[index]
    blob = json.dumps(
        {
            "spec": plan.output.model_dump(mode="json"),
            "output": output.model_dump(mode="json"),
            "takes": take_keys,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def render(
    source: str | Path,
    out_dir: str | Path | None = None,
    *,
    backend: str | None = None,
    model: str | None = None,
    force: bool = False,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    regenerate: bool | None = None,
    max_attempts: int | None = None,
    continuity: dict[str, float] | None = None,
    on_progress: ProgressFn | None = None,
) -> RenderResult:
    """Render a storyboard file, or a ``plan.json``, to ``out_dir`` (default ``renders/<stem>/``,
    or the plan's own folder).

    Writes ``part01.mp4``..., ``plan.json``, ``manifest.json``, ``report.json`` and
    ``report.html``. Takes come from the cache when their request was made before (``force``
    makes them again). Every take is checked for drift and seams; ``regenerate``,
    ``max_attempts`` and ``continuity`` (threshold overrides such as ``brightness_regenerate``)
    override the storyboard's ``continuity:`` block. Ctrl-C raises
    :class:`~composer.errors.Interrupted` after finished takes are safely in the cache.
    """
    started = time.perf_counter()
    report = on_progress or (lambda _p: None)
    plan_file = read_plan(source)
    if plan_file is None:
        loaded, plan = load_and_plan(source, backend=backend, model=model)
        source_path, out_default = loaded.path, default_out_dir(loaded.path)
    else:
        if backend or model:
            raise PlanError(
                "a plan.json fixes its backend and model; plan the storyboard again to change them"
            )
        plan, source_path, out_default = plan_file, Path(source), Path(source).parent
    plan = with_continuity(plan, regenerate=regenerate, max_attempts=max_attempts, overrides=continuity)
    settings = plan.continuity
    out = Path(out_dir) if out_dir is not None else out_default
    cache = TakeCache(Path(cache_dir) if cache_dir else None)
    ffmpeg.ffmpeg_exe()  # fail early, before any generation, if there is no ffmpeg

    total_chunks = plan.api_calls
    done_chunks = 0
    records: list[TakeRecord] = []

    def on_take(event: TakeEvent) -> None:
        nonlocal done_chunks, total_chunks
        done_chunks += 1
        total_chunks = max(total_chunks, done_chunks)  # regenerations add chunks
        take = event.take
        records.append(
            TakeRecord(
                segment=event.segment,
                chunk=event.chunk,
                kind=take.request.kind,
                key=take.key,
                path=str(take.path),
                cached=event.cached,
                frames=take.clip.frames,
                duration_s=take.clip.duration_s,
                requested_s=take.request.duration_s,
                generation_s=take.generation_s,
                cost_usd=0.0 if event.cached else take.clip.cost_usd,
            )
        )
        verb = "cached" if event.cached else "generated"
        report(
            Progress(
                "generate",
                done_chunks,
                total_chunks,
                f"{event.segment} chunk {event.chunk + 1}/{event.chunks} {verb}",
            )
        )

    instance = registry.create(plan.generation.backend)
    judge = ContinuityJudge(plan, settings.overrides(), store=cache.root / "checks")
    # Encode once: each accepted take is brought to the output's encoding (keyframes where its
    # crossfades fall) in the background while other segments are still being generated, so
    # composing afterwards mostly copies.
    where = {seg.id: (output, i) for output in plan.outputs for i, seg in enumerate(output.segments)}
    normalizer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="composer-normalize")
    prepared: list[Future[object]] = []

    def on_accept(segment: Segment, take: Take) -> None:
        output, index = where[segment.id]
        prepared.append(normalizer.submit(prepare_take, output, plan.output, index, take))

    try:
        report(Progress("generate", 0, total_chunks, f"{len(plan.segments)} segments, {total_chunks} chunks"))
        runner = Runner(
            plan,
            instance,
            cache,
            workers=workers or min(2, os.cpu_count() or 1),
            force=force,
            on_event=on_take,
            judge=judge,
            max_attempts=settings.max_attempts,
            regenerate=settings.regenerate,
            on_accept=on_accept,
        )
        result = runner.run()
        notes = list(plan.notes)
        for future in prepared:
            error = future.exception()
            if error is not None:  # composing falls back to normalising (or a full re-encode) itself
                notes.append(f"normalising a take in the background failed: {error}")
    except KeyboardInterrupt:
        normalizer.shutdown(wait=False, cancel_futures=True)
        raise Interrupted(
            "stopped; every finished take is kept in the cache, so running the same command again resumes"
        ) from None
    finally:
        instance.close()
        normalizer.shutdown(wait=True, cancel_futures=True)
    generated_at = time.perf_counter()

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot create the output folder {out} ({exc.strerror}); choose another with -o"
        ) from None
    plan_path = out / "plan.json"
    write_json_atomic(plan_path, plan.model_dump(mode="json"))
    manifest_path = out / "manifest.json"
    previous = {} if force else read_outputs(manifest_path)
    fps = parse_fps(plan.output.fps)
    output_records: list[OutputRecord] = []
    paths: list[Path] = []
    total_frames = sum(o.frames for o in plan.outputs)
    frames_before = 0
    try:
        for index, output in enumerate(plan.outputs):
            dest = out / output.name
            key = _inputs_key(plan, index, [result.segment_takes[s.id].key for s in output.segments])
            old = previous.get(output.name)
            compose_started = time.perf_counter()
            if old and old["inputs_key"] == key and dest.is_file():
                check_frames, samples, composed = old["frames"], old["audio_samples"], False
                method, reason = old["method"], old["reason"]
            else:
                base = frames_before

                def on_frames(frames: int, base: int = base, name: str = output.name) -> None:
                    report(Progress("compose", base + frames, total_frames, name))

                check = compose_output(output, plan.output, result.segment_takes, dest, on_frames)
                check_frames, samples, composed = check.frames, check.audio_samples, True
                method, reason = check.method, check.reason
            frames_before += output.frames
            report(Progress("compose", frames_before, total_frames, output.name))
            paths.append(dest.resolve())
            output_records.append(
                OutputRecord(
                    name=output.name,
                    path=str(dest.resolve()),
                    frames=check_frames,
                    audio_samples=samples,
                    duration_s=float(to_seconds(check_frames, fps)),
                    inputs_key=key,
                    composed=composed,
                    method=method,
                    reason=reason,
                    compose_s=round(time.perf_counter() - compose_started, 3),
                )
            )
    except KeyboardInterrupt:
        raise Interrupted(
            "stopped while composing; no half-written output was left, and every take is cached"
        ) from None
    finished = time.perf_counter()

    order = {s.id: i for i, s in enumerate(plan.segments)}
    records.sort(key=lambda r: (order[r.segment], r.chunk))
    manifest = Manifest(
        composer_version=__version__,
        storyboard=str(source_path.resolve()),
        backend=plan.generation.backend,
        model_id=plan.generation.model_id,
        plan=str(plan_path.resolve()),
        cache_dir=str(cache.root.resolve()),
        takes=records,
        outputs=output_records,
        cache_hits=result.cache_hits,
        generated=result.generated,
        cost_usd=round(sum(r.cost_usd for r in records), 4),
        timings_s={
            "generate": round(generated_at - started, 3),
            "compose": round(finished - generated_at, 3),
            "total": round(finished - started, 3),
        },
        versions=versions(ffmpeg.ffmpeg_version(), ffmpeg.ffmpeg_exe()),
        notes=notes,
    )
    write_json_atomic(manifest_path, manifest.model_dump(mode="json"))
    report(Progress("report", 0, 1, "drift report"))
    drift_report = build_report(
        plan, paths, result, judge, regenerate=settings.regenerate, max_attempts=settings.max_attempts
    )
    _, report_html = write_report(drift_report, out)
    report(Progress("report", 1, 1, report_html.name))
    return RenderResult(
        out.resolve(),
        paths,
        plan_path.resolve(),
        manifest_path.resolve(),
        manifest,
        plan,
        report_path=report_html.resolve(),
        report=drift_report,
    )


def with_continuity(
    plan: Plan,
    *,
    regenerate: bool | None = None,
    max_attempts: int | None = None,
    overrides: dict[str, float] | None = None,
) -> Plan:
    """The plan with command-line continuity settings laid over the storyboard's."""
    updates: dict[str, object] = dict(overrides or {})
    if regenerate is not None:
        updates["regenerate"] = regenerate
    if max_attempts is not None:
        updates["max_attempts"] = max_attempts
    if not updates:
        return plan
    try:
        settings = ContinuitySettings.model_validate({**plan.continuity.model_dump(), **updates})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise PlanError(f"continuity override rejected: {problems}") from None
    return plan.model_copy(update={"continuity": settings})
