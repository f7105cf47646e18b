"""A render's edit for editing tools: ``timeline.otio`` and the formats editors open.

Three layers, each its own module:

* ``describe.py`` (pure): the render as a :class:`TimelineSpec` of clips, dissolves and
  markers in whole frames, from its plan, manifest and report (values, not files);
* ``run.py`` (I/O): reading a run folder, linking the kept takes into ``RUN/media/``, and
  :func:`export` / :func:`write_timeline`;
* ``build.py`` (the only importer of ``opentimelineio``) and ``writers.py`` (one writer per
  format: otio, otioz, fcpxml, xmeml, edl, mlt, xges).

``moviepy.py`` (``composer.to_moviepy``) plays the same description with moviepy.
See ``docs/timeline.md``.
"""

from __future__ import annotations

from composer.timeline.build import INSTALL_HINT, available, to_otio
from composer.timeline.describe import (
    NAMESPACE,
    TIMELINE_VERSION,
    ClipSpec,
    KeptTake,
    MarkerSpec,
    TimelineSpec,
    TrackSpec,
    TransitionSpec,
    describe,
    describe_render,
    kept_takes,
)
from composer.timeline.run import (
    Run,
    default_path,
    describe_run,
    export,
    load_run,
    timeline_notes,
    write_timeline,
)
from composer.timeline.writers import FORMATS, Format, edl_paths, paths_for, to_strings

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
    "describe_render",
    "describe_run",
    "edl_paths",
    "export",
    "kept_takes",
    "load_run",
    "paths_for",
    "timeline_notes",
    "to_otio",
    "to_strings",
    "write_timeline",
]
