"""Plans and previews on disk: reading a render's input once, writing ``plan.json``, reading a preview.

What lives here: :func:`read_source` (the file given to ``composer render``, read once: a
``plan.json`` or a storyboard), :func:`read_plan` (a ``plan.json``, checked like a storyboard:
it may have been edited, or handed over by someone else), :func:`write_plan` and
:func:`read_preview` (a preview render's plan and the attempts it kept, for ``--final``).

A plan is an input like any other. Reading one checks a regular file of bounded size, validates
it against :class:`~composer.plan.model.Plan` with every problem located at its line, and makes
the checks the model cannot make alone: output names must be plain file names, so
``../../x.mp4`` or an absolute name cannot write outside the ``-o`` folder. What does not live
here: planning (``planner.py``) or rendering (``pipeline.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from pydantic import ValidationError

from composer.decide import Attempt
from composer.errors import PlanError, StoryboardError
from composer.files import NotReadable, read_regular, write_json_atomic
from composer.plan.model import Plan
from composer.storyboard.load import (
    MAX_FILE_BYTES,
    LoadedStoryboard,
    Loc,
    Position,
    issue_at,
    load_storyboard,
    parse_text,
)

#: The longest output name (file systems allow 255 bytes).
MAX_NAME_BYTES = 255
_MAKE_ONE = "make one with `composer plan FILE --json`"


@dataclass(frozen=True)
class Source:
    """A render's input file, read once: the plan of a ``plan.json``, or a loaded storyboard."""

    path: Path
    plan: Plan | None = None
    storyboard: LoadedStoryboard | None = None


def read_source(path: str | Path) -> Source:
    """The file at ``path`` as a plan (a ``plan.json``) or else a storyboard; located errors for either."""
    plan = read_plan(path)
    if plan is not None:
        return Source(Path(path), plan=plan)
    return Source(Path(path), storyboard=load_storyboard(path))


def write_plan(path: Path, plan: Plan) -> None:
    """Write ``plan`` to ``path`` (under a temporary name, then renamed)."""
    write_json_atomic(path, plan.model_dump(mode="json"))


#: Per segment of a preview: the attempt it kept, and every attempt made.
Kept = dict[str, tuple[int, list[Attempt]]]


def read_preview(run_dir: Path) -> tuple[Plan, Kept]:
    """A preview's plan, and per segment the attempt it kept with every attempt made."""
    # Imported here: the report's model brings the analysis (OpenCV) with it, which reading a
    # storyboard or a plan (the config, the CLI) must not pay for.
    from composer.report.model import Report

    plan = read_plan(run_dir / "plan.json")
    try:
        report = Report.model_validate_json((run_dir / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = None
    if plan is None or report is None:
        raise PlanError(
            f"{run_dir} holds no finished render (plan.json and report.json); "
            "render the preview with `composer render FILE --preview` first"
        )
    kept = {s.id: (s.kept_attempt, list(s.attempts)) for o in report.outputs for s in o.segments}
    return plan, kept


def read_plan(path: str | Path) -> Plan | None:
    """The plan in ``path`` if it is a ``plan.json``, else None (then it is read as a storyboard).

    A file that looks like a plan (a JSON mapping with ``outputs`` and ``capabilities``) but
    is not a valid one raises :class:`StoryboardError` listing every located problem.
    """
    path = Path(path)
    if path.suffix.lower() != ".json":
        return None
    try:
        raw = read_regular(path, max_bytes=MAX_FILE_BYTES, what="plan")
        data = json.loads(raw.decode("utf-8"))
    except (NotReadable, ValueError, RecursionError):
        return None  # not a readable JSON file: the storyboard loader says what is wrong with it
    if not isinstance(data, dict) or "outputs" not in data or "capabilities" not in data:
        return None
    file = str(path)
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        positions = _positions(raw, file)
        issues = [
            issue_at(
                file,
                positions,
                tuple(error["loc"]),
                f"{error['msg']}; this is not a valid plan.json ({_MAKE_ONE})",
            )
            for error in exc.errors(include_url=False)
        ]
        raise StoryboardError(issues) from None
    problems = [
        (("outputs", k, "name"), why)
        for k, output in enumerate(plan.outputs)
        if (why := name_problem(output.name)) is not None
    ]
    if problems:
        positions = _positions(raw, file)
        raise StoryboardError([issue_at(file, positions, loc, why) for loc, why in problems])
    return plan


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a plain file name an output may have, or None."""
    shown = repr(name) if len(name) <= 60 else repr(name[:59] + "…")
    plain = (
        name not in ("", ".", "..")
        and PurePosixPath(name).name == name
        and PureWindowsPath(name).name == name
        and not any(ord(c) < 32 or ord(c) == 127 for c in name)
    )
    if not plain:
        return (
            f"the output name {shown} is not a plain file name; outputs are written inside the -o folder, "
            "so a name holds no folder, no '..' and no control character (such as part01.mp4)"
        )
    if name.startswith("."):
        return f"the output name {shown} starts with '.', which hides it; use a name such as part01.mp4"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"the output name is longer than {MAX_NAME_BYTES} bytes"
    if not name.lower().endswith(".mp4"):
        return f"the output name {shown} does not end in .mp4; outputs are MP4 files"
    return None


def _positions(raw: bytes, file: str) -> dict[Loc, Position]:
    # JSON is YAML, so the storyboard parser gives each key's line; only wanted when something
    # is wrong, because it is slower than json.loads.
    try:
        return parse_text(raw.decode("utf-8"), file)[1]
    except (StoryboardError, UnicodeDecodeError):
        return {}
