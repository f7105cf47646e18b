"""Seam continuity: is the join between two runs of frames a visible jump?

Holds the seam rule of ``shared/reference/drift-metrics.md`` §4.1 as pure functions over
per-pair series (``PairSeries``): the join pair's signals are compared with the frame-to-frame
baseline of the ±0.5 s around it by robust z-scores (median / MAD) *and* absolute floors, so a
signal fires only when it is both unusual for this footage and big enough to see. Also the
scanner that applies a stricter form of the rule at every pair of a clip (hard cuts, jumps),
and the 1-s histogram transition locator (cross-fades). What does not live here: decoding and
computing the series (``judge.py``, ``signals.py``), the regeneration policy (``decide.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field

from composer.analysis.signals import PairMetrics, robust_z
from composer.models import Frozen

Verdict = Literal["ok", "warn", "regenerate"]
_RANK: dict[str, int] = {"ok": 0, "warn": 1, "regenerate": 2}

#: Signals of the seam rule, in report order.
SIGNALS = (
    "hist_dist",
    "d_lightness",
    "d_chroma",
    "vel_jump",
    "scale_jump",
    "vel_step",
    "resid_area",
    "warp_resid",
)


class SignalRule(Frozen):
    """One signal's noise floor for the z-score and the absolute size it must also reach."""

    spread: float = Field(
        description="Added to 1.4826*MAD so a very quiet baseline cannot make tiny changes huge."
    )
    floor: float = Field(description="Absolute size below which the signal never fires.")
    enabled: bool = True


def _default_rules() -> dict[str, SignalRule]:
    # Reference §4.1 (480 px wide units). vel_* are px/frame at 480 w, scale_jump is %.
    return {
        "hist_dist": SignalRule(spread=0.01, floor=0.10),
        "d_lightness": SignalRule(spread=0.15, floor=1.5),
        "d_chroma": SignalRule(spread=0.15, floor=1.5),
        "vel_jump": SignalRule(spread=0.15, floor=1.0),
        "scale_jump": SignalRule(spread=0.05, floor=0.5),
        "vel_step": SignalRule(spread=0.15, floor=1.0),
        "resid_area": SignalRule(spread=0.005, floor=0.02),
        "warp_resid": SignalRule(spread=0.2, floor=3.0),
    }


class SeamThresholds(Frozen):
    """The seam rule's levels (defaults: reference §4.6; 0/150 false alarms on clean seams there)."""

    window_s: float = Field(0.5, description="Baseline: this much footage on each side of the join.")
    warn_z: float = 5.0
    regenerate_z: float = 6.0
    warp_resid_z: float = Field(12.0, description="warp_resid is a backup signal and needs a much higher z.")
    step_pairs: int = Field(6, description="Pairs on each side whose median velocity vel_step compares.")
    min_baseline: int = Field(6, description="Fewer baseline pairs than this: the seam is not scored.")
    signals: dict[str, SignalRule] = Field(default_factory=_default_rules)

    @classmethod
    def scanner(cls) -> SeamThresholds:
        """The conservative form used at every pair inside a clip (see docs/analysis.md).

        Scanning ~480 pairs per 20 s clip multiplies the chances of a false alarm, so z is
        raised to 8 and the floors doubled; vel_step (a change of camera speed) is off because
        a camera may ease in or out inside a shot.
        """
        rules = {
            name: SignalRule(spread=rule.spread, floor=rule.floor * 2, enabled=name != "vel_step")
            for name, rule in _default_rules().items()
        }
        return cls(warn_z=8.0, regenerate_z=8.0, warp_resid_z=16.0, signals=rules)


@dataclass
class PairSeries:
    """Per-pair signals of a run of frames (pair i joins frame i and frame i+1).

    Scalars only: a whole clip's series is a few hundred bytes per frame.
    """

    hist_dist: list[float] = field(default_factory=list)
    d_lightness: list[float] = field(default_factory=list)
    d_chroma: list[float] = field(default_factory=list)
    vx: list[float] = field(default_factory=list)
    vy: list[float] = field(default_factory=list)
    log_scale: list[float] = field(default_factory=list)
    resid_area: list[float] = field(default_factory=list)
    warp_resid: list[float] = field(default_factory=list)
    still_diff: list[float] = field(default_factory=list)
    inliers: list[float] = field(default_factory=list)

    def append(self, pair: PairMetrics, steps: float = 1.0) -> None:
        """Add the next pair; ``steps`` is how many nominal frame steps apart its frames are.

        Camera motion is divided by ``steps`` so that a pair one step short (the fast scan's
        frames are not evenly spaced) does not read as a jump of a steady pan.
        """
        self.hist_dist.append(pair.hist_dist)
        self.d_lightness.append(abs(pair.d_lightness))
        self.d_chroma.append(abs(pair.d_chroma))
        self.vx.append(pair.motion.vx / steps)
        self.vy.append(pair.motion.vy / steps)
        self.log_scale.append(math.log(max(pair.motion.scale, 1e-6)) / steps)
        self.resid_area.append(pair.motion.resid_area)
        self.warp_resid.append(pair.motion.warp_resid)
        self.still_diff.append(pair.motion.still_diff)
        self.inliers.append(pair.motion.inliers)

    def __len__(self) -> int:
        return len(self.hist_dist)

    def derived(self) -> dict[str, np.ndarray]:
        """Per-pair arrays of every seam signal except vel_step (NaN where undefined)."""
        n = len(self)
        v = np.stack([np.asarray(self.vx), np.asarray(self.vy)], axis=1) if n else np.zeros((0, 2))
        ls = np.asarray(self.log_scale)
        vel_jump = np.full(n, np.nan)
        scale_jump = np.full(n, np.nan)
        if n >= 3:
            # Second difference of the camera path: a pop shows here, a steady pan does not.
            vel_jump[1:-1] = np.linalg.norm(v[1:-1] - (v[:-2] + v[2:]) / 2, axis=1)
            scale_jump[1:-1] = 100.0 * np.abs(ls[1:-1] - (ls[:-2] + ls[2:]) / 2)
        return {
            "hist_dist": np.asarray(self.hist_dist),
            "d_lightness": np.asarray(self.d_lightness),
            "d_chroma": np.asarray(self.d_chroma),
            "vel_jump": vel_jump,
            "scale_jump": scale_jump,
            "resid_area": np.asarray(self.resid_area),
            "warp_resid": np.asarray(self.warp_resid),
            "v": v,
        }


