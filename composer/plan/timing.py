"""Crossfade arithmetic in whole frames (pure).

A join of ``F`` frames is centred on the boundary between two segments: ``F // 2`` frames
of the incoming segment come before the boundary and the rest of the outgoing segment
after it. So each segment's clip is its own share of the output plus those handles, and

    output frames = sum(clip frames) - sum(fade frames)

holds exactly, which is what ``xfade`` chains produce. Nothing here touches files.
"""

from __future__ import annotations

from collections.abc import Sequence


def split_fade(fade: int) -> tuple[int, int]:
    """(frames before the boundary, frames after it) of a centred crossfade."""
    before = fade // 2
    return before, fade - before


def handles(nominal: Sequence[int], fades: Sequence[int]) -> list[tuple[int, int]]:
    """(lead, tail) handle frames for each segment, given the fades between them."""
    if len(fades) != max(0, len(nominal) - 1):
        raise ValueError("need exactly one fade between each pair of segments")
    result = []
    for i in range(len(nominal)):
        lead = split_fade(fades[i - 1])[0] if i > 0 else 0
        tail = split_fade(fades[i])[1] if i < len(fades) else 0
        result.append((lead, tail))
    return result


def xfade_offsets(clip_frames: Sequence[int], fades: Sequence[int]) -> list[int]:
    """Frame where each join's fade starts in the joined output (ffmpeg xfade ``offset``)."""
    offsets, length = [], clip_frames[0] if clip_frames else 0
    for k, fade in enumerate(fades):
        offsets.append(length - fade)
        length += clip_frames[k + 1] - fade
    return offsets


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


def copy_keyframes(frames: int, fade_in: int, fade_out: int) -> tuple[int, ...]:
    """Frames of a ``frames``-long leg that should be IDR frames, so its body can be copied.

    0 (every encode starts with one), the first frame after the incoming fade and the first
    frame of the outgoing fade: with those, everything between the two crossfades is copied.
    """
    wanted = {0, fade_in, frames - fade_out}
    return tuple(sorted(k for k in wanted if 0 <= k < frames))


def split_even(total: int, parts: int) -> list[int]:
    """``total`` frames in ``parts`` near-equal whole parts, longer ones first."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
