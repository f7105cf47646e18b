"""``timeline.otio``: a render's edit as an OpenTimelineIO timeline, and its FCPXML and EDL exports.

What lives here, in three layers:

* **The description** (pure, no OpenTimelineIO needed): :func:`kept_takes` picks the take each
  segment's clip was cut from (plan + manifest + report), and :func:`describe` lays a plan
  out as a :class:`TimelineSpec`: per output a track of clips and dissolves in whole frames,
  with markers for regenerations and drift, and the prompts and take details as metadata.
* **The run folder** (I/O): :func:`load_run`, :func:`export` (``composer export``) and
  :func:`write_timeline` (the end of every render).
* **The writer**: the only code in composer that imports ``opentimelineio`` (and through it
  the FCPXML and CMX 3600 adapter plug-ins). It is imported lazily, so composer works without
  the ``[edit]`` extra; only writing a timeline needs it.

How frames map onto OTIO (see ``docs/timeline.md``): a clip's ``source_range`` is the part of
its take between the two join centres (``nominal_frames``, from ``take_offset + lead_frames``);
a crossfade is a ``Transition`` whose ``in_offset`` is the incoming segment's lead and whose
``out_offset`` is the outgoing segment's tail. OTIO transitions overlap their neighbours, so
each track lasts exactly its output's frames, and each clip's ``visible_range()`` is exactly
the ``clip_frames`` the compositor used. What does not live here: the frame arithmetic itself
(``plan/timing.py``) or composing video (``compose/``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from composer.decide import Attempt, Check
from composer.errors import ComposerError, EnvironmentProblem
from composer.export.manifest import Manifest, TakeRecord
from composer.files import write_text_atomic
from composer.plan.model import OutputPlan, Plan, Segment
from composer.report.model import OutputReport, Report, SegmentReport
from composer.timecode import parse_fps

#: Bumped when what composer puts in a timeline (its layout, its ``composer`` metadata) changes.
TIMELINE_VERSION = 1
#: The metadata namespace composer writes under, on the timeline, tracks, clips and markers.
NAMESPACE = "composer"

Format = Literal["otio", "fcpxml", "edl"]
FORMATS: tuple[Format, ...] = ("otio", "fcpxml", "edl")
_EXTENSIONS: dict[Format, str] = {"otio": ".otio", "fcpxml": ".fcpxml", "edl": ".edl"}
# (otio adapter name, the package that provides it) for each format.
_ADAPTERS: dict[Format, tuple[str, str]] = {
    "otio": ("otio_json", "opentimelineio"),
    "fcpxml": ("fcpx_xml", "otio-fcpx-xml-adapter"),
    "edl": ("cmx_3600", "otio-cmx3600-adapter"),
}
# otio-fcpx-xml-adapter 1.0 maps rates through a fixed table and truncates rates to integers
# when reading; only these whole rates survive a round trip exactly.
FCPXML_RATES = frozenset({24, 25, 30, 50, 60})
INSTALL_HINT = "install with pip install 'composer[edit]'"

MarkerKind = Literal["regenerated", "flagged", "warn"]
_COLORS: dict[MarkerKind, str] = {"regenerated": "BLUE", "flagged": "RED", "warn": "YELLOW"}


# --- The description (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class KeptTake:
    """The take a segment's clip is cut from: the last chunk of the attempt that was kept."""

    key: str
    path: str
    frames: int  # the whole take, in output frames
    chain: tuple[str, ...] = ()  # every chunk of the kept attempt, first to last
    attempt: int | None = None  # the attempt kept (None without a report)
    seed: int | None = None  # that attempt's seed
    cost_usd: float = 0.0  # what this render paid for the segment, every attempt included


