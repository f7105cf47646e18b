"""Analyse any clip: one streaming pass gives its discontinuities, moments and drift verdict.

Holds ``analyze_clip`` (the JSON shape of ``composer analyze``: path, duration_s, fps,
frames_analyzed, discontinuities, drift, findings), the seam scores between consecutive clips
(``score_seams``) or at a time inside one clip (``score_seam_at``: a base clip and its
extension), and ``seam_from_frames`` for frames already in memory. Works on footage from
anywhere: ffmpeg applies rotation, squares pixels and makes variable frame rates even.
What does not live here: the per-frame signals (``signals.py``), thresholds (``seams.py``,
``drift.py``, ``events.py``), the CLI, the report, or the regeneration policy.
"""

from __future__ import annotations

import base64
import itertools
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from composer.analysis import frames as frames_mod
from composer.analysis.drift import DriftResult, DriftThresholds, DriftTracker
from composer.analysis.events import (
    EventThresholds,
    FlowTurns,
    Moment,
    freeze_events,
    gain_events,
    loop_back,
    zoom_reversals,
)
from composer.analysis.seams import (
    TRANSITION_FLOOR,
    PairSeries,
    SeamResult,
    SeamThresholds,
    locate_transitions,
    scan,
    score_seam,
)
from composer.analysis.signals import bhattacharyya, frame_features, make_flow, pair_metrics, thumbnail
from composer.camera import CameraPlan
from composer.camera import parse as parse_camera
from composer.errors import MediaError
from composer.models import Frozen

#: Below this share of the flow explained by the camera fit, a jump is a cut.
CUT_INLIERS = 0.5
#: Thumbnails for the explanations: this wide, one kept every THUMB_EVERY_S of clip.
THUMB_WIDTH = 160
THUMB_EVERY_S = 0.25


class Discontinuity(Frozen):
    """A place inside a clip where the picture jumps, cuts, freezes, flickers or turns back."""

    t_s: float = Field(description="Time of the first frame after the jump (or of the moment's start).")
    signals: dict[str, float] = Field(description="Signals that fired, with their measured values.")
    kind: str = Field(
        "jump",
        description="cut, jump, transition, loop, brightness_step, flicker, freeze or reversal.",
    )
    threshold: float | None = Field(
        None, description="The level the deciding signal (the first in signals) crossed."
    )


class Finding(Frozen):
    """Why a clip was flagged, for a person: which signal, when, how big against what level."""

    signal: str = Field(description="The drift metric (drift.<name>) or the moment's kind that fired.")
    verdict: Literal["warn", "regenerate"]
    t_s: float | None = Field(description="When it began (clip time).")
    value: float
    threshold: float = Field(description="The level it crossed (warn or regenerate, as the verdict).")
    unit: str
    explanation: str
    thumbnail: str | None = Field(None, description="data:image/jpeg;base64 frame at t_s, 160 px wide.")


class ClipAnalysis(Frozen):
    """One clip's analysis: the ``composer analyze --json`` record."""

    path: str
    duration_s: float
    fps: float
    frames_analyzed: int
    discontinuities: list[Discontinuity]
    drift: DriftResult
    findings: list[Finding] = Field(
        default_factory=list,
        description="Everything that was flagged, the deciding one first, with thumbnails.",
    )
    seam_with_next: SeamResult | None = Field(None, description="Only when a next clip was given.")


