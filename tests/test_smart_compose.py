"""Smart assembly on tiny real clips: frame-exact, clean, bit-exact bodies, same look as the full render."""

from __future__ import annotations

import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import ffmpeg as ffmpeg_graph
import numpy as np
import pytest

from composer import ffmpeg
from composer.compose import smart, verified
from composer.compose.clips import compose_clips
from composer.compose.graph import Copy, Leg, Span, build, smart_plan
from composer.compose.normalize import normalize_take
from composer.compose.render import compose_composition, compose_full, verify
from tests.conftest import MakeClip

FPS = Fraction(24)


def _three_legs(make_clip: MakeClip) -> list[Leg]:
    a = make_clip("sa", seconds=3, size="320x180", source="testsrc2")
    b = make_clip("sb_noaudio", seconds=3, size="256x180", rate="30", audio_hz=None, source="smptehdbars")
    c = make_clip("sc", seconds=3, size="320x180", audio_hz=880, source="testsrc")
    return [Leg(a, 60, True), Leg(b, 66, False, start=4), Leg(c, 50, True)]


# --- the pure plan -----------------------------------------------------------------------


def test_plan_copies_bodies_and_encodes_only_the_windows() -> None:
    legs = [Leg(Path("a"), 60, True), Leg(Path("b"), 66, True), Leg(Path("c"), 50, True)]
    comp = build(legs, [12, 0], 320, 180, FPS, True)
    assert comp.layout.legs[0].keyframes == (0, 48)
    assert comp.layout.legs[1].keyframes == (0, 12)
    cuts = [frozenset({*comp.layout.legs[i].keyframes, leg.frames}) for i, leg in enumerate(legs)]
    plan = smart_plan(comp, cuts)
    assert plan.pieces == (
        Copy(0, 0, 48, 0),
        Span((smart_span_part(0, 48, 12), smart_span_part(1, 0, 12)), (12,), 48),
        Copy(1, 12, 54, 60),
        Copy(2, 0, 50, 114),
    )
    assert plan.encoded_frames == 12 and plan.copied_frames == comp.frames - 12


def test_the_check_decodes_the_joins_and_only_the_bodies_nobody_has_decoded() -> None:
    legs = [Leg(Path("a"), 60, True), Leg(Path("b"), 66, True), Leg(Path("c"), 50, True)]
    comp = build(legs, [12, 0], 320, 180, FPS, True)
    plan = smart_plan(
        comp, [frozenset({*comp.layout.legs[i].keyframes, leg.frames}) for i, leg in enumerate(legs)]
    )
    assert [(p.at, p.frames) for p in plan.pieces] == [(0, 48), (48, 12), (60, 54), (114, 50)]
    # Every piece from the IDR that opens it, for JOIN_CHECK_FRAMES: the joins.
    assert smart.JOIN_CHECK_FRAMES == 4
    assert smart.join_windows(comp, plan) == [(0, 4), (48, 4), (60, 4), (114, 4)]
    # Leg b's body came from a clip used as it is and never decoded: read it whole...
    # (it meets c's join at 114: one range)
    assert smart.join_windows(comp, plan, whole={1}) == [(0, 4), (48, 4), (60, 58)]
    # ... but for the tail a span already decoded cleanly from the clip (b's frames [12, 66)).
    assert smart.join_windows(comp, plan, whole={1}, decoded={1: [(40, 66)]})[2] == (60, 28)
    # Ranges that meet cover the body back to its start: only the join is read.
    assert smart.join_windows(comp, plan, whole={1}, decoded={1: [(30, 66), (0, 30)]})[2] == (60, 4)
    # A gap stops the cover: frames [12, 50) were not decoded, so they are read.
    assert smart.join_windows(comp, plan, whole={1}, decoded={1: [(50, 66), (20, 40)]})[2] == (60, 38)
    # Another leg's ranges say nothing about this one.
    assert smart.join_windows(comp, plan, whole={1}, decoded={0: [(0, 66)]})[2] == (60, 58)


def smart_span_part(leg: int, first: int, frames: int):  # small helper for readable expectations
    from composer.compose.graph import SpanPart

    return SpanPart(leg, first, frames)


