"""The take store against the simulator, counted on the service's side: nothing is paid twice.

Renders run as real processes (``python -m composer render``) on one store, talking real HTTP
to ``composer.sim`` on loopback; the simulator's own list of the operations it created is the
bill. Clips are tiny (160x96, 3 s chunks) and latencies small, so each test takes seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from composer.sim import Simulator
from tests.support import TINY_API_BOARD

# Every test but the lease's pause renders in subprocesses (seconds each): the slow tier.
pytestmark = pytest.mark.slow

# The simulator renders' tiny two-scene board, under its own title.
BOARD = {**TINY_API_BOARD, "title": "store"}
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


def render_process(board: Path, out: Path, sim: Simulator, backend: str, env: dict[str, str]) -> dict:
    """One render as its own process, which must succeed: its manifest and what it printed."""
    proc = subprocess.run(
        render_command(board, out, sim, backend), env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr
    return {"manifest": json.loads((out / "manifest.json").read_text()), "out": proc.stdout}


@pytest.mark.parametrize(
    ("backend", "faults", "duplicates"),
    [
        # Gemini cannot list operations: the lost create is sent again and reported.
        ("gemini", "lost@gemini.create=1x", 1),
        # A 500 after the body was sent is as ambiguous (here it started nothing).
        ("gemini", "500@gemini.create=1x", 1),
        # OpenAI lists its videos: the lost create's video is found and adopted, nothing is paid twice.
        ("openai", "lost@openai.create=1x", 0),
        # ... and a 500 that started nothing is proven so by the listing.
        ("openai", "500@openai.create=1x", 0),
    ],
)
def test_unanswered_creates_are_adopted_or_reported_as_possible_duplicates(
    backend: str, faults: str, duplicates: int, board: Path, env: dict[str, str], tmp_path: Path
) -> None:
    with Simulator(latency_s=0.05, seed=3, faults=faults) as server:
        run = render_process(board, tmp_path / "out", server, backend, env)
        ops = created(server, backend)
    manifest = run["manifest"]
    takes = {t["key"] for t in manifest["takes"]}
    reported = sum(t["possible_duplicates"] for t in manifest["takes"])
    assert reported == duplicates
    assert len(manifest["possible_duplicate_charges"]) == duplicates
    assert len(takes) <= len(ops) <= len(takes) + reported
    if duplicates:
        assert "possible duplicate charge" in run["out"]
        named = {op for d in manifest["possible_duplicate_charges"] for op in d["operations"]}
        assert named <= set(ops)
        # Each possible duplicate is priced, apart from the delivered takes' cost, to check the bill.
        charges = [d["possibly_charged_usd"] for d in manifest["possible_duplicate_charges"]]
        assert all(c > 0 for c in charges)
        assert manifest["possibly_charged_usd"] == pytest.approx(sum(charges))
        assert f"possibly charged: up to ${manifest['possibly_charged_usd']:.2f}" in run["out"]
        page = (tmp_path / "out" / "report.html").read_text()
        assert "Possible duplicate charges" in page and all(op in page for op in named)
    else:
        assert len(ops) == len(takes)  # the lost create's operation was adopted, not paid again


def journal(cache: Path) -> list[dict]:
    entries = []
    for path in (cache / "journal").glob("*.json"):
        try:
            entries.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return entries


def test_a_render_killed_while_creating_is_reported_by_the_next_run(
    board: Path, env: dict[str, str], tmp_path: Path
) -> None:
    cache = Path(env["COMPOSER_CACHE"])
    # The first create's answer takes 3 s: the render is killed while it waits for it.
    with Simulator(latency_s=0.05, seed=3, faults="slow@gemini.create=1x:3") as server:
        proc = subprocess.Popen(
            render_command(board, tmp_path / "out", server),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while not any(a["outcome"] == "sending" for e in journal(cache) for a in e["attempts"]):
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "no create was journaled in time"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = f"{proc.pid}"
        time.sleep(3.5)  # the service finishes the slow create: a paid operation nobody knows
        run = render_process(board, tmp_path / "out", server, "gemini", env)
        ops = created(server, "gemini")
    manifest = run["manifest"]
    takes = {t["key"] for t in manifest["takes"]}
    charges = manifest["possible_duplicate_charges"]
    assert charges, "the killed run's unanswered create was not reported"
    assert any(c["run"].endswith(":" + killed) for d in charges for c in d["unanswered_creates"])
    reported = sum(t["possible_duplicates"] for t in manifest["takes"])
    assert len(ops) <= len(takes) + reported
    assert "possible duplicate charge" in run["out"]
    assert journal(cache) == []


def test_a_moved_store_reuses_every_take_and_a_damaged_take_is_made_again(
    board: Path, tmp_path: Path
) -> None:
    from composer.pipeline import render

    store = tmp_path / "store"
    first = render(board, tmp_path / "a", backend="local", cache_dir=store)
    keys = {t.key for t in first.manifest.takes}
    assert first.manifest.generated == len(keys)
    meta = json.loads(next(store.glob("takes/*/*/take.json")).read_text())
    assert not Path(meta["path"]).is_absolute() and meta["size"] > 0 and len(meta["sha256"]) == 64

    moved = tmp_path / "elsewhere" / "store"
    moved.parent.mkdir()
    store.rename(moved)
    second = render(board, tmp_path / "b", backend="local", cache_dir=moved)
    assert second.manifest.generated == 0 and second.manifest.cache_hits == len(keys)

    victim = sorted(keys)[0]
    clip = moved / "takes" / victim[:2] / victim / "take.mp4"
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # truncated
    third = render(board, tmp_path / "c", backend="local", cache_dir=moved)
    assert third.manifest.generated == 1
    assert any(victim[:12] in note and "damaged" in note for note in third.manifest.notes)
    assert list((moved / "quarantine").glob(f"{victim}-*/take.mp4"))
    assert clip.stat().st_size == json.loads((clip.parent / "take.json").read_text())["size"]


def composer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "composer", *args], capture_output=True, text=True, timeout=120
    )


def test_cache_ls_du_verify_gc(board: Path, tmp_path: Path) -> None:
    from composer.pipeline import render

    store = tmp_path / "store"
    keys = {t.key for t in render(board, tmp_path / "a", backend="local", cache_dir=store).manifest.takes}
    listed = composer("cache", "--cache", str(store), "ls")
    assert listed.returncode == 0 and f"{len(keys)} take(s)" in listed.stdout
    assert all(k[:12] in listed.stdout for k in keys)
    assert "takes" in composer("cache", "--cache", str(store), "du").stdout
    assert composer("cache", "--cache", str(store), "verify").returncode == 0

    victim = sorted(keys)[0]
    clip = store / "takes" / victim[:2] / victim / "take.mp4"
    data = bytearray(clip.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, another hash: only verify sees it
    clip.write_bytes(bytes(data))
    checked = composer("cache", "--cache", str(store), "verify")
    assert checked.returncode == 1 and victim[:12] in checked.stdout
    assert not clip.exists() and list((store / "quarantine").glob(f"{victim}-*"))

    part = store / "takes" / "ab" / "abc" / ".take.mp4.x.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"cut short")
    os.utime(part, (time.time() - 7200, time.time() - 7200))
    dry = composer("cache", "--cache", str(store), "gc", "--older-than", "0", "--dry-run")
    assert dry.returncode == 0 and "would remove" in dry.stdout
    assert len(list(store.glob("takes/*/*/take.json"))) == len(keys) - 1
    assert composer("cache", "--cache", str(store), "gc", "--older-than", "0").returncode == 0
    assert not list(store.glob("takes/*/*/take.json")) and not part.exists()


def test_unanswered_creates_count_against_the_budget_as_the_service_counts_them(
    board: Path, env: dict[str, str], tmp_path: Path
) -> None:
    from composer.backends.gemini import CAPABILITIES

    model = "veo-3.1-fast-generate-preview"  # the storyboard's default model on gemini
    price = CAPABILITIES.price_per_s[model] * 3  # a 3 s chunk
    budget = 2 * price + 0.001
    # Every create's answer is lost although the service starts the operation.
    with Simulator(latency_s=0.05, seed=3, faults="lost@gemini.create=1.0") as server:
        command = [
            *render_command(board, tmp_path / "out", server),
            "--budget",
            f"{budget:.4f}",
            "--model",
            model,
        ]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
        ops = created(server, "gemini")
    assert proc.returncode != 0
    assert 1 <= len(ops) <= 2, f"the service started {len(ops)} operations for a budget of 2"
    # The failed render still names its possible duplicate charges, after the error, with the
    # operation ids the manifest holds and when each unanswered create was sent.
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["possible_duplicate_charges"]
    tail = proc.stderr.splitlines()
    error_at = max(i for i, line in enumerate(tail) if line.startswith("error: "))
    money = [line for line in tail[error_at:] if line.startswith("possible duplicate charge: ")]
    assert len(money) == len(manifest["possible_duplicate_charges"]), proc.stderr
    for dup, line in zip(manifest["possible_duplicate_charges"], money, strict=True):
        assert all(c["sent_at"] in line for c in dup["unanswered_creates"])
        assert all(op in line for op in dup["operations"])
    assert manifest["possibly_charged_usd"] > 0 and "possibly charged: up to $" in proc.stderr


@pytest.fixture
def s3(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """An S3 server (moto's server mode) on loopback with one bucket; the environment to use it."""
    moto_server = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    creds = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    endpoint = f"http://{host}:{port}"
    try:
        # moto keeps its buckets per Python process: each test its own prefix in one bucket.
        s3fs.S3FileSystem(endpoint_url=endpoint, key="test", secret="test").makedirs(
            "takes-bucket", exist_ok=True
        )
        store = f"s3://takes-bucket/{uuid.uuid4().hex[:8]}"
        yield {**creds, "FSSPEC_S3_ENDPOINT_URL": endpoint, "COMPOSER_STORE": store}
    finally:
        server.stop()


def test_renders_on_two_machines_share_one_s3_store_and_make_each_take_once(
    board: Path, sim: Simulator, env: dict[str, str], s3: dict[str, str], tmp_path: Path
) -> None:
    # Two "machines": each render has its own local cache; they share only the S3 store.
    envs = [{**env, **s3, "COMPOSER_CACHE": str(tmp_path / f"local{i}")} for i in range(2)]
    procs = [
        subprocess.Popen(
            render_command(board, tmp_path / f"out{i}", sim),
            env=e,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i, e in enumerate(envs)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()
    keys = take_keys(tmp_path / "out0")
    assert len(created(sim, "gemini")) == len(keys)
    # A third machine with an empty cache pulls every take from the store and pays nothing.
    third = {**env, **s3, "COMPOSER_CACHE": str(tmp_path / "local2")}
    run = render_process(board, tmp_path / "out2", sim, "gemini", third)
    assert run["manifest"]["generated"] == 0
    assert len(created(sim, "gemini")) == len(keys)


def test_a_machine_that_dies_mid_render_leaves_its_operations_to_the_next_on_the_s3_store(
    board: Path, env: dict[str, str], s3: dict[str, str], tmp_path: Path
) -> None:
    # Machine 1 (its own local cache) is killed once an operation is answered; machine 2 (another
    # local cache, the same S3 store) takes the leases over when they go stale and finds the
    # operations in the store's journal: it polls and downloads them, never creates them again.
    import s3fs

    store = s3fs.S3FileSystem(endpoint_url=s3["FSSPEC_S3_ENDPOINT_URL"], key="test", secret="test")
    journal_glob = s3["COMPOSER_STORE"].removeprefix("s3://") + "/journal/*.json"
    envs = [{**env, **s3, "COMPOSER_CACHE": str(tmp_path / f"local{i}")} for i in range(2)]
    with Simulator(latency_s=3.0, seed=3) as server:
        proc = subprocess.Popen(
            render_command(board, tmp_path / "out1", server), env=envs[0], stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 90
        while not any(b'"submitted"' in store.cat_file(f) for f in store.glob(journal_glob, refresh=True)):
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "no operation was journaled in the store in time"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not (tmp_path / "local0" / "journal").exists()  # the journal is in the store only
        run = render_process(board, tmp_path / "out2", server, "gemini", envs[1])
        ops = created(server, "gemini")
    manifest = run["manifest"]
    assert len(ops) <= len({t["key"] for t in manifest["takes"]}) + sum(
        t["possible_duplicates"] for t in manifest["takes"]
    )
    assert any(t["resumed"] for t in manifest["takes"]), "machine 2 did not resume machine 1's operation"
    store.invalidate_cache()  # this test's listings are cached by s3fs
    assert store.glob(journal_glob) == []


def test_paid_work_left_by_a_killed_run_is_reported_by_the_next_render(
    board: Path, env: dict[str, str], tmp_path: Path
) -> None:
    cache = Path(env["COMPOSER_CACHE"])
    other = tmp_path / "other.yaml"
    other.write_text(
        yaml.safe_dump({**BOARD, "scenes": [{**BOARD["scenes"][0], "prompt": "a desert at dawn"}]})
    )
    with Simulator(latency_s=2.0, seed=3) as server:
        proc = subprocess.Popen(
            render_command(board, tmp_path / "out", server),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while not any(e["state"] == "submitted" for e in journal(cache)):
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "nothing was submitted in time"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        left = {e["operation"]["id"] for e in journal(cache) if e["state"] == "submitted"}
        run = render_process(other, tmp_path / "other", server, "gemini", env)
    reported = {x["operation"] for x in run["manifest"]["left_by_earlier_runs"]}
    assert left <= reported
    assert "left by an earlier run" in run["out"]


def test_a_holder_paused_past_its_ttl_does_not_create_after_resuming(tmp_path: Path) -> None:
    """A suspended holder's lease is taken over; on resuming, its next create is refused."""
    import asyncio

    from composer.jobs.lease import LeaseLost, Leases, ensure_held

    async def holder() -> None:
        async with Leases(tmp_path / "leases", ttl_s=0.3).hold("k"):
            await ensure_held("before the pause")  # still ours: nothing raised
            time.sleep(0.5)  # suspended: the event loop (and the heartbeat) does not run
            other = Leases(tmp_path / "leases", ttl_s=0.3)
            assert other.try_acquire("k") is None  # the stale lease is renamed aside first...
            assert other.try_acquire("k") is not None  # ...then another process holds it
            with pytest.raises(LeaseLost, match="took over"):
                await ensure_held("after the pause")
        await ensure_held("outside any lease")  # no lease held: nothing to check

    asyncio.run(holder())
