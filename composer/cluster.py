"""A batch of storyboards on a Ray cluster: the only module that imports Ray.

:func:`render_batch` is called by :func:`composer.batch.render_many` when ``--ray`` is given.
The driver (this process) plans every storyboard, then for each one submits:

1. a **generation task** (``pipeline.generate``: submit, poll and download for API backends,
   rendering for the local one, the judge, normalising in the background), on whichever node
   has room (``SPREAD``), asking for one CPU and, where the cluster declares it, one unit of
   the ``composer_api`` resource (a node started with ``--resources '{"composer_api": N}'``
   runs at most N storyboards' API work at once);
   Its judge measures each take in a **judging task** of its own (``SPREAD``, on the CPU its
   waiting generation task holds), on any node that sees the take's file (a shared folder);
   a node that does not (object storage: each node's own cache) hands it back, and it is
   measured where it was made. Each take records where it was judged (``judged_on``);
2. a **composition task** (``pipeline.finish``: compose, manifest, report, timeline) on the
   driver's node, so the outputs land in the driver's ``-o DIR``; takes another node made are
   found in the shared take store (a shared ``COMPOSER_CACHE`` folder, or pulled from
   ``COMPOSER_STORE``).

One actor, :class:`LimitsKeeper`, on the driver's node, holds the batch's
:class:`~composer.jobs.limits.Ledger` (the budget) and
:class:`~composer.jobs.limits.RateWindow` per backend (creates per minute: each service has
its own quota) and counts the operations in flight; every generation task reaches it through
:class:`ClusterLimits`, the cluster's :class:`~composer.jobs.limits.Limits`. The policy is the
one a single process uses; only the place it lives differs.

Failures: a generation task whose node dies is run again by Ray on another node. The take
store's leases of the dead node lapse (at once on the same host, after their ttl elsewhere),
journaled operations are polled and downloaded by the new task rather than created again,
and the dead node's reservations and slots are released by whoever settles the take (or when
the keeper sees the node gone). A driver killed and started again resumes the batch the same
way: every finished take is in the store.

What does not live here: the policy (``jobs/limits.py``), the stages (``pipeline.py``), the
batch's files (``batch.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import pickle
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from composer import pipeline
from composer.backends import calls_service
from composer.batch import BatchProgress, BatchProgressFn, StoryboardResult, storyboard_result
from composer.checks import ContinuityJudge, TakeChecks, measure_detached
from composer.decide import Check
from composer.errors import BudgetExceeded, ComposerError, EnvironmentProblem, GenerationError
from composer.jobs.cache import Take, TakeCache
from composer.jobs.limits import Ledger, Limits, RateWindow
from composer.jobs.store import SharedStore, store_url
from composer.pipeline import Generated, Planned, Progress, RenderOptions
from composer.plan.model import Segment

#: The custom resource a node declares for storyboards' API work (``ray start --resources``).
API_RESOURCE = "composer_api"
#: How often a generation task is run again after its node died.
TASK_RETRIES = 3


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise EnvironmentProblem(
            "rendering on a Ray cluster needs Ray: pip install 'composer[ray]'"
        ) from None
    return ray


class LimitsKeeper:
    """The batch's limits and progress, in one actor (its methods run one at a time)."""

    def __init__(
        self, budget_usd: float | None, requests_per_minute: dict[str, int | None], concurrency: int
    ) -> None:
        self.ledger = Ledger(budget_usd)
        # One minute of creates per service: each has its own quota (a batch may mix backends).
        self.windows = {service: RateWindow(rpm) for service, rpm in requests_per_minute.items()}
        self.concurrency = max(1, concurrency)
        self.slots: dict[str, str] = {}  # token -> the node holding it
        self.progress: dict[str, tuple[str, float, float, str]] = {}

    def take_slot(self, token: str, node_id: str) -> bool:
        if len(self.slots) >= self.concurrency:
            self._reclaim()
        if len(self.slots) >= self.concurrency:
            return False
        self.slots[token] = node_id
        return True

    def _reclaim(self) -> None:
        # A node that died holding slots never gives them back: they go when it is seen gone.
        alive = {n["NodeID"] for n in _ray().nodes() if n.get("Alive")}
        for token, node in list(self.slots.items()):
            if node not in alive:
                del self.slots[token]

    def release_slot(self, token: str) -> None:
        self.slots.pop(token, None)

    def rate(self, service: str) -> float:
        return self.windows.setdefault(service, RateWindow(None)).take()

    def reserve(self, cost: float, what: str, key: str) -> str | None:
        try:
            self.ledger.reserve(cost, what, key)
        except BudgetExceeded as exc:
            return str(exc)  # raised again in the caller: exceptions stay on our side of Ray
        return None

    def settle(self, reserved: float, charged: float, key: str) -> None:
        self.ledger.settle(reserved, charged, key)

    def refund(self, amount: float) -> None:
        self.ledger.refund(amount)

    def hold(self, amount: float, key: str) -> None:
        self.ledger.hold(amount, key)

    def report(self, name: str, stage: str, done: float, total: float, detail: str) -> None:
        self.progress[name] = (stage, done, total, detail)

    def state(self) -> dict[str, Any]:
        return {"ledger": self.ledger.snapshot(), "slots": len(self.slots), "progress": dict(self.progress)}


