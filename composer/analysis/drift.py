"""Drift inside a segment, against an anchor window of its first analysed frames.

Holds the drift thresholds (``DriftThresholds``, reference §4.6), the mapping from a shot's
camera text to a plan (``camera_plan``), the streaming tracker that compares every drift
sample with the anchor *warped by the accumulated camera motion* (so an intended pan or zoom
is not read as drift), and its result: verdict, measured deltas, per-metric onset times and
curves over time for the report. What does not live here: decoding, flow (``metrics.py``),
the regeneration policy (``decide.py``) or drawing (``report/``).
"""

from __future__ import annotations

import math
import re
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from composer.analysis.frames import REFERENCE_WIDTH
from composer.analysis.metrics import (
    FrameFeatures,
    Motion,
    bhattacharyya,
    compare_registered,
    rolling_median,
    to3x3,
)

Verdict = Literal["ok", "warn", "regenerate"]
CameraPlan = Literal["static", "moving"]
_RANK: dict[str, int] = {"ok": 0, "warn": 1, "regenerate": 2}

#: The registered anchor is replaced by the current frame when less than this much overlaps.
MIN_OVERLAP = 0.35


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DriftThresholds(_Model):
    """Warn / regenerate levels (reference §4.6, 480 px wide, drift sampled at ~12 fps)."""

    anchor_frames: int = Field(10, description="Anchor window: the first N analysed frames.")
    sample_fps: float = Field(12.0, description="Drift is sampled at about this rate.")
    end_fraction: float = Field(0.15, description="End window (FramePack-style start/end comparison).")
    rolling_s: float = Field(0.5, description="Rolling median applied before taking extremes.")
    brightness_warn: float = Field(1.5, description="|ΔL*| (L* units).")
    brightness_regenerate: float = 3.0
    saturation_warn: float = Field(0.04, description="|ΔS/S| of mean HSV saturation.")
    saturation_regenerate: float = 0.08
    hist_sim_warn: float = Field(0.80, description="1 - Bhattacharyya on the overlap; below warns.")
    hist_sim_regenerate: float = 0.75
    ncc_warn: float = Field(0.8, description="Structural NCC on the overlap; below warns.")
    ncc_regenerate: float = 0.5
    camera_warn: float = Field(1.0, description="|Σ centre translation| in % of width, static plans only.")
    camera_regenerate: float = 3.0


_STATIC = re.compile(r"\b(static|locked[- ]?off|lock(ed)?[- ]down|tripod|fixed|still|stationary|no (camera )?(movement|motion))\b")
_MOVING = re.compile(
    r"\b(pan|pans|panning|tilt|tilts|zoom|zooms|zooming|dolly|truck|track|tracking|crane|orbit|orbits|"
    r"handheld|hand-held|push(es)?[- ]in|pull(s)?[- ](out|back)|follow|follows|arc|whip|drone|fly|flies|"
    r"rotate|rotates|moving|moves|travel|steadicam|gimbal)\b"
)


def camera_plan(text: str | None) -> CameraPlan | None:
    """Map a shot's camera text to a plan: "static", "moving", or None when it does not say.

    A move named anywhere wins ("static, then a slow pan left" moves), because camera drift
    is only checked on shots that must not move.
    """
    if not text:
        return None
    low = text.lower()
    if _MOVING.search(low):
        return "moving"
    if _STATIC.search(low):
        return "static"
    return None


class DriftMetric(_Model):
    name: str
    value: float
    unit: str
    warn: float
    regenerate: float
    higher_is_worse: bool
    checked: bool = Field(description="False: measured and shown, not judged (camera on a moving shot).")
    verdict: Verdict
    severity: float = Field(description="Oriented so that >= 1 means regenerate.")
    onset_warn_s: float | None = None
    onset_regenerate_s: float | None = None


class DriftCurve(_Model):
    name: str
    unit: str
    t_s: list[float]
    values: list[float]
    warn: float | None = None
    regenerate: float | None = None
    higher_is_worse: bool = True


class DriftResult(_Model):
    """The drift verdict for one clip and the numbers it was made on."""

    verdict: Verdict
    camera_planned: CameraPlan | None
    worst: str | None = Field(description="The metric with the highest severity.")
    onset_s: float | None = Field(description="When the worst metric first crossed its warn level.")
    onset_regenerate_s: float | None = Field(description="When the worst metric first crossed its regenerate level.")
    samples: int
    deltas: dict[str, float] = Field(description="Measured deltas against the anchor (see docs/analysis.md).")
    metrics: list[DriftMetric]
    curves: list[DriftCurve] = Field(default_factory=list)