class SignalScore(Frozen):
    value: float
    baseline: float = Field(description="Median of the signal over the baseline pairs.")
    z: float
    floor: float
    level: Verdict = Field(description="What this signal alone says.")


class SeamResult(Frozen):
    """The verdict on one join, with every signal's numbers."""

    t_s: float | None = Field(
        None, description="Time of the first frame after the join (clip time), if known."
    )
    verdict: Verdict
    fired: list[str] = Field(description="Signals at warn or regenerate level.")
    severity: float = Field(
        description="Worst fired signal's min(z / regenerate z, value / floor); >= 1 regenerates."
    )
    baseline_pairs: int
    signals: dict[str, SignalScore]


def _level(z: float, value: float, rule: SignalRule, warn_z: float, regen_z: float) -> Verdict:
    if not rule.enabled or value < rule.floor or not math.isfinite(z):
        return "ok"
    if z >= regen_z:
        return "regenerate"
    return "warn" if z >= warn_z else "ok"


def score_join(
    derived: dict[str, np.ndarray],
    join: int,
    window: int,
    thresholds: SeamThresholds,
    t_s: float | None = None,
) -> SeamResult:
    """Apply the seam rule to pair ``join`` of ``derived`` (from ``PairSeries.derived``).

    ``window`` is the number of pairs on each side that form the baseline (0.5 s of frames);
    the join pair and its two neighbours are left out of it because a jump leaks into the
    second differences of its neighbours.
    """
    n = len(derived["hist_dist"])
    lo, hi = max(0, join - window), min(n, join + window + 1)
    base_idx = [i for i in range(lo, hi) if abs(i - join) > 1]
    scores: dict[str, SignalScore] = {}
    fired: list[str] = []
    verdict: Verdict = "ok"
    severity = 0.0
    for name in SIGNALS:
        rule = thresholds.signals[name]
        if name == "vel_step":
            value, base_med, z = _vel_step(derived["v"], join, lo, hi, thresholds.step_pairs, rule.spread)
        else:
            series = derived[name]
            value = float(series[join])
            base = series[base_idx]
            base = base[np.isfinite(base)]
            base_med = float(np.median(base)) if base.size else 0.0
            z = robust_z(value, base, rule.spread) if math.isfinite(value) else float("nan")
        warn_z, regen_z = thresholds.warn_z, thresholds.regenerate_z
        if name == "warp_resid":
            warn_z = regen_z = thresholds.warp_resid_z
        level = _level(z, value, rule, warn_z, regen_z) if len(base_idx) >= thresholds.min_baseline else "ok"
        if level != "ok":
            fired.append(name)
            severity = max(severity, min(z / regen_z, value / rule.floor))
            if _RANK[level] > _RANK[verdict]:
                verdict = level
        scores[name] = SignalScore(
            value=_finite(value), baseline=_finite(base_med), z=_finite(z), floor=rule.floor, level=level
        )
    return SeamResult(
        t_s=t_s, verdict=verdict, fired=fired, severity=severity, baseline_pairs=len(base_idx), signals=scores
    )


def _finite(x: float) -> float:
    return float(x) if math.isfinite(x) else 0.0


def _vel_step(
    v: np.ndarray, join: int, lo: int, hi: int, k: int, spread: float
) -> tuple[float, float, float]:
    # Camera velocity before vs after the join (medians of k pairs each side), against the
    # pairs' spread around their own side's median.
    before, after = v[max(lo, join - k) : join], v[join + 1 : min(hi, join + 1 + k)]
    if len(before) < 2 or len(after) < 2:
        return 0.0, 0.0, 0.0
    step = float(np.linalg.norm(np.median(after, axis=0) - np.median(before, axis=0)))
    side_a, side_b = v[lo:join], v[join + 1 : hi]
    devs = np.concatenate(
        [
            np.linalg.norm(side_a - np.median(side_a, axis=0), axis=1),
            np.linalg.norm(side_b - np.median(side_b, axis=0), axis=1),
        ]
    )
    sigma = 1.4826 * float(np.median(devs))
    return step, 0.0, step / (sigma + spread)