def analyze_clip(
    path: Path,
    *,
    seams_with_next: Path | None = None,
    camera_planned: CameraPlan | str | None = None,
    width: int = frames_mod.REFERENCE_WIDTH,
    drift_thresholds: DriftThresholds | None = None,
    seam_thresholds: SeamThresholds | None = None,
    scanner_thresholds: SeamThresholds | None = None,
    event_thresholds: EventThresholds | None = None,
    with_curves: bool = True,
    flow_preset: Literal["ultrafast", "fast"] = "ultrafast",
    resize: Literal["ffmpeg", "cv2"] = "ffmpeg",
    fast: bool = False,
) -> ClipAnalysis:
    """Stream ``path`` once at its own rate (capped at 30 fps), scaled to ``width``.

    Every consecutive pair gets flow, camera motion, the seam signals (scanned for
    discontinuities) and the moment signals (gain, residual, flow direction: steps, flicker,
    freezes, reversals); every frame at ~12 fps is compared with the motion-compensated
    anchor (drift). ``camera_planned`` is the shot's camera text or plan (``composer.camera``):
    camera motion it does not ask for is judged; None judges none. Only the current and
    previous frames, the anchor, a few flow fields, a 1-s ring of histograms and small
    thumbnails are held, plus a few scalars per frame.

    ``fast`` reads only the frames other frames refer to (about every other one, see
    :func:`frames_mod.reference_stream`): the decoder does a third less and the metrics half.
    The drift checks, which sample ~12 fps anyway, lose nothing; a jump or cut is still
    found, placed within a frame of where it is; flicker faster than the scan is not seen.
    """
    path = Path(path)
    plan = parse_camera(camera_planned) if isinstance(camera_planned, str) else camera_planned
    geo = frames_mod.geometry(path)
    size = geo.analysis_size(width)
    fps = geo.scan_fps() / 2 if fast else geo.scan_fps()  # the fast scan: every other frame, nominally
    dth = drift_thresholds or DriftThresholds()
    eth = event_thresholds or EventThresholds()
    # The fast scan samples drift at half the rate (6 fps): drift is slow by nature, and its
    # per-sample work (alignment to the anchor, the registered comparison) is half a frame's cost.
    sample_fps = dth.sample_fps / 2 if fast else dth.sample_fps
    step = max(1, round(float(fps) / sample_fps))
    # The fast scan aligns drift samples to their anchor every other sample (3 times a second).
    tracker = DriftTracker(size[0], float(fps) / step, dth, plan, align_every=2 if fast else 1)
    flow = make_flow(flow_preset)
    series = PairSeries()
    turns = FlowTurns(round(eth.reversal_window_s * float(fps)))
    gains: list[float] = []
    lag = max(1, round(float(fps)))  # 1 s, for the transition locator
    ring: deque[np.ndarray] = deque(maxlen=lag)
    dist_1s: list[float] = []
    times: list[float] = []
    thumbs: list[np.ndarray] = []
    pictures: dict[float, np.ndarray] = {}
    prev = None
    if fast:
        frames = frames_mod.reference_stream(path, size)
    else:
        frames = frames_mod.stream(path, size, fps, resize=resize)
    for frame in frames:
        feats = frame_features(frame.bgr)
        if prev is not None:
            pair = pair_metrics(prev, feats, flow)
            # Even spacing in the full scan; in the fast one a pair is usually one step (two
            # frames) apart, sometimes half a step or one and a half.
            steps = min(4.0, max(0.25, (frame.t_s - times[-1]) * float(fps))) if fast else 1.0
            series.append(pair, steps=steps)
            tracker.add_motion(pair.motion)
            gains.append(100.0 * pair.motion.gain)
            flow_w = pair.motion.flow.shape[1] if pair.motion.flow is not None else size[0]
            turns.add(pair.motion.flow, steps, frames_mod.REFERENCE_WIDTH / flow_w)
        dist_1s.append(bhattacharyya(ring[0], feats.hist) if len(ring) == lag else float("nan"))
        ring.append(feats.hist)
        thumbs.append(thumbnail(feats.small_gray))
        if frame.index % step == 0:
            tracker.add_sample(frame.t_s, feats)
        if not pictures or frame.t_s - next(reversed(pictures)) >= THUMB_EVERY_S - 1e-6:
            h = round(THUMB_WIDTH * size[1] / size[0])
            pictures[frame.t_s] = cv2.resize(frame.bgr, (THUMB_WIDTH, h), interpolation=cv2.INTER_AREA)
        times.append(frame.t_s)
        prev = feats
    if not times:
        raise MediaError(f"{path} has no frames to analyse")
    found = _discontinuities(series, float(fps), scanner_thresholds, dist_1s, lag, times, thumbs, eth)
    found = _with_moments(found, _moments(gains, series, turns, float(fps), eth, times))
    seam = (
        score_seam_between(path, seams_with_next, width=width, thresholds=seam_thresholds)
        if seams_with_next
        else None
    )
    duration = geo.duration_s if geo.duration_s else len(times) / float(fps)
    drift = tracker.result(with_curves=with_curves)
    return ClipAnalysis(
        path=str(path),
        duration_s=round(float(duration), 4),
        fps=round(float(geo.fps), 4),
        frames_analyzed=len(times),
        discontinuities=found,
        drift=drift,
        findings=findings(drift, found, pictures),
        seam_with_next=seam,
    )


