"""The local backend's procedural video generator: pure synthesis of frames and ambient sound.

What lives here: reading a scene kind from a prompt, drawing the camera plan of its camera
text (``composer.camera``), painting a world (a background canvas larger than the frame plus
moving elements), moving a virtual camera over it, a slow seed-dependent *drift* (brightness, colour, position) that
imitates how real generators wander over long clips, the two image-guidance knobs (a
*departure* from the first frame's palette and layout that a lower ``style_strength`` lets
grow, and a ``motion_intensity`` that scales how fast the camera and the elements move),
ambient audio, and the JSON *state* that lets a clip be continued (extended, or restarted
from one of its frames) exactly.

What does not: files, subprocesses and encoding (``backends/local.py`` and ``ffmpeg.py``),
or anything about requests and caching. Pixel operations go through ``composer.imaging``.

Everything is a deterministic function of the state: a frame is a function of the *world*
(kind, world seed, size, background image) and of the *world frame* it shows (frames since
the world began), the camera pose and the drift at that frame. So a continuation that
starts from a frame of an earlier clip reproduces that frame and then moves on from it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from composer import camera, imaging
from composer.timecode import AUDIO_RATE, audio_samples, fps_text, parse_fps

STATE_VERSION = 1

KINDS = ("city", "sea", "snow", "forest", "desert", "fire", "night", "sky", "abstract")

# Words that pick a scene kind; the kind with most hits wins, ties go to the earlier kind in KINDS.
_KIND_WORDS: dict[str, frozenset[str]] = {
    "city": frozenset(
        [
            "city",
            "cities",
            "skyline",
            "skyscraper",
            "skyscrapers",
            "street",
            "streets",
            "urban",
            "downtown",
            "building",
            "buildings",
            "traffic",
            "town",
            "metropolis",
            "neon",
            "rooftop",
            "rooftops",
        ]
    ),
    "sea": frozenset(
        [
            "sea",
            "seas",
            "ocean",
            "oceans",
            "wave",
            "waves",
            "beach",
            "shore",
            "surf",
            "coast",
            "coastline",
            "tide",
            "harbor",
            "harbour",
            "lake",
            "seaside",
            "bay",
        ]
    ),
    "snow": frozenset(
        ["snow", "snowy", "snowfall", "winter", "ice", "icy", "frozen", "blizzard", "arctic", "snowflakes"]
    ),
    "forest": frozenset(
        [
            "forest",
            "forests",
            "tree",
            "trees",
            "woods",
            "woodland",
            "pine",
            "pines",
            "jungle",
            "meadow",
            "grass",
            "garden",
            "leaves",
        ]
    ),
    "desert": frozenset(["desert", "deserts", "dune", "dunes", "sand", "sandy", "sahara", "canyon", "arid"]),
    "fire": frozenset(
        [
            "fire",
            "fires",
            "flame",
            "flames",
            "campfire",
            "ember",
            "embers",
            "sunset",
            "dusk",
            "volcano",
            "lava",
            "blaze",
            "burning",
        ]
    ),
    "night": frozenset(
        ["night", "nights", "stars", "starry", "moon", "moonlit", "midnight", "galaxy", "milky"]
    ),
    "sky": frozenset(
        [
            "sky",
            "skies",
            "cloud",
            "clouds",
            "cloudy",
            "birds",
            "bird",
            "flying",
            "aerial",
            "heaven",
            "sunrise",
        ]
    ),
}

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
_DEPART_SHIFT = 0.25  # framing shift at full departure, as a fraction of the frame width / height
# The prompt's palette by scene kind: dark, middle and light stops of a gradient map (hex RGB).
_PALETTES = {
    "city": ("#1a1f3a", "#c26a2e", "#ffd9a0"),
    "sea": ("#06243a", "#1f7a8c", "#d8f3f0"),
    "snow": ("#2b3440", "#9fb4c8", "#ffffff"),
    "forest": ("#0f2414", "#4f7d2c", "#e3efb0"),
    "desert": ("#3a1f0e", "#c8873d", "#fbe3b0"),
    "fire": ("#1a0500", "#d0401a", "#ffd060"),
    "night": ("#03040f", "#23306b", "#b8c4ff"),
    "sky": ("#20407a", "#6fa8dc", "#fff6e0"),
    "abstract": ("#2a0f3a", "#b0407a", "#ffe0f0"),
}


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


def scene_kind(prompt: str) -> str:
    """The scene kind a prompt describes (``abstract`` when no word matches)."""
    words = re.findall(r"[a-z]+", prompt.lower())
    scores = {kind: sum(w in vocab for w in words) for kind, vocab in _KIND_WORDS.items()}
    best = max(scores.values(), default=0)
    if best == 0:
        return "abstract"
    return next(kind for kind in KINDS if scores.get(kind) == best)


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
    cw, ch = _canvas_size(width, height, image)
    return cw / 2, ch / 2, 0.0


def _canvas_size(width: int, height: int, image: bool) -> tuple[int, int]:
    if image:
        mx, my = _image_margin(width, height)
        return width + 2 * mx, height + 2 * my
    # Procedural canvases are twice the width and wrap horizontally, so pans never end;
    # 30 % taller gives room for tilts, zoom-outs and position drift.
    return 2 * width, _even(round(height * 1.3))


def _image_margin(width: int, height: int) -> tuple[int, int]:
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
        self.canvas_w, self.canvas_h = _canvas_size(self.width, self.height, self.image_world)

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
                mx = _image_margin(w, h)[0] * 0.85  # no wrap: swing back and forth within the margin
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


# ---------------------------------------------------------------------------------------------
# Painting: background canvases and moving elements.
# ---------------------------------------------------------------------------------------------

BGR = tuple[float, float, float]


def _c(hex_rgb: str) -> np.ndarray:
    """A '#rrggbb' colour as a float BGR array."""
    v = int(hex_rgb.lstrip("#"), 16)
    return np.array([v & 255, (v >> 8) & 255, (v >> 16) & 255], dtype=np.float32)


def _tint(rng: np.random.Generator, color: np.ndarray, amount: float = 10.0) -> np.ndarray:
    return np.clip(color + rng.normal(0.0, amount, 3), 0, 255).astype(np.float32)


def _vgrad(h: int, w: int, stops: list[tuple[float, np.ndarray]]) -> np.ndarray:
    pos = np.array([p for p, _ in stops], dtype=np.float32)
    cols = np.stack([c for _, c in stops])
    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)
    column = np.stack([np.interp(ys, pos, cols[:, k]) for k in range(3)], axis=1).astype(np.float32)
    return np.ascontiguousarray(np.broadcast_to(column[:, None, :], (h, w, 3)))


def _ridge(rng: np.random.Generator, w: int, base: float, amp: float, octaves: int = 4) -> np.ndarray:
    """A smooth periodic curve over ``w`` columns (integer frequencies, so it wraps seamlessly)."""
    x = np.arange(w, dtype=np.float32) / w
    y = np.full(w, base, dtype=np.float32)
    for k in range(octaves):
        freq = int(rng.integers(1 + 2 * k, 3 + 4 * k))
        y += amp / (1.7**k) * np.sin(2 * np.pi * (freq * x + rng.random())).astype(np.float32)
    return y


def _fill_below(img: np.ndarray, curve: np.ndarray, color: np.ndarray, shade: float = 0.0) -> None:
    """Fill everything below ``curve`` with ``color`` (anti-aliased edge; optional darkening downward)."""
    h = img.shape[0]
    top = max(0, int(curve.min()) - 1)
    ys = np.arange(top, h, dtype=np.float32)[:, None]
    alpha = np.clip(ys - curve[None, :] + 0.5, 0.0, 1.0)[..., None]
    fill = np.broadcast_to(color, (len(ys), img.shape[1], 3))
    if shade:
        fill = fill * (1.0 - shade * (ys[..., None] - top) / max(1, h - top))
    img[top:] = img[top:] * (1.0 - alpha) + fill * alpha


def _glow(img: np.ndarray, x: float, y: float, radius: float, color: np.ndarray, strength: float) -> None:
    h, w = img.shape[:2]
    x0, x1 = max(0, int(x - radius)), min(w, int(x + radius) + 1)
    y0, y1 = max(0, int(y - radius)), min(h, int(y + radius) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    d = np.sqrt((xx - x) ** 2 + (yy - y) ** 2) / radius
    a = (np.clip(1.0 - d, 0.0, 1.0) ** 2 * strength)[..., None]
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1.0 - a) + color * a


def _wrapped_glow(
    img: np.ndarray, x: float, y: float, radius: float, color: np.ndarray, strength: float
) -> None:
    """A glow that may cross the canvas seam (drawn at its periodic copies too)."""
    _wrapped(img, x, lambda xx: _glow(img, xx, y, radius, color, strength))


def _blur_wrap(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur that wraps horizontally, so a periodic canvas stays seamless."""
    pad = min(img.shape[1], int(3 * sigma) + 1)
    wide = np.concatenate([img[:, -pad:], img, img[:, :pad]], axis=1)
    return np.ascontiguousarray(imaging.blur(wide, sigma)[:, pad:-pad])