class DriftTracker:
    """Streams a clip's frames once; keeps only the anchor, the running transform and scalars.

    Call ``add_motion`` for every consecutive pair at the scan rate (camera motion is
    accumulated at full rate, which keeps it accurate) and ``add_sample`` for the frames the
    drift is sampled at (about 12 fps). ``result()`` summarises.
    """

    def __init__(
        self, width: int, sample_fps: float, thresholds: DriftThresholds | None = None, camera_planned: CameraPlan | None = None
    ) -> None:
        self.th = thresholds or DriftThresholds()
        self.width = width
        self.sample_fps = sample_fps
        self.camera_planned = camera_planned
        self._anchor: FrameFeatures | None = None
        self._transform = np.eye(3)  # anchor pixels -> current pixels
        self._offsets = (0.0, 0.0, 0.0)  # carried L*, C ratio, S ratio after a re-anchor
        self._cache: list[FrameFeatures] = []  # hist/means of the anchor window (unregistered checks)
        self._pos = np.zeros(2)  # Σ centre translation, px at 480 w
        self._log_zoom = 0.0
        self._rotation = 0.0
        self._velocities: list[tuple[float, float]] = []
        self.reanchors = 0
        self.t: list[float] = []
        self.curves: dict[str, list[float]] = {
            k: [] for k in ("brightness", "saturation", "chroma", "hist_sim", "ncc", "camera", "overlap", "hist_sim_unregistered")
        }

    def add_motion(self, motion: Motion) -> None:
        self._transform = to3x3(motion.matrix) @ self._transform
        self._pos += (motion.vx, motion.vy)
        self._log_zoom += math.log(max(motion.scale, 1e-6))
        self._rotation += motion.rotation_deg
        self._velocities.append((motion.vx, motion.vy))

    def add_sample(self, t_s: float, features: FrameFeatures) -> None:
        if self._anchor is None:
            self._anchor = features
            self._transform = np.eye(3)
        if len(self._cache) < self.th.anchor_frames:
            self._cache.append(features)
        reg = compare_registered(self._anchor, features, self._transform)
        dl0, dc0, ds0 = self._offsets
        brightness = dl0 + reg.d_lightness
        chroma = (1 + dc0) * (1 + reg.chroma_ratio) - 1
        saturation = (1 + ds0) * (1 + reg.saturation_ratio) - 1
        if reg.overlap < MIN_OVERLAP:
            # The camera has moved on: chain a new anchor and carry the photometric offsets.
            self._anchor, self._transform = features, np.eye(3)
            self._offsets = (brightness, chroma, saturation)
            self.reanchors += 1
        unregistered = max(1.0 - bhattacharyya(c.hist, features.hist) for c in self._cache)
        cam = float(np.hypot(*self._pos)) / REFERENCE_WIDTH * 100.0
        self.t.append(round(t_s, 4))
        for key, value in (
            ("brightness", brightness),
            ("saturation", saturation),
            ("chroma", chroma),
            ("hist_sim", reg.hist_sim),
            ("ncc", reg.ncc),
            ("camera", cam),
            ("overlap", reg.overlap),
            ("hist_sim_unregistered", unregistered),
        ):
            self.curves[key].append(float(value))

    def result(self, with_curves: bool = True) -> DriftResult:
        th = self.th
        n = len(self.t)
        if n == 0:
            return DriftResult(
                verdict="ok", camera_planned=self.camera_planned, worst=None, onset_s=None,
                onset_regenerate_s=None, samples=0, deltas={}, metrics=[],
            )
        window = max(1, round(th.rolling_s * self.sample_fps))
        end = max(1, math.ceil(th.end_fraction * n))
        roll = {k: rolling_median(v, window) for k, v in self.curves.items()}
        c = {k: np.asarray(v) for k, v in self.curves.items()}
        deltas = {
            "brightness_end": float(np.mean(c["brightness"][-end:])),
            "brightness_max": float(np.max(np.abs(roll["brightness"]))),
            "saturation_end": float(np.mean(c["saturation"][-end:])),
            "saturation_max": float(np.max(np.abs(roll["saturation"]))),
            "chroma_end": float(np.mean(c["chroma"][-end:])),
            "hist_sim_min": float(np.min(roll["hist_sim"])),
            "ncc_min": float(np.min(roll["ncc"])),
            "camera_pct": float(np.max(c["camera"])),
            "zoom_pct": 100.0 * (math.exp(self._log_zoom) - 1.0),
            "rotation_deg": self._rotation,
            "jitter_px": self._jitter(),
            "hist_sim_unregistered_end": float(np.mean(c["hist_sim_unregistered"][-end:])),
            "reanchors": float(self.reanchors),
        }
        # Decision quantities: the larger of the end window and the worst rolling excursion.
        bright_abs = np.abs(roll["brightness"])
        sat_abs = np.abs(roll["saturation"])
        specs = [
            ("brightness", "L*", max(abs(deltas["brightness_end"]), deltas["brightness_max"]), bright_abs,
             th.brightness_warn, th.brightness_regenerate, True, True),
            ("saturation", "ratio", max(abs(deltas["saturation_end"]), deltas["saturation_max"]), sat_abs,
             th.saturation_warn, th.saturation_regenerate, True, True),
            ("hist_sim", "similarity", deltas["hist_sim_min"], roll["hist_sim"],
             th.hist_sim_warn, th.hist_sim_regenerate, False, True),
            ("ncc", "NCC", deltas["ncc_min"], roll["ncc"], th.ncc_warn, th.ncc_regenerate, False, True),
            ("camera", "% width", deltas["camera_pct"], c["camera"], th.camera_warn, th.camera_regenerate, True,
             self.camera_planned == "static"),
        ]
        metrics = [self._metric(*spec) for spec in specs]
        judged = [m for m in metrics if m.checked]
        worst = max(judged, key=lambda m: m.severity) if judged else None
        verdict: Verdict = max((m.verdict for m in judged), key=_RANK.__getitem__, default="ok")
        curves: list[DriftCurve] = []
        if with_curves:
            levels = {m.name: m for m in metrics}
            for key, unit in (("brightness", "ΔL*"), ("saturation", "ΔS/S"), ("chroma", "ΔC/C"),
                              ("hist_sim", "similarity"), ("ncc", "NCC"), ("camera", "% width"), ("overlap", "share")):
                m = levels.get(key)
                curves.append(DriftCurve(
                    name=key, unit=unit, t_s=list(self.t), values=[round(v, 5) for v in self.curves[key]],
                    warn=m.warn if m else None, regenerate=m.regenerate if m else None,
                    higher_is_worse=m.higher_is_worse if m else True,
                ))
        return DriftResult(
            verdict=verdict,
            camera_planned=self.camera_planned,
            worst=worst.name if worst and worst.verdict != "ok" else (worst.name if worst else None),
            onset_s=worst.onset_warn_s if worst else None,
            onset_regenerate_s=worst.onset_regenerate_s if worst else None,
            samples=n,
            deltas={k: round(v, 6) for k, v in deltas.items()},
            metrics=metrics,
            curves=curves,
        )

    def _metric(
        self, name: str, unit: str, value: float, curve: np.ndarray, warn: float, regen: float,
        higher_is_worse: bool, checked: bool,
    ) -> DriftMetric:
        if higher_is_worse:
            severity = value / regen if regen else 0.0
            bad_w, bad_r = curve >= warn, curve >= regen
            verdict: Verdict = "regenerate" if value >= regen else "warn" if value >= warn else "ok"
        else:
            # Similarities: badness is the distance from 1, relative to the regenerate level's.
            severity = (1.0 - value) / (1.0 - regen) if regen < 1 else 0.0
            bad_w, bad_r = curve < warn, curve < regen
            verdict = "regenerate" if value < regen else "warn" if value < warn else "ok"
        return DriftMetric(
            name=name, value=round(float(value), 6), unit=unit, warn=warn, regenerate=regen,
            higher_is_worse=higher_is_worse, checked=checked, verdict=verdict if checked else "ok",
            severity=round(max(0.0, float(severity)), 6),
            onset_warn_s=self._first(bad_w), onset_regenerate_s=self._first(bad_r),
        )

    def _first(self, mask: np.ndarray) -> float | None:
        hits = np.flatnonzero(mask)
        return float(self.t[int(hits[0])]) if hits.size else None

    def _jitter(self) -> float:
        # Std of the camera velocity around its 1-s moving average (px/frame at 480 w).
        if len(self._velocities) < 3:
            return 0.0
        v = np.asarray(self._velocities)
        k = max(1, min(len(v), round(self.sample_fps * 2)))
        kernel = np.ones(k) / k
        smooth = np.stack([np.convolve(v[:, i], kernel, mode="same") for i in range(2)], axis=1)
        return float(np.std(np.linalg.norm(v - smooth, axis=1)))
