"""What a composition is, in numbers (pure): legs, joins, offsets, exact sample counts.

A :class:`Composition` says which clip feeds each leg, how many frames of it are used, and
how each pair of legs is joined; ``composer/ffmpeg.py`` turns it into a filter graph. The
arithmetic guarantees ``frames == sum(leg frames) - sum(fade frames)`` and audio of
exactly ``frames * 48000 / fps`` samples (each leg is forced to its own exact count).
Nothing here runs ffmpeg or opens a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from composer.plan import timing
from composer.timecode import audio_samples


@dataclass(frozen=True)
class Leg:
    """One input clip: the first ``frames`` frames of ``path`` after normalisation."""

    path: Path
    frames: int
    has_audio: bool
    start: int = 0  # frames skipped at the start of the clip


@dataclass(frozen=True)
class LegJoin:
    """How leg k+1 follows leg k: a crossfade of ``fade`` frames (0 = cut)."""

    fade: int
    offset: int  # frame of the joined output where the fade starts (xfade offset)


@dataclass(frozen=True)
class Composition:
    legs: tuple[Leg, ...]
    joins: tuple[LegJoin, ...]
    width: int
    height: int
    fps: Fraction
    audio: bool
    frames: int

    @property
    def samples(self) -> int:
        return audio_samples(self.frames, self.fps)

    def start_samples(self, index: int) -> int:
        return audio_samples(self.legs[index].start, self.fps)

    def leg_samples(self, index: int) -> int:
        return audio_samples(self.legs[index].frames, self.fps)

    def fade_samples(self, index: int) -> int:
        return audio_samples(self.joins[index].fade, self.fps)


def build(
    legs: list[Leg], fades: list[int], width: int, height: int, fps: Fraction, audio: bool
) -> Composition:
    """Lay out legs and joins; raises ValueError if a fade does not fit its legs."""
    if not legs:
        raise ValueError("nothing to compose")
    if len(fades) != len(legs) - 1:
        raise ValueError("need one join between each pair of legs")
    for k, fade in enumerate(fades):
        if fade < 0 or fade > legs[k].frames or fade > legs[k + 1].frames:
            raise ValueError(
                f"a {fade}-frame crossfade does not fit legs of {legs[k].frames} and {legs[k + 1].frames} frames"
            )
    offsets = timing.xfade_offsets([leg.frames for leg in legs], fades)
    joins = tuple(LegJoin(fade=f, offset=o) for f, o in zip(fades, offsets, strict=True))
    frames = timing.joined_length([leg.frames for leg in legs], fades)
    return Composition(tuple(legs), joins, width, height, fps, audio, frames)
