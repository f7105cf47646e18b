"""The limits on paid work: operations in flight, creates per minute, and the budget.

:class:`RemoteJobs <composer.jobs.remote.RemoteJobs>` asks a :class:`Limits` before every
create: a slot (``--concurrency`` operations in flight), a place in the sliding minute
(``--rpm``), and a reservation of the create's price against ``--budget`` (:class:`Ledger`).
The policy lives here once: :class:`Ledger` (money) and :class:`RateWindow` (the minute) are
plain objects with no idea of where they run.

- :class:`LocalLimits` holds them in this process (one render, or several run one after
  another on this machine sharing one budget).
- ``composer.cluster`` holds the same two objects inside one Ray actor and reaches them
  through a :class:`Limits` of its own, so a batch spread over many nodes keeps one budget,
  one minute and one count of operations in flight.

Reservations are kept per take key. One take has one maker at a time (its lease), so when a
take is settled, any other reservation on the same key was left by a maker that died (a
killed node) and is dropped with it: the budget counts a dead node's operation until whoever
resumes it settles it, and never twice. What does not live here: retries, polling, the
journal (``remote.py``), or where the actor runs (``composer/cluster.py``).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator

from composer.errors import BudgetExceeded


class Ledger:
    """Money spent and reserved, against an optional budget; reservations are kept per take key."""

    def __init__(self, budget_usd: float | None) -> None:
        self.budget_usd = budget_usd
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self._held: dict[str, float] = {}

    def reserve(self, cost: float, what: str, key: str = "") -> None:
        """Reserve ``cost`` for the create of take ``key``, or raise BudgetExceeded before it is sent."""
        if self.budget_usd is not None:
            committed = self.spent_usd + self.reserved_usd
            if committed + cost > self.budget_usd + 1e-9:
                raise BudgetExceeded(
                    f"stopped before submitting {what} (${cost:.2f}): it would pass the budget of "
                    f"${self.budget_usd:.2f} (${committed:.2f} spent or in flight). Finished takes are cached; "
                    "raise --budget and run the same command again to continue"
                )
        self.hold(cost, key)

    def settle(self, reserved: float, charged: float, key: str = "") -> None:
        """The create reserved at ``reserved`` ended, charging ``charged``.

        With a key, everything still reserved on it goes (a dead maker's reservation too:
        whoever settles the take now counts its charge).
        """
        if key:
            reserved = max(reserved, self._held.pop(key, 0.0))
        self.reserved_usd = max(0.0, self.reserved_usd - reserved)
        self.spent_usd += charged

    def refund(self, amount: float) -> None:
        """Money counted as spent that was proven not to be (a lost create that started nothing)."""
        self.spent_usd = max(0.0, self.spent_usd - amount)

    def hold(self, amount: float, key: str = "") -> None:
        """Reserve money already committed (an adopted operation): never refused, settled later."""
        self.reserved_usd += amount
        if key:
            self._held[key] = self._held.get(key, 0.0) + amount

    def snapshot(self) -> dict[str, float | None]:
        return {"budget_usd": self.budget_usd, "spent_usd": self.spent_usd, "reserved_usd": self.reserved_usd}


class RateWindow:
    """At most ``per_minute`` creates in any 60-second window (None or 0: unlimited); thread-safe."""

    def __init__(self, per_minute: int | None, window_s: float = 60.0) -> None:
        self.per_minute, self.window_s = per_minute, window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def take(self, now: float | None = None) -> float:
        """Take a place now (0.0), or the seconds to wait before asking again (nothing taken)."""
        if not self.per_minute:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and now - self._times[0] >= self.window_s:
                self._times.popleft()
            if len(self._times) < self.per_minute:
                self._times.append(now)
                return 0.0
            return max(0.001, self.window_s - (now - self._times[0]))


class Limits(abc.ABC):
    """What every create goes through; implementations differ only in where the state lives."""

    @abc.abstractmethod
    def slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold one of the operations in flight for the block."""

    @abc.abstractmethod
    async def rate(self) -> None:
        """Wait for a place in the minute's creates."""

    @abc.abstractmethod
    def reserve(self, cost: float, what: str, key: str) -> None:
        """Reserve a create's price, or raise :class:`~composer.errors.BudgetExceeded`."""

    @abc.abstractmethod
    def settle(self, reserved: float, charged: float, key: str) -> None: ...

    @abc.abstractmethod
    def refund(self, amount: float) -> None: ...

    @abc.abstractmethod
    def hold(self, amount: float, key: str) -> None: ...


class LocalLimits(Limits):
    """The limits in this process; usable by one event loop at a time (renders run one after another)."""

    def __init__(self, ledger: Ledger, requests_per_minute: int | None, concurrency: int) -> None:
        self.ledger = ledger
        self.window = RateWindow(requests_per_minute)
        self.concurrency = max(1, concurrency)
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            # A semaphore belongs to one event loop; renders run one after another each have their own.
            self._slots, self._loop = asyncio.Semaphore(self.concurrency), loop
        async with self._slots:
            yield

    async def rate(self) -> None:
        while (wait := self.window.take()) > 0:
            await asyncio.sleep(wait)

    def reserve(self, cost: float, what: str, key: str) -> None:
        self.ledger.reserve(cost, what, key)

    def settle(self, reserved: float, charged: float, key: str) -> None:
        self.ledger.settle(reserved, charged, key)

    def refund(self, amount: float) -> None:
        self.ledger.refund(amount)

    def hold(self, amount: float, key: str) -> None:
        self.ledger.hold(amount, key)
