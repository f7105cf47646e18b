"""Fault injection for the simulator: the rule grammar and the seeded draws.

What lives here: :class:`FaultRule` and :class:`FaultSpec` (frozen models of a spec such as
``429@gemini.create=0.2:3,truncate@download=1x``), :func:`parse_faults` (text -> spec, with
errors that quote the bad rule and the grammar) and :class:`FaultPlan` (the mutable part: a
``random.Random(seed)``, how many requests each rule has seen, and the record of every fault
it fired). What does not: how a fault is *answered* (envelopes, dropped connections, garbage
bytes); that is the server's and each protocol's business (``http.py``, ``server.py``).

Grammar (also in ``docs/simulator.md``)::

    SPEC  := RULE ("," RULE)*            empty: no faults
    RULE  := KIND ["@" SCOPE] "=" RATE [":" ARG]
    KIND  := 429 | 500 | 503 | slow | drop | lost | truncate | corrupt | filter | fail
           | huge | trickle | wrongtype | smaller
    SCOPE := PROTOCOL | STEP | PROTOCOL "." STEP
    PROTOCOL := gemini | vertex | openai | relay        STEP := create | poll | download
    RATE  := a probability 0..1 (0.2) | N "x" (exactly the first N matching requests)
    ARG   := seconds (429: the retry delay the answer asks for, default 1; slow: the delay, default 2;
             trickle: the pause between bytes, default 0.5)

A fault is drawn at the moment it can act, so a rule only ever "sees" requests it could change:
status faults (429/500/503/slow/drop/lost) before a request is handled, ``filter``/``fail``
when an operation is actually created, the body faults (``truncate``, ``corrupt``, ``huge``,
``trickle``, ``wrongtype``, ``smaller``) when video bytes are about to be sent. Rules are
tried in the order written; the first that fires decides (``slow`` only
delays, so the rules after it are still tried).
"""

from __future__ import annotations

import random
import re
import threading
import time
from typing import Literal, get_args

from composer.models import Frozen

FaultKind = Literal[
    "429",
    "500",
    "503",
    "slow",
    "drop",
    "lost",
    "truncate",
    "corrupt",
    "filter",
    "fail",
    "huge",
    "trickle",
    "wrongtype",
    "smaller",
]
ProtocolName = Literal["gemini", "vertex", "openai", "relay"]
Step = Literal["create", "poll", "download"]
#: Where in a request's life a fault is drawn (see the module docstring).
Phase = Literal["request", "create", "body"]

# The literals above are the one list of each; these are them as tuples, for messages and loops.
KINDS: tuple[str, ...] = get_args(FaultKind)
PROTOCOLS: tuple[str, ...] = get_args(ProtocolName)
STEPS: tuple[str, ...] = get_args(Step)

_PHASE: dict[str, str] = {
    "429": "request",
    "500": "request",
    "503": "request",
    "slow": "request",
    "drop": "request",
    "lost": "request",
    "filter": "create",
    "fail": "create",
    "truncate": "body",
    "corrupt": "body",
    "huge": "body",
    "trickle": "body",
    "wrongtype": "body",
    "smaller": "body",
}
# Kinds that only make sense on one step; a scope naming another step is a mistake worth reporting.
_ONLY_STEP: dict[str, str] = {
    "lost": "create",
    "filter": "create",
    "fail": "create",
    "truncate": "download",
    "corrupt": "download",
    "huge": "download",
    "trickle": "download",
    "wrongtype": "download",
    "smaller": "download",
}
_DEFAULT_ARG: dict[str, float] = {"429": 1.0, "slow": 2.0, "trickle": 0.5}

GRAMMAR = (
    "KIND[@SCOPE]=RATE[:ARG], comma-separated; KIND is one of "
    + ", ".join(KINDS)
    + "; SCOPE is a protocol ("
    + ", ".join(PROTOCOLS)
    + "), a step ("
    + ", ".join(STEPS)
    + ") or protocol.step; RATE is a probability between 0 and 1 or Nx (exactly the first N "
    "matching requests); ARG is seconds (429: the retry delay, slow: the delay, trickle: the pause "
    "between bytes)"
)

_RULE_RE = re.compile(r"^(?P<kind>[a-z0-9]+)(?:@(?P<scope>[a-z.]+))?=(?P<rate>[^:]+)(?::(?P<arg>.+))?$")


class FaultRule(Frozen):
    """One rule: which fault, where, how often, and its argument (seconds) if it takes one."""

    kind: FaultKind
    protocol: ProtocolName | None = None
    step: Step | None = None
    probability: float | None = None
    first: int | None = None
    arg_s: float | None = None

    @property
    def phase(self) -> str:
        return _PHASE[self.kind]

    @property
    def delay_s(self) -> float:
        """The rule's argument in seconds, or the kind's default."""
        return self.arg_s if self.arg_s is not None else _DEFAULT_ARG.get(self.kind, 0.0)

    def matches(self, protocol: str, step: str | None) -> bool:
        if self.protocol is not None and self.protocol != protocol:
            return False
        return self.step is None or self.step == step

    def __str__(self) -> str:
        scope = ".".join(part for part in (self.protocol, self.step) if part)
        rate = f"{self.first}x" if self.first is not None else f"{self.probability:g}"
        arg = f":{self.arg_s:g}" if self.arg_s is not None else ""
        return f"{self.kind}{'@' + scope if scope else ''}={rate}{arg}"


