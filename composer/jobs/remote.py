"""Remote jobs: one paid generation from submit to a checked file, never paid twice.

:class:`RemoteJobs` runs a :class:`~composer.backends.remote.RemoteBackend` operation end to
end for the job runner:

1. **Budget and limits** (``limits.py``). A global concurrency limit (operations in flight)
   and a sliding window of create requests per minute; before a create is sent, its price is
   reserved against ``--budget`` (:class:`~composer.jobs.limits.Ledger`) and
   :class:`~composer.errors.BudgetExceeded` is raised instead of sending it when it would
   pass. The limits are this process's, or one Ray actor's for a whole cluster
   (``composer/cluster.py``): the same policy either way.
2. **Journal, then submit.** Every create is written down (with its attempt number) and
   reserved against the budget before it is sent, and written down again with the
   operation's name before it is polled (``jobs/journal.py``), so a killed run resumes
   polling. A create whose answer is lost (a 5xx after the body was sent, a dropped or
   timed-out answer) counts as spent: where the protocol can list operations (OpenAI's
   ``GET /videos``) the operation is found and adopted; otherwise it is sent again at most
   ``ambiguous_retries`` times (default 1, ``$COMPOSER_AMBIGUOUS_RETRIES``) and each
   unanswered create is reported as a possible duplicate charge (:attr:`RemoteJobs.duplicates`),
   an earlier, killed run's too.
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
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

from composer import ffmpeg
from composer.backends.base import ClipInfo, GenerationRequest, TakeInput
from composer.backends.http import DownloadLimits, download_limits
from composer.backends.remote import Operation, OperationStatus, RemoteBackend
from composer.errors import (
    ContentFiltered,
    GenerationError,
    MediaError,
    RetryableError,
    TerminalError,
)
from composer.jobs.journal import CreateAttempt, Journal, JournalEntry
from composer.jobs.lease import ensure_held
from composer.jobs.limits import Ledger, Limits, LocalLimits
from composer.timecode import fps_text, parse_fps

T = TypeVar("T")

#: How many creates are sent again after one whose answer was lost (default 1).
AMBIGUOUS_RETRIES_ENV = "COMPOSER_AMBIGUOUS_RETRIES"


def _env_int(name: str, default: int) -> int:
    try:
        return max(0, int(os.environ.get(name, default)))
    except ValueError:
        return default


def _iso(epoch: float) -> str:
    if epoch <= 0:
        return "an unknown time"
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


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
    #: Creates sent again after one whose answer was lost (each a possible duplicate charge).
    ambiguous_retries: int = field(default_factory=lambda: _env_int(AMBIGUOUS_RETRIES_ENV, 1))
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
    #: Every create of the take (this run's and earlier runs'), as journaled.
    attempts: list[CreateAttempt] = field(default_factory=list)
    #: Operations a listing found beside the adopted one: duplicates with known names.
    known_duplicates: list[str] = field(default_factory=list)
    submit_s: float = 0.0
    wait_s: float = 0.0
    download_s: float = 0.0


class Stopping(Exception):
    """Raised instead of submitting while the render is stopping after another segment failed."""


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
        limits: Limits | Ledger,
        *,
        seed: int | None = None,
    ) -> None:
        self.backend, self.journal, self.settings = backend, journal, settings
        caps = backend.capabilities
        if isinstance(limits, Ledger):
            # A declared limit is the official service's quota; a relay or simulator has its own,
            # so only --rpm limits those.
            declared = caps.requests_per_minute if backend.default_endpoint() else None
            limits = LocalLimits(limits, settings.requests_per_minute or declared, settings.concurrency)
        #: Operations in flight, creates per minute and the budget (this process's, or a cluster's).
        self.limits: Limits = limits
        self.poll_first_s = (
            settings.poll_interval_s if settings.poll_interval_s is not None else caps.poll_interval_s
        )
        self._rng = random.Random(seed)
        #: Set by the runner when the render is stopping: nothing new is submitted.
        self.stopping = False
        #: Operations that ended without a take (filtered, failed, lost), for the manifest.
        self.abandoned: list[dict[str, str]] = []
        #: Takes with creates that may have been charged twice, for the manifest and the CLI.
        self.duplicates: list[dict[str, Any]] = []
        #: Take keys this run made or tried (their journal entries are this run's to report).
        self.touched: set[str] = set()
        self.run = f"{socket.gethostname()}:{os.getpid()}"
        self._charged: set[str] = set()

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

        The caller holds the take's lease, so the journal entry is this process's to read and
        write. ``label`` names the take in messages; ``segment`` is recorded with any operation
        that ends without a take and with any possible duplicate charge.
        """
        stats = JobStats()
        key = request.key()
        self.touched.add(key)
        async with self.limits.slot():
            try:
                return await self._make(request, inputs, dest, key, stats, expected_s, label, segment)
            finally:
                self._note_duplicates(key, label, segment, stats, self.price(request))

    async def _make(
        self,
        request: GenerationRequest,
        inputs: TakeInput,
        dest: Path,
        key: str,
        stats: JobStats,
        expected_s: float,
        label: str,
        segment: str,
    ) -> tuple[ClipInfo, JobStats]:
        entry = self.journal.get(key)
        operation = entry.operation if entry is not None and entry.state == "submitted" else None
        if entry is not None:
            stats.operations = list(entry.operations)
            stats.creates_sent = entry.creates_sent
            stats.attempts = list(entry.attempts)
            stats.known_duplicates = list(entry.duplicates)
        resubmits = 0
        while True:
            cost = 0.0
            fresh = operation is None
            if fresh:
                operation, cost = await self._submit(request, inputs, key, stats, label)
            else:
                stats.resumed = True
            assert operation is not None
            try:
                status = await self._wait(operation, stats, label)
            except TerminalError as exc:
                if fresh:
                    raise
                # A journaled operation the service no longer knows (expired, another
                # service): it will never deliver, so it is submitted anew.
                self._abandon(segment, label, operation, "lost", str(exc))
                operation = None
                self.journal.remove(key)
                continue
            if status.state == "succeeded":
                break
            self.limits.settle(cost, 0.0, key)
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
                operation = None
                continue
            self.journal.remove(key)
            raise TerminalError(
                f"{label}: the {self.backend.capabilities.name} operation {operation.id} failed "
                f"({status.code + ': ' if status.code else ''}{status.message or 'no message'})"
            )
        clip = await self._download(operation, status, dest, request, expected_s, stats, label)
        self.limits.settle(cost, clip.cost_usd, key)
        return clip, stats

    def _note_duplicates(self, key: str, label: str, segment: str, stats: JobStats, price: float) -> None:
        """Count and list the take's possible duplicate charges (this run's and earlier ones').

        Each may be billed at the take's ``price`` beyond the delivered take's cost: the entry's
        ``possibly_charged_usd``, what to reconcile with the service's bill.
        """
        charged = [a for a in stats.attempts if a.possibly_charged]
        stats.possible_duplicates = len(charged) + len(stats.known_duplicates)
        if not stats.possible_duplicates:
            return
        self.duplicates.append(
            {
                "segment": segment,
                "take": label,
                "key": key,
                "operations": list(stats.operations),
                "duplicate_operations": list(stats.known_duplicates),
                "possibly_charged_usd": round(price * stats.possible_duplicates, 4),
                "unanswered_creates": [
                    {
                        "attempt": a.number,
                        "sent_at": _iso(a.sent_at),
                        "run": a.run,
                        "error": a.error,
                    }
                    for a in charged
                ],
            }
        )

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

    def _record(
        self,
        key: str,
        request: GenerationRequest,
        stats: JobStats,
        operation: Operation | None = None,
    ) -> None:
        """Write the take's journal entry as it stands (flushed to the disk before going on)."""
        charged = sum(1 for a in stats.attempts if a.possibly_charged)
        self.journal.write(
            JournalEntry(
                key=key,
                state="submitted" if operation is not None else "submitting",
                request=request,
                operation=operation,
                creates_sent=stats.creates_sent,
                possible_duplicates=charged + len(stats.known_duplicates),
                operations=tuple(stats.operations),
                attempts=tuple(stats.attempts),
                duplicates=tuple(stats.known_duplicates),
                owner=self.run,
            )
        )

    async def _submit(
        self,
        request: GenerationRequest,
        inputs: TakeInput,
        key: str,
        stats: JobStats,
        label: str,
    ) -> tuple[Operation, float]:
        """Send creates until one answers with an operation; (operation, the price reserved for it).

        Every create is journaled before it is sent and reserved against the budget. One whose
        answer is lost counts as spent; where the protocol can list operations it is looked
        for and adopted, else it is sent again at most ``ambiguous_retries`` times in this run,
        each one reported as a possible duplicate charge.
        """
        entry = self.journal.get(key)
        if entry is not None and entry.attempts:
            stats.attempts = list(entry.attempts)
        elif entry is not None and entry.state == "submitting":
            # A version-1 entry: a create was being sent when its run stopped.
            stats.attempts = [
                CreateAttempt(number=max(1, entry.creates_sent), sent_at=0.0, outcome="ambiguous", run="?")
            ]
        price = self.price(request)
        if key not in self._charged:
            # An earlier run's creates that never heard back may have started operations: they
            # count as spent in this run too, so the budget holds against the service's bill.
            self._charged.add(key)
            earlier = [a for a in stats.attempts if a.possibly_charged]
            stats.attempts = [
                a.model_copy(
                    update={"outcome": "ambiguous", "error": a.error or "its run stopped before the answer"}
                )
                if a.outcome == "sending"
                else a
                for a in stats.attempts
            ]
            for _ in earlier:
                self.limits.settle(0.0, price, key)
            if earlier:
                adopted = await self._adopt(request, key, stats, label)
                if adopted is not None:
                    return adopted
        unanswered = 0
        tries = 0
        while True:
            if self.stopping:
                raise Stopping(label)
            await self.limits.rate()
            # The wait above can be long, and so can a pause: the take must still be ours to make.
            await ensure_held(label)
            self.limits.reserve(price, label, key)
            attempt = CreateAttempt(number=len(stats.attempts) + 1, sent_at=time.time(), run=self.run)
            stats.attempts.append(attempt)
            try:
                self._record(key, request, stats)
            except BaseException:
                self.limits.settle(price, 0.0, key)
                raise
            stats.creates_sent += 1
            started = time.perf_counter()
            try:
                operation = await self.backend.submit(request, inputs)
            except RetryableError as exc:
                stats.submit_s += time.perf_counter() - started
                if exc.reached_server:
                    # The operation may exist: spent until a listing proves otherwise.
                    self.limits.settle(price, price, key)
                    outcome = "ambiguous"
                    unanswered += 1
                else:
                    self.limits.settle(price, 0.0, key)
                    outcome = "not_sent"
                stats.attempts[-1] = attempt.model_copy(update={"outcome": outcome, "error": str(exc)[:300]})
                self._record(key, request, stats)
                if exc.reached_server:
                    adopted = await self._adopt(request, key, stats, label)
                    if adopted is not None:
                        return adopted
                    if unanswered > self.settings.ambiguous_retries:
                        raise GenerationError(self._unanswered_message(label, stats)) from None
                tries += 1
                if tries > self.settings.max_retries:
                    raise RetryableError(
                        f"{exc} (gave up after {tries} tries of the create)", exc.retry_after_s
                    ) from None
                stats.retries += 1
                await asyncio.sleep(backoff_s(tries, exc, self.settings, self._rng))
                continue
            except Exception as exc:
                # An answer that started nothing (a 4xx), or a failure before sending.
                self.limits.settle(price, 0.0, key)
                stats.attempts[-1] = attempt.model_copy(
                    update={"outcome": "refused", "error": str(exc)[:300]}
                )
                self._record(key, request, stats)
                raise
            except BaseException:
                # Cancelled mid-send: it may have arrived. The journal still says "sending",
                # which the next run reads as a create without an answer.
                self.limits.settle(price, price, key)
                raise
            stats.submit_s += time.perf_counter() - started
            stats.attempts[-1] = attempt.model_copy(update={"outcome": "created", "operation": operation.id})
            stats.operations.append(operation.id)
            self._record(key, request, stats, operation)
            return operation, price

    async def _adopt(
        self, request: GenerationRequest, key: str, stats: JobStats, label: str
    ) -> tuple[Operation, float] | None:
        """The operation an unanswered create started, found in the service's list, or None.

        Every unanswered create of the take is settled by the listing: the oldest match is
        adopted (polled like any other), further matches are duplicates with known names,
        and no match at all proves nothing was started (the money is given back to the budget).
        """
        charged = [a for a in stats.attempts if a.possibly_charged]
        if not charged:
            return None
        times = [a.sent_at for a in charged if a.sent_at > 0]
        since = min(times) if times else time.time() - self.settings.operation_timeout_s
        claimed = frozenset(op for e in self.journal.pending() for op in e.operations) | frozenset(
            stats.operations
        )
        try:
            found = await self._retry(
                "list", lambda: self.backend.find_created(request, since, claimed), JobStats()
            )
        except GenerationError:
            return None  # the listing failed: the creates stay possible duplicates
        if found is None:
            return None
        price = self.price(request)
        self.limits.refund(price * len(charged))
        found = sorted(found, key=lambda op: op.id)
        adopted = found[0] if found else None
        first = charged[0]
        stats.attempts = [
            a.model_copy(
                update={
                    "outcome": "adopted" if adopted is not None and a is first else "nothing",
                    "operation": adopted.id if adopted is not None and a is first else None,
                }
            )
            if a.possibly_charged
            else a
            for a in stats.attempts
        ]
        if adopted is None:
            self._record(key, request, stats)
            return None
        duplicates = [op.id for op in found[1:]]
        stats.known_duplicates.extend(duplicates)
        self.limits.settle(0.0, price * len(duplicates), key)
        self.limits.hold(price, key)
        stats.operations.append(adopted.id)
        self._record(key, request, stats, adopted)
        return adopted, price

    def _unanswered_message(self, label: str, stats: JobStats) -> str:
        charged = [a for a in stats.attempts if a.possibly_charged]
        when = ", ".join(_iso(a.sent_at) for a in charged)
        return (
            f"{label}: {len(charged)} create request(s) to {self.backend.capabilities.name} got no usable "
            f"answer and may each have started a paid operation (sent at {when}); composer sends at most "
            f"{self.settings.ambiguous_retries} more after an unanswered create "
            f"(--ambiguous-retries, ambiguous_retries in the config file, ${AMBIGUOUS_RETRIES_ENV}). Check the service's console or bill for operations created then; "
            "run the same command again to try again (the journal remembers these creates)"
        )

    def leftovers(self, held: Callable[[str], bool]) -> list[dict[str, Any]]:
        """Journal entries this run did not touch and no live process holds: paid work left by earlier runs."""
        found: list[dict[str, Any]] = []
        for entry in self.journal.pending():
            if entry.key in self.touched or held(entry.key):
                continue
            found.append(
                {
                    "key": entry.key,
                    "state": entry.state,
                    "operation": entry.operation.id if entry.operation is not None else None,
                    "operations": list(entry.operations),
                    "unanswered_creates": sum(1 for a in entry.attempts if a.possibly_charged)
                    or (1 if entry.state == "submitting" and not entry.attempts else 0),
                    "prompt": entry.request.prompt[:80],
                    "updated_at": entry.updated_at,
                    "owner": entry.owner,
                }
            )
        return found

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
