"""Still images through OpenCV: read, check, write, and the pixel helpers the local generator uses.

This is the one module outside ``analysis/`` that imports ``cv2``; it handles still pictures
and numpy frames only. Opening video files is not done here (ffmpeg does that in
``composer/ffmpeg/``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from composer.errors import MediaError
from composer.files import NotReadable, read_regular, write_bytes_atomic

# OpenCV's own threads fight ffmpeg's for the two cores we usually have.
cv2.setNumThreads(1)


#: The most pixels an image may have (8K UHD is 33 million): decoding allocates 3 bytes per
#: pixel before anything else can look at it, so a header claiming 30000x30000 is refused first.
MAX_IMAGE_PIXELS = 40_000_000
#: The largest image file read.
MAX_IMAGE_BYTES = 64 * 1024 * 1024
_FORMATS = "use a PNG, JPEG or WebP file"


def header_size(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) read from a PNG, JPEG or WebP header, or None if it is not one.

    Only the header is read, so the size is known before anything is decoded.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return "PNG", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            return (
                "WebP",
                int.from_bytes(data[24:27], "little") + 1,
                int.from_bytes(data[27:30], "little") + 1,
            )
        if chunk == b"VP8L" and data[20:21] == b"\x2f":
            bits = int.from_bytes(data[21:25], "little")
            return "WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
            return (
                "WebP",
                int.from_bytes(data[26:28], "little") & 0x3FFF,
                int.from_bytes(data[28:30], "little") & 0x3FFF,
            )
    return None


def _jpeg_size(data: bytes) -> tuple[str, int, int] | None:
    # Walk the marker segments up to the first start-of-frame, which holds the size.
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            at += 2
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if at + 9 > len(data):
                return None
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            return "JPEG", width, height
        if length < 2:
            return None
        at += 2 + length
    return None


def probe_image(path: str | Path) -> tuple[int, int]:
    """(width, height) of a readable image, or MediaError saying why it is not usable."""
    image = read_image(path)
    return image.shape[1], image.shape[0]


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to an 8-bit BGR array.

    Only a regular file is read (a FIFO or ``/dev/zero`` would never end), and only a PNG,
    JPEG or WebP whose header gives a size within :data:`MAX_IMAGE_PIXELS` is decoded.
    """
    path = Path(path)
    try:
        raw = read_regular(path, max_bytes=MAX_IMAGE_BYTES, what="image")
    except NotReadable as exc:
        raise MediaError(f"image {_name(path)}: {exc}") from None
    header = header_size(raw)
    if header is None:
        raise MediaError(f"image {_name(path)} is not a PNG, JPEG or WebP image; {_FORMATS}")
    kind, width, height = header
    if width * height > MAX_IMAGE_PIXELS:
        raise MediaError(
            f"image {_name(path)} is {width}x{height} ({kind} header): more than the "
            f"{MAX_IMAGE_PIXELS} pixel limit; scale it down (a first frame needs no more than the output size)"
        )
    data = np.frombuffer(raw, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise MediaError(f"image {_name(path)} cannot be decoded; {_FORMATS}")
    if image.shape[0] < 16 or image.shape[1] < 16:
        raise MediaError(
            f"image {_name(path)} is {image.shape[1]}x{image.shape[0]}; use at least 16x16 pixels"
        )
    return image


def _name(path: Path, limit: int = 200) -> str:
    text = str(path)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write an image atomically (temporary name, then rename)."""
    path = Path(path)
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise MediaError(f"cannot encode {path} as PNG")
    write_bytes_atomic(path, data.tobytes())


def cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale and centre-crop ``image`` so it fills exactly width x height."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    new_w, new_h = max(width, round(w * scale)), max(height, round(h * scale))
    resized = cv2.resize(
        image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    )
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
    cv2.circle(
        image, (int(cx), int(cy)), max(1, round(radius * (1 << _SHIFT))), color, -1, cv2.LINE_AA, _SHIFT
    )


def draw_polyline(
    image: np.ndarray, points: np.ndarray, color: tuple[float, ...], thickness: int = 1, closed: bool = False
) -> None:
    """An anti-aliased polyline through ``points`` (N x 2 floats, sub-pixel), in place."""
    cv2.polylines(
        image, [_fixed(points).reshape(-1, 1, 2)], closed, color, max(1, thickness), cv2.LINE_AA, _SHIFT
    )


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
