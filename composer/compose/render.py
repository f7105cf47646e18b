"""Compose one planned output from its segments' takes, then check the file.

What lives here: mapping an :class:`~composer.plan.model.OutputPlan` and its takes to a
:class:`~composer.compose.graph.Composition`, running it, and verifying the result (exact
frame count, audio length, no decoder errors). Two ways to render: the smart path
(``compose/smart.py``: copied bodies, re-encoded crossfades; needs the takes normalised, which
:func:`prepare_take` does as soon as a take is accepted) and the full one-command re-encode
(:func:`compose_full`), used when the smart path is refused or its output fails a
check. :class:`OutputCheck` says which path made the file and why, for the manifest.
What does not: ffmpeg command lines (``composer/ffmpeg/``) or choosing takes (``jobs/``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from composer import ffmpeg
from composer.compose import smart, verified
from composer.compose.graph import Composition, Leg, build
from composer.compose.normalize import Normalized, NormSpec, normalize_step, normalize_take
from composer.errors import MediaError
from composer.jobs.cache import Take
from composer.plan.model import OutputPlan, OutputSpec
from composer.timecode import parse_fps

# AAC works in frames of 1024 samples; a file's audio may end within one of them.
AUDIO_TOLERANCE_SAMPLES = 1024


@dataclass(frozen=True)
class OutputCheck:
    frames: int
    audio_samples: int | None
    expected_frames: int
    expected_samples: int | None
    method: str = "full"  # "smart" (copied bodies + re-encoded crossfades) or "full" (one re-encode)
    reason: str = ""  # why the full path was used (smart: the normalisations' reasons, if any)
    encoded_frames: int | None = None  # frames encoded while assembling (smart: the crossfade spans)
    copied_frames: int | None = None  # frames stream-copied (smart only)
    normalized: tuple[str, ...] = ()  # smart: each clip normalised, not copied, and which parameter forced it


def composition_for(output: OutputPlan, spec: OutputSpec, takes: dict[str, Take]) -> Composition:
    legs = [
        Leg(
            path=takes[s.id].path,
            frames=s.clip_frames,
            has_audio=takes[s.id].clip.has_audio,
            start=s.take_offset,
        )
        for s in output.segments
    ]
    return build(
        legs, [j.frames for j in output.joins], spec.width, spec.height, parse_fps(spec.fps), spec.audio
    )


def _segment_spec(output: OutputPlan, spec: OutputSpec, segment_index: int) -> NormSpec:
    """What the segment at ``segment_index`` of ``output`` needs from its take."""
    leg = output.layout().legs[segment_index]
    start = output.segments[segment_index].take_offset
    return NormSpec.for_leg(spec.width, spec.height, parse_fps(spec.fps), start, leg)


def prepare_take(
    output: OutputPlan,
    spec: OutputSpec,
    segment_index: int,
    take: Take,
    *,
    cache_dir: Path | None = None,
    steps: Sequence[Path] = (),
) -> Normalized:
    """Normalise ``take`` for its segment as soon as it is accepted (safe in a background thread).

    The normalised file is cached beside the take (or in ``cache_dir``), keyed by the spec, so
    :func:`compose_output` later finds it and only copies. A take that already carries the
    output encoding with the right keyframes is left untouched. ``steps``: the earlier takes
    of its extension chain, whose parts :func:`prepare_step` encoded as they landed.
    """
    norm = _segment_spec(output, spec, segment_index)
    return normalize_take(take.path, norm, cache_dir=cache_dir, steps=steps)


def prepare_step(
    output: OutputPlan,
    spec: OutputSpec,
    segment_index: int,
    step: Take,
    earlier: Sequence[Path] = (),
    *,
    cache_dir: Path | None = None,
) -> Normalized | None:
    """Normalise the part of the segment's leg that ``step``, one take of its extension chain,
    newly holds, as soon as it lands (see :func:`composer.compose.normalize.normalize_step`)."""
    norm = _segment_spec(output, spec, segment_index)
    return normalize_step(step.path, norm, earlier, cache_dir=cache_dir)


def verify(
    path: Path, comp: Composition, *, strict: bool = False, decoded: ffmpeg.DecodeReport | None = None
) -> OutputCheck:
    """Decode ``path`` fully; MediaError unless frames and audio are exactly as planned.

    ``strict`` adds what a stitched file must also show: no decoder warnings, every frame
    on the frame grid from 0. ``decoded`` is what the decoder already said of the file (the
    smart assembly decodes its joins and its audio): then nothing is decoded again, and the
    frames are counted from the file's packets.
    """
    info = ffmpeg.packets(path) if strict or decoded is not None else None
    if decoded is None:
        report = ffmpeg.decode(path)
    else:
        assert info is not None
        report = replace(decoded, frames=info.frames)
    expected_samples = comp.samples if comp.audio else None
    if report.errors:
        raise MediaError(f"{path.name} does not decode cleanly: {report.errors[:500]}")
    if report.frames != comp.frames:
        raise MediaError(f"{path.name} has {report.frames} frames, expected {comp.frames}")
    if expected_samples is not None and (
        report.audio_samples is None or abs(report.audio_samples - expected_samples) > AUDIO_TOLERANCE_SAMPLES
    ):
        raise MediaError(f"{path.name} has {report.audio_samples} audio samples, expected {expected_samples}")
    if strict:
        if report.warnings:
            raise MediaError(f"{path.name} decodes with warnings: {report.warnings[:500]}")
        assert info is not None
        start = ffmpeg.probe(path).start_s
        if start not in (None, 0.0):
            raise MediaError(f"{path.name} starts at {start} s, not 0")
        # Every picture exactly one frame after the one before, from 0: no gap or overlap at a join.
        tick = 1 / comp.fps / info.time_base
        if sorted(info.pts) != [round(i * tick) for i in range(len(info.pts))]:
            raise MediaError(f"{path.name} has frames off the {comp.fps} fps grid (a join slipped)")
    return OutputCheck(report.frames, report.audio_samples, comp.frames, expected_samples)


def compose_output(
    output: OutputPlan,
    spec: OutputSpec,
    takes: dict[str, Take],
    dest: Path,
    on_progress: ffmpeg.ProgressFn | None = None,
    *,
    smart_path: bool = True,
    cache_dir: Path | None = None,
) -> OutputCheck:
    """Write ``dest`` for ``output`` and verify it; a failed check removes the file.

    Tries the smart path first (when ``smart_path``), and falls back to the full re-encode
    when it is refused or its file fails a check; the returned check says which and why.
    Takes are known to decode (downloads are decoded before they enter the cache, local
    takes come from composer's encoder), so only the joins of the stitched file are decoded.
    """
    return compose_composition(
        composition_for(output, spec, takes),
        dest,
        on_progress,
        smart_path=smart_path,
        cache_dir=cache_dir,
        known_good=True,
    )


def compose_full(comp: Composition, dest: Path, on_progress: ffmpeg.ProgressFn | None = None) -> None:
    """The full path: ``comp`` re-encoded by one ffmpeg command into ``dest`` (atomically).

    :func:`composer.ffmpeg.compose` knows no compositions; it is given their plain numbers.
    """
    ffmpeg.compose(
        [ffmpeg.LegInput(leg.path, leg.frames, leg.has_audio, leg.start) for leg in comp.legs],
        [join.fade for join in comp.joins],
        [join.offset for join in comp.joins],
        dest,
        width=comp.width,
        height=comp.height,
        fps=comp.fps,
        frames=comp.frames,
        audio=comp.audio,
        on_progress=on_progress,
    )


def compose_composition(
    comp: Composition,
    dest: Path,
    on_progress: ffmpeg.ProgressFn | None = None,
    *,
    smart_path: bool = True,
    cache_dir: Path | None = None,
    known_good: bool = False,
) -> OutputCheck:
    """The two-path render of any composition (used by outputs and by ``compose_clips``).

    ``known_good``: the clips decoded cleanly before (see :func:`smart.assemble`).
    """
    reason = "smart path turned off"
    if smart_path:
        try:
            result = smart.compose_smart(
                comp, dest, cache_dir=cache_dir, on_progress=on_progress, known_good=known_good
            )
            check = verify(dest, comp, strict=True, decoded=result.decoded)
            verified.record(dest, check.frames)  # every part of it has decoded cleanly
            return replace(
                check,
                method="smart",
                encoded_frames=result.plan.encoded_frames,
                copied_frames=result.plan.copied_frames,
                # The manifest keeps ``reason``: for the smart path, what forced normalisations.
                reason="; ".join(result.normalized),
                normalized=result.normalized,
            )
        except smart.SmartUnavailable as exc:
            reason = str(exc)
        except MediaError as exc:
            # Anything odd in the stitched file (or in making it) costs one full render, never
            # a broken output.
            reason = f"smart assembly failed its check: {exc}"
            dest.unlink(missing_ok=True)
    compose_full(comp, dest, on_progress)
    try:
        check = verify(dest, comp)
    except MediaError:
        dest.unlink(missing_ok=True)
        raise
    verified.record(dest, check.frames)
    return replace(check, method="full", reason=reason, encoded_frames=comp.frames, copied_frames=0)
