"""Remote jobs: one paid generation from submit to a checked file, never paid twice.

:class:`RemoteJobs` runs a :class:`~composer.backends.remote.RemoteBackend` operation end to
end for the job runner:

1. **Budget and limits.** A global concurrency limit (operations in flight) and a sliding
   window of create requests per minute; before a create is sent, its price is reserved
   against ``--budget`` (:class:`Ledger`) and :class:`~composer.errors.BudgetExceeded` is
   raised instead of sending it when it would pass.
2. **Journal, then submit.** The journal entry is written before the create is sent and again
   with the operation's name before it is polled (``jobs/journal.py``), so a killed run
   resumes polling. A create retried after the request may have reached the server is
   counted as a possible duplicate.
3. **Poll** with a growing interval (from the backend's declared first interval up to a
   cap), honouring the service's own hint (``openai-poll-after-ms``).
4. **Download** with its own retries, never by generating again; the file is checked
   (non-empty, decodes, the expected length) before it is handed on; a corrupt or truncated
   file is downloaded again.

Every request is retried on 408 / 429 / 5xx / network errors with exponential backoff and
full jitter, honouring ``Retry-After``, ``retry-after-ms`` and ``RetryInfo.retryDelay``;
4xx answers are not retried. Safety-filtered operations raise
:class:`~composer.errors.ContentFiltered` (not charged, not retried). What does not live here:
protocols (``backends/``), the take cache (``cache.py``) or segment order (``runner.py``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

from composer import ffmpeg
from composer.backends.base import ClipInfo, GenerationRequest, TakeInput
from composer.backends.http import DownloadLimits, download_limits
from composer.backends.remote import Operation, OperationStatus, RemoteBackend
from composer.errors import (
    BudgetExceeded,
    ContentFiltered,
    GenerationError,
    MediaError,
    RetryableError,
    TerminalError,
)
from composer.jobs.journal import Journal, JournalEntry
from composer.timecode import fps_text, parse_fps

T = TypeVar("T")

#: A downloaded clip may differ from the requested length by this much (services round).
LENGTH_TOLERANCE_S = 0.5


@dataclass(frozen=True)
class JobSettings:
    """How remote operations are run; every field has a command-line option."""

    concurrency: int = 10
    requests_per_minute: int | None = None  # None: the backend's declared limit
    poll_interval_s: float | None = None  # None: the backend's declared first interval
    # Each wait is at most 10% longer than the last and at most 10 s: a finished operation is
    # noticed within ~10% of its own time, which keeps a chain of them near its critical path.
    poll_max_s: float = 10.0
    poll_backoff: float = 1.1
    max_retries: int = 8
    retry_base_s: float = 1.0
    retry_max_s: float = 60.0
    download_attempts: int = 4
    #: Each download's total deadline; None: derived from the clip asked for (DownloadLimits.for_video).
    download_deadline_s: float | None = None
    resubmits: int = 2  # a failed operation with a transient cause is submitted again this often
    operation_timeout_s: float = 1800.0
    budget_usd: float | None = None


@dataclass
class JobStats:
    """What one remote take cost in requests, for the manifest and the run metrics."""

    operations: list[str] = field(default_factory=list)
    creates_sent: int = 0
    retries: int = 0
    polls: int = 0
    download_attempts: int = 0
    possible_duplicates: int = 0
    resumed: bool = False
    submit_s: float = 0.0
    wait_s: float = 0.0
    download_s: float = 0.0


class Stopping(Exception):
    """Raised instead of submitting while the render is stopping after another segment failed."""


class Ledger:
    """Money spent and reserved in this run, against an optional budget."""

    def __init__(self, budget_usd: float | None) -> None:
        self.budget_usd = budget_usd
        self.spent_usd = 0.0
        self.reserved_usd = 0.0

    def reserve(self, cost: float, what: str) -> None:
        if self.budget_usd is None:
            self.reserved_usd += cost
            return
        committed = self.spent_usd + self.reserved_usd
        if committed + cost > self.budget_usd + 1e-9:
            raise BudgetExceeded(
                f"stopped before submitting {what} (${cost:.2f}): it would pass the budget of "
                f"${self.budget_usd:.2f} (${committed:.2f} spent or in flight). Finished takes are cached; "
                "raise --budget and run the same command again to continue"
            )
        self.reserved_usd += cost

    def settle(self, reserved: float, charged: float) -> None:
        self.reserved_usd -= reserved
        self.spent_usd += charged


class RateLimiter:
    """At most ``per_minute`` acquisitions in any 60-second window (None: unlimited)."""

    def __init__(self, per_minute: int | None, window_s: float = 60.0) -> None:
        self.per_minute, self.window_s = per_minute, window_s
        self._times: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self.per_minute:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._times and now - self._times[0] >= self.window_s:
                    self._times.popleft()
                if len(self._times) < self.per_minute:
                    self._times.append(now)
                    return
                await asyncio.sleep(self.window_s - (now - self._times[0]))


def backoff_s(attempt: int, error: RetryableError, settings: JobSettings, rng: random.Random) -> float:
    """Wait before retry ``attempt`` (1-based): the service's hint, else full jitter."""
    if error.retry_after_s is not None:
        return min(error.retry_after_s, 300.0)
    return rng.uniform(0, min(settings.retry_max_s, settings.retry_base_s * 2 ** (attempt - 1)))


