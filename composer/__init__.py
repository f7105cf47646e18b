"""composer: storyboard -> generated ~20 s segments -> exact-length videos, with drift checks.

The public API (everything else is internal and may change); ``docs/api.md`` has runnable
examples of each::

    import composer
    loaded = composer.load_storyboard("storyboards/demo.yaml")   # located errors on bad input
    plan = composer.make_plan(loaded)                             # pure; plan.outputs, plan.segments
    result = composer.render("storyboards/demo.yaml", "renders/demo", on_progress=print)
    result.outputs                                                # [Path(".../part01.mp4")]
    composer.analyze(result.outputs[0]).drift.verdict             # "ok" | "warn" | "regenerate"
    composer.export_timeline("renders/demo", "fcpxml")            # [Path(".../timeline.fcpxml")]
    composer.to_moviepy("renders/demo")                           # a moviepy clip of part01's timeline
    composer.render_many(["a.yaml", "b.yaml"], "renders")         # renders/a/, renders/b/, batch.json
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer._version import __version__
from composer.analysis import ClipAnalysis, SeamResult
from composer.batch import BatchResult, render_many
from composer.compose.clips import ComposeResult
from composer.errors import (
    BudgetExceeded,
    ComposerError,
    ContentFiltered,
    EnvironmentProblem,
    GenerationError,
    Interrupted,
    MediaError,
    ModelRefused,
    PlanError,
    RetryableError,
    StoryboardError,
    TerminalError,
)
from composer.export.manifest import Manifest
from composer.jobs.remote import JobSettings
from composer.pipeline import Progress, RenderResult, render, validate
from composer.plan.model import Plan
from composer.report.model import Report
from composer.storyboard.lint import LintWarning
from composer.storyboard.load import LoadedStoryboard, load_storyboard
from composer.storyboard.model import Storyboard

if TYPE_CHECKING:
    from composer.camera import CameraPlan
    from composer.timeline import Format

__all__ = [
    "BatchResult",
    "BudgetExceeded",
    "ClipAnalysis",
    "ComposeResult",
    "ComposerError",
    "ContentFiltered",
    "EnvironmentProblem",
    "GenerationError",
    "Interrupted",
    "JobSettings",
    "LintWarning",
    "LoadedStoryboard",
    "Manifest",
    "MediaError",
    "ModelRefused",
    "Plan",
    "PlanError",
    "Progress",
    "RenderResult",
    "Report",
    "RetryableError",
    "SeamResult",
    "Storyboard",
    "StoryboardError",
    "TerminalError",
    "__version__",
    "analyze",
    "compose",
    "export_timeline",
    "lint",
    "load_storyboard",
    "make_plan",
    "render",
    "render_many",
    "score_seams",
    "to_moviepy",
    "validate",
]


def make_plan(storyboard: Storyboard | LoadedStoryboard | str | Path, *, backend: str | None = None) -> Plan:
    """Plan a storyboard (a file path, a loaded file, or a Storyboard) for its backend, or ``backend``."""
    from composer.backends import registry
    from composer.pipeline import load_and_plan
    from composer.plan.planner import make_plan as plan_for

    if isinstance(storyboard, (str, Path)):
        return load_and_plan(storyboard, backend=backend)[1]
    board = storyboard.storyboard if isinstance(storyboard, LoadedStoryboard) else storyboard
    caps = registry.capabilities(backend or board.generation.backend, board.generation.model)
    return plan_for(board, caps, composer_version=__version__)


def lint(storyboard: str | Path | LoadedStoryboard) -> list[LintWarning]:
    """Prompt advice for a storyboard (too short, no motion, negations, conflicts); never blocks a render."""
    from composer.pipeline import lint_storyboard

    return lint_storyboard(storyboard)


def analyze(clip: str | Path, *, camera: str | CameraPlan | None = None, fast: bool = False) -> ClipAnalysis:
    """Drift, jumps, cuts and moments in any clip (``composer analyze``), each flag explained in
    ``.findings``. ``camera`` is the move the clip should have (``"static"``, ``"slow pan left"``,
    or a ``composer.camera.CameraPlan``): camera motion it does not ask for is judged.

    ``fast`` reads only the frames other frames refer to (``composer analyze --fast``).
    """
    from composer.analysis import analyze_clip

    return analyze_clip(Path(clip), camera_planned=camera, fast=fast)


def score_seams(clips: Sequence[str | Path]) -> list[SeamResult]:
    """A continuity score for each join between consecutive clips (``composer analyze --seams``)."""
    from composer.analysis import score_seams as score

    return score([Path(c) for c in clips])


def compose(
    clips: Sequence[str | Path],
    dest: str | Path,
    *,
    crossfade_s: float = 1.0,
    length_s: float | None = None,
    cut_at: Sequence[int] = (),
    on_progress: Callable[[int, int], None] | None = None,
) -> ComposeResult:
    """Join any clips with crossfades (``composer compose``); ``on_progress(done, total)`` in frames."""
    from composer.compose.clips import compose_clips

    return compose_clips(
        [Path(c) for c in clips],
        Path(dest),
        crossfade_s=crossfade_s,
        length_s=length_s,
        cut_at=cut_at,
        on_progress=on_progress,
    )


def export_timeline(run_dir: str | Path, fmt: Format = "otio", dest: str | Path | None = None) -> list[Path]:
    """A render's timeline as ``otio``, ``fcpxml`` or ``edl`` (``composer export``); the files written."""
    from composer.timeline import export

    return export(Path(run_dir), fmt, Path(dest) if dest is not None else None)


def to_moviepy(run_dir: str | Path, output: str | int = 0) -> Any:
    """One output of a render as a moviepy clip of its timeline (segments as subclips of their
    takes, crossfaded); needs moviepy (``composer[edit]``). See ``docs/timeline.md``."""
    from composer.timeline.moviepy_clip import to_moviepy as clip_of

    return clip_of(run_dir, output)
