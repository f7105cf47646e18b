"""``manifest.json``: what a render used and made (takes, cache hits, outputs, timings, versions).

Versioned; paths are absolute. Keys never appear here: requests hold no credentials.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
    outputs: list[OutputRecord]
    cache_hits: int
    generated: int
    cost_usd: float
    timings_s: dict[str, float]
    versions: dict[str, str]
    notes: list[str] = Field(default_factory=list)


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