def _wrapped(img: np.ndarray, x: float, draw: Any) -> None:
    """Call ``draw(x)`` at x and at its periodic copies near the canvas edges."""
    w = img.shape[1]
    for dx in (-w, 0, w):
        if -w * 0.25 < x + dx < w * 1.25:
            draw(x + dx)


def _pine(img: np.ndarray, x: float, base: float, height: float, color: BGR, snow: BGR | None = None) -> None:
    half = height * 0.22
    tiers = 4
    for k in range(tiers):
        top = base - height * (1.0 - k * 0.18)
        bottom = base - height * (0.55 - k * 0.17)
        spread = half * (0.6 + 0.4 * k / (tiers - 1))
        tri = np.array([[x, top], [x - spread, bottom], [x + spread, bottom]])
        imaging.fill_polygon(img, tri, color)
        if snow is not None:
            cap = np.array(
                [
                    [x, top],
                    [x - spread * 0.35, top + (bottom - top) * 0.35],
                    [x + spread * 0.35, top + (bottom - top) * 0.35],
                ]
            )
            imaging.fill_polygon(img, cap, snow)
    imaging.fill_polygon(
        img,
        np.array(
            [
                [x - height * 0.02, base],
                [x + height * 0.02, base],
                [x + height * 0.02, base - height * 0.3],
                [x - height * 0.02, base - height * 0.3],
            ]
        ),
        color,
    )


def _stars(img: np.ndarray, rng: np.random.Generator, count: int, top: float, bottom: float) -> np.ndarray:
    h, w = img.shape[:2]
    xs = rng.uniform(0, w, count)
    ys = rng.uniform(top * h, bottom * h, count) ** 1.0
    level = rng.uniform(0.35, 1.0, count)
    for x, y, lv in zip(xs, ys, level, strict=True):
        c = 120 + 135 * lv
        imaging.draw_disc(img, x, y, 0.6 + 0.9 * lv, (c, c, min(255.0, c * 1.02)))
    return np.stack([xs, ys, level], axis=1)


