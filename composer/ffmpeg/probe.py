"""What a media file holds, read with ffmpeg alone (the imageio-ffmpeg wheel has no ffprobe).

What lives here: :func:`probe` (stream facts from the ``ffmpeg -i`` banner, and a clip's
display size from them), :func:`packets` (a video stream's packets as stored, from a
``framecrc`` listing of a stream copy), :func:`decode` / :func:`decode_range` (frame and audio
sample counts and decoder complaints), :func:`frame_hashes` and :func:`compare_video`.
Probes and packet listings are remembered while a file is unchanged. What does not: deciding
what a fact means for a render (``compose/``, ``analysis/``).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from composer.errors import MediaError
from composer.ffmpeg.encode import seek_text
from composer.ffmpeg.process import _base_args, complaints, ffmpeg_exe
from composer.timecode import parse_fps

_T = TypeVar("_T")


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

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as a viewer sees the picture: pixels squared (width x SAR) and a
        90/270 degree rotation applied, each side rounded to the nearest pixel, at least 2.

        Not rounded to even numbers: that is what an encoder needs, not what the picture is,
        so callers that encode at this size round it themselves (``compose/clips.py`` to the
        nearest even output size, ``analysis/frames.py`` down to even for full-size frames).
        """
        width, height = max(2, round(self.width * self.sar)), max(2, self.height)
        return (height, width) if self.rotation in (90, 270) else (width, height)


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


#: Ranges up to this many frames are decoded on one thread: frame threads pay off only with
#: many frames in flight (8 noisy 1080p frames: 0.34 CPU-s on one thread, 0.52 on three), and
#: the joins' check decodes its short ranges side by side anyway.
SHORT_RANGE = 48


def decode_range(path: Path, first: int, frames: int, fps: Fraction) -> DecodeReport:
    """Decode ``frames`` video frames from frame ``first``, which must be a keyframe.

    Counts the frames and collects decoder complaints, like :func:`decode`. The deblocking
    filter is skipped: it cannot raise a decoding error, and it is a fifth of the work.
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "level+info", "-nostats"]
    if frames <= SHORT_RANGE:
        cmd += ["-threads", "1"]
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
_ROW_SUM_RE = re.compile(r"^0,\s*(-?\d+),\s*(-?\d+),\s*\d+,\s*(\d+),\s*(0x[0-9a-f]+)(.*)$")


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
            if end not in self.closed_ends():
                raise ValueError(f"frame {end} does not end a run of pictures that can be copied")
            outpoint = Fraction(self.dts[end - 1] + self.dts[end], 2) * self.time_base
        return inpoint, outpoint

    def closed_ends(self) -> set[int]:
        """Display indices ``k`` where a copy from an earlier IDR frame may end: the first ``k``
        packets in decode order are exactly the pictures shown before ``k`` (no B-frame shown
        before ``k`` is decoded after it). Every IDR of a closed GOP is one; inside a GOP, so is
        the frame after each run of B-frames and its anchor. Includes the end of the stream.
        """
        rank = {packet: index for index, packet in enumerate(self.display_order())}
        ends, highest = {self.frames}, -1
        for count, packet in enumerate(range(self.frames), start=1):
            highest = max(highest, rank[packet])
            if highest == count - 1:
                ends.add(count)
        return ends

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


@_while_unchanged
def picture_sums(path: Path) -> tuple[str, ...]:
    """One line per video packet in decode order: its timing, flags, size and Adler-32, with
    any in-band H.264 parameter sets and delimiters left out (``filter_units``), no decoding.

    Two files whose lines agree hold packets that decode to the same pictures: a clip and the
    same clip stream-copied to the start of a longer one (the concat demuxer repeats the SPS/PPS
    in front of a file's first IDR, which changes its bytes but not its pictures).
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path)]
    cmd += ["-map", "0:v:0", "-c", "copy"]
    if packets(path).codec == "h264":
        cmd += ["-bsf:v", "filter_units=remove_types=7|8|9"]
    cmd += ["-f", "framecrc", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
    if proc.returncode != 0:
        raise MediaError(f"cannot read the packets of {path}: {proc.stderr.strip()[-300:]}")
    rows = (_ROW_SUM_RE.match(line) for line in proc.stdout.splitlines() if not line.startswith("#"))
    return tuple(" ".join(row.groups()).strip() for row in rows if row)


def opens(prefix: Path, whole: Path) -> bool:
    """True if every picture of ``prefix`` is, packet for packet, the start of ``whole`` (same
    codec parameters too): each step of an extension chain that only appended frames."""
    a, b = packets(prefix), packets(whole)
    if a.extradata != b.extradata or a.time_base != b.time_base or a.frames > b.frames:
        return False
    head, full = picture_sums(prefix), picture_sums(whole)
    return len(head) == a.frames and head == full[: len(head)]


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
