"""Several storyboards in one run on this machine (``composer render A B -o DIR``), and the
``--ray`` errors a user meets before any cluster work: no Ray installed, no address, nothing
listening. The cluster itself is tested in ``test_cluster.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

import composer
from composer.batch import render_many
from composer.cli import main
from composer.errors import EnvironmentProblem, PlanError
from composer.sim import Simulator
from tests.support import TINY_API_BOARD, TINY_BOARD, StartSim


def write(folder: Path, name: str, board: dict, seed: int) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**board, "generation": {**board["generation"], "seed": seed}}))
    return path


def test_ray_not_installed_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError, as without the extra
    monkeypatch.delitem(sys.modules, "composer.cluster", raising=False)
    paths = [write(tmp_path, n, TINY_BOARD, s) for n, s in (("a", 1), ("b", 2))]
    with pytest.raises(EnvironmentProblem, match=r"pip install 'composer\[ray\]'"):
        render_many(paths, tmp_path / "out", ray="127.0.0.2:6379")


def test_ray_without_an_address_or_with_nothing_there_is_an_environment_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    paths = [str(write(tmp_path, n, TINY_BOARD, s)) for n, s in (("a", 1), ("b", 2))]
    assert main(["render", *paths, "-o", str(tmp_path / "out"), "--ray"]) == 3
    assert "set RAY_ADDRESS" in capsys.readouterr().err
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.2:1")  # nothing listens on port 1
    assert main(["render", *paths, "-o", str(tmp_path / "out"), "--ray"]) == 3
    assert "cannot reach the Ray cluster at 127.0.0.2:1" in capsys.readouterr().err


def test_two_storyboards_with_one_stem_are_refused_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    paths = [write(tmp_path, "a", TINY_BOARD, 1), write(tmp_path / "x", "a", TINY_BOARD, 2)]
    with pytest.raises(PlanError, match="share the folder a/"):
        render_many(paths, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_batch_here_renders_each_storyboard_into_its_folder_and_sums_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [str(write(tmp_path, n, TINY_BOARD, s)) for n, s in (("a", 1), ("b", 2))]
    assert main(["render", *paths, "-o", str(tmp_path / "out")]) == 0
    shown = capsys.readouterr()
    # One display for the batch: every storyboard's stage and share, and the total.
    assert "batch 100.0%" in shown.err and "a report 100%  b report 100%" in shown.err
    assert "batch: 2/2 storyboards complete" in shown.out
    summary = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert summary["version"] == 1 and summary["mode"] == "local" and summary["status"] == "complete"
    assert [s["name"] for s in summary["storyboards"]] == ["a", "b"]
    for name in ("a", "b"):
        manifest = json.loads((tmp_path / "out" / name / "manifest.json").read_text())
        assert [o["path"] for o in manifest["outputs"]] == [
            o for o in summary["outputs"] if Path(o).parent.name == name
        ]
        assert all(t["node"] for t in manifest["takes"])


@pytest.mark.slow
def test_a_batch_here_keeps_one_budget_for_all_its_storyboards(
    start_sim: StartSim, tmp_path: Path, keys: dict[str, str]
) -> None:
    sim: Simulator = start_sim(latency_s=0.05)
    paths = [write(tmp_path, n, TINY_API_BOARD, s) for n, s in (("a", 5), ("b", 11))]
    plan = composer.make_plan(paths[0], backend="gemini")
    price = plan.estimated_cost_usd / plan.api_calls
    budget = round(price * 5.5, 4)  # five of the batch's eight takes
    batch = render_many(
        paths,
        tmp_path / "out",
        backend="gemini",
        base_url=sim.base_url,
        jobs=composer.JobSettings(poll_interval_s=0.05, budget_usd=budget),
    )
    ops = [op for op in sim.stats()["operations"] if op["protocol"] == "gemini"]
    assert len(ops) == 5  # each storyboard alone would have been allowed five
    assert [r.status for r in batch.storyboards] == ["complete", "failed"]
    assert batch.storyboards[1].error_kind == "BudgetExceeded"
