"""Analyse any clip: one streaming pass gives its discontinuities and its drift verdict.

Holds ``analyze_clip`` (the JSON shape of ``composer analyze``: path, duration_s, fps,
frames_analyzed, discontinuities, drift), the seam scores between consecutive clips
(``score_seams``) or at a time inside one clip (``score_seam_at``: a base clip and its
extension), and ``seam_from_frames`` for frames already in memory. Works on footage from
anywhere: ffmpeg applies rotation, squares pixels and makes variable frame rates even.
What does not live here: the metrics (``metrics.py``), thresholds (``seams.py``,
``drift.py``), the CLI, the report, or the regeneration policy.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from composer.analysis import frames as frames_mod
from composer.analysis.drift import CameraPlan, DriftResult, DriftThresholds, DriftTracker
from composer.analysis.metrics import bhattacharyya, frame_features, make_flow, pair_metrics
from composer.analysis.seams import (
    PairSeries,
    SeamResult,
    SeamThresholds,
    locate_transitions,
    scan,
    score_seam,
)
from composer.errors import MediaError


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Discontinuity(_Model):
    """A place inside a clip where the picture jumps or cuts."""

    t_s: float = Field(description="Time of the first frame after the jump.")
    signals: dict[str, float] = Field(description="Signals that fired, with their measured values.")


class ClipAnalysis(_Model):
    """One clip's analysis: the ``composer analyze --json`` record."""

    path: str
    duration_s: float
    fps: float
    frames_analyzed: int
    discontinuities: list[Discontinuity]
    drift: DriftResult
    seam_with_next: SeamResult | None = Field(None, description="Only when a next clip was given.")


def analyze_clip(
    path: Path,
    *,
    seams_with_next: Path | None = None,
    camera_planned: CameraPlan | None = None,
    width: int = frames_mod.REFERENCE_WIDTH,
    drift_thresholds: DriftThresholds | None = None,
    seam_thresholds: SeamThresholds | None = None,
    scanner_thresholds: SeamThresholds | None = None,
    with_curves: bool = True,
    flow_preset: Literal["ultrafast", "fast"] = "ultrafast",
    resize: Literal["ffmpeg", "cv2"] = "ffmpeg",
    fast: bool = False,
) -> ClipAnalysis:
    """Stream ``path`` once at its own rate (capped at 30 fps), scaled to ``width``.

    Every consecutive pair gets flow, camera motion and the seam signals (scanned for
    discontinuities); every frame at ~12 fps is compared with the motion-compensated anchor
    (drift). Only the current and previous frames, the anchor and a 1-s ring of histograms
    are held, plus a few scalars per frame.

    ``fast`` reads only the frames other frames refer to (about every other one, see
    :func:`frames_mod.reference_stream`): the decoder does a third less and the metrics half.
    The drift checks, which sample ~12 fps anyway, lose nothing; a jump or cut is still
    found, placed within a frame of where it is.
    """
    path = Path(path)
    geo = frames_mod.geometry(path)
    size = geo.analysis_size(width)
    fps = geo.scan_fps() / 2 if fast else geo.scan_fps()  # the fast scan: every other frame, nominally
    dth = drift_thresholds or DriftThresholds()
    step = max(1, round(float(fps) / dth.sample_fps))
    tracker = DriftTracker(size[0], float(fps) / step, dth, camera_planned)
    flow = make_flow(flow_preset)
    series = PairSeries()
    lag = max(1, round(float(fps)))  # 1 s, for the transition locator
    ring: deque[np.ndarray] = deque(maxlen=lag)
    dist_1s: list[float] = []
    times: list[float] = []
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
            steps = (frame.t_s - times[-1]) * float(fps) if fast else 1.0
            series.append(pair, steps=min(4.0, max(0.25, steps)))
            tracker.add_motion(pair.motion)
        dist_1s.append(bhattacharyya(ring[0], feats.hist) if len(ring) == lag else float("nan"))
        ring.append(feats.hist)
        if frame.index % step == 0:
            tracker.add_sample(frame.t_s, feats)
        times.append(frame.t_s)
        prev = feats
    if not times:
        raise MediaError(f"{path} has no frames to analyse")
    found: list[Discontinuity] = []
    for event in scan(series, float(fps), scanner_thresholds):
        found.append(Discontinuity(t_s=round(times[event.pair + 1], 4), signals=_round(event.signals)))
    for index, distance, z in locate_transitions(dist_1s, lag):
        if any(abs(d.t_s - times[index]) < 1.0 for d in found):
            continue  # a cut already reported there also moves the 1-s histogram distance
        found.append(Discontinuity(t_s=round(times[index], 4), signals={"transition": round(distance, 5), "transition_z": round(z, 2)}))
    found.sort(key=lambda d: d.t_s)
    seam = score_seam_between(path, seams_with_next, width=width, thresholds=seam_thresholds) if seams_with_next else None
    duration = geo.duration_s if geo.duration_s else len(times) / float(fps)
    return ClipAnalysis(
        path=str(path),
        duration_s=round(float(duration), 4),
        fps=round(float(geo.fps), 4),
        frames_analyzed=len(times),
        discontinuities=found,
        drift=tracker.result(with_curves=with_curves),
        seam_with_next=seam,
    )


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
    paths: Sequence[Path], *, width: int = frames_mod.REFERENCE_WIDTH, thresholds: SeamThresholds | None = None
) -> list[SeamResult]:
    """One seam score per join between consecutive clips (``len(paths) - 1`` results)."""
    return [score_seam_between(a, b, width=width, thresholds=thresholds) for a, b in itertools.pairwise(paths)]


def score_seam_at(
    path: Path, t_s: float, *, width: int = frames_mod.REFERENCE_WIDTH, thresholds: SeamThresholds | None = None
) -> SeamResult:
    """The join inside one clip whose first new frame is shown at ``t_s`` (an extension's start)."""
    th = thresholds or SeamThresholds()
    geo = frames_mod.geometry(Path(path))
    size, fps = geo.analysis_size(width), geo.scan_fps()
    count = _window_frames(float(fps), th)
    join_index = round(t_s * float(fps))
    first = max(0, join_index - count)
    frames = frames_mod.first_frames(Path(path), size, fps, (join_index - first) + count, start_s=first / float(fps))
    split = join_index - first
    if split < 1 or split >= len(frames):
        raise ValueError(f"{path}: no frames on both sides of {t_s:.3f} s")
    return seam_from_frames(
        [f.bgr for f in frames[:split]], [f.bgr for f in frames[split:]], float(fps), th, t_s=round(t_s, 4)
    )
