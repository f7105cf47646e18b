"""Draw the sample reference images the demo storyboards use, with numpy and OpenCV only.

Run ``python samples/make_samples.py`` to (re)write ``harbour.png``, ``forest_path.png`` and
``mountain_lake.png`` next to this script. The pictures are simple on purpose: smooth
gradients and soft shapes that a generator can take as a first frame, and that PNG keeps
small. Everything is deterministic (fixed seeds, no clock), so running it twice writes the
same pixels.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 1280, 720
HERE = Path(__file__).resolve().parent

Color = tuple[int, int, int]  # RGB, converted to OpenCV's BGR only when written


def vertical_gradient(
    stops: Sequence[tuple[float, Color]], height: int = HEIGHT, width: int = WIDTH
) -> np.ndarray:
    """A float RGB image whose colour runs through ``stops`` (position 0..1, colour) top to bottom."""
    positions = np.array([p for p, _ in stops], dtype=np.float32)
    colors = np.array([c for _, c in stops], dtype=np.float32)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)
    column = np.stack([np.interp(y, positions, colors[:, k]) for k in range(3)], axis=-1)
    return np.repeat(column[:, None, :], width, axis=1)


def blend(image: np.ndarray, color: Color, mask: np.ndarray) -> np.ndarray:
    """Mix ``color`` into ``image`` where ``mask`` (0..1, H x W) is set."""
    m = mask[..., None].astype(np.float32)
    return image * (1.0 - m) + np.array(color, dtype=np.float32) * m


def shape_mask(draw: Callable[[np.ndarray], None], blur: float = 0.0) -> np.ndarray:
    """A 0..1 mask from an OpenCV drawing call on a blank canvas, optionally softened."""
    canvas = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    draw(canvas)
    mask = canvas.astype(np.float32) / 255.0
    if blur > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), blur)
    return mask


def radial(cx: float, cy: float, radius: float, sx: float = 1.0, sy: float = 1.0) -> np.ndarray:
    """A soft round glow: 1 at (cx, cy) falling to 0 at ``radius`` (stretched by sx, sy)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    d = np.sqrt(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2) / radius
    return np.clip(1.0 - d, 0.0, 1.0) ** 2


