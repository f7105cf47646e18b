"""Batches on a real Ray cluster of two nodes on loopback, against the simulator.

The cluster (``tests/ray_cluster.py``) is two ``ray start`` processes, the head on 127.0.0.2
and a worker on 127.0.0.3, shared by the module's tests; each test has its own simulator and
its own take store (a folder both nodes see, as a shared mount would be). The simulator's own
list of the operations it created is the bill. Boards are tiny (160x96, 3 s chunks).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("ray")

import composer
from composer import ffmpeg
from composer.batch import BatchResult
from composer.sim import Simulator
from tests.ray_cluster import LoopbackCluster
from tests.support import FAKE_KEYS, TINY_API_BOARD, StartSim, wait_until

pytestmark = pytest.mark.slow

WORKER = "127.0.0.3"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackCluster]:
    logs = tmp_path_factory.mktemp("ray-logs")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_BASE_URL")}
    env.update(FAKE_KEYS)
    env["COMPOSER_LEASE_TTL_S"] = "5"
    # The nodes' own take store, for renders that do not name one (the CLI's).
    env["COMPOSER_CACHE"] = str(tmp_path_factory.mktemp("cluster-store"))
    with LoopbackCluster(env, cpus=(2, 1), logs=logs) as running:
        yield running


@pytest.fixture
def nodes(cluster: LoopbackCluster) -> LoopbackCluster:
    cluster.restart_missing()  # a test before may have killed the worker
    return cluster


def boards(folder: Path) -> list[Path]:
    """Two storyboards with no take in common (other seeds), four takes each."""
    paths = []
    for name, seed in (("alpha", 5), ("beta", 11)):
        board = {
            **TINY_API_BOARD,
            "title": name,
            "generation": {**TINY_API_BOARD["generation"], "seed": seed},
        }
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(board))
        paths.append(path)
    return paths


def render(
    nodes: LoopbackCluster, sim: Simulator, paths: list[Path], out: Path, store: Path, **jobs: Any
) -> BatchResult:
    return composer.render_many(
        paths,
        out,
        ray=nodes.address,
        backend="gemini",
        base_url=sim.base_url,
        cache_dir=store,
        jobs=composer.JobSettings(poll_interval_s=0.05, poll_max_s=0.2, **jobs),
    )


def created(sim: Simulator) -> list[str]:
    return [op["id"] for op in sim.stats()["operations"] if op["protocol"] == "gemini"]


def all_takes(batch: BatchResult) -> list[dict[str, Any]]:
    takes = []
    for result in batch.storyboards:
        assert result.manifest is not None
        takes.extend(json.loads(Path(result.manifest).read_text())["takes"])
    return takes


def test_two_storyboards_render_across_two_nodes_frame_exact_each_take_created_once(
    nodes: LoopbackCluster, start_sim: StartSim, tmp_path: Path
) -> None:
    sim = start_sim(latency_s=1.0)
    paths = boards(tmp_path)
    batch = render(nodes, sim, paths, tmp_path / "out", tmp_path / "store")
    assert [r.status for r in batch.storyboards] == ["complete", "complete"], batch.storyboards
    for path, result in zip(paths, batch.storyboards, strict=True):
        assert Path(result.out_dir) == (tmp_path / "out" / path.stem).resolve()
        plan = composer.make_plan(path, backend="gemini")
        assert len(result.outputs) == len(plan.outputs)
        for output, file in zip(plan.outputs, result.outputs, strict=True):
            assert ffmpeg.decode(Path(file)).frames == output.frames  # decoded, not just probed
    takes = all_takes(batch)
    # Both nodes made takes, and each take says where it was made.
    assert {t["node"] for t in takes} == {"127.0.0.2", WORKER}
    # Every take (each the whole chain of its segment here) was judged in a task of its own,
    # on whichever node had room, and says which.
    judged = [t["judged_on"] for t in takes]
    assert all(judged) and set(judged) <= {"127.0.0.2", WORKER}, judged
    keys = {t["key"] for t in takes}
    assert len(created(sim)) == len(keys) == 8
    assert most_at_once(sim) >= 3  # the two storyboards' operations ran side by side
    summary = json.loads(batch.batch_path.read_text())
    assert summary["version"] == 1 and summary["mode"] == "ray" and summary["status"] == "complete"
    assert [s["name"] for s in summary["storyboards"]] == ["alpha", "beta"]
    assert len(summary["outputs"]) == 4 and summary["failures"] == []
    assert summary["cost_usd"] == pytest.approx(sum(t["cost_usd"] for t in takes))
    assert summary["nodes"] == ["127.0.0.2", WORKER]

    # Run again: everything comes from the store, nothing is created, the outputs are kept.
    again = render(nodes, sim, paths, tmp_path / "out", tmp_path / "store")
    assert all(r.status == "complete" and r.generated == 0 for r in again.storyboards)
    assert len(created(sim)) == 8


def most_at_once(sim: Simulator) -> int:
    """The most operations the service was running at one moment (from its own clock)."""
    events = []
    for op in sim.stats()["operations"]:
        events += [(op["created_at"], 1), (op["done_at"], -1)]
    running = peak = 0
    for _, step in sorted(events):  # an end before a start at the same instant
        running += step
        peak = max(peak, running)
    return peak


def test_the_budget_and_the_concurrency_hold_across_storyboards_counted_by_the_service(
    nodes: LoopbackCluster, start_sim: StartSim, tmp_path: Path
) -> None:
    sim = start_sim(latency_s=0.5)
    paths = boards(tmp_path)
    plan = composer.make_plan(paths[0], backend="gemini")
    price = plan.estimated_cost_usd / plan.api_calls  # every chunk is 3 s: one price
    budget = round(price * 5.5, 4)  # room for five of the batch's eight takes
    # One operation in flight for the whole cluster: each storyboard alone could run two at once.
    batch = render(nodes, sim, paths, tmp_path / "out", tmp_path / "store", budget_usd=budget, concurrency=1)
    ops = created(sim)
    assert most_at_once(sim) == 1
    assert len(ops) * price <= budget + 1e-9, f"{len(ops)} operations at ${price} pass ${budget}"
    assert len(ops) == 5  # the budget was used, not refused early
    assert any(r.error_kind == "BudgetExceeded" or "budget" in (r.error or "") for r in batch.failures)
    summary = json.loads(batch.batch_path.read_text())
    assert summary["status"] == "failed" and summary["failures"]
    assert summary["cost_usd"] <= budget + 1e-9


def journal_owners(store: Path) -> set[str]:
    """The processes holding submitted operations in the store's journal, when every journaled
    create has its answer (none is being sent); else the empty set."""
    owners = set()
    for path in (store / "journal").glob("*.json"):
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if entry.get("state") != "submitted":
            return set()  # a create on the wire: a kill now would leave it unanswered
        owners.add(entry.get("owner", ""))
    return owners


def check_nothing_paid_twice(takes: list[dict[str, Any]], ops: list[str], before: int) -> None:
    """Every operation is a take's, or a create left unanswered by the kill and reported as such.

    A create on the wire when its process dies may have started an operation nobody heard of:
    the Gemini protocol cannot list operations, so it is sent again and reported as a possible
    duplicate charge (docs/cache.md). Operations journaled with their answer are never created again.
    """
    keys = {t["key"] for t in takes}
    reported = sum(t["possible_duplicates"] for t in takes)
    assert len(keys) <= len(ops) <= len(keys) + reported, (
        f"{len(ops)} operations for {len(keys)} takes, {reported} reported ({before} before the kill)"
    )
    assert len(keys) == 8
    # The killed process's journaled operations were polled and downloaded, not made again.
    assert any(t["resumed"] for t in takes)


def test_a_worker_node_killed_mid_render_loses_nothing_paid_for(
    nodes: LoopbackCluster, start_sim: StartSim, tmp_path: Path
) -> None:
    # Long operations: the worker dies while its storyboard's operations are in flight.
    sim = start_sim(latency_s=4.0)
    paths = boards(tmp_path)
    store = tmp_path / "store"
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["batch"] = render(nodes, sim, paths, tmp_path / "out", store)
        except BaseException as exc:  # reported by the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    try:
        # Both storyboards' generation tasks (two processes, one per node) have operations in flight.
        wait_until(lambda: journal_owners(store), lambda o: len(o) >= 2, timeout_s=120, what="two makers")
        before = len(created(sim))
        nodes.kill(WORKER)
    finally:
        thread.join(timeout=300)
    assert "error" not in outcome, outcome.get("error")
    batch: BatchResult = outcome["batch"]
    assert [r.status for r in batch.storyboards] == ["complete", "complete"], batch.storyboards
    takes = all_takes(batch)
    keys = {t["key"] for t in takes}
    ops = created(sim)
    assert len(ops) == len(keys) == 8, (
        f"{len(ops)} operations for {len(keys)} takes ({before} before the kill)"
    )
    # The dead node's journaled operations were polled and downloaded by the head, not created again.
    assert any(t["resumed"] for t in takes)
    assert not list((store / "journal").glob("*.json"))


def test_a_driver_killed_mid_batch_and_started_again_resumes_it(
    nodes: LoopbackCluster, start_sim: StartSim, tmp_path: Path
) -> None:
    sim = start_sim(latency_s=3.0)
    paths = boards(tmp_path)
    store = Path(nodes.env["COMPOSER_CACHE"])
    env = {k: v for k, v in os.environ.items() if not k.endswith("_BASE_URL")}
    env["COMPOSER_CACHE"] = str(store)
    command = [
        sys.executable, "-m", "composer", "render", *map(str, paths), "-o", str(tmp_path / "out"),
        "--backend", "gemini", "--base-url", sim.base_url, "--poll-interval", "0.05",
        "--ray", nodes.address,
    ]  # fmt: skip
    driver = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(
            lambda: journal_owners(store), lambda o: len(o) >= 2, timeout_s=120, what="operations in flight"
        )
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    before = len(created(sim))
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "batch: 2/2 storyboards complete" in again.stdout
    summary = json.loads((tmp_path / "out" / "batch.json").read_text())
    takes = [t for s in summary["storyboards"] for t in json.loads(Path(s["manifest"]).read_text())["takes"]]
    check_nothing_paid_twice(takes, created(sim), before)
