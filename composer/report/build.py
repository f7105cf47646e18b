"""Assemble a :class:`~composer.report.model.Report` from a finished render.

Inputs: the plan, the runner's attempt histories, the continuity judge's measurements and
the composed outputs (thumbnails are read from them in one pass per output). What does not
live here: drawing (``html.py``) or measuring (``analysis/``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

from composer import ffmpeg, imaging
from composer._version import __version__
from composer.analysis import ClipAnalysis, SeamResult
from composer.checks import ContinuityJudge, discontinuity_check, drift_checks
from composer.decide import Attempt, Decision
from composer.export.records import RunMetrics
from composer.jobs.runner import RunResult
from composer.plan.model import OutputPlan, Plan
from composer.report.model import (
    DuplicateCharge,
    Explanation,
    OutputReport,
    Problem,
    Report,
    SeamReport,
    SegmentReport,
    summarize,
)
from composer.timecode import parse_fps

THUMB_WIDTH = 240


def _thumbnails(path: Path, frames: set[int], width: int, height: int) -> dict[int, str]:
    """The frames at ``frames`` of ``path`` as small JPEG data URIs (one decoding pass)."""
    wanted, out = sorted(frames), {}
    if not wanted:
        return out
    h = max(2, round(height * THUMB_WIDTH / width / 2) * 2)
    for index, frame in enumerate(ffmpeg.read_frames(path, THUMB_WIDTH, h)):
        if index in frames:
            out[index] = imaging.jpeg_data_uri(frame, THUMB_WIDTH)
        if index >= wanted[-1]:
            break
    return out


def _seam_rows(seam: SeamResult) -> list[dict[str, float | str | None]]:
    return [
        {
            "signal": name,
            "value": round(s.value, 4),
            "baseline": round(s.baseline, 4),
            "z": round(s.z, 2),
            "level": s.level,
        }
        for name, s in seam.signals.items()
    ]


def _output_report(
    plan: Plan, output: OutputPlan, path: Path, run: RunResult, judge: ContinuityJudge | None
) -> OutputReport:
    fps = parse_fps(plan.output.fps)
    starts, cursor = [], 0
    for seg in output.segments:
        starts.append(cursor)
        cursor += seg.nominal_frames
    # Frames to show: each segment's middle, and around each join.
    middles = {seg.id: starts[i] + seg.nominal_frames // 2 for i, seg in enumerate(output.segments)}
    join_frames: list[tuple[int, int, int]] = []  # (last before, middle, first after)
    for k, join in enumerate(output.joins):
        boundary = starts[k + 1]
        before = boundary - join.frames // 2
        join_frames.append((max(0, before - 1), boundary, min(output.frames - 1, before + join.frames)))
    wanted = set(middles.values()) | {f for triple in join_frames for f in triple}
    thumbs = _thumbnails(path, wanted, plan.output.width, plan.output.height)

    segments = []
    for i, seg in enumerate(output.segments):
        history = run.histories[seg.id]
        kept = history.final.attempt
        kept_attempt = history.attempts[kept - 1]
        measured = judge.results.get(kept_attempt.take_keys[-1]) if judge else None
        curves = list(measured.analysis.drift.curves) if measured is not None else []
        explanations = [
            Explanation(attempt=attempt.number, **finding.model_dump())
            for attempt in history.attempts
            if judge is not None and (done := judge.results.get(attempt.take_keys[-1])) is not None
            for finding in done.analysis.findings
        ]
        segments.append(
            SegmentReport(
                id=seg.id,
                scene_id=seg.scene_id,
                prompt=seg.prompt,
                start_s=float(Fraction(starts[i]) / fps),
                end_s=float(Fraction(starts[i] + seg.nominal_frames) / fps),
                attempts=history.attempts,
                decisions=history.decisions,
                kept_attempt=kept,
                regenerated=len(history.attempts) > 1,
                flagged=history.final.action == "keep_best",
                verdict=kept_attempt.verdict,
                curves=curves,
                thumbnail=thumbs.get(middles[seg.id]),
                findings=explanations,
                knobs=seg.knobs(),
                knobs_not_sent=sorted(plan.knobs_not_sent(seg)),
            )
        )
    seams = []
    for k, join in enumerate(output.joins):
        left, right = output.segments[k], output.segments[k + 1]
        same_scene = left.scene_id == right.scene_id
        seam_result = None
        if same_scene and judge is not None:
            kept = run.histories[right.id].attempts[run.histories[right.id].final.attempt - 1]
            measured = judge.results.get(kept.take_keys[-1])
            seam_result = measured.seams.get("seam.previous") if measured else None
        last, middle, first = join_frames[k]
        pictures = {
            "before": thumbs.get(last),
            "middle": thumbs.get(middle) if join.frames else None,
            "after": thumbs.get(first),
        }
        seams.append(
            SeamReport(
                before=left.id,
                after=right.id,
                kind=join.kind,
                t_s=float(Fraction(starts[k + 1]) / fps),
                checked=seam_result is not None,
                verdict=seam_result.verdict if seam_result else "ok",
                checks=_seam_rows(seam_result) if seam_result else [],
                thumbnails={k2: v for k2, v in pictures.items() if v},
            )
        )
    return OutputReport(
        name=output.name,
        path=str(path),
        frames=output.frames,
        duration_s=float(Fraction(output.frames) / fps),
        segments=segments,
        seams=seams,
    )


def build_report(
    plan: Plan,
    paths: dict[str, Path],
    run: RunResult,
    judge: ContinuityJudge | None,
    *,
    regenerate: bool,
    max_attempts: int,
    problems: list[Problem] | None = None,
    budget_usd: float | None = None,
    notes: list[str] | None = None,
    metrics: RunMetrics | None = None,
    possible_duplicate_charges: list[dict[str, Any]] | None = None,
) -> Report:
    """The report of a render: the outputs in ``paths`` (name -> file; none when nothing was
    composed), the problems, the API use with its possible duplicate charges (the manifest's
    entries), and the plan's notes followed by ``notes``."""
    outputs = [_output_report(plan, o, paths[o.name], run, judge) for o in plan.outputs if o.name in paths]
    drift_th = judge.drift_th.model_dump() if judge else {}
    seam_th = {"warn_z": judge.seam_th.warn_z, "regenerate_z": judge.seam_th.regenerate_z} if judge else {}
    return Report(
        composer_version=plan.composer_version,
        title=plan.storyboard.title,
        storyboard=plan.storyboard.path,
        backend=plan.generation.backend,
        model_id=plan.generation.model_id,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        regenerate=regenerate,
        max_attempts=max_attempts,
        thresholds={"drift": {k: float(v) for k, v in drift_th.items()}, "seam": seam_th},
        summary=summarize(outputs),
        outputs=outputs,
        notes=[*plan.notes, *(notes or [])],
        problems=problems or [],
        budget_usd=budget_usd,
        metrics=metrics,
        possible_duplicate_charges=[
            DuplicateCharge.model_validate(d) for d in possible_duplicate_charges or []
        ],
    )


