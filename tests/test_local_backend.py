"""The embedded ``local`` backend: exact lengths, determinism, scenes, camera, images, extension, drift.

Clips are tiny (160x96 or 320x180, a few seconds at 24 fps) so the whole file runs in
seconds; drift is checked on rendered frames without encoding them.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from composer import ffmpeg, imaging
from composer.backends import procedural
from composer.backends.base import GenerationRequest, ImageRef, TakeInput
from composer.backends.local import CAPABILITIES, LocalBackend
from composer.compose.normalize import NormSpec, reuse_problem
from composer.errors import TerminalError


def _request(**changes: object) -> GenerationRequest:
    fields: dict[str, object] = {
        "backend": "local",
        "model": "local-fast",
        "kind": "generate",
        "prompt": "a city skyline at night with traffic",
        "camera": "static",
        "duration_s": 2.0,
        "width": 160,
        "height": 96,
        "fps": "24",
        "seed": 7,
        "options": {"drift": 1.0},
    }
    fields.update(changes)
    return GenerationRequest(**fields)  # type: ignore[arg-type]


def _frames(path: Path, width: int, height: int) -> np.ndarray:
    """Every decoded frame of ``path`` as one (n, h, w, 3) BGR array."""
    raw = subprocess.run(
        [
            *(ffmpeg.ffmpeg_exe(), "-v", "error", "-i", str(path)),
            # Passthrough: one output frame per decoded frame (no rate-conversion duplicates).
            *("-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "bgr24", "-"),
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, height, width, 3)


def _shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Global translation from frame a to frame b (phase correlation on grey levels)."""
    ga = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY).astype(np.float32)
    gb = cv2.cvtColor(b, cv2.COLOR_BGR2GRAY).astype(np.float32)
    (dx, dy), _ = cv2.phaseCorrelate(ga, gb)
    return dx, dy


def _lab(frame: np.ndarray) -> tuple[float, float]:
    """Mean L* and mean chroma of a frame."""
    lab = cv2.cvtColor(frame, cv2.COLOR_BGR2LAB).astype(np.float32)
    light = float(lab[..., 0].mean()) * 100 / 255
    chroma = float(np.hypot(lab[..., 1] - 128, lab[..., 2] - 128).mean())
    return light, chroma


def test_capabilities_are_the_declared_constant() -> None:
    assert LocalBackend().capabilities is CAPABILITIES


def test_generate_writes_exact_frames_and_audio(tmp_path: Path) -> None:
    backend = LocalBackend()
    info = backend.generate(_request(), TakeInput(), tmp_path / "a.mp4")
    report = ffmpeg.decode(tmp_path / "a.mp4")
    assert info.frames == report.frames == 48
    assert info.has_audio and info.fps == "24" and info.duration_s == pytest.approx(2.0)
    assert report.audio_samples is not None and abs(report.audio_samples - 96_000) <= 1024
    assert info.state["frames"] == 48 and info.state["kind"] == "city"
    silent = backend.generate(_request(audio=False), TakeInput(), tmp_path / "b.mp4")
    assert not silent.has_audio and ffmpeg.decode(tmp_path / "b.mp4").audio_samples is None


def test_same_request_gives_identical_frames(tmp_path: Path) -> None:
    backend = LocalBackend()
    request = _request(prompt="snow falling on a quiet field", camera="slow pan right")
    backend.generate(request, TakeInput(), tmp_path / "a.mp4")
    backend.generate(request, TakeInput(), tmp_path / "b.mp4")
    assert np.array_equal(_frames(tmp_path / "a.mp4", 160, 96), _frames(tmp_path / "b.mp4", 160, 96))
    state = procedural.new_state("sea waves", "zoom in", 3, 160, 96, "24", 12)
    one, two = procedural.Renderer(state), procedural.Renderer(state)
    assert all(np.array_equal(a, b) for a, b in zip(one.frames(), two.frames(), strict=True))
    assert np.array_equal(one.audio(), two.audio())


def test_audio_is_gentle_and_exactly_as_long_as_the_frames() -> None:
    for kind_prompt in ("ocean surf", "windy sky", "busy city", "forest birds", "campfire", "starry night"):
        state = procedural.new_state(kind_prompt, None, 11, 160, 96, Fraction(30000, 1001), 50)
        audio = procedural.Renderer(state).audio()
        assert audio.shape == (round(50 * 48_000 * 1001 / 30000), 2) and audio.dtype == np.float32
        assert 0.0 < float(np.abs(audio).max()) < 0.5


