"""Encode once: bring a take to the output's encoding, or recognise that it already is.

What lives here: :class:`NormSpec` (what a leg of an output needs from its clip: size, fps,
frame range and the frames that must be IDR keyframes), :func:`normalize_take` (encode the
clip to that spec, cached beside the take, or reuse the clip untouched when it already carries
the output encoding, whatever its keyframes), :func:`encoding_problem` (which codec parameter
stops a clip being copied) and :func:`reuse_problem` (that, or the plan's keyframes it lacks). The
pipeline calls :func:`normalize_take` right after a take is accepted, in a background thread,
so that assembling an output later copies these files instead of encoding them.

What does not live here: ffmpeg command lines (``composer/ffmpeg/``), deciding which frames
are copied (``compose/graph.py``), assembling outputs (``compose/smart.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

from composer import ffmpeg
from composer.errors import MediaError
from composer.plan.timing import LegLayout
from composer.timecode import fps_text

#: Bump when the normalisation chain or the encoder settings change: old cached files are
#: then ignored (their names no longer match) instead of being mixed with new ones.
NORMALIZE_VERSION = 3  # 2: regular IDR frames every ffmpeg.GOP_SECONDS; 3: stitchable headers (issue 19)


@dataclass(frozen=True)
class NormSpec:
    """Frames ``[start, start + frames)`` of a clip at ``width x height``, ``fps``.

    ``keyframes`` are counted from ``start`` and always include 0. ``edges`` are the
    ``(first, frames)`` ranges, counted alike, that an assembly will blend in a crossfade: an
    encode keeps them losslessly beside the file (:class:`Edge`).
    """

    width: int
    height: int
    fps: Fraction
    start: int
    frames: int
    keyframes: tuple[int, ...]
    edges: tuple[tuple[int, int], ...] = ()

    @classmethod
    def for_leg(cls, width: int, height: int, fps: Fraction, start: int, leg: LegLayout) -> NormSpec:
        """What a leg laid out as ``leg`` needs from frame ``start`` of its clip: its keyframes
        and, as edges, the ranges its crossfades blend (:class:`composer.plan.timing.LegLayout`)."""
        return cls(width, height, fps, start, leg.frames, leg.keyframes, leg.blends)

    def key(self) -> str:
        """A stable name for this spec and the encoder settings, for the cache."""
        text = json.dumps(
            {
                "v": NORMALIZE_VERSION,
                "size": [self.width, self.height],
                "fps": fps_text(self.fps),
                "start": self.start,
                "frames": self.frames,
                "keyframes": sorted(set(self.keyframes) | {0}),
                "x264": ffmpeg.x264_args(self.fps),
            },
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Edge:
    """Frames ``[first, first + frames)`` of a leg, lossless, in ``path`` (from its frame 0).

    These are the frames of the normalisation chain before x264, so a crossfade made from
    them blends exactly what the full re-encode blends, and reading them costs no H.264
    decoding (:data:`composer.ffmpeg.EDGE_ARGS`).
    """

    first: int
    frames: int
    path: Path


@dataclass(frozen=True)
class Normalized:
    """Where a leg's frames are, in the output encoding.

    The leg's frame 0 is frame ``offset`` of ``path``; ``cut_points`` are the leg frames
    (0..frames) where ``path`` can be split by stream copy (IDR frames, end of file).
    ``end_points`` are the leg frames where a copy that started at a cut point may stop (every cut point,
    and inside a GOP wherever no B-frame straddles: :meth:`~composer.ffmpeg.PacketInfo.closed_ends`).
    ``reused`` says the clip itself was used as it is (its codec parameters match the
    output's, whatever its keyframes: :func:`encoding_problem`), else ``reason`` says why not; ``encoded_frames`` is what this call
    encoded (0 when reused or found in the cache). ``edges`` are what the encode kept of the
    crossfade frames (none for a clip reused as it is).
    """

    path: Path
    offset: int
    frames: int
    cut_points: frozenset[int]
    extradata: str
    reused: bool
    encoded_frames: int
    edges: tuple[Edge, ...] = ()
    reason: str = ""  # why the clip was not used as it is (the parameter that differed)
    end_points: frozenset[int] = frozenset()


# One lock per cache file: the pipeline may normalise a take in a background thread while an
# assembly asks for the same file; the second caller waits and then finds the file done.
_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path.resolve(), threading.Lock())


def cache_path(source: Path, spec: NormSpec, cache_dir: Path | None = None) -> Path:
    """Where the normalised file for ``source`` and ``spec`` lives (beside the take by default)."""
    stat = source.stat()
    # Takes in the cache never change, but clips from anywhere might: their size and mtime
    # are part of the name so an edited clip is encoded again.
    ident = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:8]
    folder = cache_dir if cache_dir is not None else source.parent
    return folder / f"{source.stem}.norm-{spec.key()}-{ident}.mp4"


def edge_path(normalized: Path, first: int, frames: int) -> Path:
    """Where the edge ``[first, first + frames)`` of the normalised file ``normalized`` lives."""
    return normalized.with_name(f"{normalized.stem}.edge{first}+{frames}.nut")


def _edges(dest: Path, spec: NormSpec) -> tuple[Edge, ...]:
    """The edges of ``spec`` found complete beside ``dest`` (an older cache may have none)."""
    found = []
    for first, frames in spec.edges:
        path = edge_path(dest, first, frames)
        # Ut Video is intra only: one packet per frame. A short file is never used.
        if path.is_file() and ffmpeg.packets(path).frames == frames:
            found.append(Edge(first, frames, path))
    return tuple(found)


_reference_lock = threading.Lock()


def reference_extradata(width: int, height: int, fps: Fraction) -> str:
    """The codec parameters (avcC) composer's encoder writes at this size and rate."""
    # Locked: the legs are prepared on several threads, and each would probe the encoder.
    with _reference_lock:
        return _reference_extradata(width, height, fps)


@lru_cache(maxsize=16)
def _reference_extradata(width: int, height: int, fps: Fraction) -> str:
    return ffmpeg.encoder_extradata(width, height, fps)


def _cut_points(info: ffmpeg.PacketInfo, offset: int, frames: int) -> frozenset[int]:
    points = {k - offset for k in info.keyframe_indices() if offset <= k <= offset + frames}
    if info.frames - offset <= frames:
        points.add(info.frames - offset)  # the end of the file ends any copy cleanly
    return frozenset(points)


def _end_points(info: ffmpeg.PacketInfo, offset: int, frames: int) -> frozenset[int]:
    # Where a copy that started at an IDR may stop (PacketInfo.closed_ends): inside a GOP too,
    # so a crossfade out of a clip with long GOPs re-encodes from the fade, not from the GOP's IDR.
    return frozenset(k - offset for k in info.closed_ends() if offset <= k <= offset + frames)


def encoding_problem(source: Path, spec: NormSpec, info: ffmpeg.PacketInfo | None = None) -> str | None:
    """None if ``source``'s packets can be copied into an output of ``spec`` as they are;
    otherwise the first parameter that differs, in words (it forced a normalisation).

    These are the output's codec parameters: codec, size, SAR and rotation, pixel format,
    profile and colour tags (all in the SPS/PPS, compared last and whole), time base and
    frame grid, and enough frames. Keyframes are not among them: the smart plan copies from
    whatever IDR frames the clip has and re-encodes the rest (:func:`reuse_problem` names
    the missing ones).
    """
    media = ffmpeg.probe(source)
    info = info or ffmpeg.packets(source)
    if info.codec != "h264":
        return f"codec {info.codec}, not h264"
    if (media.width, media.height) != (spec.width, spec.height):
        return f"size {media.width}x{media.height}, not {spec.width}x{spec.height}"
    if media.sar != 1:
        return f"SAR {media.sar.numerator}:{media.sar.denominator}, not 1:1"
    if media.rotation:
        return f"rotation {media.rotation} degrees, not 0"
    if media.pix_fmt != "yuv420p":
        return f"pixel format {media.pix_fmt or 'unknown'}, not yuv420p"
    tick = Fraction(1) / spec.fps / info.time_base
    if info.time_base != Fraction(1, ffmpeg.timescale(spec.fps)) or tick.denominator != 1:
        return f"time base {info.time_base}, not 1/{ffmpeg.timescale(spec.fps)}"
    # Constant frame rate on the exact grid from 0: frame n is at n * tick.
    if sorted(info.pts) != [n * int(tick) for n in range(info.frames)]:
        return f"frame rate: frames are not evenly spaced at {fps_text(spec.fps)} fps from 0"
    if info.frames < spec.start + spec.frames:
        return f"{info.frames} frames, fewer than the {spec.start + spec.frames} needed"
    if info.extradata != reference_extradata(spec.width, spec.height, spec.fps):
        # One avcC for the whole output: the copied packets and the re-encoded windows must
        # share it, and only composer's x264 settings write the windows. Profile, level,
        # colour tags and the encoder's other choices all live here.
        return "codec parameters (SPS/PPS: profile, colour tags or encoder settings) differ from composer's encoder"
    return None


def step_end(spec: NormSpec, available: int) -> int:
    """How many of the leg's frames (from its frame 0) a step that holds ``available`` frames
    at the output rate can normalise: those it has, never ending inside an edge (a crossfade's
    frames are kept from one encode: the part stops where the edge starts)."""
    end = max(0, min(spec.frames, available - spec.start))
    for first, frames in spec.edges:
        if first < end < first + frames:
            end = first
    return end


def available_frames(step: Path, fps: Fraction) -> int:
    """Frames at ``fps`` the take ``step`` surely yields through the normalisation chain: all
    of them at its own rate; at another rate, one fewer than its length gives (the ``fps``
    filter may place the very last output frame differently once the take is longer)."""
    frames = ffmpeg.packets(step).frames
    own = ffmpeg.probe(step).fps
    if own is None or own == fps:
        return frames
    return max(0, int(Fraction(frames) * fps / own) - 1)


def chain_parts(source: Path, spec: NormSpec, steps: Sequence[Path]) -> list[tuple[Path, int, int]]:
    """``(take, first, end)``: the leg frames ``[first, end)`` each take of the chain encodes.

    ``steps`` are the chain's earlier takes, shortest first; ``source``, its last, ends the leg.
    A step that adds none of the leg's frames gets no part.
    """
    parts: list[tuple[Path, int, int]] = []
    done = 0
    for step in steps:
        end = step_end(spec, available_frames(step, spec.fps))
        if end > done:
            parts.append((step, done, end))
            done = end
    if done < spec.frames or not parts:
        parts.append((source, done, spec.frames))
    return parts


def part_spec(spec: NormSpec, first: int, end: int) -> NormSpec:
    """Leg frames ``[first, end)`` of ``spec`` as a spec of their own: the keyframes and edges
    inside them, counted from ``first``, and an IDR at its frame 0 (every part starts on one)."""
    keyframes = tuple(sorted({0} | {k - first for k in spec.keyframes if first <= k < end}))
    edges = tuple((f - first, n) for f, n in spec.edges if first <= f and f + n <= end)
    return NormSpec(spec.width, spec.height, spec.fps, spec.start + first, end - first, keyframes, edges)


def normalize_step(
    step: Path, spec: NormSpec, earlier: Sequence[Path] = (), *, cache_dir: Path | None = None
) -> Normalized | None:
    """Encode the part of the leg ``spec`` that the chain's take ``step`` newly holds, now,
    beside it (cached); None when it adds none of the leg's frames or is in the output
    encoding already (the whole take will be used as it is). ``earlier``: the steps before it.
    """
    if encoding_problem(step, spec) is None:
        return None
    parts = chain_parts(step, spec, [*earlier, step])
    own = [part for part in parts if part[0] == step]
    if not own:
        return None
    _, first, end = own[0]
    return normalize_take(step, part_spec(spec, first, end), cache_dir=cache_dir, allow_reuse=False)


def _join_parts(
    source: Path,
    spec: NormSpec,
    steps: Sequence[Path],
    dest: Path,
    cache_dir: Path | None,
    on_progress: ffmpeg.ProgressFn | None,
) -> int | None:
    """Write ``dest`` from the chain's parts (encoding those not cached yet) by stream copy,
    with its edges; the frames encoded now, or None when the chain cannot be used (a step is
    not the start of ``source``, or only one part would be made)."""
    parts = chain_parts(source, spec, steps)
    if len(parts) < 2 or not all(ffmpeg.opens(step, source) for step, _, _ in parts[:-1]):
        return None
    done = [
        normalize_take(step, part_spec(spec, first, end), cache_dir=cache_dir, allow_reuse=False)
        for step, first, end in parts
    ]
    # The parts' edges become the leg's (a link: no copy of lossless frames), before
    # the file whose name says the leg is done.
    for (_, first, _), piece in zip(parts, done, strict=True):
        for edge in piece.edges:
            target = edge_path(dest, first + edge.first, edge.frames)
            target.unlink(missing_ok=True)
            try:
                os.link(edge.path, target)
            except OSError:
                shutil.copyfile(edge.path, target)
    ffmpeg.assemble(
        [ffmpeg.ConcatPart(piece.path, piece.frames) for piece in done],
        dest,
        fps=spec.fps,
        frames=spec.frames,
        on_progress=on_progress,
    )
    return sum(piece.encoded_frames for piece in done)


def reuse_problem(source: Path, spec: NormSpec, info: ffmpeg.PacketInfo | None = None) -> str | None:
    """None if ``source`` matches ``spec`` exactly, keyframes included; otherwise why not.

    :func:`normalize_take` needs only :func:`encoding_problem` to be None; missing keyframes
    just widen the windows an assembly re-encodes (to the clip's next IDR).
    """
    info = info or ffmpeg.packets(source)
    problem = encoding_problem(source, spec, info)
    if problem:
        return problem
    missing = [k for k in spec.keyframes if k and (spec.start + k) not in info.keyframe_indices()]
    if spec.start not in info.keyframe_indices() and spec.start > 0:
        missing.insert(0, 0)
    if missing:
        return f"no keyframe at frame(s) {', '.join(str(spec.start + k) for k in missing)}"
    return None


def normalize_take(
    source: Path,
    spec: NormSpec,
    *,
    cache_dir: Path | None = None,
    allow_reuse: bool = True,
    on_progress: ffmpeg.ProgressFn | None = None,
    steps: Sequence[Path] = (),
) -> Normalized:
    """The leg ``spec`` of ``source`` in the output encoding: reused, cached, or encoded now.

    ``steps`` are the earlier takes of ``source``'s extension chain, shortest first: their
    parts (:func:`normalize_step`, done as each landed) are joined with the last one's instead
    of encoding the whole leg, when each step is the start of ``source``.

    Safe to call from several threads for the same file (one encodes, the others wait).
    The encoded file is written to a temporary name and renamed, so a crash leaves nothing
    that looks finished.
    """
    reason = "reuse turned off"
    if allow_reuse:
        info = ffmpeg.packets(source)
        problem = encoding_problem(source, spec, info)
        if problem is None:
            return Normalized(
                source,
                spec.start,
                spec.frames,
                _cut_points(info, spec.start, spec.frames),
                info.extradata,
                True,
                0,
                end_points=_end_points(info, spec.start, spec.frames),
            )
        reason = problem
    dest = cache_path(source, spec, cache_dir)
    with _lock_for(dest):
        encoded = 0
        joined = None
        if steps and not dest.is_file():
            joined = _join_parts(source, spec, steps, dest, cache_dir, on_progress)
        if joined is not None:
            encoded = joined
        elif not dest.is_file():
            ffmpeg.normalize(
                source,
                dest,
                start=spec.start,
                frames=spec.frames,
                width=spec.width,
                height=spec.height,
                fps=spec.fps,
                keyframes=spec.keyframes,
                edges=[(first, frames, edge_path(dest, first, frames)) for first, frames in spec.edges],
                on_progress=on_progress,
            )
            encoded = spec.frames
        info = ffmpeg.packets(dest)
        edges = _edges(dest, spec)
    if info.frames != spec.frames:
        # Never leave a wrong file under a name that looks right: nor the edges cut from it.
        for path in [dest, *(edge_path(dest, first, frames) for first, frames in spec.edges)]:
            path.unlink(missing_ok=True)
        raise MediaError(f"normalising {source.name} gave {info.frames} frames, not {spec.frames}")
    return Normalized(
        dest,
        0,
        spec.frames,
        _cut_points(info, 0, spec.frames),
        info.extradata,
        False,
        encoded,
        edges,
        reason,
        _end_points(info, 0, spec.frames),
    )