def analysis_report(results: list[ClipAnalysis], seams: list[SeamResult]) -> Report:
    """A report page for clips from anywhere (``composer analyze --html``): one entry per clip."""
    outputs = []
    for index, result in enumerate(results):
        drift = result.drift
        checks = (*drift_checks(drift), *(discontinuity_check(d) for d in result.discontinuities))
        attempt = Attempt(number=1, seed=0, take_keys=(result.path,), checks=checks)
        decision = Decision(
            action="accept", attempt=1, reason="analysis only", flagged=attempt.verdict != "ok"
        )
        name = Path(result.path).name
        seams_out = []
        if index < len(seams):
            seam = seams[index]
            seams_out.append(
                SeamReport(
                    before=name,
                    after=Path(results[index + 1].path).name,
                    kind="join",
                    t_s=result.duration_s,
                    checked=True,
                    verdict=seam.verdict,
                    checks=_seam_rows(seam),
                )
            )
        segment = SegmentReport(
            id=name,
            scene_id=f"clip {index + 1}",
            prompt=result.path,
            start_s=0.0,
            end_s=result.duration_s,
            attempts=[attempt],
            decisions=[decision],
            kept_attempt=1,
            regenerated=False,
            flagged=attempt.verdict == "regenerate",
            verdict=attempt.verdict,
            curves=list(drift.curves),
            findings=[Explanation(attempt=1, **f.model_dump()) for f in result.findings],
        )
        outputs.append(
            OutputReport(
                name=name,
                path=result.path,
                frames=result.frames_analyzed,
                duration_s=result.duration_s,
                segments=[segment],
                seams=seams_out,
            )
        )
    return Report(
        composer_version=__version__,
        title="composer analyze",
        storyboard=", ".join(r.path for r in results),
        backend="-",
        model_id="-",
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        regenerate=False,
        max_attempts=1,
        thresholds={},
        summary=summarize(outputs),
        outputs=outputs,
    )
