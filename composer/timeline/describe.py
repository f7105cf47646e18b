"""The timeline of a render as plain values: clips, dissolves and markers in whole frames.

What lives here (pure, no OpenTimelineIO, no files): :func:`kept_takes` picks the take each
segment's clip was cut from (plan + manifest + report), :func:`describe` lays a plan out as a
:class:`TimelineSpec` (per output a track of clips and dissolves, markers for regenerations,
flags and warnings, the prompts, takes and check values as metadata), and
:func:`describe_render` does both from the three models a render holds. What does not: reading
a run folder or linking its media (``run.py``), writing any format (``writers.py``), and the
frame arithmetic itself (``plan/timing.py``).

How frames map onto the timeline (``docs/timeline.md``): a clip's cut range is the part of its
take between the two join centres (``nominal_frames`` from ``take_offset + lead_frames``); a
crossfade is a transition whose ``before`` is the incoming segment's lead and whose ``after`` is
the outgoing segment's tail. Transitions overlap their neighbours, so each track lasts exactly
its output's frames, and each clip's visible range is exactly the ``clip_frames`` the compositor
used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from composer.decide import Attempt, Check
from composer.errors import ComposerError
from composer.export.manifest import Manifest
from composer.export.records import TakeRecord
from composer.plan.model import Join, OutputPlan, Plan, Segment
from composer.report.model import OutputReport, Report, SegmentReport
from composer.timecode import parse_fps

#: Bumped when what composer puts in a timeline (its layout, its ``composer`` metadata) changes.
#: 2: audio tracks, unique media names in ``RUN/media/``, timeline markers, image bounds, checks.
TIMELINE_VERSION = 2
#: The metadata namespace composer writes under, on the timeline, tracks, clips and markers.
NAMESPACE = "composer"
#: The folder of a run that its timelines' media are linked into (one file per kept take).
MEDIA_DIR = "media"

MarkerKind = Literal["regenerated", "flagged", "warn"]
_COLORS: dict[MarkerKind, str] = {"regenerated": "BLUE", "flagged": "RED", "warn": "YELLOW"}


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
    ``media_name`` is unique in the render (segment and attempt), ``media_path`` the file a
    timeline points at, ``reel`` the take's reel name for an EDL (unique, at most 8 characters).
    """

    name: str
    segment: str
    take_path: str
    take_frames: int
    start: int
    frames: int
    lead: int
    tail: int
    media_name: str = ""
    media_path: str = ""
    reel: str = ""
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
    """One output: its clips in order, with a dissolve between two clips at each crossfade.

    ``markers`` are the clips' markers in the track's own time (frame 0 = the output's first
    frame), for tools that show timeline markers only.
    """

    name: str
    frames: int
    items: tuple[Item, ...]
    markers: tuple[MarkerSpec, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def clips(self) -> list[ClipSpec]:
        return [i for i in self.items if isinstance(i, ClipSpec)]

    @property
    def transitions(self) -> list[TransitionSpec]:
        return [i for i in self.items if isinstance(i, TransitionSpec)]

    def clip_starts(self) -> list[int]:
        """Where each clip's cut range starts on the track (transitions take no time)."""
        starts, at = [], 0
        for clip in self.clips:
            starts.append(at)
            at += clip.frames
        return starts


@dataclass(frozen=True)
class TimelineSpec:
    """The whole render: one track per output, all at the output rate ``fps``.

    ``audio``: the takes carry sound, so each output gets an audio track beside its video,
    cut and dissolved the same way.
    """

    name: str
    fps: Fraction
    width: int
    height: int
    tracks: tuple[TrackSpec, ...]
    audio: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)


# --- Which take each segment kept --------------------------------------------------------------


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
        chain, number, seed = _kept_chain(seg, records, reports.get(seg.id))
        final = by_key.get(chain[-1])
        if final is None:
            raise ComposerError(
                f"report.json keeps take {chain[-1][:12]} for segment {seg.id}, but manifest.json does not "
                "list it (the two files are from different renders); render again"
            )
        kept[seg.id] = KeptTake(
            key=chain[-1],
            path=final.path,
            frames=take_frames(final, fps),
            chain=chain,
            attempt=number,
            seed=seed,
            cost_usd=cost,
        )
    return kept


