"""Crossfade arithmetic in whole frames (pure): the one fade layout of a chain of legs.

A join of ``F`` frames is centred on the boundary between two segments: ``F // 2`` frames
of the incoming segment come before the boundary and the rest of the outgoing segment
after it. So each segment's clip is its own share of the output plus those handles, and

    output frames = sum(clip frames) - sum(fade frames)

holds exactly, which is what ``xfade`` chains produce.

:func:`layout` (legs of known length) and :func:`layout_nominal` (segments of known share)
give a :class:`Layout`: for each leg, its fade in and out, its handles, the frames that must
be IDR keyframes so its body can be stream-copied, the ranges a crossfade blends, and the
output frame where it lands. The planner, the normalisation of takes and the composition
all read these numbers from here, so they cannot disagree. Nothing here touches files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def split_fade(fade: int) -> tuple[int, int]:
    """(frames before the boundary, frames after it) of a centred crossfade."""
    before = fade // 2
    return before, fade - before


@dataclass(frozen=True)
class LegLayout:
    """Where one leg of ``frames`` frames sits in a chain: its fades and what follows from them."""

    frames: int
    fade_in: int  # frames at its start blended with the previous leg (0: first leg or a cut)
    fade_out: int  # frames at its end blended with the next leg
    at: int  # output frame where its first frame lands (the previous join's xfade offset)

    @property
    def lead(self) -> int:
        """Handle frames before the segment's own share (the incoming fade's first half)."""
        return split_fade(self.fade_in)[0]

    @property
    def tail(self) -> int:
        """Handle frames after the segment's own share (the outgoing fade's second half)."""
        return split_fade(self.fade_out)[1]

    @property
    def nominal(self) -> int:
        """Frames this leg owns in the output, between the centres of its two joins."""
        return self.frames - self.lead - self.tail

    @property
    def keyframes(self) -> tuple[int, ...]:
        """Frames of the leg that should be IDR frames, so its body can be copied.

        0 (every encode starts with one), the first frame after the incoming fade and the
        first frame of the outgoing fade: with those, everything between the two crossfades
        is copied.
        """
        wanted = {0, self.fade_in, self.frames - self.fade_out}
        return tuple(sorted(k for k in wanted if 0 <= k < self.frames))

    @property
    def blends(self) -> tuple[tuple[int, int], ...]:
        """The ``(first, frames)`` ranges of the leg that a crossfade blends with a neighbour."""
        ranges = ((0, self.fade_in), (self.frames - self.fade_out, self.fade_out))
        return tuple((first, frames) for first, frames in ranges if frames > 0)

    def take_keyframes(self, take_offset: int) -> tuple[int, ...]:
        """The IDR frames a take should carry when the leg is its frames from ``take_offset``.

        The leg's own :attr:`keyframes`, shifted, and the first frame after the used range:
        a copy can only end where a GOP does (a B-frame before it may reference a later
        frame), and takes run on past what their output uses.
        """
        return (*(take_offset + k for k in self.keyframes), take_offset + self.frames)


@dataclass(frozen=True)
class Layout:
    """A chain of legs joined by ``fades`` (``fades[k]`` between leg k and leg k+1; 0 = cut)."""

    legs: tuple[LegLayout, ...]
    fades: tuple[int, ...]

    @property
    def frames(self) -> int:
        """Frames of the joined output."""
        return joined_length([leg.frames for leg in self.legs], self.fades)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Output frame where each join's fade starts (ffmpeg xfade ``offset``)."""
        return tuple(leg.at for leg in self.legs[1:])


def layout(clip_frames: Sequence[int], fades: Sequence[int]) -> Layout:
    """The layout of legs of ``clip_frames`` frames joined by ``fades``.

    Raises ValueError when the counts do not match or a fade is longer than a leg it joins.
    """
    if len(fades) != max(0, len(clip_frames) - 1):
        raise ValueError("need one join between each pair of legs")
    for k, fade in enumerate(fades):
        if fade < 0 or fade > clip_frames[k] or fade > clip_frames[k + 1]:
            raise ValueError(
                f"a {fade}-frame crossfade does not fit legs of {clip_frames[k]} and {clip_frames[k + 1]} frames"
            )
    legs, at = [], 0
    for i, frames in enumerate(clip_frames):
        fade_in = fades[i - 1] if i > 0 else 0
        fade_out = fades[i] if i < len(fades) else 0
        at -= fade_in  # the leg starts where the fade into it starts
        legs.append(LegLayout(frames=frames, fade_in=fade_in, fade_out=fade_out, at=at))
        at += frames
    return Layout(tuple(legs), tuple(fades))


def layout_nominal(nominal: Sequence[int], fades: Sequence[int]) -> Layout:
    """The layout of segments owning ``nominal`` output frames each, joined by centred ``fades``.

    Each leg is its share plus its handles (:attr:`LegLayout.lead`, :attr:`LegLayout.tail`),
    so the output is exactly ``sum(nominal)`` frames.
    """
    if len(fades) != max(0, len(nominal) - 1):
        raise ValueError("need one join between each pair of legs")
    clips = [
        own
        + (split_fade(fades[i - 1])[0] if i > 0 else 0)
        + (split_fade(fades[i])[1] if i < len(fades) else 0)
        for i, own in enumerate(nominal)
    ]
    return layout(clips, fades)


def joined_length(clip_frames: Sequence[int], fades: Sequence[int]) -> int:
    return sum(clip_frames) - sum(fades)


def fitting_fade(fade: int, left_nominal: int, right_nominal: int) -> int:
    """The longest fade up to ``fade`` whose halves each fit in half of their segment.

    Keeping each side of a window within half of its segment's own frames guarantees the
    windows at a segment's two ends never overlap. Only short fragments (a scene cut by an
    output boundary, say) are ever affected.
    """
    for f in range(fade, -1, -1):
        before, after = split_fade(f)
        if before <= left_nominal // 2 and after <= right_nominal // 2:
            return f
    return 0


def split_even(total: int, parts: int) -> list[int]:
    """``total`` frames in ``parts`` near-equal whole parts, longer ones first."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
