"""Per-frame and per-pair measurements on small BGR frames (pure numpy / OpenCV, no I/O).

Holds: frame features (grey, blurred grey, H-S histogram, mean L*, chroma C*, HSV saturation),
DIS optical flow and the global camera motion fitted to it (a similarity transform by RANSAC:
centre translation, scale, rotation, inlier share), the residual the flow cannot explain,
histogram distances, robust z-scores, and the comparison of a frame with a motion-compensated
anchor. Formulas follow ``shared/reference/drift-metrics.md`` §4. What does not live here:
decoding (``frames.py``), thresholds and verdicts (``seams.py``, ``drift.py``).

Pixel quantities (velocities, jumps) are returned in pixels *at 480 px wide* whatever the
analysis width, so thresholds do not depend on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from composer.analysis.frames import REFERENCE_WIDTH

HIST_BINS = (32, 32)
_HIST_RANGES = [0, 180, 0, 256]
#: Gaussian sigma applied before residual / NCC: regenerated fine texture must not count.
BLUR_SIGMA = 2.0
#: A blurred residual above this many grey levels is "unexplained".
RESID_LEVEL = 12.0
FLOW_GRID_STEP = 8
RANSAC_PX = 1.0
#: Photometry, residual and NCC run at 1/SMALL of the analysis size.
SMALL = 2


@dataclass(frozen=True)
class FrameFeatures:
    """What is computed once per frame and shared by every comparison.

    Flow runs on the full analysis-size grey; photometry, histograms, residual and NCC run
    on a half-size copy (``small``): they are means, distributions and blurred images, so
    halving changes their values very little and cuts their cost by four (measured in
    docs/analysis.md). Blur sigma is halved with the size (2 px at 480 w = 1 px at 240 w).
    """

    bgr: np.ndarray  # analysis size
    gray: np.ndarray  # uint8, analysis size, for flow
    small: np.ndarray  # BGR at half size
    hsv: np.ndarray  # ``small`` in HSV and in Lab: kept for the comparisons with the anchor
    lab: np.ndarray
    blur: np.ndarray  # float32 blurred grey at half size, for residual and NCC
    hist: np.ndarray  # H-S histogram, L1-normalised float32
    lightness: float  # mean L* (0-100)
    chroma: float  # mean C*ab
    saturation: float  # mean HSV S (0-1)


def frame_features(bgr: np.ndarray) -> FrameFeatures:
    height, width = bgr.shape[:2]
    small = cv2.resize(bgr, (max(8, width // SMALL), max(8, height // SMALL)), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2Lab)
    lightness, chroma = _lab_means(lab, None)
    small_gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return FrameFeatures(
        bgr=bgr,
        gray=cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
        small=small,
        hsv=hsv,
        lab=lab,
        blur=cv2.GaussianBlur(small_gray.astype(np.float32), (0, 0), BLUR_SIGMA / SMALL),
        hist=hs_hist(hsv, None),
        lightness=lightness,
        chroma=chroma,
        saturation=float(cv2.mean(hsv[:, :, 1])[0]) / 255.0,
    )


def hs_hist(hsv: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """H-S histogram (32x32), L1-normalised: palette/content, blind to brightness."""
    hist = cv2.calcHist([hsv], [0, 1], mask, list(HIST_BINS), _HIST_RANGES)
    total = float(hist.sum())
    return hist / total if total > 0 else hist


def bhattacharyya(h1: np.ndarray, h2: np.ndarray) -> float:
    """OpenCV's Bhattacharyya (= Hellinger) distance: 0 same, 1 disjoint."""
    return float(cv2.compareHist(h1, h2, cv2.HISTCMP_BHATTACHARYYA))


def _lab_means(lab: np.ndarray, mask: np.ndarray | None) -> tuple[float, float]:
    # 8-bit Lab: L = L* * 255/100, a and b offset by 128.
    lightness = cv2.mean(lab[:, :, 0], mask)[0] * 100.0 / 255.0
    a = lab[:, :, 1].astype(np.float32) - 128.0
    b = lab[:, :, 2].astype(np.float32) - 128.0
    chroma_img = cv2.magnitude(a, b)
    chroma = cv2.mean(chroma_img, mask)[0]
    return float(lightness), float(chroma)


def make_flow(preset: str = "ultrafast") -> cv2.DISOpticalFlow:
    """DIS optical flow; ULTRAFAST (default) or FAST. Both work at 1/4 of the given size."""
    code = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST}
    return cv2.DISOpticalFlow_create(code[preset])