def test_plan_widens_windows_to_the_keyframes_it_has() -> None:
    legs = [Leg(Path("a"), 100, True), Leg(Path("b"), 100, True), Leg(Path("c"), 100, True)]
    comp = build(legs, [10, 10], 64, 64, FPS, True)
    # Leg b has keyframes only at 0 and 50: no copyable range between its fades -> one span
    # from a's last keyframe through all of b to c's first keyframe after its fade.
    cuts = [frozenset({0, 80, 100}), frozenset({0, 50, 100}), frozenset({0, 30, 100})]
    plan = smart_plan(comp, cuts)
    assert [type(p) for p in plan.pieces] == [Copy, Span, Copy]
    span = plan.pieces[1]
    assert isinstance(span, Span) and span.at == 80 and span.frames == 20 + 100 + 30 - 20
    assert sum(p.frames for p in plan.pieces) == comp.frames == 280


def test_plan_refuses_a_leg_shorter_than_its_two_fades() -> None:
    legs = [Leg(Path("a"), 40, True), Leg(Path("b"), 20, True), Leg(Path("c"), 40, True)]
    comp = build(legs, [12, 12], 64, 64, FPS, True)
    with pytest.raises(ValueError, match="fewer than its two crossfades"):
        smart_plan(comp, [frozenset({0}), frozenset({0}), frozenset({0})])


# --- real files ------------------------------------------------------------------------------


def test_smart_render_is_exact_and_matches_the_full_render(make_clip: MakeClip, tmp_path: Path) -> None:
    comp = build(_three_legs(make_clip), [12, 0], 320, 180, FPS, True)
    progress: list[int] = []
    out = tmp_path / "smart.mp4"
    check = compose_composition(comp, out, progress.append, cache_dir=tmp_path / "norm")
    assert check.method == "smart", check.reason
    assert check.frames == comp.frames == 60 + 66 + 50 - 12
    assert check.encoded_frames == 12
    assert progress == sorted(progress) and progress[-1] == comp.frames

    report = ffmpeg.decode(out)
    assert (report.errors, report.warnings) == ("", "")
    assert ffmpeg.probe(out).start_s == 0.0 and min(ffmpeg.packets(out).pts) == 0
    assert ffmpeg.packets(out).extradata  # one set of codec parameters, in the avcC

    # Bodies are the normalised takes, bit for bit.
    out_hashes = ffmpeg.frame_hashes(out)
    plan = smart_plan(
        comp, [frozenset({*comp.layout.legs[i].keyframes, leg.frames}) for i, leg in enumerate(comp.legs)]
    )
    for piece in plan.pieces:
        if isinstance(piece, Copy):
            norm = normalize_take(
                comp.legs[piece.leg].path, smart.leg_spec(comp, piece.leg), cache_dir=tmp_path / "norm"
            )
            assert norm.encoded_frames == 0  # found in the cache, not encoded again
            body = ffmpeg.frame_hashes(norm.path)[piece.first : piece.first + piece.frames]
            assert out_hashes[piece.at : piece.at + piece.frames] == body

    # The whole file looks like the full re-encode of the same takes, windows included.
    full = tmp_path / "full.mp4"
    compose_full(comp, full)
    scores = ffmpeg.compare_video(full, out)
    assert len(scores) == comp.frames
    window = scores[48:60]
    assert min(s.psnr for s in window) >= 35 and min(s.ssim for s in window) >= 0.95
    assert min(s.psnr for s in scores) >= 33

    # Audio: same graph, encoded once: same length and the same signal as the full render.
    a, b = ffmpeg.read_audio(full), ffmpeg.read_audio(out)
    assert abs(len(a) - len(b)) <= 1024 and abs(len(b) - comp.samples) <= 1024
    n = min(len(a), len(b))
    assert np.abs(a[:n] - b[:n]).max() < 0.02


@pytest.mark.parametrize("fps", [Fraction(30000, 1001), Fraction(25)])
def test_other_rates_and_fade_only_outputs(make_clip: MakeClip, tmp_path: Path, fps: Fraction) -> None:
    vfr = make_clip("vfr", seconds=3, size="160x96", extra_video=["-vf", "setpts='PTS+gte(N,20)*0.1/TB'"])
    b = make_clip("plain", seconds=3, size="160x96")
    comp = build([Leg(vfr, 50, True), Leg(b, 40, True)], [16], 160, 96, fps, True)
    out = tmp_path / "out.mp4"
    check = compose_composition(comp, out, cache_dir=tmp_path / "norm")
    assert check.method == "smart", check.reason
    assert verify(out, comp, strict=True).frames == 74