def ridge(base_y: float, amplitude: float, seed: int, waves: int = 4) -> np.ndarray:
    """A smooth skyline: y of a hill or treeline for every x, from a few sine waves."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, WIDTH, dtype=np.float32)
    y = np.full(WIDTH, base_y, dtype=np.float32)
    for k in range(1, waves + 1):
        y += amplitude / k * np.sin(2 * np.pi * (k * x * rng.uniform(0.6, 1.4) + rng.uniform()))
    return y


def below(line: np.ndarray, blur: float = 1.0) -> np.ndarray:
    """Mask of everything under a per-column ``line``."""
    y = np.arange(HEIGHT, dtype=np.float32)[:, None]
    mask = (y >= line[None, :]).astype(np.float32)
    return cv2.GaussianBlur(mask, (0, 0), blur) if blur else mask


def finish(image: np.ndarray) -> np.ndarray:
    """Float RGB -> 8-bit BGR, in steps of two levels (invisible, and a third smaller as PNG)."""
    # 127 steps at most: 128 * 2 would wrap to 0 in uint8 and turn white into black.
    rgb = np.minimum((np.clip(image, 0, 255) / 2).round(), 127).astype(np.uint8) * 2
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def harbour() -> np.ndarray:
    """A harbour at dawn: warm sky, low sun, headland, calm sea, a quay and three sailing boats."""
    horizon = int(HEIGHT * 0.58)
    sky = vertical_gradient(
        [(0.0, (38, 52, 104)), (0.35, (122, 104, 160)), (0.5, (238, 150, 120)), (0.58, (255, 204, 140))],
    )
    sea = vertical_gradient(
        [(0.0, (40, 50, 90)), (0.58, (40, 50, 90)), (0.6, (150, 120, 140)), (1.0, (24, 40, 70))],
    )
    sea_mask = below(np.full(WIDTH, horizon, dtype=np.float32), blur=0)
    image = sky * (1 - sea_mask[..., None]) + sea * sea_mask[..., None]

    # Sun and its glow just above the horizon.
    sun_x, sun_y = WIDTH * 0.62, horizon - 40
    image = blend(image, (255, 214, 160), radial(sun_x, sun_y, 420, 1.6, 1.0) * 0.55 * (1 - sea_mask))
    image = blend(
        image,
        (255, 246, 214),
        shape_mask(lambda c: cv2.circle(c, (int(sun_x), int(sun_y)), 34, 255, -1, cv2.LINE_AA), 1.5),
    )

    # Soft clouds: a few stretched ellipses, blurred.
    def clouds(c: np.ndarray) -> None:
        for cx, cy, ax, ay in [
            (250, 150, 180, 18),
            (420, 120, 140, 14),
            (900, 190, 220, 16),
            (1120, 110, 130, 12),
        ]:
            cv2.ellipse(c, (cx, cy), (ax, ay), 0, 0, 360, 255, -1, cv2.LINE_AA)

    image = blend(image, (250, 190, 170), shape_mask(clouds, 9.0) * 0.6)

    # A distant headland on the left and low hills on the right, hazy blue.
    hills = ridge(horizon - 30, 14, seed=3)
    hills[: int(WIDTH * 0.35)] -= np.linspace(60, 0, int(WIDTH * 0.35))
    hills[int(WIDTH * 0.8) :] = np.maximum(hills[int(WIDTH * 0.8) :], horizon - 8)
    hill_mask = below(hills) * (1 - sea_mask)
    image = blend(image, (92, 84, 128), hill_mask * 0.9)

    # The sun's reflection: short horizontal strokes that widen towards the viewer.
    def glitter(c: np.ndarray) -> None:
        rng = np.random.default_rng(7)
        for y in range(horizon + 4, HEIGHT, 7):
            depth = (y - horizon) / (HEIGHT - horizon)
            for _ in range(3):
                half = int(rng.uniform(10, 40) * (0.4 + depth * 1.8))
                x = int(sun_x + rng.normal(0, 18 + 70 * depth))
                cv2.line(c, (x - half, y), (x + half, y), 255, 2, cv2.LINE_AA)

    image = blend(image, (255, 220, 170), shape_mask(glitter, 1.2) * 0.75)

    # Gentle swell lines across the whole sea.
    def swell(c: np.ndarray) -> None:
        for i, y in enumerate(range(horizon + 10, HEIGHT, 16)):
            offset = (i * 37) % 120
            for x in range(-offset, WIDTH, 120):
                cv2.line(c, (x, y), (x + 60, y), 255, 1, cv2.LINE_AA)

    image = blend(image, (90, 100, 150), shape_mask(swell, 1.0) * 0.35)

    # Boats: hull, mast, sails, and a darker reflection beneath.
    boat_color, sail_color = (34, 30, 48), (246, 226, 206)

    def boat(img: np.ndarray, x: int, y: int, scale: float) -> np.ndarray:
        s = scale
        hull = np.array(
            [
                [x - 70 * s, y - 14 * s],
                [x + 80 * s, y - 14 * s],
                [x + 58 * s, y + 6 * s],
                [x - 52 * s, y + 6 * s],
            ],
            np.int32,
        )
        img = blend(img, boat_color, shape_mask(lambda c: cv2.fillPoly(c, [hull], 255, cv2.LINE_AA), 0.8))
        mast = shape_mask(
            lambda c: cv2.line(
                c, (x, int(y - 14 * s)), (x, int(y - 150 * s)), 255, max(1, int(3 * s)), cv2.LINE_AA
            ),
            0.6,
        )
        img = blend(img, boat_color, mast)
        main = np.array(
            [[x + 4 * s, y - 146 * s], [x + 4 * s, y - 22 * s], [x + 70 * s, y - 22 * s]], np.int32
        )
        jib = np.array(
            [[x - 4 * s, y - 138 * s], [x - 4 * s, y - 26 * s], [x - 56 * s, y - 26 * s]], np.int32
        )
        img = blend(
            img, sail_color, shape_mask(lambda c: cv2.fillPoly(c, [main, jib], 255, cv2.LINE_AA), 0.8) * 0.95
        )
        refl = np.array(
            [
                [x - 52 * s, y + 8 * s],
                [x + 58 * s, y + 8 * s],
                [x + 40 * s, y + 40 * s],
                [x - 30 * s, y + 40 * s],
            ],
            np.int32,
        )
        img = blend(
            img, (30, 34, 60), shape_mask(lambda c: cv2.fillPoly(c, [refl], 255, cv2.LINE_AA), 6.0) * 0.55
        )
        return img

    image = boat(image, 330, horizon + 120, 0.9)
    image = boat(image, 820, horizon + 60, 0.55)
    image = boat(image, 1040, horizon + 200, 1.15)

    # A stone quay along the bottom left, with bollards.
    quay = np.array([[0, HEIGHT - 170], [420, HEIGHT - 95], [520, HEIGHT], [0, HEIGHT]], np.int32)
    image = blend(image, (58, 46, 52), shape_mask(lambda c: cv2.fillPoly(c, [quay], 255, cv2.LINE_AA), 1.0))
    edge = np.array([[0, HEIGHT - 170], [420, HEIGHT - 95], [426, HEIGHT - 85], [0, HEIGHT - 158]], np.int32)
    image = blend(
        image, (196, 140, 112), shape_mask(lambda c: cv2.fillPoly(c, [edge], 255, cv2.LINE_AA), 1.0) * 0.8
    )

    def bollards(c: np.ndarray) -> None:
        for x in (90, 250, 380):
            y = int(HEIGHT - 170 + x * 75 / 420)
            cv2.rectangle(c, (x - 9, y - 26), (x + 9, y), 255, -1, cv2.LINE_AA)
            cv2.ellipse(c, (x, y - 26), (13, 5), 0, 0, 360, 255, -1, cv2.LINE_AA)

    image = blend(image, (30, 24, 30), shape_mask(bollards, 0.8))
    return finish(image)


def forest_path() -> np.ndarray:
    """A path through a beech forest in soft morning light, narrowing to a bright gap."""
    vanish_x, vanish_y = WIDTH * 0.52, HEIGHT * 0.5
    image = vertical_gradient(
        [(0.0, (150, 190, 140)), (0.45, (226, 236, 190)), (0.55, (150, 170, 100)), (1.0, (60, 84, 40))]
    )
    image = blend(image, (255, 250, 214), radial(vanish_x, vanish_y - 20, 380, 1.3, 1.0) * 0.8)

    # Far trees: pale, hazy trunks; then darker and wider ones closer to the viewer.
    rng = np.random.default_rng(11)
    for layer, (count, color, width, alpha) in enumerate(
        [(26, (150, 170, 130), 7, 0.6), (16, (96, 110, 78), 16, 0.8), (8, (52, 52, 38), 40, 0.95)]
    ):

        def trunks(c: np.ndarray, count: int = count, width: int = width, layer: int = layer) -> None:
            for _ in range(count):
                side = rng.choice([-1, 1])
                x = int(vanish_x + side * rng.uniform(60 + layer * 120, WIDTH * 0.55))
                w = int(width * rng.uniform(0.7, 1.3))
                bottom = int(vanish_y + 40 + layer * 90 + rng.uniform(0, 30))
                cv2.rectangle(c, (x - w // 2, 0), (x + w // 2, bottom), 255, -1, cv2.LINE_AA)

        image = blend(image, color, shape_mask(trunks, 1.5 - layer * 0.4) * alpha)

    # Canopy: soft green clouds of leaves along the top.
    def canopy(c: np.ndarray) -> None:
        for _ in range(70):
            x = int(rng.uniform(-50, WIDTH + 50))
            y = int(rng.uniform(-40, HEIGHT * 0.22) + 0.0006 * (x - vanish_x) ** 2 * 0.35)
            cv2.circle(c, (x, y), int(rng.uniform(40, 110)), 255, -1, cv2.LINE_AA)

    image = blend(image, (70, 110, 50), shape_mask(canopy, 6.0) * 0.85)

    # The path: a curving band of warm earth from the bottom to the vanishing point.
    def path(c: np.ndarray) -> None:
        ts = np.linspace(0.0, 1.0, 60)
        centre = vanish_x + 140 * np.sin(ts * np.pi * 0.9) * (1 - ts) - 60 * (1 - ts) ** 2
        ys = vanish_y + 12 + ts**1.6 * (HEIGHT - vanish_y)
        half = 6 + ts**1.4 * 360
        left = np.stack([centre - half, ys], axis=1)
        right = np.stack([centre + half, ys], axis=1)[::-1]
        cv2.fillPoly(c, [np.concatenate([left, right]).astype(np.int32)], 255, cv2.LINE_AA)

    path_mask = shape_mask(path, 3.0)
    path_color = vertical_gradient([(0.0, (230, 214, 160)), (0.5, (214, 186, 130)), (1.0, (150, 110, 70))])
    image = image * (1 - path_mask[..., None]) + path_color * path_mask[..., None]

    # Ferns: small bright green tufts along both edges of the path.
    def ferns(c: np.ndarray) -> None:
        for _ in range(70):
            side = rng.choice([-1, 1])
            y = int(rng.uniform(vanish_y + 60, HEIGHT))
            depth = (y - vanish_y) / (HEIGHT - vanish_y)
            x = int(vanish_x + side * (30 + depth * 420 + rng.uniform(0, 260)))
            r = int(6 + depth * 30)
            cv2.ellipse(c, (x, y), (r, max(2, r // 3)), rng.uniform(-30, 30), 0, 360, 255, -1, cv2.LINE_AA)

    image = blend(image, (92, 140, 56), shape_mask(ferns, 1.5) * 0.9)
    return finish(image)


def mountain_lake() -> np.ndarray:
    """A still mountain lake at noon: snowy peaks, pine ridge, mirror reflection."""
    shore = int(HEIGHT * 0.6)
    image = vertical_gradient([(0.0, (70, 130, 200)), (0.6, (190, 220, 240)), (1.0, (190, 220, 240))])

    def cloud(c: np.ndarray) -> None:
        for cx, cy, ax, ay in [(300, 110, 160, 26), (380, 90, 100, 30), (980, 150, 200, 22)]:
            cv2.ellipse(c, (cx, cy), (ax, ay), 0, 0, 360, 255, -1, cv2.LINE_AA)

    image = blend(image, (250, 252, 255), shape_mask(cloud, 10.0) * 0.8)

    x = np.arange(WIDTH, dtype=np.float32)
    peaks = np.full(WIDTH, float(shore), dtype=np.float32)
    for px, py, spread in [(250, 220, 330), (660, 140, 380), (1030, 240, 300)]:
        peaks = np.minimum(peaks, py + np.abs(x - px) * (shore - py) / spread)
    peaks += ridge(0, 10, seed=5, waves=12)
    mountain = below(peaks, 1.0)
    image = blend(image, (92, 100, 126), mountain)
    # Shadowed east faces: darker to the right of each summit.
    shade = np.zeros(WIDTH, dtype=np.float32)
    for px in (250, 660, 1030):
        shade = np.maximum(shade, np.clip((x - px) / 200, 0, 1) * np.clip((px + 260 - x) / 60, 0, 1))
    image = blend(
        image, (60, 66, 92), mountain * cv2.GaussianBlur(shade[None, :], (0, 0), 8)[0][None, :] * 0.6
    )
    snow_line = ridge(300, 18, seed=8, waves=8)
    snow = mountain * (1 - below(snow_line, 3.0))
    image = blend(image, (244, 246, 252), snow * 0.95)

    def pines(c: np.ndarray) -> None:
        rng = np.random.default_rng(9)
        cv2.rectangle(c, (0, shore - 14), (WIDTH, shore), 255, -1)
        for x0 in range(-10, WIDTH + 10, 9):
            h = int(rng.uniform(30, 80))
            w = int(h * rng.uniform(0.22, 0.32))
            cv2.fillPoly(
                c,
                [np.array([[x0, shore - 10 - h], [x0 - w, shore - 8], [x0 + w, shore - 8]], np.int32)],
                255,
                cv2.LINE_AA,
            )

    image = blend(image, (30, 66, 46), shape_mask(pines, 0.7))

    lake_mask = below(np.full(WIDTH, float(shore), dtype=np.float32), 0)
    mirrored = image[shore - (HEIGHT - shore) : shore][::-1]
    water = mirrored * 0.75 + np.array((40, 80, 110), dtype=np.float32) * 0.25
    image[shore:] = image[shore:] * (1 - lake_mask[shore:, :, None]) + water * lake_mask[shore:, :, None]

    def ripples(c: np.ndarray) -> None:
        for i, y in enumerate(range(shore + 8, HEIGHT, 12)):
            for x0 in range(-(i * 53) % 160, WIDTH, 160):
                cv2.line(c, (x0, y), (x0 + 70, y), 255, 1, cv2.LINE_AA)

    image = blend(image, (220, 234, 244), shape_mask(ripples, 0.8) * 0.25)
    return finish(image)


SAMPLES: dict[str, Callable[[], np.ndarray]] = {
    "harbour.png": harbour,
    "forest_path.png": forest_path,
    "mountain_lake.png": mountain_lake,
}


def write(folder: Path = HERE) -> list[Path]:
    """Draw every sample and write it as PNG into ``folder``; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in SAMPLES.items():
        ok, data = cv2.imencode(".png", draw(), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok:
            raise RuntimeError(f"cannot encode {name}")
        path = folder / name
        path.write_bytes(data.tobytes())
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into (default: samples/)")
    args = parser.parse_args(argv)
    for path in write(args.out):
        print(f"{path}  {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
