"""Moved to :mod:`composer.timeline` (description, run folder, one writer per format).

Kept so that imports written before the split (``from composer.export.otio import
write_timeline``) still work; new code imports ``composer.timeline``.
"""

from __future__ import annotations

from composer.timeline import (
    FORMATS,
    INSTALL_HINT,
    NAMESPACE,
    TIMELINE_VERSION,
    ClipSpec,
    Format,
    KeptTake,
    MarkerSpec,
    Run,
    TimelineSpec,
    TrackSpec,
    TransitionSpec,
    available,
    default_path,
    describe,
    describe_run,
    edl_paths,
    export,
    kept_takes,
    load_run,
    timeline_notes,
    to_otio,
    to_strings,
    write_timeline,
)

__all__ = [
    "FORMATS",
    "INSTALL_HINT",
    "NAMESPACE",
    "TIMELINE_VERSION",
    "ClipSpec",
    "Format",
    "KeptTake",
    "MarkerSpec",
    "Run",
    "TimelineSpec",
    "TrackSpec",
    "TransitionSpec",
    "available",
    "default_path",
    "describe",
    "describe_run",
    "edl_paths",
    "export",
    "kept_takes",
    "load_run",
    "timeline_notes",
    "to_otio",
    "to_strings",
    "write_timeline",
]
