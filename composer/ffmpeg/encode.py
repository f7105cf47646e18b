"""The encoder settings and frame-grid arguments every composer encode shares.

Every piece of a smart render must carry the same codec parameters (SPS/PPS), the same
track time base and an exact duration, or the concat demuxer joins them with glitches or
drifting timestamps: the x264 and AAC settings, the MP4 timescales, forced IDR frames and
exact seek times here make that so, for every module of the package that encodes. Also
:func:`rescale` (the simulator's "smaller" fault). What does not: filter graphs (``graph.py``)
or deciding what to encode (``compose/``).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from composer.ffmpeg.process import _base_args, atomic_output, run
from composer.timecode import AUDIO_RATE

#: x264 settings every composer encode shares, so pieces stay compatible.
X264_PRESET = "veryfast"
X264_CRF = 20
#: The re-encoded crossfade windows of a smart assembly: one more generation than the bodies
#: around them, so they get more bits (measured against the full re-encode, docs/composition.md).
#: The codec parameters stay those of every composer encode: ``stitchable`` (below) keeps the
#: rate control out of the PPS.
WINDOW_CRF = 16
AUDIO_BITRATE = "160k"

#: Seconds between the regular IDR frames of every composer encode (outputs, normalised takes,
#: local takes). A later crossfade into a composer file re-encodes from the fade to the next
#: IDR, so this bounds what any later join costs. Measured at 640x360 (docs/composition.md,
#: "GOP interval"): 1 s costs 2-3% more bytes than 2 s on ordinary pictures (25% on noise-like
#: ones) and halves the worst extra encode per join side (24 frames instead of 48 at 24 fps);
#: x264's default 250 frames saves 2-4% more and makes a re-join encode ~10 s per fade.
GOP_SECONDS = 1


def gop_frames(fps: Fraction) -> int:
    """Frames between regular IDR frames at ``fps`` (:data:`GOP_SECONDS`, at least 1)."""
    return max(1, round(fps * GOP_SECONDS))


def x264_args(fps: Fraction, *, preset: str = X264_PRESET, crf: int = X264_CRF) -> list[str]:
    """Video encoder settings shared by every encode (so pieces can be joined)."""
    args = [
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        str(crf),
        "-pix_fmt",
        "yuv420p",
        "-profile:v",
        "high",
        # Closed GOPs (x264's default, made explicit) with an IDR every GOP_SECONDS and no
        # scene-cut I frames: a stream copy can start at any of them, at a known cadence.
        # Forced key frames (keyframe_args) add the plan's own points; x264 counts the
        # interval again from each, so no GOP is ever longer than gop_frames.
        "-g",
        str(gop_frames(fps)),
        "-sc_threshold",
        "0",
        "-flags",
        "+cgop",
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
        "-colorspace",
        "bt709",
        "-color_range",
        "tv",
        # Headers that do not depend on the content or the rate control (x264 otherwise puts
        # a CRF-derived initial QP in the PPS): pieces encoded at another CRF (the windows,
        # WINDOW_CRF) carry the very codec parameters of the bodies they are joined to.
        "-x264-params",
        "stitchable=1",
        "-video_track_timescale",
        str(timescale(fps)),
    ]
    return args


def audio_args() -> list[str]:
    return ["-c:a", "aac", "-b:a", AUDIO_BITRATE, "-ar", str(AUDIO_RATE), "-ac", "2"]


def timescale(fps: Fraction) -> int:
    """The MP4 track timescale every composer encode uses at ``fps`` (as in :func:`x264_args`)."""
    return fps.numerator * 512 // fps.denominator if fps.denominator == 1 else fps.numerator


def timescale_args(fps: Fraction) -> list[str]:
    # The movie (mvhd) timescale defaults to 1000, which rounds the edit list of a piece whose
    # duration is not a whole millisecond; the concat demuxer then starts the next piece a few
    # ticks early. Setting both timescales keeps every timestamp on the frame grid.
    scale = str(timescale(fps))
    return ["-video_track_timescale", scale, "-movie_timescale", scale]


def keyframe_args(frames: Sequence[int]) -> list[str]:
    """Force IDR frames at these output frame numbers (by frame number, not by time).

    Forcing by time (``-force_key_frames 0.791667``) can land one frame late when the time is
    rounded up; ``expr:`` with ``n`` cannot. ``-forced-idr 1`` makes them IDR frames (closed
    GOP: x264 runs without open-gop by default), so a stream copy can start there.
    """
    wanted = sorted({int(f) for f in frames if f > 0})
    if not wanted:
        return []
    expr = "+".join(f"eq(n,{f})" for f in wanted)
    return ["-force_key_frames", f"expr:{expr}", "-forced-idr", "1"]


def seek_text(frame: int, fps: Fraction) -> str:
    """``-ss`` for the exact start of ``frame``, rounded *down* to the microsecond.

    ffmpeg reads -ss in microseconds and drops frames before it; rounding up could drop the
    very frame we seek to (at 30000/1001 fps frame times are not whole microseconds).
    """
    micros = (Fraction(frame) / fps * 1_000_000).__floor__()
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def rescale(src: Path, dest: Path, width: int, height: int) -> None:
    """Re-encode ``src`` at ``width`` x ``height`` (audio copied) into ``dest``, atomically.

    The simulator's ``smaller`` fault uses it to deliver a smaller video than was asked for.
    """
    with atomic_output(dest) as tmp:
        run(
            [
                *_base_args(),
                "-i",
                str(src),
                "-map",
                "0",
                "-vf",
                f"scale={width}:{height}",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "copy",
                "-f",
                "mp4",
                str(tmp),
            ],
            what=f"rescaling {src.name}",
        )
