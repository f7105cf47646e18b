"""The local generator's world: a painted canvas and the moving elements that live on it.

What lives here: :class:`World`, which holds a world's canvas (painted for a procedural world,
the storyboard image padded by reflection for an image world) and sets up and draws its
moving elements (drifting particles, a flock of birds, traffic, clouds, waves, twinkling
stars and meteors) at any world time; :func:`painted_world`, the cache of painted canvases;
:class:`View`, where the canvas sits on screen in one frame.

What does not: which elements a kind has (the tables in ``scenes.py``, read here by one
generic set-up), painting (``paint.py``), or the camera, drift and departure (``render.py``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from composer import imaging
from composer.backends.local import paint, scenes
from composer.backends.local.paint import BGR, hex_bgr
from composer.backends.local.scenes import KINDS, scene
from composer.backends.local.state import ClipState, image_margin


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


def _particles(rng: np.random.Generator, spec: scenes.Particles, cw: int, ch: int, s: float) -> _Particles:
    """A particle cloud as ``spec`` describes it, its sizes and speeds scaled by ``s`` (1 at 720p)."""
    # A random colour is drawn before the particles themselves.
    color = hex_bgr(spec.color) if spec.color is not None else rng.uniform(150, 255, 3)
    n, band = spec.count, spec.band
    return _Particles(
        x=rng.uniform(0, cw, n),
        y=rng.uniform(band[0] * ch, band[1] * ch, n),
        vx=rng.uniform(spec.vx[0] * s, spec.vx[1] * s, n),
        vy=rng.uniform(spec.vy[0] * s, spec.vy[1] * s, n),
        sway=rng.uniform(0.3, 1.0, n) * (spec.sway * s),
        phase=rng.uniform(0, 2 * np.pi, n),
        radius=rng.uniform(spec.radius[0] * s, spec.radius[1] * s, n),
        color=np.clip(color[None, :] + rng.normal(0, 12, (n, 3)), 0, 255),
        flicker=spec.flicker,
    )


@dataclass
class View:
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


def world_seed_key(seed: int, kind: str, width: int, height: int) -> list[int]:
    return [seed, KINDS.index(kind), width, height]


@functools.lru_cache(maxsize=4)
def painted_world(
    kind: str, seed: int, cw: int, ch: int, width: int, height: int
) -> tuple[np.ndarray, dict[str, Any], dict[str, Any]]:
    """The painted canvas of a world, its layout, and the generator state after painting.

    Painting costs about a second at 720p, and every take of a chain (and every segment of a
    scene) paints the same world: the last few are kept, read-only, for the whole process.
    """
    rng = np.random.default_rng(world_seed_key(seed, kind, width, height))
    canvas, layout = paint.paint(scene(kind).painter, rng, cw, ch, height)
    texture = np.random.default_rng([seed, KINDS.index(kind), 0x7E47])
    canvas = paint.mottle(canvas, texture, scene(kind).mottle, height)
    # A slight softening (like a real lens) halves the bits x264 spends on crisp edges
    # that move by sub-pixel steps, which is most of its encoding time.
    canvas = paint.blur_wrap(canvas, 0.8 * height / 720.0)
    canvas.flags.writeable = False
    return canvas, layout, rng.bit_generator.state


class World:
    """A painted canvas plus its moving elements; draws the elements of any world time."""

    def __init__(self, clip: ClipState, image: np.ndarray | None) -> None:
        self.kind = clip.kind
        self.scene = scene(self.kind)
        self.width, self.height = clip.width, clip.height
        self.fps = float(clip.fps)
        self.cw, self.ch = clip.canvas_w, clip.canvas_h
        self.image_world = clip.image_world
        seed = int(clip.state["world_seed"]) & 0xFFFFFFFF
        rng = np.random.default_rng(world_seed_key(seed, self.kind, self.width, self.height))
        if self.image_world:
            if image is None:
                raise ValueError("this clip's world is an image; pass its pixels")
            mx, my = image_margin(self.width, self.height)
            self.canvas = imaging.pad_reflect(imaging.cover(image, self.width, self.height), mx, my)
            layout: dict[str, Any] = {}
        else:
            self.canvas, painted_layout, rng_state = painted_world(
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
        """Set up the kind's moving elements (``scenes.py``), each drawing from ``rng`` in turn."""
        kind = self.scene
        s = self.height / 720.0
        self.particles: list[_Particles] = [_particles(rng, p, self.cw, self.ch, s) for p in kind.particles]
        self.birds: np.ndarray | None = self._flock(rng, kind.flock) if kind.flock is not None else None
        self.cars: list[tuple[np.ndarray, float, float, BGR]] = self._traffic(rng, kind.traffic)
        self.clouds: list[tuple[float, float, float, np.ndarray]] = [
            self._cloud_sprite(rng) for _ in range(kind.clouds)
        ]
        self.waves: np.ndarray | None = None
        if kind.waves and not self.image_world:
            self.waves = self._wave_field(rng, kind.waves)
        if self.image_world:
            # Layout-bound elements (cars on a road, waves on a sea) make no sense over a photo.
            self.cars, self.waves = [], None

    def _flock(self, rng: np.random.Generator, flock: scenes.Flock) -> np.ndarray:
        """Birds as rows of (x, y, speed, span, phase, wing beat), flying one way together."""
        n, lo, hi = flock.count, flock.lo, flock.hi
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

    def _traffic(
        self, rng: np.random.Generator, lanes: tuple[scenes.Lane, ...]
    ) -> list[tuple[np.ndarray, float, float, BGR]]:
        """Cars per lane: their canvas x positions, speed, the lane's y and the lights' colour."""
        s = self.height / 720.0
        road, lane = self.layout.get("road", self.ch * 0.8), self.layout.get("lane", self.ch * 0.035)
        cars = []
        for spec in lanes:
            xs = np.sort(rng.uniform(0, self.cw, 14))
            cars.append(
                (xs, spec.direction * rng.uniform(90, 140) * s, road + lane * spec.offset, spec.lights)
            )
        return cars

    def _cloud_sprite(self, rng: np.random.Generator) -> tuple[float, float, float, np.ndarray]:
        """A soft cloud (an alpha sprite of a few ellipses) with its canvas x, y and speed."""
        s = self.height / 720.0
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
        return rng.uniform(0, self.cw), rng.uniform(0.1, 0.6) * self.ch, rng.uniform(3, 7) * s, alpha

    def _wave_field(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Wave crests as rows of (depth, phase, frequency, cycle phase)."""
        return np.stack(
            [
                rng.random(n),
                rng.uniform(0, 2 * np.pi, n),
                rng.uniform(2, 6, n),
                rng.uniform(0, 2 * np.pi, n),
            ],
            axis=1,
        )

    def draw_elements(self, frame: np.ndarray, t: float, view: View) -> None:
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
        if self.scene.twinkle and not self.image_world:
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

    def _cloud(self, frame: np.ndarray, view: View, x: float, y: float, alpha: np.ndarray) -> None:
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

    def _waves(self, frame: np.ndarray, t: float, view: View) -> None:
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

    def _twinkle(self, frame: np.ndarray, t: float, view: View) -> None:
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

    def _birds(self, frame: np.ndarray, t: float, view: View) -> None:
        assert self.birds is not None
        x = (self.birds[:, 0] + self.birds[:, 2] * t) % self.cw
        y = self.birds[:, 1] + 6 * self.height / 720 * np.sin(0.8 * t + self.birds[:, 4])
        sx, sy = view.to_screen(x, y)
        color = self.scene.bird_color
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
