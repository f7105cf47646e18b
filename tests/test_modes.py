"""Preview, then final: the cheap pass, the paid pass that reuses what was approved, and fallbacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from composer.backends import registry
from composer.cli import main
from composer.decide import Attempt
from composer.errors import ModelRefused, PlanError, TerminalError
from composer.jobs.remote import JobSettings
from composer.pipeline import load_and_plan, render
from composer.plan import modes
from composer.sim import Simulator

BOARD = {
    "title": "two passes",
    "output": {"length_s": 6, "resolution": "160x96", "fps": 24, "crossfade_s": 0.5},
    "generation": {"segment_s": 3, "seed": 21, "drift": 0},
    "scenes": [
        {"id": "sea", "prompt": "a calm sea with waves", "duration_s": 6, "camera": "pan right"},
        {"id": "city", "prompt": "a city at night", "duration_s": 6, "camera": "static"},
    ],
}


@pytest.fixture
def board_file(tmp_path: Path) -> Path:
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump(BOARD))
    return path


def test_preview_size_is_the_smallest_the_backend_makes() -> None:
    local = registry.capabilities("local")
    assert modes.preview_size((1920, 1080), local) == (640, 360)
    assert modes.preview_size((1080, 1920), local) == (640, 1138)
    assert modes.preview_size((320, 180), local) == (320, 180)
    gemini = registry.capabilities("gemini")
    assert modes.preview_size((1920, 1080), gemini) == (1280, 720)
    assert modes.preview_size((1080, 1920), gemini) == (720, 1280)


def test_preview_plans_the_fast_model_small(board_file: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(yaml.safe_dump({**BOARD, "output": {**BOARD["output"], "resolution": "1920x1080"}}))
    _, plan = load_and_plan(big, model="quality", preview=False)
    _, preview = load_and_plan(big, preview=True)
    assert plan.generation.model_id == "local-quality" and plan.output.width == 1920
    assert preview.generation.model_id == "local-fast" and preview.generation.mode == "preview"
    assert (preview.output.width, preview.output.height) == (640, 360)
    assert [s.id for s in preview.segments] == [s.id for s in plan.segments]


def _attempt(number: int, seed: int, from_chunk: int) -> Attempt:
    return Attempt(number=number, seed=seed, from_chunk=from_chunk, take_keys=(), checks=())


def test_chain_seeds_follow_each_regeneration_up_to_the_kept_attempt() -> None:
    attempts = [_attempt(1, 5, 0), _attempt(2, 77, 2), _attempt(3, 99, 1)]
    assert modes.chain_seeds(5, 4, attempts, kept=1) == (5, 5, 5, 5)
    assert modes.chain_seeds(5, 4, attempts, kept=2) == (5, 5, 77, 77)
    assert modes.chain_seeds(5, 4, attempts, kept=3) == (5, 99, 99, 99)


def test_final_plan_refuses_what_does_not_fit_the_preview(board_file: Path, tmp_path: Path) -> None:
    _, preview = load_and_plan(board_file, preview=True)
    _, plan = load_and_plan(board_file, model="quality")
    seeds = {s.id: (s.seed,) for s in preview.segments}
    final = modes.final_plan(plan, preview, seeds, ["o1-s1", "o1-s2"])
    assert final.keep == ("o1-s1", "o1-s2") and final.generation.mode == "final"
    with pytest.raises(PlanError, match="no such segment"):
        modes.final_plan(plan, preview, seeds, ["o9-s9"])
    with pytest.raises(PlanError, match="keep both"):
        modes.final_plan(plan, preview, seeds, ["o1-s2"])  # it continues o1-s1
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**BOARD, "generation": {**BOARD["generation"], "segment_s": 2}}))
    _, changed = load_and_plan(other, model="quality")
    with pytest.raises(PlanError, match="changed since the preview"):
        modes.final_plan(changed, preview, seeds)


@pytest.mark.slow
def test_final_after_preview_makes_only_the_kept_segments_with_their_seeds(
    board_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    preview_dir, final_dir = tmp_path / "preview", tmp_path / "final"
    assert main(["render", str(board_file), "--preview", "-o", str(preview_dir)]) == 0
    preview = json.loads((preview_dir / "manifest.json").read_text())
    preview_plan = json.loads((preview_dir / "plan.json").read_text())
    assert preview["model_id"] == "local-fast" and preview_plan["generation"]["mode"] == "preview"
    report = json.loads((preview_dir / "report.json").read_text())
    approved = {
        s["id"]: s["attempts"][s["kept_attempt"] - 1]["seed"]
        for o in report["outputs"]
        for s in o["segments"]
    }

    code = main(
        ["render", "--final", "--from", str(preview_dir), "--keep", "o1-s1", "o1-s2", "-o", str(final_dir)]
    )
    assert code == 0, capsys.readouterr().err
    final = json.loads((final_dir / "manifest.json").read_text())
    assert final["model_id"] == "local-quality"
    made = {t["segment"] for t in final["takes"]}
    assert made == {"o1-s1", "o1-s2"}  # the others were skipped: no take, no operation
    assert final["generated"] == sum(1 for t in final["takes"] if not t["cached"]) >= 2
    assert [o["name"] for o in final["outputs"]] == ["part01.mp4"]
    assert any("part02.mp4 was not composed" in n for n in final["notes"])
    final_plan = json.loads((final_dir / "plan.json").read_text())
    seeds = {s["id"]: s["chunk_seeds"] for o in final_plan["outputs"] for s in o["segments"]}
    assert all(seeds[i][-1] == approved[i] for i in ("o1-s1", "o1-s2"))
    takes = {t["segment"]: t for t in final["takes"]}
    request = json.loads(Path(takes["o1-s1"]["path"]).with_name("take.json").read_text())["request"]
    assert request["seed"] == seeds["o1-s1"][0] and request["model"] == "local-quality"


def _fallback_board(tmp_path: Path, model: str) -> Path:
    """A 3 s gemini storyboard with ``model`` planned and ``fast`` as its fallback."""
    board = {
        **BOARD,
        "output": {**BOARD["output"], "length_s": 3},
        "generation": {"backend": "gemini", "model": model, "fallback_model": "fast", "segment_s": 3},
        "continuity": {"max_attempts": 1},
        "scenes": [{"id": "sea", "prompt": "a calm sea with waves", "duration_s": 3}],
    }
    path = tmp_path / "fallback.yaml"
    path.write_text(yaml.safe_dump(board))
    return path


@pytest.mark.slow
def test_a_permanently_refused_model_falls_back_when_the_storyboard_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "fallback-test-key")
    path = _fallback_board(tmp_path, "veo-9-retired")
    with Simulator(latency_s=0.05) as sim:
        result = render(path, tmp_path / "out", base_url=sim.base_url, jobs=JobSettings(poll_interval_s=0.05))
        models = [op["model"] for op in sim.stats()["operations"]]
    assert models == ["veo-3.1-fast-generate-preview"]
    fallback = result.manifest.fallbacks[0]
    assert (
        fallback["model"] == "veo-9-retired" and fallback["fallback_model"] == "veo-3.1-fast-generate-preview"
    )
    assert result.report is not None and any("fallback model" in n for n in result.report.notes)
    assert result.manifest.outputs[0].frames == 72


def test_a_refused_key_does_not_fall_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Another model cannot fix a key the service refuses: the run stops with the key's fix
    # instead of spending on the fallback model.
    monkeypatch.setenv("GEMINI_API_KEY", "not-the-key")
    path = _fallback_board(tmp_path, "quality")
    with caplog.at_level("DEBUG", logger="composer.sim"), Simulator(latency_s=0.05, api_key="the-key") as sim:
        with pytest.raises(TerminalError, match="GEMINI_API_KEY") as caught:
            render(path, tmp_path / "out", base_url=sim.base_url, jobs=JobSettings(poll_interval_s=0.05))
        assert sim.stats()["operations"] == []
    assert not isinstance(caught.value, ModelRefused)
    creates = [r.getMessage() for r in caplog.records if "predictLongRunning" in r.getMessage()]
    assert len(creates) == 1 and "veo-3.1-generate-preview" in creates[0], creates
