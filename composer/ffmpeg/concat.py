"""Joining pieces that share one encoding by stream copy: concat listings and the final mux.

What lives here: :class:`ConcatPart` and :func:`concat_listing` (the concat demuxer's listing,
every timestamp on the frame grid, names quoted so any path reads back whole),
:func:`assemble` (a smart render's last call), :func:`copy_frames` (a body copied from an IDR
frame) and :func:`concat_copy` (the local generator's chunks joined, with fresh audio).
What does not: which pieces to copy or re-encode (``compose/smart.py``).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from composer.errors import MediaError
from composer.ffmpeg.encode import audio_args, seek_text, timescale_args
from composer.ffmpeg.process import ProgressFn, _base_args, atomic_output, ffmpeg_exe, run
from composer.timecode import AUDIO_RATE


@dataclass(frozen=True)
class ConcatPart:
    """One entry of the concat demuxer's listing: ``path`` (video only), from ``inpoint`` to
    ``outpoint`` (see :meth:`PacketInfo.copy_points`; None: the file's start or end), lasting
    ``frames`` frames of the output."""

    path: Path
    frames: int
    inpoint: Fraction | None = None
    outpoint: Fraction | None = None


def concat_file_line(path: Path) -> str:
    """The concat demuxer's ``file '...'`` line for ``path``, quoted so any name reads back whole.

    ffmpeg reads the name with ``av_get_token``: inside single quotes nothing is special but
    the closing quote, so a ``'`` is written as ``'\\''`` (close, escaped quote, reopen). A
    line break cannot be quoted at all (the listing is read line by line), so it is refused
    rather than let a name add a directive of its own.
    """
    text = path.resolve().as_posix()
    if any(c in text for c in "\n\r\0"):
        raise MediaError(
            f"cannot list {text[:200]!r} for ffmpeg's concat: the path holds a line break; "
            "rename the folder or file (or set COMPOSER_CACHE to a plain folder)"
        )
    return "file '" + text.replace("'", "'\\''") + "'"


def _seconds(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def concat_listing(parts: Sequence[ConcatPart], fps: Fraction) -> str:
    """The concat demuxer's listing for ``parts``, every timestamp on the frame grid.

    Each part gets an explicit ``duration``: the demuxer starts the next part where the last
    one's duration ends, and a body that ends before its file does would otherwise last until
    its out point (a decoding time, frames early). The durations are differences of the
    exact running times rounded once, so rounding to microseconds never accumulates. The in
    point is rounded up: the demuxer seeks to the keyframe at or before it.
    """
    lines, done = [], 0
    for part in parts:
        lines.append(concat_file_line(part.path))
        start, end = Fraction(done) / fps, Fraction(done + part.frames) / fps
        lines.append(f"duration {_seconds(round(end * 1_000_000) - round(start * 1_000_000))}")
        if part.inpoint is not None:
            lines.append(f"inpoint {_seconds((part.inpoint * 1_000_000).__ceil__())}")
        if part.outpoint is not None:
            lines.append(f"outpoint {_seconds(round(part.outpoint * 1_000_000))}")
        done += part.frames
    return "".join(f"{line}\n" for line in lines)


def assemble_args(
    parts: Sequence[ConcatPart], listing: Path, dest: Path, audio: Path | None, *, fps: Fraction, frames: int
) -> list[str]:
    """The final call: concat the video parts and add the encoded audio, all by stream copy.

    ``frames`` is the output's length at ``fps``; the listing is written to ``listing``.
    """
    listing.write_text(concat_listing(parts, fps))
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-f", "concat", "-safe", "0", "-i", str(listing)]
    if audio is not None:
        cmd += ["-i", str(audio), "-map", "1:a:0"]
    cmd += ["-map", "0:v:0", "-c", "copy", *timescale_args(fps), "-frames:v", str(frames)]
    return [*cmd, "-movflags", "+faststart", "-f", "mp4", str(dest)]


def assemble(
    parts: Sequence[ConcatPart],
    dest: Path,
    audio: Path | None = None,
    *,
    fps: Fraction,
    frames: int,
    on_progress: ProgressFn | None = None,
) -> None:
    """Write ``dest`` (``frames`` frames at ``fps``) from video parts that share one encoding
    and the audio encoded beside."""
    with atomic_output(dest) as tmp, tempfile.TemporaryDirectory(dir=dest.parent) as work:
        run(
            assemble_args(parts, Path(work) / "parts.txt", tmp, audio, fps=fps, frames=frames),
            total_frames=frames,
            on_progress=on_progress,
            what=f"assembling {dest.name}",
        )


def concat_copy(parts: Sequence[Path], audio: np.ndarray | None, dest: Path) -> None:
    """Join MP4s that share one encoding by stream copy, with a freshly encoded audio track."""
    with atomic_output(dest) as tmp, tempfile.TemporaryDirectory(dir=dest.parent) as work:
        # Video only (a stream copy): the concat demuxer starts each file at its earliest
        # timestamp over all streams, and AAC's priming puts the audio 1024 samples before
        # the video, which would shift every frame off the frame grid by 21 ms.
        videos = []
        for i, part in enumerate(parts):
            video = Path(work) / f"video{i}.mp4"
            run(
                [*_base_args(), "-i", str(part), "-map", "0:v:0", "-c", "copy", "-f", "mp4", str(video)],
                what=f"copying the video of {part.name}",
            )
            videos.append(video)
        listing = Path(work) / "list.txt"
        listing.write_text("".join(f"{concat_file_line(p)}\n" for p in videos))
        cmd = [*_base_args(), "-loglevel", "error", "-f", "concat", "-safe", "0", "-i", str(listing)]
        if audio is not None:
            raw = Path(work) / "audio.pcm"
            np.ascontiguousarray(audio, dtype="<f4").tofile(raw)
            cmd += ["-f", "f32le", "-ar", str(AUDIO_RATE), "-ac", "2", "-i", str(raw)]
        cmd += ["-map", "0:v:0", "-c:v", "copy"]
        if audio is not None:
            cmd += ["-map", "1:a:0", *audio_args()]
        cmd += ["-movflags", "+faststart", "-f", "mp4", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
        if proc.returncode != 0:
            raise MediaError(
                f"joining {len(parts)} clips into {dest.name} failed: {proc.stderr.strip()[-400:]}"
            )


def copy_frames(source: Path, dest: Path, *, first: int, frames: int, fps: Fraction) -> None:
    """Stream-copy ``frames`` frames of ``source`` from the IDR frame ``first``, video only.

    ``-frames:v`` counts packets in decode order; in a closed GOP that starts at an IDR these
    are exactly the display frames ``[first, first + frames)`` when the next frame is an IDR
    too (or the file ends), which the caller guarantees.
    """
    with atomic_output(dest) as tmp:
        cmd = [*_base_args(), "-loglevel", "error", "-ss", seek_text(first, fps), "-i", str(source)]
        cmd += ["-map", "0:v:0", "-c", "copy", "-frames:v", str(frames), *timescale_args(fps)]
        cmd += ["-an", "-f", "mp4", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
        if proc.returncode != 0:
            raise MediaError(f"copying frames of {source.name} failed: {proc.stderr.strip()[-400:]}")