class RemoteJobs:
    """Runs operations of one backend; one instance per render, used on one event loop."""

    def __init__(
        self,
        backend: RemoteBackend,
        journal: Journal,
        settings: JobSettings,
        ledger: Ledger,
        *,
        seed: int | None = None,
    ) -> None:
        self.backend, self.journal, self.settings, self.ledger = backend, journal, settings, ledger
        caps = backend.capabilities
        # A declared limit is the official service's quota; a relay or simulator has its own,
        # so only --rpm limits those.
        declared = caps.requests_per_minute if backend.default_endpoint() else None
        self.limiter = RateLimiter(settings.requests_per_minute or declared)
        self.slots = asyncio.Semaphore(max(1, settings.concurrency))
        self.poll_first_s = (
            settings.poll_interval_s if settings.poll_interval_s is not None else caps.poll_interval_s
        )
        self._rng = random.Random(seed)
        #: Set by the runner when the render is stopping: nothing new is submitted.
        self.stopping = False
        #: Operations that ended without a take (filtered, failed, lost), for the manifest.
        self.abandoned: list[dict[str, str]] = []

    def price(self, request: GenerationRequest) -> float:
        per_s = self.backend.capabilities.price_per_s.get(request.model, 0.0)
        return round(per_s * request.duration_s, 4)

    async def _retry(self, what: str, call: Callable[[], Awaitable[T]], stats: JobStats) -> T:
        attempt = 0
        while True:
            try:
                return await call()
            except RetryableError as exc:
                attempt += 1
                if attempt > self.settings.max_retries:
                    raise RetryableError(
                        f"{exc} (gave up after {attempt} tries of the {what})", exc.retry_after_s
                    ) from None
                stats.retries += 1
                if what == "create" and exc.reached_server:
                    # The create may have started an operation we will never hear of.
                    stats.possible_duplicates += 1
                await asyncio.sleep(backoff_s(attempt, exc, self.settings, self._rng))

    async def make(
        self,
        request: GenerationRequest,
        inputs: TakeInput,
        dest: Path,
        *,
        expected_s: float,
        label: str,
        segment: str,
    ) -> tuple[ClipInfo, JobStats]:
        """Generate ``request`` into ``dest`` (checked); the caller commits it to the cache.

        ``label`` names the take in messages; ``segment`` is recorded with any operation that
        ends without a take.
        """
        stats = JobStats()
        key = request.key()
        async with self.slots:
            entry = self.journal.get(key)
            operation = entry.operation if entry is not None and entry.state == "submitted" else None
            if entry is not None:
                stats.operations = list(entry.operations)
                stats.creates_sent = entry.creates_sent
                stats.possible_duplicates = entry.possible_duplicates
            resubmits = 0
            while True:
                cost = 0.0
                if operation is None:
                    operation, cost = await self._submit(request, inputs, key, entry, stats, label)
                else:
                    stats.resumed = True
                try:
                    status = await self._wait(operation, stats, label)
                except TerminalError as exc:
                    if cost or not stats.resumed:
                        raise
                    # A journaled operation the service no longer knows (expired, another
                    # service): it will never deliver, so it is submitted anew.
                    self._abandon(segment, label, operation, "lost", str(exc))
                    operation, entry = None, None
                    self.journal.remove(key)
                    continue
                if status.state == "succeeded":
                    break
                self.ledger.settle(cost, 0.0)
                self._abandon(segment, label, operation, status.state, status.message)
                if status.state == "filtered":
                    self.journal.remove(key)
                    reason = status.message or "no reason given"
                    raise ContentFiltered(
                        f"{label}: the {self.backend.capabilities.name} safety filter blocked the result "
                        f"({reason}); nothing was charged. Rephrase the scene's prompt and run again",
                        reason,
                    )
                if status.retryable and resubmits < self.settings.resubmits:
                    resubmits += 1
                    operation, entry = None, self.journal.get(key)
                    continue
                self.journal.remove(key)
                raise TerminalError(
                    f"{label}: the {self.backend.capabilities.name} operation {operation.id} failed "
                    f"({status.code + ': ' if status.code else ''}{status.message or 'no message'})"
                )
            clip = await self._download(operation, status, dest, request, expected_s, stats, label)
            self.ledger.settle(cost, clip.cost_usd)
            return clip, stats

    def _abandon(self, segment: str, label: str, operation: Operation, outcome: str, message: str) -> None:
        self.abandoned.append(
            {
                "segment": segment,
                "take": label,
                "operation": operation.id,
                "outcome": outcome,
                "message": message,
            }
        )

    async def _submit(
        self,
        request: GenerationRequest,
        inputs: TakeInput,
        key: str,
        entry: JournalEntry | None,
        stats: JobStats,
        label: str,
    ) -> tuple[Operation, float]:
        if self.stopping:
            raise Stopping(label)
        cost = self.price(request)
        self.ledger.reserve(cost, label)
        try:
            await self.limiter.acquire()
            if entry is not None and entry.state == "submitting":
                # An earlier run wrote down that it was sending this create and never heard back.
                stats.possible_duplicates += 1
            entry = self.journal.write(
                JournalEntry(
                    key=key,
                    state="submitting",
                    request=request,
                    creates_sent=stats.creates_sent + 1,
                    possible_duplicates=stats.possible_duplicates,
                    operations=tuple(stats.operations),
                )
            )
            started = time.perf_counter()

            async def create() -> Operation:
                stats.creates_sent += 1
                return await self.backend.submit(request, inputs)

            operation = await self._retry("create", create, stats)
            stats.submit_s += time.perf_counter() - started
        except BaseException:
            self.ledger.settle(cost, 0.0)
            raise
        stats.operations.append(operation.id)
        self.journal.write(
            entry.model_copy(
                update={
                    "state": "submitted",
                    "operation": operation,
                    "creates_sent": stats.creates_sent,
                    "possible_duplicates": stats.possible_duplicates,
                    "operations": tuple(stats.operations),
                }
            )
        )
        return operation, cost

    async def _wait(self, operation: Operation, stats: JobStats, label: str) -> OperationStatus:
        started = time.perf_counter()
        interval = self.poll_first_s
        wait = interval
        while True:
            await asyncio.sleep(wait)
            stats.polls += 1
            status = await self._retry("poll", lambda: self.backend.poll(operation), stats)
            if status.state != "running":
                stats.wait_s += time.perf_counter() - started
                return status
            if time.perf_counter() - started > self.settings.operation_timeout_s:
                raise RetryableError(
                    f"{label}: operation {operation.id} is still running after "
                    f"{self.settings.operation_timeout_s:g} s; run the same command again later to resume it"
                )
            interval = min(self.settings.poll_max_s, interval * self.settings.poll_backoff)
            wait = status.poll_after_s if status.poll_after_s is not None else interval

    async def _download(
        self,
        operation: Operation,
        status: OperationStatus,
        dest: Path,
        request: GenerationRequest,
        expected_s: float,
        stats: JobStats,
        label: str,
    ) -> ClipInfo:
        started = time.perf_counter()
        problem = ""
        limits = DownloadLimits.for_video(
            expected_s,
            request.width,
            request.height,
            float(parse_fps(request.fps)),
            deadline_s=self.settings.download_deadline_s,
        )
        for _ in range(self.settings.download_attempts):
            stats.download_attempts += 1
            try:
                with download_limits(limits):
                    await self._retry(
                        "download", lambda: self.backend.download(operation, status, dest), stats
                    )
                clip = await asyncio.to_thread(check_clip, dest, expected_s, (request.width, request.height))
            except WrongSize as exc:
                dest.unlink(missing_ok=True)
                raise TerminalError(f"{label}: {exc}") from None
            except TerminalError as exc:
                # Refused by the download's limits: the operation stays in the journal.
                dest.unlink(missing_ok=True)
                raise TerminalError(
                    f"{label}: {exc} (operation {operation.id} is kept: the same command retries the "
                    "download without paying again)"
                ) from None
            except MediaError as exc:
                problem = str(exc)
                dest.unlink(missing_ok=True)
                continue
            stats.download_s += time.perf_counter() - started
            state = {**self.backend.clip_state(operation, status)}
            return clip.model_copy(update={"cost_usd": self.price(request), "state": state})
        # The operation stays in the journal: a later run downloads it again without paying.
        raise GenerationError(
            f"{label}: the video of operation {operation.id} could not be downloaded intact after "
            f"{self.settings.download_attempts} tries ({problem}); run the same command again to retry "
            "the download (nothing will be generated or paid again)"
        )


