"""Orchestration benchmark: a render's wall time beside the critical path of its dependency chains.

Starts the simulator (``composer.sim``) at a fixed latency, renders a storyboard through an
API backend with a fresh cache, and prints, in one run, for a clean service and for one
that injects faults:

* ``wall``: the render's own total time (manifest ``timings_s.total``);
* ``critical path``: the longest chain of work that must happen one after the other: for
  each segment, every chunk's service time (the simulator's create -> done, generation on its
  CPU included), the create request and the download + check of its file, and the longer of
  judging its attempts and normalising them (the two run side by side); a segment that continues another
  adds that one's chain; then composing the outputs, which needs every segment;
* the ratio (target: within 1.15x), operations, retries and faults;
* ``tail``: from the last take accepted to the last output written (manifest
  ``timings_s.tail``). The simulator's takes never carry the output encoding, so each one is
  normalised, starting when its chain is complete, beside the judge.

What the ratio measures is the runner's own overhead: polling late, waiting for a slot or the
rate limit, scheduling. Everything that does real work is on the critical path.

Run: ``python benchmarks/bench_orchestration.py [--storyboard storyboards/demo.yaml]
[--backend gemini] [--latency 5] [--poll-interval 0.5] [--faults SPEC]``. Figures are noisy on
a shared 2-core machine; the ratio within one run is what counts. Never assert on them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composer.jobs.remote import JobSettings
from composer.pipeline import render
from composer.sim import Simulator

KEYS = {"gemini": "GEMINI_API_KEY", "openai": "OPENAI_API_KEY", "relay": "COMPOSER_RELAY_API_KEY"}
PATHS = {"gemini": "", "openai": "/v1", "relay": "/relay"}


def critical_path(manifest: dict, plan: dict, service: dict[str, float]) -> tuple[float, dict[str, float]]:
    """Seconds of the longest dependency chain, and each segment's chain end."""
    parents = {s["id"]: (s["continues"] or {}).get("segment") for o in plan["outputs"] for s in o["segments"]}
    # Judging gates acceptance; normalising gates composing. The two run side by side (a take
    # is normalised from the moment its chain is complete), so the longer of them counts.
    own: dict[str, float] = {seg: 0.0 for seg in parents}
    for s in manifest["segments"]:
        own[s["id"]] += max(s["judge_s"], s["normalize_s"])
    for take in manifest["takes"]:
        if take["cached"]:
            continue
        op = take["operations"][-1] if take["operations"] else None
        own[take["segment"]] += service.get(op, take["wait_s"]) + take["submit_s"] + take["download_s"]
    ends: dict[str, float] = {}

    def end(seg: str) -> float:
        if seg not in ends:
            parent = parents[seg]
            ends[seg] = own[seg] + (end(parent) if parent else 0.0)
        return ends[seg]

    longest = max(end(seg) for seg in parents)
    return longest + manifest["timings_s"]["compose"], ends


def run(
    storyboard: Path, backend: str, latency: float, faults: str, poll: float, seed: int
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench_orch.") as work:
        with Simulator(latency_s=latency, faults=faults, seed=seed) as sim:
            result = render(
                storyboard,
                Path(work) / "out",
                backend=backend,
                base_url=sim.base_url + PATHS[backend],
                cache_dir=Path(work) / "cache",
                jobs=JobSettings(poll_interval_s=poll),
            )
            stats = sim.stats()
        manifest = json.loads(result.manifest_path.read_text())
        plan = json.loads(result.plan_path.read_text())
    service = {
        op["id"]: op["done_at"] - op["created_at"]
        for op in stats["operations"]
        if op["protocol"] == backend and op.get("done_at")
    }
    path, _ = critical_path(manifest, plan, service)
    wall = manifest["timings_s"]["total"]
    return {
        "wall": wall,
        "critical": path,
        "ratio": wall / path if path else float("nan"),
        "operations": len(service),
        "retries": sum(t["retries"] for t in manifest["takes"]),
        "faults": stats[backend]["faults"],
        "frames": [o["frames"] for o in manifest["outputs"]],
        "attempts": sum(s["attempts"] for s in manifest["segments"]),
        "tail": manifest["timings_s"]["tail"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storyboard", default="storyboards/demo.yaml")
    parser.add_argument("--backend", default="gemini", choices=sorted(KEYS))
    parser.add_argument("--latency", type=float, default=5.0, help="simulated seconds per operation")
    parser.add_argument("--poll-interval", type=float, default=0.5)
    parser.add_argument("--faults", default="429=0.2:0.5,500=0.05,503=0.05")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault(KEYS[args.backend], "bench-key")
    board = Path(args.storyboard)
    print(
        f"bench_orchestration: {board}, backend {args.backend}, simulator latency {args.latency:g} s, "
        f"first poll after {args.poll_interval:g} s, {os.cpu_count()} CPUs"
    )
    rows = [("clean", ""), (f"faults {args.faults}", args.faults)]
    print(f"  {'scenario':42s} {'wall s':>8s} {'critical s':>10s} {'ratio':>6s} {'ops':>4s} {'tries':>5s} "
          f"{'faults':>6s} {'attempts':>8s} {'tail s':>6s}  frames")  # fmt: skip
    for label, faults in rows:
        r = run(board, args.backend, args.latency, faults, args.poll_interval, args.seed)
        verdict = "ok" if r["ratio"] <= 1.15 else "over target"  # type: ignore[operator]
        print(
            f"  {label:42s} {r['wall']:8.1f} {r['critical']:10.1f} {r['ratio']:6.3f} {r['operations']:4d} "
            f"{r['retries']:5d} {r['faults']:6d} {r['attempts']:8d} {r['tail']:6.1f}  {r['frames']}  "
            f"({verdict}; target <= 1.15)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
