"""``manifest.json``: what a render used and made (takes, cache hits, outputs, timings, versions).

Versioned; paths are absolute. Keys never appear here: requests hold no credentials. For API
backends every operation the service created is listed (on its take, or among the abandoned
ones), so a bill can be checked against it.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from pydantic import Field

from composer.export.records import (
    FailureRecord,
    KnobNotSent,
    OutputRecord,
    RunMetrics,
    SegmentRecord,
    TakeRecord,
)
from composer.models import Frozen

MANIFEST_VERSION = 1


class Manifest(Frozen):
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
    cost_usd: float = Field(description="What the delivered takes cost (cached takes count 0).")
    possibly_charged_usd: float = Field(
        0.0,
        description="Beyond cost_usd: what the possible duplicate charges may have cost (the price "
        "of each unanswered create or duplicate found), to reconcile with the service's bill.",
    )
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
