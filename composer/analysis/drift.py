"""Drift inside a segment, against an anchor at its first analysed frame.

Holds the drift thresholds (``DriftThresholds``: every level with its reason), the streaming
tracker that compares every drift sample with the anchor *warped by the accumulated camera
motion* (so an intended pan or zoom is not read as drift) on the *still background* (what the
scene's own motion touched since the anchor is left out, so people, hands and traffic are not
drift), and its result: verdict, the metric that decided it, measured deltas, per-metric
onsets and curves over time for the report. Camera motion is judged against the shot's
camera plan (``composer.camera``): what the plan does not ask for is checked. What does not
live here: decoding, flow (``signals.py``), events in time (``events.py``), the regeneration
policy (``decide.py``) or drawing (``report/``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from composer.analysis.frames import REFERENCE_WIDTH
from composer.analysis.signals import (
    MOVING_PX,
    Alignment,
    FrameFeatures,
    Motion,
    align_to_anchor,
    compare_registered,
    make_flow,
    registered_ncc,
    rolling_median,
    sharpness_map,
    to3x3,
)
from composer.camera import CameraPlan
from composer.camera import parse as parse_camera
from composer.models import Frozen

Verdict = Literal["ok", "warn", "regenerate"]
_RANK: dict[str, int] = {"ok": 0, "warn": 1, "regenerate": 2}

#: The registered anchor is replaced by the current frame when less than this much overlaps.
MIN_OVERLAP = 0.35
#: ...or when a similarity explains less than this share of the flow from it: the camera
#: travels (parallax) or the scene changed too much to compare structure with it.
MIN_ALIGNED = 0.5


class DriftThresholds(Frozen):
    """Warn / regenerate levels (480 px wide, drift sampled at ~12 fps), each with its reason.

    Levels were set on ``benchmarks/bench_judge.py`` (real footage, clean and with generator
    defects) and checked on ``bench_drift.py`` (synthetic): see docs/analysis.md.
    """

    sample_fps: float = Field(12.0, description="Drift is sampled at about this rate.")
    end_fraction: float = Field(0.15, description="End window (FramePack-style start/end comparison).")
    rolling_s: float = Field(
        1.0,
        description="Rolling median before taking extremes: a change must hold about half of it to count.",
    )
    brightness_warn: float = Field(
        1.5,
        description="|robust ΔL*| on the still background; clean real clips stay under 0.8, a 5 % exposure "
        "ramp reads 1.65-2.8.",
    )
    brightness_regenerate: float = 3.0
    saturation_warn: float = Field(
        0.05,
        description="robust ΔC* / median C* (C* floored at 8, so grey shots do not swing); clean real clips "
        "stay under 0.04, a 10 % saturation ramp reads 0.05-0.09.",
    )
    saturation_regenerate: float = 0.12
    white_balance_warn: float = Field(
        3.0,
        description="|robust (Δa*, Δb*)|: a colour cast. Clean real clips stay under 1.4; an 8 % shift of red "
        "against blue reads 4.2-7 (and a VP8 realtime encode at 2 Mb/s drifts by 4 in 3 s).",
    )
    white_balance_regenerate: float = 4.0
    hist_sim_warn: float = Field(
        0.6, description="1 - Bhattacharyya (H-S) on the still background; below warns (content replaced)."
    )
    hist_sim_regenerate: float = 0.5
    ncc_warn: float = Field(
        0.6,
        description="Structural NCC on the still background, against the anchor and against the frame lag_s "
        "earlier (whichever is lower); below warns.",
    )
    ncc_regenerate: float = 0.4
    changed_area_warn: float = Field(
        0.06,
        description="Share of the still background whose structure no longer matches the anchor (morphing).",
    )
    changed_area_regenerate: float = 0.10
    sharpness_warn: float = Field(
        0.2,
        description="Share of the anchor's fine detail (|Laplacian|) lost in the same places (softening); a clean "
        "zoom in loses up to 0.09 (the picture is magnified).",
    )
    sharpness_regenerate: float = 0.3
    lag_s: float = Field(
        1.0, description="NCC is also taken against the frame this long ago: a 1-s dissolve breaks it."
    )
    dip_back_s: float = Field(
        0.5,
        description="A dip of that lagged NCC below ncc_warn is a scene change when the pictures from before "
        "it (its lag reference and up to this much older) do not come back after it. A dissolve's dip is "
        "short (0.6 s below 0.4 for a 1-s dissolve, too short for the rolling median), and so is a person "
        "passing in front of the camera; the occluder leaves the old picture behind, the dissolve does not. "
        "The references are older than the lag reference: the frames just before a dissolve's dip are "
        "already part-faded, and after an occluder has passed, the lag reference of the second dip it "
        "makes is the occluded frame.",
    )
    dip_watch_s: float = Field(0.5, description="How long after such a dip the old picture may come back.")
    dip_return: float = Field(
        0.4,
        description="The old picture came back when the NCC of a frame after the dip with one of those "
        "references reaches this: real footage changes by itself over 2 s (city footage 0.53 against the "
        "2-s-old frame), two different scenes read under 0.2.",
    )
    natural_s: float = Field(
        0.75,
        description="The structure checks (changed_area, ncc, hist_sim) learn the clip's own natural change "
        "over its first seconds: real scenes change from the start (people, traffic, leaves), a defect "
        "appears later.",
    )
    natural_factor: float = Field(
        2.0, description="A structure change must exceed this multiple of the natural change to count."
    )
    camera_warn: float = Field(
        1.0, description="|Σ centre translation| in % of width, when the plan has no move that translates."
    )
    camera_regenerate: float = 3.0
    zoom_warn: float = Field(
        3.0, description="|accumulated zoom| in %, when the plan has no zoom (nor a move that zooms)."
    )
    zoom_regenerate: float = 6.0
    roll_warn: float = Field(
        1.5, description="|accumulated roll| in degrees, when the plan has no roll (nor orbit, handheld)."
    )
    roll_regenerate: float = 3.0


@dataclass
class _Dip:
    """A dip of the lagged NCC being followed: when it began and ended, and the pictures from
    before it that would come back if something had only passed in front of them."""

    start: float
    refs: list[tuple[float, FrameFeatures, np.ndarray]]
    ended: float | None = None
    watched: int = 0


def camera_plan(text: str | None) -> CameraPlan | None:
    """The shot's camera plan (``composer.camera.parse``): None when the text says nothing."""
    return parse_camera(text)


