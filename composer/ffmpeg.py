"""Every ffmpeg command composer runs, and the only place that builds or runs one.

What lives here: finding the binary (``COMPOSER_FFMPEG``, else ``ffmpeg`` on PATH, else the
imageio-ffmpeg wheel's), encoding numpy frames, probing files without ffprobe, counting
and extracting frames, decode checks, and running a filter graph with progress. Filter
graphs are built with ffmpeg-python (``compose/graph.py`` decides the numbers, this module
turns them into ffmpeg's language). What does not: deciding what to compose (``compose/``).

Outputs are always written to a temporary name beside the target and renamed when ffmpeg
succeeds, so an interrupted run never leaves a half-written file under the real name.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import IO, TypeVar

import ffmpeg as ffmpeg_graph  # ffmpeg-python, for filter graphs only
import numpy as np

from composer.compose.graph import Composition
from composer.errors import EnvironmentProblem, MediaError
from composer.files import temp_beside
from composer.timecode import AUDIO_RATE, fps_text, parse_fps

_T = TypeVar("_T")

#: x264 settings every composer encode shares, so pieces stay compatible.
X264_PRESET = "veryfast"
X264_CRF = 20
AUDIO_BITRATE = "160k"

ProgressFn = Callable[[int], None]


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The ffmpeg binary: ``$COMPOSER_FFMPEG``, then PATH, then the imageio-ffmpeg wheel."""
    override = os.environ.get("COMPOSER_FFMPEG")
    if override:
        if not (Path(override).is_file() and os.access(override, os.X_OK)):
            raise EnvironmentProblem(
                f"COMPOSER_FFMPEG={override} is not an executable file; point it at ffmpeg or unset it"
            )
        return override
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception as exc:  # the wheel raises RuntimeError or ImportError
        raise EnvironmentProblem(
            "no ffmpeg found: install the Python package with `pip install imageio-ffmpeg`, "
            "put ffmpeg on PATH, or set COMPOSER_FFMPEG"
        ) from exc


def ffmpeg_version() -> str:
    out = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else "unknown"


@contextlib.contextmanager
def atomic_output(dest: Path, suffix: str | None = None) -> Iterator[Path]:
    """A temporary path beside ``dest``, renamed onto it if the block succeeds."""
    fd, tmp = temp_beside(dest, suffix or dest.suffix, prefix=f".{dest.stem}.")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _base_args() -> list[str]:
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y"]


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
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
        "-colorspace",
        "bt709",
        "-color_range",
        "tv",
        "-video_track_timescale",
        str(timescale(fps)),
    ]
    return args


def audio_args() -> list[str]:
    return ["-c:a", "aac", "-b:a", AUDIO_BITRATE, "-ar", str(AUDIO_RATE), "-ac", "2"]


