"""Frames for analysis: what size to analyse a clip at, and a stream of small BGR frames.

Holds the geometry of a clip as displayed (rotation and pixel aspect applied), the choice of
the analysis size (480 px wide by default, height keeping the aspect, even) and rate, and
generators of timed frames. Decoding and scaling are done by ffmpeg (``composer.ffmpeg.
read_frames``): measured faster than decoding full frames and resizing them with OpenCV (see
``docs/analysis.md``); the OpenCV path is kept only so the benchmark can measure both.
What does not live here: any metric (``signals.py``) or verdict.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from composer import ffmpeg
from composer.errors import MediaError

#: Working width the thresholds were derived at; pixel quantities are reported at this width.
REFERENCE_WIDTH = 480
#: Frame rate assumed when a file does not say (rare: raw streams).
FALLBACK_FPS = Fraction(24)
#: Clips faster than this are analysed at this rate: a jump still shows, the cost halves.
MAX_SCAN_FPS = Fraction(30)


@dataclass(frozen=True)
class ClipGeometry:
    """A clip as a viewer sees it: display size (after rotation and pixel aspect), rate, length."""

    path: Path
    display_width: int
    display_height: int
    fps: Fraction
    fps_known: bool
    duration_s: float | None

    def analysis_size(self, width: int = REFERENCE_WIDTH) -> tuple[int, int]:
        """``width`` wide (even), height keeping the display aspect, rounded to even."""
        w = max(16, width - width % 2)
        h = max(16, round(w * self.display_height / self.display_width / 2) * 2)
        return w, h

    def scan_fps(self) -> Fraction:
        """The rate the frame-to-frame checks run at: the clip's own, capped at 30 fps."""
        return min(self.fps, MAX_SCAN_FPS)


@dataclass(frozen=True)
class TimedFrame:
    index: int
    t_s: float
    bgr: np.ndarray


def geometry(path: Path) -> ClipGeometry:
    """Read a clip's display geometry with ``ffmpeg.probe`` (MediaError if it is no video)."""
    info = ffmpeg.probe(path)
    width, height = info.display_size
    return ClipGeometry(
        path=path,
        display_width=width,
        display_height=height,
        fps=info.fps or FALLBACK_FPS,
        fps_known=info.fps is not None,
        duration_s=info.duration_s,
    )


def stream(
    path: Path,
    size: tuple[int, int],
    fps: Fraction,
    *,
    start_s: float | None = None,
    duration_s: float | None = None,
    resize: Literal["ffmpeg", "cv2"] = "ffmpeg",
) -> Iterator[TimedFrame]:
    """Timed BGR frames of ``size`` at a constant ``fps`` (the ``fps`` filter makes VFR even).

    ``resize="cv2"`` decodes full frames and resizes them with ``cv2.INTER_AREA``; it is only
    there so the benchmark can compare the two paths on the same clip.
    """
    width, height = size
    offset = float(start_s or 0.0)
    if resize == "ffmpeg":
        frames = ffmpeg.read_frames(
            path, width, height, fps=fps, start_s=start_s, duration_s=duration_s, fast_decode=True
        )
    else:
        geo = geometry(path)
        full = (geo.display_width - geo.display_width % 2, geo.display_height - geo.display_height % 2)
        raw = ffmpeg.read_frames(path, full[0], full[1], fps=fps, start_s=start_s, duration_s=duration_s)
        frames = (cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in raw)
    for index, bgr in enumerate(frames):
        yield TimedFrame(index=index, t_s=offset + index / float(fps), bgr=bgr)


def reference_stream(path: Path, size: tuple[int, int]) -> Iterator[TimedFrame]:
    """The fast scan's frames: those other frames refer to, with their own times (see
    ``composer.ffmpeg.read_reference_frames``; about every other frame, unevenly spaced)."""
    for index, (t_s, bgr) in enumerate(ffmpeg.read_reference_frames(path, *size)):
        yield TimedFrame(index=index, t_s=t_s, bgr=bgr)


def last_frames(path: Path, size: tuple[int, int], fps: Fraction, count: int) -> list[TimedFrame]:
    """The last ``count`` frames of a clip (decodes only its last second or so)."""
    geo = geometry(path)
    lead = count / float(fps) + 1.0
    start = max(0.0, (geo.duration_s or 0.0) - lead) if geo.duration_s else None
    window: list[TimedFrame] = []
    for frame in stream(path, size, fps, start_s=start):
        window.append(frame)
        if len(window) > count:
            window.pop(0)  # a rolling window: never more than `count` frames held
    if not window:
        raise MediaError(f"{path} gave no frames to analyse")
    return window


def first_frames(
    path: Path, size: tuple[int, int], fps: Fraction, count: int, start_s: float | None = None
) -> list[TimedFrame]:
    """The first ``count`` frames from ``start_s`` (ffmpeg is stopped once they are read)."""
    out: list[TimedFrame] = []
    for frame in stream(path, size, fps, start_s=start_s):
        out.append(frame)
        if len(out) >= count:
            break
    if not out:
        raise MediaError(f"{path} gave no frames to analyse")
    return out