class FaultSpec(Frozen):
    """A parsed ``--faults`` spec: the rules in the order written (empty: no faults)."""

    rules: tuple[FaultRule, ...] = ()

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        return parse_faults(text)

    def __str__(self) -> str:
        return ",".join(str(rule) for rule in self.rules)

    def __bool__(self) -> bool:
        return bool(self.rules)


def _bad(rule: str, why: str) -> ValueError:
    return ValueError(f"bad fault rule {rule!r}: {why}. Grammar: {GRAMMAR}")


def _parse_rule(text: str) -> FaultRule:
    match = _RULE_RE.match(text.lower())
    if not match:
        raise _bad(text, "it does not have the form KIND[@SCOPE]=RATE[:ARG]")
    kind = match["kind"]
    if kind not in KINDS:
        raise _bad(text, f"unknown kind {kind!r}")
    protocol: str | None = None
    step: str | None = None
    if match["scope"]:
        parts = match["scope"].split(".")
        if len(parts) == 2:
            protocol, step = parts
            if protocol not in PROTOCOLS:
                raise _bad(text, f"unknown protocol {protocol!r}")
            if step not in STEPS:
                raise _bad(text, f"unknown step {step!r}")
        elif len(parts) == 1 and parts[0] in PROTOCOLS:
            protocol = parts[0]
        elif len(parts) == 1 and parts[0] in STEPS:
            step = parts[0]
        else:
            raise _bad(text, f"unknown scope {match['scope']!r}")
    only = _ONLY_STEP.get(kind)
    if only is not None and step is not None and step != only:
        raise _bad(text, f"{kind} applies to the {only} step only, not to {step}")
    rate = match["rate"].strip()
    probability: float | None = None
    first: int | None = None
    if rate.endswith("x"):
        if not rate[:-1].isdigit():
            raise _bad(text, f"{rate!r} is not a count such as 3x")
        first = int(rate[:-1])
    else:
        try:
            probability = float(rate)
        except ValueError:
            raise _bad(text, f"{rate!r} is neither a probability nor a count such as 3x") from None
        if not 0.0 <= probability <= 1.0:
            raise _bad(text, f"the probability {rate} is outside 0..1")
    arg_s: float | None = None
    if match["arg"] is not None:
        if kind not in _DEFAULT_ARG:
            raise _bad(text, f"{kind} takes no argument (only 429, slow and trickle do)")
        try:
            arg_s = float(match["arg"])
        except ValueError:
            raise _bad(text, f"the argument {match['arg']!r} is not a number of seconds") from None
        if not 0.0 <= arg_s <= 3600.0:
            raise _bad(text, "the argument must be between 0 and 3600 seconds")
    return FaultRule.model_validate(
        {
            "kind": kind,
            "protocol": protocol,
            "step": step,
            "probability": probability,
            "first": first,
            "arg_s": arg_s,
        }
    )


def parse_faults(spec: str | FaultSpec | None) -> FaultSpec:
    """Read a spec such as ``"429@create=0.2:3,drop=1x"``; ValueError names the bad rule."""
    if spec is None:
        return FaultSpec()
    if isinstance(spec, FaultSpec):
        return spec
    if not isinstance(spec, str):
        raise ValueError(
            f"a fault spec is a string or a FaultSpec, not {type(spec).__name__}. Grammar: {GRAMMAR}"
        )
    rules = [_parse_rule(part.strip()) for part in spec.split(",") if part.strip()]
    return FaultSpec(rules=tuple(rules))


class FaultPlan:
    """The live side of a spec: seeded draws, per-rule counts, and the record of what fired.

    Thread-safe: the server's request threads and the operation workers all draw from it.
    """

    def __init__(self, spec: FaultSpec, seed: int) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._spec = spec
        self._seen = [0] * len(spec.rules)
        self.injected: list[dict[str, object]] = []

    @property
    def spec(self) -> FaultSpec:
        return self._spec

    def replace(self, spec: FaultSpec) -> None:
        """Use new rules from now on; their ``Nx`` counts start again at zero."""
        with self._lock:
            self._spec = spec
            self._seen = [0] * len(spec.rules)

    def draw(self, phase: Phase, protocol: str, step: str | None) -> tuple[float, FaultRule | None]:
        """(seconds to delay, the rule that fired or None) for one request at ``phase``."""
        delay = 0.0
        with self._lock:
            for index, rule in enumerate(self._spec.rules):
                if rule.phase != phase or not rule.matches(protocol, step):
                    continue
                # A step-bound kind with no step in its scope still only acts on its own step.
                only = _ONLY_STEP.get(rule.kind)
                if only is not None and step != only:
                    continue
                self._seen[index] += 1
                if rule.first is not None:
                    fired = self._seen[index] <= rule.first
                else:
                    fired = self._rng.random() < (rule.probability or 0.0)
                if not fired:
                    continue
                self._record(protocol, step, rule)
                if rule.kind == "slow":
                    delay += rule.delay_s
                    continue
                return delay, rule
        return delay, None

    def garbage(self, size: int) -> bytes:
        """Bytes for a ``corrupt`` answer: seeded, so a failing run can be replayed."""
        with self._lock:
            return self._rng.randbytes(size)

    def _record(self, protocol: str, step: str | None, rule: FaultRule) -> None:
        self.injected.append(
            {
                "protocol": protocol,
                "step": step or "other",
                "kind": rule.kind,
                "rule": str(rule),
                "at": time.time(),
            }
        )

    def reset_record(self) -> None:
        with self._lock:
            self.injected = []
