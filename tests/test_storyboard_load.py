"""The shipped storyboards load and plan, YAML and JSON agree, and the JSON Schema fits them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from composer.backends.local import CAPABILITIES
from composer.plan import make_plan
from composer.storyboard import load_storyboard
from composer.storyboard.model import Storyboard

ROOT = Path(__file__).resolve().parent.parent
BOARDS = ROOT / "storyboards"
SAMPLES = ROOT / "samples"


@pytest.mark.parametrize("name", ["demo.yaml", "demo.json", "long.yaml"])
def test_shipped_storyboards_load_and_plan(name: str) -> None:
    loaded = load_storyboard(BOARDS / name)
    board = loaded.storyboard
    assert board.title
    assert len(board.scenes) >= 3
    assert any(scene.image for scene in board.scenes)
    plan = make_plan(board, CAPABILITIES)
    assert all(output.frames == 1440 for output in plan.outputs)  # 60 s at 24 fps
    assert plan.api_calls > 0


def test_demo_is_one_minute_with_the_features_it_shows() -> None:
    board = load_storyboard(BOARDS / "demo.yaml").storyboard
    assert sum(scene.duration_s for scene in board.scenes) == 60
    assert board.output.resolution == (1280, 720)
    assert board.output.fps == 24
    assert board.generation.backend == "local"
    assert board.style
    assert any(scene.negative_prompt for scene in board.scenes)
    assert {scene.transition_out for scene in board.scenes} == {"crossfade", "cut"}
    for scene in board.scenes:
        assert scene.camera
        assert 15 <= len(scene.prompt.split()) <= 60, scene.id
    plan = make_plan(board, CAPABILITIES)
    assert len(plan.outputs) == 1
    assert plan.notes == ()


def test_long_storyboard_makes_several_outputs() -> None:
    board = load_storyboard(BOARDS / "long.yaml").storyboard
    assert len(board.scenes) >= 5
    assert sum(scene.duration_s for scene in board.scenes) >= 150
    plan = make_plan(board, CAPABILITIES)
    assert len(plan.outputs) >= 3
    assert [o.name for o in plan.outputs][:3] == ["part01.mp4", "part02.mp4", "part03.mp4"]


def test_json_and_yaml_give_equal_storyboards() -> None:
    from_yaml = load_storyboard(BOARDS / "demo.yaml").storyboard
    from_json = load_storyboard(BOARDS / "demo.json").storyboard
    assert from_yaml == from_json


def test_image_paths_come_back_absolute() -> None:
    board = load_storyboard(BOARDS / "demo.yaml").storyboard
    images = [scene.image for scene in board.scenes if scene.image]
    assert images == [str((SAMPLES / "harbour.png").resolve())]
    for image in images:
        assert Path(image).is_absolute()
        assert Path(image).is_file()


def test_image_paths_are_relative_to_the_storyboard_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project" / "boards"
    folder.mkdir(parents=True)
    (folder / "pictures").mkdir()
    (folder / "pictures" / "harbour.png").write_bytes((SAMPLES / "harbour.png").read_bytes())
    board_file = folder / "board.yaml"
    board_file.write_text(
        "scenes:\n  - id: a\n    prompt: boats in a harbour\n    duration_s: 60\n    image: pictures/harbour.png\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    board = load_storyboard(Path("project/boards/board.yaml")).storyboard
    assert board.scenes[0].image == str((folder / "pictures" / "harbour.png").resolve())


def test_sample_images_are_small_and_readable() -> None:
    from composer.imaging import probe_image

    for name in ("harbour.png", "forest_path.png", "mountain_lake.png"):
        path = SAMPLES / name
        assert path.stat().st_size < 160 * 1024, name
        assert probe_image(path) == (1280, 720)


def test_defaults_of_a_minimal_storyboard(tmp_path: Path) -> None:
    path = tmp_path / "minimal.yaml"
    path.write_text("scenes:\n  - id: a\n    prompt: sea\n    duration_s: 60\n", encoding="utf-8")
    board = load_storyboard(path).storyboard
    assert board.version == 1
    assert board.output.length_s == 60
    assert board.output.resolution == (1280, 720)
    assert board.output.fps == 24
    assert board.output.crossfade_s == 1.0
    assert board.output.remainder == "extend"
    assert board.generation.backend == "local"
    assert board.generation.segment_s == 20
    assert board.scenes[0].transition_out == "crossfade"
    assert board.seed_for(0) == 0


def test_fps_and_resolution_spellings(tmp_path: Path) -> None:
    from fractions import Fraction

    for fps, expected in [
        ("24", Fraction(24)),
        ("29.97", Fraction(30000, 1001)),
        ('"30000/1001"', Fraction(30000, 1001)),
    ]:
        for resolution, size in [
            ("1280x720", (1280, 720)),
            ("720p", (1280, 720)),
            ("1080p", (1920, 1080)),
            ("480p", (854, 480)),
        ]:
            path = tmp_path / "spell.yaml"
            path.write_text(
                f"output:\n  fps: {fps}\n  resolution: {resolution}\nscenes:\n  - id: a\n    prompt: sea\n    duration_s: 60\n",
                encoding="utf-8",
            )
            out = load_storyboard(path).storyboard.output
            assert (out.fps, out.resolution) == (expected, size)


def test_schema_describes_the_format() -> None:
    schema = Storyboard.model_json_schema()
    assert set(schema["properties"]) == {
        "version",
        "title",
        "output",
        "generation",
        "continuity",
        "style",
        "scenes",
    }
    assert "scenes" in schema["required"]


def test_schema_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    from composer.cli import main

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert set(schema["properties"]) >= {"version", "output", "generation", "scenes"}


@pytest.mark.parametrize("name", ["demo.yaml", "long.yaml"])
def test_schema_validates_the_shipped_storyboards(name: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    data = yaml.safe_load((BOARDS / name).read_text(encoding="utf-8"))
    jsonschema.validate(data, Storyboard.model_json_schema())
