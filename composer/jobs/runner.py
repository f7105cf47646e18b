"""The job runner: turns a plan's segments into takes, reusing the cache.

Each segment is a chain of chunks (a generation, then extensions of it); a segment that
continues another waits for that one's take. Independent chains run side by side on a
small thread pool. What lives here: ordering, the cache look-up, building requests,
timing, events. What does not: any backend protocol (``backends/``), or composing the
takes into outputs (``compose/``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from composer import ffmpeg
from composer.backends.base import Backend, GenerationRequest, ImageRef, TakeInput
from composer.decide import Attempt, Check, Decision, decide
from composer.errors import MediaError
from composer.jobs.cache import Take, TakeCache
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


def request_for(
    plan: Plan,
    segment: Segment,
    chunk_index: int,
    parent: Take | None,
    first: ImageRef | None,
    seed: int | None = None,
) -> GenerationRequest:
    """The canonical request of one chunk (its hash is the take's key)."""
    chunk = segment.chunks[chunk_index]
    caps = plan.capabilities
    return GenerationRequest(
        backend=plan.generation.backend,
        model=plan.generation.model_id,
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
        options={"drift": plan.generation.drift} if plan.generation.backend == "local" else {},
    )


#: Scores one attempt at a segment: (segment, its chain of takes, the take it continues from).
Judge = Callable[[Segment, list[Take], Take | None], list[Check]]


class Runner:
    """Make every segment's take for ``plan`` with ``backend``, through ``cache``."""

    def __init__(
        self,
        plan: Plan,
        backend: Backend,
        cache: TakeCache,
        *,
        workers: int = 2,
        force: bool = False,
        on_event: Callable[[TakeEvent], None] | None = None,
        judge: Judge | None = None,
        max_attempts: int = 3,
        regenerate: bool = True,
        on_accept: Callable[[Segment, Take], None] | None = None,
    ) -> None:
        self.plan, self.backend, self.cache = plan, backend, cache
        self.workers, self.force = max(1, workers), force
        self.on_event = on_event or (lambda _e: None)
        self.judge, self.max_attempts, self.regenerate = judge, max(1, max_attempts), regenerate
        self.on_accept = on_accept
        self.result = RunResult()
        self._forced: set[str] = set()
        self._lock = threading.Lock()

    def run(self) -> RunResult:
        segments = {s.id: s for s in self.plan.segments}
        pending = dict(segments)
        running: dict[Future[tuple[list[Take], SegmentHistory]], str] = {}
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="composer-take")
        try:
            while pending or running:
                for seg_id, segment in list(pending.items()):
                    parent = segment.continues.segment if segment.continues else None
                    if parent is None or parent in self.result.segment_takes:
                        del pending[seg_id]
                        running[pool.submit(self._make_segment, segment)] = seg_id
                if not running:
                    missing = ", ".join(sorted(pending))
                    raise RuntimeError(f"segments wait on segments that do not exist: {missing}")
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    seg_id = running.pop(future)
                    takes, history = future.result()
                    self.result.chain_takes[seg_id] = takes
                    self.result.segment_takes[seg_id] = takes[-1]
                    self.result.histories[seg_id] = history
        except BaseException:
            for future in running:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return self.result

    def _first_frame(self, segment: Segment) -> tuple[ImageRef | None, TakeInput]:
        if segment.continues is not None:
            parent = self.result.segment_takes[segment.continues.segment]
            frame = segment.continues.frame
            png = self.cache.frame_path(parent.key, frame)
            if not png.is_file():
                ffmpeg.extract_frame(parent.path, Fraction(frame) / parse_fps(self.plan.output.fps), png)
            return ImageRef(take=parent.key, frame=frame), TakeInput(
                first_frame_path=png, first_frame_state=parent.clip.state or None
            )
        if segment.image is not None:
            return ImageRef(sha256=segment.image.sha256), TakeInput(first_frame_path=Path(segment.image.path))
        return None, TakeInput()

    def _make_segment(self, segment: Segment) -> tuple[list[Take], SegmentHistory]:
        """Generate a segment's chain, judge it, and regenerate what fails, up to the limit."""
        first, first_inputs = self._first_frame(segment)
        previous = self.result.segment_takes.get(segment.continues.segment) if segment.continues else None
        seeds = [segment.seed] * len(segment.chunks)
        attempts: list[Attempt] = []
        decisions: list[Decision] = []
        chains: dict[int, list[Take]] = {}
        from_chunk = 0
        while True:
            number = len(attempts) + 1
            takes = self._make_chain(segment, seeds, first, first_inputs)
            chains[number] = takes
            checks = self.judge(segment, takes, previous) if self.judge else []
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

    def _make_chain(
        self, segment: Segment, seeds: list[int], first: ImageRef | None, first_inputs: TakeInput
    ) -> list[Take]:
        takes: list[Take] = []
        for index, chunk in enumerate(segment.chunks):
            parent = takes[-1] if takes else None
            request = request_for(self.plan, segment, index, parent, first, seeds[index])
            key = request.key()
            take = None if (self.force and key not in self._forced) else self.cache.get(key)
            cached = take is not None
            if take is None:
                if chunk.kind == "extend":
                    assert parent is not None
                    inputs = TakeInput(parent_path=parent.path, parent_state=parent.clip.state or None)
                else:
                    inputs = first_inputs
                dest = self.cache.clip_path(key)
                dest.parent.mkdir(parents=True, exist_ok=True)
                started = time.perf_counter()
                make = self.backend.extend if chunk.kind == "extend" else self.backend.generate
                clip = make(request, inputs, dest)
                if not dest.is_file():
                    raise MediaError(
                        f"the {self.plan.generation.backend} backend reported a clip but wrote no file for {segment.id}"
                    )
                take = self.cache.commit(request, clip, time.perf_counter() - started)
            with self._lock:
                if cached:
                    self.result.cache_hits += 1
                else:
                    self._forced.add(key)
                    self.result.generated += 1
            takes.append(take)
            self.on_event(TakeEvent(segment.id, index, len(segment.chunks), take, cached))
        return takes
