"""Property tests of the planner: every output is exactly length_s * fps frames, whatever the storyboard."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from composer.backends.base import Capabilities
from composer.backends.local import CAPABILITIES
from composer.errors import PlanError
from composer.plan import timing
from composer.plan.planner import make_plan, plan_chunks
from composer.storyboard.model import Storyboard
from composer.timecode import to_frames

FPS = ["24", "25", "30", "30000/1001", "24000/1001", "60", "12", "50"]

NO_EXTENSION = CAPABILITIES.model_copy(
    update={
        "name": "short",
        "extension_step_s": None,
        "max_extensions": 0,
        "base_durations_s": (4.0, 6.0, 8.0),
    }
)


@st.composite
def storyboards(draw: st.DrawFn) -> Storyboard:
    fps = draw(st.sampled_from(FPS))
    fade = draw(st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.5, 2.0]))
    length = draw(st.sampled_from([10.0, 20.0, 30.0, 45.5, 60.0, 90.0]))
    segment = draw(st.sampled_from([5.0, 8.0, 12.5, 20.0, 30.0]))
    count = draw(st.integers(1, 7))
    scenes = []
    for i in range(count):
        duration = draw(
            st.floats(min_value=max(fade, 0.1) + 0.05, max_value=80.0, allow_nan=False).map(
                lambda x: round(x, 2)
            )
        )
        scenes.append(
            {
                "id": f"s{i}",
                "prompt": "waves",
                "duration_s": duration,
                "transition_out": draw(st.sampled_from(["crossfade", "crossfade", "cut"])),
            }
        )
    return Storyboard.model_validate(
        {
            "output": {
                "fps": fps,
                "crossfade_s": fade,
                "length_s": length,
                "remainder": draw(st.sampled_from(["extend", "drop"])),
            },
            "generation": {"segment_s": segment},
            "scenes": scenes,
        }
    )


def _check(storyboard: Storyboard, caps: Capabilities) -> None:
    try:
        plan = make_plan(storyboard, caps)
    except PlanError as exc:
        # Only refusals that point at a field the user can change are acceptable.
        assert exc.field, str(exc)
        assume(False)
        return
    fps = storyboard.output.fps
    length = to_frames(storyboard.output.length_s, fps)
    assert plan.timeline_frames % length == 0
    assert len(plan.outputs) == plan.timeline_frames // length
    cursor = 0
    segments = {s.id: s for s in plan.segments}
    for output in plan.outputs:
        assert output.frames == length
        clips = [s.clip_frames for s in output.segments]
        fades = [j.frames for j in output.joins]
        assert timing.joined_length(clips, fades) == length
        assert sum(s.nominal_frames for s in output.segments) == length
        for seg in output.segments:
            assert seg.timeline_start == cursor
            cursor += seg.nominal_frames
            assert seg.clip_frames == seg.lead_frames + seg.nominal_frames + seg.tail_frames
            # The chunks cover the clip the composition will use.
            assert Fraction(str(seg.chunks[-1].total_s)) * fps >= seg.take_offset + seg.clip_frames
            assert seg.chunks[-1].total_s <= caps.longest_clip_s
            if seg.continues:
                parent = segments[seg.continues.segment]
                assert parent.scene_id == seg.scene_id
                assert 0 <= seg.continues.frame < parent.clip_frames
        for k, join in enumerate(output.joins):
            left, right = output.segments[k], output.segments[k + 1]
            assert join.frames <= min(left.clip_frames, right.clip_frames)
            if (
                left.scene_id != right.scene_id
                and storyboard.scenes[left.scene_index].transition_out == "cut"
            ):
                assert join.kind == "cut"
        # The output's fade layout (what normalisation and assembly read) puts each segment's
        # handles where the planner put them, and its own share between the two join centres.
        for seg, leg in zip(output.segments, output.layout().legs, strict=True):
            assert (leg.frames, leg.lead, leg.tail) == (seg.clip_frames, seg.lead_frames, seg.tail_frames)
            assert output.timeline_start + leg.at + leg.lead == seg.timeline_start
            assert leg.fade_in + leg.fade_out <= leg.frames  # the two crossfades never overlap
            keys = plan.take_keyframes(seg)
            assert keys[0] == seg.take_offset and keys[-1] == seg.take_offset + seg.clip_frames
    # Segments never span scenes: each scene's frames are exactly the sum of its segments'.
    per_scene: dict[int, int] = {}
    for seg in plan.segments:
        per_scene[seg.scene_index] = per_scene.get(seg.scene_index, 0) + seg.nominal_frames
    assert sum(per_scene.values()) == plan.timeline_frames


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(storyboards())
def test_every_output_is_exact_with_extensions(storyboard: Storyboard) -> None:
    _check(storyboard, CAPABILITIES)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(storyboards())
def test_every_output_is_exact_without_extensions(storyboard: Storyboard) -> None:
    _check(storyboard, NO_EXTENSION)


def test_default_segment_is_8_plus_7_plus_7() -> None:
    chunks = plan_chunks(492, Fraction(24), CAPABILITIES)  # 20.5 s with handles
    assert [(c.kind, c.duration_s) for c in chunks] == [("generate", 8.0), ("extend", 7.0), ("extend", 7.0)]
    assert plan_chunks(96, Fraction(24), CAPABILITIES)[0].duration_s == 4.0


def test_sixty_seconds_at_24_fps_is_1440_frames() -> None:
    sb = Storyboard.model_validate({"scenes": [{"id": "a", "prompt": "sea", "duration_s": 60}]})
    plan = make_plan(sb, CAPABILITIES)
    assert [o.frames for o in plan.outputs] == [1440]
    assert len(plan.outputs[0].segments) == 3


def test_continuation_starts_where_the_crossfade_begins() -> None:
    sb = Storyboard.model_validate({"scenes": [{"id": "a", "prompt": "sea", "duration_s": 60}]})
    first, second, _ = make_plan(sb, CAPABILITIES).outputs[0].segments
    assert second.continues is not None and second.continues.segment == first.id
    # The fade starts 24 frames before the end of the first clip; the second clip's frame 0 is that moment.
    assert second.continues.frame == first.clip_frames - 24
    assert first.timeline_start + first.clip_frames - 24 == second.timeline_start - second.lead_frames


@pytest.mark.parametrize(
    ("remainder", "outputs", "note"),
    [("extend", 3, "lengthened by 30 s"), ("drop", 2, "left out")],
)
def test_remainder_rule(remainder: str, outputs: int, note: str) -> None:
    sb = Storyboard.model_validate(
        {"output": {"remainder": remainder}, "scenes": [{"id": "a", "prompt": "sea", "duration_s": 150}]}
    )
    plan = make_plan(sb, CAPABILITIES)
    assert len(plan.outputs) == outputs
    assert any(note in n for n in plan.notes)


def test_remainder_error_names_the_field() -> None:
    sb = Storyboard.model_validate(
        {"output": {"remainder": "error"}, "scenes": [{"id": "a", "prompt": "sea", "duration_s": 70}]}
    )
    with pytest.raises(PlanError) as info:
        make_plan(sb, CAPABILITIES)
    assert info.value.field == "output.remainder"