def test_prompts_pick_different_scenes() -> None:
    assert procedural.scene_kind("night city") == "city"
    assert procedural.scene_kind("snow field") == "snow"
    assert procedural.scene_kind("waves on the ocean") == "sea"
    assert procedural.scene_kind("a quiet abstraction") == "abstract"
    kinds = {
        procedural.scene_kind(p) for p in ("sky", "sea", "city", "forest", "snow", "night", "desert", "fire")
    }
    assert len(kinds) == 8
    city = procedural.Renderer(procedural.new_state("night city", "static", 1, 160, 96, "24", 1)).frame(0)
    snow = procedural.Renderer(procedural.new_state("snow field", "static", 1, 160, 96, "24", 1)).frame(0)
    assert float(np.abs(city.mean(axis=(0, 1)) - snow.mean(axis=(0, 1))).mean()) > 60


@pytest.mark.parametrize("prompt", ["a city skyline", "a snowy forest", "desert dunes"])
def test_camera_moves(prompt: str) -> None:
    def shift(camera: str) -> tuple[float, float]:
        state = procedural.new_state(prompt, camera, 5, 320, 180, "24", 11, drift=0.0)
        renderer = procedural.Renderer(state)
        return _shift(renderer.frame(0), renderer.frame(10))

    dx, dy = shift("pan left")
    assert dx > 4 and abs(dy) < 1  # the camera turns left: the scene slides right
    dx, dy = shift("fast pan right")
    assert dx < -8 and abs(dy) < 1
    dx, dy = shift("tilt up")
    assert dy > 1.2 and abs(dx) < 1  # the camera looks up: the scene slides down
    dx, dy = shift("static")
    assert abs(dx) < 0.3 and abs(dy) < 0.3


def test_camera_text() -> None:
    assert procedural.parse_camera("slow pan left") == procedural.CameraMove("pan", -1, 0.5)
    assert procedural.parse_camera("zoom out") == procedural.CameraMove("zoom", -1, 1.0)
    assert procedural.parse_camera("push in quickly").mode == "zoom"
    assert procedural.parse_camera("tilt down").direction == 1
    assert procedural.parse_camera(None).mode == "static"


def test_image_first_frame(tmp_path: Path) -> None:
    image = np.zeros((200, 300, 3), np.uint8)
    image[:] = np.linspace(30, 220, 300, dtype=np.uint8)[None, :, None]
    cv2.circle(image, (150, 100), 50, (40, 160, 240), -1)
    png = tmp_path / "first.png"
    imaging.write_png(png, image)
    request = _request(prompt="snow falling", camera="zoom in", first_frame=ImageRef(sha256="x"))
    info = LocalBackend().generate(request, TakeInput(first_frame_path=png), tmp_path / "a.mp4")
    frames = _frames(tmp_path / "a.mp4", 160, 96)
    expected = imaging.cover(image, 160, 96).astype(np.float32)
    assert float(np.abs(frames[0] - expected).mean()) < 3.0
    assert float(np.abs(frames[-1] - expected).mean()) > 3.0  # and then it moves
    assert info.state["image"]["path"] == str(png.resolve())


@pytest.mark.slow
def test_extend_returns_the_whole_clip_with_a_smooth_join(tmp_path: Path) -> None:
    backend = LocalBackend()
    base = _request(prompt="sky with clouds and birds", camera="pan right", width=320, height=180)
    parent = backend.generate(base, TakeInput(), tmp_path / "p.mp4")
    ext = _request(prompt=base.prompt, camera=base.camera, width=320, height=180, kind="extend", parent="p")
    info = backend.extend(
        ext, TakeInput(parent_path=tmp_path / "p.mp4", parent_state=parent.state), tmp_path / "e.mp4"
    )
    report = ffmpeg.decode(tmp_path / "e.mp4")
    assert info.frames == report.frames == 96 and info.duration_s == pytest.approx(4.0)
    assert report.audio_samples is not None and abs(report.audio_samples - 192_000) <= 1024
    assert info.state["extension"] == 1 and info.state["frames"] == 96
    frames = _frames(tmp_path / "e.mp4", 320, 180).astype(np.float32)
    steps = [float(np.abs(frames[i + 1] - frames[i]).mean()) for i in range(30, 60)]
    join = steps[47 - 30]
    ordinary = float(np.median(steps))
    assert join < 2.0 * ordinary + 0.5
    # The parent part is the parent clip, byte for byte in its video frames.
    assert np.array_equal(frames[:48], _frames(tmp_path / "p.mp4", 320, 180).astype(np.float32))