def test_reuses_a_clip_already_in_the_output_encoding(make_clip: MakeClip, tmp_path: Path) -> None:
    clip = make_clip("reuse_src", seconds=3, size="160x96")
    comp = build([Leg(clip, 60, True), Leg(clip, 60, True)], [12], 160, 96, FPS, True)
    spec = smart.leg_spec(comp, 0)
    first = normalize_take(clip, spec, cache_dir=tmp_path)
    assert not first.reused and first.encoded_frames == 60
    again = normalize_take(first.path, spec, cache_dir=tmp_path / "other")
    assert again.reused and again.path == first.path and again.encoded_frames == 0
    assert not (tmp_path / "other").exists()


def test_a_body_that_does_not_decode_is_caught_and_rendered_in_full(
    make_clip: MakeClip, tmp_path: Path
) -> None:
    # A clip in the output encoding whose packets are intact in size but garbage inside: the
    # packet checks pass, the copy would carry the damage, so the decoding done while the
    # output is written must catch it and the full render take over.
    clip = make_clip("damaged_src", seconds=3, size="160x96", audio_hz=None)
    comp = build([Leg(clip, 72, False), Leg(clip, 72, False)], [12], 160, 96, FPS, False)
    good = normalize_take(clip, smart.leg_spec(comp, 0), cache_dir=tmp_path)
    damaged = tmp_path / "damaged.mp4"
    data = bytearray(good.path.read_bytes())
    start, end = data.index(b"mdat") + 4, data.index(b"moov")
    for share in (0.2, 0.35, 0.5, 0.65, 0.8):  # inside frames' slice data, far from the headers
        at = start + int((end - start) * share)
        data[at : at + 300] = bytes(b ^ 0x5A for b in data[at : at + 300])
    damaged.write_bytes(bytes(data))
    report = ffmpeg.decode(damaged)
    # A damaged IDR frame may be dropped whole (1 s GOPs put many IDRs in the damage's way),
    # a frame or two depending on where the flipped bytes land.
    assert 70 <= report.frames <= 72 and (report.errors or report.warnings)
    comp = build([Leg(damaged, 72, False), Leg(clip, 72, False)], [12], 160, 96, FPS, False)
    out = tmp_path / "out.mp4"
    check = compose_composition(comp, out, cache_dir=tmp_path / "norm")
    assert check.method == "full" and "failed its check" in check.reason, check.reason
    assert "decode" in check.reason
    assert check.frames == 132


def test_mismatched_codec_parameters_are_refused(make_clip: MakeClip, tmp_path: Path) -> None:
    # An ultrafast (baseline-like) encode with keyframes in the right places but other SPS/PPS.
    clip = make_clip("foreign", seconds=3, size="160x96", extra_video=["-force_key_frames", "expr:eq(n,48)"])
    comp = build([Leg(clip, 60, True), Leg(clip, 60, True)], [12], 160, 96, FPS, True)
    legs = [normalize_take(clip, smart.leg_spec(comp, i), cache_dir=tmp_path) for i in range(2)]
    foreign = legs[0].__class__(clip, 0, 60, frozenset({0, 48, 60}), ffmpeg.packets(clip).extradata, True, 0)
    with pytest.raises(smart.SmartUnavailable, match="codec parameters"):
        smart.assemble(comp, [foreign, legs[1]], tmp_path / "x.mp4")


def test_falls_back_to_the_full_render_and_says_why(make_clip: MakeClip, tmp_path: Path) -> None:
    clip = make_clip("short_mid", seconds=2, size="160x96")
    comp = build(
        [Leg(clip, 40, True), Leg(clip, 20, True), Leg(clip, 40, True)], [12, 12], 160, 96, FPS, True
    )
    out = tmp_path / "out.mp4"
    check = compose_composition(comp, out, cache_dir=tmp_path)
    assert check.method == "full" and "crossfades" in check.reason
    assert check.frames == 76


# --- clips from anywhere ---------------------------------------------------------------------


