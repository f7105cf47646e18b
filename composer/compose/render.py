"""Compose one planned output from its segments' takes, then check the file.

What lives here: mapping an :class:`~composer.plan.model.OutputPlan` and its takes to a
:class:`~composer.compose.graph.Composition`, running it, and verifying the result (exact
frame count, audio length, no decoder errors). What does not: ffmpeg command lines
(``composer/ffmpeg.py``) or choosing takes (``jobs/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from composer import ffmpeg
from composer.compose.graph import Composition, Leg, build
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


def verify(path: Path, comp: Composition) -> OutputCheck:
    """Decode ``path`` fully; MediaError unless frames and audio are exactly as planned."""
    report = ffmpeg.decode(path)
    expected_samples = comp.samples if comp.audio else None
    if report.errors:
        raise MediaError(f"{path.name} does not decode cleanly: {report.errors[:500]}")
    if report.frames != comp.frames:
        raise MediaError(f"{path.name} has {report.frames} frames, expected {comp.frames}")
    if expected_samples is not None and (
        report.audio_samples is None or abs(report.audio_samples - expected_samples) > AUDIO_TOLERANCE_SAMPLES
    ):
        raise MediaError(f"{path.name} has {report.audio_samples} audio samples, expected {expected_samples}")
    return OutputCheck(report.frames, report.audio_samples, comp.frames, expected_samples)


def compose_output(
    output: OutputPlan,
    spec: OutputSpec,
    takes: dict[str, Take],
    dest: Path,
    on_progress: ffmpeg.ProgressFn | None = None,
) -> OutputCheck:
    """Write ``dest`` for ``output`` and verify it; a failed check removes the file."""
    comp = composition_for(output, spec, takes)
    ffmpeg.compose(comp, dest, on_progress)
    try:
        return verify(dest, comp)
    except MediaError:
        dest.unlink(missing_ok=True)
        raise
