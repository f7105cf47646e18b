"""The limits on paid work (``jobs/limits.py``) as plain objects: the policy a process and a
cluster's actor share."""

from __future__ import annotations

import asyncio

import pytest

from composer.errors import BudgetExceeded
from composer.jobs.limits import Ledger, LocalLimits, RateWindow


def test_the_ledger_refuses_a_create_that_would_pass_the_budget_counting_what_is_in_flight() -> None:
    ledger = Ledger(1.0)
    ledger.reserve(0.4, "a", "ka")
    ledger.reserve(0.4, "b", "kb")
    with pytest.raises(BudgetExceeded, match=r"budget of \$1\.00"):
        ledger.reserve(0.4, "c", "kc")
    ledger.settle(0.4, 0.0, "kb")  # b ended without a charge (filtered): its money is free again
    ledger.reserve(0.4, "c", "kc")
    assert ledger.spent_usd == 0.0 and ledger.reserved_usd == pytest.approx(0.8)


def test_a_dead_makers_reservation_is_counted_until_the_take_is_settled_and_never_twice() -> None:
    ledger = Ledger(1.0)
    ledger.reserve(0.4, "take on a node that dies", "k")  # created, then its node died
    # Until someone resumes the take, its money stays committed: a create that would pass is refused.
    ledger.reserve(0.4, "other", "k2")
    with pytest.raises(BudgetExceeded):
        ledger.reserve(0.4, "third", "k3")
    # Another node resumes the journaled operation (no reservation of its own) and settles it.
    ledger.settle(0.0, 0.4, "k")
    assert ledger.spent_usd == pytest.approx(0.4)
    assert ledger.reserved_usd == pytest.approx(0.4)  # only k2's: the dead maker's went with the settle
    with pytest.raises(BudgetExceeded):
        ledger.reserve(0.4, "third", "k3")  # 0.4 spent + 0.4 in flight + 0.4 > 1.0


def test_the_rate_window_answers_how_long_to_wait() -> None:
    window = RateWindow(2, window_s=60.0)
    assert window.take(now=0.0) == 0.0
    assert window.take(now=1.0) == 0.0
    assert window.take(now=2.0) == pytest.approx(58.0)  # nothing taken
    assert window.take(now=60.0) == 0.0  # the first one left the window
    assert RateWindow(None).take() == 0.0


def test_local_limits_serve_renders_run_one_after_another() -> None:
    limits = LocalLimits(Ledger(None), None, concurrency=1)
    held: list[int] = []

    async def one_render() -> None:
        async with limits.slot():
            held.append(1)
        await limits.rate()

    asyncio.run(one_render())
    asyncio.run(one_render())  # a new event loop: the slots are made again for it
    assert held == [1, 1]


def test_the_cluster_keeper_counts_each_services_minute_apart() -> None:
    from composer.cluster import LimitsKeeper

    # A batch mixing backends: each service has its own quota, the budget is shared.
    keeper = LimitsKeeper(1.0, {"gemini": 2, "openai": 1, "local": None}, concurrency=4)
    assert [keeper.rate("gemini"), keeper.rate("gemini")] == [0.0, 0.0]
    assert keeper.rate("gemini") > 0  # gemini's third create this minute waits...
    assert keeper.rate("openai") == 0.0  # ... while openai's first goes
    assert keeper.rate("openai") > 0
    assert all(keeper.rate("local") == 0.0 for _ in range(10))  # no quota
    assert keeper.reserve(0.6, "a", "k1") is None and keeper.reserve(0.6, "b", "k2") is not None