def test_compose_clips_mixed_inputs_with_length_and_cuts(make_clip: MakeClip, tmp_path: Path) -> None:
    a = make_clip("ca", seconds=2, size="320x180")
    b = make_clip("cb_anamorphic", seconds=2, size="240x180", sar="4/3", audio_hz=None, rate="30")
    portrait = make_clip("cc_portrait", seconds=2, size="180x320")
    c = tmp_path / "rotated.mp4"  # a phone clip: portrait pixels with a 90 degree display matrix
    subprocess.run(
        [
            ffmpeg.ffmpeg_exe(),
            "-v",
            "error",
            "-display_rotation",
            "90",
            "-i",
            str(portrait),
            "-c",
            "copy",
            str(c),
        ],
        check=True,
    )
    assert ffmpeg.probe(c).rotation == 90
    out = tmp_path / "clips.mp4"
    result = compose_clips([a, b, c], out, crossfade_s=0.5, length_s=5, cut_at=[3])
    assert (result.width, result.height, result.fps) == (320, 180, FPS)
    assert result.frames == 120 and result.check.frames == 120
    report = ffmpeg.decode(out)
    assert (report.errors, report.warnings) == ("", "")
    # Natural length 48 + 48 + 48 - 12 = 132 frames; --length 5 s keeps the first 120.
    assert result.natural_frames == 132
    # Padding: a longer --length holds the last frame.
    longer = compose_clips([a], tmp_path / "long.mp4", crossfade_s=0.5, length_s=3)
    assert longer.check.frames == 72 and longer.check.method == "smart"


def test_concat_parts_read_bodies_in_place_frame_exactly(make_clip: MakeClip, tmp_path: Path) -> None:
    # B-frames (x264's default) make decoding and display order differ: the out point must be
    # a decoding time and each part's duration explicit, or frames repeat or go missing.
    source = make_clip("gops", seconds=3, size="160x96", audio_hz=None)
    clip = tmp_path / "gops.mp4"
    ffmpeg.normalize(source, clip, start=0, frames=72, width=160, height=96, fps=FPS, keyframes=[24, 48])
    info = ffmpeg.packets(clip)
    assert info.dts != tuple(sorted(info.pts))  # reordered: the case that matters
    inpoint, outpoint = info.copy_points(24, 48)
    assert inpoint == 1 and outpoint is not None and 1 < outpoint < 2  # a DTS: before frame 48 shows
    assert info.copy_points(0, 72) == (None, None)
    with pytest.raises(ValueError, match="frame 30"):
        info.copy_points(30, 48)

    # Reorder the GOPs in place: frames 48-71, 0-23, 24-47 of the same file.
    parts = [
        ffmpeg.ConcatPart(clip, 24, *info.copy_points(48, 72)),
        ffmpeg.ConcatPart(clip, 24, *info.copy_points(0, 24)),
        ffmpeg.ConcatPart(clip, 24, inpoint, outpoint),
    ]
    out = tmp_path / "reordered.mp4"
    ffmpeg.assemble(parts, out, fps=FPS, frames=72)
    hashes = ffmpeg.frame_hashes(clip)
    assert ffmpeg.frame_hashes(out) == hashes[48:] + hashes[:24] + hashes[24:48]
    assert sorted(ffmpeg.packets(out).pts) == [n * 512 for n in range(72)]
    assert ffmpeg.decode(out).warnings == ""


def test_concat_listing_keeps_ntsc_durations_on_the_grid() -> None:
    fps = Fraction(30000, 1001)
    parts = [ffmpeg.ConcatPart(Path(f"/p{n}.mp4"), 7) for n in range(50)]
    durations = [
        Fraction(line.split()[1])
        for line in ffmpeg.concat_listing(parts, fps).splitlines()
        if line.startswith("duration")
    ]
    # Rounded once from the exact running time: the start of part k is never off by 1 µs or more.
    for k in range(len(parts)):
        assert abs(sum(durations[:k]) - Fraction(7 * k) / fps) < Fraction(1, 1_000_000)