class ClusterLimits(Limits):
    """:class:`~composer.jobs.limits.Limits` kept by a :class:`LimitsKeeper` actor.

    Slots and the rate are awaited without blocking the event loop; a reservation is a
    blocking round trip (a few milliseconds, once per create) because it must refuse a create
    before it is sent; settling is sent without waiting (the actor runs one caller's calls in order).
    """

    def __init__(self, keeper: Any, service: str) -> None:
        self.keeper = keeper
        self.service = service  # whose minute of creates this storyboard's creates count in
        self._node: str | None = None

    def _node_id(self) -> str:
        if self._node is None:
            self._node = _ray().get_runtime_context().get_node_id()
        return self._node

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        token = uuid.uuid4().hex
        while not await self.keeper.take_slot.remote(token, self._node_id()):
            await asyncio.sleep(0.05)
        try:
            yield
        finally:
            self.keeper.release_slot.remote(token)

    async def rate(self) -> None:
        while (wait := await self.keeper.rate.remote(self.service)) > 0:
            await asyncio.sleep(wait)

    def reserve(self, cost: float, what: str, key: str) -> None:
        refused = _ray().get(self.keeper.reserve.remote(cost, what, key))
        if refused:
            raise BudgetExceeded(refused)

    def settle(self, reserved: float, charged: float, key: str) -> None:
        self.keeper.settle.remote(reserved, charged, key)

    def refund(self, amount: float) -> None:
        self.keeper.refund.remote(amount)

    def hold(self, amount: float, key: str) -> None:
        self.keeper.hold.remote(amount, key)


@dataclass(frozen=True)
class _Failed:
    """A generation that raised: its error's kind and message (the error object may not cross Ray)."""

    kind: str
    message: str


def _portable(error: ComposerError) -> ComposerError:
    """The error itself when it survives pickling, else a GenerationError with its message."""
    try:
        copy: ComposerError = pickle.loads(pickle.dumps(error))
        return copy
    except Exception:
        return GenerationError(str(error))


def _generate(planned: Planned, options: RenderOptions, name: str, keeper: Any) -> tuple[Any, float]:
    """The generation task: (Generated or _Failed, seconds)."""
    ray = _ray()
    began = time.perf_counter()

    def report(progress: Progress) -> None:
        keeper.report.remote(name, progress.stage, progress.done, progress.total, progress.detail)

    node = ray.util.get_node_ip_address()
    try:
        generated = pipeline.generate(
            planned.plan,
            options,
            report,
            limits=ClusterLimits(keeper, planned.plan.generation.backend),
            node=node,
            judge_offload=_judge_elsewhere,
        )
    except ComposerError as exc:
        return _Failed(type(exc).__name__, str(exc)), time.perf_counter() - began
    if generated.failure is not None:
        generated = _replace_failure(generated, _portable(generated.failure))
    return generated, time.perf_counter() - began


def _judge(
    judge: ContinuityJudge, segment: Segment, takes: list[Take], previous: Take | None
) -> tuple[list[Check], TakeChecks, str] | None:
    """The judging task: measure a take on this node (None: this node does not see its file)."""
    return measure_detached(judge, segment, takes, previous, _ray().util.get_node_ip_address())


