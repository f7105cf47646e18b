"""Seconds <-> integer frames at a rational frame rate.

Users write seconds; everything inside composer counts whole frames at an exact
``fractions.Fraction`` rate, so a 60-second output at 24 fps is 1440 frames, never 1439.
This module holds only that arithmetic: no I/O, no video.
"""

from __future__ import annotations

import math
from fractions import Fraction

#: Audio is always mixed and written at this rate.
AUDIO_RATE = 48_000


def parse_fps(value: int | float | str | Fraction) -> Fraction:
    """Read a frame rate given as ``24``, ``23.976``, ``"30000/1001"`` or a Fraction.

    Decimal NTSC spellings (23.976, 29.97, 59.94) map to their exact /1001 rates.
    """
    if isinstance(value, Fraction):
        fps = value
    elif isinstance(value, str) and "/" in value:
        num, _, den = value.partition("/")
        fps = Fraction(int(num.strip()), int(den.strip()))
    else:
        fps = Fraction(str(value)).limit_denominator(1001)
        ntsc = Fraction(round(float(fps) * 1.001) * 1000, 1001)
        if fps.denominator != 1 and abs(float(fps) - float(ntsc)) < 0.005:
            fps = ntsc
    if fps <= 0:
        raise ValueError("frame rate must be greater than 0")
    return fps


def to_frames(seconds: float | Fraction, fps: Fraction) -> int:
    """Nearest whole frame to ``seconds`` (halves round up, so 0.5 frame -> 1)."""
    exact = Fraction(str(seconds)) * fps if isinstance(seconds, float) else seconds * fps
    return math.floor(exact + Fraction(1, 2))


def to_seconds(frames: int, fps: Fraction) -> Fraction:
    """Exact duration of ``frames`` frames."""
    return Fraction(frames) / fps


def audio_samples(frames: int, fps: Fraction, rate: int = AUDIO_RATE) -> int:
    """Audio samples that last exactly as long as ``frames`` video frames (rounded)."""
    return math.floor(Fraction(frames) * rate / fps + Fraction(1, 2))


def fps_text(fps: Fraction) -> str:
    """``24`` or ``30000/1001``: the spelling ffmpeg and plan.json use."""
    return str(fps.numerator) if fps.denominator == 1 else f"{fps.numerator}/{fps.denominator}"