def _paint(
    kind: str, rng: np.random.Generator, cw: int, ch: int, w: int, h: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """The background canvas of a kind (float work, uint8 result) and layout facts for its elements."""
    layout: dict[str, Any] = {}
    s = h / 720.0  # sizes are designed at 720p
    if kind == "sky":
        img = _vgrad(
            ch,
            cw,
            [
                (0.0, _tint(rng, _c("#1f5fae"))),
                (0.6, _tint(rng, _c("#6fa8dc"))),
                (1.0, _tint(rng, _c("#e6eef5"))),
            ],
        )
        _wrapped_glow(img, rng.uniform(0, cw), ch * 0.2, 260 * s, _c("#fff6d8"), 0.6)
        clouds = np.zeros((ch, cw, 3), np.float32)
        cover_a = np.zeros((ch, cw), np.float32)
        for _ in range(28):
            x, y = rng.uniform(0, cw), rng.uniform(0.15, 0.85) * ch
            rx, ry = rng.uniform(60, 200) * s, rng.uniform(18, 50) * s
            _wrapped(
                cover_a, x, lambda xx, y=y, rx=rx, ry=ry: imaging.fill_ellipse(cover_a, xx, y, rx, ry, (1.0,))
            )
        cover_a = _blur_wrap(cover_a, 14 * s) * 0.75
        clouds[:] = _c("#ffffff")
        img = img * (1 - cover_a[..., None]) + clouds * cover_a[..., None]
        _fill_below(img, _ridge(rng, cw, ch * 0.95, 12 * s), _c("#5f7f8f"))
        layout["horizon"] = ch * 0.95
    elif kind == "sea":
        horizon = ch * 0.46
        img = _vgrad(ch, cw, [(0.0, _tint(rng, _c("#2b5d9b"))), (0.46, _tint(rng, _c("#f3d9b1")))])
        water = _vgrad(
            ch,
            cw,
            [(0.0, _c("#4a7fa5")), (0.46, _tint(rng, _c("#4f86ad"))), (1.0, _tint(rng, _c("#0f3454")))],
        )
        img[int(horizon) :] = water[int(horizon) :]
        sun_x = rng.uniform(0.2, 0.8) * cw
        _glow(img, sun_x, horizon - 60 * s, 300 * s, _c("#fff0c8"), 0.7)
        imaging.fill_ellipse(
            img, sun_x, horizon - 60 * s, 34 * s, 34 * s, tuple(float(v) for v in _c("#fff8e6"))
        )
        # The sun's reflection: a soft bright column on the water.
        col = np.zeros((ch, cw), np.float32)
        col[int(horizon) :, max(0, int(sun_x - 50 * s)) : int(sun_x + 50 * s)] = 0.35
        col = imaging.blur(col, 22 * s)
        img = img + col[..., None] * (_c("#fff0c8") - img) * (np.arange(ch)[:, None, None] >= horizon)
        layout.update(horizon=horizon, sea_color=_c("#4f86ad"), foam=_c("#e8f1f6"))
    elif kind == "city":
        img = _vgrad(
            ch,
            cw,
            [
                (0.0, _tint(rng, _c("#0b1030"))),
                (0.55, _tint(rng, _c("#3b2a5a"))),
                (0.8, _tint(rng, _c("#d9785a"))),
            ],
        )
        road = ch * 0.8
        beacons = []
        for layer, (col, lo, hi, lit) in enumerate(
            [
                (_c("#38406a"), 0.35, 0.62, 0.0),
                (_c("#1e2240"), 0.3, 0.7, 0.25),
                (_c("#0e1024"), 0.45, 0.78, 0.4),
            ]
        ):
            x = rng.uniform(0, 40)
            while x < cw:
                bw = rng.uniform(50, 130) * s * (1 + 0.3 * layer)
                top = rng.uniform(lo, hi) * ch
                x0, x1 = int(x), int(min(cw, x + bw))
                img[int(top) : int(road), x0:x1] = col
                if lit > 0:
                    # Lit windows: a grid of cells inside the building, each lit by chance.
                    ys = np.arange(int(top) + int(8 * s), int(road) - int(10 * s), max(4, int(14 * s)))
                    xs = np.arange(x0 + int(6 * s), x1 - int(6 * s), max(4, int(12 * s)))
                    on = rng.random((len(ys), len(xs))) < lit
                    warm = _tint(rng, _c("#ffd58a"), 15)
                    wy, wx = max(2, int(6 * s)), max(2, int(5 * s))
                    for i, j in zip(*np.nonzero(on), strict=True):
                        img[ys[i] : ys[i] + wy, xs[j] : xs[j] + wx] = warm * rng.uniform(0.7, 1.0)
                if layer == 1 and top < 0.4 * ch:
                    beacons.append((x + bw / 2, top - 2))
                x += bw + rng.uniform(0, 20) * s
        img[int(road) :] = _c("#15151c")
        img[int(road) + int(3 * s) : int(road) + int(5 * s)] = _c("#3a3a44")
        layout.update(road=road, beacons=beacons, lane=ch * 0.035)
    elif kind in ("forest", "snow"):
        snowy = kind == "snow"
        if snowy:
            img = _vgrad(ch, cw, [(0.0, _tint(rng, _c("#8c9db3"))), (0.7, _tint(rng, _c("#dfe6ee")))])
        else:
            img = _vgrad(ch, cw, [(0.0, _tint(rng, _c("#7fb3d5"))), (0.7, _tint(rng, _c("#f1e9c6")))])
            _wrapped_glow(img, rng.uniform(0, cw), ch * 0.25, 320 * s, _c("#fff5d0"), 0.55)
        layers = [
            (_c("#9fb0bd") if snowy else _c("#7d9a9a"), 0.55, 90),
            (_c("#5d7a70") if snowy else _c("#3f6b4a"), 0.68, 150),
            (_c("#2c4538") if snowy else _c("#1f3d28"), 0.8, 220),
        ]
        for k, (col, base, th) in enumerate(layers):
            ground = _ridge(rng, cw, base * ch, 18 * s, 3)
            _fill_below(img, ground, _c("#eef2f6") * (0.85 + 0.05 * k) if snowy else col * 0.8)
            n = int(cw / (60 * s) * (0.6 + 0.3 * k))
            for x in np.sort(rng.uniform(0, cw, n)):
                tree_h = th * s * rng.uniform(0.6, 1.2)
                gy = float(ground[int(x) % cw]) + 6 * s
                color = tuple(float(v) for v in _tint(rng, col, 6))
                cap = tuple(float(v) for v in _c("#f4f7fa")) if snowy else None
                _wrapped(
                    img,
                    x,
                    lambda xx, gy=gy, tree_h=tree_h, color=color, cap=cap: _pine(
                        img, xx, gy, tree_h, color, cap
                    ),
                )
        if snowy:
            _fill_below(img, _ridge(rng, cw, 0.9 * ch, 10 * s, 2), _c("#f2f5f8"), 0.1)
        else:
            _fill_below(img, _ridge(rng, cw, 0.9 * ch, 10 * s, 2), _c("#24401f"), 0.3)
    elif kind == "night":
        img = _vgrad(
            ch,
            cw,
            [
                (0.0, _tint(rng, _c("#02040c"), 3)),
                (0.7, _tint(rng, _c("#101a3a"), 5)),
                (1.0, _tint(rng, _c("#1d2a4a"), 5)),
            ],
        )
        layout["stars"] = _stars(img, rng, int(cw * ch / 9000), 0.0, 0.75)
        moon = (rng.uniform(0.1, 0.9) * cw, ch * rng.uniform(0.18, 0.3))
        _glow(img, moon[0], moon[1], 180 * s, _c("#9fb4d8"), 0.35)
        imaging.fill_ellipse(img, moon[0], moon[1], 30 * s, 30 * s, tuple(float(v) for v in _c("#eef0e6")))
        imaging.fill_ellipse(
            img, moon[0] + 8 * s, moon[1] - 6 * s, 7 * s, 6 * s, tuple(float(v) for v in _c("#d6d8cc"))
        )
        _fill_below(img, _ridge(rng, cw, 0.72 * ch, 30 * s), _c("#0a0f1c"))
        _fill_below(img, _ridge(rng, cw, 0.84 * ch, 22 * s), _c("#04060c"))
        layout["ground"] = 0.78 * ch
    elif kind == "desert":
        img = _vgrad(ch, cw, [(0.0, _tint(rng, _c("#4a8cc8"))), (0.5, _tint(rng, _c("#f2e3c0")))])
        _wrapped_glow(img, rng.uniform(0, cw), ch * 0.2, 260 * s, _c("#fffbe8"), 0.8)
        for k, col in enumerate([_c("#d9b382"), _c("#cf9f66"), _c("#c08a50"), _c("#a87442")]):
            ridge = _ridge(rng, cw, (0.5 + 0.12 * k) * ch, (20 + 8 * k) * s, 2)
            _fill_below(img, ridge, _tint(rng, col, 6), 0.25)
        layout["ground"] = 0.6 * ch
    elif kind == "fire":
        img = _vgrad(
            ch,
            cw,
            [
                (0.0, _tint(rng, _c("#2a1040"))),
                (0.35, _tint(rng, _c("#8a2a3a"))),
                (0.6, _tint(rng, _c("#f06a2a"))),
                (0.72, _tint(rng, _c("#ffc36a"))),
            ],
        )
        sun_x = rng.uniform(0.2, 0.8) * cw
        _glow(img, sun_x, ch * 0.66, 380 * s, _c("#ffd27a"), 0.8)
        imaging.fill_ellipse(img, sun_x, ch * 0.66, 70 * s, 70 * s, tuple(float(v) for v in _c("#fff0b0")))
        _fill_below(img, _ridge(rng, cw, 0.7 * ch, 16 * s), _c("#3a1420"))
        _fill_below(img, _ridge(rng, cw, 0.8 * ch, 22 * s), _c("#14060a"))
        layout["ground"] = 0.8 * ch
    else:  # abstract
        a, b = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
        img = _vgrad(ch, cw, [(0.0, a.astype(np.float32)), (1.0, b.astype(np.float32))])
        blobs = np.zeros((ch, cw, 3), np.float32)
        for _ in range(14):
            x, y, r = rng.uniform(0, cw), rng.uniform(0, ch), rng.uniform(60, 220) * s
            colr = tuple(float(v) for v in rng.uniform(30, 230, 3))
            _wrapped(blobs, x, lambda xx, y=y, r=r, colr=colr: imaging.fill_ellipse(blobs, xx, y, r, r, colr))
        mask = (blobs.sum(axis=2) > 0).astype(np.float32)
        spread = _blur_wrap(mask, 40 * s)[..., None]
        soft = spread * 0.6
        img = img * (1 - soft) + _blur_wrap(blobs, 40 * s) * soft / np.maximum(spread, 1e-3)
    return np.clip(img, 0, 255).astype(np.uint8), layout


# Mottling amplitude per kind (fraction of the pixel value): real surfaces are never flat, and
# flat areas give optical flow nothing to hold on to (a pan over a smooth gradient reads as a
# still camera) and make colour histograms jump on encoder noise.
_MOTTLE = {"sea": 0.07, "sky": 0.05, "desert": 0.07, "snow": 0.05, "night": 0.03}


def _smooth_noise(rng: np.random.Generator, ch: int, cw: int, sigma: float) -> np.ndarray:
    """Gaussian-blurred noise, wrap-seamless in x, made at a lower resolution and scaled up.

    A wide blur of a full canvas costs a large share of painting a world; the field is smooth
    at this scale, so computing it on a grid ``sigma / 4`` times coarser looks the same.
    """
    step = max(1, int(sigma / 4))
    if step == 1:
        return _blur_wrap(rng.standard_normal((ch, cw)).astype(np.float32), sigma)
    small_w, small_h = max(2, -(-cw // step)), max(2, -(-ch // step))
    small = _blur_wrap(rng.standard_normal((small_h, small_w)).astype(np.float32), sigma / step)
    # One extra column (the first again) so the scaled-up field stays periodic at the seam.
    ring = np.concatenate([small, small[:, :1]], axis=1)
    period = cw / small_w
    big = imaging.resize(ring, round(cw + period), ch)
    return np.ascontiguousarray(big[:, :cw])


def _mottle(img: np.ndarray, rng: np.random.Generator, kind: str, height: int) -> np.ndarray:
    """Fixed, wrap-seamless blotchy texture (two scales, slightly coloured) painted into the canvas."""
    amount = _MOTTLE.get(kind, 0.04)
    s = height / 720.0
    ch, cw = img.shape[:2]
    fine = _blur_wrap(rng.standard_normal((ch, cw)).astype(np.float32), max(0.8, 7 * s))
    coarse = _smooth_noise(rng, ch, cw, max(2.0, 26 * s))
    field = fine / (float(fine.std()) + 1e-6) + 0.8 * coarse / (float(coarse.std()) + 1e-6)
    tint = _smooth_noise(rng, ch, cw, max(2.0, 18 * s))
    tint /= float(tint.std()) + 1e-6
    gain = (
        1.0
        + amount * np.clip(field, -3.0, 3.0)[..., None]
        + 0.35 * amount * np.clip(tint, -3.0, 3.0)[..., None] * np.array([1.0, -0.3, -0.7], np.float32)
    )
    return np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)


@dataclass
class _Particles:
    x: np.ndarray
    y: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    sway: np.ndarray
    phase: np.ndarray
    radius: np.ndarray
    color: np.ndarray  # N x 3
    flicker: float = 0.0


def _particles(
    rng: np.random.Generator,
    n: int,
    cw: int,
    ch: int,
    *,
    vx: tuple[float, float],
    vy: tuple[float, float],
    radius: tuple[float, float],
    color: np.ndarray,
    sway: float = 0.0,
    flicker: float = 0.0,
    band: tuple[float, float] = (0.0, 1.0),
) -> _Particles:
    return _Particles(
        x=rng.uniform(0, cw, n),
        y=rng.uniform(band[0] * ch, band[1] * ch, n),
        vx=rng.uniform(*vx, n),
        vy=rng.uniform(*vy, n),
        sway=rng.uniform(0.3, 1.0, n) * sway,
        phase=rng.uniform(0, 2 * np.pi, n),
        radius=rng.uniform(*radius, n),
        color=np.clip(color[None, :] + rng.normal(0, 12, (n, 3)), 0, 255),
        flicker=flicker,
    )


@dataclass
class _View:
    """Where the canvas sits on screen in one frame: screen = (canvas - centre) * zoom + half size."""

    cx: float
    cy: float
    zoom: float
    width: int
    height: int
    canvas_w: int
    wrap: bool

    def to_screen(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx = x - self.cx
        if self.wrap:
            dx = (dx + self.canvas_w / 2) % self.canvas_w - self.canvas_w / 2
        return dx * self.zoom + self.width / 2 - 0.5, (y - self.cy) * self.zoom + self.height / 2 - 0.5


def _world_seed_key(seed: int, kind: str, width: int, height: int) -> list[int]:
    return [seed, KINDS.index(kind), width, height]


@functools.lru_cache(maxsize=4)
def _painted_world(
    kind: str, seed: int, cw: int, ch: int, width: int, height: int
) -> tuple[np.ndarray, dict[str, Any], dict[str, Any]]:
    """The painted canvas of a world, its layout, and the generator state after painting.

    Painting costs about a second at 720p, and every take of a chain (and every segment of a
    scene) paints the same world: the last few are kept, read-only, for the whole process.
    """
    rng = np.random.default_rng(_world_seed_key(seed, kind, width, height))
    canvas, layout = _paint(kind, rng, cw, ch, width, height)
    canvas = _mottle(canvas, np.random.default_rng([seed, KINDS.index(kind), 0x7E47]), kind, height)
    # A slight softening (like a real lens) halves the bits x264 spends on crisp edges
    # that move by sub-pixel steps, which is most of its encoding time.
    canvas = _blur_wrap(canvas, 0.8 * height / 720.0)
    canvas.flags.writeable = False
    return canvas, layout, rng.bit_generator.state


class World:
    """A painted canvas plus its moving elements; draws the elements of any world time."""

    def __init__(self, clip: ClipState, image: np.ndarray | None) -> None:
        self.kind = clip.kind
        self.width, self.height = clip.width, clip.height
        self.fps = float(clip.fps)
        self.cw, self.ch = clip.canvas_w, clip.canvas_h
        self.image_world = clip.image_world
        seed = int(clip.state["world_seed"]) & 0xFFFFFFFF
        rng = np.random.default_rng(_world_seed_key(seed, self.kind, self.width, self.height))
        if self.image_world:
            if image is None:
                raise ValueError("this clip's world is an image; pass its pixels")
            mx, my = _image_margin(self.width, self.height)
            self.canvas = imaging.pad_reflect(imaging.cover(image, self.width, self.height), mx, my)
            layout: dict[str, Any] = {}
        else:
            self.canvas, painted_layout, rng_state = _painted_world(
                self.kind, seed, self.cw, self.ch, self.width, self.height
            )
            layout = dict(painted_layout)
            # The elements draw from the same generator after the painting, as if it had run here.
            rng.bit_generator.state = rng_state
        self.wrap = not self.image_world
        # The canvas with its first columns appended, so a horizontal window never has to wrap.
        self.extended = (
            np.ascontiguousarray(np.concatenate([self.canvas, self.canvas[:, : self.width + 2]], axis=1))
            if self.wrap
            else self.canvas
        )
        self.layout = layout
        self._setup_elements(rng)

    # -- elements -----------------------------------------------------------------------------

    def _setup_elements(self, rng: np.random.Generator) -> None:
        s = self.height / 720.0
        cw, ch, kind = self.cw, self.ch, self.kind
        self.particles: list[_Particles] = []
        self.birds: np.ndarray | None = None
        self.clouds: list[tuple[float, float, float, np.ndarray]] = []
        self.cars: list[tuple[np.ndarray, float, float, BGR]] = []
        self.waves: np.ndarray | None = None
        if kind == "snow":
            self.particles.append(
                _particles(
                    rng,
                    45,
                    cw,
                    ch,
                    vx=(-6 * s, 6 * s),
                    vy=(20 * s, 35 * s),
                    radius=(1.0 * s, 2.0 * s),
                    color=_c("#d8dee6"),
                    sway=8 * s,
                )
            )
            self.particles.append(
                _particles(
                    rng,
                    12,
                    cw,
                    ch,
                    vx=(-10 * s, 10 * s),
                    vy=(45 * s, 65 * s),
                    radius=(2.0 * s, 3.0 * s),
                    color=_c("#e8ecf2"),
                    sway=14 * s,
                )
            )
        elif kind == "fire":
            self.particles.append(
                _particles(
                    rng,
                    90,
                    cw,
                    ch,
                    vx=(-10 * s, 10 * s),
                    vy=(-70 * s, -35 * s),
                    radius=(1.2 * s, 2.6 * s),
                    color=_c("#ffa040"),
                    sway=18 * s,
                    flicker=0.6,
                    band=(0.3, 1.0),
                )
            )
            self.birds = self._flock(rng, 4, 0.25, 0.45)
        elif kind == "forest":
            self.particles.append(
                _particles(
                    rng,
                    45,
                    cw,
                    ch,
                    vx=(5 * s, 25 * s),
                    vy=(12 * s, 30 * s),
                    radius=(1.5 * s, 3.0 * s),
                    color=_c("#c9a23a"),
                    sway=25 * s,
                )
            )
            self.particles.append(
                _particles(
                    rng,
                    40,
                    cw,
                    ch,
                    vx=(-4 * s, 4 * s),
                    vy=(-4 * s, 4 * s),
                    radius=(0.8 * s, 1.6 * s),
                    color=_c("#fff4c0"),
                    sway=10 * s,
                    flicker=0.5,
                    band=(0.5, 0.95),
                )
            )
            self.birds = self._flock(rng, 5, 0.12, 0.35)
        elif kind == "night":
            self.particles.append(
                _particles(
                    rng,
                    45,
                    cw,
                    ch,
                    vx=(-6 * s, 6 * s),
                    vy=(-5 * s, 5 * s),
                    radius=(1.2 * s, 2.2 * s),
                    color=_c("#d8ff7a"),
                    sway=15 * s,
                    flicker=0.9,
                    band=(0.78, 0.98),
                )
            )
        elif kind == "desert":
            self.particles.append(
                _particles(
                    rng,
                    70,
                    cw,
                    ch,
                    vx=(90 * s, 160 * s),
                    vy=(-6 * s, 6 * s),
                    radius=(0.8 * s, 1.5 * s),
                    color=_c("#e9cfa0"),
                    sway=6 * s,
                    band=(0.55, 1.0),
                )
            )
            self.birds = self._flock(rng, 2, 0.15, 0.3)
        elif kind == "abstract":
            self.particles.append(
                _particles(
                    rng,
                    28,
                    cw,
                    ch,
                    vx=(-20 * s, 20 * s),
                    vy=(-15 * s, 15 * s),
                    radius=(6 * s, 16 * s),
                    color=rng.uniform(150, 255, 3),
                    sway=30 * s,
                )
            )
        elif kind == "city":
            road, lane = self.layout.get("road", ch * 0.8), self.layout.get("lane", ch * 0.035)
            for direction, y, col in (
                (1, road + lane * 0.6, (200.0, 235.0, 255.0)),
                (-1, road + lane * 1.5, (40.0, 40.0, 230.0)),
            ):
                xs = np.sort(rng.uniform(0, cw, 14))
                self.cars.append((xs, direction * rng.uniform(90, 140) * s, y, col))
        if kind in ("sky", "sea"):
            self.birds = self._flock(rng, 6 if kind == "sky" else 3, 0.15, 0.4)
        if kind == "sky":
            for _ in range(3):
                sw, sh = int(rng.uniform(140, 240) * s), int(rng.uniform(45, 80) * s)
                alpha = np.zeros((sh, sw), np.float32)
                for _ in range(6):
                    imaging.fill_ellipse(
                        alpha,
                        rng.uniform(0.3, 0.7) * sw,
                        rng.uniform(0.45, 0.6) * sh,
                        rng.uniform(0.12, 0.3) * sw,
                        rng.uniform(0.15, 0.3) * sh,
                        (1.0,),
                    )
                alpha = imaging.blur(alpha, 8 * s) * 0.55
                self.clouds.append(
                    (rng.uniform(0, cw), rng.uniform(0.1, 0.6) * ch, rng.uniform(3, 7) * s, alpha)
                )
        if kind == "sea" and not self.image_world:
            n = 10
            self.waves = np.stack(
                [
                    rng.random(n),
                    rng.uniform(0, 2 * np.pi, n),
                    rng.uniform(2, 6, n),
                    rng.uniform(0, 2 * np.pi, n),
                ],
                axis=1,
            )
        if self.image_world:
            # Layout-bound elements (cars on a road, waves on a sea) make no sense over a photo.
            self.cars, self.waves = [], None

    def _flock(self, rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
        s = self.height / 720.0
        x0 = rng.uniform(0, self.cw)
        v = rng.choice([-1.0, 1.0]) * rng.uniform(40, 70) * s
        return np.stack(
            [
                x0 + rng.normal(0, 60 * s, n),
                rng.uniform(lo, hi, n) * self.ch,
                np.full(n, v) * rng.uniform(0.9, 1.1, n),
                rng.uniform(7, 12, n) * s,
                rng.uniform(0, 2 * np.pi, n),
                rng.uniform(5, 8, n),
            ],
            axis=1,
        )

    def draw_elements(self, frame: np.ndarray, t: float, view: _View) -> None:
        """Draw every moving element of world time ``t`` (seconds) onto ``frame``, in place."""
        w, h, z = self.width, self.height, view.zoom
        margin = 40.0
        for cx0, cy0, v, alpha in self.clouds:
            self._cloud(frame, view, (cx0 + v * t) % self.cw, cy0, alpha)
        if self.waves is not None:
            self._waves(frame, t, view)
        for xs, v, y, col in self.cars:
            sx, sy = view.to_screen((xs + v * t) % self.cw, np.full_like(xs, y))
            for x in sx[(sx > -margin) & (sx < w + margin)]:
                for off in (-4.0, 4.0):
                    imaging.draw_disc(frame, x + off * z * h / 720, float(sy[0]), 2.2 * z * h / 720, col)
        for bx, by in self.layout.get("beacons", ())[:6]:
            if (t * 0.8 + bx * 0.001) % 1.0 < 0.3:
                sx, sy = view.to_screen(np.array([bx]), np.array([by]))
                if -margin < sx[0] < w + margin and -margin < sy[0] < h + margin:
                    imaging.draw_disc(
                        frame, float(sx[0]), float(sy[0]), 2.5 * z * h / 720, (40.0, 40.0, 255.0)
                    )
        if self.kind == "night" and not self.image_world:
            self._twinkle(frame, t, view)
        for p in self.particles:
            x = (p.x + p.vx * t + p.sway * np.sin(0.7 * t + p.phase)) % self.cw
            y = (p.y + p.vy * t + 0.3 * p.sway * np.cos(0.9 * t + p.phase)) % self.ch
            sx, sy = view.to_screen(x, y)
            keep = np.nonzero((sx > -margin) & (sx < w + margin) & (sy > -margin) & (sy < h + margin))[0]
            level = 1.0 - p.flicker * 0.5 * (1 + np.sin(3.1 * t + 5 * p.phase))
            for i in keep:
                col = p.color[i] * level[i]
                imaging.draw_disc(
                    frame, sx[i], sy[i], p.radius[i] * z, (float(col[0]), float(col[1]), float(col[2]))
                )
        if self.birds is not None:
            self._birds(frame, t, view)

    def _cloud(self, frame: np.ndarray, view: _View, x: float, y: float, alpha: np.ndarray) -> None:
        if abs(view.zoom - 1.0) > 0.01:
            alpha = imaging.resize(
                alpha, max(2, round(alpha.shape[1] * view.zoom)), max(2, round(alpha.shape[0] * view.zoom))
            )
        sx, sy = view.to_screen(np.array([x]), np.array([y]))
        ah, aw = alpha.shape
        x0, y0 = round(float(sx[0]) - aw / 2), round(float(sy[0]) - ah / 2)
        fx0, fy0 = max(0, x0), max(0, y0)
        fx1, fy1 = min(self.width, x0 + aw), min(self.height, y0 + ah)
        if fx0 >= fx1 or fy0 >= fy1:
            return
        a = alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0, None]
        region = frame[fy0:fy1, fx0:fx1]
        region[:] = (region * (1.0 - a) + 250.0 * a).astype(np.uint8)

    def _waves(self, frame: np.ndarray, t: float, view: _View) -> None:
        assert self.waves is not None
        horizon = float(self.layout["horizon"])
        foam = self.layout["foam"]
        sea = self.layout["sea_color"]
        w, h, z = self.width, self.height, view.zoom
        xs = np.linspace(-20, w + 20, 64)
        canvas_x = view.cx + (xs + 0.5 - w / 2) / z
        for u0, phase, freq, phase2 in self.waves:
            # Crests swell and fade in place (a slow bob, each on its own 9 s cycle) instead of
            # rolling toward the shore: a field of lines all sliding down and apart reads to
            # optical flow as a camera zoom, not as water.
            u = 0.06 + 0.9 * u0
            cycle = (t / 9.0 + phase2 / (2 * np.pi)) % 1.0
            depth = u**1.8
            y = (
                horizon
                + (self.ch - horizon) * (0.02 + 0.98 * depth)
                + 3 * h / 720 * math.sin(0.7 * t + phase)
            )
            amp = (2 + 10 * depth) * h / 720
            shape = np.sin(2 * np.pi * freq * canvas_x / self.cw + phase + 0.08 * t)
            # Crests are broken: only where a second, slower wave is high.
            on = np.sin(2 * np.pi * (freq + 1) * canvas_x / self.cw + phase2 - 0.03 * t) > -0.1
            ys = (y + amp * shape - view.cy) * z + h / 2 - 0.5
            fade = math.sin(math.pi * cycle) ** 2 * 0.35  # soft crests encode cheaply
            col = tuple(float(v) for v in sea + (foam - sea) * fade)
            thick = max(1, round((1 + 3 * depth) * z * h / 720))
            for run in np.split(np.arange(len(xs)), np.nonzero(np.diff(on.astype(np.int8)))[0] + 1):
                if len(run) > 1 and on[run[0]]:
                    imaging.draw_polyline(frame, np.stack([xs[run], ys[run]], axis=1), col, thick)

    def _twinkle(self, frame: np.ndarray, t: float, view: _View) -> None:
        stars = self.layout["stars"][:: max(1, len(self.layout["stars"]) // 40)]
        sx, sy = view.to_screen(stars[:, 0], stars[:, 1])
        level = 0.5 + 0.5 * np.sin(2.3 * t + stars[:, 0] * 0.37)
        for x, y, lv in zip(sx, sy, level, strict=True):
            if 0 <= x < self.width and 0 <= y < self.height:
                c = 90 + 165 * lv
                imaging.draw_disc(frame, x, y, (0.8 + 0.8 * lv) * view.zoom, (c, c, c))
        slot = int(t // 7.0)
        rng = np.random.default_rng([slot & 0xFFFFFFFF, 77])
        local = t - slot * 7.0
        if rng.random() < 0.5 and local < 0.7:
            x0, y0 = rng.uniform(0, self.cw), rng.uniform(0.05, 0.4) * self.ch
            dx, dy = rng.choice([-1, 1]) * 500 * self.height / 720, 180 * self.height / 720
            head = local / 0.7
            pts_x = np.array([x0 + dx * max(0.0, head - 0.25), x0 + dx * head])
            pts_y = np.array([y0 + dy * max(0.0, head - 0.25), y0 + dy * head])
            sxs, sys_ = view.to_screen(pts_x, pts_y)
            imaging.draw_polyline(frame, np.stack([sxs, sys_], axis=1), (235.0, 240.0, 255.0), 2)

    def _birds(self, frame: np.ndarray, t: float, view: _View) -> None:
        assert self.birds is not None
        x = (self.birds[:, 0] + self.birds[:, 2] * t) % self.cw
        y = self.birds[:, 1] + 6 * self.height / 720 * np.sin(0.8 * t + self.birds[:, 4])
        sx, sy = view.to_screen(x, y)
        color = (30.0, 30.0, 35.0) if self.kind != "night" else (10.0, 10.0, 10.0)
        for i in range(len(sx)):
            if not (-30 < sx[i] < self.width + 30 and -30 < sy[i] < self.height + 30):
                continue
            span = self.birds[i, 3] * view.zoom
            flap = math.sin(t * self.birds[i, 5] + self.birds[i, 4])
            tip = -span * 0.45 * flap
            pts = np.array(
                [
                    [sx[i] - span, sy[i] + tip],
                    [sx[i] - span * 0.3, sy[i] - span * 0.1],
                    [sx[i], sy[i] + span * 0.12],
                    [sx[i] + span * 0.3, sy[i] - span * 0.1],
                    [sx[i] + span, sy[i] + tip],
                ]
            )
            imaging.draw_polyline(frame, pts, color, max(1, round(span / 5)))


# ---------------------------------------------------------------------------------------------
# Rendering: camera over canvas, elements, drift.
# ---------------------------------------------------------------------------------------------

_LUMA_BGR = np.array([0.114, 0.587, 0.299])
_L_STAR_TO_LEVELS = 2.4  # about 2.4 8-bit levels per L* unit at mid-tones


def _color_matrix(brightness: float, saturation: float, hue_deg: float) -> np.ndarray:
    """A 3x4 BGR matrix: saturation about luma, hue rotation about grey, brightness offset."""
    sat = (1.0 + max(-0.9, saturation)) * np.eye(3) + (-max(-0.9, saturation)) * np.outer(
        np.ones(3), _LUMA_BGR
    )
    a = math.radians(hue_deg)
    u = np.ones(3) / math.sqrt(3.0)
    cross = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    rot = math.cos(a) * np.eye(3) + (1 - math.cos(a)) * np.outer(u, u) + math.sin(a) * cross
    return np.hstack([rot @ sat, np.full((3, 1), brightness * _L_STAR_TO_LEVELS)])


def _palette_lut(kind: str) -> np.ndarray:
    """A 256 x 3 BGR table from dark through middle to light of the prompt's palette."""
    dark, mid, light = (_c(h) for h in _PALETTES.get(kind, _PALETTES["abstract"]))
    level = np.linspace(0.0, 1.0, 256, dtype=np.float32)[:, None]
    low = dark + (mid - dark) * np.clip(level * 2, 0, 1)
    high = mid + (light - mid) * np.clip(level * 2 - 1, 0, 1)
    return np.where(level < 0.5, low, high).astype(np.uint8)


def _gradient_map(frame: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``frame`` recoloured in a palette by its luma: the layout kept, the colours the prompt's."""
    wide = frame.astype(np.uint16)
    luma = (wide[..., 0] * 29 + wide[..., 1] * 150 + wide[..., 2] * 77) >> 8
    return lut[luma]


class Renderer:
    """Renders the frames and audio of the clip a state describes."""

    def __init__(self, state: dict[str, Any], image: np.ndarray | None = None) -> None:
        self.clip = ClipState(state)
        self.world = World(self.clip, image)
        self.width, self.height = self.clip.width, self.clip.height
        self.fps = self.clip.fps
        born = int(state.get("born", 0))
        self._born = born
        self._fade_frames = max(1, round(1.5 * float(self.fps)))
        # Where a departure shifts the framing: one direction per world.
        angle = np.random.default_rng([int(state["world_seed"]) & 0xFFFFFFFF, 0x5E1D]).uniform(0, 2 * np.pi)
        self._shift = (
            math.cos(angle) * _DEPART_SHIFT * self.width,
            math.sin(angle) * _DEPART_SHIFT * self.height,
        )
        self._palette = _palette_lut(self.clip.kind)

    @property
    def frames_total(self) -> int:
        return self.clip.frames

    def frame(self, index: int) -> np.ndarray:
        """Clip frame ``index`` (BGR uint8, height x width x 3)."""
        clip, world = self.clip, self.world
        w, h = self.width, self.height
        drift = clip.drift(index)
        departure = clip.departure(index)
        x, y, logz = clip.pose(index)
        x += drift[3] * w + departure * self._shift[0]
        y += drift[4] * h + departure * self._shift[1]
        zoom = math.exp(logz)
        # Keep the view inside the canvas vertically (and horizontally where it does not wrap).
        half_h, half_w = h / (2 * zoom), w / (2 * zoom)
        y = min(max(y, half_h), world.ch - half_h)
        if not world.wrap:
            x = min(max(x, half_w), world.cw - half_w)
        else:
            x %= world.cw
        if abs(logz) < 1e-9:
            out = self._translate(x - w / 2, y - h / 2)
        else:
            matrix = np.array(
                [
                    [1 / zoom, 0.0, x + (0.5 - w / 2) / zoom - 0.5],
                    [0.0, 1 / zoom, y + (0.5 - h / 2) / zoom - 0.5],
                ],
                dtype=np.float64,
            )
            out = imaging.warp_similarity(world.canvas, matrix, w, h, wrap=world.wrap)
        world_frame = clip.origin + index
        fade = min(1.0, (world_frame - self._born) / self._fade_frames) if clip.image_world else 1.0
        if fade > 0:
            view = _View(x, y, zoom, w, h, world.cw, world.wrap)
            t = clip.clock(index)
            if fade >= 1.0:
                world.draw_elements(out, t, view)
            else:
                layer = out.copy()
                world.draw_elements(layer, t, view)
                out = imaging.blend(out, layer, fade)
        if departure > 0:
            out = imaging.blend(out, _gradient_map(out, self._palette), departure)
        if drift[0] or drift[1] or drift[2]:
            out = imaging.color_transform(out, _color_matrix(drift[0], drift[1], drift[2]))
        return out

    def _translate(self, x0: float, y0: float) -> np.ndarray:
        """The window at top-left (x0, y0) of the canvas, bilinear at sub-pixel offsets.

        Two 8-bit blends of shifted slices cost about a fifth of a general warp.
        """
        src = self.world.extended
        w, h = self.width, self.height
        max_x = src.shape[1] - w - 1
        max_y = src.shape[0] - h - 1
        if self.world.wrap:
            # A wrapping canvas: a window left of column 0 is the same window one canvas further
            # right (clamping it would stop a leftward pan dead and then jump).
            x0 %= self.world.cw
        x0 = min(max(x0, 0.0), float(max_x))
        y0 = min(max(y0, 0.0), float(max_y))
        ix, iy = math.floor(x0), math.floor(y0)
        fx, fy = x0 - ix, y0 - iy
        rows = src[iy : iy + h + 1]
        if fx > 1e-4:
            rows = imaging.blend(rows[:, ix : ix + w], rows[:, ix + 1 : ix + w + 1], fx)
        else:
            rows = rows[:, ix : ix + w]
        if fy > 1e-4:
            return imaging.blend(rows[:h], rows[1 : h + 1], fy)
        return np.ascontiguousarray(rows[:h])

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Clip frames ``start`` to ``stop`` (default: the end)."""
        for index in range(start, self.clip.frames if stop is None else stop):
            yield self.frame(index)

    def audio(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Stereo float32 audio (samples x 2) for clip frames ``start`` to ``stop``.

        Sample positions are world positions, so any span renders identically to the same
        span of a longer rendering (that is what keeps an extended clip's track continuous).
        """
        stop = self.clip.frames if stop is None else stop
        origin = self.clip.origin
        first = audio_samples(origin + start, self.fps)
        count = audio_samples(stop - start, self.fps)
        seed = int(self.clip.state["world_seed"]) & 0xFFFFFFFF
        return ambient_audio(self.clip.kind, seed, first, count)


# ---------------------------------------------------------------------------------------------
# Ambient audio: overlapping blocks of spectrally shaped noise, each seeded by its position.
# ---------------------------------------------------------------------------------------------

_BLOCK = 1 << 15
_HOP = _BLOCK // 2
_WINDOW = np.sin(np.pi * (np.arange(_BLOCK) + 0.5) / _BLOCK)  # sin^2 windows at 50 % overlap sum to 1


def _shape(kind: str) -> np.ndarray:
    """Amplitude per FFT bin: the noise colour of each kind."""
    f = np.fft.rfftfreq(_BLOCK, 1.0 / AUDIO_RATE)
    f = np.maximum(f, 1.0)
    if kind == "sea":
        shape = 1.0 / (1.0 + (f / 420.0) ** 2) + 0.08 / (1.0 + (f / 4000.0) ** 2)
    elif kind in ("sky", "snow", "desert"):
        shape = np.exp(-0.5 * (np.log(f / 380.0) / 0.7) ** 2)
    elif kind == "city":
        shape = 1.0 / (1.0 + (f / 160.0) ** 2) + 0.05 / (1.0 + (f / 2500.0) ** 2)
    elif kind == "forest":
        shape = 0.5 * np.exp(-0.5 * (np.log(f / 2500.0) / 0.8) ** 2) + 0.3 / (1.0 + (f / 300.0) ** 2)
    elif kind == "fire":
        shape = 1.0 / (1.0 + (f / 250.0) ** 2)
    elif kind == "night":
        shape = 0.4 * np.exp(-0.5 * (np.log(f / 300.0) / 0.6) ** 2)
    else:
        shape = np.exp(-0.5 * (np.log(f / 200.0) / 0.5) ** 2)
    shape[0] = 0.0
    return shape / math.sqrt(float(np.mean(shape**2)) * 2)


def _block(kind: str, seed: int, index: int, shape: np.ndarray) -> np.ndarray:
    """One windowed block (2 x _BLOCK) of ambience, starting at world sample index * _HOP."""
    rng = np.random.default_rng([seed, index & 0xFFFFFFFF, KINDS.index(kind), 0xA0D1])
    white = rng.standard_normal((2, _BLOCK))
    # Mostly common content with some width: a mid signal plus a smaller side signal.
    mid, side = white[0], white[1]
    spec = np.fft.rfft(np.stack([mid + 0.45 * side, mid - 0.45 * side]), axis=1) * shape
    noise = np.fft.irfft(spec, n=_BLOCK, axis=1) * 0.9
    t = (index * _HOP + np.arange(_BLOCK)) / AUDIO_RATE
    if kind == "sea":
        # Surf: swells every 6-9 s, phase tied to world time so blocks agree.
        env = 0.3 + 0.7 * (0.5 + 0.5 * np.sin(2 * np.pi * t / 7.3 + seed % 97)) ** 2
        noise *= env
    elif kind in ("sky", "snow", "desert"):
        env = 0.55 + 0.3 * np.sin(2 * np.pi * t / 5.1 + seed % 89) + 0.15 * np.sin(2 * np.pi * t / 1.7)
        noise *= env
    elif kind == "city":
        hum = 0.08 * np.sin(2 * np.pi * 60 * t) + 0.04 * np.sin(2 * np.pi * 120 * t)
        noise += hum
    elif kind == "forest":
        for _ in range(int(rng.integers(0, 4))):
            start = int(rng.integers(0, _BLOCK - 8000))
            length = int(rng.integers(2500, 6000))
            tt = np.arange(length) / AUDIO_RATE
            f0, f1 = rng.uniform(2500, 4200), rng.uniform(3000, 5500)
            chirp = (
                np.sin(2 * np.pi * (f0 * tt + (f1 - f0) * tt**2 * AUDIO_RATE / (2 * length)))
                * np.sin(np.pi * np.arange(length) / length) ** 2
            )
            pan = rng.uniform(0.3, 0.7)
            noise[0, start : start + length] += 0.5 * (1 - pan) * chirp
            noise[1, start : start + length] += 0.5 * pan * chirp
    elif kind == "fire":
        clicks = np.zeros(_BLOCK)
        where = rng.integers(0, _BLOCK - 64, int(rng.integers(15, 40)))
        clicks[where] = rng.uniform(-1.5, 1.5, len(where))
        clicks = np.convolve(clicks, np.exp(-np.arange(48) / 6.0), mode="same")
        noise += clicks[None, :]
    elif kind == "night":
        # Crickets: a 4.4 kHz tone pulsed in trains.
        pulse = (np.sin(2 * np.pi * 14 * t) > 0.3) * (np.sin(2 * np.pi * 0.5 * t + seed % 7) > -0.2)
        noise += 0.12 * (np.sin(2 * np.pi * 4400 * t) * pulse)[None, :]
    else:
        noise += (
            0.15
            * (np.sin(2 * np.pi * 110 * t) + 0.6 * np.sin(2 * np.pi * 164.8 * t))
            * (0.6 + 0.4 * np.sin(2 * np.pi * t / 6))
        )
    return noise * _WINDOW


def ambient_audio(kind: str, seed: int, first: int, count: int) -> np.ndarray:
    """``count`` stereo samples of a kind's ambience from world sample ``first`` (float32, peak < 0.5)."""
    out = np.zeros((2, count + _BLOCK), dtype=np.float64)
    if count <= 0:
        return np.zeros((0, 2), dtype=np.float32)
    shape = _shape(kind)
    b0 = first // _HOP - 1
    b1 = (first + count) // _HOP + 1
    for b in range(max(b0, -1), b1 + 1):
        start = b * _HOP - first  # where the block begins in `out` (may be negative)
        block = _block(kind, seed, b, shape)
        lo, hi = max(0, start), min(count, start + _BLOCK)
        if lo < hi:
            out[:, lo:hi] += block[:, lo - start : hi - start]
    # A soft limiter keeps the level gentle and the peak below 0.5 whatever the noise does.
    level = 0.12
    mixed = 0.45 * np.tanh(out[:, :count] * level / 0.45)
    return np.ascontiguousarray(mixed.T.astype(np.float32))
