"""Issue 17: a hostile service, played by the simulator's body faults, against the real job runner.

Each fault (``huge``, ``trickle``, ``wrongtype``, ``smaller``) must end in a clear error within
the download's deadline, and leave nothing in the take cache (no clip, no temporary file). The
simulator's own hardening (negative chunk sizes, who may change its rules) is checked here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from composer.backends import registry
from composer.backends.base import GenerationRequest, TakeInput
from composer.backends.http import DownloadLimits
from composer.backends.remote import RemoteBackend
from composer.errors import TerminalError
from composer.jobs.cache import TakeCache
from composer.jobs.journal import Journal
from composer.jobs.remote import JobSettings, Ledger, RemoteJobs
from composer.sim import Simulator

DEADLINE_S = 3.0
SIM_OPTIONS = {"latency_s": 0.0}  # no simulated latency: the faults alone set these timings
# Fake keys; no real key, address or proxy from the developer's shell.
pytestmark = pytest.mark.usefixtures("keys")


def _request() -> GenerationRequest:
    return GenerationRequest(
        backend="gemini",
        model="veo-3.1-fast-generate-preview",
        kind="generate",
        prompt="a red kite over green hills",
        camera="static",
        duration_s=4,
        width=1280,
        height=720,
        fps="24",
        seed=3,
    )


def _make(sim: Simulator, tmp_path: Path, faults: str) -> tuple[BaseException | None, float, Path]:
    """Run one take through the job runner with ``faults`` set; (error, seconds, cache root)."""
    sim.set_faults(faults)
    cache = TakeCache(tmp_path / "cache")
    backend = registry.create("gemini", base_url=sim.base_url)
    assert isinstance(backend, RemoteBackend)
    settings = JobSettings(
        download_deadline_s=DEADLINE_S, retry_base_s=0.01, retry_max_s=0.05, poll_interval_s=0.02
    )
    jobs = RemoteJobs(backend, Journal(cache.root / "journal"), settings, Ledger(None), seed=0)
    request = _request()
    dest = cache.clip_path(request.key())

    async def go() -> None:
        try:
            await jobs.make(request, TakeInput(), dest, expected_s=4, label="s1", segment="o1-s1")
        finally:
            await backend.aclose()

    began = time.monotonic()
    error: BaseException | None = None
    try:
        asyncio.run(go())
    except BaseException as exc:
        error = exc
    finally:
        sim.set_faults("")
    return error, time.monotonic() - began, cache.root


def _left_in_cache(root: Path) -> list[str]:
    takes = root / "takes"
    return sorted(str(p.relative_to(root)) for p in takes.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("huge@download=1", "offered 50.0 GB for the download of 4 s of 1280x720 at 24 fps"),
        ("trickle@download=1:0.2", f"did not finish within its {DEADLINE_S:g} s deadline"),
        ("wrongtype@download=1", "with text/html; charset=utf-8, not a video"),
        ("smaller@download=1", "delivered a 160x90 video for a 1280x720 request"),
    ],
    ids=["huge", "trickle", "wrongtype", "smaller"],
)
@pytest.mark.slow
def test_each_hostile_download_ends_in_a_clear_error_and_leaves_nothing(
    sim: Simulator, tmp_path: Path, fault: str, words: str
) -> None:
    error, seconds, root = _make(sim, tmp_path, fault)
    assert isinstance(error, TerminalError), repr(error)
    assert words in str(error)
    assert str(error).startswith("s1: ")
    assert seconds < DEADLINE_S + 20  # the deadline, the generation and one rescale at most
    assert _left_in_cache(root) == []


@pytest.mark.slow
def test_without_faults_the_same_take_downloads(sim: Simulator, tmp_path: Path) -> None:
    error, _, root = _make(sim, tmp_path, "")
    assert error is None
    assert [p for p in _left_in_cache(root) if p.endswith(".part")] == []


def test_the_size_cap_follows_what_was_asked() -> None:
    small = DownloadLimits.for_video(4, 640, 360, 24)
    large = DownloadLimits.for_video(8, 1920, 1080, 24)
    assert small.max_bytes < large.max_bytes < 2 * 1024**3
    assert DownloadLimits.for_video(3600, 7680, 4320, 60).max_bytes == 2 * 1024**3  # the ceiling
    assert large.max_bytes > 50 * 1024**2  # generous: a real 8 s 1080p clip is 5-20 MB


def test_an_error_body_is_read_only_in_part(sim: Simulator, tmp_path: Path) -> None:
    """A 404 whose body is huge is answered from its first bytes (the simulator sends a small one;
    the bounded reader is exercised by a raw socket server)."""
    body = b'{"error": {"message": "' + b"x" * (4 * 1024 * 1024) + b'"}}'
    head = f"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        with contextlib.suppress(OSError):
            conn.sendall(head.encode() + body)
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    backend = registry.create("gemini", base_url=f"http://127.0.0.1:{port}")
    assert isinstance(backend, RemoteBackend)

    async def go() -> str:
        try:
            await backend.http.download("v1beta/files/x:download", tmp_path / "x.mp4")
        except TerminalError as exc:
            return str(exc)
        finally:
            await backend.aclose()
        return ""

    message = asyncio.run(go())
    thread.join(timeout=5)
    server.close()
    assert "404" in message and len(message) < 2000
    assert not (tmp_path / "x.mp4").exists()


# -- the simulator itself ---------------------------------------------------------------------


def test_a_negative_chunk_size_is_refused(sim: Simulator) -> None:
    host, port = sim.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(
            b"POST /v1/videos HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
            b"content-type: application/json\r\n\r\n-5\r\nabc\r\n0\r\n\r\n"
        )
        # The server closes the connection after its answer; headers and body may come in
        # separate reads, so read to the end.
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    answer = data.decode(errors="replace")
    assert answer.startswith("HTTP/1.1 400") and "negative chunk size" in answer


def test_fault_rules_change_only_with_json(sim: Simulator) -> None:
    plain = httpx.post(
        f"{sim.base_url}/_sim/faults", content='{"faults": "500=1"}', headers={"content-type": "text/plain"}
    )
    assert plain.status_code == 415
    assert str(sim.faults) == ""
    ok = httpx.post(f"{sim.base_url}/_sim/faults", json={"faults": "503@openai.poll=0.5"})
    assert ok.json() == {"faults": "503@openai.poll=0.5"}
    sim.set_faults("")


def test_fault_rules_need_the_key_when_one_is_set() -> None:
    with Simulator(api_key="the-simulator-key", faults="") as keyed:
        url = f"{keyed.base_url}/_sim/faults"
        assert httpx.post(url, json={"faults": "500=1"}).status_code == 401
        assert (
            httpx.post(url, json={"faults": "500=1"}, headers={"authorization": "Bearer wrong"}).status_code
            == 401
        )
        assert str(keyed.faults) == ""
        answer = httpx.post(
            url, json={"faults": "500=1"}, headers={"authorization": "Bearer the-simulator-key"}
        )
        assert answer.status_code == 200 and str(keyed.faults) == "500=1"
