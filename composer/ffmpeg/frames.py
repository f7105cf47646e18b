"""Raw pictures and samples through pipes: numpy frames in, numpy frames and audio out.

What lives here: :class:`FrameWriter` (BGR frames and float audio encoded into an MP4),
:func:`read_frames` and :func:`read_reference_frames` (small BGR frames decoded, scaled and
squared by ffmpeg, read ahead by a thread), :func:`read_audio` and :func:`extract_frame` (one
frame as a PNG). What does not: what the pictures mean (``analysis/``, ``backends/``).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import IO

import numpy as np

from composer.errors import MediaError
from composer.ffmpeg.encode import X264_CRF, X264_PRESET, audio_args, keyframe_args, timescale_args, x264_args
from composer.ffmpeg.process import _base_args, _temp_beside, atomic_output, ffmpeg_exe
from composer.timecode import AUDIO_RATE, fps_text


class FrameWriter:
    """Encode BGR numpy frames (plus optional float32 stereo audio) into an MP4, atomically.

    Use as a context manager; the file appears under ``dest`` only if the block finished,
    every frame was written and ffmpeg succeeded. ``keyframes`` are frame numbers made IDR
    frames; with the default preset and CRF the file carries the output encoding, so it can
    be assembled by stream copy.
    """

    def __init__(
        self,
        dest: Path,
        width: int,
        height: int,
        fps: Fraction,
        audio: np.ndarray | None = None,
        keyframes: Sequence[int] = (),
        *,
        preset: str = X264_PRESET,
        crf: int = X264_CRF,
    ) -> None:
        self.dest, self.width, self.height, self.fps = dest, width, height, fps
        self._audio = audio
        self._keyframes = keyframes
        self._preset, self._crf = preset, crf
        self._temps: list[Path] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self.frames = 0

    def __enter__(self) -> FrameWriter:
        self._video_tmp = _temp_beside(self.dest, ".mp4")
        self._temps.append(self._video_tmp)
        cmd = [
            *_base_args(),
            "-loglevel",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "bgr24",
            "-s",
            f"{self.width}x{self.height}",
            "-framerate",
            fps_text(self.fps),
            "-i",
            "pipe:0",
        ]
        if self._audio is not None:
            audio_file = _temp_beside(self.dest, ".pcm")
            self._temps.append(audio_file)
            np.ascontiguousarray(self._audio, dtype="<f4").tofile(audio_file)
            cmd += ["-f", "f32le", "-ar", str(AUDIO_RATE), "-ac", "2", "-i", str(audio_file)]
        # The frames are RGB; convert with the BT.709 matrix the file is tagged with (swscale's
        # default is BT.601, which players decoding as BT.709 would show slightly off-colour).
        # setsar=1 writes the square-pixel flag every normalised piece carries: the SPS must match.
        cmd += [
            "-vf",
            "scale=out_color_matrix=bt709:out_range=tv:flags=fast_bilinear,format=yuv420p,setsar=1",
        ]
        cmd += ["-map", "0:v:0", *x264_args(self.fps, preset=self._preset, crf=self._crf)]
        cmd += [*keyframe_args(self._keyframes), *timescale_args(self.fps)]
        if self._audio is not None:
            cmd += ["-map", "1:a:0", *audio_args(), "-shortest"]
        cmd += ["-movflags", "+faststart", "-f", "mp4", str(self._video_tmp)]
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._stderr)
        return self

    def write(self, frame: np.ndarray) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"frame of shape {frame.shape} {frame.dtype}, expected ({self.height}, {self.width}, 3) uint8"
            )
        try:
            self._proc.stdin.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
        except BrokenPipeError:
            raise self._error() from None
        self.frames += 1

    def _error(self) -> MediaError:
        self._stderr.seek(0)
        message = self._stderr.read().decode(errors="replace").strip()
        return MediaError(f"encoding {self.dest.name} failed: {message or 'ffmpeg stopped'}")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            if exc_type is not None:
                proc.kill()
                proc.wait()
                return
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            if proc.wait() != 0:
                raise self._error()
            os.replace(self._video_tmp, self.dest)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            self._stderr.close()
            for path in self._temps:
                path.unlink(missing_ok=True)


def extract_frame(path: Path, time_s: Fraction, dest: Path) -> None:
    """Write the frame shown at ``time_s`` as a PNG (exact: decodes from the start)."""
    with atomic_output(dest) as tmp:
        cmd = [
            *_base_args(),
            "-loglevel",
            "error",
            "-i",
            str(path),
            "-vf",
            f"select=gte(t\\,{float(time_s) - 1e-6:.6f})",
            "-frames:v",
            "1",
            "-update",
            "1",
            "-f",
            "image2",
            "-c:v",
            "png",
            str(tmp),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
        if proc.returncode != 0 or tmp.stat().st_size == 0:
            raise MediaError(
                f"cannot extract the frame at {float(time_s):.3f} s of {path}: {proc.stderr.strip()[-300:]}"
            )


def read_audio(path: Path) -> np.ndarray:
    """The first audio stream decoded to 48 kHz stereo float32, shape (samples, 2)."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path)]
    cmd += ["-map", "0:a:0", "-f", "f32le", "-ar", str(AUDIO_RATE), "-ac", "2", "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise MediaError(f"cannot decode the audio of {path}: {proc.stderr.decode(errors='replace')[-300:]}")
    return np.frombuffer(proc.stdout, dtype="<f4").reshape(-1, 2)


def read_frames(
    path: Path,
    width: int,
    height: int,
    fps: Fraction | float | None = None,
    start_s: float | None = None,
    duration_s: float | None = None,
    *,
    fast_decode: bool = False,
    prefetch: int = 4,
) -> Iterator[np.ndarray]:
    """Decode ``path`` to ``height x width`` BGR frames, one at a time, through a pipe.

    ffmpeg applies rotation metadata itself, squares non-square pixels, converts to a
    constant ``fps`` when one is given (variable-rate clips then give evenly spaced frames;
    without it every decoded frame comes out as is) and scales with the area filter, so
    only small frames cross the pipe. A reader thread keeps up to ``prefetch`` frames ready,
    so ffmpeg decodes the next frames while the consumer works on this one; memory stays at
    a few small frames whatever the clip's length. ``fast_decode`` skips H.264/HEVC's
    deblocking filter: at analysis size its effect is below a grey level, and it is about a
    fifth of the decoding time. If the consumer stops early, ffmpeg is killed. A failure of
    ffmpeg raises MediaError with its own words.
    """
    filters = []
    if fps is not None:
        rate = fps_text(fps) if isinstance(fps, Fraction) else f"{float(fps):.6f}"
        filters.append(f"fps={rate}")
    filters += _analysis_scale(width, height)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error"]
    if fast_decode:
        cmd += ["-skip_loop_filter", "all"]
    if start_s is not None and start_s > 0:
        cmd += ["-ss", f"{start_s:.6f}"]
    if duration_s is not None:
        cmd += ["-t", f"{duration_s:.6f}"]
    cmd += ["-i", str(path), "-map", "0:v:0", "-an", "-sn", "-vf", ",".join(filters)]
    if fps is None:
        cmd += ["-fps_mode", "passthrough"]
    cmd += ["-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"]
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, bufsize=0)
        yield from _pump_frames(proc, width, height, prefetch)
        stderr.seek(0)
        message = stderr.read().decode(errors="replace").strip()
    if proc.returncode != 0:
        raise MediaError(
            f"decoding {path} for analysis failed: {message[-400:] or f'exit code {proc.returncode}'}"
        )


