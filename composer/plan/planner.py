"""The planner (pure): storyboard + backend capabilities -> :class:`Plan`.

1. Scenes are laid on one timeline in whole frames (boundaries rounded cumulatively, so
   rounding never adds up).
2. The timeline is cut into outputs of exactly ``length_s * fps`` frames. A remainder is
   handled by ``output.remainder``: ``extend`` lengthens the last scene, ``drop`` leaves the
   partial output out, ``error`` refuses.
3. Each scene's part of an output is cut into segments of about ``segment_s`` (never across
   scenes, never longer than one backend chain can make).
4. Joins get centred crossfades (see ``timing.py``); each segment's clip is its share plus
   handles, so every output is exactly its frame count.
5. Each segment becomes chunks: a base generation plus extensions, read from capabilities.
6. A segment that follows another of the same scene starts from the frame where their
   crossfade begins, so the fade joins matching moments.

No file, network or subprocess is touched here: image hashes come in as arguments.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction

from composer.backends.base import Capabilities, Size
from composer.errors import PlanError
from composer.plan import timing
from composer.plan.model import (
    Chunk,
    Continuation,
    GenerationSpec,
    Join,
    OutputPlan,
    OutputSpec,
    Plan,
    Segment,
    SourceImage,
    StoryboardRef,
)
from composer.storyboard.model import Storyboard
from composer.timecode import fps_text, to_frames


def _frac(seconds: float) -> Fraction:
    return Fraction(str(seconds))


def plan_chunks(clip_frames: int, fps: Fraction, caps: Capabilities) -> tuple[Chunk, ...]:
    """The cheapest base + extensions covering ``clip_frames`` (fewest calls on a tie)."""
    need = Fraction(clip_frames) / fps
    bases = sorted(_frac(b) for b in caps.base_durations_s)
    for base in bases:
        if base >= need:
            return (Chunk(index=0, kind="generate", duration_s=float(base), total_s=float(base)),)
    if caps.extension_step_s is None or caps.max_extensions == 0:
        raise PlanError(
            f"a {float(need):.2f} s clip is longer than {caps.name} can make "
            f"({float(bases[-1]):g} s); use a shorter generation.segment_s"
        )
    step = _frac(caps.extension_step_s)
    best: tuple[Fraction, int, Fraction] | None = None
    for base in sorted(_frac(b) for b in (caps.extendable_base_durations_s or caps.base_durations_s)):
        count = max(0, math.ceil((need - base) / step))
        total = base + count * step
        if count > caps.max_extensions or total > _frac(caps.max_total_s):
            continue
        candidate = (total, count, base)
        if best is None or candidate < best:
            best = candidate
    if best is None:
        raise PlanError(
            f"a {float(need):.2f} s clip is longer than one {caps.name} chain can make "
            f"({caps.longest_clip_s:g} s); use a shorter generation.segment_s"
        )
    total, count, base = best
    chunks = [Chunk(index=0, kind="generate", duration_s=float(base), total_s=float(base))]
    for i in range(1, count + 1):
        chunks.append(Chunk(index=i, kind="extend", duration_s=float(step), total_s=float(base + i * step)))
    return tuple(chunks)


def choose_size(wanted: Size, caps: Capabilities, extending: bool) -> Size:
    """The size to generate at: the output's if allowed, else the closest allowed one."""
    allowed = caps.extension_resolutions if extending and caps.extension_resolutions else caps.resolutions
    if allowed is None or wanted in allowed:
        return wanted
    landscape = wanted[0] >= wanted[1]
    same_shape = [s for s in allowed if (s[0] >= s[1]) == landscape] or list(allowed)
    big_enough = sorted(
        (s for s in same_shape if s[0] >= wanted[0] and s[1] >= wanted[1]), key=lambda s: s[0] * s[1]
    )
    if big_enough:
        return big_enough[0]
    return max(same_shape, key=lambda s: s[0] * s[1])


def _scene_frames(storyboard: Storyboard, fps: Fraction) -> list[int]:
    boundaries, total = [], Fraction(0)
    for scene in storyboard.scenes:
        total += _frac(scene.duration_s)
        boundaries.append(to_frames(total, fps))
    return [b - a for a, b in zip([0, *boundaries[:-1]], boundaries, strict=False)]


