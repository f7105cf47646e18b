"""The local generator's clip state: a JSON description of one clip, and read access to it.

What lives here: the state a clip is rendered from (which world: scene kind, seed, size, image;
which segments: frames, extension index, drift, camera move, the image-guidance knobs), how a
fresh clip, a continuation from one of a clip's frames and an extension make their state
(:func:`new_state`, :func:`continue_state`, :func:`extend_state`), and :class:`ClipState`, which
answers per clip frame: which segment, how much drift, which camera pose, which element clock,
how far the picture has departed from its first frame. Also the camera vocabulary the
generator draws (:func:`parse_camera`).

What does not: pixels or sound (``world.py``, ``render.py``, ``audio.py``). Everything here is
plain numbers and JSON, so a state written into a take's record continues the clip exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from composer import camera
from composer.backends.local.scenes import scene_kind
from composer.timecode import fps_text, parse_fps

STATE_VERSION = 1

# Drift components, in this order everywhere: brightness (L* units), saturation (relative,
# 0.1 = +10 %), hue (degrees), camera position x and y (fractions of the frame width / height).
DRIFT_COMPONENTS = ("brightness", "saturation", "hue", "x", "y")
# Per-second drift rates for a seed of typical strength at drift=1; chosen so that a default
# 22 s chain (8 s + two 7 s extensions) drifts visibly for roughly a third to half of seeds.
_DRIFT_BASE_RATE = np.array([0.102, 0.00252, 0.108, 0.00108, 0.0006])
_EXTENSION_GROWTH = 0.75

# style_strength: how far a take may depart from its first frame towards the prompt's own
# palette (and shift its framing): the departure grows by DEPART_RATE * (1 - s) per second up
# to DEPART_MAX * (1 - s)**2, so 0.9 barely moves, 0.65 (a walkthrough) drifts a little over a
# long chain, and 0.2 lets the prompt take over. Unset: no departure (the generator as before).
DEPART_RATE = 0.06
DEPART_MAX = 0.9
DEPART_SHIFT = 0.25  # framing shift at full departure, as a fraction of the frame width / height


def motion_factor(motion_intensity: float | None) -> float:
    """Speed of the camera and the elements for a ``motion_intensity``: 0.5 (and unset) is the
    generator's usual pace, 0.0 stands still, 1.0 moves twice as fast."""
    return 1.0 if motion_intensity is None else 2.0 * max(0.0, min(1.0, float(motion_intensity)))


def _knob_fields(
    clip: ClipState | None, frame: int, style_strength: float | None, motion_intensity: float | None
) -> dict[str, Any]:
    """The knob fields of a new segment that starts at clip frame ``frame`` of ``clip`` (None: a new world).

    A knob left unset carries on as the clip had it; a clip without knobs gets none, so its
    frames are exactly what the generator made before knobs existed.
    """
    last = clip.segment(frame) if clip is not None else {}
    fields: dict[str, Any] = {}
    if style_strength is None and "hold" in last:
        style_strength = float(last["hold"])
    if style_strength is not None or "hold" in last:
        s = max(0.0, min(1.0, float(style_strength if style_strength is not None else 1.0)))
        fields["hold"] = s
        fields["depart0"] = clip.departure(frame) if clip is not None else 0.0
        fields["depart_rate"] = DEPART_RATE * (1.0 - s)
        fields["depart_max"] = DEPART_MAX * (1.0 - s) ** 2
    if motion_intensity is None and "motion" in last:
        fields["motion"] = float(last["motion"])
    elif motion_intensity is not None:
        fields["motion"] = motion_factor(motion_intensity)
    if "motion" in fields:
        fields["clock0"] = clip.clock(frame) if clip is not None else 0.0
    return fields


@dataclass(frozen=True)
class CameraMove:
    """The move the generator draws: what moves, which way and how fast (1 = normal)."""

    mode: str  # static | pan | tilt | zoom
    direction: int  # +1 / -1 (pan right, tilt down, zoom in are +1)
    speed: float


#: How each move of the camera vocabulary (``composer.camera``) is drawn: the generator has
#: pans, tilts and zooms; an orbit, a track or a handheld camera reads as a pan, a crane as a
#: tilt, a dolly as a zoom; a roll is not drawn.
_DRAWN = {"pan": "pan", "orbit": "pan", "track": "pan", "handheld": "pan", "tilt": "tilt", "crane": "tilt",
          "zoom": "zoom", "dolly": "zoom", "roll": "static"}  # fmt: skip


def parse_camera(text: str | None) -> CameraMove:
    """The first move of ``text``'s camera plan, as the generator draws it (none: static)."""
    plan = camera.parse(text)
    if plan is None or not plan.moves:
        return CameraMove("static", 1, 1.0)
    move = plan.moves[0]
    return CameraMove(_DRAWN[move.kind], move.direction, move.speed)


