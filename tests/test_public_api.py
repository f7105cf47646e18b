"""The curated public API: nothing becomes public by accident."""

from __future__ import annotations

import composer

EXPECTED = [
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


def test_all_is_curated_and_sorted() -> None:
    assert composer.__all__ == EXPECTED
    assert composer.__all__ == sorted(composer.__all__)
    for name in composer.__all__:
        assert hasattr(composer, name), name


def test_make_plan_accepts_a_storyboard_object() -> None:
    board = composer.Storyboard.model_validate(
        {"scenes": [{"id": "a", "prompt": "a calm sea", "duration_s": 60}]}
    )
    plan = composer.make_plan(board)
    assert [o.frames for o in plan.outputs] == [1440]
