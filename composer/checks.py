"""Continuity checks of a segment's takes: the bridge from ``analysis/`` measurements to ``decide`` checks.

For each attempt at a segment it measures, on the final take of the chain:

* drift inside the segment against its first frames (motion-compensated), each metric
  mapped to the chunk where it first crossed its warn level;
* every seam between the base clip and its extensions (``seam.extension<k>``);
* jumps or cuts anywhere inside the take (``discontinuity``);
* the seam with the segment it continues from (``seam.previous``): the earlier take up to the
  frame the new one starts from, then the new take.

and keeps the full measurements per take key for the report. The measuring may be handed to
another machine (``ContinuityJudge.offload``; a Ray cluster's tasks, ``composer/cluster.py``),
which runs :func:`measure_detached` on a copy of the judge and sends back what it measured.
What does not live here: the metrics themselves (``analysis/``) or the policy (``decide.py``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from composer.analysis import (
    ClipAnalysis,
    Discontinuity,
    DriftResult,
    DriftThresholds,
    SeamResult,
    SeamThresholds,
    analyze_clip,
    camera_plan,
    score_seam_at,
    seam_from_frames,
)
from composer.analysis import frames as frames_mod
from composer.decide import Check
from composer.jobs.cache import Take, write_json_atomic
from composer.plan.model import Plan, Segment
from composer.timecode import parse_fps

#: Bump when a measurement changes, so stored results from older code are not reused.
CHECKS_VERSION = 2


@dataclass(frozen=True)
class TakeChecks:
    """Everything measured on one attempt (keyed by its final take)."""

    analysis: ClipAnalysis
    seams: dict[str, SeamResult]


def thresholds(overrides: dict[str, float]) -> tuple[DriftThresholds, SeamThresholds]:
    """Drift and seam thresholds with the storyboard's (or the command line's) overrides."""
    drift = DriftThresholds(**{k: v for k, v in overrides.items() if k in DriftThresholds.model_fields})
    seam_updates = {
        name: overrides[key]
        for key, name in (("seam_warn_z", "warn_z"), ("seam_regenerate_z", "regenerate_z"))
        if key in overrides
    }
    return drift, SeamThresholds(**seam_updates)


def chunk_at(segment: Segment, t_s: float | None) -> int:
    """The chunk whose added seconds hold take time ``t_s`` (0 when unknown)."""
    if t_s is None:
        return 0
    for chunk in segment.chunks:
        if t_s < chunk.total_s:
            return chunk.index
    return segment.chunks[-1].index


def drift_checks(drift: DriftResult, segment: Segment | None = None) -> list[Check]:
    """One check per judged drift metric; with a segment, each knows the chunk it began in."""
    return [
        Check(
            name=f"drift.{metric.name}",
            verdict=metric.verdict,
            value=round(metric.value, 4),
            warn=metric.warn,
            regenerate=metric.regenerate,
            severity=round(metric.severity, 4),
            onset_s=metric.onset_warn_s,
            chunk=chunk_at(segment, metric.onset_warn_s) if segment is not None else None,
        )
        for metric in drift.metrics
        if metric.checked
    ]


def discontinuity_check(jump: Discontinuity, chunk: int | None = None) -> Check:
    """A jump or cut inside a take: always a reason to regenerate from where it happened."""
    signals = ", ".join(sorted(jump.signals))
    return Check(
        name=f"discontinuity at {jump.t_s:.2f} s ({signals})",
        verdict="regenerate",
        value=1.0,
        warn=1.0,
        regenerate=1.0,
        severity=1.0,
        onset_s=jump.t_s,
        chunk=chunk,
    )


def _seam_check(name: str, seam: SeamResult, th: SeamThresholds, chunk: int) -> Check:
    # Seams are judged by severity: >= 1 regenerates, >= warn_z / regenerate_z warns.
    return Check(
        name=name,
        verdict=seam.verdict,
        value=round(seam.severity, 4),
        warn=round(th.warn_z / th.regenerate_z, 4),
        regenerate=1.0,
        severity=round(seam.severity, 4),
        onset_s=seam.t_s,
        chunk=chunk,
    )


class ContinuityJudge:
    """Callable the runner uses to score each attempt (thread-safe; keeps every result)."""

    def __init__(
        self,
        plan: Plan,
        overrides: dict[str, float],
        width: int = frames_mod.REFERENCE_WIDTH,
        store: Path | None = None,
    ) -> None:
        self.plan = plan
        self.drift_th, self.seam_th = thresholds(overrides)
        self.width = width
        self.store = store  # where measurements are kept, so a render run again does not redo them
        self.fps = parse_fps(plan.output.fps)
        self.results: dict[str, TakeChecks] = {}
        self.judged_on: dict[str, str] = {}  # take key -> the machine that measured it
        self.node = ""  # this machine's name, for judged_on
        # Where else a take may be measured: called with a detached copy of the judge, it
        # returns what measure_detached returned there (or None: measure it here).
        self.offload: Offload | None = None
        self._lock = threading.Lock()

    # A judge travels between stages (the report reads its results), perhaps to another
    # process: everything but its lock, and a fresh lock on arrival.
    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _store_key(self, segment: Segment, takes: list[Take], previous: Take | None) -> str:
        facts = {
            "version": CHECKS_VERSION,
            "takes": [t.key for t in takes],
            "previous": previous.key if previous is not None else None,
            "continues": segment.continues.model_dump() if segment.continues else None,
            "chunks": [c.total_s for c in segment.chunks],
            "used": [segment.take_offset, segment.clip_frames, self.plan.output.fps],
            "camera": segment.camera,
            "width": self.width,
            "drift": self.drift_th.model_dump(),
            "seam": self.seam_th.model_dump(),
        }
        blob = json.dumps(facts, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def __call__(self, segment: Segment, takes: list[Take], previous: Take | None) -> list[Check]:
        path = self.store / f"{self._store_key(segment, takes, previous)}.json" if self.store else None
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                stored = TakeChecks(
                    ClipAnalysis.model_validate(data["analysis"]),
                    {k: SeamResult.model_validate(v) for k, v in data["seams"].items()},
                )
                checks = [Check.model_validate(c) for c in data["checks"]]
            except (OSError, ValueError, KeyError):
                pass  # unreadable: measure again
            else:
                with self._lock:
                    self.results[takes[-1].key] = stored
                return checks
        far = self.offload(self.detached(), segment, takes, previous) if self.offload else None
        if far is None:
            checks, node = self._measure(segment, takes, previous), self.node
        else:
            checks, measured, node = far
        with self._lock:
            if far is not None:
                self.results[takes[-1].key] = measured
            self.judged_on[takes[-1].key] = node
        if path is not None:
            stored = self.results[takes[-1].key]
            write_json_atomic(
                path,
                {
                    "analysis": stored.analysis.model_dump(mode="json"),
                    "seams": {k: v.model_dump(mode="json") for k, v in stored.seams.items()},
                    "checks": [c.model_dump(mode="json") for c in checks],
                },
            )
        return checks

    def detached(self) -> ContinuityJudge:
        """A copy that measures and nothing else: no results kept so far, no store, no offload
        (small to send to another machine)."""
        twin = copy.copy(self)
        twin.results, twin.judged_on, twin.store, twin.offload = {}, {}, None, None
        twin._lock = threading.Lock()
        return twin

    def _measure(self, segment: Segment, takes: list[Take], previous: Take | None) -> list[Check]:
        final = takes[-1]
        analysis = analyze_clip(
            final.path,
            camera_planned=camera_plan(segment.camera),
            width=self.width,
            drift_thresholds=self.drift_th,
            seam_thresholds=self.seam_th,
        )
        checks = drift_checks(analysis.drift, segment)
        seams: dict[str, SeamResult] = {}
        for chunk in segment.chunks[1:]:
            boundary = segment.chunks[chunk.index - 1].total_s
            seam = score_seam_at(final.path, boundary, width=self.width, thresholds=self.seam_th)
            seams[f"seam.extension{chunk.index}"] = seam
            checks.append(_seam_check(f"seam.extension{chunk.index}", seam, self.seam_th, chunk.index))
        used_end = (segment.take_offset + segment.clip_frames) / float(self.fps)
        checks += [
            discontinuity_check(jump, chunk_at(segment, jump.t_s))
            for jump in analysis.discontinuities
            if jump.t_s < used_end
        ]
        if previous is not None and segment.continues is not None:
            seam = self._previous_seam(previous, takes[0], segment.continues.frame)
            seams["seam.previous"] = seam
            checks.append(_seam_check("seam.previous", seam, self.seam_th, 0))
        with self._lock:
            self.results[final.key] = TakeChecks(analysis, seams)
        return checks

    def _previous_seam(self, previous: Take, first: Take, frame: int) -> SeamResult:
        """The earlier take up to ``frame`` (exclusive), then the new take from its start."""
        geo = frames_mod.geometry(Path(first.path))
        size = geo.analysis_size(self.width)
        count = max(3, round(self.seam_th.window_s * float(self.fps))) + 1
        start = max(0, frame - count)
        before = frames_mod.first_frames(
            Path(previous.path), size, self.fps, frame - start, start_s=float(Fraction(start) / self.fps)
        )
        after = frames_mod.first_frames(Path(first.path), size, self.fps, count)
        return seam_from_frames(
            [f.bgr for f in before], [f.bgr for f in after], float(self.fps), self.seam_th, t_s=0.0
        )


Offload = Callable[
    [ContinuityJudge, Segment, list[Take], Take | None], tuple[list[Check], TakeChecks, str] | None
]


def measure_detached(
    judge: ContinuityJudge, segment: Segment, takes: list[Take], previous: Take | None, node: str
) -> tuple[list[Check], TakeChecks, str] | None:
    """Measure on this machine for a judge elsewhere (``judge``: its :meth:`detached` copy):
    (checks, measurements, ``node``), or None when this machine does not see the takes' files
    (a take store in object storage keeps them in each node's own cache)."""
    needed = [*takes, *([previous] if previous is not None else [])]
    if not all(Path(take.path).is_file() for take in needed):
        return None
    checks = judge._measure(segment, takes, previous)
    return checks, judge.results[takes[-1].key], node
