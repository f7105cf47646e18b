"""Every ffmpeg command composer runs, and the only package that builds or runs one.

It takes plain numbers and paths and imports no stage: what to compose is decided in
``compose/`` (``compose/graph.py`` works out legs, fades and offsets; ``compose/render.py`` and
``compose/smart.py`` pass them here). The modules, bottom up:

- ``process.py``: finding the binary, running a command, atomic outputs, ffmpeg's complaints.
- ``encode.py``: the x264/AAC settings, timescales, forced keyframes and seek times every
  encode shares (so pieces can be joined by stream copy); :func:`rescale`.
- ``probe.py``: stream facts without ffprobe (:func:`probe`, :attr:`MediaInfo.display_size`),
  packet listings, decode checks, frame hashes and PSNR/SSIM.
- ``frames.py``: numpy frames and audio through pipes (:class:`FrameWriter`,
  :func:`read_frames`), single frames as PNG.
- ``graph.py``: filter graphs (the one module that imports ffmpeg-python): the normalisation
  chain, crossfades, the full composition, normalised takes, crossfade spans.
- ``concat.py``: concat listings, stream copies and the final assembly.

``from composer import ffmpeg`` then ``ffmpeg.probe(...)`` is how callers use it; the names
below are the package's public ones.
"""

from __future__ import annotations

from composer.ffmpeg.concat import (
    ConcatPart,
    assemble,
    assemble_args,
    concat_copy,
    concat_file_line,
    concat_listing,
    copy_frames,
)
from composer.ffmpeg.encode import (
    AUDIO_BITRATE,
    GOP_SECONDS,
    WINDOW_CRF,
    X264_CRF,
    X264_PRESET,
    audio_args,
    gop_frames,
    keyframe_args,
    rescale,
    seek_text,
    timescale,
    timescale_args,
    x264_args,
)
from composer.ffmpeg.frames import FrameWriter, extract_frame, read_audio, read_frames, read_reference_frames
from composer.ffmpeg.graph import (
    EDGE_ARGS,
    LegInput,
    SpanInput,
    compose,
    compose_args,
    encode_audio,
    encode_span,
    encoder_extradata,
    normalize,
)
from composer.ffmpeg.probe import (
    DecodeReport,
    FrameScore,
    MediaInfo,
    PacketInfo,
    compare_video,
    decode,
    decode_range,
    frame_hashes,
    opens,
    packets,
    picture_sums,
    probe,
)
from composer.ffmpeg.process import ProgressFn, atomic_output, complaints, ffmpeg_exe, ffmpeg_version, run

__all__ = [
    "AUDIO_BITRATE",
    "EDGE_ARGS",
    "GOP_SECONDS",
    "WINDOW_CRF",
    "X264_CRF",
    "X264_PRESET",
    "ConcatPart",
    "DecodeReport",
    "FrameScore",
    "FrameWriter",
    "LegInput",
    "MediaInfo",
    "PacketInfo",
    "ProgressFn",
    "SpanInput",
    "assemble",
    "assemble_args",
    "atomic_output",
    "audio_args",
    "compare_video",
    "complaints",
    "compose",
    "compose_args",
    "concat_copy",
    "concat_file_line",
    "concat_listing",
    "copy_frames",
    "decode",
    "decode_range",
    "encode_audio",
    "encode_span",
    "encoder_extradata",
    "extract_frame",
    "ffmpeg_exe",
    "ffmpeg_version",
    "frame_hashes",
    "gop_frames",
    "keyframe_args",
    "normalize",
    "opens",
    "packets",
    "picture_sums",
    "probe",
    "read_audio",
    "read_frames",
    "read_reference_frames",
    "rescale",
    "run",
    "seek_text",
    "timescale",
    "timescale_args",
    "x264_args",
]
