"""The pipeline: storyboard -> plan -> takes -> outputs -> manifest. The programmatic entry point.

``validate`` and ``plan_storyboard`` stop after planning; ``render`` runs everything and
returns a typed :class:`RenderResult`. A render is four stages, each a function of values
whose inputs and outputs can be pickled (so an executor elsewhere can run one):

1. :func:`plan_render`: the input (a storyboard, a ``plan.json``, a preview to finish) and the
   :class:`RenderOptions` -> the plan to render (:class:`Planned`).
2. :func:`generate`: the plan -> every segment's kept take, judged for drift and seams, each
   brought to the output's encoding in the background (:class:`Generated`).
3. :func:`compose`: the takes -> the outputs, exact to the frame (:class:`Composed`).
4. :func:`write_artifacts`: ``manifest.json``, the metrics file, ``report.json`` and
   ``report.html`` from those values (:class:`Written`).

:func:`run` calls them in order (and writes ``plan.json`` and the timeline); :func:`finish` is
its part after generation, which a batch on a Ray cluster (``cluster.py``) calls on another
machine than the one that generated. Nothing is written
before the storyboard has been fully checked and planned, so bad input never leaves a folder
behind; every file is written under a temporary name and renamed. What does not live here:
argument parsing and terminal output (``cli.py``), reading and writing plans
(``plan/io.py``), or any stage's own logic (``plan/``, ``jobs/``, ``checks.py``,
``compose/``, ``export/``, ``report/``).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from composer import ffmpeg
from composer._version import __version__
from composer.backends import encodes_output, registry
from composer.backends.remote import RemoteBackend
from composer.checks import ContinuityJudge, Offload
from composer.compose.render import compose_output, prepare_step, prepare_take
from composer.errors import ComposerError, EnvironmentProblem, Interrupted, PlanError, StoryboardError
from composer.export.manifest import Manifest, read_outputs, versions
from composer.export.records import FailureRecord, KnobNotSent, OutputRecord, SegmentRecord, TakeRecord
from composer.export.run_metrics import run_metrics, write_metrics
from composer.files import file_sha256
from composer.jobs.cache import Take, TakeCache, write_json_atomic
from composer.jobs.limits import Limits
from composer.jobs.remote import JobSettings
from composer.jobs.runner import Fallback, Runner, RunResult, TakeEvent
from composer.plan import modes
from composer.plan.io import Source, read_preview, read_source, write_plan
from composer.plan.model import OutputPlan, Plan, Segment
from composer.plan.planner import make_plan
from composer.report import write_report
from composer.report.build import build_report
from composer.report.model import Problem, Report
from composer.storyboard.lint import LintWarning, lint
from composer.storyboard.load import LoadedStoryboard, load_storyboard
from composer.storyboard.model import ContinuitySettings
from composer.timecode import parse_fps, to_seconds
from composer.timeline import timeline_notes, write_timeline


@dataclass(frozen=True)
class Progress:
    """A progress report: ``stage`` is 'generate' or 'compose'; ``done`` of ``total`` units."""

    stage: str
    done: float
    total: float
    detail: str = ""


ProgressFn = Callable[[Progress], None]


def _quiet(_progress: Progress) -> None:
    pass


@dataclass(frozen=True)
class RenderOptions:
    """Everything a render is asked beyond its input file; the CLI builds it once from the
    effective settings (command line over storyboard, environment and config file).

    ``backend`` and ``model`` replace the storyboard's; ``force`` makes every take and output
    again; ``cache_dir`` is the take cache (None: ``$COMPOSER_CACHE`` or the platform's);
    ``workers`` segments are generated at once. ``regenerate``, ``max_attempts`` and
    ``continuity`` (threshold overrides such as ``brightness_regenerate``) override the
    storyboard's ``continuity:`` block. ``base_url`` and ``proxy`` point an API backend
    elsewhere; ``jobs`` sets concurrency, rate limits, polling, retries and the budget;
    ``prices`` (USD per second by model id or alias) override the backend's list prices.
    ``preview``, ``final_from`` and ``keep`` choose the pass (docs/modes.md);
    ``metrics_file`` also receives the run metrics in the Prometheus text format.
    """

    backend: str | None = None
    model: str | None = None
    force: bool = False
    cache_dir: Path | None = None
    workers: int | None = None
    regenerate: bool | None = None
    max_attempts: int | None = None
    continuity: Mapping[str, float] = field(default_factory=dict)
    base_url: str | None = None
    proxy: str | None = None
    jobs: JobSettings = field(default_factory=JobSettings)
    prices: Mapping[str, float] | None = None
    preview: bool = False
    final_from: Path | None = None
    keep: tuple[str, ...] = ()
    metrics_file: Path | None = None


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
    source: str | Path | LoadedStoryboard,
    *,
    backend: str | None = None,
    model: str | None = None,
    prices: Mapping[str, float] | None = None,
    preview: bool = False,
) -> tuple[LoadedStoryboard, Plan]:
    """Load (unless loaded already) and plan a storyboard; every problem is a located StoryboardError.

    ``prices`` (USD per second by model id or alias) overrides the backend's list prices;
    ``preview`` plans the fast model at the smallest size the backend makes.
    """
    loaded = source if isinstance(source, LoadedStoryboard) else load_storyboard(source)
    loaded = _override(loaded, backend, "fast" if preview and not model else model)
    storyboard = loaded.storyboard
    name = storyboard.generation.backend
    try:
        capabilities = registry.capabilities(name, storyboard.generation.model)
    except EnvironmentProblem as exc:
        if backend:  # came from the command line, not the file
            raise
        raise StoryboardError([loaded.locate("generation.backend", str(exc))]) from None
    capabilities = capabilities.with_prices(prices)
    if preview:
        storyboard = modes.for_preview(storyboard, capabilities)
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
    if preview:
        plan = plan.model_copy(update={"generation": plan.generation.model_copy(update={"mode": "preview"})})
    return loaded, plan


def validate(path: str | Path, *, backend: str | None = None, strict: bool = False) -> Plan:
    """Check a storyboard completely (format, images, planning); returns its plan.

    Prompt-lint warnings (:func:`lint_storyboard`) do not stop it, unless ``strict``: then
    they are raised as a :class:`StoryboardError`, located like any other problem.
    """
    loaded, plan = load_and_plan(path, backend=backend)
    if strict and (warnings := lint(loaded, capabilities=plan.capabilities)):
        raise StoryboardError([w.as_error() for w in warnings])
    return plan


def lint_storyboard(
    source: str | Path | LoadedStoryboard, *, backend: str | None = None
) -> list[LintWarning]:
    """The prompt-lint warnings of a storyboard file (or one already loaded); advice that never blocks a render.

    ``backend`` (else the storyboard's own) is the one the knobs are checked against: a knob
    it cannot take is a ``knob-unsupported`` warning.
    """
    loaded = source if isinstance(source, LoadedStoryboard) else load_storyboard(source)
    generation = loaded.storyboard.generation
    try:
        capabilities = registry.capabilities(backend or generation.backend, generation.model)
    except EnvironmentProblem:
        capabilities = None  # an unknown backend is the planner's error to report, not lint's
    return lint(loaded, capabilities=capabilities)


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


# -- the whole render -----------------------------------------------------------------------------


def render(
    source: str | Path | None,
    out_dir: str | Path | None = None,
    *,
    backend: str | None = None,
    model: str | None = None,
    force: bool = False,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    regenerate: bool | None = None,
    max_attempts: int | None = None,
    continuity: Mapping[str, float] | None = None,
    on_progress: ProgressFn | None = None,
    base_url: str | None = None,
    proxy: str | None = None,
    jobs: JobSettings | None = None,
    prices: Mapping[str, float] | None = None,
    preview: bool = False,
    final_from: str | Path | None = None,
    keep: Sequence[str] = (),
    metrics_file: str | Path | None = None,
) -> RenderResult:
    """Render a storyboard file, or a ``plan.json``, into ``out_dir``; returns what was written.

    The outputs (``part01.mp4``...) are each exactly the storyboard's length, joined with
    crossfades; beside them go ``plan.json``, ``manifest.json`` (every take, its cost and
    timings), ``report.json`` and ``report.html`` (the drift and seam checks) and the timeline.
    ``out_dir`` defaults to ``renders/<stem>/`` (``renders/<stem>-preview/`` for a preview,
    the plan's own folder for a ``plan.json``). Takes come from the cache when the same
    request was made before. Every take is checked for drift and seams and made again when
    a check fails, up to the attempts allowed.

    The keyword arguments are the fields of :class:`RenderOptions`, which documents each;
    ``source`` may be None with ``final_from`` (the preview's storyboard is rendered).
    ``on_progress`` receives a :class:`Progress` for each step.

    Ctrl-C raises :class:`~composer.errors.Interrupted` once finished takes are safely in
    the cache. When segments cannot be made (a safety block, a refused request, the budget),
    the operations in flight are finished and cached, the manifest and the report say what
    happened, and the first failure is raised.
    """
    options = RenderOptions(
        backend=backend,
        model=model,
        force=force,
        cache_dir=Path(cache_dir) if cache_dir is not None else None,
        workers=workers,
        regenerate=regenerate,
        max_attempts=max_attempts,
        continuity=dict(continuity or {}),
        base_url=base_url,
        proxy=proxy,
        jobs=jobs or JobSettings(),
        prices=dict(prices) if prices is not None else None,
        preview=preview,
        final_from=Path(final_from) if final_from is not None else None,
        keep=tuple(keep),
        metrics_file=Path(metrics_file) if metrics_file is not None else None,
    )
    return run(source, options, out_dir, on_progress)


def run(
    source: str | Path | Source | None,
    options: RenderOptions,
    out_dir: str | Path | None = None,
    on_progress: ProgressFn | None = None,
    *,
    limits: Limits | None = None,
) -> RenderResult:
    """:func:`render` with its options given as one value, and its input perhaps read already
    (:func:`~composer.plan.io.read_source`): the stages one after another.

    ``limits`` are shared with other renders (a batch on this machine: ``batch.py``); by
    default the render has its own, from ``options.jobs``.
    """
    started = time.perf_counter()
    progress = on_progress or _quiet
    planned = plan_render(source, options)
    out = Path(out_dir) if out_dir is not None else planned.out_dir
    generated = generate(planned.plan, options, progress, limits=limits)
    return finish(planned, generated, options, out, progress, generate_s=time.perf_counter() - started)


def make_output_folder(out: Path) -> None:
    """Create the output folder ``out``, or say which it is and what to do."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot create the output folder {out} ({exc.strerror}); choose another with -o"
        ) from None


def finish(
    planned: Planned,
    generated: Generated,
    options: RenderOptions,
    out: Path,
    on_progress: ProgressFn | None = None,
    *,
    generate_s: float,
) -> RenderResult:
    """Everything after generation, into ``out``: ``plan.json``, the outputs (:func:`compose`),
    the manifest and the report (:func:`write_artifacts`) and the timeline; raises the
    generation's failure once those are written. ``generate_s``: the seconds planning and
    generating took (for the manifest's timings)."""
    progress = on_progress or _quiet
    plan = planned.plan
    generated_at = time.perf_counter()
    make_output_folder(out)
    plan_path = out / "plan.json"
    write_plan(plan_path, plan)
    previous = {} if options.force else read_outputs(out / "manifest.json")
    try:
        composed = compose(plan, generated, out, previous, progress)
    except KeyboardInterrupt:
        raise Interrupted(
            "stopped while composing; no half-written output was left, and every take is cached"
        ) from None
    finished = time.perf_counter()
    timings = {
        "generate": round(generate_s, 3),
        "compose": round(finished - generated_at, 3),
        "total": round(generate_s + finished - generated_at, 3),
        # What a user waits for after the last take is accepted: its normalising (none for a
        # take generated in the output encoding) and the assembly of the outputs.
        "tail": round(finished - generated_at + generated.since_last_accept_s, 3),
    }
    written = write_artifacts(plan, planned.source_path, out, generated, composed, options, timings, progress)
    if generated.failure is not None:
        failure = generated.failure
        failure.args = (
            f"{failure}\n(the drift report lists what could not be made: {written.report_path.resolve()})",
        )
        failure.manifest_path = written.manifest_path.resolve()
        raise failure
    write_timeline(out, plan, written.manifest, written.report)  # timeline.otio, media/ (docs/timeline.md)
    return RenderResult(
        out.resolve(),
        list(composed.paths.values()),
        plan_path.resolve(),
        written.manifest_path.resolve(),
        written.manifest,
        plan,
        report_path=written.report_path.resolve(),
        report=written.report,
    )


# -- stage 1: the plan ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """The plan to render, the file it came from, and the output folder when none is given."""

    plan: Plan
    source_path: Path
    out_dir: Path


def plan_render(source: str | Path | Source | None, options: RenderOptions) -> Planned:
    """The plan a render makes: the storyboard's (or the ``plan.json``'s), for a preview or the
    final pass of one, with the options' backend, model, prices and continuity laid over it."""
    if options.preview and options.final_from is not None:
        raise PlanError("--preview and --final are two passes: run the preview first, then --final --from it")
    if options.keep and options.final_from is None:
        raise PlanError("--keep picks segments of a preview to finish; use it with --final --from RUN_DIR")
    earlier = read_preview(options.final_from) if options.final_from is not None else None
    if source is None:
        if earlier is None:
            raise PlanError("give a storyboard file (or a plan.json) to render")
        source = earlier[0].storyboard.path
    read = source if isinstance(source, Source) else read_source(source)
    backend, model = options.backend, options.model
    if read.plan is not None:
        if backend or model or options.preview or earlier:
            raise PlanError(
                "a plan.json fixes its backend, model and size; give the storyboard to change them "
                "(--preview and --final plan it again)"
            )
        planned = Planned(read.plan, read.path, read.path.parent)
    else:
        assert read.storyboard is not None  # a Source holds one or the other
        if earlier is not None:
            backend = backend or earlier[0].generation.backend
            model = model or "quality"
        loaded, plan = load_and_plan(
            read.storyboard, backend=backend, model=model, prices=options.prices, preview=options.preview
        )
        out_default = default_out_dir(loaded.path)
        if options.preview:
            out_default = out_default.with_name(out_default.name + "-preview")
        if earlier is not None:
            preview_plan, kept = earlier
            plan = modes.final_plan(
                plan, preview_plan, modes.approved_seeds(preview_plan, kept), options.keep
            )
        planned = Planned(plan, loaded.path, out_default)
    plan = with_continuity(
        planned.plan,
        regenerate=options.regenerate,
        max_attempts=options.max_attempts,
        overrides=dict(options.continuity),
    )
    return Planned(plan, planned.source_path, planned.out_dir)


# -- stage 2: generate and judge ------------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    """What generating and judging left: the kept takes, every take's record, the judge's
    measurements, and the failure that stopped it (None when every segment was made)."""

    result: RunResult
    takes: list[TakeRecord]
    judge: ContinuityJudge
    notes: list[str]
    normalize_s: dict[str, float]
    cache_dir: Path
    remote: bool
    failure: ComposerError | None
    #: Seconds from the last accepted take (or the stage's start) to the stage's end.
    since_last_accept_s: float


def generate(
    plan: Plan,
    options: RenderOptions,
    on_progress: ProgressFn = _quiet,
    *,
    limits: Limits | None = None,
    node: str | None = None,
    judge_offload: Offload | None = None,
) -> Generated:
    """Make every segment of ``plan`` (or take it from the cache), judge it, and make it again
    when a check fails; kept takes are brought to the output's encoding in the background.

    ``limits`` (operations in flight, creates per minute, the budget) may be shared with other
    renders (a batch, a cluster's actor); by default they are this render's, from
    ``options.jobs``. ``node`` names this machine in the takes' records (default: the host name).
    ``judge_offload`` lets the judge measure a take on another machine (a cluster's task).

    A failure that stops the run (a refused request, the budget) is returned, not raised, once
    the operations in flight are finished and cached; Ctrl-C raises
    :class:`~composer.errors.Interrupted`.
    """
    started = time.perf_counter()
    node_name = node or socket.gethostname()
    ffmpeg.ffmpeg_exe()  # fail early, before any generation, if there is no ffmpeg
    settings = plan.continuity
    cache = TakeCache(options.cache_dir)
    total_chunks = plan.api_calls
    done_chunks = 0
    records: list[TakeRecord] = []

    def on_take(event: TakeEvent) -> None:
        nonlocal done_chunks, total_chunks
        made[event.take.key] = event.take
        if stepwise and event.chunk < event.chunks - 1:
            # A step of an API chain: its new part of the leg is encoded now, while the next
            # step is generated, so the chain's end leaves only the last part to encode.
            prepared.append(normalizer.submit(normalize_step, event.segment, event.take))
        done_chunks += 1
        total_chunks = max(total_chunks, done_chunks)  # regenerations add chunks
        records.append(_take_record(event, node_name))
        verb = "cached" if event.cached else "generated"
        on_progress(
            Progress(
                "generate",
                done_chunks,
                total_chunks,
                f"{event.segment} chunk {event.chunk + 1}/{event.chunks} {verb}",
            )
        )

    instance = registry.create(
        plan.generation.backend,
        base_url=options.base_url,
        proxy=options.proxy,
        model=plan.generation.model_id,
    )
    # The budget reads the instance's prices (jobs/remote.py), so overrides must reach it too.
    instance.capabilities = instance.capabilities.with_prices(options.prices)
    judge = ContinuityJudge(plan, settings.overrides(), store=cache.root / "checks")
    judge.node, judge.offload = node_name, judge_offload
    # Encode once: each take is brought to the output's encoding (keyframes where its
    # crossfades fall) in the background while other segments are still being generated, so
    # composing afterwards mostly copies. It starts as soon as a chain is complete, while the
    # judge looks at it: most takes are kept, and a take from an API (never in composer's
    # encoding) otherwise spends the judge's time and then its own encode in the tail. A take
    # the judge turns down has cost CPU time only; its file is cached like any other.
    # An API backend's extension chain is normalised step by step (compose/normalize.py): each
    # step's new frames as the step lands, the last take's only when the chain ends.
    where = {seg.id: (output, i) for output in plan.outputs for i, seg in enumerate(output.segments)}
    normalizer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="composer-normalize")
    prepared: list[Future[object]] = []
    normalize_s: dict[str, float] = {}
    stepwise = not encodes_output(plan.generation.backend)
    made: dict[str, Take] = {}  # every take of this run by key: a chain is found through its parents

    def earlier_steps(take: Take) -> list[Path]:
        steps: list[Path] = []
        parent = take.request.parent
        while parent is not None and parent in made:
            steps.insert(0, made[parent].path)
            parent = made[parent].request.parent
        return steps

    def timed(segment_id: str, began: float) -> None:
        spent = normalize_s.get(segment_id, 0.0) + time.perf_counter() - began
        normalize_s[segment_id] = round(spent, 3)

    def normalize_step(segment_id: str, take: Take) -> None:
        output, index = where[segment_id]
        began = time.perf_counter()
        prepare_step(output, plan.output, index, take, earlier_steps(take))
        timed(segment_id, began)

    def normalize(segment: Segment, take: Take) -> None:
        output, index = where[segment.id]
        began = time.perf_counter()
        steps = earlier_steps(take) if stepwise else []
        prepare_take(output, plan.output, index, take, steps=steps)
        timed(segment.id, began)

    offered: dict[str, list[tuple[str, Future[object]]]] = {}

    def on_candidate(segment: Segment, take: Take) -> None:
        future = normalizer.submit(normalize, segment, take)
        offered.setdefault(segment.id, []).append((take.key, future))
        prepared.append(future)

    last_accept = started

    def on_accept(segment: Segment, take: Take) -> None:
        nonlocal last_accept
        last_accept = time.perf_counter()
        for key, future in offered.pop(segment.id, []):
            if key != take.key:
                future.cancel()  # a take turned down, still waiting its turn: not needed
        # The kept take was offered before it was judged: this finds its file done (or waits
        # for it), and encodes it again only if that attempt failed.
        prepared.append(normalizer.submit(normalize, segment, take))

    try:
        on_progress(
            Progress("generate", 0, total_chunks, f"{len(plan.segments)} segments, {total_chunks} chunks")
        )
        runner = Runner(
            plan,
            instance,
            cache,
            workers=options.workers or min(2, os.cpu_count() or 1),
            force=options.force,
            on_event=on_take,
            judge=judge,
            max_attempts=settings.max_attempts,
            regenerate=settings.regenerate,
            on_accept=on_accept,
            on_candidate=on_candidate,
            jobs=options.jobs,
            limits=limits,
        )
        failure: ComposerError | None = None
        try:
            result = runner.run()
        except ComposerError as exc:
            failure, result = exc, runner.result
        notes = list(plan.notes)
        notes.extend(cache.notes)  # damaged takes quarantined and made again
        for future in prepared:
            error = None if future.cancelled() else future.exception()
            note = f"normalising a take in the background failed: {error}"
            if error is not None and note not in notes:  # composing normalises (or re-encodes) itself
                notes.append(note)
    except KeyboardInterrupt:
        normalizer.shutdown(wait=False, cancel_futures=True)
        raise Interrupted(
            "stopped; every finished take is kept in the cache, so running the same command again resumes"
        ) from None
    finally:
        if not isinstance(instance, RemoteBackend):
            instance.close()  # an API backend's connections were closed on the runner's event loop
        normalizer.shutdown(wait=True, cancel_futures=True)
    order = {s.id: i for i, s in enumerate(plan.segments)}
    records.sort(key=lambda r: (order[r.segment], r.chunk))
    records = [r.model_copy(update={"judged_on": judge.judged_on.get(r.key, "")}) for r in records]
    return Generated(
        result=result,
        takes=records,
        judge=judge,
        notes=notes,
        normalize_s=normalize_s,
        cache_dir=cache.root,
        remote=isinstance(instance, RemoteBackend),
        failure=failure,
        since_last_accept_s=time.perf_counter() - last_accept,
    )


def _take_record(event: TakeEvent, node: str) -> TakeRecord:
    take = event.take
    return TakeRecord(
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
        node=node,
        **_job_fields(event),
    )


# -- stage 3: compose -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Composed:
    """The outputs composed (or kept from an earlier render), and notes on those left out."""

    outputs: list[OutputRecord]
    paths: dict[str, Path]
    notes: list[str]


def compose(
    plan: Plan,
    generated: Generated,
    out: Path,
    previous: Mapping[str, Mapping[str, Any]],
    on_progress: ProgressFn = _quiet,
) -> Composed:
    """Compose into ``out`` every output whose segments were all made; an output whose file and
    inputs match ``previous`` (an earlier manifest's records, by name) is kept as it is.

    Nothing is composed when generation failed (the manifest and the report say why); a final
    render of some segments (``--keep``) composes the outputs made only of those.
    """
    takes = generated.result.segment_takes
    complete = [
        (index, output)
        for index, output in enumerate(plan.outputs)
        if generated.failure is None and all(s.id in takes for s in output.segments)
    ]
    notes: list[str] = []
    if generated.failure is None:
        made = {o.name for _, o in complete}
        notes.extend(
            f"{o.name} was not composed: not all its segments were kept (--keep)"
            for o in plan.outputs
            if o.name not in made
        )
    records, paths = _compose_outputs(plan, complete, takes, out, previous, on_progress)
    return Composed(records, paths, notes)


def _compose_outputs(
    plan: Plan,
    outputs: list[tuple[int, OutputPlan]],
    takes: dict[str, Take],
    out: Path,
    previous: Mapping[str, Mapping[str, Any]],
    report: ProgressFn,
) -> tuple[list[OutputRecord], dict[str, Path]]:
    """Compose each output (or keep the file an earlier render made from the same takes)."""
    fps = parse_fps(plan.output.fps)
    records: list[OutputRecord] = []
    paths: dict[str, Path] = {}
    total_frames = sum(o.frames for _, o in outputs)
    frames_before = 0
    for index, output in outputs:
        dest = out / output.name
        key = _inputs_key(plan, index, [takes[s.id].key for s in output.segments])
        old = previous.get(output.name)
        started = time.perf_counter()
        if old and old["inputs_key"] == key and dest.is_file():
            frames, samples, composed = old["frames"], old["audio_samples"], False
            method, reason = old["method"], old["reason"]
        else:

            def on_frames(done: int, base: int = frames_before, name: str = output.name) -> None:
                report(Progress("compose", base + done, total_frames, name))

            check = compose_output(output, plan.output, takes, dest, on_frames)
            frames, samples, composed = check.frames, check.audio_samples, True
            method, reason = check.method, check.reason
        frames_before += output.frames
        report(Progress("compose", frames_before, total_frames, output.name))
        paths[output.name] = dest.resolve()
        records.append(
            OutputRecord(
                name=output.name,
                path=str(dest.resolve()),
                frames=frames,
                audio_samples=samples,
                duration_s=float(to_seconds(frames, fps)),
                inputs_key=key,
                composed=composed,
                method=method,
                reason=reason,
                compose_s=round(time.perf_counter() - started, 3),
            )
        )
    return records, paths


# -- stage 4: the manifest, the metrics and the report --------------------------------------------


@dataclass(frozen=True)
class Written:
    """The manifest and the drift report a render wrote, and where."""

    manifest_path: Path
    manifest: Manifest
    report_path: Path
    report: Report


def write_artifacts(
    plan: Plan,
    source_path: Path,
    out: Path,
    generated: Generated,
    composed: Composed,
    options: RenderOptions,
    timings: Mapping[str, float],
    on_progress: ProgressFn = _quiet,
) -> Written:
    """Write ``manifest.json``, the metrics file (``options.metrics_file``) and the drift report
    (``report.json``, ``report.html``) into ``out``; a failed render's too, which matter most."""
    notes = [*generated.notes, *composed.notes, *timeline_notes()]  # timeline_notes: when OTIO is missing
    manifest = _manifest(plan, source_path, out / "plan.json", generated, composed, notes, options, timings)
    manifest_path = out / "manifest.json"
    write_json_atomic(manifest_path, manifest.model_dump(mode="json"))
    if options.metrics_file is not None and manifest.metrics is not None:
        title = plan.storyboard.title or Path(plan.storyboard.path).stem
        write_metrics(options.metrics_file, manifest.metrics, {"storyboard": title})
    on_progress(Progress("report", 0, 1, "drift report"))
    result = generated.result
    drift_report = build_report(
        plan,
        composed.paths,
        result,
        generated.judge,
        regenerate=plan.continuity.regenerate,
        max_attempts=plan.continuity.max_attempts,
        problems=[Problem(segment=f.segment, kind=f.kind, message=f.message) for f in result.failures],
        budget_usd=options.jobs.budget_usd,
        metrics=manifest.metrics,
        notes=[_fallback_note(f) for f in result.fallbacks],
        possible_duplicate_charges=manifest.possible_duplicate_charges,
    )
    _, report_html = write_report(drift_report, out)
    on_progress(Progress("report", 1, 1, report_html.name))
    return Written(manifest_path, manifest, report_html, drift_report)


def _fallback_note(fallback: Fallback) -> str:
    return (
        f"{fallback.segment} chunk {fallback.chunk + 1}: the service refused {fallback.model} "
        f"({fallback.reason}); made with the fallback model {fallback.fallback_model}"
    )


def _job_fields(event: TakeEvent) -> dict[str, Any]:
    """The API details of a take for its manifest record (operations, retries, resumption)."""
    job = event.job
    operation = event.take.clip.state.get("operation") if event.take.clip.state else None
    if job is None:
        return {"operations": [operation]} if isinstance(operation, str) else {}
    return {
        "operations": job.operations or ([operation] if isinstance(operation, str) else []),
        "retries": job.retries,
        "polls": job.polls,
        "possible_duplicates": job.possible_duplicates,
        "resumed": job.resumed,
        "submit_s": round(job.submit_s, 3),
        "wait_s": round(job.wait_s, 3),
        "download_s": round(job.download_s, 3),
    }


def _manifest(
    plan: Plan,
    source_path: Path,
    plan_path: Path,
    generated: Generated,
    composed: Composed,
    notes: list[str],
    options: RenderOptions,
    timings: Mapping[str, float],
) -> Manifest:
    result, records = generated.result, generated.takes
    manifest = Manifest(
        composer_version=__version__,
        storyboard=str(source_path.resolve()),
        backend=plan.generation.backend,
        model_id=plan.generation.model_id,
        plan=str(plan_path.resolve()),
        cache_dir=str(generated.cache_dir.resolve()),
        takes=records,
        segments=[
            SegmentRecord(
                id=seg.id, **result.timings[seg.id], normalize_s=generated.normalize_s.get(seg.id, 0.0)
            )
            for seg in plan.segments
            if seg.id in result.timings
        ],
        outputs=composed.outputs,
        cache_hits=result.cache_hits,
        generated=result.generated,
        cost_usd=round(sum(r.cost_usd for r in records), 4),
        possibly_charged_usd=round(
            sum(d.get("possibly_charged_usd", 0.0) for d in result.possible_duplicates), 4
        ),
        timings_s=dict(timings),
        versions=versions(ffmpeg.ffmpeg_version(), ffmpeg.ffmpeg_exe()),
        notes=notes,
        status="failed" if result.failures else "complete",
        failures=[FailureRecord(segment=f.segment, kind=f.kind, message=f.message) for f in result.failures],
        abandoned_operations=result.abandoned,
        possible_duplicate_charges=result.possible_duplicates,
        left_by_earlier_runs=result.leftovers,
        fallbacks=[asdict(f) for f in result.fallbacks],
        budget_usd=options.jobs.budget_usd,
        knobs_not_sent=[
            KnobNotSent(segment=seg.id, knob=knob, value=value, backend=plan.generation.backend)
            for seg in plan.segments
            for knob, value in plan.knobs_not_sent(seg).items()
        ],
    )
    metrics = run_metrics(
        manifest.takes,
        manifest.segments,
        manifest.failures,
        manifest.abandoned_operations,
        backend=manifest.backend,
        model_id=manifest.model_id,
        remote=generated.remote,
        # As the report counts them: kept after the attempts ran out with a check still failing.
        segments_flagged=sum(1 for h in result.histories.values() if h.final.action == "keep_best"),
    )
    return manifest.model_copy(update={"metrics": metrics})


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