# ---------------------------------------------------------------------------------------------
# State: a JSON description of one clip (which world, which segments, drift and camera).
# ---------------------------------------------------------------------------------------------


def _drift_rate(seed: int, scale: float) -> list[float]:
    """Per-second drift of a seed: its strength is lognormal, so some seeds barely drift."""
    if scale <= 0:
        return [0.0] * len(DRIFT_COMPONENTS)
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 0xD21F7])
    strength = math.exp(rng.normal(-0.2, 0.8))
    weights = rng.uniform(0.15, 1.0, len(DRIFT_COMPONENTS)) * rng.choice([-1.0, 1.0], len(DRIFT_COMPONENTS))
    return [float(v) for v in _DRIFT_BASE_RATE * weights * strength * scale]


def _camera_spec(text: str | None, t0: int, pose0: list[float], motion: float = 1.0) -> dict[str, Any]:
    move = parse_camera(text)
    return {
        "text": text or "",
        "mode": move.mode,
        "direction": move.direction,
        "speed": move.speed * motion,
        "t0": t0,
        "pose0": [float(v) for v in pose0],
    }


def new_state(
    prompt: str,
    camera: str | None,
    seed: int,
    width: int,
    height: int,
    fps: Fraction | str,
    frames: int,
    *,
    drift: float = 1.0,
    image: dict[str, Any] | None = None,
    style_strength: float | None = None,
    motion_intensity: float | None = None,
) -> dict[str, Any]:
    """The state of a fresh clip of ``frames`` frames (``image``: the first frame's source, if any).

    ``image`` is JSON data the backend uses to find the image again (path, sha256); the
    pixels themselves are passed to :class:`Renderer`. ``style_strength`` and
    ``motion_intensity`` (0..1, None: unset) are the image-guidance knobs.
    """
    fps = parse_fps(fps)
    world = {
        "kind": scene_kind(prompt),
        "world_seed": int(seed),
        "width": int(width),
        "height": int(height),
        "fps": fps_text(fps),
        "image": image,
        "born": 0,
    }
    pose0 = list(_home_pose(width, height, image is not None))
    segment = {
        "start": 0,
        "frames": int(frames),
        "extension": 0,
        "drift0": [0.0] * len(DRIFT_COMPONENTS),
        "rate": _drift_rate(seed, drift),
        "camera": _camera_spec(camera, 0, pose0, motion_factor(motion_intensity)),
        **_knob_fields(None, 0, style_strength, motion_intensity),
    }
    return _summarise({"version": STATE_VERSION, **world, "origin": 0, "segments": [segment]})


def continue_state(
    state: dict[str, Any],
    frame: int,
    camera: str | None,
    seed: int,
    frames: int,
    *,
    drift: float = 1.0,
    style_strength: float | None = None,
    motion_intensity: float | None = None,
) -> dict[str, Any]:
    """A fresh clip (extension index 0) whose frame 0 is frame ``frame`` of the clip ``state``."""
    clip = ClipState(state)
    frame = max(0, min(frame, clip.frames - 1))
    pose = clip.pose(frame)
    segment = {
        "start": 0,
        "frames": int(frames),
        "extension": 0,
        "drift0": [float(v) for v in clip.drift(frame)],
        "rate": _drift_rate(seed, drift),
        "camera": _camera_spec(camera, clip.origin + frame, pose, motion_factor(motion_intensity)),
        **_knob_fields(clip, frame, style_strength, motion_intensity),
    }
    new = {
        key: state[key]
        for key in ("version", "kind", "world_seed", "width", "height", "fps", "image", "born")
    }
    return _summarise({**new, "origin": clip.origin + frame, "segments": [segment]})


def extend_state(
    state: dict[str, Any],
    frames: int,
    camera: str | None,
    seed: int,
    *,
    drift: float = 1.0,
    style_strength: float | None = None,
    motion_intensity: float | None = None,
) -> dict[str, Any]:
    """The state of ``state``'s clip lengthened by ``frames`` frames (next extension index).

    A knob left unset carries on as the clip had it (an extension request may not repeat them).
    """
    clip = ClipState(state)
    last = state["segments"][-1]
    end = clip.frames
    knobs = _knob_fields(clip, end - 1, style_strength, motion_intensity)
    if "clock0" in knobs:
        knobs["clock0"] = clip.clock(end)  # the clock runs on past the last frame
    if "depart0" in knobs:
        knobs["depart0"] = clip.departure(end)
    speed = float(knobs.get("motion", last.get("motion", 1.0)))
    if (camera or "") == last["camera"]["text"] and speed == float(last.get("motion", 1.0)):
        cam = last["camera"]  # same move: keep its time origin, so the motion just goes on
    else:
        cam = _camera_spec(camera, clip.origin + end, clip.pose(end), speed)
    segment = {
        "start": end,
        "frames": int(frames),
        "extension": int(last["extension"]) + 1,
        "drift0": [float(v) for v in clip.drift(end)],
        "rate": _drift_rate(seed, drift),
        "camera": cam,
        **knobs,
    }
    return _summarise({**state, "segments": [*state["segments"], segment]})