def _discontinuities(
    series: PairSeries,
    fps: float,
    thresholds: SeamThresholds | None,
    dist_1s: list[float],
    lag: int,
    times: list[float],
    thumbs: list[np.ndarray],
    eth: EventThresholds,
) -> list[Discontinuity]:
    """Cuts and jumps (the scanner), loops among them, and gradual transitions."""
    found: list[Discontinuity] = []
    th = thresholds or SeamThresholds.scanner()
    for event in scan(series, fps, th):
        index = event.pair + 1
        # The deciding signal first: the one furthest past its floor.
        order = sorted(event.signals, key=lambda n: -event.signals[n] / th.signals[n].floor)
        signals = _round({n: event.signals[n] for n in order})
        back = loop_back(thumbs, times, index, eth)
        # A cut changes the content (the histogram or the area no motion explains jumps) and
        # leaves nothing the flow can follow (the share its camera fit explains collapses); a
        # jump of the camera, however sharp, keeps the content.
        content = "hist_dist" in signals or "resid_area" in signals
        kind = "cut" if content and series.inliers[event.pair] < CUT_INLIERS else "jump"
        if back is not None:
            signals["loop_back_s"] = back
            kind = "loop"
        found.append(
            Discontinuity(
                t_s=round(times[index], 4), signals=signals, kind=kind, threshold=th.signals[order[0]].floor
            )
        )
    for index, distance, z in locate_transitions(dist_1s, lag):
        if any(abs(d.t_s - times[index]) < 1.0 for d in found):
            continue  # a cut already reported there also moves the 1-s histogram distance
        signals = {"transition": round(distance, 5), "transition_z": round(z, 2)}
        found.append(
            Discontinuity(
                t_s=round(times[index], 4), signals=signals, kind="transition", threshold=TRANSITION_FLOOR
            )
        )
    return found


def _moments(
    gains: list[float],
    series: PairSeries,
    turns: FlowTurns,
    fps: float,
    eth: EventThresholds,
    times: list[float],
) -> list[Discontinuity]:
    """Exposure steps, flicker, freezes and reversals, one per place."""
    moments: list[Moment] = [
        *gain_events(gains, fps, eth),
        *freeze_events(series.still_diff, fps, eth),
        *turns.events(eth),
        *zoom_reversals(series.log_scale, series.inliers, fps, eth),
    ]
    out: list[Discontinuity] = []
    for m in moments:
        t = round(times[min(len(times) - 1, m.pair + 1)], 4)
        if any(abs(d.t_s - t) < 0.5 for d in out):
            continue
        signals = {m.kind: m.value}
        if m.length_pairs > 1:
            signals[f"{m.kind}_s"] = round(m.length_pairs / fps, 3)
        out.append(Discontinuity(t_s=t, signals=signals, kind=m.kind, threshold=m.threshold))
    return out


