"""Filter graphs, built with ffmpeg-python (the one module that imports it), and the encodes
that run them.

What lives here: the normalisation chain every leg goes through (constant rate, hold the last
frame, square pixels, letterbox), crossfades, the full one-command composition
(:func:`compose`), its audio mix alone (:func:`encode_audio`), :func:`normalize` (a take in the
output encoding, with the frames around its crossfades kept losslessly beside it),
:func:`encode_span` (a short re-encoded crossfade) and :func:`encoder_extradata`.
What does not: deciding the numbers. Callers pass plain paths and frame counts; the legs,
fades and offsets of a composition are worked out in ``compose/graph.py``.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg as ffmpeg_graph  # ffmpeg-python (top-level module ``ffmpeg``), for filter graphs only

from composer.ffmpeg.encode import (
    WINDOW_CRF,
    X264_CRF,
    audio_args,
    keyframe_args,
    seek_text,
    timescale_args,
    x264_args,
)
from composer.ffmpeg.probe import packets
from composer.ffmpeg.process import ProgressFn, atomic_output, complaints, ffmpeg_exe, run
from composer.timecode import AUDIO_RATE, audio_samples, fps_text

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


@dataclass(frozen=True)
class LegInput:
    """One leg of a full composition: frames ``[start, start + frames)`` of ``path`` after the
    normalisation chain, its audio (or silence when ``has_audio`` is false) cut to match."""

    path: Path
    frames: int
    has_audio: bool
    start: int = 0


def compose_args(
    legs: Sequence[LegInput],
    fades: Sequence[int],
    offsets: Sequence[int],
    dest: Path,
    *,
    width: int,
    height: int,
    fps: Fraction,
    frames: int,
    audio: bool,
) -> list[str]:
    """The full ffmpeg command for a composition (one process: normalise, join, encode).

    ``fades[k]`` and ``offsets[k]`` join leg k+1 to leg k: a crossfade of that many frames
    (0 = cut) starting at that output frame; ``frames`` is the output's length. The numbers
    come from ``compose/graph.py``; audio is cut to exact sample counts of them.
    """
    inputs = [_input(str(leg.path), index) for index, leg in enumerate(legs)]
    videos = [
        _video_chain(inp.video, leg.start, leg.frames, width, height, fps)
        for inp, leg in zip(inputs, legs, strict=True)
    ]
    audios = []
    if audio:
        for index, (inp, leg) in enumerate(zip(inputs, legs, strict=True)):
            source = inp.audio if leg.has_audio else _silence(index)
            audios.append(_audio_leg(source, audio_samples(leg.start, fps), audio_samples(leg.frames, fps)))
    video, mixed = videos[0], audios[0] if audios else None
    for k, (fade, offset) in enumerate(zip(fades, offsets, strict=True)):
        nxt_audio = audios[k + 1] if audios else None
        if fade:
            video = _xfade(video, videos[k + 1], fade, offset, fps)
            if mixed is not None and nxt_audio is not None:
                mixed = ffmpeg_graph.filter(
                    [mixed, nxt_audio], "acrossfade", ns=audio_samples(fade, fps), c1="tri", c2="tri"
                )
        elif mixed is not None and nxt_audio is not None:
            joined = ffmpeg_graph.concat(video, mixed, videos[k + 1], nxt_audio, v=1, a=1).node
            video, mixed = joined[0], joined[1]
        else:
            video = ffmpeg_graph.concat(video, videos[k + 1], v=1, a=0)
    streams = [video]
    out_args: dict[str, object] = {}
    if mixed is not None:
        mixed = mixed.filter("apad").filter("atrim", end_sample=audio_samples(frames, fps))
        streams.append(mixed)
    graph = ffmpeg_graph.output(*streams, str(dest), f="mp4", **out_args)
    args = graph.compile(cmd=ffmpeg_exe())
    # Encoder settings are appended before the output file, shared with every other encode.
    encode = [*x264_args(fps), "-frames:v", str(frames)]
    if mixed is not None:
        encode += audio_args()
    encode += ["-movflags", "+faststart"]
    return [*args[:-1], *encode, args[-1]]


def compose(
    legs: Sequence[LegInput],
    fades: Sequence[int],
    offsets: Sequence[int],
    dest: Path,
    *,
    width: int,
    height: int,
    fps: Fraction,
    frames: int,
    audio: bool,
    on_progress: ProgressFn | None = None,
) -> None:
    """Render a composition (see :func:`compose_args`) into ``dest`` atomically, reporting
    output frames done."""
    with atomic_output(dest) as tmp:
        args = compose_args(
            legs, fades, offsets, tmp, width=width, height=height, fps=fps, frames=frames, audio=audio
        )
        run(
            [args[0], "-hide_banner", "-nostdin", "-y", *args[1:]],
            total_frames=frames,
            on_progress=on_progress,
            what=f"composing {dest.name}",
        )


def _audio_mix(legs: Sequence[LegInput], fades: Sequence[int], fps: Fraction, frames: int) -> Stream:
    """The audio graph of :func:`compose` alone: exact samples per leg, acrossfade, silence."""
    sources = []
    for index, leg in enumerate(legs):
        source = _input(str(leg.path), index).audio if leg.has_audio else _silence(index)
        sources.append(_audio_leg(source, audio_samples(leg.start, fps), audio_samples(leg.frames, fps)))
    audio = sources[0]
    for k, fade in enumerate(fades):
        if fade:
            audio = ffmpeg_graph.filter(
                [audio, sources[k + 1]], "acrossfade", ns=audio_samples(fade, fps), c1="tri", c2="tri"
            )
        else:
            audio = ffmpeg_graph.concat(audio, sources[k + 1], v=0, a=1)
    return audio.filter("apad").filter("atrim", end_sample=audio_samples(frames, fps))


def encode_audio(
    legs: Sequence[LegInput], fades: Sequence[int], dest: Path, *, fps: Fraction, frames: int
) -> None:
    """A composition's audio alone, mixed as :func:`compose` mixes it, encoded once (AAC).

    Run beside the video pieces of a smart assembly; the last call copies it as it is
    (remuxing keeps AAC's priming, so the decoded samples are those of a direct encode).
    """
    args = ffmpeg_graph.output(_audio_mix(legs, fades, fps, frames), str(dest), f="mp4").compile(
        cmd=ffmpeg_exe()
    )
    run(
        [args[0], "-hide_banner", "-nostdin", "-y", *args[1:-1], *audio_args(), "-vn", args[-1]],
        what=f"mixing the audio for {dest.name}",
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
) -> tuple[str, str]:
    """Encode a short piece: the inputs joined by crossfades (0 = cut), same settings as bodies.

    The blended frames are encoded at ``WINDOW_CRF`` (one generation more than the bodies
    they sit between); frames of one input alone (a foreign clip's head up to its next IDR,
    a tail back to its last one) at the bodies' ``X264_CRF``, as the full re-encode would,
    through x264 zones, which leave the SPS/PPS alone.

    ``single_thread`` keeps the decoders and filters to one thread each, for a caller that
    runs several jobs side by side; x264 keeps its threads, so a span left alone once the other
    jobs are done uses every core (measured: 4.5 -> 4.1 s for a 1080p assembly against one
    thread for x264 too). Threads do not change the codec parameters x264 writes.

    Returns ffmpeg's (errors, warnings) (:func:`complaints`): empty when every input frame
    it decoded, from each input's seek point on, decoded cleanly.
    """
    frames = sum(i.frames for i in inputs) - sum(fades)
    threads = {"threads": 1} if single_thread else {}
    blends: list[tuple[int, int]] = []  # span frames [first, end) that blend two inputs
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
                blends.append((length - fade, length))
            else:
                video = ffmpeg_graph.concat(video, legs[k + 1], v=1, a=0)
            length += inputs[k + 1].frames - fade
        args = ffmpeg_graph.output(video, str(tmp), f="mp4").compile(cmd=ffmpeg_exe())
        all_blend = sum(end - first for first, end in blends) == frames
        encode = [*x264_args(fps, crf=WINDOW_CRF if all_blend else X264_CRF), *timescale_args(fps)]
        if blends and not all_blend:
            zones = "/".join(f"{first},{end - 1},crf={WINDOW_CRF}" for first, end in blends)
            encode[encode.index("-x264-params") + 1] += f":zones={zones}"
        encode += ["-frames:v", str(frames)]
        if single_thread:
            encode += ["-filter_complex_threads", "1"]
        lines = run(
            [args[0], "-hide_banner", "-nostdin", "-y", *args[1:-1], *encode, "-an", args[-1]],
            total_frames=frames,
            on_progress=on_progress,
            what=f"encoding a crossfade for {dest.name}",
            loglevel="level+warning",
        )
    return complaints(lines)
