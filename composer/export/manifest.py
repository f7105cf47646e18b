"""``manifest.json``: what a render used and made (takes, cache hits, outputs, timings, versions).

Versioned; paths are absolute. Keys never appear here: requests hold no credentials. For API
backends every operation the service created is listed (on its take, or among the abandoned
ones), so a bill can be checked against it.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from composer.export.metrics import RunMetrics

MANIFEST_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TakeRecord(_Model):
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


class SegmentRecord(_Model):
    id: str
    take_key: str = Field(description="The take the output uses: the last chunk of the kept attempt.")
    attempts: int
    judge_s: float = Field(description="Time spent measuring drift and seams, all attempts.")
    started_s: float = Field(description="When work on it began, seconds after the render started.")
    accepted_s: float = Field(description="When its take was accepted, seconds after the render started.")
    normalize_s: float = Field(
        0.0, description="Bringing the accepted take to the output encoding (in the background)."
    )


class KnobNotSent(_Model):
    """A knob a segment asked for that its backend cannot take: its takes were made without it."""

    segment: str
    knob: str
    value: float
    backend: str


class FailureRecord(_Model):
    segment: str
    kind: str = Field(description="filtered, failed, budget or error.")
    message: str


class OutputRecord(_Model):
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


class Manifest(_Model):
    version: int = MANIFEST_VERSION
    composer_version: str
    storyboard: str
    backend: str
    model_id: str
    plan: str
    cache_dir: str
    takes: list[TakeRecord]
    segments: list[SegmentRecord] = Field(default_factory=list)
    outputs: list[OutputRecord]
    cache_hits: int
    generated: int
    cost_usd: float
    timings_s: dict[str, float]
    versions: dict[str, str]
    notes: list[str] = Field(default_factory=list)
    status: str = Field("complete", description="complete, or failed when segments could not be made.")
    failures: list[FailureRecord] = Field(default_factory=list)
    abandoned_operations: list[dict[str, str]] = Field(
        default_factory=list, description="Operations that ended without a take (filtered, failed, expired)."
    )
    possible_duplicate_charges: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Takes whose creates got no answer and may have started extra, paid operations: "
        "the take's operations, duplicates found by name, and when each unanswered create was sent.",
    )
    left_by_earlier_runs: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Journal entries of runs that stopped and no live process holds: operations "
        "submitted (or creates sent) for takes this render did not need.",
    )
    budget_usd: float | None = None
    metrics: RunMetrics | None = None  # latency percentiles, success rate, retries, cost (docs/metrics.md)
    fallbacks: list[dict[str, str | int]] = Field(
        default_factory=list,
        description="Chunks made with the storyboard's fallback model after the service refused the planned one.",
    )
    knobs_not_sent: list[KnobNotSent] = Field(
        default_factory=list,
        description="Image-guidance knobs the storyboard set that the backend does not take, so no request carried them.",
    )


def versions(ffmpeg_version: str, ffmpeg_path: str) -> dict[str, str]:
    import numpy
    import pydantic

    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "ffmpeg": ffmpeg_version,
        "ffmpeg_path": ffmpeg_path,
        "numpy": numpy.__version__,
        "pydantic": pydantic.__version__,
    }


def read_outputs(path: Path) -> dict[str, dict[str, Any]]:
    """Output records of an earlier manifest by name ({} if absent or unreadable)."""
    try:
        data = Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {o.name: o.model_dump() for o in data.outputs}