def _kept_chain(
    seg: Segment, records: Sequence[TakeRecord], seg_report: SegmentReport | None
) -> tuple[tuple[str, ...], int | None, int | None]:
    """(the kept attempt's chunk keys, its number, its seed); from the manifest alone without a report."""
    if seg_report is not None:
        attempt = seg_report.attempts[seg_report.kept_attempt - 1]
        return tuple(attempt.take_keys), attempt.number, attempt.seed
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
    return tuple(next(iter(chunks[c])) for c in sorted(chunks)), None, None


# --- Names -------------------------------------------------------------------------------------


def media_name(segment: str, attempt: int | None) -> str:
    """The kept take's file name in ``RUN/media/``: unique per segment and attempt.

    Every take in the cache is called ``take.mp4`` (its folder is its key), which bundles
    refuse and EDL reels cannot tell apart.
    """
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", segment) or "segment"
    return f"{stem}-a{attempt}.mp4" if attempt is not None else f"{stem}.mp4"


def reel_names(names: Sequence[str]) -> list[str]:
    """One unique CMX 3600 reel (letters and digits, at most 8) per media name, in order.

    The media name squeezed (``o1-s2-a1.mp4`` -> ``O1S2A1``) while that fits and is unique,
    else a running number (``R0007``): a reel must name exactly one file for an editor to conform.
    """
    reels: list[str] = []
    for index, name in enumerate(names, 1):
        reel = re.sub(r"[^A-Za-z0-9]+", "", Path(name).stem).upper()
        if not reel or len(reel) > 8 or reel in reels:
            reel = f"R{index:04d}"
        reels.append(reel)
    return reels


# --- Markers -----------------------------------------------------------------------------------


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


def check_data(check: Check) -> dict[str, Any]:
    return {
        "check": check.name,
        "verdict": check.verdict,
        "value": check.value,
        "warn": check.warn,
        "regenerate": check.regenerate,
        "onset_s": check.onset_s,
        "chunk": check.chunk,
    }


def _regeneration_markers(
    clip: ClipSpec, seg: SegmentReport, attempts: Mapping[int, Attempt], fps: Fraction
) -> list[MarkerSpec]:
    markers = []
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
                    "segment": seg.id,
                    "attempt": decision.attempt,
                    "reason": decision.reason,
                    "from_chunk": decision.from_chunk,
                    "seed": decision.seed,
                    "onset_s": onset,
                    **({"worst": check_data(worst)} if worst else {}),
                },
            )
        )
    return markers


def _verdict_marker(
    clip: ClipSpec, seg: SegmentReport, attempts: Mapping[int, Attempt], fps: Fraction
) -> MarkerSpec | None:
    """The kept take's flag (kept with a check failing) or warning, or None when it passed."""
    if not (seg.flagged or seg.verdict == "warn"):
        return None
    kept = attempts.get(seg.kept_attempt)
    checks = kept.checks if kept else ()
    final = seg.decisions[-1] if seg.decisions else None
    kind: MarkerKind = "flagged" if seg.flagged else "warn"
    worst = _worst(checks, "regenerate") or _worst(checks, "warn")
    frame, onset = _at(worst, clip, fps)
    if seg.flagged:
        name = f"flagged: {final.reason if final else 'kept with a check failing'}"
    else:
        name = "warning: " + ", ".join(c.name for c in checks if c.verdict == "warn")
    return MarkerSpec(
        kind=kind,
        name=name,
        color=_COLORS[kind],
        frame=frame,
        metadata={
            "kind": kind,
            "segment": seg.id,
            "attempt": seg.kept_attempt,
            "reason": final.reason if final else "",
            "verdict": seg.verdict,
            "onset_s": onset,
            "checks": [check_data(c) for c in checks if c.verdict != "ok"],
        },
    )


