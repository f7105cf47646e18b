"""Composition with real ffmpeg on tiny clips: exact frames, exact audio, clean decode."""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from composer import ffmpeg
from composer.compose.graph import Leg, build
from composer.compose.render import compose_full, verify
from composer.errors import MediaError
from tests.conftest import MakeClip


def _frame(path: Path, index: int, fps: Fraction, size: tuple[int, int], tmp: Path) -> np.ndarray:
    from composer import imaging

    png = tmp / f"f{index}.png"
    ffmpeg.extract_frame(path, Fraction(index) / fps, png)
    image = imaging.read_image(png)
    assert image.shape[1::-1] == size
    return image.astype(np.int16)


@pytest.mark.parametrize("fps", [Fraction(24), Fraction(30000, 1001), Fraction(25)])
def test_fades_and_cuts_are_frame_exact(make_clip: MakeClip, tmp_path: Path, fps: Fraction) -> None:
    a = make_clip("a", seconds=4)
    b = make_clip("b_noaudio", seconds=4, size="192x96", rate="30", audio_hz=None, source="smptebars")
    c = make_clip("c_sar", seconds=4, size="120x96", sar="4/3", audio_hz=880, source="testsrc")
    comp = build(
        [Leg(a, 70, True), Leg(b, 61, False), Leg(c, 75, True, start=3)], [13, 0], 160, 96, fps, True
    )
    out = tmp_path / "out.mp4"
    compose_full(comp, out)
    check = verify(out, comp)
    assert check.frames == 70 + 61 + 75 - 13
    assert check.audio_samples is not None and abs(check.audio_samples - comp.samples) <= 1024
    info = ffmpeg.probe(out)
    assert (info.width, info.height, info.sar) == (160, 96, Fraction(1))
    assert info.fps == fps


def test_fade_blends_the_two_clips_over_the_window(make_clip: MakeClip, tmp_path: Path) -> None:
    fps = Fraction(24)
    black = make_clip("black", source="color=c=black", audio_hz=None)
    white = make_clip("white", source="color=c=white", audio_hz=None)
    comp = build([Leg(black, 48, False), Leg(white, 48, False)], [24], 160, 96, fps, False)
    out = tmp_path / "fade.mp4"
    compose_full(comp, out)
    verify(out, comp)
    before = _frame(out, 23, fps, (160, 96), tmp_path).mean()
    middle = _frame(out, 36, fps, (160, 96), tmp_path).mean()
    after = _frame(out, 48, fps, (160, 96), tmp_path).mean()
    assert before < 20 and after > 230
    assert 90 < middle < 170


def test_take_offset_skips_frames(make_clip: MakeClip, tmp_path: Path) -> None:
    fps = Fraction(24)
    clip = make_clip("counter", seconds=2, source="testsrc2", audio_hz=None)
    comp = build([Leg(clip, 10, False, start=5)], [], 160, 96, fps, False)
    out = tmp_path / "offset.mp4"
    compose_full(comp, out)
    first = _frame(out, 0, fps, (160, 96), tmp_path)
    expected = _frame(clip, 5, fps, (160, 96), tmp_path)
    assert np.abs(first - expected).mean() < 6


def test_short_clip_is_padded_by_holding_its_last_frame(make_clip: MakeClip, tmp_path: Path) -> None:
    clip = make_clip("short", seconds=1)
    comp = build([Leg(clip, 40, True)], [], 160, 96, Fraction(24), True)
    out = tmp_path / "padded.mp4"
    compose_full(comp, out)
    assert verify(out, comp).frames == 40


def test_verify_rejects_a_wrong_length(make_clip: MakeClip) -> None:
    clip = make_clip("three", seconds=3)
    comp = build([Leg(clip, 100, True)], [], 160, 96, Fraction(24), True)
    with pytest.raises(MediaError, match="72 frames, expected 100"):
        verify(clip, comp)


def test_a_fade_longer_than_a_leg_is_refused(make_clip: MakeClip) -> None:
    clip = make_clip("a", seconds=4)
    with pytest.raises(ValueError, match="does not fit"):
        build([Leg(clip, 10, True), Leg(clip, 30, True)], [12], 160, 96, Fraction(24), True)


def test_compose_failure_leaves_no_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    comp = build([Leg(broken, 10, False)], [], 160, 96, Fraction(24), False)
    out = tmp_path / "out.mp4"
    with pytest.raises(MediaError):
        compose_full(comp, out)
    assert list(tmp_path.iterdir()) == [broken]


def test_strict_verify_finds_a_frame_off_the_grid(make_clip: MakeClip, tmp_path: Path) -> None:
    # 48 frames with a one-frame hole after frame 23: the count is right, the timing is not.
    clip = make_clip("hole", seconds=2, source="testsrc2", audio_hz=None)
    holed = tmp_path / "holed.mp4"
    args = [
        ffmpeg.ffmpeg_exe(),
        "-v",
        "error",
        "-y",
        "-i",
        str(clip),
        "-vf",
        "settb=1/24,setpts=N+gte(N\\,24)",
    ]
    args += [
        "-fps_mode",
        "passthrough",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-video_track_timescale",
        "24",
    ]
    subprocess.run([*args, str(holed)], check=True)
    comp = build([Leg(clip, 48, False)], [], 160, 96, Fraction(24), False)
    assert verify(holed, comp).frames == 48
    with pytest.raises(MediaError, match="off the 24 fps grid"):
        verify(holed, comp, strict=True)


def test_probes_are_remembered_only_while_the_file_is_the_same(make_clip: MakeClip, tmp_path: Path) -> None:
    small, large = make_clip("small", size="160x96"), make_clip("large", size="192x96")
    dest = tmp_path / "clip.mp4"
    shutil.copyfile(small, dest)
    assert ffmpeg.probe(dest).width == 160
    replacement = tmp_path / "new.mp4"
    shutil.copyfile(large, replacement)
    replacement.replace(dest)  # how composer replaces files: a rename, never a rewrite
    assert ffmpeg.probe(dest).width == 192
    assert ffmpeg.packets(dest).width == 192
