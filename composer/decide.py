"""The regeneration policy (pure): accept a take, regenerate part of it, or keep the best and flag it.

Input: the checks each attempt at a segment got (verdict, value, threshold, and when the
problem began). Output: a :class:`Decision` saying what to do next and why. When a
regenerate level is crossed, the chunk where the problem began is made again (the
extension step where drift took off, or the whole segment), with a new seed, up to
``max_attempts``; after that the best-scoring attempt is kept and flagged. Every decision
carries the numbers it was made on, for the report. Nothing here touches files or ffmpeg.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from composer.models import Frozen

Verdict = Literal["ok", "warn", "regenerate"]
_RANK = {"ok": 0, "warn": 1, "regenerate": 2}


class Check(Frozen):
    """One measured check of one attempt (a drift metric, or a seam)."""

    name: str = Field(description="e.g. 'drift.brightness', 'seam.extension2', 'seam.previous'.")
    verdict: Verdict
    value: float
    warn: float
    regenerate: float
    severity: float = Field(description="value / regenerate level, oriented so >= 1 means regenerate.")
    onset_s: float | None = Field(
        None, description="When the problem first crossed the warn level, clip time."
    )
    chunk: int | None = Field(None, description="The chunk the problem begins in, when known.")


class Attempt(Frozen):
    """One attempt at a segment: its seeds, the takes it produced, and their checks."""

    number: int = Field(description="1 for the first attempt.")
    seed: int
    from_chunk: int = Field(0, description="Chunks before this one were reused from the previous attempt.")
    take_keys: tuple[str, ...]
    checks: tuple[Check, ...]

    @property
    def verdict(self) -> Verdict:
        return max((c.verdict for c in self.checks), key=_RANK.__getitem__, default="ok")

    @property
    def score(self) -> float:
        """Badness: the worst severity (lower is better)."""
        return max((c.severity for c in self.checks), default=0.0)


class Decision(Frozen):
    action: Literal["accept", "regenerate", "keep_best"]
    attempt: int = Field(description="The attempt this decision is about (kept, or just judged).")
    reason: str
    from_chunk: int = 0
    seed: int | None = None
    flagged: bool = False


def attempt_seed(base_seed: int, attempt: int) -> int:
    """A new, reproducible seed for attempt ``attempt`` (1 keeps the planned seed)."""
    if attempt <= 1:
        return base_seed
    return (base_seed * 1_103_515_245 + 12_345 + attempt * 2_654_435_761) % 2**32


def _worst(checks: Sequence[Check]) -> Check | None:
    failing = [c for c in checks if c.verdict == "regenerate"]
    return max(failing, key=lambda c: c.severity) if failing else None


def decide(history: Sequence[Attempt], *, max_attempts: int, regenerate: bool = True) -> Decision:
    """What to do after the latest attempt in ``history``."""
    latest = history[-1]
    worst = _worst(latest.checks)
    if worst is None:
        flagged = latest.verdict == "warn"
        reason = (
            "all checks passed"
            if not flagged
            else "passed with warnings: " + ", ".join(c.name for c in latest.checks if c.verdict == "warn")
        )
        return Decision(action="accept", attempt=latest.number, reason=reason, flagged=flagged)
    detail = f"{worst.name} = {worst.value:.3g} crossed the regenerate level {worst.regenerate:.3g}"
    if not regenerate:
        return Decision(
            action="keep_best", attempt=latest.number, reason=f"{detail}; regeneration is off", flagged=True
        )
    if latest.number >= max_attempts:
        best = min(history, key=lambda a: (a.score, a.number))
        return Decision(
            action="keep_best",
            attempt=best.number,
            reason=f"{detail}; {max_attempts} attempts made, keeping attempt {best.number} (score {best.score:.3g})",
            flagged=True,
        )
    # Regenerate from the chunk where the worst problem began: the chunks before it are
    # reused as they are, and only what went wrong is paid for again.
    start = worst.chunk if worst.chunk is not None else 0
    return Decision(
        action="regenerate",
        attempt=latest.number,
        reason=f"{detail}; regenerating from chunk {start + 1} with a new seed",
        from_chunk=start,
        seed=attempt_seed(latest.seed, latest.number + 1),
    )
