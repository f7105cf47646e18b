"""The local generator's painting: drawing primitives, one painter per scene kind, surface texture.

What lives here: the background canvas of a procedural world (wider than the frame and
periodic horizontally, so pans never end) painted by the painter a scene kind names
(``scenes.SceneKind.painter``, :data:`PAINTERS`), the layout facts the painter leaves for the
moving elements (a horizon, a road, where the stars are), and the blotchy surface texture
(:func:`mottle`) that gives optical flow something to hold on to.

What does not: which kind uses which painter and how textured it is (``scenes.py``), the
moving elements (``world.py``), or the camera (``render.py``). Painting is a pure function of
its random generator; pixel operations go through ``composer.imaging``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from composer import imaging

BGR = tuple[float, float, float]


def hex_bgr(hex_rgb: str) -> np.ndarray:
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


def blur_wrap(img: np.ndarray, sigma: float) -> np.ndarray:
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


# ---------------------------------------------------------------------------------------------
# Painters: one per scene kind (named by ``scenes.SceneKind.painter``). Each paints the
# background canvas (float BGR, ``ch`` x ``cw``) with sizes scaled by ``s`` (1 at 720p) and
# returns it with the layout facts its elements need (a horizon, a road, painted stars).
# ---------------------------------------------------------------------------------------------

Painter = Callable[[np.random.Generator, int, int, float], tuple[np.ndarray, dict[str, Any]]]


def _paint_sky(rng: np.random.Generator, cw: int, ch: int, s: float) -> tuple[np.ndarray, dict[str, Any]]:
    img = _vgrad(
        ch,
        cw,
        [
            (0.0, _tint(rng, hex_bgr("#1f5fae"))),
            (0.6, _tint(rng, hex_bgr("#6fa8dc"))),
            (1.0, _tint(rng, hex_bgr("#e6eef5"))),
        ],
    )
    _wrapped_glow(img, rng.uniform(0, cw), ch * 0.2, 260 * s, hex_bgr("#fff6d8"), 0.6)
    clouds = np.zeros((ch, cw, 3), np.float32)
    cover_a = np.zeros((ch, cw), np.float32)
    for _ in range(28):
        x, y = rng.uniform(0, cw), rng.uniform(0.15, 0.85) * ch
        rx, ry = rng.uniform(60, 200) * s, rng.uniform(18, 50) * s
        _wrapped(
            cover_a, x, lambda xx, y=y, rx=rx, ry=ry: imaging.fill_ellipse(cover_a, xx, y, rx, ry, (1.0,))
        )
    cover_a = blur_wrap(cover_a, 14 * s) * 0.75
    clouds[:] = hex_bgr("#ffffff")
    img = img * (1 - cover_a[..., None]) + clouds * cover_a[..., None]
    _fill_below(img, _ridge(rng, cw, ch * 0.95, 12 * s), hex_bgr("#5f7f8f"))
    return img, {"horizon": ch * 0.95}


def _paint_sea(rng: np.random.Generator, cw: int, ch: int, s: float) -> tuple[np.ndarray, dict[str, Any]]:
    horizon = ch * 0.46
    img = _vgrad(ch, cw, [(0.0, _tint(rng, hex_bgr("#2b5d9b"))), (0.46, _tint(rng, hex_bgr("#f3d9b1")))])
    water = _vgrad(
        ch,
        cw,
        [
            (0.0, hex_bgr("#4a7fa5")),
            (0.46, _tint(rng, hex_bgr("#4f86ad"))),
            (1.0, _tint(rng, hex_bgr("#0f3454"))),
        ],
    )
    img[int(horizon) :] = water[int(horizon) :]
    sun_x = rng.uniform(0.2, 0.8) * cw
    _glow(img, sun_x, horizon - 60 * s, 300 * s, hex_bgr("#fff0c8"), 0.7)
    imaging.fill_ellipse(
        img, sun_x, horizon - 60 * s, 34 * s, 34 * s, tuple(float(v) for v in hex_bgr("#fff8e6"))
    )
    # The sun's reflection: a soft bright column on the water.
    col = np.zeros((ch, cw), np.float32)
    col[int(horizon) :, max(0, int(sun_x - 50 * s)) : int(sun_x + 50 * s)] = 0.35
    col = imaging.blur(col, 22 * s)
    img = img + col[..., None] * (hex_bgr("#fff0c8") - img) * (np.arange(ch)[:, None, None] >= horizon)
    return img, {"horizon": horizon, "sea_color": hex_bgr("#4f86ad"), "foam": hex_bgr("#e8f1f6")}


def _paint_city(rng: np.random.Generator, cw: int, ch: int, s: float) -> tuple[np.ndarray, dict[str, Any]]:
    img = _vgrad(
        ch,
        cw,
        [
            (0.0, _tint(rng, hex_bgr("#0b1030"))),
            (0.55, _tint(rng, hex_bgr("#3b2a5a"))),
            (0.8, _tint(rng, hex_bgr("#d9785a"))),
        ],
    )
    road = ch * 0.8
    beacons: list[tuple[float, float]] = []
    for layer, (col, lo, hi, lit) in enumerate(
        [
            (hex_bgr("#38406a"), 0.35, 0.62, 0.0),
            (hex_bgr("#1e2240"), 0.3, 0.7, 0.25),
            (hex_bgr("#0e1024"), 0.45, 0.78, 0.4),
        ]
    ):
        x = rng.uniform(0, 40)
        while x < cw:
            bw = rng.uniform(50, 130) * s * (1 + 0.3 * layer)
            top = rng.uniform(lo, hi) * ch
            _building(img, rng, x, bw, top, road, col, lit, s)
            if layer == 1 and top < 0.4 * ch:
                beacons.append((x + bw / 2, top - 2))
            x += bw + rng.uniform(0, 20) * s
    img[int(road) :] = hex_bgr("#15151c")
    img[int(road) + int(3 * s) : int(road) + int(5 * s)] = hex_bgr("#3a3a44")
    return img, {"road": road, "beacons": beacons, "lane": ch * 0.035}


def _building(
    img: np.ndarray,
    rng: np.random.Generator,
    x: float,
    bw: float,
    top: float,
    road: float,
    col: np.ndarray,
    lit: float,
    s: float,
) -> None:
    """One building from ``x`` to ``x + bw``, from ``top`` down to the road, its windows lit by chance."""
    cw = img.shape[1]
    x0, x1 = int(x), int(min(cw, x + bw))
    img[int(top) : int(road), x0:x1] = col
    if lit > 0:
        # Lit windows: a grid of cells inside the building, each lit by chance.
        ys = np.arange(int(top) + int(8 * s), int(road) - int(10 * s), max(4, int(14 * s)))
        xs = np.arange(x0 + int(6 * s), x1 - int(6 * s), max(4, int(12 * s)))
        on = rng.random((len(ys), len(xs))) < lit
        warm = _tint(rng, hex_bgr("#ffd58a"), 15)
        wy, wx = max(2, int(6 * s)), max(2, int(5 * s))
        for i, j in zip(*np.nonzero(on), strict=True):
            img[ys[i] : ys[i] + wy, xs[j] : xs[j] + wx] = warm * rng.uniform(0.7, 1.0)


def _paint_woods(
    rng: np.random.Generator, cw: int, ch: int, s: float, snowy: bool
) -> tuple[np.ndarray, dict[str, Any]]:
    """Three layers of hills with pines, in summer or under snow (forest and snow share this)."""
    if snowy:
        img = _vgrad(ch, cw, [(0.0, _tint(rng, hex_bgr("#8c9db3"))), (0.7, _tint(rng, hex_bgr("#dfe6ee")))])
    else:
        img = _vgrad(ch, cw, [(0.0, _tint(rng, hex_bgr("#7fb3d5"))), (0.7, _tint(rng, hex_bgr("#f1e9c6")))])
        _wrapped_glow(img, rng.uniform(0, cw), ch * 0.25, 320 * s, hex_bgr("#fff5d0"), 0.55)
    layers = [
        (hex_bgr("#9fb0bd") if snowy else hex_bgr("#7d9a9a"), 0.55, 90),
        (hex_bgr("#5d7a70") if snowy else hex_bgr("#3f6b4a"), 0.68, 150),
        (hex_bgr("#2c4538") if snowy else hex_bgr("#1f3d28"), 0.8, 220),
    ]
    for k, (col, base, th) in enumerate(layers):
        ground = _ridge(rng, cw, base * ch, 18 * s, 3)
        _fill_below(img, ground, hex_bgr("#eef2f6") * (0.85 + 0.05 * k) if snowy else col * 0.8)
        n = int(cw / (60 * s) * (0.6 + 0.3 * k))
        for x in np.sort(rng.uniform(0, cw, n)):
            tree_h = th * s * rng.uniform(0.6, 1.2)
            gy = float(ground[int(x) % cw]) + 6 * s
            color = tuple(float(v) for v in _tint(rng, col, 6))
            cap = tuple(float(v) for v in hex_bgr("#f4f7fa")) if snowy else None
            _wrapped(
                img,
                x,
                lambda xx, gy=gy, tree_h=tree_h, color=color, cap=cap: _pine(img, xx, gy, tree_h, color, cap),
            )
    if snowy:
        _fill_below(img, _ridge(rng, cw, 0.9 * ch, 10 * s, 2), hex_bgr("#f2f5f8"), 0.1)
    else:
        _fill_below(img, _ridge(rng, cw, 0.9 * ch, 10 * s, 2), hex_bgr("#24401f"), 0.3)
    return img, {}


def _paint_forest(rng: np.random.Generator, cw: int, ch: int, s: float) -> tuple[np.ndarray, dict[str, Any]]:
    return _paint_woods(rng, cw, ch, s, snowy=False)


def _paint_snow(rng: np.random.Generator, cw: int, ch: int, s: float) -> tuple[np.ndarray, dict[str, Any]]:
    return _paint_woods(rng, cw, ch, s, snowy=True)


def _paint_night(rng: np.random.Generator, cw: int, ch: int, s: float) -> tuple[np.ndarray, dict[str, Any]]:
    img = _vgrad(
        ch,
        cw,
        [
            (0.0, _tint(rng, hex_bgr("#02040c"), 3)),
            (0.7, _tint(rng, hex_bgr("#101a3a"), 5)),
            (1.0, _tint(rng, hex_bgr("#1d2a4a"), 5)),
        ],
    )
    stars = _stars(img, rng, int(cw * ch / 9000), 0.0, 0.75)
    moon = (rng.uniform(0.1, 0.9) * cw, ch * rng.uniform(0.18, 0.3))
    _glow(img, moon[0], moon[1], 180 * s, hex_bgr("#9fb4d8"), 0.35)
    imaging.fill_ellipse(img, moon[0], moon[1], 30 * s, 30 * s, tuple(float(v) for v in hex_bgr("#eef0e6")))
    imaging.fill_ellipse(
        img, moon[0] + 8 * s, moon[1] - 6 * s, 7 * s, 6 * s, tuple(float(v) for v in hex_bgr("#d6d8cc"))
    )
    _fill_below(img, _ridge(rng, cw, 0.72 * ch, 30 * s), hex_bgr("#0a0f1c"))
    _fill_below(img, _ridge(rng, cw, 0.84 * ch, 22 * s), hex_bgr("#04060c"))
    return img, {"stars": stars, "ground": 0.78 * ch}


def _paint_desert(rng: np.random.Generator, cw: int, ch: int, s: float) -> tuple[np.ndarray, dict[str, Any]]:
    img = _vgrad(ch, cw, [(0.0, _tint(rng, hex_bgr("#4a8cc8"))), (0.5, _tint(rng, hex_bgr("#f2e3c0")))])
    _wrapped_glow(img, rng.uniform(0, cw), ch * 0.2, 260 * s, hex_bgr("#fffbe8"), 0.8)
    for k, col in enumerate([hex_bgr("#d9b382"), hex_bgr("#cf9f66"), hex_bgr("#c08a50"), hex_bgr("#a87442")]):
        ridge = _ridge(rng, cw, (0.5 + 0.12 * k) * ch, (20 + 8 * k) * s, 2)
        _fill_below(img, ridge, _tint(rng, col, 6), 0.25)
    return img, {"ground": 0.6 * ch}


def _paint_fire(rng: np.random.Generator, cw: int, ch: int, s: float) -> tuple[np.ndarray, dict[str, Any]]:
    img = _vgrad(
        ch,
        cw,
        [
            (0.0, _tint(rng, hex_bgr("#2a1040"))),
            (0.35, _tint(rng, hex_bgr("#8a2a3a"))),
            (0.6, _tint(rng, hex_bgr("#f06a2a"))),
            (0.72, _tint(rng, hex_bgr("#ffc36a"))),
        ],
    )
    sun_x = rng.uniform(0.2, 0.8) * cw
    _glow(img, sun_x, ch * 0.66, 380 * s, hex_bgr("#ffd27a"), 0.8)
    imaging.fill_ellipse(img, sun_x, ch * 0.66, 70 * s, 70 * s, tuple(float(v) for v in hex_bgr("#fff0b0")))
    _fill_below(img, _ridge(rng, cw, 0.7 * ch, 16 * s), hex_bgr("#3a1420"))
    _fill_below(img, _ridge(rng, cw, 0.8 * ch, 22 * s), hex_bgr("#14060a"))
    return img, {"ground": 0.8 * ch}


def _paint_abstract(
    rng: np.random.Generator, cw: int, ch: int, s: float
) -> tuple[np.ndarray, dict[str, Any]]:
    a, b = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
    img = _vgrad(ch, cw, [(0.0, a.astype(np.float32)), (1.0, b.astype(np.float32))])
    blobs = np.zeros((ch, cw, 3), np.float32)
    for _ in range(14):
        x, y, r = rng.uniform(0, cw), rng.uniform(0, ch), rng.uniform(60, 220) * s
        colr = tuple(float(v) for v in rng.uniform(30, 230, 3))
        _wrapped(blobs, x, lambda xx, y=y, r=r, colr=colr: imaging.fill_ellipse(blobs, xx, y, r, r, colr))
    mask = (blobs.sum(axis=2) > 0).astype(np.float32)
    spread = blur_wrap(mask, 40 * s)[..., None]
    soft = spread * 0.6
    img = img * (1 - soft) + blur_wrap(blobs, 40 * s) * soft / np.maximum(spread, 1e-3)
    return img, {}


PAINTERS: dict[str, Painter] = {
    "sky": _paint_sky,
    "sea": _paint_sea,
    "city": _paint_city,
    "forest": _paint_forest,
    "snow": _paint_snow,
    "night": _paint_night,
    "desert": _paint_desert,
    "fire": _paint_fire,
    "abstract": _paint_abstract,
}


def paint(
    painter: str, rng: np.random.Generator, cw: int, ch: int, height: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """The background canvas a painter makes (uint8) for frames ``height`` pixels high, and its layout."""
    img, layout = PAINTERS[painter](rng, cw, ch, height / 720.0)  # sizes are designed at 720p
    return np.clip(img, 0, 255).astype(np.uint8), layout


# ---------------------------------------------------------------------------------------------
# Surface texture.
# ---------------------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, ch: int, cw: int, sigma: float) -> np.ndarray:
    """Gaussian-blurred noise, wrap-seamless in x, made at a lower resolution and scaled up.

    A wide blur of a full canvas costs a large share of painting a world; the field is smooth
    at this scale, so computing it on a grid ``sigma / 4`` times coarser looks the same.
    """
    step = max(1, int(sigma / 4))
    if step == 1:
        return blur_wrap(rng.standard_normal((ch, cw)).astype(np.float32), sigma)
    small_w, small_h = max(2, -(-cw // step)), max(2, -(-ch // step))
    small = blur_wrap(rng.standard_normal((small_h, small_w)).astype(np.float32), sigma / step)
    # One extra column (the first again) so the scaled-up field stays periodic at the seam.
    ring = np.concatenate([small, small[:, :1]], axis=1)
    period = cw / small_w
    big = imaging.resize(ring, round(cw + period), ch)
    return np.ascontiguousarray(big[:, :cw])


def mottle(img: np.ndarray, rng: np.random.Generator, amount: float, height: int) -> np.ndarray:
    """Fixed, wrap-seamless blotchy texture (two scales, slightly coloured) painted into the canvas.

    ``amount`` is the texture's amplitude (a fraction of the pixel value): real surfaces are
    never flat, and flat areas give optical flow nothing to hold on to (a pan over a smooth
    gradient reads as a still camera) and make colour histograms jump on encoder noise.
    """
    s = height / 720.0
    ch, cw = img.shape[:2]
    fine = blur_wrap(rng.standard_normal((ch, cw)).astype(np.float32), max(0.8, 7 * s))
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