@dataclass(frozen=True)
class MarkerSpec:
    """A point marker at ``frame`` of the clip's take (OTIO marks a clip in its source's time)."""

    kind: MarkerKind
    name: str
    color: str
    frame: int
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClipSpec:
    """One segment on its track: ``frames`` frames of its take from ``start``, plus handles.

    ``lead`` frames before ``start`` and ``tail`` frames after the cut range are what the
    neighbouring dissolves show; together they are the ``clip_frames`` the compositor used.
    """

    name: str
    segment: str
    take_path: str
    take_frames: int
    start: int
    frames: int
    lead: int
    tail: int
    markers: tuple[MarkerSpec, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def visible_start(self) -> int:
        return self.start - self.lead

    @property
    def visible_frames(self) -> int:
        return self.lead + self.frames + self.tail


@dataclass(frozen=True)
class TransitionSpec:
    """A centred crossfade: ``before`` frames ahead of the cut (OTIO ``in_offset``), ``after`` past it."""

    before: int
    after: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return self.before + self.after


Item = ClipSpec | TransitionSpec


@dataclass(frozen=True)
class TrackSpec:
    """One output: its clips in order, with a dissolve between two clips at each crossfade."""

    name: str
    frames: int
    items: tuple[Item, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def clips(self) -> list[ClipSpec]:
        return [i for i in self.items if isinstance(i, ClipSpec)]

    @property
    def transitions(self) -> list[TransitionSpec]:
        return [i for i in self.items if isinstance(i, TransitionSpec)]


@dataclass(frozen=True)
class TimelineSpec:
    """The whole render: one track per output, all at the output rate ``fps``."""

    name: str
    fps: Fraction
    tracks: tuple[TrackSpec, ...]
    metadata: dict[str, Any] = field(default_factory=dict)


def take_frames(record: TakeRecord, fps: Fraction) -> int:
    """A take's length in output frames (a backend may deliver at its own rate)."""
    return round(Fraction(record.duration_s) * fps)


def kept_takes(plan: Plan, manifest: Manifest, report: Report | None = None) -> dict[str, KeptTake]:
    """Segment id -> the take its clip comes from.

    ``manifest.json`` lists every take the render touched (each attempt, each extension chunk)
    but not which one each segment kept; ``report.json`` says which attempt was kept, and that
    attempt's last chunk is the take. Without a report the manifest alone does when no segment
    was made more than once. Raises ComposerError when the files do not fit together.
    """
    fps = parse_fps(plan.output.fps)
    by_key: dict[str, TakeRecord] = {}
    by_segment: dict[str, list[TakeRecord]] = {}
    for record in manifest.takes:
        by_key.setdefault(record.key, record)
        by_segment.setdefault(record.segment, []).append(record)
    reports = {s.id: s for o in (report.outputs if report else []) for s in o.segments}
    kept: dict[str, KeptTake] = {}
    for seg in plan.segments:
        records = by_segment.get(seg.id, [])
        # A cached take costs nothing and is listed with 0, so this is what the render paid.
        cost = round(sum(r.cost_usd for r in records), 4)
        seg_report = reports.get(seg.id)
        if seg_report is not None:
            attempt = seg_report.attempts[seg_report.kept_attempt - 1]
            key = attempt.take_keys[-1]
            chain, number, seed = attempt.take_keys, attempt.number, attempt.seed
        else:
            chunks: dict[int, set[str]] = {}
            for r in records:
                chunks.setdefault(r.chunk, set()).add(r.key)
            if not chunks:
                raise ComposerError(f"manifest.json lists no take for segment {seg.id}; render again")
            if any(len(keys) > 1 for keys in chunks.values()):
                raise ComposerError(
                    f"segment {seg.id} was made more than once and report.json, which says which "
                    "attempt was kept, is missing; render again to write it"
                )
            chain = tuple(next(iter(chunks[c])) for c in sorted(chunks))
            key, number, seed = chain[-1], None, None
        final = by_key.get(key)
        if final is None:
            raise ComposerError(
                f"report.json keeps take {key[:12]} for segment {seg.id}, but manifest.json does not "
                "list it (the two files are from different renders); render again"
            )
        kept[seg.id] = KeptTake(
            key=key,
            path=final.path,
            frames=take_frames(final, fps),
            chain=tuple(chain),
            attempt=number,
            seed=seed,
            cost_usd=cost,
        )
    return kept


def _worst(checks: Sequence[Check], verdict: str) -> Check | None:
    found = [c for c in checks if c.verdict == verdict]
    return max(found, key=lambda c: c.severity) if found else None


def _at(check: Check | None, clip: ClipSpec, fps: Fraction) -> tuple[int, float | None]:
    """The take frame to mark for ``check``: where its problem began, kept inside the cut range.

    A marker outside the clip's cut range would not show on the timeline, so an onset in a
    handle (or past the end) is moved to the nearest frame that shows.
    """
    onset = check.onset_s if check is not None else None
    frame = clip.start if onset is None else round(Fraction(onset) * fps)
    return min(max(frame, clip.start), clip.start + max(0, clip.frames - 1)), onset


def _check_data(check: Check) -> dict[str, Any]:
    return {
        "check": check.name,
        "verdict": check.verdict,
        "value": check.value,
        "warn": check.warn,
        "regenerate": check.regenerate,
        "onset_s": check.onset_s,
        "chunk": check.chunk,
    }


def _markers(clip: ClipSpec, seg: SegmentReport | None, fps: Fraction) -> tuple[MarkerSpec, ...]:
    """Markers for one clip: each regeneration, and the kept take's flag or warning.

    A seam's check is one of the incoming take's own checks (``seam.previous``), so a failed
    join shows here too, at the cut it judges.
    """
    if seg is None:
        return ()
    markers: list[MarkerSpec] = []
    attempts: dict[int, Attempt] = {a.number: a for a in seg.attempts}
    for decision in seg.decisions:
        if decision.action != "regenerate":
            continue
        judged = attempts.get(decision.attempt)
        worst = _worst(judged.checks, "regenerate") if judged else None
        frame, onset = _at(worst, clip, fps)
        what = f"{worst.name} {worst.value:.3g} past {worst.regenerate:.3g}" if worst else "a check failed"
        markers.append(
            MarkerSpec(
                kind="regenerated",
                name=f"regenerated attempt {decision.attempt}: {what}",
                color=_COLORS["regenerated"],
                frame=frame,
                metadata={
                    "kind": "regenerated",
                    "attempt": decision.attempt,
                    "reason": decision.reason,
                    "from_chunk": decision.from_chunk,
                    "seed": decision.seed,
                    "onset_s": onset,
                    **({"worst": _check_data(worst)} if worst else {}),
                },
            )
        )
    kept = attempts.get(seg.kept_attempt)
    checks = kept.checks if kept else ()
    final = seg.decisions[-1] if seg.decisions else None
    if seg.flagged or seg.verdict == "warn":
        kind: MarkerKind = "flagged" if seg.flagged else "warn"
        worst = _worst(checks, "regenerate") or _worst(checks, "warn")
        frame, onset = _at(worst, clip, fps)
        if seg.flagged:
            name = f"flagged: {final.reason if final else 'kept with a check failing'}"
        else:
            name = "warning: " + ", ".join(c.name for c in checks if c.verdict == "warn")
        markers.append(
            MarkerSpec(
                kind=kind,
                name=name,
                color=_COLORS[kind],
                frame=frame,
                metadata={
                    "kind": kind,
                    "attempt": seg.kept_attempt,
                    "reason": final.reason if final else "",
                    "verdict": seg.verdict,
                    "onset_s": onset,
                    "checks": [_check_data(c) for c in checks if c.verdict != "ok"],
                },
            )
        )
    return tuple(markers)


def _clip_metadata(
    plan: Plan, output: OutputPlan, seg: Segment, take: KeptTake, rep: SegmentReport | None
) -> dict[str, Any]:
    final = rep.decisions[-1] if rep and rep.decisions else None
    return {
        "segment": seg.id,
        "output": output.name,
        "scene_id": seg.scene_id,
        "scene_index": seg.scene_index,
        "part": seg.part,
        "prompt": seg.prompt,
        "negative_prompt": seg.negative_prompt,
        "camera": seg.camera,
        # The image-guidance knobs the take was asked for, and those its backend could not take.
        "knobs": plan.knobs_sent(seg),
        "knobs_not_sent": plan.knobs_not_sent(seg),
        "seed": take.seed if take.seed is not None else seg.seed,
        "planned_seed": seg.seed,
        "backend": plan.generation.backend,
        "model": plan.generation.model_id,
        "take": {"key": take.key, "path": take.path, "frames": take.frames, "chain": list(take.chain)},
        "frames": {
            "nominal": seg.nominal_frames,
            "lead": seg.lead_frames,
            "tail": seg.tail_frames,
            "clip": seg.clip_frames,
            "take_offset": seg.take_offset,
            "timeline_start": seg.timeline_start,
        },
        "attempts": len(rep.attempts) if rep else None,
        "attempt_kept": take.attempt,
        "verdict": rep.verdict if rep else None,
        "regenerated": rep.regenerated if rep else None,
        "flagged": rep.flagged if rep else None,
        "decision": final.reason if final else None,
        "cost_usd": take.cost_usd,
        "continues": seg.continues.model_dump() if seg.continues else None,
        "image": seg.image.path if seg.image else None,
    }


def describe(
    plan: Plan,
    takes: dict[str, KeptTake],
    report: Report | None = None,
    output_paths: dict[str, str] | None = None,
) -> TimelineSpec:
    """The timeline of ``plan`` cut from ``takes`` (see :func:`kept_takes`), marked from ``report``.

    Pure. Every track lasts exactly its output's frames; raises ValueError if the plan's
    handles do not add up to its joins (which the planner never produces).
    """
    fps = parse_fps(plan.output.fps)
    out_reports: dict[str, OutputReport] = {o.name: o for o in (report.outputs if report else [])}
    tracks = []
    for output in plan.outputs:
        out_report = out_reports.get(output.name)
        seg_reports = {s.id: s for s in (out_report.segments if out_report else [])}
        seams = {s.after: s for s in (out_report.seams if out_report else [])}
        items: list[Item] = []
        for i, seg in enumerate(output.segments):
            take = takes[seg.id]
            clip = ClipSpec(
                name=f"{seg.id} {seg.scene_id}",
                segment=seg.id,
                take_path=take.path,
                take_frames=take.frames,
                start=seg.take_offset + seg.lead_frames,
                frames=seg.nominal_frames,
                lead=seg.lead_frames,
                tail=seg.tail_frames,
            )
            rep = seg_reports.get(seg.id)
            items.append(
                replace(
                    clip,
                    markers=_markers(clip, rep, fps),
                    metadata={NAMESPACE: _clip_metadata(plan, output, seg, take, rep)},
                )
            )
            if i == len(output.joins):
                break
            join, after = output.joins[i], output.segments[i + 1]
            if join.kind == "crossfade" and join.frames > 0:
                if after.lead_frames + seg.tail_frames != join.frames:
                    raise ValueError(
                        f"{seg.id} -> {after.id}: handles {seg.tail_frames} + {after.lead_frames} "
                        f"do not make the {join.frames}-frame crossfade"
                    )
                next_seam = seams.get(after.id)
                items.append(
                    TransitionSpec(
                        before=after.lead_frames,
                        after=seg.tail_frames,
                        metadata={
                            NAMESPACE: {
                                "join": "crossfade",
                                "frames": join.frames,
                                "before": seg.id,
                                "after": after.id,
                                "seam": next_seam.verdict if next_seam and next_seam.checked else None,
                            }
                        },
                    )
                )
        frames = sum(c.frames for c in items if isinstance(c, ClipSpec))
        if frames != output.frames:
            raise ValueError(f"{output.name}: clips last {frames} frames, the output {output.frames}")
        tracks.append(
            TrackSpec(
                name=output.name,
                frames=output.frames,
                items=tuple(items),
                metadata={
                    NAMESPACE: {
                        "output": output.name,
                        "index": output.index,
                        "frames": output.frames,
                        "timeline_start": output.timeline_start,
                        "path": (output_paths or {}).get(output.name),
                    }
                },
            )
        )
    spec = plan.output
    return TimelineSpec(
        name=plan.storyboard.title or Path(plan.storyboard.path).stem,
        fps=fps,
        tracks=tuple(tracks),
        metadata={
            NAMESPACE: {
                "timeline_version": TIMELINE_VERSION,
                "composer_version": plan.composer_version,
                "title": plan.storyboard.title,
                "storyboard": plan.storyboard.path,
                "fps": spec.fps,
                "width": spec.width,
                "height": spec.height,
                "frames_per_output": spec.frames,
                "crossfade_frames": spec.crossfade_frames,
                "backend": plan.generation.backend,
                "model": plan.generation.model_id,
                "outputs": [o.name for o in plan.outputs],
            }
        },
    )


# --- The run folder ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """What a render folder holds that a timeline is made from."""

    folder: Path
    plan: Plan
    manifest: Manifest
    report: Report | None


def _read(path: Path, model: type[BaseModel], what: str) -> Any:
    try:
        return model.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ComposerError(
            f"{path} not found; give the folder a render wrote (it holds plan.json and manifest.json)"
        ) from None
    except (OSError, ValidationError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ComposerError(
            f"{path} is not a composer {what} ({first}); render again to rewrite it"
        ) from None


def load_run(folder: Path) -> Run:
    """Read ``plan.json`` and ``manifest.json`` (and ``report.json`` when present) from ``folder``."""
    plan: Plan = _read(folder / "plan.json", Plan, "plan")
    manifest: Manifest = _read(folder / "manifest.json", Manifest, "manifest")
    report_path = folder / "report.json"
    report: Report | None = _read(report_path, Report, "report") if report_path.is_file() else None
    if manifest.status != "complete" or not manifest.outputs:
        raise ComposerError(
            f"the render in {folder} did not finish (manifest status: {manifest.status}), so it has no "
            "outputs to put on a timeline; render again"
        )
    # A final render of some segments (--keep) composes only the outputs made of them.
    composed = {o.name for o in manifest.outputs}
    plan = plan.model_copy(update={"outputs": tuple(o for o in plan.outputs if o.name in composed)})
    return Run(folder, plan, manifest, report)


def describe_run(run: Run) -> TimelineSpec:
    return describe(
        run.plan,
        kept_takes(run.plan, run.manifest, run.report),
        run.report,
        {o.name: o.path for o in run.manifest.outputs},
    )


def default_path(folder: Path, fmt: Format) -> Path:
    return folder / f"timeline{_EXTENSIONS[fmt]}"


def edl_paths(dest: Path, tracks: Sequence[TrackSpec]) -> list[Path]:
    """An EDL holds one track: with several outputs, one file each, named after the output."""
    if len(tracks) == 1:
        return [dest]
    return [dest.with_name(f"{dest.stem}-{Path(t.name).stem}{dest.suffix}") for t in tracks]


def available() -> bool:
    """Whether OpenTimelineIO is installed (the ``[edit]`` extra)."""
    return find_spec("opentimelineio") is not None


def export(folder: Path, fmt: Format = "otio", dest: Path | None = None) -> list[Path]:
    """Write the timeline of the render in ``folder`` as ``fmt``; returns the files written.

    ``dest`` defaults to ``folder/timeline.<ext>``. EDL holds a single track, so a render with
    several outputs gets one EDL per output (``timeline-part01.edl``, ...); FCPXML puts each
    output in a project of its own, in one file.
    """
    if fmt not in FORMATS:
        raise ComposerError(f"unknown timeline format {fmt!r}; choose one of {', '.join(FORMATS)}")
    otio = _library(fmt)
    spec = describe_run(load_run(folder))
    dest = dest if dest is not None else default_path(folder, fmt)
    texts = _write_strings(otio, spec, fmt)
    paths = edl_paths(dest, spec.tracks) if fmt == "edl" else [dest]
    for path, text in zip(paths, texts, strict=True):
        _write_text_atomic(path, text)
    return paths


def to_strings(spec: TimelineSpec, fmt: Format) -> list[str]:
    """The text of ``spec`` as ``fmt`` without writing it (EDL: one text per output)."""
    if fmt not in FORMATS:
        raise ComposerError(f"unknown timeline format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return _write_strings(_library(fmt), spec, fmt)


def write_timeline(folder: Path) -> Path | None:
    """``folder/timeline.otio`` for the render just written there; None without OpenTimelineIO.

    A timeline left by an earlier render is removed when none can be written, since it would
    describe takes this render may no longer use.
    """
    if not available():
        default_path(folder, "otio").unlink(missing_ok=True)
        return None
    return export(folder, "otio")[0]


def timeline_notes() -> list[str]:
    """The note a render adds to its manifest when it cannot write ``timeline.otio``."""
    if available():
        return []
    return [f"timeline.otio was not written: it needs OpenTimelineIO; {INSTALL_HINT}"]


def _write_text_atomic(path: Path, text: str) -> None:
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot write {path} ({exc.strerror}); choose another file with -o"
        ) from None


# --- The writer: the one place that imports opentimelineio ----------------------------------


def _library(fmt: Format) -> Any:
    """The ``opentimelineio`` module, with the adapter ``fmt`` needs; EnvironmentProblem if absent."""
    try:
        import opentimelineio  # type: ignore[import-untyped]  # (it ships no type hints)
    except ImportError:
        raise EnvironmentProblem(f"writing a timeline needs OpenTimelineIO; {INSTALL_HINT}") from None
    adapter, package = _ADAPTERS[fmt]
    names = {a.name for a in opentimelineio.plugins.ActiveManifest().adapters}
    if adapter not in names:
        raise EnvironmentProblem(
            f"{fmt} export needs the {package} package (OpenTimelineIO's {adapter} adapter); {INSTALL_HINT}"
        )
    return opentimelineio


def to_otio(spec: TimelineSpec, tracks: Sequence[TrackSpec] | None = None) -> Any:
    """An ``opentimelineio.schema.Timeline`` of ``spec`` (only ``tracks`` of it, when given)."""
    otio = _library("otio")
    rate = float(spec.fps)

    def t(frames: int) -> Any:
        return otio.opentime.RationalTime(frames, rate)

    def span(start: int, frames: int) -> Any:
        return otio.opentime.TimeRange(t(start), t(frames))

    timeline = otio.schema.Timeline(name=spec.name, global_start_time=t(0))
    timeline.metadata[NAMESPACE] = spec.metadata.get(NAMESPACE, {})
    for track_spec in spec.tracks if tracks is None else tracks:
        track = otio.schema.Track(name=track_spec.name, kind=otio.schema.TrackKind.Video)
        track.metadata.update(track_spec.metadata)
        for item in track_spec.items:
            if isinstance(item, TransitionSpec):
                track.append(
                    otio.schema.Transition(
                        name="crossfade",
                        transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
                        in_offset=t(item.before),
                        out_offset=t(item.after),
                        metadata=item.metadata,
                    )
                )
                continue
            reference = otio.schema.ExternalReference(
                target_url=Path(item.take_path).absolute().as_uri(),
                available_range=span(0, item.take_frames),
            )
            # Every take file is called take.mp4 (its folder is its key): name the reference
            # after the key so tools that label media by name (EDL reels) tell takes apart.
            reference.name = item.metadata.get(NAMESPACE, {}).get("take", {}).get("key", "")[:12]
            clip = otio.schema.Clip(
                name=item.name,
                media_reference=reference,
                source_range=span(item.start, item.frames),
                metadata=item.metadata,
            )
            for m in item.markers:
                clip.markers.append(
                    otio.schema.Marker(
                        name=m.name,
                        marked_range=span(m.frame, 0),
                        color=getattr(otio.schema.MarkerColor, m.color),
                        metadata={NAMESPACE: m.metadata},
                    )
                )
            track.append(clip)
        timeline.tracks.append(track)
    return timeline


def _write_strings(otio: Any, spec: TimelineSpec, fmt: Format) -> list[str]:
    """The file contents for ``fmt``: one string, or one per output for EDL.

    Each export builds fresh OTIO objects: the CMX 3600 writer rewrites the ranges of the
    timeline it is given.
    """
    if fmt == "otio":
        return [otio.adapters.write_to_string(to_otio(spec), "otio_json")]
    if fmt == "fcpxml":
        if spec.fps.denominator != 1 or spec.fps.numerator not in FCPXML_RATES:
            raise ComposerError(
                f"FCPXML export (otio-fcpx-xml-adapter) handles {', '.join(map(str, sorted(FCPXML_RATES)))} "
                f"fps exactly; this render is at {float(spec.fps):g} fps: export otio or edl instead"
            )
        timelines = [to_otio(spec, [track]) for track in spec.tracks]
        for timeline, track in zip(timelines, spec.tracks, strict=True):
            timeline.name = f"{spec.name} {Path(track.name).stem}" if len(timelines) > 1 else spec.name
            _one_line_names(timeline)  # XML 1.0 has no place for most control characters
        if len(timelines) == 1:
            return [otio.adapters.write_to_string(timelines[0], "fcpx_xml")]
        collection = otio.schema.SerializableCollection(name=spec.name, children=timelines)
        return [otio.adapters.write_to_string(collection, "fcpx_xml")]
    _check_edl_rate(otio, spec.fps)
    texts = []
    for track in spec.tracks:
        timeline = to_otio(spec, [track])
        timeline.name = f"{spec.name} {Path(track.name).stem}"
        for clip in timeline.find_clips():
            # A reel names the source in 8 characters: the take's key, which is unique.
            clip.metadata["cmx_3600"] = {"reel": clip.media_reference.name[:8]}
        _one_line_names(timeline)
        texts.append(otio.adapters.write_to_string(timeline, "cmx_3600"))
    return texts


def _check_edl_rate(otio: Any, fps: Fraction) -> None:
    """A clear error where the CMX 3600 writer would end in a traceback: its SMPTE timecode
    has no frame count for rates such as 12 or 15 fps."""
    try:
        otio.opentime.RationalTime(1, float(fps)).to_timecode(float(fps))
    except ValueError:
        raise ComposerError(
            f"an EDL counts time in SMPTE timecode, which has no {float(fps):g} fps "
            "(it has 23.976, 24, 25, 29.97, 30, 48, 50, 59.94 and 60): export otio instead"
        ) from None


def _one_line_names(timeline: Any) -> None:
    """Control characters out of every name: an EDL is one event per line, so a newline in a
    storyboard title or a marker would write an event line of its own (and XML 1.0 cannot
    hold most of them)."""
    items = [timeline, *timeline.tracks, *timeline.find_children()]
    for item in items:
        item.name = _CONTROL.sub(" ", item.name or "")
        for marker in getattr(item, "markers", ()):
            marker.name = _CONTROL.sub(" ", marker.name or "")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