def test_normalising_keeps_the_crossfade_frames_and_the_spans_blend_them(
    make_clip: MakeClip, tmp_path: Path
) -> None:
    # The frames a crossfade blends are written losslessly beside the normalised take, in the
    # same pass: the spans read them instead of decoding H.264 again.
    comp = build(_three_legs(make_clip), [12, 6], 320, 180, FPS, True)
    cache = tmp_path / "norm"
    legs = [
        normalize_take(leg.path, smart.leg_spec(comp, i), cache_dir=cache) for i, leg in enumerate(comp.legs)
    ]
    assert [[(e.first, e.frames) for e in leg.edges] for leg in legs] == [
        [(48, 12)],
        [(0, 12), (60, 6)],
        [(0, 6)],
    ]

    # An edge holds exactly the normalisation chain's frames (the ones the full re-encode blends).
    b, edge = comp.legs[1], legs[1].edges[1]
    chain = ffmpeg.graph._video_chain(
        ffmpeg_graph.input(str(b.path)).video, b.start + edge.first, edge.frames, 320, 180, FPS
    )
    lossless = tmp_path / "chain.nut"
    # The encoder's colour settings reach back into the chain (the scaler converts to BT.709).
    colour = {"colorspace": "bt709", "color_range": "tv"}
    ffmpeg_graph.output(chain, str(lossless), **ffmpeg.EDGE_ARGS, **colour).run(
        cmd=ffmpeg.ffmpeg_exe(), quiet=True
    )
    assert ffmpeg.frame_hashes(edge.path) == ffmpeg.frame_hashes(lossless)

    # The spans read the edges: other pictures in an edge change the window, not the bodies.
    plain, poisoned = tmp_path / "plain.mp4", tmp_path / "poisoned.mp4"
    smart.assemble(comp, legs, plain)
    tail = legs[0].edges[0]
    black = ffmpeg_graph.input("color=black:size=320x180:rate=24", f="lavfi")

    def overwrite(edge: Path, frames: int) -> None:
        black.output(str(edge), frames=frames, **ffmpeg.EDGE_ARGS).run(
            cmd=ffmpeg.ffmpeg_exe(), overwrite_output=True, quiet=True
        )

    overwrite(tail.path, 12)
    smart.assemble(comp, legs, poisoned)
    before, after = ffmpeg.frame_hashes(plain), ffmpeg.frame_hashes(poisoned)
    assert before[:48] == after[:48] and before[60:] == after[60:]
    assert all(x != y for x, y in zip(before[48:59], after[48:59], strict=True))

    # An edge that is not whole is never used: the span decodes the take instead.
    overwrite(tail.path, 5)
    again = normalize_take(comp.legs[0].path, smart.leg_spec(comp, 0), cache_dir=cache)
    assert again.encoded_frames == 0 and again.edges == ()
    fallback = tmp_path / "fallback.mp4"
    smart.assemble(comp, [again, *legs[1:]], fallback)
    hashes = ffmpeg.frame_hashes(fallback)
    assert hashes[:48] == before[:48] and hashes[60:] == before[60:]
    # Decoded from the take (lossy) rather than from the lossless edge: close, not equal.
    assert min(s.psnr for s in ffmpeg.compare_video(plain, fallback)[48:60]) >= 35


# --- composer's own files and foreign clips: cut, not normalised (issue 19) --------------------


def _packets(path: Path) -> list[tuple[int, bytes]]:
    """(pts, bytes) of every video packet in decoding order, read by stream copy (no decoding).

    In-band SPS/PPS NAL units in front of a picture are dropped: the concat demuxer repeats
    the parameter sets before the first IDR of a clip whose avcC bytes differ (the same
    parameters, laid out otherwise); the pictures' own NAL units are what must be identical.
    """

    def copy(fmt: str) -> bytes:
        cmd = [
            ffmpeg.ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:v",
            "-c",
            "copy",
            "-f",
            fmt,
            "-",
        ]
        return subprocess.run(cmd, capture_output=True, check=True).stdout

    rows = [line.split(",") for line in copy("framemd5").decode().splitlines() if line and line[0] != "#"]
    data, at, packets = copy("data"), 0, []
    for row in rows:
        size = int(row[4])
        packet, at = data[at : at + size], at + size
        while len(packet) > 4 and packet[4] & 0x1F in (7, 8):  # 4-byte NAL lengths (x264 in MP4)
            packet = packet[4 + int.from_bytes(packet[:4], "big") :]
        packets.append((int(row[2]), packet))
    return packets