class DriftMetric(Frozen):
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


class DriftCurve(Frozen):
    name: str
    unit: str
    t_s: list[float]
    values: list[float]
    warn: float | None = None
    regenerate: float | None = None
    higher_is_worse: bool = True


class DriftResult(Frozen):
    """The drift verdict for one clip and the numbers it was made on."""

    verdict: Verdict
    camera_planned: str | None = Field(
        description="The camera plan judged against: static, the moves (pan, zoom+pan, ...) or None (not said)."
    )
    worst: str | None = Field(description="The metric that decided the verdict (None when it is ok).")
    onset_s: float | None = Field(description="When the deciding metric first crossed its warn level.")
    onset_regenerate_s: float | None = Field(
        description="When the deciding metric first crossed its regenerate level."
    )
    samples: int
    deltas: dict[str, float] = Field(description="Measured deltas against the anchor (see docs/analysis.md).")
    metrics: list[DriftMetric]
    curves: list[DriftCurve] = Field(default_factory=list)


#: Curves kept per sample: name -> unit.
_CURVES = {
    "brightness": "ΔL*",
    "saturation": "ΔC/C",
    "white_balance": "Δa*b*",
    "hist_sim": "similarity",
    "ncc": "NCC",
    "changed_area": "share",
    "sharpness": "detail lost",
    "camera": "% width",
    "zoom": "%",
    "roll": "degrees",
    "overlap": "share",
    "background": "share",
    "aligned": "share",
}


#: Curves judged by their magnitude (a change either way is drift).
_MAGNITUDES = frozenset({"brightness", "saturation", "white_balance", "zoom", "roll"})


