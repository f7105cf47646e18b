"""composer: storyboard -> generated ~20 s segments -> exact-length videos, with drift checks.

The public API (everything else is internal and may change)::

    import composer
    loaded = composer.load_storyboard("storyboards/demo.yaml")   # located errors on bad input
    plan = composer.make_plan(loaded)                             # pure; plan.outputs, plan.segments
    result = composer.render("storyboards/demo.yaml", "renders/demo", on_progress=print)
    result.outputs                                                # [Path(".../part01.mp4")]
"""

from __future__ import annotations

from pathlib import Path

from composer._version import __version__
from composer.errors import (
    ComposerError,
    ContentFiltered,
    EnvironmentProblem,
    GenerationError,
    Interrupted,
    MediaError,
    PlanError,
    RetryableError,
    StoryboardError,
    TerminalError,
)
from composer.pipeline import Progress, RenderResult, render, validate
from composer.plan.model import Plan
from composer.storyboard.load import LoadedStoryboard, load_storyboard
from composer.storyboard.model import Storyboard

__all__ = [
    "ComposerError",
    "ContentFiltered",
    "EnvironmentProblem",
    "GenerationError",
    "Interrupted",
    "LoadedStoryboard",
    "MediaError",
    "Plan",
    "PlanError",
    "Progress",
    "RenderResult",
    "RetryableError",
    "Storyboard",
    "StoryboardError",
    "TerminalError",
    "__version__",
    "load_storyboard",
    "make_plan",
    "render",
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
    return plan_for(board, registry.capabilities(backend or board.generation.backend), composer_version=__version__)
