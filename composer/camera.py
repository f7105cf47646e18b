"""The camera vocabulary: a shot's camera text read once into one typed plan.

Holds ``CameraPlan`` (still or moving, and each move: kind, direction, speed) and ``parse``,
which reads texts like ``"static"``, ``"slow pan left"``, ``"push in, then orbit"`` or
``"handheld"``. The judge asks a plan which camera motion it expects (translation, zoom,
roll) so that what was not asked for is checked; the local generator renders its first move;
lint asks whether it is still, moving or a large move. Pure: no I/O. What does not live
here: measuring camera motion (``analysis/``) or drawing it (``backends/local/state.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

MoveKind = Literal["pan", "tilt", "zoom", "roll", "orbit", "track", "crane", "dolly", "handheld"]

#: Words for each move kind, matched as whole words (a space also matches a hyphen).
_KIND_WORDS: dict[MoveKind, tuple[str, ...]] = {
    "zoom": ("zoom", "zooms", "zooming", "push in", "pushes in", "pushing in", "push-in", "pull back",
             "pulls back", "pull out", "pulls out", "pull away", "dolly in", "dolly out", "dolly zoom"),
    "orbit": ("orbit", "orbits", "orbiting", "arc", "arcs", "circles", "circling", "revolves", "360"),
    "roll": ("roll", "rolls", "rolling", "dutch", "barrel roll", "rotate", "rotates", "rotating", "spins"),
    "track": ("truck", "trucks", "track", "tracks", "tracking", "follow", "follows", "following", "drone",
              "aerial", "flyover", "fly through", "flythrough", "flies", "fpv", "travels", "glides",
              "steadicam", "gimbal"),
    "crane": ("crane", "cranes", "boom", "booms", "pedestal"),
    "dolly": ("dolly", "dollies"),
    "handheld": ("handheld", "hand held", "shaky", "shaking camera", "documentary style"),
    "tilt": ("tilt", "tilts", "tilting", "tilt up", "tilt down"),
    "pan": ("pan", "pans", "panning", "whip pan", "sweep", "sweeps", "sweeping", "moving", "moves"),
}  # fmt: skip
_STILL_WORDS = ("static", "still camera", "locked off", "lock off", "locked down", "lockdown", "tripod",
                "fixed camera", "fixed shot", "stationary", "motionless", "no camera movement",
                "no camera motion", "no movement", "no motion", "still shot")  # fmt: skip
_SLOW = ("slow", "slowly", "gentle", "gently", "gradual", "gradually", "subtle", "subtly", "creeping")
_FAST = ("fast", "quick", "quickly", "rapid", "rapidly", "swift", "swiftly", "whip", "speeding")
_NEGATIVE = (
    "left",
    "up",
    "out",
    "back",
    "away",
    "counterclockwise",
    "anticlockwise",
    "backward",
    "backwards",
)
#: Moves that travel through the scene: large motion, with parallax the judge cannot model.
_LARGE: frozenset[MoveKind] = frozenset({"orbit", "track", "crane", "handheld"})


def phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    """One case-insensitive pattern for whole words or phrases; a space also matches a hyphen."""
    # Longest first, so that "whip pan" is tried before "pan".
    parts = sorted({p.lower() for p in phrases}, key=len, reverse=True)
    body = "|".join(r"[\s-]+".join(re.escape(word) for word in part.split()) for part in parts)
    return re.compile(rf"\b(?:{body})\b", re.IGNORECASE)


_KINDS = {kind: phrase_pattern(words) for kind, words in _KIND_WORDS.items()}
_STILL = phrase_pattern(_STILL_WORDS)
_SLOW_RE = phrase_pattern(_SLOW)
_FAST_RE = phrase_pattern(_FAST)


@dataclass(frozen=True)
class Move:
    """One camera move: its kind, its direction (+1 right, down, in, clockwise; -1 the other
    way) and its speed (1 normal, 0.5 slow, 2 fast)."""

    kind: MoveKind
    direction: int = 1
    speed: float = 1.0


@dataclass(frozen=True)
class CameraPlan:
    """What a shot's camera text asks for: ``static`` (nothing moves), or ``moves``.

    ``text`` is kept for messages. A plan with no move and not static said nothing about the
    camera (``parse`` returns None for that).
    """

    text: str
    static: bool
    moves: tuple[Move, ...] = ()

    @property
    def kinds(self) -> frozenset[MoveKind]:
        return frozenset(m.kind for m in self.moves)

    @property
    def expects_translation(self) -> bool:
        """Pans, tilts, orbits and a travelling camera move the picture; a zoom alone does not."""
        return bool(self.kinds & {"pan", "tilt", "orbit", "track", "crane", "dolly", "handheld"})

    @property
    def expects_zoom(self) -> bool:
        # A camera that travels changes the picture's scale as it goes (parallax).
        return bool(self.kinds & {"zoom", "orbit", "track", "crane", "dolly", "handheld"})

    @property
    def expects_roll(self) -> bool:
        return bool(self.kinds & {"roll", "orbit", "handheld"})

    @property
    def large(self) -> bool:
        """A move that travels through the scene, or any fast move: large motion."""
        return bool(self.kinds & _LARGE) or any(m.speed > 1 for m in self.moves)

    @property
    def label(self) -> str:
        """``static`` or the move kinds joined (``pan+zoom``): for reports and JSON."""
        return "static" if self.static else "+".join(m.kind for m in self.moves)


def parse(text: str | None) -> CameraPlan | None:
    """Read a camera text; None when it says nothing about the camera.

    A move named anywhere wins over a still word ("static, then a slow pan left" moves), as
    a clip that must hold still and one that pans cannot both be made.
    """
    if not text or not text.strip():
        return None
    low = text.lower()
    found: list[tuple[int, Move]] = []
    taken: list[tuple[int, int]] = []  # spans already read: "dolly in" is a zoom, not also a dolly
    for kind, pattern in _KINDS.items():
        for match in pattern.finditer(low):
            if any(a <= match.start() < b for a, b in taken):
                continue
            if (
                kind == "pan"
                and match.group(0) in ("moving", "moves")
                and not re.search(r"camera\s+mov", low)
            ):
                continue  # "moving" alone describes the subject, not the camera
            if any(start <= match.start() < start + 30 and m.kind == kind for start, m in found):
                continue
            found.append((match.start(), Move(kind, _direction(low, match.end()), _speed(low))))
            taken.append(match.span())
    if found:
        found.sort(key=lambda pm: pm[0])
        moves: list[Move] = []
        for _, move in found:
            if all(m.kind != move.kind for m in moves):
                moves.append(move)
        return CameraPlan(text=text, static=False, moves=tuple(moves))
    if _STILL.search(low):
        return CameraPlan(text=text, static=True)
    return None


def _direction(low: str, end: int) -> int:
    # The direction word nearest after the move ("pan slowly to the left"), else before it.
    after = re.findall(r"[a-z]+", low[end : end + 24])
    before = re.findall(r"[a-z]+", low[max(0, end - 40) : end])[-4:]
    for word in (*after, *reversed(before)):
        if word in _NEGATIVE:
            return -1
        if word in ("right", "down", "in", "forward", "clockwise", "closer", "toward", "towards"):
            return 1
    return 1


def _speed(low: str) -> float:
    if _FAST_RE.search(low):
        return 2.0
    return 0.5 if _SLOW_RE.search(low) else 1.0