def clip_markers(clip: ClipSpec, seg: SegmentReport | None, fps: Fraction) -> tuple[MarkerSpec, ...]:
    """Markers for one clip: each regeneration, and the kept take's flag or warning.

    A seam's check is one of the incoming take's own checks (``seam.previous``), so a failed
    join shows here too, at the cut it judges.
    """
    if seg is None:
        return ()
    attempts = {a.number: a for a in seg.attempts}
    verdict = _verdict_marker(clip, seg, attempts, fps)
    return (*_regeneration_markers(clip, seg, attempts, fps), *([verdict] if verdict else []))


def track_markers(clips: Sequence[ClipSpec], starts: Sequence[int]) -> tuple[MarkerSpec, ...]:
    """The clips' markers moved from take time to the track's time (timeline markers)."""
    return tuple(
        MarkerSpec(m.kind, m.name, m.color, at + m.frame - clip.start, {**m.metadata, "clip": clip.name})
        for clip, at in zip(clips, starts, strict=True)
        for m in clip.markers
    )


# --- Clips, transitions, tracks ----------------------------------------------------------------


def _clip_metadata(
    plan: Plan, output: OutputPlan, seg: Segment, take: KeptTake, rep: SegmentReport | None, media: str
) -> dict[str, Any]:
    final = rep.decisions[-1] if rep and rep.decisions else None
    kept = rep.attempts[rep.kept_attempt - 1] if rep else None
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
        "take": {
            "key": take.key,
            "path": take.path,
            "media": media,
            "frames": take.frames,
            "chain": list(take.chain),
        },
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
        # Every check of the kept attempt with its value and levels, so an editor can sort by them.
        "checks": [check_data(c) for c in kept.checks] if kept else [],
        "cost_usd": take.cost_usd,
        "continues": seg.continues.model_dump() if seg.continues else None,
        "image": seg.image.path if seg.image else None,
    }


def _clip(
    plan: Plan,
    output: OutputPlan,
    seg: Segment,
    take: KeptTake,
    rep: SegmentReport | None,
    media_dir: str | None,
    fps: Fraction,
) -> ClipSpec:
    name = media_name(seg.id, take.attempt)
    media_path = str(Path(media_dir) / name) if media_dir is not None else take.path
    clip = ClipSpec(
        name=f"{seg.id} {seg.scene_id}",
        segment=seg.id,
        take_path=take.path,
        take_frames=take.frames,
        start=seg.take_offset + seg.lead_frames,
        frames=seg.nominal_frames,
        lead=seg.lead_frames,
        tail=seg.tail_frames,
        media_name=name,
        media_path=media_path,
        metadata={NAMESPACE: _clip_metadata(plan, output, seg, take, rep, media_path)},
    )
    return _with(clip, markers=clip_markers(clip, rep, fps))


def _transition(seg: Segment, after: Segment, join: Join, out_report: OutputReport | None) -> TransitionSpec:
    if after.lead_frames + seg.tail_frames != join.frames:
        raise ValueError(
            f"{seg.id} -> {after.id}: handles {seg.tail_frames} + {after.lead_frames} "
            f"do not make the {join.frames}-frame crossfade"
        )
    seam = next((s for s in (out_report.seams if out_report else []) if s.after == after.id), None)
    return TransitionSpec(
        before=after.lead_frames,
        after=seg.tail_frames,
        metadata={
            NAMESPACE: {
                "join": "crossfade",
                "frames": join.frames,
                "before": seg.id,
                "after": after.id,
                "seam": seam.verdict if seam and seam.checked else None,
            }
        },
    )


