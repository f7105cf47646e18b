"""Continuity and drift analysis of video clips (OpenCV + numpy on frames decoded by ffmpeg).

The public surface: analyse a clip (discontinuities + drift), score seams between clips or
inside one, and the threshold and result models a policy or a report reads. Modules:
``frames`` (decode, scaled), ``signals`` (flow, camera motion, histograms, photometry),
``seams`` (the seam rule and the in-clip scanner), ``events`` (steps, flicker, freezes,
reversals, loops), ``drift`` (anchor-relative drift on the still background),
``judge`` (whole-clip passes: findings, seam scores). What does not live here: deciding to regenerate (``decide.py``),
drawing the report (``report/``) or the CLI.
"""

from __future__ import annotations

from composer.analysis.drift import (
    CameraPlan,
    DriftCurve,
    DriftMetric,
    DriftResult,
    DriftThresholds,
    camera_plan,
)
from composer.analysis.events import EventThresholds
from composer.analysis.judge import (
    ClipAnalysis,
    Discontinuity,
    Finding,
    analyze_clip,
    score_seam_at,
    score_seam_between,
    score_seams,
    seam_from_frames,
)
from composer.analysis.seams import SeamResult, SeamThresholds, SignalRule, SignalScore

__all__ = [
    "CameraPlan",
    "ClipAnalysis",
    "Discontinuity",
    "DriftCurve",
    "DriftMetric",
    "DriftResult",
    "DriftThresholds",
    "EventThresholds",
    "Finding",
    "SeamResult",
    "SeamThresholds",
    "SignalRule",
    "SignalScore",
    "analyze_clip",
    "camera_plan",
    "score_seam_at",
    "score_seam_between",
    "score_seams",
    "seam_from_frames",
]
