"""The render's stages called one by one, each fed only values that went through pickle.

This is how an executor in another process (a cluster) will call them: if a stage's input or
output could not be pickled, or a stage read back a file the one before had just written
instead of taking its value, this fails. Real local generation, real ffmpeg, real files.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from composer import pipeline
from composer.cli import main
from composer.plan import io as plan_io
from composer.plan.io import read_source, write_plan

T = TypeVar("T")

BOARD = {
    "title": "stages",
    "output": {"length_s": 3, "resolution": "160x96", "fps": 24, "crossfade_s": 0.5},
    "generation": {"segment_s": 3, "seed": 3, "drift": 0},
    "continuity": {"max_attempts": 1},
    "scenes": [{"id": "sea", "prompt": "a calm sea with waves", "duration_s": 3, "camera": "pan right"}],
}


def shipped(value: T) -> T:
    """``value`` as another process would receive it."""
    return pickle.loads(pickle.dumps(value))  # type: ignore[no-any-return]


def test_each_stage_takes_and_gives_values_that_pickle(tmp_path: Path) -> None:
    board = tmp_path / "stages.yaml"
    board.write_text(yaml.safe_dump(BOARD))
    options = shipped(pipeline.RenderOptions(max_attempts=1, workers=1))
    source = shipped(read_source(board))
    assert source.storyboard is not None and source.plan is None

    planned = shipped(pipeline.plan_render(source, options))
    assert planned.plan.continuity.max_attempts == 1  # the options' continuity is laid over it
    generated = shipped(pipeline.generate(planned.plan, options))
    assert generated.failure is None and set(generated.result.segment_takes) == {
        s.id for s in planned.plan.segments
    }
    assert generated.takes and all(not t.cached for t in generated.takes)

    out = tmp_path / "out"
    out.mkdir()
    composed = shipped(pipeline.compose(planned.plan, generated, out, {}))
    assert [p.name for p in composed.paths.values()] == ["part01.mp4"]
    assert composed.outputs[0].frames == 72 and composed.outputs[0].composed

    write_plan(out / "plan.json", planned.plan)
    timings = {"generate": 1.0, "compose": 1.0, "total": 2.0, "tail": 1.0}
    written = shipped(
        pipeline.write_artifacts(
            planned.plan, planned.source_path, out, generated, composed, options, timings
        )
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == written.manifest.model_dump(mode="json")
    assert manifest["status"] == "complete" and manifest["timings_s"] == timings
    assert written.report.summary.segments == 1 and written.report_path.is_file()


def test_render_reads_the_storyboard_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `composer render FILE` once parsed the file three times (config, cli, pipeline).
    board = tmp_path / "once.yaml"
    board.write_text(yaml.safe_dump(BOARD))
    calls: list[Path] = []
    real = plan_io.load_storyboard

    def counting(path: str | Path, *args: object, **kwargs: object) -> object:
        calls.append(Path(path))
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(plan_io, "load_storyboard", counting)
    monkeypatch.setattr(pipeline, "load_storyboard", counting)
    assert main(["render", str(board), "-o", str(tmp_path / "out")]) == 0
    assert calls == [board]


def test_the_judge_measures_where_it_is_handed_and_keeps_what_comes_back(tmp_path: Path) -> None:
    # A cluster hands each take's measuring to a task on another node: the judge sends a
    # detached copy (it must pickle), the other side measures with measure_detached, and what
    # comes back is kept exactly as if it had been measured here.
    from composer.checks import measure_detached

    board = tmp_path / "stages.yaml"
    board.write_text(yaml.safe_dump(BOARD))
    planned = pipeline.plan_render(read_source(board), pipeline.RenderOptions(max_attempts=1, workers=1))
    calls: list[str] = []

    def elsewhere(judge, segment, takes, previous):  # type: ignore[no-untyped-def]
        calls.append(takes[-1].key)
        assert judge.results == {} and judge.store is None  # a small copy travels
        return shipped(measure_detached(shipped(judge), segment, takes, previous, "node-b"))

    def unseen(judge, segment, takes, previous):  # type: ignore[no-untyped-def]
        calls.append(takes[-1].key)
        return measure_detached(
            judge,
            segment,
            [t.model_copy(update={"path": tmp_path / "gone.mp4"}) for t in takes],
            None,
            "node-c",
        )

    results = {}
    for name, offload in (("here", None), ("far", elsewhere), ("unseen", unseen)):
        options = pipeline.RenderOptions(max_attempts=1, workers=1, cache_dir=tmp_path / name)
        generated = pipeline.generate(planned.plan, options, node="node-a", judge_offload=offload)
        [judged] = [t for t in generated.takes if t.judged_on]
        results[name] = (judged.judged_on, generated.judge.results[judged.key].analysis.drift)
    assert len(calls) == 2
    assert results["here"][0] == "node-a" and results["unseen"][0] == "node-a"  # measured here
    assert results["far"][0] == "node-b"
    assert results["far"][1] == results["here"][1] == results["unseen"][1]  # the same measurement