def score_seam(
    series: PairSeries,
    join: int,
    fps: float,
    thresholds: SeamThresholds | None = None,
    t_s: float | None = None,
) -> SeamResult:
    """Score the join at pair ``join`` of ``series`` (frames ``join`` -> ``join + 1``)."""
    th = thresholds or SeamThresholds()
    window = max(3, round(th.window_s * fps))
    return score_join(series.derived(), join, window, th, t_s)


@dataclass(frozen=True)
class Event:
    """A discontinuity found by the scanner: pair index, the signals that fired, their values."""

    pair: int
    signals: dict[str, float]
    score: float


def scan(series: PairSeries, fps: float, thresholds: SeamThresholds | None = None) -> list[Event]:
    """Apply the (conservative) seam rule at every pair; one event per cluster of firing pairs.

    A jump makes its neighbours' second differences fire too, so firing pairs closer than the
    window are one event, placed at the pair whose fired signals are largest against their
    floors (the join itself).
    """
    th = thresholds or SeamThresholds.scanner()
    window = max(3, round(th.window_s * fps))
    derived = series.derived()
    hits: list[Event] = []
    for j in np.flatnonzero(_may_fire(derived, th)):
        result = score_join(derived, int(j), window, th)
        if result.verdict == "ok":
            continue
        values = {name: result.signals[name].value for name in result.fired}
        score = sum(values[name] / th.signals[name].floor for name in result.fired)
        hits.append(Event(pair=int(j), signals=values, score=score))
    return _cluster(hits, window)


def _may_fire(derived: dict[str, np.ndarray], th: SeamThresholds) -> np.ndarray:
    """The pairs where some signal reaches its floor: the only ones :func:`score_join` can flag.

    A signal below its floor is "ok" whatever its z-score, so the scanner skips the medians of
    every other pair (most of a clean clip's), with the very same events as scoring them all.
    """
    n = len(derived["hist_dist"])
    if th.signals["vel_step"].enabled:  # its value needs the medians themselves
        return np.ones(n, dtype=bool)
    hot = np.zeros(n, dtype=bool)
    for name, rule in th.signals.items():
        if rule.enabled and name != "vel_step":
            hot |= derived[name] >= rule.floor  # NaN (undefined) compares False, as in _level
    return hot


def _cluster(hits: Sequence[Event], gap: int) -> list[Event]:
    events: list[Event] = []
    group: list[Event] = []
    for hit in hits:
        if group and hit.pair - group[-1].pair > gap:
            events.append(max(group, key=lambda e: e.score))
            group = []
        group.append(hit)
    if group:
        events.append(max(group, key=lambda e: e.score))
    return events


#: The 1-s histogram distance a gradual transition must reach (besides its z-score).
TRANSITION_FLOOR = 0.2


def locate_transitions(
    distances: Sequence[float],
    lag: int,
    z_level: float = 8.0,
    floor: float = TRANSITION_FLOOR,
    spread: float = 0.01,
) -> list[tuple[int, float, float]]:
    """Gradual scene changes from the 1-s histogram distance series (reference §4.5).

    ``distances[i]`` is Bhattacharyya(hist_i, hist_{i-lag}) (NaN for i < lag). Returns
    ``(frame, distance, z)`` per transition: the frame half a lag before the peak, i.e. the
    middle of a fade that ends at the peak.
    """
    d = np.asarray(distances, dtype=np.float64)
    ok = np.isfinite(d)
    if ok.sum() < 3 * lag:
        return []  # too short to know what this clip's own variation looks like
    # The clip's own variation is the densest half of its samples (the shortest interval that
    # holds half of them), not the median and MAD of all: a fade lifts the 1-s distance for two
    # lags, which in a short take is half its samples, and drags a median-centred estimate up
    # with it. On samples without an event the two agree (the half-width of the median's
    # interval is the MAD).
    base = np.sort(d[ok])
    half = (base.size + 1) // 2
    widths = base[half - 1 :] - base[: base.size - half + 1]
    i = int(np.argmin(widths))
    med = float(base[i] + base[i + half - 1]) / 2
    sigma = 1.4826 * float(widths[i]) / 2 + spread
    z = np.where(ok, (d - med) / sigma, 0.0)
    hot = np.flatnonzero((z >= z_level) & (d >= floor))
    out: list[tuple[int, float, float]] = []
    start = 0
    while start < len(hot):
        end = start
        while end + 1 < len(hot) and hot[end + 1] - hot[end] <= lag:
            end += 1
        run = hot[start : end + 1]
        peak = int(run[np.argmax(d[run])])
        out.append((max(0, peak - lag // 2), float(d[peak]), float(z[peak])))
        start = end + 1
    return out
