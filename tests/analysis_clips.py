"""Synthetic clips with defects of known size and place, for the analysis tests and benchmark.

Content imitates generated footage closely enough to make false alarms meaningful: a textured
canvas (smooth random colour fields, shapes, a fine-detail layer) seen by a virtual camera
(pan, zoom, sub-pixel positions), per-frame gain flicker and pixel noise, then x264. A seam
pair regenerates the fine detail and offsets the gain a little at the join, as an extension
that is continuous but re-synthesised would. Defects are injected at a known frame with a known
size. What does not live here: any assertion (``test_analysis.py``) or statistics (benchmark).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from composer.ffmpeg import FrameWriter

KINDS = (
    "clean",
    "cut",
    "jump",  # size: px at the clip's width
    "brightness_step",  # size: relative gain, 0.1 = +10%
    "brightness_ramp",  # over the whole clip
    "saturation_ramp",  # over the whole clip, 0.2 = +20% saturation
    "zoom_jump",  # size: relative, 0.03 = 3%
    "crossfade",  # 1 s to a new scene starting at at_s
    "camera_drift",  # size: share of width the camera wanders over the clip (static shots)
)


def canvas(rng: np.random.Generator, width: int, height: int, detail_seed: int | None = None) -> np.ndarray:
    """A float32 BGR canvas: multi-scale smooth colour fields + shapes + fine detail."""
    base = np.zeros((height, width, 3), np.float32)
    palette = rng.uniform(60, 200, size=3)
    for scale, amp in ((48, 45.0), (16, 25.0), (6, 12.0)):
        small = rng.normal(0, 1, size=(max(2, height // scale), max(2, width // scale), 3)).astype(np.float32)
        base += amp * cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    base += palette
    for _ in range(int(width * height / 6000)):
        colour = tuple(float(c) for c in rng.uniform(20, 235, size=3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.5:
            cv2.circle(base, centre, int(rng.integers(4, 30)), colour, -1, lineType=cv2.LINE_AA)
        else:
            size = rng.integers(6, 40, size=2)
            cv2.rectangle(base, centre, (centre[0] + int(size[0]), centre[1] + int(size[1])), colour, -1)
    return add_detail(
        base, np.random.default_rng(detail_seed if detail_seed is not None else rng.integers(1 << 31))
    )


def add_detail(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    detail = cv2.GaussianBlur(rng.normal(0, 7, size=base.shape[:2]).astype(np.float32), (0, 0), 0.8)
    return base + detail[:, :, None]


def render(scene: np.ndarray, cx: float, cy: float, zoom: float, width: int, height: int) -> np.ndarray:
    """The frame a camera centred on canvas point (cx, cy) with magnification ``zoom`` sees."""
    m = np.array([[zoom, 0, width / 2 - zoom * cx], [0, zoom, height / 2 - zoom * cy]], np.float64)
    return cv2.warpAffine(scene, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def saturate(frame: np.ndarray, factor: float) -> np.ndarray:
    grey = frame.mean(axis=2, keepdims=True)
    return grey + factor * (frame - grey)


@dataclass
class ClipSpec:
    kind: str = "clean"
    size: float = 0.0
    at_s: float = 1.5
    seconds: float = 3.0
    width: int = 320
    height: int = 180
    fps: int = 24
    pan: tuple[float, float] = (0.0, 0.0)  # px per second at the clip's width
    zoom_per_s: float = 0.0  # relative, 0.02 = 2% per second
    seed: int = 0
    noise: float = 1.5
    flicker: float = 0.004
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def at_frame(self) -> int:
        return round(self.at_s * self.fps)


def frames_for(spec: ClipSpec, start_frame: int = 0, detail_seed: int | None = None, gain: float = 1.0):
    """Yield the clip's uint8 BGR frames (a generator: nothing but the canvases is held)."""
    rng = np.random.default_rng(spec.seed)
    cw, ch = spec.width * 3, spec.height * 3
    scene = canvas(rng, cw, ch, detail_seed)
    other = canvas(np.random.default_rng(spec.seed + 10_000), cw, ch)
    noise_rng = np.random.default_rng(spec.seed + 20_000 + start_frame)
    total = round(spec.seconds * spec.fps)
    k = spec.at_frame
    for i in range(start_frame, start_frame + total):
        t = i / spec.fps
        cx = cw / 2 + spec.pan[0] * t
        cy = ch / 2 + spec.pan[1] * t
        zoom = 1.0 + spec.zoom_per_s * t
        progress = (i - start_frame) / max(1, total - 1)
        if spec.kind == "camera_drift":
            cx += spec.size * spec.width * progress
            cy += 0.3 * spec.size * spec.width * progress
        if spec.kind == "jump" and i >= k:
            cx += spec.size
            cy += spec.size * 0.5
        if spec.kind == "zoom_jump" and i >= k:
            zoom *= 1.0 + spec.size
        src = other if spec.kind == "cut" and i >= k else scene
        frame = render(src, cx, cy, zoom, spec.width, spec.height)
        if spec.kind == "crossfade" and i >= k:
            alpha = min(1.0, (i - k + 1) / spec.fps)
            frame = (1 - alpha) * frame + alpha * render(other, cx, cy, zoom, spec.width, spec.height)
        g = gain * (1.0 + noise_rng.normal(0, spec.flicker))
        if spec.kind == "brightness_step" and i >= k:
            g *= 1.0 + spec.size
        if spec.kind == "brightness_ramp":
            g *= 1.0 + spec.size * progress
        if spec.kind == "saturation_ramp":
            frame = saturate(frame, 1.0 + spec.size * progress)
        frame = frame * g + noise_rng.normal(0, spec.noise, size=frame.shape).astype(np.float32)
        yield np.clip(frame, 0, 255).astype(np.uint8)


