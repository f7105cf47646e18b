"""The regeneration policy: accept, regenerate from the chunk where drift began, keep the best."""

from __future__ import annotations

from composer.decide import Attempt, Check, attempt_seed, decide


def _check(name: str, value: float, *, chunk: int | None = None) -> Check:
    warn, regen = 1.5, 3.0
    verdict = "regenerate" if value >= regen else "warn" if value >= warn else "ok"
    return Check(
        name=name,
        verdict=verdict,
        value=value,
        warn=warn,
        regenerate=regen,
        severity=value / regen,
        chunk=chunk,
    )


def _attempt(number: int, *checks: Check) -> Attempt:
    return Attempt(number=number, seed=attempt_seed(5, number), take_keys=("k",), checks=checks)


def test_clean_attempt_is_accepted() -> None:
    decision = decide([_attempt(1, _check("drift.brightness", 0.4))], max_attempts=3)
    assert decision.action == "accept" and not decision.flagged


def test_warning_is_accepted_but_flagged() -> None:
    decision = decide([_attempt(1, _check("drift.brightness", 2.0))], max_attempts=3)
    assert decision.action == "accept" and decision.flagged and "drift.brightness" in decision.reason


def test_failure_regenerates_from_the_chunk_where_it_began_with_a_new_seed() -> None:
    decision = decide(
        [_attempt(1, _check("drift.brightness", 4.0, chunk=2), _check("seam.extension1", 3.5, chunk=1))],
        max_attempts=3,
    )
    assert decision.action == "regenerate"
    assert decision.from_chunk == 2  # the worst check (4.0) began in chunk 2
    assert decision.seed is not None and decision.seed != attempt_seed(5, 1)
    assert "drift.brightness" in decision.reason


def test_after_the_last_attempt_the_best_is_kept_and_flagged() -> None:
    history = [
        _attempt(1, _check("drift.brightness", 5.0)),
        _attempt(2, _check("drift.brightness", 3.2)),
        _attempt(3, _check("drift.brightness", 6.0)),
    ]
    decision = decide(history, max_attempts=3)
    assert decision.action == "keep_best" and decision.attempt == 2 and decision.flagged


def test_no_regenerate_only_reports() -> None:
    decision = decide([_attempt(1, _check("drift.brightness", 5.0))], max_attempts=3, regenerate=False)
    assert decision.action == "keep_best" and decision.flagged and "off" in decision.reason


def test_attempt_seeds_are_reproducible_and_distinct() -> None:
    seeds = {attempt_seed(11, n) for n in range(1, 6)}
    assert len(seeds) == 5 and attempt_seed(11, 1) == 11