def _track(
    plan: Plan,
    output: OutputPlan,
    takes: Mapping[str, KeptTake],
    out_report: OutputReport | None,
    output_path: str | None,
    media_dir: str | None,
    fps: Fraction,
) -> TrackSpec:
    seg_reports = {s.id: s for s in (out_report.segments if out_report else [])}
    items: list[Item] = []
    for i, seg in enumerate(output.segments):
        items.append(_clip(plan, output, seg, takes[seg.id], seg_reports.get(seg.id), media_dir, fps))
        if i < len(output.joins):
            join = output.joins[i]
            if join.kind == "crossfade" and join.frames > 0:
                items.append(_transition(seg, output.segments[i + 1], join, out_report))
    clips = [c for c in items if isinstance(c, ClipSpec)]
    frames = sum(c.frames for c in clips)
    if frames != output.frames:
        raise ValueError(f"{output.name}: clips last {frames} frames, the output {output.frames}")
    track = TrackSpec(
        name=output.name,
        frames=output.frames,
        items=tuple(items),
        metadata={
            NAMESPACE: {
                "output": output.name,
                "index": output.index,
                "frames": output.frames,
                "timeline_start": output.timeline_start,
                "path": output_path,
            }
        },
    )
    return _with(track, markers=track_markers(clips, track.clip_starts()))


def _with_reels(tracks: Sequence[TrackSpec]) -> tuple[TrackSpec, ...]:
    """Give every clip of the render its own reel (unique across all outputs)."""
    reels = iter(reel_names([c.media_name for t in tracks for c in t.clips]))
    done = []
    for track in tracks:
        items = tuple(_with(i, reel=next(reels)) if isinstance(i, ClipSpec) else i for i in track.items)
        done.append(_with(track, items=items))
    return tuple(done)


def _timeline_metadata(plan: Plan) -> dict[str, Any]:
    spec = plan.output
    return {
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
    }


def describe(
    plan: Plan,
    takes: Mapping[str, KeptTake],
    report: Report | None = None,
    output_paths: Mapping[str, str] | None = None,
    *,
    media_dir: str | None = None,
    audio: bool = True,
) -> TimelineSpec:
    """The timeline of ``plan`` cut from ``takes`` (see :func:`kept_takes`), marked from ``report``.

    Pure. ``media_dir``: the folder the kept takes are (to be) linked into under their unique
    names (``RUN/media``); None points the clips at the takes themselves. Every track lasts
    exactly its output's frames; raises ValueError if the plan's handles do not add up to its
    joins (which the planner never produces).
    """
    fps = parse_fps(plan.output.fps)
    out_reports = {o.name: o for o in (report.outputs if report else [])}
    tracks = [
        _track(
            plan,
            output,
            takes,
            out_reports.get(output.name),
            (output_paths or {}).get(output.name),
            media_dir,
            fps,
        )
        for output in plan.outputs
    ]
    return TimelineSpec(
        name=plan.storyboard.title or Path(plan.storyboard.path).stem,
        fps=fps,
        width=plan.output.width,
        height=plan.output.height,
        tracks=_with_reels(tracks),
        audio=audio,
        metadata=_timeline_metadata(plan),
    )


def describe_render(
    plan: Plan, manifest: Manifest, report: Report | None, folder: Path | None = None
) -> TimelineSpec:
    """The timeline of a finished render from its three models (what ``plan.json``,
    ``manifest.json`` and ``report.json`` hold); its media in ``folder/media`` when given.

    Only the outputs the manifest lists are laid out: a final render of some segments
    (``--keep``) composes only the outputs made of them. The takes carry sound when the
    outputs do. Raises ComposerError for a render that did not finish.
    """
    if manifest.status != "complete" or not manifest.outputs:
        where = f" in {folder}" if folder is not None else ""
        raise ComposerError(
            f"the render{where} did not finish (manifest status: {manifest.status}), so it has no "
            "outputs to put on a timeline; render again"
        )
    composed = {o.name for o in manifest.outputs}
    plan = plan.model_copy(update={"outputs": tuple(o for o in plan.outputs if o.name in composed)})
    return describe(
        plan,
        kept_takes(plan, manifest, report),
        report,
        {o.name: o.path for o in manifest.outputs},
        media_dir=str((folder / MEDIA_DIR).absolute()) if folder is not None else None,
        audio=all(o.audio_samples for o in manifest.outputs),
    )


def media_links(spec: TimelineSpec) -> dict[str, str]:
    """Media path on the timeline -> the take file it is a link to (each once)."""
    return {c.media_path: c.take_path for t in spec.tracks for c in t.clips if c.media_path != c.take_path}


def _with(obj: Any, **changes: Any) -> Any:
    return replace(obj, **changes)