class WrongSize(MediaError):
    """The service delivered a video of another size than the one asked for."""


def check_clip(path: Path, expected_s: float, size: tuple[int, int] | None = None) -> ClipInfo:
    """A downloaded file's facts, or MediaError if it is empty, does not decode or has the wrong length.

    With ``size`` (the width and height asked for), a video of any other size is
    :class:`WrongSize`: a 160x90 clip delivered for 1280x720 is refused, never upscaled in silence.
    """
    if not path.is_file() or path.stat().st_size == 0:
        raise MediaError(f"the downloaded file {path.name} is empty")
    info = ffmpeg.probe(path)
    if size is not None and (info.width, info.height) != size:
        raise WrongSize(
            f"the service delivered a {info.width}x{info.height} video for a {size[0]}x{size[1]} request; "
            "composer does not rescale a smaller or different take in silence: check the model and "
            "size the backend was asked for, or choose a resolution the service really delivers"
        )
    report = ffmpeg.decode(path)
    if report.errors or report.frames == 0:
        raise MediaError(f"the downloaded file does not decode ({(report.errors or 'no frames')[:200]})")
    fps = info.fps or Fraction(24)
    duration = float(Fraction(report.frames) / fps)
    if abs(duration - expected_s) > max(LENGTH_TOLERANCE_S, 0.03 * expected_s):
        raise MediaError(f"the downloaded clip lasts {duration:.2f} s, not the {expected_s:g} s asked for")
    return ClipInfo(
        frames=report.frames,
        fps=fps_text(fps),
        width=info.width,
        height=info.height,
        has_audio=info.has_audio,
        duration_s=duration,
    )