def _summarise(state: dict[str, Any]) -> dict[str, Any]:
    # Convenience fields for people and other code; the segments hold the truth.
    clip = ClipState(state)
    state["frames"] = clip.frames
    state["world_frame"] = clip.origin + clip.frames
    state["drift"] = dict(
        zip(DRIFT_COMPONENTS, (round(float(v), 6) for v in clip.drift(clip.frames)), strict=True)
    )
    state["extension"] = int(state["segments"][-1]["extension"])
    return state


def _home_pose(width: int, height: int, image: bool) -> tuple[float, float, float]:
    """The camera pose (canvas centre x, y, log zoom) of a world's first frame."""
    cw, ch = canvas_size(width, height, image)
    return cw / 2, ch / 2, 0.0


def canvas_size(width: int, height: int, image: bool) -> tuple[int, int]:
    if image:
        mx, my = image_margin(width, height)
        return width + 2 * mx, height + 2 * my
    # Procedural canvases are twice the width and wrap horizontally, so pans never end;
    # 30 % taller gives room for tilts, zoom-outs and position drift.
    return 2 * width, _even(round(height * 1.3))


def image_margin(width: int, height: int) -> tuple[int, int]:
    return width // 4, height // 4


def _even(value: int) -> int:
    return value + (value % 2)


class ClipState:
    """Read access to a state dict: per clip frame, which segment, drift and camera pose."""

    def __init__(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION or not state.get("segments"):
            raise ValueError("not a local generator state")
        self.state = state
        self.kind: str = state["kind"]
        self.width, self.height = int(state["width"]), int(state["height"])
        self.fps = parse_fps(state["fps"])
        self.origin = int(state["origin"])
        self.segments: list[dict[str, Any]] = state["segments"]
        self.frames = sum(int(s["frames"]) for s in self.segments)
        self.image_world = state.get("image") is not None
        self.canvas_w, self.canvas_h = canvas_size(self.width, self.height, self.image_world)

    def segment(self, frame: int) -> dict[str, Any]:
        for seg in reversed(self.segments):
            if frame >= int(seg["start"]):
                return seg
        return self.segments[0]

    def drift(self, frame: int) -> np.ndarray:
        """Drift at clip frame ``frame``: linear within a segment, faster with each extension."""
        seg = self.segment(frame)
        dt = (frame - int(seg["start"])) / float(self.fps)
        growth = 1.0 + _EXTENSION_GROWTH * int(seg["extension"])
        return np.asarray(seg["drift0"], dtype=np.float64) + np.asarray(seg["rate"]) * growth * dt

    def clock(self, frame: int) -> float:
        """The elements' time (seconds) at clip frame ``frame``: world time, unless a
        ``motion_intensity`` runs it faster or slower from where its segment began."""
        seg = self.segment(frame)
        if "clock0" not in seg:
            return (self.origin + frame) / float(self.fps)
        return float(seg["clock0"]) + float(seg["motion"]) * (frame - int(seg["start"])) / float(self.fps)

    def departure(self, frame: int) -> float:
        """How far clip frame ``frame`` has left the first frame's palette and framing (0..1)."""
        seg = self.segment(frame)
        if "depart_rate" not in seg:
            return float(seg.get("depart0", 0.0))
        start = float(seg["depart0"])
        grown = start + float(seg["depart_rate"]) * (frame - int(seg["start"])) / float(self.fps)
        return min(grown, max(start, float(seg["depart_max"])))

    def pose(self, frame: int) -> list[float]:
        """Camera (centre x, centre y, log zoom) in canvas pixels at clip frame ``frame``, without drift."""
        cam = self.segment(frame)["camera"]
        t = (self.origin + frame - int(cam["t0"])) / float(self.fps)
        x, y, z = (float(v) for v in cam["pose0"])
        speed, sign = float(cam["speed"]), int(cam["direction"])
        w, h = self.width, self.height
        if cam["mode"] == "pan":
            v = 0.045 * w * speed * sign
            if self.image_world:
                mx = image_margin(w, h)[0] * 0.85  # no wrap: swing back and forth within the margin
                x += mx * math.sin(v * t / mx)
            else:
                x += v * t
        elif cam["mode"] == "tilt":
            amp = 0.12 * h
            x_speed = 0.03 * h * speed * sign
            y += amp * math.sin(x_speed * t / amp)
        elif cam["mode"] == "zoom":
            amp = math.log(1.22)
            rate = 0.02 * speed * sign
            z += amp * math.sin(rate * t / amp)
        return [x, y, z]