@functools.cache
def _judging_task() -> Any:
    """The judging task, made once per process (every take of every storyboard calls it)."""
    return _ray().remote(_judge).options(num_cpus=0, scheduling_strategy="SPREAD", max_retries=TASK_RETRIES)


def _judge_elsewhere(
    judge: ContinuityJudge, segment: Segment, takes: list[Take], previous: Take | None
) -> tuple[list[Check], TakeChecks, str] | None:
    """Judging as a task spread over the nodes (``SPREAD``), called from a generation task's
    judging thread, which waits for it. It declares no CPU of its own: the waiting generation
    task holds one already, and when generation tasks fill a node's CPUs (both storyboards on
    the head once the worker died, in tests/test_cluster.py) a judging task that asked for one
    more waited forever. Measuring is a pure function of the take's file: a node that dies
    mid-measure costs a retry, never money."""
    try:
        return _ray().get(_judging_task().remote(judge, segment, takes, previous))
    except ComposerError:
        raise  # the take itself is at fault (Ray's error is also the original's class)
    except Exception:
        return None  # the cluster could not run it (its retries spent): measured here


def _replace_failure(generated: Generated, failure: ComposerError) -> Generated:
    return replace(generated, failure=failure)


def _localize(generated: Generated, cache_dir: Path | None) -> Generated:
    """The takes, each at a path on this node: a take another node made is pulled from the
    shared store (``COMPOSER_STORE``) when this node's cache does not have it."""
    result = generated.result
    takes = [*result.segment_takes.values(), *(t for chain in result.chain_takes.values() for t in chain)]
    if all(t.path.is_file() for t in takes):
        return generated
    cache = TakeCache(cache_dir)
    url = store_url()
    store = SharedStore(url) if url else None
    found: dict[str, Take] = {}
    for take in takes:
        if take.path.is_file() or take.key in found:
            continue
        local = cache.get(take.key) or (store.pull(take.key, cache) if store is not None else None)
        if local is None:
            raise EnvironmentProblem(
                f"the take {take.key[:12]} made on another node is not in this node's take store: "
                "every node of the cluster needs the same COMPOSER_STORE, or COMPOSER_CACHE on a "
                "shared folder mounted at the same path (docs/cluster.md)"
            )
        found[take.key] = local
    result.segment_takes = {k: found.get(t.key, t) for k, t in result.segment_takes.items()}
    result.chain_takes = {k: [found.get(t.key, t) for t in c] for k, c in result.chain_takes.items()}
    return generated


def _finish(
    made: tuple[Any, float],
    planned: Planned,
    options: RenderOptions,
    out: str,
    name: str,
    keeper: Any,
    started: float,
) -> StoryboardResult:
    """The composition task, on the driver's node: outputs, manifest, report, timeline."""
    generated, generate_s = made
    folder = Path(out)
    source = planned.source_path
    if isinstance(generated, _Failed):
        error = GenerationError(generated.message)
        return storyboard_result(
            name, source, folder, None, error, time.time() - started, error_kind=generated.kind
        )

    def report(progress: Progress) -> None:
        keeper.report.remote(name, progress.stage, progress.done, progress.total, progress.detail)

    try:
        generated = _localize(generated, options.cache_dir)
        result = pipeline.finish(planned, generated, options, folder, report, generate_s=generate_s)
    except ComposerError as exc:
        return storyboard_result(name, source, folder, None, exc, time.time() - started)
    return storyboard_result(name, source, folder, result, None, time.time() - started)