def _assert_bodies_copied(out: Path, comp_legs: list[Path], plan: object, tick: int) -> None:
    """Every copied body is in ``out`` frame-exactly and packet for packet (bit-identical)."""
    out_hashes, out_packets = ffmpeg.frame_hashes(out), [data for _, data in _packets(out)]
    for piece in plan.pieces:  # type: ignore[attr-defined]
        if not isinstance(piece, Copy):
            continue
        source = comp_legs[piece.leg]
        assert (
            out_hashes[piece.at : piece.at + piece.frames]
            == ffmpeg.frame_hashes(source)[piece.first : piece.first + piece.frames]
        )
        body = [
            data for pts, data in _packets(source) if piece.first <= pts // tick < piece.first + piece.frames
        ]
        assert len(body) == piece.frames
        starts = [i for i in range(len(out_packets)) if out_packets[i : i + len(body)] == body]
        assert starts, f"the body of leg {piece.leg + 1} is not in the output packet for packet"


def _own_file(make_clip: MakeClip, tmp_path: Path, name: str, source: str, hz: int) -> Path:
    """A clip brought into composer's encoding the way a user would: ``composer compose X -o Y``."""
    clip = make_clip(name, seconds=4, size="160x96", source=source, audio_hz=hz)
    own = tmp_path / f"{name}.own.mp4"
    assert compose_clips([clip], own).check.method == "smart"
    return own


