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
#: A changed area counts only where it is at least this wide (px at 480 w): see compare_registered.
CHANGED_MIN_PX = 12
#: The opening's kernel on the quarter-size grid the comparison runs on (every 2nd pixel of the
#: half size: 4 px at 480 w per cell).
_OPEN_KERNEL = np.ones((CHANGED_MIN_PX // 4, CHANGED_MIN_PX // 4), np.uint8)
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
    small_gray: np.ndarray  # uint8 grey at half size, for registering a drift sample to its anchor
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
        small_gray=small_gray,
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
    ``still_diff`` is the mean blurred grey difference *without* warping: whether the picture
    changed at all (slow real motion is explained by the flow, so its warp residual reads as
    low as a repeated frame's; its plain difference does not).
    ``gain`` is the median of the signed flow-compensated difference, relative to the mean
    grey: a change of exposure seen by the whole picture, which a light that blinks or a hand
    that shades a corner cannot move (a median ignores what less than half the pixels do).
    ``flow`` is the dense flow at the half size (px at that size) and ``local`` the share of it
    the camera motion does not explain, per pixel, in px at 480 w: what moves in the scene.
    ``unexplained`` marks (half size) what changed from one frame to the next by more than the
    flow explains: fast motion the flow lost (a bike crossing the frame), not a slow morph.
    """

    matrix: np.ndarray
    vx: float
    vy: float
    scale: float
    rotation_deg: float
    inliers: float
    warp_resid: float
    resid_area: float
    gain: float = 0.0
    still_diff: float = 0.0
    flow: np.ndarray | None = None
    local: np.ndarray | None = None
    unexplained: np.ndarray | None = None  # half size: changed by more than RESID_LEVEL beyond the flow


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
    warped = cv2.remap(
        cur.blur, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=-1
    )
    valid = (map_x >= 0) & (map_x <= sw - 1) & (map_y >= 0) & (map_y <= sh - 1)
    # 7x7 at 480 w is about 3x3 at half size.
    valid = cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    count = int(valid.sum())
    gain = 0.0
    unexplained = (np.abs(warped - prev.blur) > RESID_LEVEL) & valid
    if count:
        signed = (warped - prev.blur)[valid]
        diff = np.abs(signed)
        warp_resid = float(diff.mean())
        resid_area = float((diff > RESID_LEVEL).mean())
        # Every 4th valid pixel is plenty for a median, at a quarter of its cost.
        gain = float(np.median(signed[::4])) / max(8.0, float(cv2.mean(prev.blur)[0]))
    else:
        warp_resid, resid_area = 0.0, 1.0
    # What the similarity leaves of the flow: the scene's own motion (px at 480 w).
    # float32 coefficients keep the per-pixel arithmetic in float32 (float64 doubled its cost).
    k = sw / width
    c = np.float32
    local = cv2.magnitude(
        small_flow[:, :, 0] - (c(matrix[0, 0] - 1) * smx + c(matrix[0, 1]) * smy + c(matrix[0, 2] * k)),
        small_flow[:, :, 1] - (c(matrix[1, 0]) * smx + c(matrix[1, 1] - 1) * smy + c(matrix[1, 2] * k)),
    )
    local *= REFERENCE_WIDTH / sw
    still_diff = float(cv2.norm(cur.blur, prev.blur, cv2.NORM_L1)) / max(1, sh * sw)
    return Motion(
        matrix=np.asarray(matrix, dtype=np.float64),
        vx=float(vx),
        vy=float(vy),
        scale=math.hypot(a, b),
        rotation_deg=math.degrees(math.atan2(b, a)),
        inliers=inliers,
        warp_resid=warp_resid,
        resid_area=resid_area,
        gain=gain,
        still_diff=still_diff,
        flow=small_flow,
        local=local,
        unexplained=unexplained,
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


#: Local flow above this (px per frame at 480 w) marks a pixel as moving in the scene.
MOVING_PX = 0.5
#: Below this share of still background in the overlap, photometry is judged on the whole
#: overlap and structure (NCC, histogram, changed area) not at all.
MIN_BACKGROUND = 0.2
#: Chroma below this (C*ab) is "grey": saturation ratios use it as their denominator's floor.
CHROMA_FLOOR = 8.0


@dataclass(frozen=True)
class Alignment:
    """A drift sample registered to its anchor directly: the corrected anchor -> current
    transform (3x3, analysis-size pixels) and the share of the flow it explains."""

    transform: np.ndarray
    inliers: float


def align_to_anchor(
    anchor: FrameFeatures,
    cur: FrameFeatures,
    transform: np.ndarray,
    flow_engine: cv2.DISOpticalFlow,
    moving: np.ndarray | None = None,
) -> Alignment:
    """Correct the accumulated ``transform`` by fitting the current frame to the anchor itself.

    Chaining hundreds of frame-to-frame fits accumulates their small biases (a clean pan read
    as a zoom, a still background as changed); one more flow, from the anchor warped by the
    running transform to the current frame at half size, and a similarity fitted to it by
    RANSAC remove what accumulated. ``moving`` (half size) marks what moved in the scene: the
    fit and its inlier share are taken on the rest, so a static shot full of people moving is
    still well aligned (when too little is still, every point is used).
    """
    h, w = cur.small_gray.shape
    k = w / cur.gray.shape[1]
    scale = np.diag([k, k, 1.0])
    m = (scale @ transform @ np.linalg.inv(scale))[:2]
    warped = cv2.warpAffine(
        anchor.small_gray, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    flow = flow_engine.calc(warped, cur.small_gray, None)
    step = FLOW_GRID_STEP // 2
    ys, xs = np.mgrid[step : h - step : step, step : w - step : step]
    ys, xs = ys.ravel(), xs.ravel()
    p0 = np.stack([xs, ys], axis=1).astype(np.float32)
    p1 = p0 + flow[ys, xs]
    # Only where the warped anchor has content (not its replicated border).
    inside = cv2.warpAffine(np.full((h, w), 255, np.uint8), m, (w, h), flags=cv2.INTER_NEAREST)[ys, xs] > 0
    if moving is not None:
        still = inside & ~moving[ys, xs]
        if still.sum() >= 0.25 * inside.sum():
            inside = still
    if inside.sum() < 12:
        return Alignment(transform, 0.0)
    fit, mask = cv2.estimateAffinePartial2D(
        p0[inside],
        p1[inside],
        method=cv2.RANSAC,
        ransacReprojThreshold=RANSAC_PX / 2,
        maxIters=300,
        confidence=0.99,
    )
    if fit is None:
        return Alignment(transform, 0.0)
    correction = np.linalg.inv(scale) @ to3x3(fit) @ scale
    return Alignment(correction @ transform, float(mask.mean()) if mask is not None else 0.0)


def _central_mean(values: np.ndarray, half_width: float = 3.0) -> float:
    """The mean of the values within ``half_width`` of their median: as robust as the median
    (what moves or blinks lies outside), without its 8-bit steps (0.39 L*), which a chain of
    anchors would add up."""
    if values.size == 0:
        return 0.0
    med = float(np.median(values))
    near = values[np.abs(values - med) <= half_width]
    return float(near.mean()) if near.size else med


def sharpness_map(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """|Laplacian| of the analysis-size grey, averaged down to ``size``: fine detail per place.

    Blur (a generator's progressive softening) takes it down everywhere; it is compared in the
    same places of anchor and current frame, so the content's own detail cancels out.
    """
    lap = cv2.Laplacian(gray, cv2.CV_16S, ksize=1)
    return cv2.resize(cv2.convertScaleAbs(lap), size, interpolation=cv2.INTER_AREA).astype(np.float32)


@dataclass(frozen=True)
class Registered:
    """The current frame against the anchor warped into it by the accumulated camera motion.

    Measured on the still background (the overlap less what the scene's own motion touched
    since the anchor; the whole overlap when too little is still), with medians so that what
    moves, blinks or is shaded in part of the picture does not count.
    """

    overlap: float  # share of the current frame the warped anchor covers
    background: float  # share of the overlap judged (still background); ncc, hist_sim and
    # changed_area are neutral (1, 1, 0) when under MIN_BACKGROUND of it is still
    ncc: float  # zero-mean NCC of blurred grey (structure)
    hist_sim: float  # 1 - Bhattacharyya of H-S histograms
    d_lightness: float  # median L*(current) - L*(anchor)
    chroma_ratio: float  # robust ΔC*ab / max(median C*ab of the anchor, CHROMA_FLOOR)
    white_balance: float  # |(median Δa*, median Δb*)|: a colour cast
    changed_area: float  # share where the blurred grey differs by > RESID_LEVEL beyond the median
    sharpness: float  # 1 - detail(current) / detail(anchor): detail lost (blur)


def registered_ncc(
    earlier: FrameFeatures, cur: FrameFeatures, transform: np.ndarray, moving: np.ndarray | None = None
) -> float:
    """Zero-mean NCC of blurred grey between ``earlier`` warped by ``transform`` (3x3, its pixels
    -> current pixels) and the current frame, on the still part of their overlap: structure
    only, a fraction of :func:`compare_registered`'s cost."""
    height, width = cur.blur.shape
    k = width / cur.gray.shape[1]
    scale = np.diag([k, k, 1.0])
    m = (scale @ transform @ np.linalg.inv(scale))[:2]
    warped = cv2.warpAffine(earlier.blur, m, (width, height), flags=cv2.INTER_LINEAR, borderValue=-1.0)
    sel = warped[::2, ::2] >= 0
    if moving is not None:
        still = sel & ~moving[::2, ::2]
        if still.sum() < MIN_BACKGROUND * sel.sum():
            return 1.0  # nearly everything moves: structure is not judged (as in compare_registered)
        sel = still
    if sel.sum() < 16:
        return 1.0
    a = warped[::2, ::2][sel]
    b = cur.blur[::2, ::2][sel]
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    return float(np.dot(a, b)) / denom if denom > 1e-6 else 1.0


def compare_registered(
    anchor: FrameFeatures,
    cur: FrameFeatures,
    transform: np.ndarray,
    *,
    moving: np.ndarray | None = None,
    anchor_detail: np.ndarray | None = None,
    detail: np.ndarray | None = None,
) -> Registered:
    """Warp ``anchor`` with ``transform`` (3x3, anchor -> current pixels); compare the overlap.

    ``moving`` (half size, current frame) marks what moved in the scene since the anchor;
    ``anchor_detail`` / ``detail`` are :func:`sharpness_map` of both frames.
    """
    height, width = cur.blur.shape
    full_w = cur.gray.shape[1]
    k = width / full_w
    # The transform is in analysis-size pixels; conjugate it to the half-size images.
    scale = np.diag([k, k, 1.0])
    m = (scale @ transform @ np.linalg.inv(scale))[:2]
    size = (width, height)
    warped_lab = cv2.warpAffine(anchor.lab, m, size, flags=cv2.INTER_LINEAR)
    warped_blur = cv2.warpAffine(anchor.blur, m, size, flags=cv2.INTER_LINEAR)
    ones = np.full((height, width), 255, np.uint8)
    mask = cv2.warpAffine(ones, m, size, flags=cv2.INTER_NEAREST)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8))
    overlap = float(np.count_nonzero(mask)) / mask.size
    if overlap < 0.02:
        return Registered(overlap, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    sel = mask > 0
    judged = sel
    structure = True  # whether the structure comparisons mean anything here
    if moving is not None:
        still = sel & ~moving
        if still.sum() >= MIN_BACKGROUND * sel.sum():
            judged = still
        else:
            # Nearly everything moves (water, a crowd, fast action): photometry still holds
            # on the whole overlap (medians), but structure is bound to differ from the anchor.
            structure = False
    background = float(judged.sum()) / max(1, int(sel.sum()))
    # Medians and means over every 2nd pixel each way: a quarter of the cost, the same values.
    sub = judged[::2, ::2]
    lab_a = warped_lab[::2, ::2][sub].astype(np.float32)
    lab_b = cur.lab[::2, ::2][sub].astype(np.float32)
    d_lab = lab_b - lab_a
    d_lightness = _central_mean(d_lab[:, 0]) * 100.0 / 255.0
    da, db = _central_mean(d_lab[:, 1]), _central_mean(d_lab[:, 2])
    chroma_a = np.hypot(lab_a[:, 1] - 128.0, lab_a[:, 2] - 128.0)
    chroma_b = np.hypot(lab_b[:, 1] - 128.0, lab_b[:, 2] - 128.0)
    # ΔC* grows with C* (a saturation change scales it), so the median ΔC* is the change of the
    # median pixel: divide by the median C*, not the mean (bright colours would dilute it).
    chroma_ratio = _central_mean(chroma_b - chroma_a) / max(CHROMA_FLOOR, float(np.median(chroma_a)))
    ncc, hist_sim, changed_area = 1.0, 1.0, 0.0
    if structure:
        diff = cur.blur[::2, ::2] - warped_blur[::2, ::2]
        a, b = warped_blur[::2, ::2][sub], cur.blur[::2, ::2][sub]
        changed = np.abs(diff - float(np.median(b - a))) > RESID_LEVEL
        # A region that morphs is an area; what motion leaves misregistered (grass swaying,
        # the rim of a character who moves slowly, a branch in parallax, fine texture a pixel
        # off) is speckle and bands a few pixels wide. An opening keeps areas at least
        # CHANGED_MIN_PX across and drops those (on the bunny clip that gets out of its burrow:
        # 0.099 of the background "changed" before, 0.019 after; a morph keeps 0.08-0.15).
        changed = cv2.morphologyEx((changed & sub).astype(np.uint8), cv2.MORPH_OPEN, _OPEN_KERNEL) > 0
        changed_area = float(changed[sub].mean())
        a = a - a.mean()
        b = b - b.mean()
        denom = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
        ncc = float(np.dot(a, b)) / denom if denom > 1e-6 else 1.0
        judged_u8 = judged.astype(np.uint8) * 255
        hsv_a = cv2.cvtColor(cv2.warpAffine(anchor.small, m, size, flags=cv2.INTER_LINEAR), cv2.COLOR_BGR2HSV)
        hist_sim = 1.0 - bhattacharyya(hs_hist(hsv_a, judged_u8), hs_hist(cur.hsv, judged_u8))
    sharpness = 0.0
    if anchor_detail is not None and detail is not None:
        before = float(cv2.warpAffine(anchor_detail, m, size, flags=cv2.INTER_LINEAR)[judged].mean())
        after = float(detail[judged].mean())
        sharpness = 1.0 - after / before if before > 1.0 else 0.0
    return Registered(
        overlap=overlap,
        background=background,
        ncc=ncc,
        hist_sim=hist_sim,
        d_lightness=d_lightness,
        chroma_ratio=chroma_ratio,
        white_balance=math.hypot(da, db),  # 8-bit Lab keeps a* and b* at their own scale
        changed_area=changed_area,
        sharpness=sharpness,
    )


def thumbnail(gray: np.ndarray) -> np.ndarray:
    """A 32x18 zero-mean grey thumbnail of ``gray`` (the half-size grey will do), for the loop
    check (an exposure change cancels)."""
    small = cv2.resize(gray, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32)
    return small - small.mean()


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
    # The interior in one vectorised call over sliding windows; the shrinking ends one by one.
    if arr.size > 2 * half:
        windows = np.lib.stride_tricks.sliding_window_view(arr, 2 * half + 1)
        out[half : arr.size - half] = np.median(windows, axis=1)
    for i in (*range(min(half, arr.size)), *range(max(half, arr.size - half), arr.size)):
        out[i] = np.median(arr[max(0, i - half) : i + half + 1])
    return out
