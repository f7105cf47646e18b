"""The local generator's renderer: the frames and sound of the clip a state describes.

What lives here: :class:`Renderer`, which for each clip frame places the camera over the
world's canvas (pose, drift of position, the framing shift of a departure), draws the moving
elements (faded in over an image world's first second and a half), maps the colours towards
the prompt's palette as far as the frame has departed, and applies the colour drift; and
which hands out the clip's ambient audio.

What does not: the state (``state.py``), the world and its elements (``world.py``), the
sound itself (``audio.py``), or encoding (the backend, ``__init__.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from composer import imaging
from composer.backends.local.audio import ambient_audio
from composer.backends.local.paint import hex_bgr
from composer.backends.local.scenes import scene
from composer.backends.local.state import DEPART_SHIFT, ClipState
from composer.backends.local.world import View, World
from composer.timecode import audio_samples

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
    dark, mid, light = (hex_bgr(h) for h in scene(kind).palette)
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
            math.cos(angle) * DEPART_SHIFT * self.width,
            math.sin(angle) * DEPART_SHIFT * self.height,
        )
        self._palette = _palette_lut(self.clip.kind)

    @property
    def frames_total(self) -> int:
        return self.clip.frames

    def frame(self, index: int) -> np.ndarray:
        """Clip frame ``index`` (BGR uint8, height x width x 3)."""
        drift = self.clip.drift(index)
        departure = self.clip.departure(index)
        view, logz = self._view(index, drift, departure)
        out = self._window(view, logz)
        out = self._with_elements(out, index, view)
        return self._graded(out, drift, departure)

    def _view(self, index: int, drift: np.ndarray, departure: float) -> tuple[View, float]:
        """Where the camera looks in clip frame ``index`` (its pose moved by drift and departure),
        and its log zoom."""
        w, h, world = self.width, self.height, self.world
        x, y, logz = self.clip.pose(index)
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
        return View(x, y, zoom, w, h, world.cw, world.wrap), logz

    def _window(self, view: View, logz: float) -> np.ndarray:
        """The part of the canvas the camera sees: a plain window unless it zooms."""
        w, h = self.width, self.height
        x, y, zoom = view.cx, view.cy, view.zoom
        if abs(logz) < 1e-9:
            return self._translate(x - w / 2, y - h / 2)
        matrix = np.array(
            [
                [1 / zoom, 0.0, x + (0.5 - w / 2) / zoom - 0.5],
                [0.0, 1 / zoom, y + (0.5 - h / 2) / zoom - 0.5],
            ],
            dtype=np.float64,
        )
        return imaging.warp_similarity(self.world.canvas, matrix, w, h, wrap=self.world.wrap)

    def _with_elements(self, out: np.ndarray, index: int, view: View) -> np.ndarray:
        """``out`` with the moving elements of clip frame ``index`` drawn on it (faded in over
        an image world's first second and a half)."""
        clip, world = self.clip, self.world
        world_frame = clip.origin + index
        fade = min(1.0, (world_frame - self._born) / self._fade_frames) if clip.image_world else 1.0
        if fade <= 0:
            return out
        t = clip.clock(index)
        if fade >= 1.0:
            world.draw_elements(out, t, view)
            return out
        layer = out.copy()
        world.draw_elements(layer, t, view)
        return imaging.blend(out, layer, fade)

    def _graded(self, out: np.ndarray, drift: np.ndarray, departure: float) -> np.ndarray:
        """``out`` mapped towards the prompt's palette as far as it has departed, then colour-drifted."""
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