class DriftTracker:
    """Streams a clip's frames once; keeps only the anchor, the running transform and scalars.

    Call ``add_motion`` for every consecutive pair at the scan rate (camera motion is
    accumulated at full rate, which keeps it accurate, and so is the mask of what moved in the
    scene) and ``add_sample`` for the frames the drift is sampled at (about 12 fps).
    ``result()`` summarises.
    """

    def __init__(
        self,
        width: int,
        sample_fps: float,
        thresholds: DriftThresholds | None = None,
        camera_planned: CameraPlan | None = None,
        align_every: int = 1,
    ) -> None:
        self.th = thresholds or DriftThresholds()
        self.width = width
        # Samples between two direct alignments to the anchor (between them the frame-to-frame
        # chain carries the transform; its bias needs seconds to matter).
        self.align_every = max(1, align_every)
        self.sample_fps = sample_fps
        self.camera_planned = camera_planned
        self._anchor: FrameFeatures | None = None
        self._anchor_detail: np.ndarray | None = None
        self._transform = np.eye(3)  # anchor pixels -> current pixels
        self._flow = make_flow()
        self._aligned = Alignment(np.eye(3), 1.0)
        self._since_aligned = align_every  # the first sample is aligned
        self._carried_zoom = 0.0  # log zoom and roll of the anchors before this one
        self._carried_roll = 0.0
        self._carried_pos = np.zeros(2)  # px at 480 w
        self._moving: np.ndarray | None = None  # half size, current frame: moved since the anchor
        self._last_moving: np.ndarray | None = None  # the previous pair's own moving pixels
        # Carried over a re-anchor: L*, chroma ratio, colour cast, detail kept (a ratio).
        self._offsets = (0.0, 0.0, 0.0, 1.0)
        self._velocities: list[tuple[float, float]] = []
        # The frame-to-frame chain (never re-anchored) and the last second of samples on it:
        # the structure a second ago, which a dissolve into another scene breaks even while
        # its every sample re-anchors.
        self._chain = np.eye(3)
        self._recent: deque[tuple[float, FrameFeatures, np.ndarray]] = deque()
        self._lagged: list[float] = []  # per sample, NaN before lag_s
        self._dip: _Dip | None = None
        self._dips: list[tuple[float, float]] = []  # confirmed scene changes: (first, last sample time)
        self.reanchors = 0
        self._judged: dict[str, list[float]] = {}
        self.t: list[float] = []
        self.curves: dict[str, list[float]] = {k: [] for k in _CURVES}

    def add_motion(self, motion: Motion) -> None:
        self._transform = to3x3(motion.matrix) @ self._transform
        self._chain = to3x3(motion.matrix) @ self._chain
        self._velocities.append((motion.vx, motion.vy))
        if motion.local is not None:
            now = (motion.local > MOVING_PX).astype(np.uint8)
            # Moving means moving in two pairs running (near the same place): the flow's noise
            # comes and goes, and over seconds would otherwise mark a whole rigid picture.
            before, self._last_moving = self._last_moving, now
            if before is not None and before.shape == now.shape:
                now = now & cv2.dilate(before, np.ones((5, 5), np.uint8))
            if motion.unexplained is not None:
                now |= motion.unexplained.astype(np.uint8)
            if self._moving is not None and self._moving.shape == now.shape:
                # Carry what moved before along with the camera, then add what moves now.
                h, w = now.shape
                k = w / (self.width or w)
                m = np.array(motion.matrix, dtype=np.float64)
                m[:, 2] *= k
                now |= cv2.warpAffine(self._moving, m, (w, h), flags=cv2.INTER_NEAREST)
            self._moving = now

    def add_sample(self, t_s: float, features: FrameFeatures) -> None:
        h, w = features.blur.shape
        detail = sharpness_map(features.gray, (w, h))
        if self._anchor is None:
            self._set_anchor(features, detail)
        moving = None
        if self._moving is not None:
            moving = cv2.dilate(self._moving, np.ones((5, 5), np.uint8)).astype(bool)
        fresh = self._since_aligned + 1 >= self.align_every
        if fresh:
            self._aligned = align_to_anchor(self._anchor, features, self._transform, self._flow, moving)
            self._since_aligned = 0
        else:
            self._aligned = Alignment(self._transform, self._aligned.inliers)
            self._since_aligned += 1
        aligned = self._aligned
        self._transform = aligned.transform
        reg = compare_registered(
            self._anchor,
            features,
            self._transform,
            moving=moving,
            anchor_detail=self._anchor_detail,
            detail=detail,
        )
        ncc = reg.ncc
        keep = self.th.lag_s + self.th.dip_back_s
        while len(self._recent) > 1 and t_s - self._recent[1][0] >= keep - 1e-6:
            self._recent.popleft()
        old = [entry for entry in self._recent if t_s - entry[0] >= self.th.lag_s - 1e-6]
        lagged = math.nan
        if old:
            _, then, chain = old[-1]  # the newest at least lag_s old
            lagged = registered_ncc(then, features, self._chain @ np.linalg.inv(chain), moving)
            ncc = min(ncc, lagged)
        self._lagged.append(lagged)
        self._follow_dip(t_s, features, lagged, old, moving)
        self._recent.append((t_s, features, self._chain.copy()))
        dl0, dc0, wb0, kept0 = self._offsets
        brightness = dl0 + reg.d_lightness
        saturation = (1 + dc0) * (1 + reg.chroma_ratio) - 1
        white_balance = wb0 + reg.white_balance
        sharpness = 1 - kept0 * (1 - reg.sharpness)
        # The camera path from the aligned transform (anchor -> now), not the sum of frame-to-
        # frame fits: what moves in the scene or a biased fit cannot add up over the clip.
        t = self._transform
        a, b = t[0, 0], t[1, 0]
        zoom = self._carried_zoom + math.log(max(math.hypot(a, b), 1e-6))
        roll = self._carried_roll + math.degrees(math.atan2(b, a))
        h_full, w_full = features.gray.shape
        centre = np.array([w_full / 2.0, h_full / 2.0, 1.0])
        moved = (t @ centre)[:2] - centre[:2]
        pos = self._carried_pos + moved * (REFERENCE_WIDTH / w_full)
        # A misalignment is only decided on a sample that was aligned (the others repeat it).
        misaligned = fresh and aligned.inliers < MIN_ALIGNED
        if reg.overlap < MIN_OVERLAP or misaligned:
            # The camera has moved on: chain a new anchor. After a pan or zoom (the overlap ran
            # out, the alignment held) the photometric offsets are carried on; when the camera
            # travels (parallax) or the scene changed, the two anchors do not show the same
            # surfaces, so their difference is not drift and the chain starts again from here.
            self._carried_zoom, self._carried_roll, self._carried_pos = zoom, roll, pos
            self._set_anchor(features, detail)
            if not misaligned:
                self._offsets = (brightness, saturation, white_balance, 1 - sharpness)
            self.reanchors += 1
        cam = float(np.hypot(*pos)) / REFERENCE_WIDTH * 100.0
        self.t.append(round(t_s, 4))
        for key, value in (
            ("brightness", brightness),
            ("saturation", saturation),
            ("white_balance", white_balance),
            ("hist_sim", reg.hist_sim),
            ("ncc", ncc),
            ("changed_area", reg.changed_area),
            ("sharpness", sharpness),
            ("camera", cam),
            ("zoom", 100.0 * (math.exp(zoom) - 1.0)),
            ("roll", roll),
            ("aligned", aligned.inliers),
            ("overlap", reg.overlap),
            ("background", reg.background),
        ):
            self.curves[key].append(float(value))

    def _follow_dip(
        self,
        t_s: float,
        features: FrameFeatures,
        lagged: float,
        old: list[tuple[float, FrameFeatures, np.ndarray]],
        moving: np.ndarray | None,
    ) -> None:
        """Track a dip of the lagged NCC and decide, after it, whether the old picture came back."""
        th = self.th
        low = not math.isnan(lagged) and lagged < th.ncc_warn
        dip = self._dip
        if dip is None:
            if low and old:
                # Three references: the lag reference and up to dip_back_s older.
                refs = [*old[:: max(1, len(old) // 3)][:2], old[-1]]
                self._dip = _Dip(start=t_s, refs=refs)
            return
        if dip.ended is None:
            if low:
                return
            dip.ended = t_s
        back = max(
            registered_ncc(then, features, self._chain @ np.linalg.inv(chain), moving)
            for _, then, chain in dip.refs
        )
        dip.watched += 1
        if back >= th.dip_return:
            self._dip = None  # the old picture is back: something passed in front of it
        elif t_s - dip.ended >= th.dip_watch_s - 1e-6:
            self._dips.append((dip.start, dip.ended))
            self._dip = None

    def _dip_curve(self) -> np.ndarray:
        """The lagged NCC inside confirmed scene changes (1 elsewhere): judged without the
        rolling median, since the old picture not coming back is what shows the change holds."""
        dip = self._dip
        if dip is not None and dip.ended is not None and dip.watched >= 3:
            self._dips.append((dip.start, dip.ended))  # the clip ended before the watch did
            self._dip = None
        t = np.asarray(self.t)
        lagged = np.nan_to_num(np.asarray(self._lagged, dtype=np.float64), nan=1.0)
        out = np.ones_like(lagged)
        for start, end in self._dips:
            inside = (t >= start) & (t < end)
            out[inside] = lagged[inside]
        return out

    def _set_anchor(self, features: FrameFeatures, detail: np.ndarray) -> None:
        # The mask of what moved is kept: it is in the current frame's pixels, which the new
        # anchor is, and what was moving a moment ago still is (a fresh mask would let the
        # first samples after a re-anchor count every moving thing as changed).
        self._anchor, self._anchor_detail = features, detail
        self._transform = np.eye(3)

    def result(self, with_curves: bool = True) -> DriftResult:
        th = self.th
        n = len(self.t)
        plan = self.camera_planned
        label = plan.label if plan is not None else None
        if n == 0:
            return DriftResult(
                verdict="ok", camera_planned=label, worst=None, onset_s=None,
                onset_regenerate_s=None, samples=0, deltas={}, metrics=[],
            )  # fmt: skip
        window = max(1, round(th.rolling_s * self.sample_fps))
        end = max(1, math.ceil(th.end_fraction * n))
        dips = self._dip_curve()
        self._judged = {
            **self.curves,
            "sharpness": self._sharpness_kept(),
            "ncc": np.minimum(np.asarray(self.curves["ncc"]), dips).tolist(),
        }
        roll = {k: rolling_median(v, window) for k, v in self._judged.items()}
        roll["ncc"] = np.minimum(roll["ncc"], dips)
        c = {k: np.asarray(v) for k, v in self._judged.items()}
        deltas = {
            "brightness_end": float(np.mean(c["brightness"][-end:])),
            "brightness_max": float(np.max(np.abs(roll["brightness"]))),
            "saturation_end": float(np.mean(c["saturation"][-end:])),
            "saturation_max": float(np.max(np.abs(roll["saturation"]))),
            "white_balance_max": float(np.max(roll["white_balance"])),
            "hist_sim_min": float(np.min(roll["hist_sim"])),
            "ncc_min": float(np.min(roll["ncc"])),
            "changed_area_max": float(np.max(roll["changed_area"])),
            "sharpness_max": float(np.max(roll["sharpness"])),
            "camera_pct": float(np.max(c["camera"])),
            "zoom_pct": float(c["zoom"][-1]),
            "rotation_deg": float(c["roll"][-1]),
            "jitter_px": self._jitter(),
            "background_min": float(np.min(c["background"])),
            "reanchors": float(self.reanchors),
        }

        def level(name: str) -> tuple[float, np.ndarray]:
            # The larger of the end window and the worst rolling excursion, both as magnitudes.
            curve = np.abs(roll[name])
            return max(abs(float(np.mean(c[name][-end:]))), float(np.max(curve))), curve

        unplanned = plan is not None
        specs = [
            ("brightness", *level("brightness"), th.brightness_warn, th.brightness_regenerate, True, True),
            ("saturation", *level("saturation"), th.saturation_warn, th.saturation_regenerate, True, True),
            ("white_balance", *level("white_balance"), th.white_balance_warn, th.white_balance_regenerate, True, True),
            ("hist_sim", deltas["hist_sim_min"], roll["hist_sim"],
             *self._natural(roll["hist_sim"], th.hist_sim_warn, th.hist_sim_regenerate, False), False, True),
            ("ncc", deltas["ncc_min"], roll["ncc"], *self._natural(roll["ncc"], th.ncc_warn, th.ncc_regenerate, False),
             False, True),
            ("changed_area", deltas["changed_area_max"], roll["changed_area"],
             *self._natural(roll["changed_area"], th.changed_area_warn, th.changed_area_regenerate, True), True, True),
            ("sharpness", deltas["sharpness_max"], roll["sharpness"], th.sharpness_warn, th.sharpness_regenerate,
             True, True),
            ("camera", deltas["camera_pct"], c["camera"], th.camera_warn, th.camera_regenerate, True,
             unplanned and not plan.expects_translation),
            ("zoom", *level("zoom"), th.zoom_warn, th.zoom_regenerate, True, unplanned and not plan.expects_zoom),
            ("roll", *level("roll"), th.roll_warn, th.roll_regenerate, True, unplanned and not plan.expects_roll),
        ]  # fmt: skip
        metrics = [self._metric(*spec) for spec in specs]
        judged = [m for m in metrics if m.checked]
        # The verdict is the worst level reached; the metric that decided it is the most severe
        # among those at that level (never one that is still ok while another warns).
        decider = max(judged, key=lambda m: (_RANK[m.verdict], m.severity)) if judged else None
        if decider is not None and decider.verdict == "ok":
            decider = None
        curves: list[DriftCurve] = []
        if with_curves:
            levels = {m.name: m for m in metrics}
            for key, unit in _CURVES.items():
                m = levels.get(key)
                curves.append(DriftCurve(
                    name=key, unit=unit, t_s=list(self.t), values=[round(float(v), 5) for v in self._judged[key]],
                    warn=m.warn if m else None, regenerate=m.regenerate if m else None,
                    higher_is_worse=m.higher_is_worse if m else True,
                ))  # fmt: skip
        return DriftResult(
            verdict=decider.verdict if decider else "ok",
            camera_planned=label,
            worst=decider.name if decider else None,
            onset_s=decider.onset_warn_s if decider else None,
            onset_regenerate_s=decider.onset_regenerate_s if decider else None,
            samples=n,
            deltas={k: round(v, 6) for k, v in deltas.items()},
            metrics=metrics,
            curves=curves,
        )

    def _metric(
        self, name: str, value: float, curve: np.ndarray, warn: float, regen: float,
        higher_is_worse: bool, checked: bool,
    ) -> DriftMetric:  # fmt: skip
        unit = _CURVES[name]
        # An onset is where the rolling median has crossed *and* the sample itself has: the
        # centred median alone would place it up to half its window early.
        raw = np.asarray(self._judged[name])
        if higher_is_worse:
            raw = np.abs(raw) if name in _MAGNITUDES else raw
            severity = value / regen if regen else 0.0
            bad_w, bad_r = (curve >= warn) & (raw >= warn), (curve >= regen) & (raw >= regen)
            verdict: Verdict = "regenerate" if value >= regen else "warn" if value >= warn else "ok"
        else:
            # Similarities: badness is the distance from 1, relative to the regenerate level's.
            severity = (1.0 - value) / (1.0 - regen) if regen < 1 else 0.0
            bad_w, bad_r = (curve < warn) & (raw < warn), (curve < regen) & (raw < regen)
            verdict = "regenerate" if value < regen else "warn" if value < warn else "ok"
        return DriftMetric(
            name=name, value=round(float(value), 6), unit=unit, warn=warn, regenerate=regen,
            higher_is_worse=higher_is_worse, checked=checked, verdict=verdict if checked else "ok",
            severity=round(max(0.0, float(severity)), 6),
            onset_warn_s=self._first(bad_w), onset_regenerate_s=self._first(bad_r),
        )  # fmt: skip

    def _sharpness_kept(self) -> list[float]:
        """Detail lost against what the clip's first frames typically kept, not against the
        anchor alone. The anchor is usually a keyframe, which the encoder codes with more of
        the noise and finest texture than the frames between keyframes: with an IDR every
        second, every other frame of a clean clip reads 0.07-0.17 "lost" from the start, and
        0.2 by its end once a slow zoom adds its share. The median over the first
        ``natural_s`` (frames of every kind) is that coding loss; a blur ramp comes on top."""
        loss = np.asarray(self.curves["sharpness"], dtype=np.float64)
        t = np.asarray(self.t)
        early = loss[(t > t[0]) & (t <= t[0] + self.th.natural_s)] if t.size else loss[:0]
        if early.size < 2:
            return loss.tolist()
        kept = 1.0 - min(0.5, max(0.0, float(np.median(early))))
        return (1.0 - (1.0 - loss) / kept).tolist()

    def _natural(
        self, curve: np.ndarray, warn: float, regen: float, higher_is_worse: bool
    ) -> tuple[float, float]:
        """Warn and regenerate levels raised to ``natural_factor`` times the change the clip
        showed in its first ``natural_s`` (similarities: their distance from 1)."""
        t = np.asarray(self.t)
        early = curve[t <= t[0] + self.th.natural_s] if t.size else curve[:0]
        if early.size < 2:
            return warn, regen
        f = self.th.natural_factor
        if higher_is_worse:
            natural = float(np.max(early))
            return max(warn, f * natural), max(regen, f * natural)
        natural = 1.0 - float(np.min(early))
        return min(warn, 1.0 - f * natural), min(regen, 1.0 - f * natural)

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
