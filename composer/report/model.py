"""``report.json``: the drift report's data, versioned. ``html.py`` draws it as one page.

Per output: its segments (what was asked, every attempt with its checks and the decision
taken, drift curves of the kept take with their warn and regenerate lines, a thumbnail) and
its seams (the checks at each join and three thumbnails: last frame before, the crossfade's
middle, first frame after). Thumbnails are embedded as data URIs so the page and the JSON
stand alone. What does not live here: measuring (``analysis/``) or deciding (``decide.py``).
"""

from __future__ import annotations

from pydantic import Field

from composer.analysis.drift import DriftCurve as Curve
from composer.analysis.judge import Finding
from composer.decide import Attempt, Decision
from composer.export.records import RunMetrics
from composer.models import Frozen

REPORT_VERSION = 1

__all__ = [
    "Curve",
    "Explanation",
    "OutputReport",
    "Problem",
    "Report",
    "SeamReport",
    "SegmentReport",
    "Summary",
    "summarize",
]


class Explanation(Finding):
    """A finding on one attempt at a segment: why it was flagged or turned down."""

    attempt: int


class SegmentReport(Frozen):
    id: str
    scene_id: str
    prompt: str
    start_s: float = Field(description="Where the segment's own time starts in its output.")
    end_s: float
    attempts: list[Attempt]
    decisions: list[Decision]
    kept_attempt: int
    regenerated: bool
    flagged: bool = Field(description="Kept after its attempts ran out with a check still failing.")
    verdict: str = Field(description="The kept attempt's worst verdict: ok, warn or regenerate.")
    curves: list[Curve] = Field(default_factory=list)
    thumbnail: str | None = Field(None, description="data: URI of the kept take's middle frame.")
    findings: list[Explanation] = Field(
        default_factory=list,
        description="What fired on each attempt (signal, onset, value against level, a thumbnail at the onset).",
    )
    knobs: dict[str, float] = Field(
        default_factory=dict,
        description="Image-guidance knobs the storyboard set (style_strength, motion_intensity).",
    )
    knobs_not_sent: list[str] = Field(
        default_factory=list,
        description="Those of the knobs the backend does not take, so they were not sent.",
    )


class SeamReport(Frozen):
    before: str
    after: str
    kind: str = Field(description="crossfade or cut.")
    t_s: float = Field(description="Output time of the join's centre.")
    checked: bool = Field(description="False for an intended scene change, which is shown but not judged.")
    verdict: str
    checks: list[dict[str, float | str | None]] = Field(default_factory=list)
    thumbnails: dict[str, str] = Field(
        default_factory=dict, description="before / middle / after -> data: URI."
    )


class OutputReport(Frozen):
    name: str
    path: str
    frames: int
    duration_s: float
    segments: list[SegmentReport]
    seams: list[SeamReport]


class Summary(Frozen):
    segments: int
    segments_passed: int
    segments_regenerated: int
    segments_flagged: int
    segments_warned: int = Field(description="Accepted with a check past its warn level.")
    seams: int
    seams_passed: int
    seams_flagged: int
    attempts: int


class Problem(Frozen):
    """A segment that could not be made (a safety block, a refused request, the budget)."""

    segment: str
    kind: str = Field(description="filtered, failed, budget or error.")
    message: str = Field(
        description="What happened, in the service's words where it gave them, and what to do."
    )


class DuplicateCharge(Frozen):
    """A take whose creates got no answer and may have started extra, paid operations.

    The manifest's ``possible_duplicate_charges`` entry, for the page: what to look up on the bill.
    """

    segment: str
    take: str
    key: str
    operations: list[str] = Field(default_factory=list, description="The take's operations, by id.")
    duplicate_operations: list[str] = Field(
        default_factory=list, description="Extra operations a listing found, by id (known duplicates)."
    )
    possibly_charged_usd: float = Field(0.0, description="What these may have cost beyond the take's price.")
    unanswered_creates: list[dict[str, str | int | None]] = Field(
        default_factory=list, description="Each create without an answer: attempt, sent_at, run, error."
    )


class Report(Frozen):
    version: int = REPORT_VERSION
    composer_version: str
    title: str
    storyboard: str
    backend: str
    model_id: str
    created_at: str
    regenerate: bool
    max_attempts: int
    thresholds: dict[str, dict[str, float]]
    summary: Summary
    outputs: list[OutputReport]
    notes: list[str] = Field(default_factory=list)
    problems: list[Problem] = Field(default_factory=list)
    budget_usd: float | None = Field(None, description="The run's --budget, when it had one.")
    metrics: RunMetrics | None = None  # the manifest's run metrics (docs/metrics.md)
    possible_duplicate_charges: list[DuplicateCharge] = Field(
        default_factory=list, description="Takes that may have been paid for more than once (manifest)."
    )


def summarize(outputs: list[OutputReport]) -> Summary:
    segments = [s for o in outputs for s in o.segments]
    seams = [s for o in outputs for s in o.seams if s.checked]
    return Summary(
        segments=len(segments),
        segments_passed=sum(1 for s in segments if not s.regenerated and not s.flagged),
        segments_regenerated=sum(1 for s in segments if s.regenerated),
        segments_flagged=sum(1 for s in segments if s.flagged),
        segments_warned=sum(1 for s in segments if not s.flagged and s.verdict == "warn"),
        seams=len(seams),
        seams_passed=sum(1 for s in seams if s.verdict == "ok"),
        seams_flagged=sum(1 for s in seams if s.verdict != "ok"),
        attempts=sum(len(s.attempts) for s in segments),
    )