def _with_moments(found: list[Discontinuity], moments: list[Discontinuity]) -> list[Discontinuity]:
    """One report per place: a moment takes the place of a plain jump beside it, keeping the
    jump's signals (an exposure step or a motion turning back also moves the jump signals; the
    moment says what happened), while a cut, loop or transition stands and the moment beside
    it is dropped."""
    jumps = [d for d in found if d.kind == "jump"]
    kept = [d for d in found if d.kind != "jump"]
    out = [m for m in moments if not any(abs(d.t_s - m.t_s) < 0.5 for d in kept)]
    for i, m in enumerate(out):
        near = [j for j in jumps if abs(j.t_s - m.t_s) < 0.5]
        if near:
            merged = {k: v for j in near for k, v in j.signals.items()}
            out[i] = m.model_copy(update={"signals": {**m.signals, **merged}})
    kept += out
    kept += [j for j in jumps if not any(abs(j.t_s - m.t_s) < 0.5 for m in out)]
    return sorted(kept, key=lambda d: d.t_s)


_EXPLAIN = {
    "cut": "the picture cuts to other content",
    "jump": "the picture jumps (position, zoom or colour) from one frame to the next",
    "loop": "the picture jumps back in time to an earlier frame",
    "transition": "the picture dissolves into other content",
    "brightness_step": "the whole picture's exposure steps from one frame to the next",
    "flicker": "the exposure flickers up and down over several frames",
    "freeze": "the picture freezes while the rest of the clip moves",
    "reversal": "the motion turns back and plays in reverse",
}
_DRIFT_EXPLAIN = {
    "brightness": "the still background got brighter or darker",
    "saturation": "colours grew stronger or weaker",
    "white_balance": "a colour cast crept in",
    "hist_sim": "the background's colours were replaced",
    "ncc": "the background's structure no longer matches how the clip began",
    "changed_area": "part of the still background turned into other content",
    "sharpness": "the picture went soft (fine detail lost)",
    "camera": "the camera moved although the shot asks for no such move",
    "zoom": "the camera zoomed although the shot asks for no zoom",
    "roll": "the camera rolled although the shot asks for no roll",
}


def findings(
    drift: DriftResult, found: Sequence[Discontinuity], pictures: dict[float, np.ndarray] | None = None
) -> list[Finding]:
    """Everything flagged, most decisive first: moments (always regenerate), then drift metrics
    at their levels; each with its onset, value against level, and a thumbnail at that moment."""
    out: list[Finding] = []
    for d in found:
        name, value = next(iter(d.signals.items()))
        out.append(Finding(
            signal=d.kind, verdict="regenerate", t_s=d.t_s, value=value, threshold=d.threshold or 0.0, unit=name,
            explanation=f"{_EXPLAIN.get(d.kind, d.kind)} at {d.t_s:.2f} s ({_signals_text(d.signals)}"
            + (f"; level {d.threshold:g})" if d.threshold is not None else ")"),
        ))  # fmt: skip
    metrics = sorted(
        (m for m in drift.metrics if m.checked and m.verdict != "ok"),
        key=lambda m: (m.name != drift.worst, -m.severity),
    )
    for m in metrics:
        level = m.regenerate if m.verdict == "regenerate" else m.warn
        when = m.onset_regenerate_s if m.verdict == "regenerate" else m.onset_warn_s
        side = "below" if not m.higher_is_worse else "above"
        out.append(Finding(
            signal=f"drift.{m.name}", verdict=m.verdict, t_s=when, value=m.value, threshold=level, unit=m.unit,
            explanation=f"{_DRIFT_EXPLAIN.get(m.name, m.name)}: {m.name} {m.value:.3g} {m.unit} is {side} "
            f"the {m.verdict} level {level:g}" + (f" from {when:.2f} s" if when is not None else ""),
        ))  # fmt: skip
    if pictures:
        out = [f.model_copy(update={"thumbnail": _thumb_at(pictures, f.t_s)}) for f in out]
    return out


