"""The take store against the simulator, counted on the service's side: nothing is paid twice.

Renders run as real processes (``python -m composer render``) on one store, talking real HTTP
to ``composer.sim`` on loopback; the simulator's own list of the operations it created is the
bill. Clips are tiny (160x96, 3 s chunks) and latencies small, so each test takes seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from composer.sim import Simulator

BOARD = {
    "title": "store",
    "output": {"length_s": 6, "resolution": "160x96", "fps": 24, "crossfade_s": 0.5},
    "generation": {"segment_s": 3, "seed": 5},
    "continuity": {"max_attempts": 1},
    "scenes": [
        {"id": "sea", "prompt": "a calm sea with waves", "duration_s": 6, "camera": "pan right"},
        {"id": "city", "prompt": "a city street at night", "duration_s": 6, "camera": "static"},
    ],
}
KEY_ENV = {"GEMINI_API_KEY": "AIza-store-test-0123456789", "OPENAI_API_KEY": "sk-store-test-0123456789"}


@pytest.fixture
def board(tmp_path: Path) -> Path:
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump(BOARD))
    return path


@pytest.fixture
def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_BASE_URL")}
    return {**clean, **KEY_ENV, "COMPOSER_LEASE_TTL_S": "5"}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(latency_s=0.3, seed=3) as server:
        yield server


def render_command(board: Path, out: Path, sim: Simulator, backend: str = "gemini") -> list[str]:
    url = sim.base_url + "/v1" if backend == "openai" else sim.base_url
    return [sys.executable, "-m", "composer", "render", str(board), "-o", str(out),
            "--backend", backend, "--base-url", url, "--poll-interval", "0.05"]  # fmt: skip


def created(sim: Simulator, protocol: str) -> list[str]:
    return [op["id"] for op in sim.stats()["operations"] if op["protocol"] == protocol]


def take_keys(out: Path) -> set[str]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {t["key"] for t in manifest["takes"]}


@pytest.mark.parametrize("renders", [2, 4])
def test_renders_started_together_on_one_store_make_each_take_once(
    renders: int, board: Path, sim: Simulator, env: dict[str, str], tmp_path: Path
) -> None:
    outs = [tmp_path / f"out{i}" for i in range(renders)]
    procs = [
        subprocess.Popen(
            render_command(board, out, sim), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for out in outs
    ]
    results = [proc.communicate(timeout=240) for proc in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()
    keys = take_keys(outs[0])
    assert all(take_keys(out) == keys for out in outs[1:])
    ops = created(sim, "gemini")
    assert len(ops) == len(keys), f"{len(ops)} operations for {len(keys)} takes"
    leases = Path(env["COMPOSER_CACHE"]) / "leases"
    assert not list(leases.glob("*.lock"))  # every lease released