def test_rejoining_composer_outputs_encodes_only_the_fades(make_clip: MakeClip, tmp_path: Path) -> None:
    from composer.compose.clips import clip_facts, plan_clips

    takes = [
        _own_file(make_clip, tmp_path, "own_a", "testsrc2", 440),
        _own_file(make_clip, tmp_path, "own_b", "smptehdbars", 660),
        _own_file(make_clip, tmp_path, "own_c", "testsrc", 880),
    ]
    for take in takes:  # closed GOPs, an IDR every second
        assert sorted(ffmpeg.packets(take).keyframe_indices()) == [0, 24, 48, 72]
    out = tmp_path / "rejoined.mp4"
    result = compose_clips(takes, out, crossfade_s=1)
    assert result.check.method == "smart", result.check.reason
    assert not any("normalised" in note for note in result.notes), result.notes
    assert result.frames == 3 * 96 - 2 * 24
    # At most the fade and one GOP per join; with 4 s clips on the 1 s grid exactly the fades.
    assert result.check.encoded_frames == 2 * 24
    report = ffmpeg.decode(out)
    assert (report.errors, report.warnings, report.frames) == ("", "", result.frames)

    comp, _, _ = plan_clips([clip_facts(t) for t in takes], crossfade_s=1)
    again = smart.compose_smart(comp, tmp_path / "again.mp4", cache_dir=tmp_path / "unused")
    assert again.reused_legs == 3 and again.normalized_frames == 0 and again.normalized == ()
    assert not (tmp_path / "unused").exists() or not any((tmp_path / "unused").iterdir())
    _assert_bodies_copied(tmp_path / "again.mp4", takes, again.plan, ffmpeg.timescale(FPS) // 24)
    # composer wrote and checked these files: only the joins are decoded, not their bodies.
    assert all(verified.known(t) for t in takes)
    assert again.decoded.frames == sum(n for _, n in smart.join_windows(comp, again.plan))
    # The same bytes elsewhere, or a file changed since, are clips nobody has decoded.
    copies = [Path(shutil.copy2(t, tmp_path / f"copy_{t.name}")) for t in takes]
    assert not any(verified.known(c) for c in copies)
    fresh = smart.compose_smart(
        build(
            [Leg(c, leg.frames, leg.has_audio) for c, leg in zip(copies, comp.legs, strict=True)],
            [j.fade for j in comp.joins],
            comp.width,
            comp.height,
            comp.fps,
            comp.audio,
        ),
        tmp_path / "fresh.mp4",
    )
    # The joins (four frames from each of the five pieces) and every body frame, decoded from
    # the clips beside the encodes (no span decodes any of them: each fade starts on an IDR).
    assert fresh.decoded.frames == 5 * 4 + sum(p.frames for p in fresh.plan.pieces if isinstance(p, Copy))
    assert fresh.decoded.frames > again.decoded.frames
    os.utime(takes[0], ns=(0, 0))
    assert not verified.known(takes[0])


def _encode_like_composer(source: Path, dest: Path, *, gop: int, pix_fmt: str = "yuv420p") -> Path:
    args = ffmpeg.x264_args(FPS)
    args[args.index("-g") + 1] = str(gop)
    args[args.index("-pix_fmt") + 1] = pix_fmt
    if pix_fmt != "yuv420p":
        args[args.index("-profile:v") + 1] = "high444"
    cmd = [
        ffmpeg.ffmpeg_exe(),
        "-v",
        "error",
        "-y",
        "-i",
        str(source),
        *args,
        *ffmpeg.audio_args(),
        str(dest),
    ]
    subprocess.run(cmd, check=True)
    return dest


def test_foreign_clips_with_other_gops_are_cut_and_mismatches_are_named(
    make_clip: MakeClip, tmp_path: Path
) -> None:
    own = _own_file(make_clip, tmp_path, "own_first", "testsrc2", 440)
    raw = make_clip("foreign_raw", seconds=5, size="160x96", source="testsrc", audio_hz=660)
    # x264 with composer's settings but keyframes every 40 frames (another editor's GOP).
    foreign = _encode_like_composer(raw, tmp_path / "foreign_gop40.mp4", gop=40)
    assert sorted(ffmpeg.packets(foreign).keyframe_indices()) == [0, 40, 80]
    out = tmp_path / "mixed.mp4"
    result = compose_clips([own, own, foreign], out, crossfade_s=1)
    assert result.check.method == "smart", result.check.reason
    assert not any("normalised" in note for note in result.notes), result.notes
    # Join 1: the fade (24). Join 2: the fade and the incoming head up to its IDR at 40.
    assert result.check.encoded_frames == 24 + 40
    report = ffmpeg.decode(out)
    assert (report.errors, report.warnings, report.frames) == ("", "", 96 + 96 + 120 - 48)

    from composer.compose.clips import clip_facts, plan_clips

    comp, _, _ = plan_clips([clip_facts(p) for p in (own, own, foreign)], crossfade_s=1)
    again = smart.compose_smart(comp, tmp_path / "again.mp4", cache_dir=tmp_path / "norm")
    assert again.reused_legs == 3
    _assert_bodies_copied(
        tmp_path / "again.mp4", [own, own, foreign], again.plan, ffmpeg.timescale(FPS) // 24
    )

    # Clips whose parameters differ are normalised, and the note names the parameter.
    yuv444 = _encode_like_composer(raw, tmp_path / "foreign_444.mp4", gop=24, pix_fmt="yuv444p")
    ultrafast = make_clip("foreign_ultrafast", seconds=3, size="160x96")
    mixed = compose_clips([own, yuv444, ultrafast], tmp_path / "normalised.mp4", crossfade_s=1)
    assert mixed.check.method == "smart"
    normalised = [note for note in mixed.notes if "normalised" in note]
    assert normalised == [
        "clip 2 (foreign_444.mp4) normalised: pixel format yuv444p, not yuv420p",
        "clip 3 (foreign_ultrafast.mp4) normalised: codec parameters (SPS/PPS: profile, colour tags "
        "or encoder settings) differ from composer's encoder",
    ]
    assert "clip 2 (foreign_444.mp4) normalised: pixel format" in mixed.check.reason


def test_what_a_span_decoded_of_a_foreign_clip_is_not_decoded_again(
    make_clip: MakeClip, tmp_path: Path
) -> None:
    raw = make_clip("foreign_raw", seconds=5, size="160x96", source="testsrc", audio_hz=660)
    foreign = _encode_like_composer(raw, tmp_path / "foreign_gop40.mp4", gop=40)
    own = _own_file(make_clip, tmp_path, "own_after", "testsrc2", 440)
    comp = build([Leg(foreign, 120, True), Leg(own, 96, True)], [24], 160, 96, FPS, True)
    result = smart.compose_smart(comp, tmp_path / "out.mp4", cache_dir=tmp_path / "norm")
    assert result.reused_legs == 2
    body, span = result.plan.pieces[0], result.plan.pieces[1]
    assert isinstance(body, Copy) and (body.first, body.frames) == (0, 96)
    assert isinstance(span, Span)
    # The span decoded the foreign clip from its IDR at 80 to the end of the fade: the body's
    # frames [80, 96) were decoded cleanly there, so only [0, 80) is left to decode...
    covered = smart.join_windows(comp, result.plan, whole={0}, decoded={0: [(80, 120)]})
    assert covered == [(0, 80), (96, 4), (120, 4)]
    # ... and it was decoded from the clip beside the encodes: the output is read at its joins.
    assert result.decoded.frames == 80 + 3 * 4
    assert result.decoded.frames < sum(n for _, n in smart.join_windows(comp, result.plan, whole={0}))
    assert (result.decoded.errors, result.decoded.warnings) == ("", "")


def test_a_span_encodes_its_blend_at_the_window_crf_and_a_head_at_the_bodies(
    make_clip: MakeClip, tmp_path: Path
) -> None:
    clip = make_clip("span_src", seconds=3, size="160x96", audio_hz=None)
    inputs = [ffmpeg.SpanInput(clip, 24, 12, 24), ffmpeg.SpanInput(clip, 0, 36, 0)]
    window, head = tmp_path / "window.mp4", tmp_path / "head.mp4"
    # All blend: one CRF for the window, no zones.
    said = ffmpeg.encode_span([inputs[0], ffmpeg.SpanInput(clip, 0, 12, 0)], [12], 160, 96, FPS, window)
    assert said == ("", "")
    # 12 blended frames, then the incoming clip alone for 24 more (a head up to its next IDR).
    assert ffmpeg.encode_span(inputs, [12], 160, 96, FPS, head) == ("", "")
    assert ffmpeg.packets(head).frames == 36
    assert ffmpeg.packets(head).extradata == ffmpeg.packets(window).extradata
    # x264 writes its settings into the stream: the bodies' CRF, the window's for frames 0-11.
    settings = head.read_bytes()
    assert f"crf={ffmpeg.X264_CRF}.0".encode() in settings
    assert f"zones=0,11,crf={ffmpeg.WINDOW_CRF}".encode() in settings
    assert f"crf={ffmpeg.WINDOW_CRF}.0".encode() in window.read_bytes()
    assert b"zones=" not in window.read_bytes()


def test_clips_whose_keyframes_leave_nothing_to_copy_take_the_full_path(
    make_clip: MakeClip, tmp_path: Path
) -> None:
    raw = make_clip("foreign_raw", seconds=5, size="160x96", source="testsrc", audio_hz=660)
    foreign = _encode_like_composer(raw, tmp_path / "foreign_gop250.mp4", gop=250)
    assert sorted(ffmpeg.packets(foreign).keyframe_indices()) == [0]
    # Only the first clip's body can be copied (a copy may end inside a GOP, but every other
    # clip's only IDR is its first frame, inside its fade): at most 15 of its 30 frames.
    short = make_clip("foreign_short", seconds=1.25, size="160x96", source="testsrc", audio_hz=660)
    first = _encode_like_composer(short, tmp_path / "short_gop250.mp4", gop=250)
    result = compose_clips([first, foreign, foreign], tmp_path / "out.mp4", crossfade_s=1)
    assert result.check.method == "full" and "one full re-encode is faster" in result.check.reason
    # The first crossfade is shortened to half the short clip (15 frames).
    assert result.check.frames == 30 + 2 * 120 - 15 - 24


def test_a_copy_ends_inside_a_gop_where_no_b_frame_straddles(make_clip: MakeClip, tmp_path: Path) -> None:
    raw = make_clip("foreign_raw", seconds=5, size="160x96", source="testsrc", audio_hz=660)
    foreign = _encode_like_composer(raw, tmp_path / "foreign_gop250.mp4", gop=250)
    info = ffmpeg.packets(foreign)
    ends = info.closed_ends()
    inner = sorted(k for k in ends if 0 < k < info.frames)
    assert inner and not set(inner) & info.keyframe_indices()  # B-frames: not every frame, no IDRs
    assert len(inner) < info.frames - 1
    straddled = next(k for k in range(1, info.frames) if k not in ends)
    with pytest.raises(ValueError):
        info.copy_points(0, straddled)
    # Two clips with one IDR each: the first one's body runs from 0 to the fade, cut inside its GOP.
    result = compose_clips([foreign, foreign], tmp_path / "out.mp4", crossfade_s=1)
    assert result.check.method == "smart", result.check.reason
    body = max(k for k in ends if k <= 120 - 24)
    assert result.check.copied_frames == body
    assert result.check.encoded_frames == 2 * 120 - 24 - body
    report = ffmpeg.decode(result.path)
    assert (report.errors, report.warnings, report.frames) == ("", "", 2 * 120 - 24)
    ours, theirs = ffmpeg.frame_hashes(result.path), ffmpeg.frame_hashes(foreign)
    assert ours[:body] == theirs[:body]  # the copied pictures are the clip's own
