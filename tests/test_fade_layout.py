"""The one fade layout (``composer/plan/timing.py``): what the planner, the normalisation and
the assembly all read. Pure arithmetic, checked by hand on small chains and by properties."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from composer.plan import timing
from composer.plan.timing import LegLayout


def test_a_chain_of_three_by_hand() -> None:
    laid = timing.layout([60, 66, 50], [12, 0])
    assert laid.legs == (
        LegLayout(frames=60, fade_in=0, fade_out=12, at=0),
        LegLayout(frames=66, fade_in=12, fade_out=0, at=48),
        LegLayout(frames=50, fade_in=0, fade_out=0, at=114),
    )
    assert laid.frames == 164 and laid.offsets == (48, 114)
    first, middle, last = laid.legs
    assert first.keyframes == (0, 48) and first.blends == ((48, 12),)
    assert middle.keyframes == (0, 12) and middle.blends == ((0, 12),)
    assert last.keyframes == (0,) and last.blends == ()
    # A take skipping one frame: the leg's keyframes shifted, then the first frame after it.
    assert middle.take_keyframes(1) == (1, 13, 67)


def test_an_odd_fade_is_centred_with_the_extra_frame_after_the_boundary() -> None:
    laid = timing.layout_nominal([40, 30, 20], [7, 6])
    assert [(leg.lead, leg.nominal, leg.tail) for leg in laid.legs] == [(0, 40, 4), (3, 30, 3), (3, 20, 0)]
    assert [leg.frames for leg in laid.legs] == [44, 36, 23]
    assert laid.frames == 90


def test_a_fade_longer_than_a_leg_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit legs of 10 and 30 frames"):
        timing.layout([10, 30], [12])
    with pytest.raises(ValueError, match="one join between each pair"):
        timing.layout([10, 30], [])


@st.composite
def chains(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    nominal = draw(st.lists(st.integers(1, 400), min_size=1, max_size=8))
    fades = [draw(st.integers(0, min(a, b))) for a, b in itertools.pairwise(nominal)]
    return nominal, [
        timing.fitting_fade(f, a, b) for f, a, b in zip(fades, nominal, nominal[1:], strict=False)
    ]


@given(chains())
def test_every_layout_is_exact(chain: tuple[list[int], list[int]]) -> None:
    nominal, fades = chain
    laid = timing.layout_nominal(nominal, fades)
    assert laid == timing.layout([leg.frames for leg in laid.legs], fades)  # both ways agree
    assert laid.frames == sum(nominal) == timing.joined_length([leg.frames for leg in laid.legs], fades)
    centre = 0
    for i, leg in enumerate(laid.legs):
        assert leg.nominal == nominal[i] and leg.frames == leg.lead + leg.nominal + leg.tail
        assert leg.at + leg.lead == centre  # its own share starts at the centre of the join before it
        centre += leg.nominal
        if i + 1 < len(laid.legs):
            nxt = laid.legs[i + 1]
            assert leg.fade_out == nxt.fade_in == fades[i]
            assert nxt.at == leg.at + leg.frames - leg.fade_out  # the fade is where both overlap
        # The two crossfades never overlap, so a body can always be copied between them.
        assert leg.fade_in + leg.fade_out <= leg.frames
        keys = leg.keyframes
        assert keys[0] == 0 and all(0 <= k < leg.frames for k in keys) and list(keys) == sorted(set(keys))
        assert leg.fade_in in keys or leg.fade_in == leg.frames
        assert (leg.frames - leg.fade_out) in keys or leg.fade_out == 0
        assert sum(frames for _, frames in leg.blends) == leg.fade_in + leg.fade_out
        assert leg.take_keyframes(3) == (*(3 + k for k in keys), 3 + leg.frames)