def connect(address: str) -> Any:
    """Join the cluster at ``address`` as its driver; EnvironmentProblem when it cannot be reached."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    host, _, port = address.split("://")[-1].rpartition(":")
    if "://" not in address and port.isdigit():
        _probe(address, host, int(port))
    extra: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_loopback:
            # A cluster on loopback (tests, one machine): the driver is on the head's address,
            # which Ray would otherwise take for the machine's outward one.
            extra["_node_ip_address"] = host
    try:
        ray.init(address=address, namespace="composer", log_to_driver=False, **extra)
    except Exception as exc:
        raise EnvironmentProblem(
            f"cannot reach the Ray cluster at {address} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
            "start one with `ray start --head` and pass its address to --ray (or set RAY_ADDRESS), docs/cluster.md"
        ) from None
    return ray


def _probe(address: str, host: str, port: int) -> None:
    """Refuse at once an address nothing listens on (Ray itself waits minutes for it)."""
    try:
        with socket.create_connection((host, port), timeout=5.0):
            pass
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); start one with "
            "`ray start --head` and pass its address to --ray (or set RAY_ADDRESS), docs/cluster.md"
        ) from None


def _rpm(options: RenderOptions, backend: str) -> int | None:
    """Creates per minute for one service in the batch: --rpm, else the official service's
    declared quota."""
    if options.jobs.requests_per_minute:
        return options.jobs.requests_per_minute
    if options.base_url is not None:
        return None  # a relay or a simulator has its own quota
    from composer.backends import registry

    try:
        return registry.capabilities(backend, None).requests_per_minute
    except ComposerError:
        return None


def render_batch(
    address: str,
    names: list[str],
    planned: list[Planned],
    root: Path,
    options: RenderOptions,
    on_progress: BatchProgressFn | None = None,
) -> list[StoryboardResult]:
    """Render every planned storyboard on the cluster at ``address``, each into ``root/<name>/``."""
    joined = not _ray().is_initialized()  # a caller already connected stays connected
    ray = connect(address)
    try:
        return _render_batch(ray, names, planned, root, options, on_progress)
    finally:
        if joined:
            ray.shutdown()


def _render_batch(
    ray: Any,
    names: list[str],
    planned: list[Planned],
    root: Path,
    options: RenderOptions,
    on_progress: BatchProgressFn | None,
) -> list[StoryboardResult]:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    backends = {plan.plan.generation.backend for plan in planned}
    keeper = (
        ray.remote(LimitsKeeper)
        .options(num_cpus=0, scheduling_strategy=here)
        .remote(options.jobs.budget_usd, {b: _rpm(options, b) for b in backends}, options.jobs.concurrency)
    )
    api_units = ray.cluster_resources().get(API_RESOURCE, 0)
    generate_task = ray.remote(_generate)
    finish_task = ray.remote(_finish)
    started = time.time()
    pending: dict[Any, str] = {}
    for name, plan in zip(names, planned, strict=True):
        resources = {API_RESOURCE: 1} if api_units and calls_service(plan.plan.generation.backend) else {}
        made = generate_task.options(
            num_cpus=1,
            resources=resources,
            scheduling_strategy="SPREAD",
            max_retries=TASK_RETRIES,  # a node that dies: run again elsewhere (resumes, never pays twice)
            retry_exceptions=False,
        ).remote(plan, options, name, keeper)
        done = finish_task.options(num_cpus=1, scheduling_strategy=here, max_retries=TASK_RETRIES).remote(
            made, plan, options, str(root / name), name, keeper, started
        )
        pending[done] = name
    results: dict[str, StoryboardResult] = {}
    shown: dict[str, tuple[str, float, float, str]] = {}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                name = pending.pop(ref)
                try:
                    results[name] = ray.get(ref)
                except Exception as exc:  # the task could not run (its retries spent): the batch goes on
                    error = GenerationError(f"the cluster could not render it: {str(exc).splitlines()[-1]}")
                    source = planned[names.index(name)].source_path
                    results[name] = storyboard_result(
                        name, source, root / name, None, error, time.time() - started
                    )
            if on_progress is not None:
                shown = _show(ray.get(keeper.state.remote())["progress"], shown, on_progress)
    finally:
        for ref in pending:
            ray.cancel(ref, recursive=True)
        ray.kill(keeper)
    return [results[name] for name in names]


def _show(
    now: dict[str, tuple[str, float, float, str]],
    shown: dict[str, tuple[str, float, float, str]],
    on_progress: BatchProgressFn,
) -> dict[str, tuple[str, float, float, str]]:
    for name, state in sorted(now.items()):
        if shown.get(name) != state:
            on_progress(BatchProgress(name, Progress(*state)))
    return dict(now)


def disconnect() -> None:
    """Leave the cluster (the driver's end; the cluster keeps running)."""
    ray = _ray()
    if ray.is_initialized():
        ray.shutdown()
