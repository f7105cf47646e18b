"""The records a render writes: its takes, segments, failures and outputs, and its run metrics.

Pure pydantic models (:class:`~composer.models.Frozen`), no logic: ``manifest.json`` is made of
them (:class:`~composer.export.manifest.Manifest`), :func:`composer.export.run_metrics.run_metrics`
computes a :class:`RunMetrics` from them, and the report reads both. Holding them apart from
both modules keeps the manifest from importing the metrics' computation and the metrics from
importing the manifest. What does not live here: reading or writing the manifest
(``manifest.py``), computing or exporting metrics (``run_metrics.py``).
"""

from __future__ import annotations

from pydantic import Field

from composer.models import Frozen

METRICS_VERSION = 1

#: The latency stages, in the order a take goes through them (the :class:`BackendMetrics` fields).
STAGES = ("submit", "generation", "download", "judge")


class TakeRecord(Frozen):
    segment: str
    chunk: int
    kind: str
    key: str
    path: str
    cached: bool
    frames: int
    duration_s: float = Field(description="Length of the whole clip (an extension returns the whole clip).")
    requested_s: float = Field(description="Seconds this call asked for (base duration, or seconds added).")
    generation_s: float
    cost_usd: float
    operations: list[str] = Field(
        default_factory=list, description="API operations this take came from (the last one delivered it)."
    )
    retries: int = 0
    polls: int = 0
    possible_duplicates: int = 0
    resumed: bool = Field(False, description="Submitted by an earlier, interrupted run; polled here.")
    submit_s: float = Field(0.0, description="Time spent sending the create request (retries included).")
    wait_s: float = Field(0.0, description="Time from submission until a poll found it finished.")
    download_s: float = Field(0.0, description="Time spent downloading and checking the file.")
    node: str = Field(
        "",
        description="The machine (a Ray node's address in a cluster, else the host name) that made the "
        "take, or found it in the cache.",
    )
    judged_on: str = Field(
        "",
        description="The machine that measured this take's drift and seams, when it is the last take of an "
        "attempt judged in this render (a cluster hands judging to whichever node has room).",
    )


class SegmentRecord(Frozen):
    id: str
    take_key: str = Field(description="The take the output uses: the last chunk of the kept attempt.")
    attempts: int
    judge_s: float = Field(description="Time spent measuring drift and seams, all attempts.")
    started_s: float = Field(description="When work on it began, seconds after the render started.")
    accepted_s: float = Field(description="When its take was accepted, seconds after the render started.")
    normalize_s: float = Field(
        0.0, description="Bringing the accepted take to the output encoding (in the background)."
    )


class KnobNotSent(Frozen):
    """A knob a segment asked for that its backend cannot take: its takes were made without it."""

    segment: str
    knob: str
    value: float
    backend: str


class FailureRecord(Frozen):
    segment: str
    kind: str = Field(description="filtered, failed, budget or error.")
    message: str


class OutputRecord(Frozen):
    name: str
    path: str
    frames: int
    audio_samples: int | None
    duration_s: float
    inputs_key: str = Field(description="Hash of everything the output was made from; equal -> up to date.")
    composed: bool = Field(description="False when an up-to-date file from an earlier render was kept.")
    method: str = Field(description="smart: copied bodies + re-encoded crossfades; full: one re-encode.")
    reason: str = Field("", description="Why the full re-encode was used, when it was.")
    compose_s: float


class Latency(Frozen):
    """One stage's durations in a render. Percentiles are linear (see :func:`percentile`); they
    and the maximum are None when there were no samples."""

    samples: int = 0
    sum_s: float = 0.0
    p50_s: float | None = None
    p95_s: float | None = None
    p99_s: float | None = None
    max_s: float | None = None


class BackendMetrics(Frozen):
    """What one backend did in a render."""

    backend: str
    model_id: str
    takes: int = Field(description="Takes the render used: generated now or found in the cache.")
    generated: int
    cache_hits: int
    operations: int = Field(description="API operations created and accounted for (0 for local).")
    retries: int
    polls: int
    possible_duplicates: int
    resumed: int = Field(description="Takes an earlier, interrupted run had submitted, finished here.")
    abandoned_operations: dict[str, int] = Field(
        default_factory=dict, description="Operations that ended without a take, by outcome."
    )
    failures: dict[str, int] = Field(
        default_factory=dict, description="Segments that could not be made, by kind."
    )
    segments: int = Field(description="Segments made (accepted or kept after their attempts ran out).")
    attempts: int
    regenerations: int = Field(description="Attempts beyond the first, over all segments.")
    segments_flagged: int | None = Field(
        None, description="Kept after their attempts ran out with a check still failing; None: not known."
    )
    unsuccessful: int = Field(
        description="Generations that ended without a take (the success rate's misses)."
    )
    success_rate: float | None = Field(
        None, description="generated / (generated + unsuccessful); None when nothing was generated or tried."
    )
    submit: Latency = Field(description="Sending the create request, retries included (API backends).")
    generation: Latency = Field(
        description="API backends: submission until done (wait_s); local: the generator's own time."
    )
    download: Latency = Field(description="Downloading and checking the file (API backends).")
    judge: Latency = Field(description="Measuring drift and seams, per attempt.")
    generated_s: float = Field(description="Seconds of video generated now (asked-for seconds).")
    cost_usd: float
    cost_per_generated_s_usd: float | None = Field(None, description="None when nothing was generated.")


class RunMetrics(Frozen):
    """A render's metrics, by backend name (a render uses one; the key lets renders aggregate)."""

    version: int = METRICS_VERSION
    backends: dict[str, BackendMetrics]
