"""The job runner: turns a plan's segments into takes, reusing the cache.

Each segment is a chain of chunks (a generation, then extensions of it); a segment that
continues another waits for that one's accepted take. Every segment runs as a task on one
asyncio event loop: the local backend and the continuity judge run in worker threads (as
many at once as ``workers``: they need the CPU), API backends through
:class:`~composer.jobs.remote.RemoteJobs` (up to its concurrency limit of operations in flight,
journaled so nothing is paid twice). When one segment fails (a safety block, a refused
request, the budget), nothing new is submitted, the operations already in flight are
finished and cached, and then the first failure is raised.

What lives here: ordering, the cache look-up, building requests, attempts, events. What does
not: any backend protocol (``backends/``), the life of one remote operation
(``jobs/remote.py``), or composing the takes into outputs (``compose/``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from composer import ffmpeg
from composer.backends import encodes_output
from composer.backends.base import Backend, ClipInfo, GenerationRequest, ImageRef, TakeInput
from composer.backends.remote import RemoteBackend
from composer.decide import Attempt, Check, Decision, decide
from composer.errors import BudgetExceeded, ContentFiltered, MediaError, ModelRefused, TerminalError
from composer.jobs.cache import Take, TakeCache
from composer.jobs.journal import Journal
from composer.jobs.lease import LeaseLost, Leases
from composer.jobs.limits import Ledger, Limits
from composer.jobs.remote import JobSettings, JobStats, RemoteJobs, Stopping
from composer.jobs.store import SharedStore, store_url
from composer.plan.model import Plan, Segment
from composer.timecode import parse_fps


@dataclass(frozen=True)
class TakeEvent:
    """One chunk finished: generated now, or found in the cache."""

    segment: str
    chunk: int
    chunks: int
    take: Take
    cached: bool
    job: JobStats | None = None  # API backends: operations, retries, polls, timings


@dataclass(frozen=True)
class Failure:
    """A segment that could not be made: why, and the operations it used."""

    segment: str
    chunk: int | None
    kind: str  # filtered | failed | budget | error
    message: str


@dataclass(frozen=True)
class Fallback:
    """A chunk the service refused permanently with the planned model, made with the fallback one."""

    segment: str
    chunk: int
    model: str
    fallback_model: str
    reason: str


@dataclass(frozen=True)
class SegmentHistory:
    """Every attempt at a segment and the decision taken after each."""

    attempts: list[Attempt]
    decisions: list[Decision]

    @property
    def final(self) -> Decision:
        return self.decisions[-1]


@dataclass
class RunResult:
    """The accepted take of every segment, and every take used on the way."""

    segment_takes: dict[str, Take] = field(default_factory=dict)
    chain_takes: dict[str, list[Take]] = field(default_factory=dict)
    histories: dict[str, SegmentHistory] = field(default_factory=dict)
    cache_hits: int = 0
    generated: int = 0
    failures: list[Failure] = field(default_factory=list)
    #: Operations that ended without a take (filtered, failed, expired), for the manifest.
    abandoned: list[dict[str, str]] = field(default_factory=list)
    fallbacks: list[Fallback] = field(default_factory=list)
    #: Takes whose creates may have been charged twice (RemoteJobs.duplicates), for the manifest.
    possible_duplicates: list[dict[str, Any]] = field(default_factory=list)
    #: Journal entries left by earlier runs that no live process holds (paid work nobody finished).
    leftovers: list[dict[str, Any]] = field(default_factory=list)
    #: Per accepted segment: take_key, attempts, judge_s, started_s, accepted_s (seconds since the run began).
    timings: dict[str, dict[str, Any]] = field(default_factory=dict)


def request_for(
    plan: Plan,
    segment: Segment,
    chunk_index: int,
    parent: Take | None,
    first: ImageRef | None,
    seed: int | None = None,
    endpoint: str | None = None,
    model: str | None = None,
) -> GenerationRequest:
    """The canonical request of one chunk (its hash is the take's key).

    ``endpoint`` is the base URL of an API backend that is not the official service (a
    simulator, a relay), so takes from there never stand in for the real service's.
    """
    chunk = segment.chunks[chunk_index]
    caps = plan.capabilities
    return GenerationRequest(
        backend=plan.generation.backend,
        model=model or plan.generation.model_id,
        kind=chunk.kind,
        prompt=segment.prompt,
        negative_prompt=segment.negative_prompt,
        camera=segment.camera,
        duration_s=chunk.duration_s,
        width=segment.generate_size[0],
        height=segment.generate_size[1],
        fps=caps.native_fps or plan.output.fps,
        seed=segment.seed if seed is None else seed,
        audio=plan.output.audio and caps.audio,
        first_frame=first if chunk.kind == "generate" else None,
        parent=parent.key if parent is not None and chunk.kind == "extend" else None,
        options=(
            # A backend that encodes straight into the output encoding (the local generator)
            # gets IDR frames where its output's crossfades fall: its takes are assembled
            # without a re-encode.
            {"drift": plan.generation.drift, "keyframes": list(plan.take_keyframes(segment))}
            if encodes_output(plan.generation.backend)
            else ({"endpoint": endpoint} if endpoint else {})
        ),
        # Only the knobs the backend takes: one it cannot take is not sent, and so is no part
        # of the key (the manifest lists it under knobs_not_sent).
        **plan.knobs_sent(segment),
    )


#: Scores one attempt at a segment: (segment, its chain of takes, the take it continues from).
Judge = Callable[[Segment, list[Take], Take | None], list[Check]]


class Runner:
    """Make every segment's take for ``plan`` with ``backend``, through ``cache``.

    ``on_candidate`` hears of every finished chain's last take before it is judged (a caller
    may start work it will need if the take is kept); ``on_accept``, of the take kept.
    ``limits`` (operations in flight, creates per minute, the budget) may be shared with
    other renders; by default they are this run's, from ``jobs``.
    """

    def __init__(
        self,
        plan: Plan,
        backend: Backend | RemoteBackend,
        cache: TakeCache,
        *,
        workers: int = 2,
        force: bool = False,
        on_event: Callable[[TakeEvent], None] | None = None,
        judge: Judge | None = None,
        max_attempts: int = 3,
        regenerate: bool = True,
        on_accept: Callable[[Segment, Take], None] | None = None,
        on_candidate: Callable[[Segment, Take], None] | None = None,
        jobs: JobSettings | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.plan, self.backend, self.cache = plan, backend, cache
        self.workers, self.force = max(1, workers), force
        self.on_event = on_event or (lambda _e: None)
        self.judge, self.max_attempts, self.regenerate = judge, max(1, max_attempts), regenerate
        self.on_accept, self.on_candidate = on_accept, on_candidate
        self.settings = jobs or JobSettings()
        # The limits on paid work: this run's own (from ``jobs``), or shared with other renders
        # (a batch on this machine, or a cluster's actor: jobs/limits.py).
        self.limits: Limits | Ledger = limits if limits is not None else Ledger(self.settings.budget_usd)
        self.result = RunResult()
        self._forced: set[str] = set()
        self._remote: RemoteJobs | None = None
        self.leases = Leases(cache.root / "leases")
        # A shared store at a URL (COMPOSER_STORE): takes are pulled from it and pushed to it.
        url = store_url()
        self.shared = SharedStore(url) if url else None
        self._stopping = False
        self._judged: dict[str, float] = {}
        self._t0 = time.perf_counter()
        self._endpoint: str | None = None
        if isinstance(backend, RemoteBackend) and not backend.default_endpoint():
            self._endpoint = backend.base_url or "custom"

    def run(self) -> RunResult:
        """Make every segment (blocking); raises the first failure after in-flight work is saved."""
        self._t0 = time.perf_counter()
        return asyncio.run(self._run())

    async def _run(self) -> RunResult:
        self._cpu = asyncio.Semaphore(self.workers)
        # Leftovers of killed runs: downloads cut short, unchecked clips, dead holders' leases.
        self.cache.sweep()
        self.leases.sweep()
        if isinstance(self.backend, RemoteBackend):
            self._remote = RemoteJobs(self.backend, self._journal(), self.settings, self.limits)
        accepted = {s.id: asyncio.Event() for s in self.plan.segments}
        missing = sorted(
            s.id for s in self.plan.segments if s.continues and s.continues.segment not in accepted
        )
        if missing:
            raise RuntimeError(f"segments continue segments that do not exist: {', '.join(missing)}")
        # A final render of some segments makes only those (plan.keep; modes.final_plan checked
        # that none of them continues one left out).
        wanted = [s for s in self.plan.segments if not self.plan.keep or s.id in self.plan.keep]
        for s in self.plan.segments:
            if s not in wanted:
                accepted[s.id].set()  # never wait for a segment not made here (a hand-edited plan.json)
        tasks = [asyncio.create_task(self._segment_task(s, accepted), name=s.id) for s in wanted]
        errors: list[BaseException] = []
        try:
            for future in asyncio.as_completed(tasks):
                try:
                    await future
                except (Stopping, _Skipped):
                    pass
                except Exception as exc:
                    if not errors:
                        self._stop()
                    errors.append(exc)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._remote is not None:
                self.result.abandoned = list(self._remote.abandoned)
                self.result.possible_duplicates = list(self._remote.duplicates)
                self.result.leftovers = self._remote.leftovers(self._held)
            if isinstance(self.backend, RemoteBackend):
                await self.backend.aclose()
        if errors:
            raise errors[0]
        return self.result

    def _stop(self) -> None:
        # Nothing new is submitted; operations in flight finish, so what was paid for is kept.
        if self._remote is not None:
            self._remote.stopping = True
        self._stopping = True

    async def _segment_task(self, segment: Segment, accepted: dict[str, asyncio.Event]) -> None:
        if segment.continues is not None:
            await accepted[segment.continues.segment].wait()
            if segment.continues.segment not in self.result.segment_takes:
                raise _Skipped(segment.id)
        if self._stopping:
            raise _Skipped(segment.id)
        started = time.perf_counter() - self._t0
        try:
            takes, history = await self._make_segment(segment)
        except Exception as exc:
            if not isinstance(exc, (Stopping, _Skipped)):
                self.result.failures.append(_failure(segment, exc))
            raise
        finally:
            # Wake the segments waiting on this one even when it failed (they are skipped).
            accepted[segment.id].set()
        self.result.chain_takes[segment.id] = takes
        self.result.segment_takes[segment.id] = takes[-1]
        self.result.histories[segment.id] = history
        self.result.timings[segment.id] = {
            "take_key": takes[-1].key,
            "attempts": len(history.attempts),
            "judge_s": round(self._judged.pop(segment.id, 0.0), 3),
            "started_s": round(started, 3),
            "accepted_s": round(time.perf_counter() - self._t0, 3),
        }

    async def _first_frame(self, segment: Segment) -> tuple[ImageRef | None, TakeInput]:
        if segment.continues is not None:
            parent = self.result.segment_takes[segment.continues.segment]
            frame = segment.continues.frame
            png = self.cache.frame_path(parent.key, frame)
            if not png.is_file():
                at = Fraction(frame) / parse_fps(self.plan.output.fps)
                await asyncio.to_thread(ffmpeg.extract_frame, parent.path, at, png)
            return ImageRef(take=parent.key, frame=frame), TakeInput(
                first_frame_path=png, first_frame_state=parent.clip.state or None
            )
        if segment.image is not None:
            return ImageRef(sha256=segment.image.sha256), TakeInput(first_frame_path=Path(segment.image.path))
        return None, TakeInput()

    async def _make_segment(self, segment: Segment) -> tuple[list[Take], SegmentHistory]:
        """Generate a segment's chain, judge it, and regenerate what fails, up to the limit."""
        first, first_inputs = await self._first_frame(segment)
        previous = self.result.segment_takes.get(segment.continues.segment) if segment.continues else None
        seeds = list(segment.chunk_seeds) or [segment.seed] * len(segment.chunks)
        attempts: list[Attempt] = []
        decisions: list[Decision] = []
        chains: dict[int, list[Take]] = {}
        from_chunk = 0
        while True:
            number = len(attempts) + 1
            takes = await self._make_chain(segment, seeds, first, first_inputs)
            chains[number] = takes
            if self.on_candidate is not None:
                self.on_candidate(segment, takes[-1])
            checks: list[Check] = []
            if self.judge is not None:
                async with self._cpu:
                    judging = time.perf_counter()
                    checks = await asyncio.to_thread(self.judge, segment, takes, previous)
                    self._judged[segment.id] = (
                        self._judged.get(segment.id, 0.0) + time.perf_counter() - judging
                    )
            attempts.append(
                Attempt(
                    number=number,
                    seed=seeds[-1],
                    from_chunk=from_chunk,
                    take_keys=tuple(t.key for t in takes),
                    checks=tuple(checks),
                )
            )
            decision = decide(attempts, max_attempts=self.max_attempts, regenerate=self.regenerate)
            decisions.append(decision)
            if decision.action != "regenerate":
                break
            from_chunk = decision.from_chunk
            assert decision.seed is not None
            seeds[from_chunk:] = [decision.seed] * (len(seeds) - from_chunk)
        kept = chains[decision.attempt]
        if self.on_accept is not None:
            self.on_accept(segment, kept[-1])
        return kept, SegmentHistory(attempts, decisions)

    async def _make_chain(
        self, segment: Segment, seeds: list[int], first: ImageRef | None, first_inputs: TakeInput
    ) -> list[Take]:
        takes: list[Take] = []
        model: str | None = None  # the fallback model, once a chunk of this chain needed it
        for index in range(len(segment.chunks)):
            parent = takes[-1] if takes else None
            request = request_for(
                self.plan, segment, index, parent, first, seeds[index], self._endpoint, model
            )
            try:
                take, cached, job = await self._take(segment, index, request, parent, first_inputs)
            except ModelRefused as exc:
                fallback = self.plan.generation.fallback_model_id
                if not fallback or request.model == fallback:
                    raise
                # The service refused this model for good and the storyboard allows another one;
                # the rest of the chain keeps to it (an extension continues its parent's model).
                self.result.fallbacks.append(Fallback(segment.id, index, request.model, fallback, str(exc)))
                model = fallback
                request = request.model_copy(update={"model": fallback})
                take, cached, job = await self._take(segment, index, request, parent, first_inputs)
            takes.append(take)
            self.on_event(TakeEvent(segment.id, index, len(segment.chunks), take, cached, job))
        return takes

    async def _take(
        self,
        segment: Segment,
        index: int,
        request: GenerationRequest,
        parent: Take | None,
        first_inputs: TakeInput,
    ) -> tuple[Take, bool, JobStats | None]:
        """One chunk's take: from the cache, or made now and committed to it."""
        key = request.key()
        forced = self.force and key not in self._forced
        take = None if forced else self.cache.get(key, fix=False)
        job: JobStats | None = None
        while take is None:
            # One maker per take: another process (or segment) making the same take holds its
            # lease; wait for it and reuse what it made.
            try:
                async with self.leases.hold(key), self._shared_lease(key):
                    take = None if forced else self.cache.get(key)
                    if take is None and self.shared is not None and not forced:
                        take = await asyncio.to_thread(self.shared.pull, key, self.cache)
                    if take is None:
                        take, job = await self._make(segment, index, request, parent, first_inputs)
                        if self.shared is not None:
                            await asyncio.to_thread(self.shared.push, take, self.cache)
                        self._forced.add(key)
                        self.result.generated += 1
                        return take, False, job
            except LeaseLost:
                # Paused past the lease's ttl before a create: the process that took over makes
                # the take; wait for its lease like any other waiter and reuse what it made.
                forced = False
        self.result.cache_hits += 1
        return take, True, job

    def _held(self, key: str) -> bool:
        """Whether a live process (here, or anywhere sharing the store) holds ``key``'s lease."""
        return self.leases.held(key) or (self.shared is not None and self.shared.held(key))

    def _journal(self) -> Journal:
        """The operation journal: in the shared store when there is one, so any machine resumes it."""
        shared = self.shared.folder("journal") if self.shared is not None else None
        return Journal(self.cache.root / "journal", shared)

    def _shared_lease(self, key: str) -> contextlib.AbstractAsyncContextManager[object]:
        return self.shared.hold(key) if self.shared is not None else contextlib.nullcontext()

    async def _make(
        self,
        segment: Segment,
        index: int,
        request: GenerationRequest,
        parent: Take | None,
        first_inputs: TakeInput,
    ) -> tuple[Take, JobStats | None]:
        """Make one chunk's take now and commit it to the cache (the caller holds its lease)."""
        chunk = segment.chunks[index]
        key = request.key()
        job: JobStats | None = None
        if chunk.kind == "extend":
            assert parent is not None
            inputs = TakeInput(parent_path=parent.path, parent_state=parent.clip.state or None)
        else:
            inputs = first_inputs
        dest = self.cache.clip_path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        label = f"{segment.id} chunk {index + 1}/{len(segment.chunks)}"
        if self._remote is not None:
            # Downloaded and checked under another name: a kill between the two never leaves an
            # unchecked file under the name later runs trust.
            staged = self.cache.unchecked_path(key)
            clip, job = await self._remote.make(
                request, inputs, staged, expected_s=chunk.total_s, label=label, segment=segment.id
            )
            os.replace(staged, dest)
        else:
            clip = await self._make_local(chunk.kind, request, inputs, dest)
        if not dest.is_file():
            raise MediaError(
                f"the {self.plan.generation.backend} backend reported a clip but wrote no file for {label}"
            )
        take = self.cache.commit(request, clip, time.perf_counter() - started)
        if self._remote is not None:
            self._remote.journal.remove(key)
        return take, job

    async def _make_local(
        self, kind: str, request: GenerationRequest, inputs: TakeInput, dest: Path
    ) -> ClipInfo:
        backend: Any = self.backend
        make = backend.extend if kind == "extend" else backend.generate
        async with self._cpu:
            clip: ClipInfo = await asyncio.to_thread(make, request, inputs, dest)
        return clip


class _Skipped(Exception):
    """A segment not started because the render is stopping or the segment it continues failed."""


def _failure(segment: Segment, exc: BaseException) -> Failure:
    kind = (
        "filtered"
        if isinstance(exc, ContentFiltered)
        else "budget"
        if isinstance(exc, BudgetExceeded)
        else "failed"
        if isinstance(exc, TerminalError)
        else "error"
    )
    return Failure(segment=segment.id, chunk=None, kind=kind, message=str(exc))
