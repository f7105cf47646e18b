"""Prompt lint: each rule fires at the right line and field, the shipped storyboards lint clean,
and warnings never block ``validate`` unless ``--strict`` asks them to.

The storyboards are small files written into ``tmp_path``; a warning's expected line is found
by searching the file's text, so a case is read in one place.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from composer import pipeline
from composer.backends import registry
from composer.errors import StoryboardError
from composer.storyboard import load_storyboard
from composer.storyboard.lint import (
    MAX_WORDS,
    MIN_WORDS,
    PROMPT_TOKEN_LIMIT,
    RULES,
    LintWarning,
    estimate_tokens,
    lint,
    word_count,
)

BOARDS = Path(__file__).resolve().parent.parent / "storyboards"

# A storyboard written to trip every rule once, and a clean scene that must stay quiet.
TRIPS = """\
version: 1
title: lint on purpose
style: Soft film look in warm colours, no text overlays.
scenes:
  - id: clean
    duration_s: 20
    camera: slow pan right
    prompt: >-
      A quiet harbour at dawn. Small sailing boats rock gently on calm water while the low sun
      rises over a hazy headland and gulls drift overhead.
  - id: short
    duration_s: 20
    camera: static
    prompt: A red door.
  - id: long
    duration_s: 20
    camera: slow dolly forward
    prompt: >-
      {long}
  - id: still-life
    duration_s: 20
    prompt: >-
      A white porcelain vase on a wooden table beside a tall window, soft afternoon light on
      the wall behind it, a bowl of lemons and a folded linen cloth next to it.
  - id: beach
    duration_s: 20
    camera: slow pan left
    negative_prompt: blur
    prompt: >-
      A wide sandy beach at sunrise with no people, waves rolling in gently under a pink sky;
      do not show any buildings along the shore.
  - id: hummingbird
    duration_s: 20
    prompt: >-
      An extreme close-up of a hummingbird's feathers in intricate detail while it darts
      rapidly between bright flowers in a summer garden full of colour.
  - id: village
    duration_s: 20
    camera: static
    prompt: >-
      A mountain village at dusk with lights coming on in the windows one by one; the camera
      pans slowly left across the rooftops towards the church tower.
  - id: canyon
    duration_s: 20
    camera: slow zoom in
    prompt: >-
      A time-lapse of clouds drifting over a desert canyon, shown in slow motion, as shadows
      sweep across the red rock walls and the light changes from gold to blue.
  - id: camera-clash
    duration_s: 20
    camera: locked-off tripod shot, slow pan left
    prompt: >-
      A lighthouse on a cliff above a grey winter sea, its beam sweeping over the waves as
      rain squalls pass slowly along the horizon.
  - id: chase
    duration_s: 20
    camera: tracking shot beside the car
    style_strength: 0.9
    prompt: >-
      A red sports car races along a coastal road at sunset, spray rising from the wet tarmac
      while gulls wheel over the cliffs beside it.
