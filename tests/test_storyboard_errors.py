"""Malformed storyboards: each must be refused with exit code 2 and a located, helpful message.

Every case is a small file written into ``tmp_path``. The same case is checked twice: once
through the loader and planner directly (the :class:`~composer.errors.Issue` it yields must
point at the right line and field), and once through the command line, whose stderr must
show ``FILE:LINE:``, the field path and a hint of what is allowed. A few cases also go
through ``render`` to show that a refused storyboard writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from composer.backends.local import CAPABILITIES
from composer.errors import Issue, PlanError, StoryboardError
from composer.plan import make_plan
from composer.storyboard import load_storyboard

HEAD = "version: 1\ntitle: broken on purpose\nscenes:\n"
SCENE_A = "  - id: a\n    prompt: waves roll onto a beach, slow pan left\n    duration_s: 30\n"
SCENE_B = "  - id: b\n    prompt: a lighthouse at dusk, static shot\n    duration_s: 30\n"


@dataclass(frozen=True)
class Case:
    """One malformed storyboard and what its error must say."""

    name: str
    text: str
    at: str  # text on the line the error must point at
    field: str  # field path in the message ("" for syntax errors)
    hint: str  # part of the message saying what is wrong or what is allowed
    suffix: str = ".yaml"
    occurrence: int = 1  # which occurrence of ``at`` (duplicates point at the second)
    line: int | None = None  # the line, where it is not simply the line holding ``at``

    def expected_line(self) -> int:
        if self.line is not None:
            return self.line
        lines = self.text.splitlines()
        hits = [number for number, text in enumerate(lines, start=1) if self.at in text]
        assert len(hits) >= self.occurrence, f"{self.at!r} is not in case {self.name}"
        return hits[self.occurrence - 1]


CASES = [
    Case(
        "yaml-syntax",
        HEAD + "  - id: a\n    prompt: sea\n    camera: pan: left\n    duration_s: 60\n",
        at="camera: pan: left",
        field="",
        hint="mapping values are not allowed here",
    ),
    Case(
        "yaml-unclosed-bracket",
        HEAD + "  - id: a\n    prompt: [sea, sky\n    duration_s: 60\n",
        at="duration_s: 60",
        field="",
        hint="that started at line 5",
    ),
    Case(
        "tab-indentation",
        HEAD + "  - id: a\n\tprompt: sea\n    duration_s: 60\n",
        at="\tprompt",
        field="",
        hint="tabs are not allowed for indentation; use spaces",
    ),
    Case(
        "wrong-type",
        HEAD + SCENE_A + "  - id: b\n    prompt: hills\n    duration_s: long\n",
        at="duration_s: long",
        field="scenes[1].duration_s",
        hint="valid number",
    ),
    Case(
        "unknown-top-level-key",
        "version: 1\ntitel: typo\nscenes:\n" + SCENE_A + SCENE_B,
        at="titel:",
        field="titel",
        hint="allowed here: continuity, generation, output, scenes, style, title, version",
    ),
    Case(
        "unknown-scene-key",
        HEAD + SCENE_A + "  - id: b\n    prompt: hills\n    duration_s: 30\n    camara: static\n",
        at="camara: static",
        field="scenes[1].camara",
        hint=(
            "allowed here: camera, duration_s, id, image, motion_intensity, negative_prompt, prompt, seed, "
            "style_strength, transition_out"
        ),
    ),
    Case(
        "negative-duration",
        HEAD + SCENE_A + "  - id: b\n    prompt: hills\n    duration_s: -5\n",
        at="duration_s: -5",
        field="scenes[1].duration_s",
        hint="greater than 0",
    ),
    Case(
        "zero-duration",
        HEAD + "  - id: a\n    prompt: sea\n    duration_s: 0\n",
        at="duration_s: 0",
        field="scenes[0].duration_s",
        hint="greater than 0",
    ),
    Case(
        "missing-image",
        HEAD + SCENE_A + "    image: pictures/nowhere.png\n" + SCENE_B,
        at="image: pictures/nowhere.png",
        field="scenes[0].image",
        hint="paths are relative to the storyboard file",
    ),
    Case(
        "unreadable-image",
        HEAD + SCENE_A + SCENE_B + "    image: not_an_image.png\n",
        at="image: not_an_image.png",
        field="scenes[1].image",
        hint="use a PNG, JPEG or WebP file",
    ),
    Case(
        "crossfade-over-the-limit",
        "version: 1\noutput:\n  crossfade_s: 30\ngeneration:\n  segment_s: 20\nscenes:\n" + SCENE_A + SCENE_B,
        at="crossfade_s: 30",
        field="output.crossfade_s",
        hint="less than or equal to 10",
    ),
    Case(
        "crossfade-longer-than-a-segment",
        "version: 1\noutput:\n  crossfade_s: 8\ngeneration:\n  segment_s: 5\nscenes:\n" + SCENE_A + SCENE_B,
        at="crossfade_s: 8",
        field="output.crossfade_s",
        hint="shorten output.crossfade_s or lengthen generation.segment_s",
    ),
    Case(
        "fps-zero",
        "version: 1\noutput:\n  fps: 0\nscenes:\n" + SCENE_A + SCENE_B,
        at="fps: 0",
        field="output.fps",
        hint="use a number above 0 such as 24 or 30000/1001",
    ),
    Case(
        "resolution-zero",
        "version: 1\noutput:\n  resolution: 0x0\nscenes:\n" + SCENE_A + SCENE_B,
        at="resolution: 0x0",
        field="output.resolution",
        hint="0x0 has a zero side; use a size such as 1280x720",
    ),
    Case(
        "resolution-odd",
        "version: 1\noutput:\n  resolution: 1281x721\nscenes:\n" + SCENE_A + SCENE_B,
        at="resolution: 1281x721",
        field="output.resolution",
        hint="needs even sizes (try 1282x722)",
    ),
    Case(
        "resolution-garbage",
        "version: 1\noutput:\n  resolution: big\nscenes:\n" + SCENE_A + SCENE_B,
        at="resolution: big",
        field="output.resolution",
        hint="expected WIDTHxHEIGHT such as 1280x720 (or 480p, 720p, 1080p)",
    ),
    Case(
        "empty-scene-list",
        "version: 1\ntitle: nothing\nscenes: []\n",
        at="scenes: []",
        field="scenes",
        hint="add at least one",
    ),
    Case(
        "empty-prompt",
        HEAD + "  - id: a\n    prompt: ''\n    duration_s: 60\n",
        at="prompt: ''",
        field="scenes[0].prompt",
        hint="the prompt is empty",
    ),
    Case(
        "blank-prompt",
        HEAD + "  - id: a\n    prompt: '   '\n    duration_s: 60\n",
        at="prompt: '   '",
        field="scenes[0].prompt",
        hint="the prompt is empty",
    ),
    Case(
        "missing-prompt",
        HEAD + "  - id: a\n    duration_s: 60\n",
        at="- id: a",
        field="scenes[0].prompt",
        hint="this field is required",
    ),
    Case(
        "duplicate-scene-id",
        HEAD
        + SCENE_A
        + SCENE_B.replace("duration_s: 30", "duration_s: 15")
        + "  - id: a\n    prompt: the beach again\n    duration_s: 15\n",
        at="- id: a",
        occurrence=2,
        field="scenes[2].id",
        hint="duplicate scene id 'a'",
    ),
    Case(
        "duplicate-scene-id-with-spaces",
        HEAD + SCENE_A + "  - id: 'a '\n    prompt: hills\n    duration_s: 30\n",
        at="- id: 'a '",
        field="scenes[1].id",
        hint="duplicate scene id 'a'",
    ),
    Case(
        "duplicate-yaml-key",
        HEAD + "  - id: a\n    prompt: sea\n    duration_s: 60\n    prompt: sky\n",
        at="prompt:",
        occurrence=2,
        field="scenes[0].prompt",
        hint="key 'prompt' appears twice",
    ),
    Case(
        "json-syntax",
        '{\n  "version": 1,\n  "scenes": [\n    {"id": "a", "prompt": "sea", "duration_s": 60,}\n  ]\n}\n',
        at='"duration_s": 60,}',
        field="",
        hint="not valid JSON",
        suffix=".json",
    ),
    Case(
        "json-unknown-key",
        '{\n  "version": 1,\n  "scenes": [\n    {"id": "a", "prompt": "sea", "duration_s": 60,\n'
        '     "colour": "red"}\n  ]\n}\n',
        at='"colour"',
        field="scenes[0].colour",
        hint="allowed here: camera",
        suffix=".json",
    ),
    Case(
        "top-level-list",
        "- id: a\n  prompt: sea\n  duration_s: 60\n",
        at="- id: a",
        field="",
        hint="the top level must be a mapping with `scenes:`",
    ),
    Case(
        "version-2",
        "version: 2\nscenes:\n" + SCENE_A + SCENE_B,
        at="version: 2",
        field="version",
        hint="Input should be 1 (got 2)",
    ),
    Case(
        "remainder-error",
        "version: 1\noutput:\n  length_s: 60\n  remainder: error\nscenes:\n"
        + SCENE_A
        + SCENE_B.replace("duration_s: 30", "duration_s: 40"),
        at="remainder: error",
        field="output.remainder",
        hint="set output.remainder to extend or drop",
    ),
    Case(
        "remainder-unknown",
        "version: 1\noutput:\n  remainder: pad\nscenes:\n" + SCENE_A + SCENE_B,
        at="remainder: pad",
        field="output.remainder",
        hint="'extend', 'drop' or 'error' (got 'pad')",
    ),
    Case(
        "transition-unknown",
        HEAD + SCENE_A + "    transition_out: dissolve\n" + SCENE_B,
        at="transition_out: dissolve",
        field="scenes[0].transition_out",
        hint="'crossfade' or 'cut' (got 'dissolve')",
    ),
    Case(
        "empty-output-section",
        "version: 1\noutput:\nscenes:\n" + SCENE_A + SCENE_B,
        at="output:",
        field="output",
        hint="expected a mapping",
    ),
    Case(
        "scene-shorter-than-crossfade",
        HEAD
        + "  - id: a\n    prompt: a flash of lightning\n    duration_s: 0.5\n"
        + "  - id: b\n    prompt: rain on a window\n    duration_s: 59.5\n",
        at="duration_s: 0.5",
        field="scenes[0].duration_s",
        hint="set transition_out: cut",
    ),
    Case(
        "numeric-scene-id",
        HEAD + "  - id: 1\n    prompt: sea\n    duration_s: 60\n",
        at="- id: 1",
        field="scenes[0].id",
        hint="put it in quotes",
    ),
    Case(
        "scene-id-with-spaces",
        HEAD + "  - id: open sea\n    prompt: sea\n    duration_s: 60\n",
        at="- id: open sea",
        field="scenes[0].id",
        hint="use letters, digits, '_', '.' and '-'",
    ),
]


def _write(folder: Path, case: Case) -> Path:
    """Write ``case`` (and the images it refers to) into ``folder``; returns the storyboard path."""
    ok, png = cv2.imencode(".png", np.full((32, 32, 3), 128, np.uint8))
    assert ok
    (folder / "good.png").write_bytes(png.tobytes())
    (folder / "not_an_image.png").write_bytes(b"this is text, not a PNG\n")
    path = folder / f"{case.name}{case.suffix}"
    path.write_text(case.text, encoding="utf-8")
    return path


def _issues(path: Path) -> list[Issue]:
    """Load and plan ``path`` as ``composer validate`` does for the local backend."""
    try:
        loaded = load_storyboard(path)
    except StoryboardError as exc:
        return exc.issues
    try:
        make_plan(loaded.storyboard, CAPABILITIES)
    except PlanError as exc:
        return [loaded.locate(exc.field, str(exc))]
    return []


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


def test_at_least_fourteen_cases() -> None:
    assert len(CASES) >= 14
    assert len({c.name for c in CASES}) == len(CASES)


def test_loader_and_planner_locate_the_defect(case: Case, tmp_path: Path) -> None:
    path = _write(tmp_path, case)
    issues = _issues(path)
    assert issues, f"{case.name} was accepted"
    matching = [i for i in issues if i.field == case.field and case.hint in i.message]
    assert matching, "\n".join(str(i) for i in issues)
    issue = matching[0]
    assert issue.file == str(path)
    assert issue.line == case.expected_line(), str(issue)
    assert issue.column is not None and issue.column >= 1


def test_validate_reports_file_line_field_and_hint(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from composer.cli import main

    path = _write(tmp_path, case)
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{path}:{case.expected_line()}:" in err
    if case.field:
        assert f" {case.field}: " in err
    assert case.hint in err
    assert "Traceback" not in err


RENDER_CASES = ["yaml-syntax", "missing-image", "duplicate-scene-id", "remainder-error", "resolution-odd"]


@pytest.mark.parametrize("name", RENDER_CASES)
def test_render_refuses_and_writes_nothing(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from composer.cli import main

    case = next(c for c in CASES if c.name == name)
    path = _write(tmp_path, case)
    out_dir = tmp_path / "renders" / "out"
    code = main(["render", str(path), "-o", str(out_dir)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{path}:{case.expected_line()}:" in err
    assert not out_dir.exists() or not any(out_dir.iterdir())
    assert not (tmp_path / "renders").exists() or not any((tmp_path / "renders").rglob("*.mp4"))


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        "version: 1\n"
        "output:\n"
        "  fps: 0\n"
        "  resolution: 1281x721\n"
        "scenes:\n"
        "  - id: a\n"
        "    prompt: sea\n"
        "    duration_s: -1\n"
        "    colour: blue\n"
    )
    path = tmp_path / "many.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StoryboardError) as caught:
        load_storyboard(path)
    found = {(i.field, i.line) for i in caught.value.issues}
    assert found == {
        ("output.fps", 3),
        ("output.resolution", 4),
        ("scenes[0].duration_s", 8),
        ("scenes[0].colour", 9),
    }


def test_unknown_key_suggests_the_closest_field(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(HEAD + "  - id: a\n    prompt: sea\n    duraton_s: 60\n", encoding="utf-8")
    with pytest.raises(StoryboardError) as caught:
        load_storyboard(path)
    messages = [i.message for i in caught.value.issues if i.field == "scenes[0].duraton_s"]
    assert messages and "did you mean 'duration_s'?" in messages[0]


def test_missing_storyboard_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from composer.cli import main

    path = tmp_path / "absent.yaml"
    assert main(["validate", str(path)]) == 2
    assert f"{path}: file not found" in capsys.readouterr().err