def _check_settings(storyboard: Storyboard, fps: Fraction, length: int, fade: int, target: int) -> None:
    out = storyboard.output
    if length < 2:
        raise PlanError(
            f"output.length_s {out.length_s:g} s is less than two frames at {fps_text(fps)} fps",
            "output.length_s",
        )
    if fade * 2 > length:
        raise PlanError(
            f"crossfade {out.crossfade_s:g} s is longer than half the {out.length_s:g} s output; use a shorter output.crossfade_s",
            "output.crossfade_s",
        )
    if target < 1:
        raise PlanError(
            f"generation.segment_s {storyboard.generation.segment_s:g} s is shorter than one frame",
            "generation.segment_s",
        )
    if fade > target:
        raise PlanError(
            f"crossfade {out.crossfade_s:g} s is longer than a segment ({storyboard.generation.segment_s:g} s); "
            "shorten output.crossfade_s or lengthen generation.segment_s",
            "output.crossfade_s",
        )


def make_plan(
    storyboard: Storyboard,
    capabilities: Capabilities,
    *,
    storyboard_path: str = "",
    storyboard_sha256: str = "",
    image_hashes: dict[str, str] | None = None,
    composer_version: str = "0",
) -> Plan:
    """Plan ``storyboard`` for a backend with ``capabilities``; raises PlanError (with a field).

    The steps, in order: check the settings and the scenes, fit the timeline to whole outputs,
    then lay out each output (:func:`plan_output`: its segments, joins and chunks).
    """
    out = storyboard.output
    fps = out.fps
    length = to_frames(out.length_s, fps)
    fade = to_frames(out.crossfade_s, fps)
    target = to_frames(storyboard.generation.segment_s, fps)
    _check_settings(storyboard, fps, length, fade, target)
    notes: list[str] = []
    scene_frames = _scene_frames(storyboard, fps)
    _check_scenes(storyboard, scene_frames, fade, fps)
    timeline = fit_to_outputs(storyboard, scene_frames, length, fps, notes)
    max_nominal = _longest_segment(storyboard, capabilities, fps, fade)
    layout = _Layout(
        storyboard, capabilities, fps, length, fade, target, max_nominal, image_hashes or {}, timeline.starts
    )
    outputs = tuple(plan_output(layout, k, notes) for k in range(timeline.total // length))
    ref = StoryboardRef(path=storyboard_path, sha256=storyboard_sha256, title=storyboard.title)
    return _plan(storyboard, ref, capabilities, fps, fade, timeline, outputs, notes, composer_version)


def _check_scenes(storyboard: Storyboard, scene_frames: list[int], fade: int, fps: Fraction) -> None:
    """Every scene lasts a frame at least, and at least its crossfade out."""
    out = storyboard.output
    for index, (scene, frames) in enumerate(zip(storyboard.scenes, scene_frames, strict=False)):
        if frames < 1:
            raise PlanError(
                f"scene {scene.id!r} lasts {scene.duration_s:g} s, less than one frame at {fps_text(fps)} fps",
                f"scenes[{index}].duration_s",
            )
        if (
            fade
            and scene.transition_out == "crossfade"
            and frames < fade
            and index < len(storyboard.scenes) - 1
        ):
            raise PlanError(
                f"scene {scene.id!r} ({scene.duration_s:g} s) is shorter than the {out.crossfade_s:g} s crossfade "
                "out of it; lengthen it, shorten output.crossfade_s, or set transition_out: cut",
                f"scenes[{index}].duration_s",
            )


@dataclass(frozen=True)
class Timeline:
    """The scenes on one timeline of whole outputs: each scene's first frame (and the end)."""

    starts: tuple[int, ...]
    total: int  # frames that go into outputs
    extended: int  # frames added to the last scene (remainder: extend)
    dropped: int  # frames left out at the end (remainder: drop)


def fit_to_outputs(
    storyboard: Storyboard, scene_frames: list[int], length: int, fps: Fraction, notes: list[str]
) -> Timeline:
    """The timeline cut into outputs of ``length`` frames, its remainder handled as
    ``output.remainder`` says (a note for each change)."""
    out = storyboard.output
    frames = list(scene_frames)
    total = sum(frames)
    remainder = total % length
    extended = dropped = 0
    if remainder:
        short = f"the scenes last {float(Fraction(total) / fps):g} s, not a whole number of {out.length_s:g} s outputs"
        if out.remainder == "error":
            raise PlanError(
                f"{short}; change scene durations or set output.remainder to extend or drop",
                "output.remainder",
            )
        if out.remainder == "extend":
            extended = length - remainder
            frames[-1] += extended
            notes.append(
                f"{short}: the last scene was lengthened by {float(Fraction(extended) / fps):g} s to fill the last output"
            )
        else:
            if total < length:
                raise PlanError(
                    f"{short} and remainder: drop leaves no output; lengthen the scenes", "output.remainder"
                )
            dropped = remainder
            notes.append(
                f"{short}: the last {float(Fraction(dropped) / fps):g} s are left out (remainder: drop)"
            )
    starts = [0]
    for scene in frames:
        starts.append(starts[-1] + scene)
    return Timeline(tuple(starts), sum(frames) - dropped, extended, dropped)


def _longest_segment(storyboard: Storyboard, capabilities: Capabilities, fps: Fraction, fade: int) -> int:
    """The most frames a segment may cover: the longest chain the backend can make, less room
    for a full fade of handles and a skipped continued frame."""
    max_clip = math.floor(Fraction(str(capabilities.longest_clip_s)) * fps)
    max_nominal = max_clip - fade - 1
    if max_nominal < 1:
        raise PlanError(
            f"{capabilities.name} makes clips of at most {capabilities.longest_clip_s:g} s, too short for a "
            f"{storyboard.output.crossfade_s:g} s crossfade; shorten output.crossfade_s",
            "output.crossfade_s",
        )
    return max_nominal


@dataclass
class _Layout:
    """What laying out every output needs, and what it carries from one output to the next."""

    storyboard: Storyboard
    capabilities: Capabilities
    fps: Fraction
    length: int
    fade: int
    target: int
    max_nominal: int
    image_hashes: dict[str, str]
    starts: tuple[int, ...]
    #: scene -> (id of its latest segment, that segment's clip frames): the next one continues it.
    previous_by_scene: dict[int, tuple[str, int]] = field(default_factory=dict)
    #: scene -> segments planned so far.
    parts_made: dict[int, int] = field(default_factory=dict)


def plan_output(layout: _Layout, k: int, notes: list[str]) -> OutputPlan:
    """Output ``k`` (from 0): its pieces of scenes cut into segments, their joins and handles."""
    o_start = k * layout.length
    nominal = _pieces(layout, o_start, o_start + layout.length)
    fades, joins = _joins(layout, k, nominal, notes)
    segments: list[Segment] = []
    cursor = o_start
    legs = timing.layout_nominal([f for _, f in nominal], fades).legs
    for i, ((scene_index, frames), leg) in enumerate(zip(nominal, legs, strict=True)):
        fade_in = leg.fade_in if i > 0 and nominal[i - 1][0] == scene_index else 0
        segment = _segment(
            layout, f"o{k + 1}-s{i + 1}", k, scene_index, cursor, frames, leg.lead, leg.tail, fade_in
        )
        segments.append(segment)
        layout.previous_by_scene[scene_index] = (segment.id, segment.clip_frames)
        cursor += frames
    assert timing.joined_length([s.clip_frames for s in segments], fades) == layout.length
    return OutputPlan(
        index=k + 1,
        name=f"part{k + 1:02d}.mp4",
        frames=layout.length,
        timeline_start=o_start,
        segments=tuple(segments),
        joins=tuple(joins),
    )


def _pieces(layout: _Layout, o_start: int, o_end: int) -> list[tuple[int, int]]:
    """(scene index, frames) of each segment in an output: each scene's part of it cut into
    segments of about ``segment_s``, never longer than one backend chain can make."""
    nominal: list[tuple[int, int]] = []
    for index in range(len(layout.starts) - 1):
        lo, hi = max(layout.starts[index], o_start), min(layout.starts[index + 1], o_end)
        if hi > lo:
            frames = hi - lo
            count = max(1, round(frames / layout.target), math.ceil(frames / layout.max_nominal))
            nominal.extend((index, f) for f in timing.split_even(frames, min(count, frames)))
    return nominal


def _joins(
    layout: _Layout, k: int, nominal: list[tuple[int, int]], notes: list[str]
) -> tuple[list[int], list[Join]]:
    """The fade (in frames) and the join between each two segments: a cut out of a scene that
    asks for one, else the crossfade, shortened where a piece is too short for it."""
    scenes = layout.storyboard.scenes
    fades: list[int] = []
    joins: list[Join] = []
    for (left_scene, left_frames), (right_scene, right_frames) in itertools.pairwise(nominal):
        wanted = layout.fade
        if left_scene != right_scene and scenes[left_scene].transition_out == "cut":
            wanted = 0
        fitted = timing.fitting_fade(wanted, left_frames, right_frames)
        if fitted < wanted:
            notes.append(
                f"part{k + 1:02d}: the crossfade into scene {scenes[right_scene].id!r} was shortened to "
                f"{fitted} frames to fit a short piece at an output boundary"
            )
        fades.append(fitted)
        joins.append(Join(kind="crossfade" if fitted else "cut", frames=fitted))
    return fades, joins


def _continuation(layout: _Layout, scene_index: int, fade_in: int) -> tuple[Continuation | None, int]:
    """Where a segment continues an earlier one of its scene from, and the frames its take skips."""
    if not layout.capabilities.first_frame or scene_index not in layout.previous_by_scene:
        return None, 0
    parent_id, parent_clip = layout.previous_by_scene[scene_index]
    if fade_in:
        # Start from the frame where the crossfade begins, so both sides of the fade show the
        # same moments.
        return Continuation(segment=parent_id, frame=parent_clip - fade_in), 0
    # A cut, or the next output: start from the parent's last frame and skip it, so the
    # picture moves on by exactly one frame.
    return Continuation(segment=parent_id, frame=parent_clip - 1), 1


def _segment(
    layout: _Layout,
    segment_id: str,
    k: int,
    scene_index: int,
    cursor: int,
    frames: int,
    lead: int,
    tail: int,
    fade_in: int,
) -> Segment:
    """One segment: its clip (share plus handles), continuation, chunks, image, seed and size."""
    storyboard, capabilities = layout.storyboard, layout.capabilities
    scene = storyboard.scenes[scene_index]
    clip = lead + frames + tail
    part = layout.parts_made.get(scene_index, 0)
    layout.parts_made[scene_index] = part + 1
    continues, offset = _continuation(layout, scene_index, fade_in)
    chunks = plan_chunks(clip + offset, layout.fps, capabilities)
    image = None
    if scene.image and part == 0 and continues is None:
        image = SourceImage(path=scene.image, sha256=layout.image_hashes.get(scene.image, ""))
    seed = (storyboard.seed_for(scene_index) + part * 1_000_003) % 2**32
    return Segment(
        id=segment_id,
        output=k + 1,
        scene_id=scene.id,
        scene_index=scene_index,
        part=part,
        timeline_start=cursor,
        nominal_frames=frames,
        lead_frames=lead,
        tail_frames=tail,
        clip_frames=clip,
        take_offset=offset,
        prompt=storyboard.prompt_for(scene),
        negative_prompt=scene.negative_prompt,
        camera=scene.camera,
        seed=seed,
        image=image,
        continues=continues,
        generate_size=choose_size(
            storyboard.output.resolution, capabilities, any(c.kind == "extend" for c in chunks)
        ),
        chunks=chunks,
        **storyboard.knobs_for(scene_index),
    )


def _plan(
    storyboard: Storyboard,
    ref: StoryboardRef,
    capabilities: Capabilities,
    fps: Fraction,
    fade: int,
    timeline: Timeline,
    outputs: tuple[OutputPlan, ...],
    notes: list[str],
    composer_version: str,
) -> Plan:
    """The plan around its outputs: output and generation settings, the backend's capabilities."""
    out = storyboard.output
    width, height = out.resolution
    model_id = capabilities.resolve_model(storyboard.generation.model)
    fallback = storyboard.generation.fallback_model
    fallback_id = capabilities.resolve_model(fallback) if fallback else None
    return Plan(
        composer_version=composer_version,
        storyboard=ref,
        output=OutputSpec(
            width=width,
            height=height,
            fps=fps_text(fps),
            frames=to_frames(out.length_s, fps),
            crossfade_frames=fade,
            audio=out.audio,
        ),
        generation=GenerationSpec(
            backend=capabilities.name,
            model=storyboard.generation.model,
            model_id=model_id,
            drift=storyboard.generation.drift,
            fallback_model_id=fallback_id if fallback_id != model_id else None,
        ),
        capabilities=capabilities,
        timeline_frames=timeline.total,
        dropped_frames=timeline.dropped,
        extended_frames=timeline.extended,
        outputs=outputs,
        continuity=storyboard.continuity,
        notes=tuple(notes),
    )