def _analysis_scale(width: int, height: int) -> list[str]:
    # Square the pixels first (a no-op pass-through for square-pixel input), then scale.
    return ["scale='trunc(iw*sar/2)*2':ih", "setsar=1", f"scale={width}:{height}:flags=area"]


def _pump_frames(
    proc: subprocess.Popen[bytes], width: int, height: int, prefetch: int
) -> Iterator[np.ndarray]:
    """Frames from ``proc``'s rawvideo stdout, read ahead by a thread; waits for ``proc`` at the end.

    If the consumer stops early (or fails), ffmpeg is killed rather than left decoding the rest.
    """
    assert proc.stdout is not None
    out, size = proc.stdout, width * height * 3
    ready: queue.Queue[bytes | None] = queue.Queue(maxsize=max(1, prefetch))
    stop = threading.Event()

    def pump() -> None:
        # Drains the pipe ahead of the consumer; None marks the end of the stream.
        try:
            while not stop.is_set():
                data = _read_exactly(out, size)
                if data is None:
                    break
                ready.put(data)
        finally:
            ready.put(None)

    reader = threading.Thread(target=pump, name="composer-frames", daemon=True)
    reader.start()
    finished = False
    try:
        while (data := ready.get()) is not None:
            yield np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
        finished = True
    finally:
        stop.set()
        if not finished and proc.poll() is None:
            proc.kill()
        while reader.is_alive():  # a reader waiting for room in the queue gets it
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.05)
        out.close()
        proc.wait()


_SHOWINFO_RE = re.compile(r"\bn:\s*\d+\s+pts:\s*-?\d+\s+pts_time:(-?[0-9.]+)")


def read_reference_frames(
    path: Path, width: int, height: int, *, prefetch: int = 4
) -> Iterator[tuple[float, np.ndarray]]:
    """The fast scan: ``(time_s, frame)`` for the frames other frames refer to, BGR, small.

    The decoder skips frames no other frame needs (``-skip_frame noref``: about every other
    frame of H.264/HEVC with B-frames, the usual case for generated and exported footage; a
    stream without them gives every frame) and the deblocking filter, so the pass decodes
    about a third less. The spacing is then irregular, so each frame comes with its time
    (from ``showinfo``, counted from the first frame). Geometry as in :func:`read_frames`.
    """
    filters = [*_analysis_scale(width, height), "showinfo"]
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "info", "-nostats"]
    cmd += ["-threads", "1", "-skip_loop_filter", "all", "-skip_frame", "noref", "-i", str(path)]
    cmd += ["-map", "0:v:0", "-an", "-sn", "-vf", ",".join(filters), "-fps_mode", "passthrough"]
    cmd += ["-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    assert proc.stdout is not None and proc.stderr is not None
    err = proc.stderr
    times: queue.Queue[float | None] = queue.Queue()
    said: list[str] = []

    def listen() -> None:
        # showinfo logs each frame before it is written to the pipe, so its time is waiting.
        try:
            for raw in err:
                line = raw.decode(errors="replace")
                match = _SHOWINFO_RE.search(line)
                if match:
                    times.put(float(match.group(1)))
                else:
                    said.append(line.rstrip())
                    del said[:-30]
        finally:
            times.put(None)

    listener = threading.Thread(target=listen, name="composer-frame-times", daemon=True)
    listener.start()
    first: float | None = None
    try:
        for frame in _pump_frames(proc, width, height, prefetch):
            t = times.get()
            if t is None:
                raise MediaError(f"decoding {path} for analysis gave a frame without its time")
            first = t if first is None else first
            yield t - first, frame
    finally:
        listener.join(timeout=5)
    if proc.returncode:
        raise MediaError(f"decoding {path} for analysis failed: {' '.join(said)[-400:] or proc.returncode}")


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    """``size`` bytes from an unbuffered pipe, or None at its end (rawvideo never ends mid-frame)."""
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