def write_clip(dest: Path, spec: ClipSpec) -> Path:
    """Encode the clip described by ``spec`` to ``dest`` (H.264 through composer's FrameWriter)."""
    with FrameWriter(dest, spec.width, spec.height, Fraction(spec.fps)) as writer:
        for frame in frames_for(spec):
            writer.write(frame)
    return dest


def write_seam_pair(
    folder: Path, kind: str, size: float, seed: int, **spec_args: object
) -> tuple[Path, Path]:
    """Clip A, then clip B starting where A ended with regenerated detail and a ±0.5% gain.

    ``kind`` at the join: clean, jump (px), brightness_step (relative), saturation_step
    (relative), zoom_jump (relative), cut.
    """
    base = ClipSpec(seed=seed, **spec_args)  # type: ignore[arg-type]
    n = round(base.seconds * base.fps)
    a = folder / f"seam_{kind}_{size}_{seed}_a.mp4"
    b = folder / f"seam_{kind}_{size}_{seed}_b.mp4"
    write_clip(a, base)
    offset_gain = 1.0 + float(np.random.default_rng(seed + 5).uniform(-0.005, 0.005))
    spec_b = ClipSpec(**{**base.__dict__, "extra": {}})
    frames = frames_for(spec_b, start_frame=n, detail_seed=seed + 99, gain=offset_gain)
    with FrameWriter(b, base.width, base.height, Fraction(base.fps)) as writer:
        for index, frame in enumerate(frames):
            out = frame.astype(np.float32)
            if kind == "jump":
                out = cv2.warpAffine(
                    out,
                    np.float64([[1, 0, -size], [0, 1, -size / 2]]),
                    (base.width, base.height),
                    borderMode=cv2.BORDER_REFLECT,
                )
            elif kind == "brightness_step":
                out = out * (1 + size)
            elif kind == "saturation_step":
                out = saturate(out, 1 + size)
            elif kind == "zoom_jump":
                m = cv2.getRotationMatrix2D((base.width / 2, base.height / 2), 0, 1 + size)
                out = cv2.warpAffine(out, m, (base.width, base.height), borderMode=cv2.BORDER_REFLECT)
            elif kind == "cut":
                other = ClipSpec(**{**base.__dict__, "seed": seed + 777})
                if index == 0:
                    other_frames = frames_for(other, start_frame=n)
                out = next(other_frames).astype(np.float32)
            writer.write(np.clip(out, 0, 255).astype(np.uint8))
    return a, b