def _signals_text(signals: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in signals.items())


def _thumb_at(pictures: dict[float, np.ndarray], t_s: float | None) -> str | None:
    if t_s is None:
        return None
    nearest = min(pictures, key=lambda t: abs(t - t_s))
    ok, jpeg = cv2.imencode(".jpg", pictures[nearest], [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode("ascii") if ok else None


def _round(values: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 5) for k, v in values.items()}


def seam_from_frames(
    before: Sequence[np.ndarray],
    after: Sequence[np.ndarray],
    fps: float,
    thresholds: SeamThresholds | None = None,
    t_s: float | None = None,
    flow_preset: Literal["ultrafast", "fast"] = "ultrafast",
) -> SeamResult:
    """Score the join between the last frame of ``before`` and the first of ``after``.

    Both lists hold same-sized BGR frames (0.5 s + 1 frame on each side is what the rule
    uses); the join pair is ``before[-1] -> after[0]``.
    """
    if not before or not after:
        raise ValueError("a seam needs frames on both sides")
    flow = make_flow(flow_preset)
    series = PairSeries()
    prev = None
    for bgr in [*before, *after]:
        feats = frame_features(bgr)
        if prev is not None:
            series.append(pair_metrics(prev, feats, flow))
        prev = feats
    return score_seam(series, len(before) - 1, fps, thresholds, t_s)


def _window_frames(fps: float, thresholds: SeamThresholds) -> int:
    return max(3, round(thresholds.window_s * fps)) + 1


def score_seam_between(
    a: Path, b: Path, *, width: int = frames_mod.REFERENCE_WIDTH, thresholds: SeamThresholds | None = None
) -> SeamResult:
    """The join from the end of clip ``a`` to the start of clip ``b``.

    Both are read at ``a``'s analysis size and rate, so clips of other sizes or rates still
    compare (a different aspect is squeezed: such a join is a cut anyway).
    """
    th = thresholds or SeamThresholds()
    geo = frames_mod.geometry(Path(a))
    size, fps = geo.analysis_size(width), geo.scan_fps()
    count = _window_frames(float(fps), th)
    before = frames_mod.last_frames(Path(a), size, fps, count)
    after = frames_mod.first_frames(Path(b), size, fps, count)
    return seam_from_frames([f.bgr for f in before], [f.bgr for f in after], float(fps), th, t_s=0.0)


def score_seams(
    paths: Sequence[Path],
    *,
    width: int = frames_mod.REFERENCE_WIDTH,
    thresholds: SeamThresholds | None = None,
) -> list[SeamResult]:
    """One seam score per join between consecutive clips (``len(paths) - 1`` results)."""
    return [
        score_seam_between(a, b, width=width, thresholds=thresholds) for a, b in itertools.pairwise(paths)
    ]


def score_seam_at(
    path: Path,
    t_s: float,
    *,
    width: int = frames_mod.REFERENCE_WIDTH,
    thresholds: SeamThresholds | None = None,
) -> SeamResult:
    """The join inside one clip whose first new frame is shown at ``t_s`` (an extension's start)."""
    th = thresholds or SeamThresholds()
    geo = frames_mod.geometry(Path(path))
    size, fps = geo.analysis_size(width), geo.scan_fps()
    count = _window_frames(float(fps), th)
    join_index = round(t_s * float(fps))
    first = max(0, join_index - count)
    frames = frames_mod.first_frames(
        Path(path), size, fps, (join_index - first) + count, start_s=first / float(fps)
    )
    split = join_index - first
    if split < 1 or split >= len(frames):
        raise ValueError(f"{path}: no frames on both sides of {t_s:.3f} s")
    return seam_from_frames(
        [f.bgr for f in frames[:split]], [f.bgr for f in frames[split:]], float(fps), th, t_s=round(t_s, 4)
    )
