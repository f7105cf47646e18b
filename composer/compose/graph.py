"""What a composition is, in numbers (pure): legs, joins, offsets, exact sample counts.

A :class:`Composition` says which clip feeds each leg, how many frames of it are used, and
how each pair of legs is joined; ``composer/compose/render.py`` hands its numbers to
``composer/ffmpeg/``, which builds the filter graph. The arithmetic guarantees ``frames == sum(leg frames) - sum(fade frames)`` and audio of
exactly ``frames * 48000 / fps`` samples (each leg is forced to its own exact count). Where
each leg's fades, keyframes and blends fall is the one fade layout of ``plan/timing.py``
(:attr:`Composition.layout`), which the planner and the normalisation read too. Nothing
here runs ffmpeg or opens a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from pathlib import Path

from composer.plan import timing
from composer.timecode import audio_samples


@dataclass(frozen=True)
class Leg:
    """One input clip: the first ``frames`` frames of ``path`` after normalisation."""

    path: Path
    frames: int
    has_audio: bool
    start: int = 0  # frames skipped at the start of the clip


@dataclass(frozen=True)
class LegJoin:
    """How leg k+1 follows leg k: a crossfade of ``fade`` frames (0 = cut)."""

    fade: int
    offset: int  # frame of the joined output where the fade starts (xfade offset)


@dataclass(frozen=True)
class Composition:
    legs: tuple[Leg, ...]
    joins: tuple[LegJoin, ...]
    width: int
    height: int
    fps: Fraction
    audio: bool
    frames: int

    @property
    def samples(self) -> int:
        return audio_samples(self.frames, self.fps)

    def start_samples(self, index: int) -> int:
        return audio_samples(self.legs[index].start, self.fps)

    def leg_samples(self, index: int) -> int:
        return audio_samples(self.legs[index].frames, self.fps)

    def fade_samples(self, index: int) -> int:
        return audio_samples(self.joins[index].fade, self.fps)

    @cached_property
    def layout(self) -> timing.Layout:
        """Each leg's fades, keyframes, blends and output position (:mod:`composer.plan.timing`)."""
        return timing.layout([leg.frames for leg in self.legs], [join.fade for join in self.joins])


def build(
    legs: list[Leg], fades: list[int], width: int, height: int, fps: Fraction, audio: bool
) -> Composition:
    """Lay out legs and joins; raises ValueError if a fade does not fit its legs."""
    if not legs:
        raise ValueError("nothing to compose")
    laid = timing.layout([leg.frames for leg in legs], fades)
    joins = tuple(LegJoin(fade=f, offset=o) for f, o in zip(laid.fades, laid.offsets, strict=True))
    return Composition(tuple(legs), joins, width, height, fps, audio, laid.frames)


# --- Smart assembly: which frames are stream-copied and which are encoded again -------------
#
# A smart render copies each leg's "body" packet for packet and re-encodes only what changes
# (the crossfade windows). Packets can only be copied in whole closed GOPs, so a body must
# start on an IDR frame and end just before one (or at the end of the file). Everything not in
# a body is a *span*: a short composition of its own (the tail of one leg, the head of the
# next, and the crossfade between them) encoded with the same x264 settings.


@dataclass(frozen=True)
class Copy:
    """Frames ``[first, first + frames)`` of leg ``leg``, stream-copied to output frame ``at``."""

    leg: int
    first: int
    frames: int
    at: int


@dataclass(frozen=True)
class SpanPart:
    """Frames ``[first, first + frames)`` of leg ``leg`` as one input of a span."""

    leg: int
    first: int
    frames: int


@dataclass(frozen=True)
class Span:
    """Re-encoded frames: ``parts`` joined by ``fades`` (as a composition), at output frame ``at``."""

    parts: tuple[SpanPart, ...]
    fades: tuple[int, ...]
    at: int

    @property
    def frames(self) -> int:
        return timing.joined_length([p.frames for p in self.parts], self.fades)


Piece = Copy | Span


@dataclass(frozen=True)
class SmartPlan:
    """The pieces of an output in order; their frames add up to the composition's."""

    pieces: tuple[Piece, ...]

    @property
    def copied_frames(self) -> int:
        return sum(p.frames for p in self.pieces if isinstance(p, Copy))

    @property
    def encoded_frames(self) -> int:
        return sum(p.frames for p in self.pieces if isinstance(p, Span))


def smart_plan(
    comp: Composition, cut_points: list[frozenset[int]], end_points: list[frozenset[int]] | None = None
) -> SmartPlan:
    """Split ``comp`` into copied bodies and encoded spans.

    ``cut_points[i]`` holds the frames of leg i (counted from the leg's first frame) where its
    source can be split by stream copy: IDR frames of a closed GOP, and the end of the file.
    ``end_points[i]``, where a copy that started at one of them may also stop (inside a GOP,
    where no B-frame straddles the cut); a body starts at a cut point and ends at either.
    A body is the widest copyable range between the leg's two crossfades; a leg without one is
    encoded whole as part of the span around it. Raises ValueError if a leg's two crossfades
    overlap (the middle leg is shorter than its fades), which no piecewise plan can express.
    """
    if len(cut_points) != len(comp.legs) or (end_points is not None and len(end_points) != len(comp.legs)):
        raise ValueError("need the cut points of every leg")
    bodies: list[tuple[int, int] | None] = []
    laid = comp.layout.legs
    for i, leg in enumerate(comp.legs):
        lo, hi = laid[i].fade_in, leg.frames - laid[i].fade_out
        if lo > hi:
            raise ValueError(
                f"leg {i + 1} has {leg.frames} frames, fewer than its two crossfades "
                f"({lo} + {laid[i].fade_out}) need"
            )
        # Only cut points inside the leg count: a start must be an IDR before the leg's end.
        points = sorted(p for p in cut_points[i] if 0 <= p <= leg.frames)
        ends = sorted(
            p for p in cut_points[i] | (end_points[i] if end_points else frozenset()) if 0 <= p <= leg.frames
        )
        start = next((p for p in points if p >= lo and p < leg.frames), None)
        end = next((p for p in reversed(ends) if p <= hi), None)
        bodies.append((start, end) if start is not None and end is not None and start < end else None)

    starts = [leg.at for leg in laid]
    pieces: list[Piece] = []
    parts: list[SpanPart] = []
    fades: list[int] = []
    span_at = 0

    def flush() -> None:
        nonlocal parts, fades
        if parts:
            pieces.append(Span(tuple(parts), tuple(fades), span_at))
        parts, fades = [], []

    def add_part(part: SpanPart, join_fade: int) -> None:
        # A join between two parts of the same span becomes one of the span's own fades.
        nonlocal span_at
        if part.frames <= 0:
            return
        if not parts:
            span_at = starts[part.leg] + part.first
        else:
            fades.append(join_fade)
        parts.append(part)

    for i, leg in enumerate(comp.legs):
        body = bodies[i]
        incoming = laid[i].fade_in
        if body is None:
            add_part(SpanPart(i, 0, leg.frames), incoming)
            continue
        first, end = body
        add_part(SpanPart(i, 0, first), incoming)
        flush()
        pieces.append(Copy(i, first, end - first, starts[i] + first))
        # The rest of the leg starts the next span (its outgoing fade is inside it).
        parts, fades = [], []
        add_part(SpanPart(i, end, leg.frames - end), 0)
    flush()
    plan = SmartPlan(tuple(pieces))
    total = sum(p.frames for p in plan.pieces)
    if total != comp.frames:  # an invariant of the arithmetic above, checked to stay honest
        raise AssertionError(f"smart plan covers {total} frames, composition has {comp.frames}")
    return plan