def test_takes_carry_the_output_encoding_with_the_requested_keyframes(tmp_path: Path) -> None:
    # A 2 s base extended by 2 s, with IDR frames asked for on both sides of the join: the
    # joined clip is used by the smart assembly as it is (no normalising pass).
    backend = LocalBackend()
    keys = {"drift": 1.0, "keyframes": [0, 5, 30, 48, 70]}
    base = _request(width=320, height=180, options=keys)
    parent = backend.generate(base, TakeInput(), tmp_path / "p.mp4")
    ext = _request(width=320, height=180, kind="extend", parent="p", options=keys)
    backend.extend(
        ext, TakeInput(parent_path=tmp_path / "p.mp4", parent_state=parent.state), tmp_path / "e.mp4"
    )
    info = ffmpeg.packets(tmp_path / "e.mp4")
    keys_found = sorted(info.keyframe_indices())
    # The requested ones, plus composer's regular IDR every second (no GOP longer than 24).
    assert {0, 5, 30, 48, 70} <= set(keys_found)
    assert max(b - a for a, b in zip(keys_found, [*keys_found[1:], 96], strict=True)) <= 24
    # Every frame on the grid from 0, although the parent's audio starts before its video.
    assert sorted(info.pts) == [n * 512 for n in range(96)]
    assert reuse_problem(tmp_path / "e.mp4", NormSpec(320, 180, Fraction(24), 5, 70, (0, 25, 65))) is None
    # A keyframe the take does not have is named.
    assert reuse_problem(tmp_path / "e.mp4", NormSpec(320, 180, Fraction(24), 0, 96, (0, 31))) == (
        "no keyframe at frame(s) 31"
    )


def test_keyframes_option_must_be_frame_numbers(tmp_path: Path) -> None:
    with pytest.raises(TerminalError, match=r"options\.keyframes"):
        LocalBackend().generate(_request(options={"keyframes": "0,24"}), TakeInput(), tmp_path / "k.mp4")


def test_extend_needs_a_local_parent(tmp_path: Path) -> None:
    ext = _request(kind="extend", parent="p")
    with pytest.raises(TerminalError, match="only extend clips it made"):
        LocalBackend().extend(
            ext, TakeInput(parent_path=tmp_path / "p.mp4", parent_state=None), tmp_path / "e.mp4"
        )


def test_continue_from_a_frame_of_an_earlier_take(tmp_path: Path) -> None:
    backend = LocalBackend()
    earlier = backend.generate(_request(camera="slow pan left"), TakeInput(), tmp_path / "a.mp4")
    old = _frames(tmp_path / "a.mp4", 160, 96).astype(np.float32)
    png = tmp_path / "frame30.png"
    imaging.write_png(png, old[30].astype(np.uint8))
    request = _request(camera="zoom in", first_frame=ImageRef(take="a", frame=30), seed=99)
    info = backend.generate(
        request, TakeInput(first_frame_path=png, first_frame_state=earlier.state), tmp_path / "b.mp4"
    )
    new = _frames(tmp_path / "b.mp4", 160, 96).astype(np.float32)
    # Rendered, the first new frame is exactly frame 30; decoded, within two encodes' noise.
    assert np.array_equal(
        procedural.Renderer(info.state).frame(0), procedural.Renderer(earlier.state).frame(30)
    )
    assert float(np.abs(new[0] - old[30]).mean()) < 4.0
    assert info.state["origin"] == 30 and info.state["kind"] == earlier.state["kind"]
    assert float(np.abs(new[1] - new[0]).mean()) < 6.0  # it moves on like a next frame


def _chain(seed: int, drift: float, prompt: str = "a city skyline at dusk") -> procedural.Renderer:
    state = procedural.new_state(prompt, "static", seed, 160, 96, "24", 192, drift=drift)
    for _ in range(2):
        state = procedural.extend_state(state, 168, "static", seed, drift=drift)
    return procedural.Renderer(state)


def test_no_drift_at_zero() -> None:
    renderer = _chain(3, 0.0)
    first, last = renderer.frame(0), renderer.frame(renderer.frames_total - 1)
    assert abs(_lab(first)[0] - _lab(last)[0]) < 1.0
    dx, dy = _shift(first, last)
    assert abs(dx) < 0.5 and abs(dy) < 0.5


def test_drift_is_visible_for_some_seeds_only() -> None:
    visible = []
    for seed in range(8):
        renderer = _chain(seed, 1.0)
        first, last = renderer.frame(0), renderer.frame(renderer.frames_total - 1)
        (l0, c0), (l1, c1) = _lab(first), _lab(last)
        dx, dy = _shift(first, last)
        visible.append(abs(l1 - l0) > 4 or abs(c1 - c0) > 0.1 * c0 or max(abs(dx), abs(dy)) > 0.04 * 160)
    assert any(visible) and not all(visible)


def test_drift_grows_with_extensions() -> None:
    clip = procedural.ClipState(_chain(4, 1.0).clip.state)
    step_base = np.abs(clip.drift(96) - clip.drift(72))
    step_ext2 = np.abs(clip.drift(96 + 336) - clip.drift(72 + 336))
    assert np.all(step_ext2 >= step_base * 2.4)
