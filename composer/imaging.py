"""Still images through OpenCV: read, check, write, and the pixel helpers the local generator uses.

This is the one module outside ``analysis/`` that imports ``cv2``; it handles still pictures
and numpy frames only. Opening video files is not done here (ffmpeg does that in
``compose/ffmpeg.py``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from composer.errors import MediaError
from composer.files import write_bytes_atomic

# OpenCV's own threads fight ffmpeg's for the two cores we usually have.
cv2.setNumThreads(1)


def probe_image(path: str | Path) -> tuple[int, int]:
    """(width, height) of a readable image, or MediaError saying why it is not usable."""
    image = read_image(path)
    return image.shape[1], image.shape[0]


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to an 8-bit BGR array."""
    path = Path(path)
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else None
    if data is None:
        raise MediaError(f"image {path} not found")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise MediaError(
            f"image {path} cannot be decoded; use a PNG, JPEG or WebP file"
        )
    if image.shape[0] < 16 or image.shape[1] < 16:
        raise MediaError(f"image {path} is {image.shape[1]}x{image.shape[0]}; use at least 16x16 pixels")
    return image


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write an image atomically (temporary name, then rename)."""
    path = Path(path)
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise MediaError(f"cannot encode {path} as PNG")
    write_bytes_atomic(path, data.tobytes())


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale and centre-crop ``image`` so it fills exactly width x height."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    new_w, new_h = max(width, round(w * scale)), max(height, round(h * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    x0, y0 = (new_w - width) // 2, (new_h - height) // 2
    return np.ascontiguousarray(resized[y0 : y0 + height, x0 : x0 + width])


def warp_similarity(
    image: np.ndarray, matrix: np.ndarray, width: int, height: int, *, wrap: bool = False
) -> np.ndarray:
    """Apply a 2x3 affine ``matrix`` (output -> source mapping) with reflected (or wrapped) borders."""
    return cv2.warpAffine(
        image,
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_WRAP if wrap else cv2.BORDER_REFLECT_101,
    )


def blend(a: np.ndarray, b: np.ndarray, weight_b: float) -> np.ndarray:
    """``a * (1 - weight_b) + b * weight_b`` for 8-bit images (rounded, saturated)."""
    return cv2.addWeighted(a, 1.0 - weight_b, b, weight_b, 0.0)


def pad_reflect(image: np.ndarray, x: int, y: int) -> np.ndarray:
    """Extend ``image`` by ``x`` columns left and right and ``y`` rows top and bottom, mirrored."""
    return cv2.copyMakeBorder(image, y, y, x, x, cv2.BORDER_REFLECT_101)


def color_transform(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3x4 colour matrix (per pixel: ``matrix @ [b, g, r, 1]``) to an 8-bit BGR image."""
    return cv2.transform(image, matrix.astype(np.float32))


#: Fixed-point bits for sub-pixel drawing: coordinates are multiplied by 16, so shapes move smoothly.
_SHIFT = 4


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * (1 << _SHIFT)).astype(np.int32)


def draw_disc(image: np.ndarray, x: float, y: float, radius: float, color: tuple[float, ...]) -> None:
    """A filled anti-aliased disc at a sub-pixel position (in place)."""
    cx, cy = _fixed((x, y))
    cv2.circle(image, (int(cx), int(cy)), max(1, round(radius * (1 << _SHIFT))), color, -1, cv2.LINE_AA, _SHIFT)


def draw_polyline(
    image: np.ndarray, points: np.ndarray, color: tuple[float, ...], thickness: int = 1, closed: bool = False
) -> None:
    """An anti-aliased polyline through ``points`` (N x 2 floats, sub-pixel), in place."""
    cv2.polylines(image, [_fixed(points).reshape(-1, 1, 2)], closed, color, max(1, thickness), cv2.LINE_AA, _SHIFT)


def fill_polygon(image: np.ndarray, points: np.ndarray, color: tuple[float, ...]) -> None:
    """A filled anti-aliased polygon (N x 2 floats, sub-pixel), in place."""
    cv2.fillPoly(image, [_fixed(points).reshape(-1, 1, 2)], color, cv2.LINE_AA, _SHIFT)


def fill_ellipse(
    image: np.ndarray, x: float, y: float, rx: float, ry: float, color: tuple[float, ...]
) -> None:
    """A filled anti-aliased axis-aligned ellipse, in place."""
    cx, cy = _fixed((x, y))
    axes = (max(1, round(rx * (1 << _SHIFT))), max(1, round(ry * (1 << _SHIFT))))
    cv2.ellipse(image, (int(cx), int(cy)), axes, 0.0, 0.0, 360.0, color, -1, cv2.LINE_AA, _SHIFT)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma)


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def jpeg_data_uri(image: np.ndarray, width: int = 240, quality: int = 80) -> str:
    """A small JPEG of ``image`` as a ``data:`` URI, for self-contained pages."""
    import base64

    h, w = image.shape[:2]
    small = cv2.resize(image, (width, max(2, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise MediaError("cannot encode a thumbnail as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii")
