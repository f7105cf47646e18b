"""Take store benchmark: the fault matrix with SIGKILL at each step of a take's life, counted
on the service's side.

For each cell (a fault rule on creates, polls or downloads, times a point at which the first
render is killed), renders a tiny storyboard through the Gemini protocol of the simulator
(``composer.sim``) as a real process on a fresh store, kills it with SIGKILL at that point,
then renders again until a render succeeds (at most three reruns), and prints:

* ``created``: operations the simulator created (its ``/_sim/stats``), the bill;
* ``takes``: takes of the storyboard (the last render's manifest);
* ``dups``: possible duplicate charges reported, per take the last figure a manifest gave
  (a journal entry carries a take's unanswered creates from run to run, so later counts include
  earlier ones); a killed run writes no manifest, its creates are reported by the next run;
* ``exact``: created == takes + dups (every possible duplicate was a real operation);
* ``ok``: created <= takes + dups (nothing paid for is unaccounted: the property that counts;
  a 500 or a drop the simulator answered before creating anything is reported but was free);
* ``killed``: where the first run was killed (``-``: the point never came, e.g. no download
  was slow enough to be seen mid-way), and ``runs``: renders after the kill.

Kill points, each seen from outside the process, as a user's ``kill -9`` would land:
``before-create`` (the take's lease is held, no create journaled yet), ``after-create``
(the journal says ``submitted``), ``polling`` (the simulator counted a poll), ``mid-download``
(the simulator counted a download request), ``before-commit`` (``take.unchecked.mp4`` exists:
downloaded, being checked, not yet renamed), and ``none``.

Run: ``python benchmarks/bench_take_store.py [--faults lost@create,500@create ...]
[--kills none,after-create ...] [--rate 0.3] [--backend gemini]``. The full matrix (13 fault
rules x 6 kill points, two or more renders each) takes a long while; on a shared machine run a
subset. Docs: docs/cache.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composer.sim import Simulator

BOARD = {
    "title": "store bench",
    "output": {"length_s": 6, "resolution": "160x96", "fps": 24, "crossfade_s": 0.5},
    "generation": {"segment_s": 3, "seed": 5},
    "continuity": {"max_attempts": 1},
    "scenes": [
        {"id": "sea", "prompt": "a calm sea with waves", "duration_s": 6, "camera": "pan right"},
        {"id": "city", "prompt": "a city street at night", "duration_s": 6, "camera": "static"},
    ],
}
KEYS = {"GEMINI_API_KEY": "AIza-bench-0123456789", "OPENAI_API_KEY": "sk-bench-0123456789"}
KINDS = ("lost", "500", "503", "drop", "slow")
STEPS = ("create", "poll", "download")
#: Every fault rule of the matrix: ``lost`` only applies to creates.
FAULTS = tuple(f"{k}@{s}" for k in KINDS for s in STEPS if k != "lost" or s == "create")
KILLS = ("none", "before-create", "after-create", "polling", "mid-download", "before-commit")


def journal(cache: Path) -> list[dict]:
    entries = []
    for path in (cache / "journal").glob("*.json"):
        try:
            entries.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # being written
    return entries


def kill_condition(point: str, cache: Path, sim: Simulator, protocol: str) -> Callable[[], bool]:
    """True once the render has reached ``point`` (seen from outside, as a user would)."""

    def counter(name: str) -> int:
        return int(sim.stats().get(protocol, {}).get(name, 0))

    conditions: dict[str, Callable[[], bool]] = {
        "before-create": lambda: any((cache / "leases").glob("*.lock")) and not journal(cache),
        "after-create": lambda: any(e["state"] == "submitted" for e in journal(cache)),
        "polling": lambda: counter("polls") > 0,
        "mid-download": lambda: counter("downloads") > 0,
        "before-commit": lambda: any(cache.glob("takes/*/*/take.unchecked.mp4")),
    }
    return conditions[point]


def render(board: Path, out: Path, sim: Simulator, backend: str, env: dict[str, str]) -> subprocess.Popen:
    url = sim.base_url + ("/v1" if backend == "openai" else "")
    command = [sys.executable, "-m", "composer", "render", str(board), "-o", str(out),
               "--backend", backend, "--base-url", url, "--poll-interval", "0.05"]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def cell(fault: str, kill: str, rate: float, backend: str, root: Path) -> dict[str, object]:
    kind, step = fault.split("@")
    arg = ":0.5" if kind == "slow" else ""
    spec = f"{kind}@{backend}.{step}={rate}{arg}"
    folder = root / f"{kind}-{step}-{kill}"
    folder.mkdir(parents=True)
    board = folder / "board.yaml"
    board.write_text(yaml.safe_dump(BOARD))
    cache = folder / "cache"
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_BASE_URL")}
    env = {**clean, **KEYS, "COMPOSER_CACHE": str(cache), "COMPOSER_LEASE_TTL_S": "5"}
    env.pop("COMPOSER_STORE", None)
    killed = "-"
    dups: dict[str, int] = {}
    runs = 0
    ok_run = False
    last: dict | None = None
    with Simulator(latency_s=0.3, seed=3, faults=spec) as sim:
        if kill != "none":
            proc = render(board, folder / "out", sim, backend, env)
            reached = kill_condition(kill, cache, sim, backend)
            while proc.poll() is None:
                if reached():
                    proc.send_signal(signal.SIGKILL)
                    killed = kill
                    break
                time.sleep(0.01)
            proc.wait()
            last = _note(folder / "out" / "manifest.json", dups, killed == "-") or last
            time.sleep(0.6)  # the service finishes what the killed run had started
        for _ in range(3):
            proc = render(board, folder / "out", sim, backend, env)
            proc.communicate(timeout=600)
            runs += 1
            last = _note(folder / "out" / "manifest.json", dups, True) or last
            if proc.returncode == 0:
                ok_run = True
                break
        created = sum(1 for op in sim.stats()["operations"] if op["protocol"] == backend)
    takes = len({t["key"] for t in last["takes"]}) if last is not None else 0
    reported = sum(dups.values())
    return {
        "fault": spec,
        "kill": kill if kill == "none" or killed != "-" else f"{kill}:missed",
        "runs": runs,
        "rendered": ok_run,
        "created": created,
        "takes": takes,
        "dups": reported,
        "exact": created == takes + reported,
        "ok": created <= takes + reported,
    }


def _note(manifest_path: Path, dups: dict[str, int], read: bool) -> dict | None:
    """Lay a manifest's possible duplicates (by take key) over those of earlier runs; the manifest."""
    if not read or not manifest_path.is_file():
        return None
    manifest = json.loads(manifest_path.read_text())
    manifest_path.unlink()  # the next run's manifest must be its own
    for take in manifest["takes"]:
        if not take.get("cached"):
            dups[take["key"]] = take.get("possible_duplicates", 0)
    for charge in manifest["possible_duplicate_charges"]:
        dups[charge["key"]] = len(charge["unanswered_creates"]) + len(charge["duplicate_operations"])
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated KIND@STEP (default: all)")
    parser.add_argument("--kills", default=",".join(KILLS), help="comma-separated kill points (default: all)")
    parser.add_argument("--rate", type=float, default=0.3, help="probability of each fault (default 0.3)")
    parser.add_argument("--backend", default="gemini", choices=("gemini", "openai"))
    args = parser.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    kills = [k for k in args.kills.split(",") if k]
    for f in faults:
        if f not in FAULTS:
            parser.error(f"unknown fault {f!r}; known: {', '.join(FAULTS)}")
    for k in kills:
        if k not in KILLS:
            parser.error(f"unknown kill point {k!r}; known: {', '.join(KILLS)}")
    header = f"{'fault':<28} {'kill':<14} {'runs':>4} {'created':>7} {'takes':>5} {'dups':>4}  exact  ok"
    print(header)
    print("-" * len(header))
    failures = 0
    with tempfile.TemporaryDirectory(prefix="bench-take-store-") as tmp:
        for fault in faults:
            for kill in kills:
                r = cell(fault, kill, args.rate, args.backend, Path(tmp))
                failures += not r["ok"]
                mark = "" if r["rendered"] else "  (no render succeeded)"
                print(
                    f"{r['fault']:<28} {r['kill']:<14} {r['runs']:>4} {r['created']:>7} {r['takes']:>5} "
                    f"{r['dups']:>4}  {'yes' if r['exact'] else 'no':<5}  {'yes' if r['ok'] else 'NO'}{mark}",
                    flush=True,
                )
    print(f"{failures} cell(s) with operations nobody accounted for")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
