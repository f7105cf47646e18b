"""Issue 17: a ``plan.json`` given to ``composer render`` is checked like a storyboard.

An output name such as ``../../x.mp4`` used to be written outside the ``-o`` folder, and an
absolute one could replace any file the user can write.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from composer.cli import main
from composer.plan.io import name_problem, read_plan

BOARD = (
    "version: 1\ntitle: plan test\noutput:\n  length_s: 4\n  resolution: 160x96\n  crossfade_s: 0.5\n"
    "scenes:\n  - id: a\n    prompt: waves roll onto a wide sandy beach at dawn, slow pan left along the shore\n"
    "    duration_s: 4\n"
)


@pytest.fixture
def plan_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    board = tmp_path / "board.yaml"
    board.write_text(BOARD, encoding="utf-8")
    plan = tmp_path / "plan.json"
    assert main(["plan", str(board), "--json", str(plan)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    return plan


def _rename_output(plan: Path, name: str) -> None:
    data = json.loads(plan.read_text(encoding="utf-8"))
    data["outputs"][0]["name"] = name
    plan.write_text(json.dumps(data, indent=2), encoding="utf-8")


@pytest.mark.parametrize("name", ["../../x.mp4", "/tmp/evil.mp4", "sub/x.mp4", "..", "a\nb.mp4", "..\\x.mp4"])
def test_an_output_name_that_leaves_the_folder_is_refused(
    plan_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    _rename_output(plan_file, name)
    out = tmp_path / "a" / "b" / "out"
    code = main(["render", str(plan_file), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    written = f'"name": {json.dumps(name)}'
    line = next(n for n, text in enumerate(plan_file.read_text().splitlines(), 1) if written in text)
    assert f"{plan_file}:{line}:" in err and "outputs[0].name" in err and "plain file name" in err
    assert not (tmp_path / "a" / "x.mp4").exists()
    assert not out.exists()


def test_a_plain_name_is_accepted(plan_file: Path) -> None:
    _rename_output(plan_file, "final cut.mp4")
    plan = read_plan(plan_file)
    assert plan is not None and plan.outputs[0].name == "final cut.mp4"


def test_name_rules() -> None:
    assert name_problem("part01.mp4") is None
    assert "hides it" in (name_problem(".x.mp4") or "")
    assert ".mp4" in (name_problem("part01.sh") or "")
    assert "255 bytes" in (name_problem("a" * 300 + ".mp4") or "")


def test_every_invalid_field_is_located(plan_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(plan_file.read_text(encoding="utf-8"))
    data["outputs"][0]["frames"] = "many"
    data["timeline_frames"] = "all"
    plan_file.write_text(json.dumps(data, indent=2), encoding="utf-8")
    code = main(["render", str(plan_file), "-o", str(plan_file.parent / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "outputs[0].frames" in err and "timeline_frames" in err
    assert err.count(f"{plan_file}:") >= 2 and "not a valid plan.json" in err


def test_a_fifo_named_plan_json_does_not_hang(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "plan.json"
    os.mkfifo(fifo)
    began = time.monotonic()
    code = main(["render", str(fifo), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "FIFO" in err
    assert time.monotonic() - began < 10
