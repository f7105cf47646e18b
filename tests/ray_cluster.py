"""A real Ray cluster on loopback for the cluster tests and ``benchmarks/bench_cluster.py``.

Each node is a ``ray start --block`` process in its own process group, on its own loopback
address (127.0.0.2 for the head, 127.0.0.3... for the others: Ray 2.60 replaces the literal
127.0.0.1 with the machine's outward address, but keeps other loopback addresses), with
the dashboard off and a small object store. Stopping a node kills its process group, so its
raylet and its workers go at once, as when a machine dies. Nothing here mocks composer.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

HEAD_IP = "127.0.0.2"


def free_port(host: str = HEAD_IP) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LoopbackCluster:
    """``nodes`` Ray nodes on loopback: the head (``cpus[0]`` CPUs) and workers; ``api`` units of
    ``composer_api`` on each. Use as a context manager: every node is killed on the way out."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        cpus: tuple[int, ...] = (2, 1),
        api: int = 4,
        logs: Path | None = None,
    ) -> None:
        self.env = {
            **env,
            "RAY_AUTH_MODE": "disabled",
            "RAY_USAGE_STATS_ENABLED": "0",
            # A dead node is noticed in about a second, not the default fifteen.
            "RAY_health_check_period_ms": "300",
            "RAY_health_check_failure_threshold": "3",
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
            ),
        }
        self.cpus, self.api = cpus, api
        self.port = free_port()
        self.address = f"{HEAD_IP}:{self.port}"
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def _start(self, ip: str, cpus: int) -> None:
        head = ip == HEAD_IP
        where = (
            ["--head", "--port", str(self.port), "--include-dashboard=false"]
            if head
            else ["--address", self.address]
        )
        command = [
            sys.executable, "-m", "ray.scripts.scripts", "start", "--block", *where,
            "--node-ip-address", ip, "--num-cpus", str(cpus),
            "--resources", json.dumps({"composer_api": self.api}),
            "--object-store-memory", str(80 * 1024 * 1024), "--disable-usage-stats",
        ]  # fmt: skip
        log = open(self.logs / f"node-{ip}.log", "ab") if self.logs else subprocess.DEVNULL  # noqa: SIM115
        self.procs[ip] = subprocess.Popen(
            command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start(self) -> LoopbackCluster:
        """Start every node and wait until all are alive (as seen from the driver: this process)."""
        for i, cpus in enumerate(self.cpus):
            self._start(f"127.0.0.{2 + i}", cpus)
            if i == 0:
                time.sleep(1.0)  # the head's GCS first
        self.wait_for(len(self.cpus))
        return self

    def ray(self):  # type: ignore[no-untyped-def]
        from composer import cluster

        return cluster.connect(self.address)

    def alive(self) -> list[str]:
        return sorted(n["NodeManagerAddress"] for n in self.ray().nodes() if n.get("Alive"))

    def wait_for(self, count: int, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(Exception):
                if len(self.alive()) == count:
                    return
            for ip, proc in self.procs.items():
                if proc.poll() is not None and ip == HEAD_IP:
                    raise RuntimeError(f"the Ray head exited ({proc.returncode}); see its log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} Ray nodes not alive after {timeout_s:g} s")
            time.sleep(0.3)

    def kill(self, ip: str) -> None:
        """Kill a node's whole process group (raylet, workers): a machine that died."""
        proc = self.procs.pop(ip, None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def restart_missing(self) -> None:
        """Start again any worker node that was killed, and wait for all of them."""
        for i, cpus in enumerate(self.cpus):
            ip = f"127.0.0.{2 + i}"
            if ip not in self.procs:
                self._start(ip, cpus)
        self.wait_for(len(self.cpus))

    def stop(self) -> None:
        from composer import cluster

        with contextlib.suppress(Exception):
            cluster.disconnect()
        for ip in sorted(self.procs, reverse=True):  # workers first, the head last
            self.kill(ip)

    def __enter__(self) -> LoopbackCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
