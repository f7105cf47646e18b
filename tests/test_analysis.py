"""Analysis: defects of known size and place are found at the right time; clean clips raise nothing.

Clips are small (320x180, 3-5 s) and made for real: numpy frames through x264
(``tests/analysis_clips.py``) or transcoded by ffmpeg into other containers, rotations, pixel
aspects and variable frame rates. No mocks.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from composer import ffmpeg
from composer.analysis import (
    DriftThresholds,
    SeamThresholds,
    analyze_clip,
    camera_plan,
    score_seam_at,
    score_seam_between,
    score_seams,
)
from composer.analysis import frames as frames_mod
from composer.analysis.seams import locate_transitions
from composer.analysis.signals import robust_z, rolling_median
from composer.errors import MediaError
from tests.analysis_clips import ClipSpec, write_clip, write_seam_pair

FPS = 24
#: A defect must be located within this many frames of where it was injected.
TOLERANCE_S = 3 / FPS

Clip = Callable[..., Path]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    folder = tmp_path_factory.mktemp("analysis")
    made: dict[str, Path] = {}

    def make(name: str, **spec: object) -> Path:
        if name not in made:
            made[name] = write_clip(folder / f"{name}.mp4", ClipSpec(**spec))  # type: ignore[arg-type]
        return made[name]

    return make


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("analysis_misc")


def _ff(*args: str) -> None:
    subprocess.run([ffmpeg.ffmpeg_exe(), "-v", "error", "-y", *args], check=True)


# --- clean footage: nothing raised -------------------------------------------------------------

CLEAN = {
    "static": {"seed": 1},
    "pan": {"seed": 2, "pan": (30.0, 8.0)},
    "zoom": {"seed": 3, "zoom_per_s": 0.04},
    "pan_zoom": {"seed": 4, "pan": (-20.0, 6.0), "zoom_per_s": -0.03},
    "fast_pan": {"seed": 5, "pan": (90.0, 0.0)},
}


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
@pytest.mark.parametrize("name", list(CLEAN))
def test_clean_clips_raise_nothing(clip: Clip, name: str, fast: bool) -> None:
    path = clip(f"clean_{name}", **CLEAN[name])
    result = analyze_clip(path, camera_planned="static" if name == "static" else "moving", fast=fast)
    assert result.discontinuities == []
    assert result.drift.verdict == "ok", result.drift.metrics
    # The fast scan reads the frames others refer to: with x264's B-frames, about half.
    assert result.frames_analyzed == 72 if not fast else 30 <= result.frames_analyzed <= 45
    assert result.fps == pytest.approx(24)
    assert result.duration_s == pytest.approx(3.0, abs=0.05)


def test_analyze_json_shape(clip: Clip) -> None:
    data = analyze_clip(clip("clean_static", **CLEAN["static"])).model_dump(mode="json")
    assert {"path", "duration_s", "fps", "frames_analyzed", "discontinuities", "drift"} <= set(data)
    assert data["drift"]["verdict"] in {"ok", "warn", "regenerate"}
    assert {"brightness_end", "saturation_end", "hist_sim_min", "ncc_min", "camera_pct"} <= set(
        data["drift"]["deltas"]
    )
    curves = {c["name"]: c for c in data["drift"]["curves"]}
    assert len(curves["ncc"]["t_s"]) == len(curves["ncc"]["values"]) == 36  # 12 fps over 3 s
    assert curves["ncc"]["warn"] == 0.6 and curves["ncc"]["regenerate"] == 0.4


# --- defects inside a clip: found, at the right time ------------------------------------------


@pytest.mark.parametrize(
    ("kind", "size", "signal"),
    [
        ("cut", 0.0, "hist_dist"),
        ("jump", 4.0, "vel_jump"),  # 4 px at 320 w = 6 px at 480 w
        ("brightness_step", 0.12, "d_lightness"),
        ("zoom_jump", 0.03, "scale_jump"),
    ],
)
@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
def test_jumps_inside_a_clip_are_found_where_they_are(
    clip: Clip, kind: str, size: float, signal: str, fast: bool
) -> None:
    path = clip(f"{kind}", kind=kind, size=size, at_s=1.75, seed=11, pan=(12.0, 0.0))
    result = analyze_clip(path, fast=fast)
    assert len(result.discontinuities) == 1, result.discontinuities
    found = result.discontinuities[0]
    # The fast scan sees the first frame after the jump, or the one after it.
    assert found.t_s == pytest.approx(1.75, abs=TOLERANCE_S + (1 / 24 if fast else 0))
    assert signal in found.signals


def test_crossfade_to_a_new_scene_is_found_and_fails_drift(clip: Clip) -> None:
    path = clip("crossfade", kind="crossfade", at_s=2.5, seconds=5.0, seed=12)
    result = analyze_clip(path)
    # The 1-s fade is gradual: no single pair jumps, the 1-s histogram change does.
    assert [d for d in result.discontinuities if "transition" in d.signals]
    assert result.discontinuities[0].t_s == pytest.approx(3.0, abs=0.5)
    assert result.drift.verdict == "regenerate"
    # The metric that decided is at the regenerate level, and it began with the fade.
    decider = next(m for m in result.drift.metrics if m.name == result.drift.worst)
    assert decider.verdict == "regenerate"
    assert decider.onset_regenerate_s is not None and 2.4 <= decider.onset_regenerate_s <= 3.6
    assert result.drift.onset_s is not None and 2.4 <= result.drift.onset_s <= 3.5


def test_brightness_ramp_is_drift_not_a_discontinuity(clip: Clip) -> None:
    result = analyze_clip(clip("bramp", kind="brightness_ramp", size=0.2, seed=13, pan=(15.0, 0.0)))
    assert result.discontinuities == []
    bright = next(m for m in result.drift.metrics if m.name == "brightness")
    assert bright.verdict == "regenerate" and bright.value > 5
    assert result.drift.worst == "brightness"
    # +20% gain ends ~10.8 L* up: 1.5 L* is crossed near 0.4 s, 3 L* near 0.8 s (the centred
    # 0.5-s rolling median can lead by up to 0.25 s).
    assert bright.onset_warn_s is not None and 0.1 <= bright.onset_warn_s <= 0.7
    assert bright.onset_regenerate_s is not None and bright.onset_warn_s < bright.onset_regenerate_s <= 1.1


def test_small_brightness_ramp_warns(clip: Clip) -> None:
    result = analyze_clip(clip("bramp_small", kind="brightness_ramp", size=0.05, seed=14))
    bright = next(m for m in result.drift.metrics if m.name == "brightness")
    assert bright.verdict == "warn", bright


def test_saturation_ramp_is_saturation_drift(clip: Clip) -> None:
    result = analyze_clip(clip("sramp", kind="saturation_ramp", size=0.3, seed=15, pan=(-20.0, 5.0)))
    assert result.discontinuities == []
    sat = next(m for m in result.drift.metrics if m.name == "saturation")
    assert sat.verdict == "regenerate" and sat.value > 0.1


def test_camera_drift_counts_only_on_static_shots(clip: Clip) -> None:
    path = clip("cam_drift", kind="camera_drift", size=0.05, seed=16)
    static = analyze_clip(path, camera_planned="static")
    cam = next(m for m in static.drift.metrics if m.name == "camera")
    # Injected: 5% of width horizontally and 1.5% vertically = 5.2% in all.
    assert cam.value == pytest.approx(5.22, rel=0.15)
    assert static.drift.verdict == "regenerate" and static.drift.worst == "camera"
    assert static.discontinuities == []
    moving = analyze_clip(path, camera_planned="moving")
    assert moving.drift.verdict == "ok"
    assert not next(m for m in moving.drift.metrics if m.name == "camera").checked


def test_pan_is_not_drift_but_registered_anchor_matters(clip: Clip) -> None:
    result = analyze_clip(clip("clean_fast_pan", **CLEAN["fast_pan"]), camera_planned=None)
    assert result.drift.verdict == "ok"
    # 90 px/s over 3 s at 320 w = 84% of the width: the anchor is chained, the verdict holds.
    assert result.drift.deltas["reanchors"] >= 1
    assert result.drift.deltas["camera_pct"] == pytest.approx(84.4, rel=0.1)


# --- seams between clips and inside a clip ----------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "size", "expected", "signal"),
    [
        ("clean", 0.0, "ok", None),
        ("jump", 4.0, "regenerate", "vel_jump"),
        ("brightness_step", 0.12, "regenerate", "d_lightness"),
        ("zoom_jump", 0.03, "regenerate", "scale_jump"),
        ("cut", 0.0, "regenerate", "hist_dist"),
    ],
)
def test_seam_between_clips(folder: Path, kind: str, size: float, expected: str, signal: str | None) -> None:
    a, b = write_seam_pair(folder, kind, size, seed=21, seconds=1.0, pan=(18.0, 4.0))
    result = score_seam_between(a, b)
    assert result.verdict == expected, result
    if signal:
        assert signal in result.fired
    else:
        assert result.fired == []
    assert result.baseline_pairs >= 18


def test_clean_continuations_pass_at_several_seeds(folder: Path) -> None:
    for seed in (31, 32, 33):
        a, b = write_seam_pair(
            folder, "clean", 0.0, seed=seed, seconds=1.0, pan=(seed - 40.0, 3.0), zoom_per_s=0.01
        )
        assert score_seam_between(a, b).verdict == "ok"


def test_score_seams_and_seam_with_next(folder: Path) -> None:
    a, b = write_seam_pair(folder, "jump", 6.0, seed=41, seconds=1.0)
    results = score_seams([a, b, a])
    assert len(results) == 2 and results[0].verdict == "regenerate"
    analysis = analyze_clip(a, seams_with_next=b)
    assert analysis.seam_with_next is not None and analysis.seam_with_next.verdict == "regenerate"


def test_seam_inside_a_clip(clip: Clip) -> None:
    path = clip("jump", kind="jump", size=4.0, at_s=1.75, seed=11, pan=(12.0, 0.0))
    assert score_seam_at(path, 1.75).verdict == "regenerate"
    assert score_seam_at(path, 1.0).verdict == "ok"


# --- any footage: containers, rotation, pixel aspect, variable frame rate ---------------------


@pytest.fixture(scope="module")
def source(clip: Clip) -> Path:
    return clip("clean_pan", **CLEAN["pan"])


@pytest.mark.parametrize(
    ("container", "codec"),
    [
        ("mkv", ["-c:v", "libx264", "-preset", "ultrafast"]),
        ("mov", ["-c:v", "mpeg4", "-q:v", "3"]),
        # Not VP8's realtime mode at 2 Mb/s: its rate control drifts the picture (+2 L*, a colour cast
        # of 4 in 3 s), which the judge rightly reports; this test is about reading the container.
        ("webm", ["-c:v", "libvpx", "-crf", "10", "-b:v", "4M", "-deadline", "good", "-cpu-used", "4"]),
    ],
)
def test_other_containers(source: Path, folder: Path, container: str, codec: list[str]) -> None:
    dest = folder / f"pan.{container}"
    _ff("-i", str(source), *codec, str(dest))
    result = analyze_clip(dest)
    assert result.frames_analyzed == 72
    assert result.discontinuities == [] and result.drift.verdict == "ok"


def test_rotation_metadata_is_applied(source: Path, folder: Path) -> None:
    dest = folder / "rotated.mp4"
    _ff("-display_rotation", "90", "-i", str(source), "-c", "copy", str(dest))
    geo = frames_mod.geometry(dest)
    assert (geo.display_width, geo.display_height) == (180, 320)
    assert geo.analysis_size() == (480, 854)
    result = analyze_clip(dest, width=240)
    assert result.discontinuities == [] and result.drift.verdict == "ok"
    frame = next(iter(frames_mod.stream(dest, (180, 320), geo.fps)))
    assert frame.bgr.shape == (320, 180, 3)


def test_non_square_pixels(source: Path, folder: Path) -> None:
    dest = folder / "anamorphic.mp4"
    _ff(
        "-i",
        str(source),
        "-vf",
        "scale=160:180,setsar=2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        str(dest),
    )
    geo = frames_mod.geometry(dest)
    assert (geo.display_width, geo.display_height) == (320, 180)
    result = analyze_clip(dest)
    assert result.discontinuities == [] and result.drift.verdict == "ok"


def test_display_size_squares_pixels_then_rotates() -> None:
    # One rule for analysis and composition: width x SAR to the nearest pixel, sides swapped
    # for 90/270 degrees, never below 2 (even sizes are the encoding callers' business).
    def info(width: int, height: int, sar: Fraction, rotation: int) -> ffmpeg.MediaInfo:
        return ffmpeg.MediaInfo(
            None, width, height, None, sar, rotation, "h264", "yuv420p", False, None, None
        )

    assert info(720, 480, Fraction(8, 9), 0).display_size == (640, 480)
    assert info(720, 480, Fraction(8, 9), 270).display_size == (480, 640)
    assert info(1440, 1080, Fraction(4, 3), 180).display_size == (1920, 1080)
    assert info(101, 57, Fraction(1, 2), 90).display_size == (57, 50)  # 50.5 rounds half to even
    assert info(2, 2, Fraction(1, 4), 0).display_size == (2, 2)


def test_variable_frame_rate(source: Path, folder: Path) -> None:
    dest = folder / "vfr.mkv"
    # Drop two frames in every five: timestamps now come in uneven steps.
    _ff(
        "-i",
        str(source),
        "-vf",
        "select='lt(mod(n\\,5)\\,3)'",
        "-fps_mode",
        "vfr",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        str(dest),
    )
    result = analyze_clip(dest)
    assert result.duration_s == pytest.approx(3.0, abs=0.15)
    # Evenly resampled to the container's nominal rate, so a steady pan stays steady.
    assert result.discontinuities == []
    assert result.drift.verdict == "ok"


# --- the frame reader --------------------------------------------------------------------------


def _ffmpeg_children() -> list[int]:
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me and "ffmpeg" in stat:
                found.append(int(entry))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_reader_stops_ffmpeg_when_the_consumer_stops(source: Path) -> None:
    frames = ffmpeg.read_frames(source, 160, 90, fps=24)
    first = [next(frames) for _ in range(3)]
    assert all(f.shape == (90, 160, 3) for f in first)
    frames.close()
    assert _ffmpeg_children() == []
    assert sum(1 for _ in ffmpeg.read_frames(source, 160, 90, start_s=1.0, duration_s=1.0)) == 24
    timed = ffmpeg.read_reference_frames(source, 160, 90)
    first, second = next(timed)[0], next(timed)[0]
    assert first == 0.0 and second > 0.0
    timed.close()
    assert _ffmpeg_children() == []


def test_reader_reports_bad_input(folder: Path) -> None:
    bad = folder / "not_a_video.mp4"
    bad.write_bytes(b"nothing here")
    with pytest.raises(MediaError):
        analyze_clip(bad)
    with pytest.raises(MediaError, match=r"not_a_video\.mp4 for analysis failed"):
        list(ffmpeg.read_reference_frames(bad, 160, 90))


def test_ffmpeg_scaling_matches_cv2_scaling(source: Path) -> None:
    size = (240, 136)
    a = [
        f.bgr.astype(np.int16)
        for f in frames_mod.stream(source, size, frames_mod.FALLBACK_FPS, duration_s=0.5)
    ]
    b = [
        f.bgr.astype(np.int16)
        for f in frames_mod.stream(source, size, frames_mod.FALLBACK_FPS, duration_s=0.5, resize="cv2")
    ]
    assert len(a) == len(b) == 12
    assert max(float(np.abs(x - y).mean()) for x, y in zip(a, b, strict=True)) < 3.0


# --- pure parts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "plan"),
    [
        ("static", "static"),
        ("Locked off, tripod", "static"),
        ("slow pan left", "pan"),
        ("zoom in", "zoom"),
        ("static, then a slow dolly in", "zoom"),
        ("", None),
        (None, None),
        ("warm light", None),
    ],
)
def test_camera_plan(text: str | None, plan: str | None) -> None:
    parsed = camera_plan(text)
    assert (parsed.label if parsed is not None else None) == plan


def test_robust_z_ignores_one_outlier() -> None:
    base = [1.0, 1.1, 0.9, 1.0, 50.0, 1.05, 0.95]
    assert robust_z(1.0, base, 0.01) == pytest.approx(0.0, abs=0.01)
    assert robust_z(2.0, base, 0.01) > 8


def test_rolling_median_and_transition_locator() -> None:
    assert list(rolling_median([0, 0, 9, 0, 0], 3)) == [0, 0, 0, 0, 0]
    d = [float("nan")] * 24 + [0.02] * 60 + list(np.linspace(0.02, 0.6, 24)) + [0.6] * 5 + [0.02] * 40
    found = locate_transitions(d, 24)
    assert len(found) == 1 and 84 <= found[0][0] <= 108  # inside the rise


def test_threshold_models_have_reference_defaults() -> None:
    seam, drift = SeamThresholds(), DriftThresholds()
    assert (seam.warn_z, seam.regenerate_z, seam.signals["vel_jump"].floor) == (5.0, 6.0, 1.0)
    assert (drift.hist_sim_regenerate, drift.ncc_regenerate, drift.camera_regenerate) == (0.5, 0.4, 3.0)
    assert not SeamThresholds.scanner().signals["vel_step"].enabled
    assert SeamThresholds.model_validate_json(seam.model_dump_json()) == seam
