"""API takes are normalised step by step (issue 19): each extension step's new frames are
encoded as the step lands, and the chain's end only encodes the last part and joins them.

Real renders through the gemini protocol of the simulator on loopback (a 8 s + 7 s chain per
segment, rendered at 1280x720 by the simulator, composed at 160x96), real ffmpeg.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from composer import ffmpeg
from composer.compose.normalize import NormSpec, chain_parts, normalize_take, part_spec, step_end
from composer.jobs.cache import TakeCache
from composer.jobs.remote import JobSettings
from composer.pipeline import render
from tests.support import TINY_API_BOARD, StartSim, write_board

FAST = JobSettings(poll_interval_s=0.05, poll_max_s=0.2, retry_base_s=0.05, retry_max_s=0.5)


def test_a_step_never_ends_inside_a_crossfade_edge() -> None:
    spec = NormSpec(160, 96, 24, 0, 246, (0, 234), edges=((234, 12),))  # type: ignore[arg-type]
    assert step_end(spec, 192) == 192
    assert step_end(spec, 240) == 234  # would end inside the fade-out's frames: stops before them
    assert step_end(spec, 400) == 246
    inner = part_spec(spec, 192, 246)
    assert (inner.start, inner.frames, inner.keyframes, inner.edges) == (192, 54, (0, 42), ((42, 12),))


@pytest.mark.slow
def test_each_extension_step_is_normalised_as_it_lands_and_joined_frame_exact(
    keys: dict[str, str], start_sim: StartSim, tmp_path: Path
) -> None:
    board = copy.deepcopy(TINY_API_BOARD)
    board["title"] = "stepwise"
    board["output"]["length_s"] = 20
    board["generation"]["segment_s"] = 10
    for scene in board["scenes"]:
        scene["duration_s"] = 10
    path = write_board(tmp_path, board)
    # Each operation lasts at least 2 s: the step's part is written while the next step runs.
    sim = start_sim(latency_s=2.0, seed=3)
    result = render(path, tmp_path / "a", backend="gemini", base_url=sim.base_url, jobs=FAST)
    manifest = result.manifest
    [output] = manifest.outputs
    assert output.frames == 480 and output.method == "smart"
    assert ffmpeg.decode(Path(output.path)).frames == 480

    cache = TakeCache()
    plan = result.plan
    written: dict[Path, int] = {}
    for index, segment in enumerate(plan.outputs[0].segments):
        steps = [Path(t.path) for t in manifest.takes if t.segment == segment.id]
        assert len(steps) == 2
        first, last = steps
        spec = NormSpec.for_leg(160, 96, 24, segment.take_offset, plan.outputs[0].layout().legs[index])  # type: ignore[arg-type]
        parts = chain_parts(last, spec, [first])
        assert [(p[1], p[2]) for p in parts] == [(0, 192), (192, spec.frames)]
        # The first step's part is beside its take, written before the last step was downloaded.
        [part] = [p for p in first.parent.glob("take.norm-*.mp4")]
        assert ffmpeg.packets(part).frames == 192
        take = cache.get(next(t.key for t in manifest.takes if t.path == str(last)))
        assert take is not None
        assert part.stat().st_mtime < last.stat().st_mtime
        # The leg's normalised file is the parts joined by stream copy: it opens with the first
        # part's very packets, has an IDR where the last part starts, and the leg's frames.
        joined = normalize_take(last, spec)
        assert not joined.reused and joined.encoded_frames == 0  # found done, not encoded here
        assert joined.frames == spec.frames and ffmpeg.packets(joined.path).frames == spec.frames
        assert ffmpeg.opens(part, joined.path)
        assert 192 in joined.cut_points
        assert {(e.first, e.frames) for e in joined.edges} == set(spec.edges)
        # The same pictures as normalising the last take whole (a one-frame slip would show).
        whole = normalize_take(last, spec, cache_dir=tmp_path / "whole")
        assert whole.encoded_frames == spec.frames
        scores = ffmpeg.compare_video(joined.path, whole.path)
        assert len(scores) == spec.frames
        assert min(s.psnr for s in scores) > 35
        written.update({p: p.stat().st_mtime_ns for p in (part, joined.path)})

    # A second render of the same board finds every part and joined file done.
    again = render(path, tmp_path / "b", backend="gemini", base_url=sim.base_url, jobs=FAST)
    assert again.manifest.generated == 0
    assert again.manifest.outputs[0].frames == 480
    assert {p: p.stat().st_mtime_ns for p in written} == written
