"""Cluster benchmark: six storyboards on the simulator at a fixed latency, on one Ray node and
on two, beside the batch's critical path.

Each configuration gets a fresh simulator (every operation takes ``--latency`` seconds) and a
fresh take store, and renders the same six tiny storyboards (``tests/support.py``'s
``TINY_API_BOARD`` with six seeds: four takes each, in chains of two) with
``composer.render_many(..., ray=ADDRESS)`` on a loopback cluster (``tests/ray_cluster.py``) of
one node, then two, each node with ``--cpus`` CPUs. Printed side by side:

* ``wall``: the batch's wall time, and its ratio to one node's;
* ``critical``: the longest chain of operations any storyboard has, times the latency: what no
  number of nodes can beat (the service's own time);
* ``alone``: one storyboard rendered by itself on the idle cluster (its chain plus downloading,
  judging, normalising and composing): the least a batch can take here;
* ``creates``: operations the simulator created (must equal the takes: nothing made twice).

docs/cluster.md turns these into a model of wall time against nodes, quota and latency.
Run: ``python benchmarks/bench_cluster.py [--latency 3] [--storyboards 6] [--cpus 1]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import composer
from composer.sim import Simulator
from tests.ray_cluster import LoopbackCluster
from tests.support import FAKE_KEYS, TINY_API_BOARD


def boards(folder: Path, count: int) -> list[Path]:
    paths = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        board = {
            **TINY_API_BOARD,
            "title": f"sb{i}",
            "generation": {**TINY_API_BOARD["generation"], "seed": 100 + i},
        }
        path = folder / f"sb{i}.yaml"
        path.write_text(yaml.safe_dump(board))
        paths.append(path)
    return paths


def chain_length(path: Path) -> int:
    """The longest chain of operations in a storyboard's plan (a segment waits for the one it continues)."""
    plan = composer.make_plan(path, backend="gemini")
    by_id = {s.id: s for s in plan.segments}
    depth: dict[str, int] = {}

    def length(seg_id: str) -> int:
        if seg_id not in depth:
            seg = by_id[seg_id]
            before = length(seg.continues.segment) if seg.continues else 0
            depth[seg_id] = before + len(seg.chunks)
        return depth[seg_id]

    return max(length(s) for s in by_id)


def run_batch(
    address: str, paths: list[Path], work: Path, latency: float, tag: str
) -> tuple[float, int, int]:
    """(wall seconds, operations created, takes) of one batch on a fresh simulator and store."""
    with Simulator(latency_s=latency, seed=0) as sim:
        began = time.perf_counter()
        batch = composer.render_many(
            paths,
            work / f"out-{tag}",
            ray=address,
            backend="gemini",
            base_url=sim.base_url,
            cache_dir=work / f"store-{tag}",
            jobs=composer.JobSettings(poll_interval_s=0.05, poll_max_s=0.2),
        )
        wall = time.perf_counter() - began
        creates = sum(1 for op in sim.stats()["operations"] if op["protocol"] == "gemini")
    failed = [r for r in batch.storyboards if r.status != "complete"]
    if failed:
        raise SystemExit(f"{tag}: {failed[0].name} failed: {failed[0].error}")
    takes = sum(len(r.take_keys) for r in batch.storyboards)
    stages: dict[str, float] = {}
    for result in batch.storyboards:
        assert result.manifest is not None
        timings = json.loads(Path(result.manifest).read_text())["timings_s"]
        for stage in ("generate", "compose"):
            stages[stage] = stages.get(stage, 0.0) + timings[stage] / len(batch.storyboards)
    return wall, creates, takes, stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=3.0, help="seconds each operation takes (default 3)")
    parser.add_argument("--storyboards", type=int, default=6)
    parser.add_argument("--cpus", type=int, default=1, help="CPUs per node (default 1)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_BASE_URL")}
    env.update(FAKE_KEYS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        work = Path(tmp)
        paths = boards(work, args.storyboards)
        warm = boards(work / "warm", 1)[0]
        chain = chain_length(paths[0])
        critical = chain * args.latency
        alone = None
        for nodes in (1, 2):
            with LoopbackCluster(env, cpus=(args.cpus,) * nodes, logs=None) as cluster:
                # A first storyboard of its own starts the cluster's worker processes (imports,
                # the limits actor), which every later batch of this driver reuses.
                run_batch(cluster.address, [warm], work, args.latency, f"warm{nodes}")
                if alone is None:
                    alone, _, _, alone_stages = run_batch(
                        cluster.address, paths[:1], work, args.latency, "alone"
                    )
                wall, creates, takes, stages = run_batch(
                    cluster.address, paths, work, args.latency, f"n{nodes}"
                )
                rows.append((nodes, wall, creates, takes, stages))
                # As it is measured, in case a later configuration fails.
                print(f"[{nodes} node(s): {wall:.1f} s, {creates} creates, {takes} takes]", flush=True)
    one = rows[0][1]
    print(
        f"{args.storyboards} storyboards x {rows[0][3] // args.storyboards} takes, latency {args.latency:g} s, "
        f"{args.cpus} CPU(s) per node; chain of {chain} operations per storyboard"
    )
    print(
        f"critical path (chain x latency): {critical:6.1f} s;  one storyboard alone: {alone:6.1f} s "
        f"(generate {alone_stages['generate']:.1f} s, compose {alone_stages['compose']:.1f} s)"
    )
    print(
        f"{'nodes':>5} {'wall s':>8} {'vs 1 node':>10} {'vs critical':>12} {'vs alone':>9} {'creates':>8} "
        f"{'takes':>6}  per storyboard: generate, compose s"
    )
    for nodes, wall, creates, takes, stages in rows:
        print(
            f"{nodes:>5} {wall:8.1f} {one / wall:9.2f}x {wall / critical:11.2f}x "
            f"{wall / alone:8.2f}x {creates:>8} {takes:>6}  {stages['generate']:.1f}, {stages['compose']:.1f}"
        )
    # The model of docs/cluster.md: storyboards run in waves of (nodes x tasks per node).
    per_node = args.cpus
    for nodes in (1, 2, 3, 6):
        waves = math.ceil(args.storyboards / (nodes * per_node))
        print(f"model: {nodes} node(s): {waves} wave(s) x {alone:.1f} s = {waves * alone:6.1f} s")


if __name__ == "__main__":
    main()