@dataclass(frozen=True)
class Motion:
    """Global (camera) motion between two frames, and what it leaves unexplained.

    ``matrix`` maps the first frame's pixel coordinates (analysis size) into the second's.
    ``vx``, ``vy`` are the motion of the image centre (so a zoom is not read as a pan), in
    pixels at 480 px wide. ``scale`` is the zoom factor, ``rotation_deg`` the roll.
    ``inliers`` is the share of flow samples the similarity explains (it collapses at cuts).
    ``warp_resid`` is the mean blurred grey difference after warping with the dense flow and
    ``resid_area`` the share of pixels where it exceeds 12 levels: the area no motion explains.
    """

    matrix: np.ndarray
    vx: float
    vy: float
    scale: float
    rotation_deg: float
    inliers: float
    warp_resid: float
    resid_area: float


def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    # Samples every 8 px, away from the border where flow is least reliable.
    margin = FLOW_GRID_STEP
    ys, xs = np.mgrid[margin : height - margin : FLOW_GRID_STEP, margin : width - margin : FLOW_GRID_STEP]
    return ys.ravel(), xs.ravel()


_GRID_CACHE: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}


def _maps(width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    key = (width, height)
    if key not in _GRID_CACHE:
        ys, xs = _grid(width, height)
        mx, my = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        _GRID_CACHE[key] = (ys, xs, mx, my)
    return _GRID_CACHE[key]


def global_motion(prev: FrameFeatures, cur: FrameFeatures, flow_engine: cv2.DISOpticalFlow) -> Motion:
    """DIS flow prev -> cur, a RANSAC similarity on a grid of it, and the flow-warp residual."""
    height, width = prev.gray.shape
    flow = flow_engine.calc(prev.gray, cur.gray, None)
    ys, xs, _, _ = _maps(width, height)
    p0 = np.stack([xs, ys], axis=1).astype(np.float32)
    p1 = p0 + flow[ys, xs]
    matrix, inlier_mask = cv2.estimateAffinePartial2D(
        p0, p1, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX, maxIters=500, confidence=0.99
    )
    if matrix is None:  # degenerate (flat picture): fall back to the median flow, no inliers
        shift = np.median(p1 - p0, axis=0)
        matrix = np.array([[1, 0, shift[0]], [0, 1, shift[1]]], dtype=np.float64)
        inliers = 0.0
    else:
        inliers = float(inlier_mask.mean()) if inlier_mask is not None else 0.0
    a, b = float(matrix[0, 0]), float(matrix[1, 0])
    cx, cy = width / 2.0, height / 2.0
    to_ref = REFERENCE_WIDTH / width
    vx = (matrix[0, 0] * cx + matrix[0, 1] * cy + matrix[0, 2] - cx) * to_ref
    vy = (matrix[1, 0] * cx + matrix[1, 1] * cy + matrix[1, 2] - cy) * to_ref
    # Residual: pull the current (blurred, half-size) frame back along the flow, compare.
    sh, sw = prev.blur.shape
    small_flow = cv2.resize(flow, (sw, sh), interpolation=cv2.INTER_AREA) * (sw / width)
    _, _, smx, smy = _maps(sw, sh)
    map_x = smx + small_flow[:, :, 0]
    map_y = smy + small_flow[:, :, 1]
    warped = cv2.remap(cur.blur, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=-1)
    valid = (map_x >= 0) & (map_x <= sw - 1) & (map_y >= 0) & (map_y <= sh - 1)
    # 7x7 at 480 w is about 3x3 at half size.
    valid = cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    count = int(valid.sum())
    if count:
        diff = np.abs(warped - prev.blur)[valid]
        warp_resid = float(diff.mean())
        resid_area = float((diff > RESID_LEVEL).mean())
    else:
        warp_resid, resid_area = 0.0, 1.0
    return Motion(
        matrix=np.asarray(matrix, dtype=np.float64),
        vx=float(vx),
        vy=float(vy),
        scale=math.hypot(a, b),
        rotation_deg=math.degrees(math.atan2(b, a)),
        inliers=inliers,
        warp_resid=warp_resid,
        resid_area=resid_area,
    )


@dataclass(frozen=True)
class PairMetrics:
    """Everything measured between consecutive analysed frames i -> i+1."""

    hist_dist: float
    d_lightness: float  # signed L*(i+1) - L*(i)
    d_chroma: float  # signed
    d_saturation: float  # signed, HSV S (0-1)
    motion: Motion


def pair_metrics(prev: FrameFeatures, cur: FrameFeatures, flow_engine: cv2.DISOpticalFlow) -> PairMetrics:
    return PairMetrics(
        hist_dist=bhattacharyya(prev.hist, cur.hist),
        d_lightness=cur.lightness - prev.lightness,
        d_chroma=cur.chroma - prev.chroma,
        d_saturation=cur.saturation - prev.saturation,
        motion=global_motion(prev, cur, flow_engine),
    )


def to3x3(matrix: np.ndarray) -> np.ndarray:
    out = np.eye(3)
    out[:2] = matrix
    return out


@dataclass(frozen=True)
class Registered:
    """The current frame against the anchor warped into it by the accumulated camera motion."""

    overlap: float  # share of the current frame the warped anchor covers
    ncc: float  # zero-mean NCC of blurred grey on the overlap (structure)
    hist_sim: float  # 1 - Bhattacharyya of H-S histograms on the overlap
    d_lightness: float  # L*(current) - L*(anchor), overlap
    chroma_ratio: float  # C(current)/C(anchor) - 1
    saturation_ratio: float  # S(current)/S(anchor) - 1


def compare_registered(anchor: FrameFeatures, cur: FrameFeatures, transform: np.ndarray) -> Registered:
    """Warp ``anchor`` with ``transform`` (3x3, anchor -> current pixels); compare the overlap."""
    height, width = cur.blur.shape
    full_w = cur.gray.shape[1]
    k = width / full_w
    # The transform is in analysis-size pixels; conjugate it to the half-size images.
    scale = np.diag([k, k, 1.0])
    m = (scale @ transform @ np.linalg.inv(scale))[:2]
    warped_bgr = cv2.warpAffine(anchor.small, m, (width, height), flags=cv2.INTER_LINEAR)
    warped_blur = cv2.warpAffine(anchor.blur, m, (width, height), flags=cv2.INTER_LINEAR)
    ones = np.full((height, width), 255, np.uint8)
    mask = cv2.warpAffine(ones, m, (width, height), flags=cv2.INTER_NEAREST)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8))
    overlap = float(np.count_nonzero(mask)) / mask.size
    if overlap < 0.02:
        return Registered(overlap, 0.0, 0.0, 0.0, 0.0, 0.0)
    sel = mask > 0
    a = warped_blur[sel]
    b = cur.blur[sel]
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    ncc = float(np.dot(a, b)) / denom if denom > 1e-6 else 1.0
    hsv_a = cv2.cvtColor(warped_bgr, cv2.COLOR_BGR2HSV)
    hsv_b = cur.hsv
    hist_sim = 1.0 - bhattacharyya(hs_hist(hsv_a, mask), hs_hist(hsv_b, mask))
    la, ca = _lab_means(cv2.cvtColor(warped_bgr, cv2.COLOR_BGR2Lab), mask)
    lb, cb = _lab_means(cur.lab, mask)
    sa = cv2.mean(hsv_a[:, :, 1], mask)[0]
    sb = cv2.mean(hsv_b[:, :, 1], mask)[0]
    return Registered(
        overlap=overlap,
        ncc=ncc,
        hist_sim=hist_sim,
        d_lightness=lb - la,
        chroma_ratio=cb / ca - 1.0 if ca > 1e-6 else 0.0,
        saturation_ratio=sb / sa - 1.0 if sa > 1e-6 else 0.0,
    )


def robust_z(value: float, baseline: Sequence[float] | np.ndarray, spread_floor: float) -> float:
    """(value - median) / (1.4826 MAD + floor): a z-score that one outlier cannot inflate."""
    base = np.asarray(baseline, dtype=np.float64)
    if base.size == 0:
        return 0.0
    med = float(np.median(base))
    mad = float(np.median(np.abs(base - med)))
    return (value - med) / (1.4826 * mad + spread_floor)


def rolling_median(values: Sequence[float] | np.ndarray, window: int) -> np.ndarray:
    """Centred rolling median (window shrinks at the ends); window <= 1 returns the values."""
    arr = np.asarray(values, dtype=np.float64)
    if window <= 1 or arr.size == 0:
        return arr.copy()
    half = window // 2
    out = np.empty_like(arr)
    for i in range(arr.size):
        out[i] = np.median(arr[max(0, i - half) : i + half + 1])
    return out
