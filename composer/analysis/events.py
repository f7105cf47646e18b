"""Defects that happen at a moment: exposure steps, flicker, freezes, reversed motion, loops.

Generators make these, and the seam rule's signals (jumps of position, zoom, colour) do not
see them: a freeze or a reversal moves nothing those signals measure, and a 4 % exposure step
is below their colour floors. Each detector here is a pure function of per-pair series the
scan already computes (the flow-compensated median gain, the warp residual, the flow field's
direction, the camera path) or of tiny thumbnails, so they cost almost nothing. Every level
is in ``EventThresholds`` with its reason. What does not live here: computing the series
(``signals.py``, ``judge.py``), drift against the anchor (``drift.py``), cuts and position
jumps (``seams.py``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from composer.analysis.signals import rolling_median
from composer.models import Frozen


class EventThresholds(Frozen):
    """Levels of the moment detectors, each with its reason (units: per pair of scanned frames)."""

    gain_step_pct: float = Field(
        2.0,
        description="|flow-compensated median gain| of one pair, %: clean real clips stay under 1.2, "
        "a 4-5 % exposure step reads 2.6-3.6.",
    )
    gain_z: float = Field(3.0, description="...and this many robust deviations above the clip's own pairs.")
    gain_spread_pct: float = Field(0.2, description="Floor added to the gain's MAD (compression noise).")
    flicker_steps: int = Field(
        3, description="Gain steps within flicker_window_s that make flicker, not a step."
    )
    flicker_window_s: float = 1.0
    freeze_ratio: float = Field(
        0.35,
        description="A frozen pair changes less than this share of the clip's median plain difference...",
    )
    freeze_level: float = Field(
        0.2,
        description="...and its 0.2-s rolling median less than this many grey levels (blurred, half size, "
        "*without* motion compensation). Over a repeated frame after x264 that median reads 0.02-0.15 "
        "(single pairs up to 0.8 where a keyframe or a B-frame re-codes the noise: hence the median); the "
        "slowest real motion on the clean real clips (animation at 0.2-0.5 px/frame) reads 0.28 or more. "
        "The warp residual cannot tell them apart: the flow explains slow motion as well as a repeat.",
    )
    freeze_median_s: float = Field(
        0.2, description="The plain difference is judged by its rolling median over this long (above)."
    )
    freeze_min_motion: float = Field(
        0.15,
        description="The clip's median plain difference must reach this: a shot where nothing changes (a "
        "tripod shot whose noise the encoder smoothed away reads 0.01-0.04) cannot be seen to freeze.",
    )
    freeze_s: float = Field(
        0.5,
        description="Shortest run of frozen pairs reported; animation holds on real footage last up to 0.4 s.",
    )
    reversal_inliers: float = Field(
        0.5,
        description="A zoom reversal needs the camera fit to explain at least this share of the flow "
        "(median over its four windows): below, the zoom it reads is the scene's own motion (a face leaning in and out of a "
        "handheld shot read as a zoom that turns back), not the camera's. Real zooms read 0.85-1.",
    )
    reversal_cos: float = Field(
        -0.5,
        description="Cosine of the mean flow field before and after a pair: below, the motion turned back.",
    )
    reversal_window_s: float = Field(
        0.2, description="Each window's flow fields are averaged over this long."
    )
    reversal_steady: float = Field(
        0.5,
        description="Cosine each side's two windows must keep: the motion was steady before and after the turn.",
    )
    reversal_flow_px: float = Field(
        0.45,
        description="RMS flow (px/frame at 480 w) both sides must keep: a turnaround through rest is natural, "
        "and flow on sensor noise or handheld shake of real clips stays under 0.4.",
    )
    zoom_reversal_pct: float = Field(
        0.05,
        description="Zoom rate (% per frame) both sides must keep for a zoom that turns back (0.1 = 2.5 %/s).",
    )
    reversal_keep: float = Field(
        0.5,
        description="...and the slower side at least this share of the faster (reversal keeps its speed).",
    )
    loop_ratio: float = Field(
        0.5,
        description="At a jump, a frame at least loop_min_back_s older this much closer than the previous "
        "frame makes it a loop (the picture went back in time).",
    )
    loop_min_back_s: float = 0.5


@dataclass(frozen=True)
class Moment:
    """A defect at a moment: the pair it begins at, its kind, the value that fired and its level."""

    pair: int
    kind: str  # brightness_step | flicker | freeze | reversal
    value: float
    threshold: float
    length_pairs: int = 1


def gain_events(gain_pct: Sequence[float], fps: float, th: EventThresholds) -> list[Moment]:
    """Exposure steps and flicker from the per-pair median gain (in %)."""
    g = np.asarray(gain_pct, dtype=np.float64)
    if g.size < 4:
        return []
    med = float(np.median(g))
    sigma = 1.4826 * float(np.median(np.abs(g - med))) + th.gain_spread_pct
    hot = np.flatnonzero((np.abs(g - med) >= th.gain_step_pct) & (np.abs(g - med) / sigma >= th.gain_z))
    window = max(2, round(th.flicker_window_s * fps))
    out: list[Moment] = []
    i = 0
    while i < hot.size:
        j = i
        while j + 1 < hot.size and hot[j + 1] - hot[i] < window:
            j += 1
        run = hot[i : j + 1]
        peak = float(np.max(np.abs(g[run] - med)))
        if run.size >= th.flicker_steps:
            out.append(
                Moment(int(run[0]), "flicker", round(peak, 3), th.gain_step_pct, int(run[-1] - run[0] + 1))
            )
        else:
            out.extend(
                Moment(int(k), "brightness_step", round(float(abs(g[k] - med)), 3), th.gain_step_pct)
                for k in run
            )
        i = j + 1
    return out


def freeze_events(still_diff: Sequence[float], fps: float, th: EventThresholds) -> list[Moment]:
    """Runs of pairs whose picture does not change at all (``Motion.still_diff``) in a clip
    that otherwise changes."""
    r = np.asarray(still_diff, dtype=np.float64)
    if r.size < 4:
        return []
    med = float(np.median(r))
    if med < th.freeze_min_motion:
        return []
    # A keyframe inside a frozen run re-codes the same picture with fresh quantisation noise,
    # and B-frames of a noisy picture flicker: single pairs of a freeze change as much as real
    # motion. Real motion changes every pair, so a short rolling median keeps it and drops them.
    window = max(3, round(th.freeze_median_s * fps) | 1)
    smooth = rolling_median(r, window)
    frozen = (smooth <= th.freeze_ratio * med) & (smooth <= th.freeze_level)
    shortest = max(2, round(th.freeze_s * fps))
    out: list[Moment] = []
    start = None
    for k, is_frozen in enumerate(frozen.tolist()):
        if is_frozen and start is None:
            start = k
        elif not is_frozen and start is not None:
            # A stall that the motion comes back from; a clip whose motion ends and stays
            # ended (a dissolve into a still picture) is not a freeze.
            if k - start >= shortest and start > 0:
                out.append(
                    Moment(start, "freeze", round((k - start) / fps, 3), round(shortest / fps, 3), k - start)
                )
            start = None
    return out


class FlowTurns:
    """Streams each pair's flow field; scores, two windows late, whether the motion turned back.

    Four windows of ``k`` pairs each (A, B, C, D), as mean flow fields: the motion turned back
    between B and C when their cosine is near -1 with both moving, and it was steady on both
    sides (A agrees with B, C with D). A handheld camera's shake also flips from one window to
    the next, but it flips back: it is never steady on both sides. Holds ``4 * k`` flow fields
    kept at every 4th pixel of the half size (a few hundred KB).
    """

    def __init__(self, k: int) -> None:
        self.k = max(1, k)
        self._flows: deque[np.ndarray] = deque(maxlen=4 * self.k)
        self.cos: list[float] = []  # B against C
        self.steady: list[float] = []  # the lesser of A against B and C against D
        self.rms: list[tuple[float, float]] = []  # (B, C), px per frame at 480 w

    def add(self, flow: np.ndarray | None, steps: float, px_to_ref: float) -> None:
        if flow is None:
            flow = np.zeros((1, 1, 2), np.float32)
        # Every 4th pixel each way: a direction and an RMS need no more, at 1/16 of the cost.
        flow = flow[::4, ::4] * (px_to_ref / max(steps, 1e-6))
        if self._flows and self._flows[-1].shape != flow.shape:
            self._flows.clear()
        self._flows.append(flow)
        if len(self._flows) < 4 * self.k:
            self.cos.append(1.0)
            self.steady.append(1.0)
            self.rms.append((0.0, 0.0))
            return
        flows = list(self._flows)
        k = self.k
        # Sums, not np.mean over a stacked copy: the cosines do not care about the scale.
        a, b, c, d = (sum(flows[n * k + 1 : (n + 1) * k], flows[n * k]) / k for n in range(4))
        size = b.shape[0] * b.shape[1]
        self.cos.append(_cosine(b, c))
        self.steady.append(min(_cosine(a, b), _cosine(c, d)))
        self.rms.append((math.sqrt(float(np.sum(b * b)) / size), math.sqrt(float(np.sum(c * c)) / size)))

    def events(self, th: EventThresholds) -> list[Moment]:
        """Reversals, at the first pair of the turned-back side (one per run of firing pairs)."""
        out: list[Moment] = []
        last = -10 * self.k
        for i, (cos, steady, (rb, rc)) in enumerate(zip(self.cos, self.steady, self.rms, strict=True)):
            slow, fast = min(rb, rc), max(rb, rc)
            if (
                cos <= th.reversal_cos
                and steady >= th.reversal_steady
                and slow >= th.reversal_flow_px
                and slow >= th.reversal_keep * fast
            ):
                pair = i - 2 * self.k + 1  # scored when window D's last pair arrived
                if pair - last > 2 * self.k:
                    out.append(Moment(max(0, pair), "reversal", round(cos, 3), th.reversal_cos))
                    last = pair
        return out


def _cosine(x: np.ndarray, y: np.ndarray) -> float:
    nx, ny = float(np.sum(x * x)), float(np.sum(y * y))
    return float(np.sum(x * y)) / math.sqrt(nx * ny) if nx > 0 and ny > 0 else 1.0


def zoom_reversals(
    log_scale: Sequence[float], inliers: Sequence[float], fps: float, th: EventThresholds
) -> list[Moment]:
    """A zoom that turns back: the median zoom rates of four windows A, B, C, D around a pair
    (B before it, C from it on) change sign between B and C, keep speed, and are steady on
    both sides (A agrees with B, C with D: a handheld camera's breathing is not). The flow
    field of a slow zoom is too small for :class:`FlowTurns`."""
    rate = 100.0 * np.asarray(log_scale, dtype=np.float64)  # % per frame
    held = np.asarray(inliers, dtype=np.float64)
    k = max(3, round(2 * th.reversal_window_s * fps))
    out: list[Moment] = []
    last = -4 * k
    for j in range(2 * k, rate.size - 2 * k + 1):
        a, b, c, d = (float(np.median(rate[j + n * k : j + (n + 1) * k])) for n in (-2, -1, 0, 1))
        slow, fast = sorted((abs(b), abs(c)))
        if (
            b * c < 0
            and a * b > 0
            and c * d > 0
            and slow >= th.zoom_reversal_pct
            and slow >= th.reversal_keep * fast
            and j - last > 2 * k
            and float(np.median(held[j - 2 * k : j + 2 * k])) >= th.reversal_inliers
        ):
            out.append(Moment(j, "reversal", round(c / b, 3), -th.reversal_keep))
            last = j
    return out


def loop_back(
    thumbs: Sequence[np.ndarray], times: Sequence[float], index: int, th: EventThresholds
) -> float | None:
    """At a jump into frame ``index``: how far back in time the picture went, or None.

    The frame is compared with the one before it and with every frame at least
    ``loop_min_back_s`` older; if an older one is much closer, the picture looped back to it.
    """
    if index < 1 or index >= len(thumbs):
        return None
    cur = thumbs[index]
    to_prev = float(np.mean(np.abs(cur - thumbs[index - 1])))
    best, when = math.inf, None
    for j in range(index - 1):
        if times[index] - times[j] < th.loop_min_back_s:
            break
        d = float(np.mean(np.abs(cur - thumbs[j])))
        if d < best:
            best, when = d, times[j]
    if when is None or best >= th.loop_ratio * to_prev:
        return None
    return round(times[index] - when, 3)
