"""Run metrics: what a render's backend did, in numbers (``manifest.json`` ``metrics``, Prometheus).

What lives here, in three layers:

* **The numbers** (pure): :func:`run_metrics` turns a render's take, segment and failure
  records (the manifest's own lists) into a :class:`RunMetrics`, keyed by backend name so
  that files from several renders aggregate by label: counts (takes, cache hits,
  operations, retries, regenerations, failures by kind), the success rate, latency
  percentiles per stage and cost.
* **The text** (pure): :func:`prometheus_text` draws them in the Prometheus text exposition
  format through the official ``prometheus_client`` library (its metric families, its
  registry, its escaping of label values).
* **The file** (I/O): :func:`write_metrics` writes that text under a temporary name and
  renames it into place, so a scraper or node_exporter's textfile collector never reads
  half a file.

This is the only module that imports ``prometheus_client``, and only when text is drawn. What
does not live here: the models (:class:`RunMetrics` and the records it is computed from are in
``records.py``, which the manifest imports without importing this), collecting the timings
(``jobs/``, ``pipeline.py``) or showing them (``report/html.py``).
Every metric is described in ``docs/metrics.md``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from composer.errors import EnvironmentProblem
from composer.export.records import (
    BackendMetrics,
    FailureRecord,
    Latency,
    RunMetrics,
    SegmentRecord,
    TakeRecord,
)
from composer.files import write_text_atomic

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

#: Segment failure kinds always written (as 0 when none), so a dashboard sees 0 rather than nothing.
FAILURE_KINDS = ("filtered", "failed", "budget", "error")

#: The quantiles every latency summary carries.
QUANTILES = (0.5, 0.95, 0.99)

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_LABELS = frozenset({"backend", "model", "outcome", "kind", "stage", "quantile"})


def percentile(samples: Sequence[float], q: float) -> float | None:
    """The ``q``-th quantile (0..1) of ``samples`` by linear interpolation; None when empty.

    Linear (numpy's default, ``method="linear"``, type 7 of Hyndman and Fan): sorted values
    ``x[0] <= ... <= x[n-1]`` sit at positions 0..n-1 and the quantile is read at ``q * (n - 1)``,
    interpolating between the two neighbours. So P50 of [1, 2, 3, 4] is 2.5, and the maximum is
    P100. With one sample every percentile is that sample.
    """
    if not samples:
        return None
    return float(np.percentile(np.asarray(samples, dtype=float), q * 100, method="linear"))


def latency(samples: Sequence[float]) -> Latency:
    """The :class:`Latency` of a stage's samples (seconds), rounded to milliseconds."""
    if not samples:
        return Latency()

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return Latency(
        samples=len(samples),
        sum_s=round(float(sum(samples)), 3),
        p50_s=ms(percentile(samples, 0.5)),
        p95_s=ms(percentile(samples, 0.95)),
        p99_s=ms(percentile(samples, 0.99)),
        max_s=ms(max(samples)),
    )


def run_metrics(
    takes: Sequence[TakeRecord],
    segments: Sequence[SegmentRecord],
    failures: Sequence[FailureRecord],
    abandoned_operations: Sequence[Mapping[str, str]],
    *,
    backend: str,
    model_id: str,
    remote: bool,
    segments_flagged: int | None = None,
) -> RunMetrics:
    """The metrics of one render from its manifest records.

    ``remote`` says whether the backend is an API backend (submit / poll / download): its
    generation latency is then ``wait_s``, the time from submission until a poll found the
    operation done, and submit and download are measured; for the local backend generation is
    the generator's own ``generation_s`` and there is nothing to submit or download.

    Only takes generated in this render are latency samples (a cache hit measures nothing), and
    a take an earlier run submitted (``resumed``) counts for download only: its submission and
    most of its wait happened elsewhere. Judging is recorded per segment over all its attempts,
    so each attempt counts as one sample of the segment's mean.

    The success rate counts generations: a take generated now is a success; an operation that
    ended without a take (filtered, failed, expired, lost) is a miss, and so is a failed segment
    with no such operation (a refused request, a local error). A budget stop tried nothing, so
    it is not a miss. ``segments_flagged`` is passed where the caller knows it (the decisions).
    """
    made = [t for t in takes if not t.cached]
    fresh = [t for t in made if not t.resumed]
    abandoned_segments = {a.get("segment", "") for a in abandoned_operations}
    misses = len(abandoned_operations) + sum(
        1 for f in failures if f.kind != "budget" and f.segment not in abandoned_segments
    )
    tried = len(made) + misses
    generated_s = round(sum(t.requested_s for t in made), 3)
    cost = round(sum(t.cost_usd for t in takes), 4)
    judge_samples = [s.judge_s / s.attempts for s in segments if s.attempts > 0 for _ in range(s.attempts)]
    metrics = BackendMetrics(
        backend=backend,
        model_id=model_id,
        takes=len(takes),
        generated=len(made),
        cache_hits=len(takes) - len(made),
        operations=sum(len(t.operations) for t in made) + len(abandoned_operations),
        retries=sum(t.retries for t in made),
        polls=sum(t.polls for t in made),
        possible_duplicates=sum(t.possible_duplicates for t in made),
        resumed=sum(1 for t in made if t.resumed),
        abandoned_operations=dict(
            sorted(Counter(a.get("outcome", "") for a in abandoned_operations).items())
        ),
        failures=dict(sorted(Counter(f.kind for f in failures).items())),
        segments=len(segments),
        attempts=sum(s.attempts for s in segments),
        regenerations=sum(max(0, s.attempts - 1) for s in segments),
        segments_flagged=segments_flagged,
        unsuccessful=misses,
        success_rate=round(len(made) / tried, 4) if tried else None,
        submit=latency([t.submit_s for t in fresh] if remote else []),
        generation=latency([t.wait_s for t in fresh] if remote else [t.generation_s for t in made]),
        download=latency([t.download_s for t in made] if remote else []),
        judge=latency(judge_samples),
        generated_s=generated_s,
        cost_usd=cost,
        cost_per_generated_s_usd=round(cost / generated_s, 6) if generated_s > 0 else None,
    )
    return RunMetrics(backends={backend: metrics})


#: Counters: (name without _total, help, field of BackendMetrics).
_COUNTERS = (
    ("composer_operations", "API operations created and accounted for.", "operations"),
    ("composer_retries", "Requests retried (create, poll, download), over generated takes.", "retries"),
    ("composer_polls", "Status polls sent, over generated takes.", "polls"),
    (
        "composer_possible_duplicates",
        "Creates retried after the request may have reached the service (each may be an unseen charge).",
        "possible_duplicates",
    ),
    ("composer_resumed_takes", "Takes an earlier, interrupted run had submitted, finished here.", "resumed"),
    ("composer_segments", "Segments made.", "segments"),
    ("composer_attempts", "Attempts at the segments made (first tries and regenerations).", "attempts"),
    ("composer_regenerations", "Attempts beyond the first, over all segments.", "regenerations"),
    (
        "composer_generated_seconds",
        "Seconds of video generated in this render (asked-for seconds).",
        "generated_s",
    ),
    ("composer_cost_usd", "What the generated takes cost, in US dollars.", "cost_usd"),
)

#: Latency summaries: (name, help, stage).
_SUMMARIES = (
    ("composer_take_submit_seconds", "Time sending a take's create request, retries included.", "submit"),
    (
        "composer_take_generation_seconds",
        "Time from a take's submission until it was done (API); the generator's time (local).",
        "generation",
    ),
    ("composer_take_download_seconds", "Time downloading and checking a take's file.", "download"),
    ("composer_attempt_judge_seconds", "Time measuring drift and seams, per attempt.", "judge"),
)


def _families(metrics: RunMetrics, extra: Mapping[str, str]) -> list[Metric]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

    names = [*extra]
    base = ["backend", "model", *names]
    counters = {name: CounterMetricFamily(name, text, labels=base) for name, text, _ in _COUNTERS}
    takes = CounterMetricFamily(
        "composer_takes", "Takes the render used, by outcome.", labels=[*base, "outcome"]
    )
    abandoned = CounterMetricFamily(
        "composer_operations_abandoned",
        "API operations that ended without a take, by outcome.",
        labels=[*base, "outcome"],
    )
    failures = CounterMetricFamily(
        "composer_segment_failures", "Segments that could not be made, by kind.", labels=[*base, "kind"]
    )
    flagged = CounterMetricFamily(
        "composer_segments_flagged",
        "Segments kept after their attempts ran out with a check still failing.",
        labels=base,
    )
    success = GaugeMetricFamily(
        "composer_success_ratio",
        "Generated takes / (generated takes + generations that ended without a take).",
        labels=base,
    )
    per_second = GaugeMetricFamily(
        "composer_cost_per_generated_second_usd",
        "Cost per second of video generated, in US dollars.",
        labels=base,
    )
    summaries = {stage: SummaryMetricFamily(name, text, labels=base) for name, text, stage in _SUMMARIES}
    longest = GaugeMetricFamily(
        "composer_stage_max_seconds",
        "The longest time one take (or attempt) spent in a stage.",
        labels=[*base, "stage"],
    )
    for m in metrics.backends.values():
        values = [m.backend, m.model_id, *(extra[n] for n in names)]
        for name, _, attr in _COUNTERS:
            counters[name].add_metric(values, float(getattr(m, attr)))
        takes.add_metric([*values, "generated"], m.generated)
        takes.add_metric([*values, "cached"], m.cache_hits)
        for outcome, count in m.abandoned_operations.items():
            abandoned.add_metric([*values, outcome], count)
        for kind in sorted({*FAILURE_KINDS, *m.failures}):
            failures.add_metric([*values, kind], m.failures.get(kind, 0))
        if m.segments_flagged is not None:
            flagged.add_metric(values, m.segments_flagged)
        if m.success_rate is not None:
            success.add_metric(values, m.success_rate)
        if m.cost_per_generated_s_usd is not None:
            per_second.add_metric(values, m.cost_per_generated_s_usd)
        for name, _, stage in _SUMMARIES:
            stats: Latency = getattr(m, stage)
            family = summaries[stage]
            family.add_metric(values, stats.samples, stats.sum_s)
            # SummaryMetricFamily.add_metric takes no quantiles; they are plain samples of the
            # family with a `quantile` label, as the text format defines them. None (no samples)
            # is left out rather than written as NaN.
            labels = dict(zip(base, values, strict=True))
            for q, value in zip(QUANTILES, (stats.p50_s, stats.p95_s, stats.p99_s), strict=True):
                if value is not None:
                    family.add_sample(name, {**labels, "quantile": f"{q:g}"}, value)
            if stats.max_s is not None:
                longest.add_metric([*values, stage], stats.max_s)
    families = [takes, *counters.values(), abandoned, failures, flagged, success, per_second]
    families += [*summaries.values(), longest]
    return [f for f in families if f.samples]  # a family with no series is only noise


class _Collector:
    """Hands the registry a fixed set of families (a ``prometheus_client`` collector is any
    object with ``collect()``; subclassing its ABC would import the library with the models)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def prometheus_text(metrics: RunMetrics, labels: Mapping[str, str] | None = None) -> str:
    """The metrics in the Prometheus text format (0.0.4), every series labelled ``backend`` and
    ``model`` plus ``labels`` (e.g. ``{"storyboard": title}``); the library escapes the values."""
    from prometheus_client import CollectorRegistry, generate_latest

    extra = dict(labels or {})
    for name in extra:
        if not _LABEL_NAME.match(name) or name.startswith("__") or name in _RESERVED_LABELS:
            raise ValueError(f"{name!r} cannot be a label name here (reserved or not [a-zA-Z_][a-zA-Z0-9_]*)")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(_families(metrics, extra)))
    return generate_latest(registry).decode("utf-8")


def write_metrics(path: Path, metrics: RunMetrics, labels: Mapping[str, str] | None = None) -> Path:
    """Write :func:`prometheus_text` to ``path`` atomically (a hidden temporary file beside it,
    renamed into place: node_exporter's textfile collector reads only ``*.prom``)."""
    text = prometheus_text(metrics, labels)
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot write the metrics file {path} ({exc.strerror or exc}); choose another with --metrics-file"
        ) from None
    return path.resolve()