""".replace(
    "{long}",
    " ".join(
        ["A long caravan of camels walks slowly across golden dunes under a pale sky while the wind"] * 6
    ),
)

# (rule, field, text on the line the warning must point at)
EXPECTED = [
    ("negation", "style", "style: Soft film look"),
    ("prompt-short", "scenes[1].prompt", "prompt: A red door."),
    ("prompt-long", "scenes[2].prompt", "id: long"),  # the prompt key is the line after
    ("no-motion", "scenes[3].prompt", "id: still-life"),
    ("negation", "scenes[4].prompt", "id: beach"),
    ("conflict", "scenes[5].prompt", "id: hummingbird"),
    ("conflict", "scenes[6].prompt", "id: village"),
    ("conflict", "scenes[7].prompt", "id: canyon"),
    ("conflict", "scenes[8].camera", "camera: locked-off tripod shot"),
    ("style-motion", "scenes[9].style_strength", "style_strength: 0.9"),
]
# With a backend that does not take the knob (gemini), after the others.
KNOB_EXPECTED = [("knob-unsupported", "scenes[9].style_strength", "style_strength: 0.9")]


def _line_of(text: str, needle: str) -> int:
    lines = text.splitlines()
    hits = [number for number, line in enumerate(lines, start=1) if needle in line]
    assert len(hits) == 1, f"{needle!r} is not on exactly one line"
    number = hits[0]
    if needle.startswith("id: "):
        # Point at the scene's `prompt:` key, a few lines below its id.
        number += next(i for i, line in enumerate(lines[number - 1 :]) if line.strip().startswith("prompt:"))
    return number


@pytest.fixture
def trips(tmp_path: Path) -> Path:
    path = tmp_path / "trips.yaml"
    path.write_text(TRIPS, encoding="utf-8")
    return path


def test_each_rule_fires_at_its_line_and_field(trips: Path) -> None:
    warnings = lint(load_storyboard(trips), capabilities=registry.capabilities("gemini"))
    found = [(w.rule, w.issue.field, w.issue.line) for w in warnings]
    expected = [(rule, field, _line_of(TRIPS, at)) for rule, field, at in EXPECTED + KNOB_EXPECTED]
    assert found == expected, "\n".join(str(w) for w in warnings)
    assert {rule for rule, _, _ in found} == set(RULES)
    for warning in warnings:
        assert warning.issue.file == str(trips)
        assert warning.issue.column is not None and warning.issue.column >= 1
        assert warning.message == warning.issue.message


def test_messages_say_what_to_do(trips: Path) -> None:
    by_field = {(w.rule, w.issue.field): w.message for w in lint(load_storyboard(trips))}
    beach = by_field[("negation", "scenes[4].prompt")]
    assert "'no people'" in beach and "'do not show any buildings'" in beach
    assert "add 'people, buildings' to this scene's `negative_prompt`" in beach  # it has one already
    assert "each scene's `negative_prompt`" in by_field[("negation", "style")]
    assert "'text overlays'" in by_field[("negation", "style")]
    assert f"at least {MIN_WORDS} words" in by_field[("prompt-short", "scenes[1].prompt")]
    assert "from `style`" in by_field[("prompt-short", "scenes[1].prompt")]
    assert f"past about {MAX_WORDS} words" in by_field[("prompt-long", "scenes[2].prompt")]
    assert "camera" in by_field[("no-motion", "scenes[3].prompt")]
    hummingbird = by_field[("conflict", "scenes[5].prompt")]
    assert (
        "'rapidly'" in hummingbird and "'extreme close-up'" in hummingbird and "widen the shot" in hummingbird
    )
    village = by_field[("conflict", "scenes[6].prompt")]
    assert "'static' (in `camera:`)" in village and "'pans' (in the prompt)" in village
    assert "'time-lapse'" in by_field[("conflict", "scenes[7].prompt")]


def test_warning_text_is_file_line_column_field_rule_message(trips: Path) -> None:
    warning = lint(load_storyboard(trips))[1]
    line = _line_of(TRIPS, "prompt: A red door.")
    assert str(warning).startswith(
        f"{trips}:{line}:5: scenes[1].prompt: warning[prompt-short]: the prompt as sent"
    )
    assert str(warning.as_error()).startswith(f"{trips}:{line}:5: scenes[1].prompt: error[prompt-short]: ")


def test_lint_warning_is_frozen(trips: Path) -> None:
    warning = lint(load_storyboard(trips))[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        warning.rule = "conflict"  # type: ignore[misc]


@pytest.mark.parametrize("name", ["demo.yaml", "long.yaml", "demo.json"])
def test_shipped_storyboards_lint_clean(name: str) -> None:
    assert [str(w) for w in lint(load_storyboard(BOARDS / name))] == []


def _board(
    tmp_path: Path, prompt: str, *, style: str = "", camera: str | None = None, name: str = "b.yaml"
) -> Path:
    lines = ["version: 1", f"style: {style!r}" if style else "", "scenes:", "  - id: a", "    duration_s: 20"]
    if camera is not None:
        lines.append(f"    camera: {camera!r}")
    lines.append(f"    prompt: {prompt!r}")
    path = tmp_path / name
    path.write_text("\n".join(line for line in lines if line) + "\n", encoding="utf-8")
    return path


def _rules(path: Path) -> list[str]:
    return [w.rule for w in lint(load_storyboard(path))]


MOVING = "Waves roll slowly onto a pale beach while gulls drift above the dunes at dawn"  # 15 words


def test_length_counts_the_style_line_but_points_at_the_prompt(tmp_path: Path) -> None:
    # 8 words alone, 8 + 11 with the style: long enough as sent.
    assert _rules(_board(tmp_path, "Waves roll slowly onto a pale sandy beach.")) == ["prompt-short"]
    style = "Soft natural light, gentle film grain, muted warm palette, 35 mm."
    assert _rules(_board(tmp_path, "Waves roll slowly onto a pale sandy beach.", style=style)) == []
    # 75 words alone is fine; with the style it is past MAX_WORDS, reported at the prompt.
    prompt = " ".join([MOVING] * 5)
    assert word_count(prompt) == 75
    assert _rules(_board(tmp_path, prompt)) == []
    path = _board(tmp_path, prompt, style=style)
    (warning,) = lint(load_storyboard(path))
    assert (warning.rule, warning.issue.field, warning.issue.line) == ("prompt-long", "scenes[0].prompt", 6)
    assert "86 words, 11 of them from `style`" in warning.message


def test_past_the_token_limit_says_so(tmp_path: Path) -> None:
    # Short words, so that it is past the limit and still within the 4000 characters a prompt may have.
    prompt = " ".join(["Gulls fly low as a red sun sets and the sea rolls in."] * 62)  # 806 words
    assert estimate_tokens(prompt) > PROMPT_TOKEN_LIMIT
    (warning,) = lint(load_storyboard(_board(tmp_path, prompt)))
    assert warning.rule == "prompt-long"
    assert f"past Veo's {PROMPT_TOKEN_LIMIT}-token limit" in warning.message


def test_token_estimate_takes_the_larger_of_words_and_characters() -> None:
    assert estimate_tokens("one two three four five six seven eight nine ten") == 13  # 10 words x 1.3
    assert estimate_tokens("a" * 400) == 100  # one long word: 400 characters / 4


def test_camera_field_counts_as_motion(tmp_path: Path) -> None:
    prompt = "A white porcelain vase on a wooden table beside a tall window in soft afternoon light"
    assert _rules(_board(tmp_path, prompt)) == ["no-motion"]
    assert _rules(_board(tmp_path, prompt, camera="static")) == []
    assert _rules(_board(tmp_path, prompt, camera="slow push in")) == []
    assert _rules(_board(tmp_path, prompt + ", static shot")) == []
    # A style line that moves the camera moves every scene.
    assert _rules(_board(tmp_path, prompt, style="Handheld camera throughout.")) == []


def test_negated_words_do_not_count(tmp_path: Path) -> None:
    # "no movement" says nothing moves: the negation is reported, and no motion is found.
    prompt = "A white porcelain vase on a wooden table beside a tall window, with no movement at all"
    assert sorted(_rules(_board(tmp_path, prompt))) == ["negation", "no-motion"]
    # "no fast motion" is no fast motion, so there is no conflict with the close-up.
    prompt = "An extreme close-up of a dew drop on a green leaf trembling in the breeze, no fast motion"
    assert _rules(_board(tmp_path, prompt, camera="static")) == ["negation"]


def test_ordinary_words_are_not_negations_or_conflicts(tmp_path: Path) -> None:
    prompt = (
        "A never-ending road winds through hills; the old bus no longer runs, and fast clouds "
        "drift over the valley as the camera pans slowly right"
    )
    assert _rules(_board(tmp_path, prompt)) == []
    # Railway tracks and a tilted sign are not camera moves, so a static shot is no conflict.
    prompt = "Railway tracks curve past a tilted sign as a freight train rolls slowly by, static shot"
    assert _rules(_board(tmp_path, prompt)) == []


def test_style_is_linted_for_negations_only(tmp_path: Path) -> None:
    # A conflict inside the style alone, and a style too short alone, are not the style's warnings.
    path = _board(tmp_path, " ".join([MOVING] * 2), style="Static camera, handheld look, without logos.")
    warnings = lint(load_storyboard(path))
    assert [(w.rule, w.issue.field, w.issue.line) for w in warnings] == [("negation", "style", 2)]


def test_json_storyboards_are_located_too(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(
        '{\n  "version": 1,\n  "scenes": [\n    {\n      "id": "a",\n      "duration_s": 20,\n'
        '      "prompt": "A red door."\n    }\n  ]\n}\n',
        encoding="utf-8",
    )
    warnings = lint(load_storyboard(path))
    assert [(w.rule, w.issue.line) for w in warnings] == [("prompt-short", 7), ("no-motion", 7)]


# --- through the pipeline and the command line ------------------------------------------------


def test_warnings_do_not_block_validate(trips: Path) -> None:
    plan = pipeline.validate(trips)
    assert len(plan.segments) >= len(load_storyboard(trips).storyboard.scenes)
    warnings = pipeline.lint_storyboard(trips)
    assert warnings and all(isinstance(w, LintWarning) for w in warnings)
    assert pipeline.lint_storyboard(load_storyboard(trips)) == warnings


def test_strict_validate_raises_the_warnings_as_located_issues(trips: Path) -> None:
    with pytest.raises(StoryboardError) as caught:
        pipeline.validate(trips, strict=True)
    issues = caught.value.issues
    assert [(i.field, i.line) for i in issues] == [
        (w.issue.field, w.issue.line) for w in lint(load_storyboard(trips))
    ]
    assert all(i.message.startswith("error[") for i in issues)
    assert pipeline.validate(BOARDS / "demo.yaml", strict=True).outputs


def test_cli_validate_prints_warnings_and_exits_0(trips: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from composer.cli import main

    assert main(["validate", str(trips)]) == 0
    out, err = capsys.readouterr()
    assert f"{trips}: ok (" in out
    line = _line_of(TRIPS, "prompt: A red door.")
    assert f"{trips}:{line}:5: scenes[1].prompt: warning[prompt-short]: " in err
    assert f"{len(EXPECTED)} prompt warnings; they do not block a render" in err
    assert "Traceback" not in err


def test_cli_validate_strict_exits_2(trips: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from composer.cli import main

    assert main(["validate", str(trips), "--strict"]) == 2
    out, err = capsys.readouterr()
    assert ": ok (" not in out
    assert f"{trips}:{_line_of(TRIPS, 'id: beach')}:5: scenes[4].prompt: error[negation]: " in err
    assert f"{len(EXPECTED)} problems found" in err


@pytest.mark.parametrize("strict", [[], ["--strict"]])
def test_cli_validate_clean_storyboard(strict: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from composer.cli import main

    assert main(["validate", str(BOARDS / "demo.yaml"), *strict]) == 0
    assert "warning" not in capsys.readouterr().err