def run(
    args: list[str],
    *,
    total_frames: int | None = None,
    on_progress: ProgressFn | None = None,
    what: str = "ffmpeg",
    loglevel: str = "error",
) -> list[str]:
    """Run ffmpeg with ``-progress``; raise MediaError with ffmpeg's own words on failure.

    Returns what ffmpeg wrote to stderr at ``loglevel``, one line per item.
    """
    cmd = [*args[:1], "-progress", "pipe:1", "-nostats", "-loglevel", loglevel, *args[1:]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
    errors: list[str] = []
    drain = threading.Thread(target=lambda: errors.extend(proc.stderr or []), daemon=True)
    drain.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if on_progress and line.startswith("frame="):
                with contextlib.suppress(ValueError):
                    on_progress(int(line[6:].strip()))
        proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        drain.join(timeout=5)
    if proc.returncode != 0:
        tail = "".join(errors[-15:]).strip() or f"exit code {proc.returncode}"
        raise MediaError(f"{what} failed: {tail}")
    if on_progress and total_frames is not None:
        on_progress(total_frames)
    return [line.rstrip("\n") for line in errors]


def _temp_beside(dest: Path, suffix: str) -> Path:
    fd, tmp = temp_beside(dest, suffix, prefix=f".{dest.stem}.")
    os.close(fd)
    return tmp


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


@dataclass(frozen=True)
class MediaInfo:
    """What ffmpeg's input banner says about a file (no ffprobe needed)."""

    duration_s: float | None
    width: int
    height: int
    fps: Fraction | None
    sar: Fraction
    rotation: int
    video_codec: str
    pix_fmt: str
    has_audio: bool
    audio_rate: int | None
    audio_channels: int | None
    start_s: float | None = None  # the container's start time ("start:" in the banner)
    streams: int = 1  # every stream in the file: video, audio, data, subtitles


_DURATION_RE = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_START_RE = re.compile(r"Duration: [^\n]*?start: (-?\d+(?:\.\d+)?)")
_VIDEO_RE = re.compile(r"Stream #\d+:\d+.*?: Video: (\w+)(.*)")
_AUDIO_RE = re.compile(r"Stream #\d+:\d+.*?: Audio: (\w+).*?(\d+) Hz, ([^,]+)")
_SIZE_RE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")
_SAR_RE = re.compile(r"SAR (\d+):(\d+)")
_FPS_RE = re.compile(r"(\d+(?:\.\d+)?) (fps|tbr)")
_ROTATE_RE = re.compile(r"(?:rotate\s*:\s*|rotation of )(-?\d+(?:\.\d+)?)")


def _while_unchanged(fn: Callable[[Path], _T]) -> Callable[[Path], _T]:
    """Cache ``fn(path)`` for as long as the file is the same (inode, size, modification time).

    Probing a clip costs a process start; a render asks about the same takes several times.
    Files are only ever replaced by rename (atomic writes), which changes the inode.
    """

    @lru_cache(maxsize=64)  # a render's takes and outputs; a packet listing is ~100 kB per minute
    def cached(path: Path, state: tuple[int, int, int]) -> _T:
        return fn(path)

    @functools.wraps(fn)
    def wrapper(path: Path) -> _T:
        try:
            st = os.stat(path)
        except OSError:
            return fn(path)  # it raises its own, clearer error
        return cached(Path(path).resolve(), (st.st_ino, st.st_size, st.st_mtime_ns))

    return wrapper


@_while_unchanged
def probe(path: Path) -> MediaInfo:
    """Read stream facts from ``ffmpeg -i`` (its banner); MediaError if it is not a video."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    text = proc.stderr
    video = _VIDEO_RE.search(text)
    if not video:
        first = next(
            (ln for ln in text.splitlines() if str(path) in ln or "Invalid" in ln), text.strip()[-200:]
        )
        raise MediaError(f"{path} has no readable video stream ({first.strip()})")
    rest = video.group(2)
    size = _SIZE_RE.search(rest)
    if not size:
        raise MediaError(f"{path}: cannot read the picture size")
    sar_match = _SAR_RE.search(rest)
    sar = (
        Fraction(int(sar_match.group(1)), int(sar_match.group(2)))
        if sar_match and int(sar_match.group(2))
        else Fraction(1)
    )
    fps = None
    for value, kind in _FPS_RE.findall(rest):
        fps = parse_fps(value)
        if kind == "fps":
            break
    duration = _DURATION_RE.search(text)
    duration_s = (
        int(duration.group(1)) * 3600 + int(duration.group(2)) * 60 + float(duration.group(3))
        if duration
        else None
    )
    audio = _AUDIO_RE.search(text)
    channels = None
    if audio:
        layout = audio.group(3).strip()
        digits = re.match(r"(\d+)", layout)
        channels = {"mono": 1, "stereo": 2}.get(layout) or (int(digits.group(1)) if digits else None)
    rotation = _ROTATE_RE.search(text)
    pix = re.search(r"\b(yuv\w+|yuvj\w+|rgb\w+|bgr\w+|gray\w*|nv12)\b", rest)
    return MediaInfo(
        duration_s=duration_s,
        width=int(size.group(1)),
        height=int(size.group(2)),
        fps=fps,
        sar=sar if sar > 0 else Fraction(1),
        rotation=round(float(rotation.group(1))) % 360 if rotation else 0,
        video_codec=video.group(1),
        pix_fmt=pix.group(1) if pix else "",
        has_audio=audio is not None,
        streams=len(re.findall(r"^\s*Stream #", text, re.MULTILINE)),
        audio_rate=int(audio.group(2)) if audio else None,
        audio_channels=channels,
        start_s=float(start.group(1)) if (start := _START_RE.search(text)) else None,
    )


@dataclass(frozen=True)
class DecodeReport:
    frames: int
    audio_samples: int | None
    errors: str
    warnings: str


_ERROR_TAG = re.compile(r"^(?:\[[^\]]* @ [^\]]*\] )*\[(?:error|fatal|panic)\] ")
_WARNING_TAG = re.compile(r"^(?:\[[^\]]* @ [^\]]*\] )*\[warning\] ")


def complaints(lines: Sequence[str]) -> tuple[str, str]:
    """(errors, warnings) among ffmpeg's stderr lines logged with ``level+...``.

    The level tag follows the context of whoever logged it, e.g. ``[h264 @ 0x5…] [error] …``
    or ``[vist#0:0/h264 @ 0x5…] [dec:h264 @ 0x5…] [warning] corrupt decoded frame``, and
    comes first only for lines without one.
    """
    errors = "\n".join(ln for ln in lines if _ERROR_TAG.match(ln)).strip()
    warnings = "\n".join(ln for ln in lines if _WARNING_TAG.match(ln)).strip()
    return errors, warnings


def decode(path: Path, *, video: bool = True) -> DecodeReport:
    """Decode every stream; count video frames and audio samples, collect decoder complaints.

    ``video=False`` decodes the audio only (frames is then 0). Audio samples are counted from
    a ``framecrc`` listing of the decoded audio (four times cheaper than ``astats``).
    """
    try:
        has_audio = probe(path).has_audio
    except MediaError:
        has_audio = False  # not readable as a video: decoding it reports why
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "level+info", "-nostats", "-i", str(path)]
    if video:
        cmd += ["-map", "0:v:0", "-f", "null", "-"]
    elif not has_audio:
        return DecodeReport(frames=0, audio_samples=None, errors="", warnings="")
    if has_audio:
        cmd += ["-map", "0:a:0", "-f", "framecrc", "pipe:1"]
    return _decode_report(cmd)


def decode_range(path: Path, first: int, frames: int, fps: Fraction) -> DecodeReport:
    """Decode ``frames`` video frames from frame ``first``, which must be a keyframe.

    Counts the frames and collects decoder complaints, like :func:`decode`. The deblocking
    filter is skipped: it cannot raise a decoding error, and it is a fifth of the work.
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "level+info", "-nostats"]
    cmd += ["-skip_loop_filter", "all", "-ss", seek_text(first, fps), "-i", str(path)]
    cmd += ["-map", "0:v:0", "-frames:v", str(frames), "-f", "null", "-"]
    return _decode_report(cmd)


def _decode_report(cmd: list[str]) -> DecodeReport:
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
    lines = proc.stderr.splitlines()
    frames = 0
    for line in lines:
        # The final stats line: "[info] [out#0/null @ ...] video:... " is not reliable across
        # versions; the muxer's frame counter is: "frame=  123 fps=..."
        match = re.search(r"frame=\s*(\d+)", line)
        if match:
            frames = int(match.group(1))
    errors, warnings = complaints(lines)
    if proc.returncode != 0 and not errors:
        errors = f"ffmpeg exit code {proc.returncode}"
    return DecodeReport(frames=frames, audio_samples=_samples(proc.stdout), errors=errors, warnings=warnings)


def _samples(listing: str) -> int | None:
    """Audio samples in a ``framecrc`` listing of decoded audio (None if it lists none)."""
    header, rows = _framecrc(listing)
    if header.get("media_type") != "audio" or "sample_rate" not in header:
        return None
    ticks = sum(int(row.group(3)) for row in rows)
    return round(ticks * _time_base(header) * int(header["sample_rate"]))


_FRAMECRC_RE = re.compile(r"^0,\s*(-?\d+),\s*(-?\d+),\s*(\d+),\s*(\d+),\s*0x[0-9a-f]+(.*)$")


def _framecrc(listing: str) -> tuple[dict[str, str], list[re.Match[str]]]:
    """A ``-f framecrc`` listing of one stream: its ``#name: value`` header, and its rows."""
    header: dict[str, str] = {}
    rows = []
    for line in listing.splitlines():
        if line.startswith("#"):
            name, _, value = line[1:].partition(":")
            header[name.split()[0]] = value.strip()
        elif match := _FRAMECRC_RE.match(line):
            rows.append(match)
    return header, rows


def _time_base(header: dict[str, str]) -> Fraction:
    num, _, den = header.get("tb", "1/1").partition("/")
    return Fraction(int(num), int(den or 1))


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


Stream = ffmpeg_graph.nodes.FilterableStream


def _input(name: str, index: int, **options: object) -> ffmpeg_graph.nodes.FilterableStream:
    # ffmpeg-python merges nodes with identical arguments, so the same clip used by two legs
    # would become one input feeding two chains ("multiple outgoing edges"). A per-input
    # queue size (harmless: packets buffered between demuxer and decoder) keeps them apart.
    return ffmpeg_graph.input(name, thread_queue_size=64 + index, **options)


def _silence(index: int) -> ffmpeg_graph.nodes.FilterableStream:
    return _input(f"anullsrc=r={AUDIO_RATE}:cl=stereo", index, f="lavfi")


def _rate(fps: Fraction) -> str:
    return fps_text(fps)


def _video_leg(
    stream: ffmpeg_graph.nodes.FilterableStream, start: int, frames: int, comp: Composition
) -> ffmpeg_graph.nodes.FilterableStream:
    return _video_chain(stream, start, frames, comp.width, comp.height, comp.fps)


def _video_chain(
    stream: ffmpeg_graph.nodes.FilterableStream,
    start: int,
    frames: int,
    width: int,
    height: int,
    fps: Fraction,
) -> ffmpeg_graph.nodes.FilterableStream:
    # Constant rate first (VFR -> CFR), then pad by repeating the last frame in case a clip is
    # short, cut to the exact count, square the pixels, fit inside the frame, one time base.
    return (
        stream.filter("fps", fps=_rate(fps))
        .filter("tpad", stop=-1, stop_mode="clone")
        .trim(start_frame=start, end_frame=start + frames)
        .setpts("PTS-STARTPTS")
        .filter("scale", "trunc(iw*sar/2)*2", "ih")
        .filter("setsar", 1)
        .filter("scale", width, height, force_original_aspect_ratio="decrease")
        .filter("pad", width, height, "(ow-iw)/2", "(oh-ih)/2")
        .filter("setsar", 1)
        .filter("format", "yuv420p")
        .filter("settb", f"{fps.denominator}/{fps.numerator}")
    )


def _audio_leg(
    stream: ffmpeg_graph.nodes.FilterableStream, start: int, samples: int
) -> ffmpeg_graph.nodes.FilterableStream:
    # Exactly `samples` samples per leg, so no drift accumulates over the joins.
    return (
        stream.filter("aresample", AUDIO_RATE)
        .filter("aformat", sample_fmts="fltp", channel_layouts="stereo")
        .filter("apad")
        .filter("atrim", start_sample=start, end_sample=start + samples)
        .filter("asetpts", "N/SR/TB")
    )


def _xfade(a: Stream, b: Stream, fade: int, offset: int, fps: Fraction) -> Stream:
    """A crossfade of ``fade`` frames starting at output frame ``offset``.

    xfade counts frames from the offset it is given; an offset half a frame off changes the
    output's length, so the exact time is given, to the microsecond.
    """
    return ffmpeg_graph.filter(
        [a, b],
        "xfade",
        transition="fade",
        duration=f"{float(Fraction(fade) / fps):.6f}",
        offset=f"{float(Fraction(offset) / fps):.6f}",
    )


def compose_args(comp: Composition, dest: Path) -> list[str]:
    """The full ffmpeg command for a composition (one process: normalise, join, encode)."""
    inputs = [_input(str(leg.path), index) for index, leg in enumerate(comp.legs)]
    videos = [
        _video_leg(inp.video, leg.start, leg.frames, comp) for inp, leg in zip(inputs, comp.legs, strict=True)
    ]
    audios = []
    if comp.audio:
        for index, (inp, leg) in enumerate(zip(inputs, comp.legs, strict=True)):
            source = inp.audio if leg.has_audio else _silence(index)
            audios.append(_audio_leg(source, comp.start_samples(index), comp.leg_samples(index)))
    video, audio = videos[0], audios[0] if audios else None
    for k, join in enumerate(comp.joins):
        nxt_audio = audios[k + 1] if audios else None
        if join.fade:
            video = _xfade(video, videos[k + 1], join.fade, join.offset, comp.fps)
            if audio is not None and nxt_audio is not None:
                audio = ffmpeg_graph.filter(
                    [audio, nxt_audio], "acrossfade", ns=comp.fade_samples(k), c1="tri", c2="tri"
                )
        elif audio is not None and nxt_audio is not None:
            joined = ffmpeg_graph.concat(video, audio, videos[k + 1], nxt_audio, v=1, a=1).node
            video, audio = joined[0], joined[1]
        else:
            video = ffmpeg_graph.concat(video, videos[k + 1], v=1, a=0)
    streams = [video]
    out_args: dict[str, object] = {}
    if audio is not None:
        audio = audio.filter("apad").filter("atrim", end_sample=comp.samples)
        streams.append(audio)
    graph = ffmpeg_graph.output(*streams, str(dest), f="mp4", **out_args)
    args = graph.compile(cmd=ffmpeg_exe())
    # Encoder settings are appended before the output file, shared with every other encode.
    encode = [*x264_args(comp.fps), "-frames:v", str(comp.frames)]
    if audio is not None:
        encode += audio_args()
    encode += ["-movflags", "+faststart"]
    return [*args[:-1], *encode, args[-1]]


def compose(comp: Composition, dest: Path, on_progress: ProgressFn | None = None) -> None:
    """Render ``comp`` into ``dest`` atomically, reporting output frames done."""
    with atomic_output(dest) as tmp:
        args = compose_args(comp, tmp)
        run(
            [args[0], "-hide_banner", "-nostdin", "-y", *args[1:]],
            total_frames=comp.frames,
            on_progress=on_progress,
            what=f"composing {dest.name}",
        )


# --- Smart assembly: normalised pieces, stream copies, spans, the final concat ---------------
#
# Every piece of a smart render must carry the same codec parameters (SPS/PPS), the same
# track time base and an exact duration, or the concat demuxer joins them with glitches or
# drifting timestamps. These helpers make that so; ``compose/smart.py`` decides what to run.


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


@dataclass(frozen=True)
class PacketInfo:
    """A video stream's packets as stored (no decoding): what a stream copy can rely on."""

    time_base: Fraction
    extradata: str  # "size crc" of the codec extradata (avcC: SPS/PPS); "" if none
    codec: str
    width: int
    height: int
    pts: tuple[int, ...]  # in decode order, in time_base units
    dts: tuple[int, ...]
    durations: tuple[int, ...]
    keys: tuple[bool, ...]

    @property
    def frames(self) -> int:
        return len(self.pts)

    def copy_points(self, first: int, end: int) -> tuple[Fraction | None, Fraction | None]:
        """The concat demuxer's ``inpoint`` and ``outpoint`` (seconds) that copy exactly the
        display frames ``[first, end)``; None where the copy starts or ends with the file.

        Both bounds must be key packets that split the stream cleanly: the packets decoded
        before them are exactly the frames shown before them (closed GOPs), else ValueError.
        The in point is a presentation time (the demuxer seeks to the keyframe at or before
        it); the out point is a *decoding* time, because the demuxer ends the file at the
        first packet whose DTS reaches it: halfway between the key packet's DTS and the one
        decoded before it.
        """
        order = self.display_order()

        def packet_at(frame: int) -> int:
            packet = order[frame]
            if not self.keys[packet] or set(order[:frame]) != set(range(packet)):
                raise ValueError(f"frame {frame} does not start a group of pictures that can be copied")
            return packet

        inpoint = outpoint = None
        if first > 0:
            inpoint = self.pts[packet_at(first)] * self.time_base
        if end < self.frames:
            packet = packet_at(end)
            outpoint = Fraction(self.dts[packet - 1] + self.dts[packet], 2) * self.time_base
        return inpoint, outpoint

    def display_order(self) -> list[int]:
        """The packet shown at each display index (packets are listed in decode order)."""
        return sorted(range(self.frames), key=lambda i: self.pts[i])

    def keyframe_indices(self) -> set[int]:
        """Display indices (0-based) of the key packets."""
        order = self.display_order()
        rank = {packet: index for index, packet in enumerate(order)}
        return {rank[i] for i, key in enumerate(self.keys) if key}


@_while_unchanged
def packets(path: Path) -> PacketInfo:
    """List the first video stream's packets with ``-f framecrc`` (stream copy, fast)."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path)]
    cmd += ["-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
    if proc.returncode != 0:
        raise MediaError(f"cannot read the packets of {path}: {proc.stderr.strip()[-300:]}")
    header, rows = _framecrc(proc.stdout)
    pts = [int(row.group(2)) for row in rows]
    dts = [int(row.group(1)) for row in rows]
    durations = [int(row.group(3)) for row in rows]
    # framecrc prints F=0x.. only when the flags are not exactly "key".
    flags = [re.search(r"F=0x([0-9A-Fa-f]+)", row.group(5)) for row in rows]
    keys = [flag is None or bool(int(flag.group(1), 16) & 1) for flag in flags]
    width, _, height = header.get("dimensions", "0x0").partition("x")
    extradata = " ".join(header.get("extradata", "").replace(",", " ").split())
    return PacketInfo(
        time_base=_time_base(header),
        extradata=extradata,
        codec=header.get("codec_id", ""),
        width=int(width or 0),
        height=int(height or 0),
        pts=tuple(pts),
        dts=tuple(dts),
        durations=tuple(durations),
        keys=tuple(keys),
    )


#: How the frames around a crossfade are kept beside a normalised take: Ut Video (lossless,
#: intra only) in NUT (exact 1/fps timestamps). Measured on 24 noisy 1080p frames: it reads
#: back in 0.16 s where decoding the same frames of the H.264 take takes 1.3 s, in 58 % of the
#: raw size (smooth pictures pack far tighter).
EDGE_ARGS: dict[str, str] = {"f": "nut", "c:v": "utvideo", "pix_fmt": "yuv420p"}


def normalize(
    source: Path,
    dest: Path,
    *,
    start: int,
    frames: int,
    width: int,
    height: int,
    fps: Fraction,
    keyframes: Sequence[int],
    edges: Sequence[tuple[int, int, Path]] = (),
    on_progress: ProgressFn | None = None,
) -> None:
    """Encode frames ``[start, start + frames)`` of ``source`` in the output encoding, video only.

    The same normalisation chain as :func:`compose` (constant rate, hold the last frame if the
    clip is short, square pixels, letterbox), the shared x264 settings, IDR frames forced at
    ``keyframes``, exactly ``frames`` frames and the shared timescales.

    Each ``(first, count, path)`` of ``edges`` also gets frames ``[first, first + count)`` of
    that chain (counted from ``start``) written losslessly to ``path`` (see :data:`EDGE_ARGS`),
    in the same pass: the frames a crossfade will blend, which a smart assembly then reads
    without decoding H.264 again.
    """
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_output(dest))
        video = _video_chain(ffmpeg_graph.input(str(source)).video, start, frames, width, height, fps)
        outputs = []
        if edges:
            branches = video.split()
            video = branches[0]
            for k, (first, count, path) in enumerate(edges):
                edge = branches[k + 1].trim(start_frame=first, end_frame=first + count).setpts("PTS-STARTPTS")
                outputs.append(
                    ffmpeg_graph.output(edge, str(stack.enter_context(atomic_output(path))), **EDGE_ARGS)
                )
        # The main output last: the x264 settings are inserted before the last file name.
        outputs.append(ffmpeg_graph.output(video, str(tmp), f="mp4"))
        args = ffmpeg_graph.merge_outputs(*outputs).compile(cmd=ffmpeg_exe())
        encode = [*x264_args(fps), *keyframe_args(keyframes), *timescale_args(fps), "-frames:v", str(frames)]
        run(
            [args[0], "-hide_banner", "-nostdin", "-y", *args[1:-1], *encode, "-an", args[-1]],
            total_frames=frames,
            on_progress=on_progress,
            what=f"normalising {source.name}",
        )


def encoder_extradata(width: int, height: int, fps: Fraction) -> str:
    """The extradata signature (see :class:`PacketInfo`) of composer's encoder at this size/rate.

    Encodes two black frames through the normalisation chain; x264 writes the same SPS/PPS
    for every picture at one size, rate and setting, so this is what any piece must carry.
    """
    with tempfile.TemporaryDirectory() as work:
        dest = Path(work) / "reference.mp4"
        source = ffmpeg_graph.input(f"color=c=black:size={width}x{height}:rate={fps_text(fps)}", f="lavfi")
        video = _video_chain(source.video, 0, 2, width, height, fps)
        args = ffmpeg_graph.output(video, str(dest), f="mp4").compile(cmd=ffmpeg_exe())
        encode = [*x264_args(fps), *timescale_args(fps), "-frames:v", "2"]
        run(
            [args[0], "-hide_banner", "-nostdin", "-y", *args[1:-1], *encode, "-an", args[-1]],
            what="probing the encoder",
        )
        return packets(dest).extradata


@dataclass(frozen=True)
class SpanInput:
    """One input of a span: ``frames`` frames of ``path`` from frame ``first`` (CFR at the output fps)."""

    path: Path
    first: int
    frames: int
    seek: int  # a keyframe at or before ``first`` to seek to, so decoding starts close by


def encode_span(
    inputs: Sequence[SpanInput],
    fades: Sequence[int],
    width: int,
    height: int,
    fps: Fraction,
    dest: Path,
    on_progress: ProgressFn | None = None,
    *,
    single_thread: bool = False,
) -> None:
    """Encode a short piece: the inputs joined by crossfades (0 = cut), same settings as bodies.

    ``single_thread`` keeps the decoders and filters to one thread each, for a caller that
    runs one job per core; x264 keeps its threads, so a span left alone once the other jobs
    are done uses every core (measured: 4.5 -> 4.1 s for a 1080p assembly against one
    thread for x264 too). Threads do not change the codec parameters x264 writes.
    """
    frames = sum(i.frames for i in inputs) - sum(fades)
    threads = {"threads": 1} if single_thread else {}
    with atomic_output(dest) as tmp:
        legs = []
        for item in inputs:
            # Input seeking lands on the keyframe exactly (see seek_text); the trim then skips
            # the frames between it and the first one wanted.
            source = _input(str(item.path), len(legs), ss=seek_text(item.seek, fps), **threads).video
            legs.append(_video_chain(source, item.first - item.seek, item.frames, width, height, fps))
        video, length = legs[0], inputs[0].frames
        for k, fade in enumerate(fades):
            if fade:
                video = _xfade(video, legs[k + 1], fade, length - fade, fps)
            else:
                video = ffmpeg_graph.concat(video, legs[k + 1], v=1, a=0)
            length += inputs[k + 1].frames - fade
        args = ffmpeg_graph.output(video, str(tmp), f="mp4").compile(cmd=ffmpeg_exe())
        encode = [*x264_args(fps), *timescale_args(fps), "-frames:v", str(frames)]
        if single_thread:
            encode += ["-filter_complex_threads", "1"]
        run(
            [args[0], "-hide_banner", "-nostdin", "-y", *args[1:-1], *encode, "-an", args[-1]],
            total_frames=frames,
            on_progress=on_progress,
            what=f"encoding a crossfade for {dest.name}",
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


def _audio_mix(comp: Composition) -> tuple[list[ffmpeg_graph.nodes.FilterableStream], object | None]:
    """The audio graph of :func:`compose` alone: exact samples per leg, acrossfade, silence."""
    if not comp.audio:
        return [], None
    legs = []
    for index, leg in enumerate(comp.legs):
        source = _input(str(leg.path), index).audio if leg.has_audio else _silence(index)
        legs.append(_audio_leg(source, comp.start_samples(index), comp.leg_samples(index)))
    audio = legs[0]
    for k, join in enumerate(comp.joins):
        if join.fade:
            audio = ffmpeg_graph.filter(
                [audio, legs[k + 1]], "acrossfade", ns=comp.fade_samples(k), c1="tri", c2="tri"
            )
        else:
            audio = ffmpeg_graph.concat(audio, legs[k + 1], v=0, a=1)
    return legs, audio.filter("apad").filter("atrim", end_sample=comp.samples)


def encode_audio(comp: Composition, dest: Path) -> None:
    """The composition's audio alone, mixed as :func:`compose` mixes it, encoded once (AAC).

    Run beside the video pieces of a smart assembly; the last call copies it as it is
    (remuxing keeps AAC's priming, so the decoded samples are those of a direct encode).
    """
    _, audio = _audio_mix(comp)
    if audio is None:
        raise ValueError("the composition has no audio")
    args = ffmpeg_graph.output(audio, str(dest), f="mp4").compile(cmd=ffmpeg_exe())
    run(
        [args[0], "-hide_banner", "-nostdin", "-y", *args[1:-1], *audio_args(), "-vn", args[-1]],
        what=f"mixing the audio for {dest.name}",
    )


@dataclass(frozen=True)
class ConcatPart:
    """One entry of the concat demuxer's listing: ``path`` (video only), from ``inpoint`` to
    ``outpoint`` (see :meth:`PacketInfo.copy_points`; None: the file's start or end), lasting
    ``frames`` frames of the output."""

    path: Path
    frames: int
    inpoint: Fraction | None = None
    outpoint: Fraction | None = None


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
    parts: Sequence[ConcatPart], comp: Composition, listing: Path, dest: Path, audio: Path | None
) -> list[str]:
    """The final call: concat the video parts and add the encoded audio, all by stream copy."""
    listing.write_text(concat_listing(parts, comp.fps))
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-f", "concat", "-safe", "0", "-i", str(listing)]
    if audio is not None:
        cmd += ["-i", str(audio), "-map", "1:a:0"]
    cmd += ["-map", "0:v:0", "-c", "copy", *timescale_args(comp.fps), "-frames:v", str(comp.frames)]
    return [*cmd, "-movflags", "+faststart", "-f", "mp4", str(dest)]


def assemble(
    parts: Sequence[ConcatPart],
    comp: Composition,
    dest: Path,
    audio: Path | None = None,
    on_progress: ProgressFn | None = None,
) -> None:
    """Write ``dest`` from video parts that share one encoding and the audio encoded beside."""
    with atomic_output(dest) as tmp, tempfile.TemporaryDirectory(dir=dest.parent) as work:
        run(
            assemble_args(parts, comp, Path(work) / "parts.txt", tmp, audio),
            total_frames=comp.frames,
            on_progress=on_progress,
            what=f"assembling {dest.name}",
        )


def frame_hashes(path: Path) -> list[str]:
    """MD5 of every decoded frame (``-f framemd5``): bit-exact comparison of pictures."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path)]
    cmd += ["-map", "0:v:0", "-f", "framemd5", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
    if proc.returncode != 0:
        raise MediaError(f"cannot decode {path}: {proc.stderr.strip()[-300:]}")
    return [line.rsplit(",", 1)[1].strip() for line in proc.stdout.splitlines() if line and line[0] != "#"]


@dataclass(frozen=True)
class FrameScore:
    psnr: float  # average over Y, U, V in dB; inf for identical frames
    ssim: float  # "All" SSIM, 1.0 for identical frames


def compare_video(a: Path, b: Path) -> list[FrameScore]:
    """Per-frame PSNR and SSIM of ``b`` against ``a`` (ffmpeg's psnr and ssim filters)."""
    with tempfile.TemporaryDirectory() as work:
        psnr_log, ssim_log = Path(work) / "psnr.log", Path(work) / "ssim.log"
        graph = (
            "[0:v]split[a1][a2];[1:v]split[b1][b2];"
            f"[a1][b1]psnr=stats_file={psnr_log.as_posix()}[p];"
            f"[a2][b2]ssim=stats_file={ssim_log.as_posix()}[s]"
        )
        cmd = [*_base_args(), "-loglevel", "error", "-i", str(a), "-i", str(b), "-filter_complex", graph]
        cmd += ["-map", "[p]", "-f", "null", "-", "-map", "[s]", "-f", "null", "-"]
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
        if proc.returncode != 0:
            raise MediaError(f"cannot compare {a.name} with {b.name}: {proc.stderr.strip()[-300:]}")
        psnr = [float(m.group(1)) for m in re.finditer(r"psnr_avg:(\S+)", psnr_log.read_text())]
        ssim = [float(m.group(1)) for m in re.finditer(r"All:(\S+)", ssim_log.read_text())]
    return [FrameScore(p, s) for p, s in zip(psnr, ssim, strict=False)]


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
