"""Preview, then final (pure): a cheap pass to approve, then the paid pass that reuses what was approved.

* :func:`for_preview` turns a storyboard into its preview: the backend's fast model, at the
  smallest size it generates in the output's shape (the local backend: 640 px wide), outputs
  at that size too. Everything else (scenes, seeds, images, timing) stays, so the preview's
  segments are the final's segments.
* :func:`approved_seeds` reads, from a preview's report, the seed of every chunk of the
  attempt each segment kept (a regeneration changes the seeds from the chunk it began at).
* :func:`final_plan` lays those seeds over the final plan (the quality model, full size) and
  records which segments to make (``--keep``); it refuses a plan whose segments no longer
  match the preview's, and a kept segment that continues one that was not kept.

What does not live here: reading the preview's files (``pipeline.py``) or rendering.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from composer.backends.base import Capabilities, Size
from composer.decide import Attempt
from composer.errors import PlanError
from composer.plan.model import Plan, Segment
from composer.storyboard.model import Storyboard

#: Width of a preview on a backend that generates any size (the local one): small enough to be
#: quick, large enough to judge framing and drift.
PREVIEW_WIDTH = 640


def preview_size(wanted: Size, caps: Capabilities) -> Size:
    """The smallest size ``caps`` generates in the shape of ``wanted`` (landscape or portrait)."""
    width, height = wanted
    if caps.resolutions is None:
        if width <= PREVIEW_WIDTH:
            return wanted
        h = max(2, round(height * PREVIEW_WIDTH / width / 2) * 2)
        return PREVIEW_WIDTH, h
    landscape = width >= height
    shaped = [s for s in caps.resolutions if (s[0] >= s[1]) == landscape] or list(caps.resolutions)
    return min(shaped, key=lambda s: (s[0] * s[1], s))


def for_preview(storyboard: Storyboard, caps: Capabilities) -> Storyboard:
    """The storyboard as a preview renders it: the fast model, the smallest size."""
    size = preview_size(storyboard.output.resolution, caps)
    return storyboard.model_copy(
        update={
            "generation": storyboard.generation.model_copy(update={"model": "fast"}),
            "output": storyboard.output.model_copy(update={"resolution": size}),
        }
    )


def chain_seeds(planned: int, chunks: int, attempts: Sequence[Attempt], kept: int) -> tuple[int, ...]:
    """The seed of each chunk of attempt ``kept``: the runner re-seeds from an attempt's
    ``from_chunk`` on, and each attempt builds on the one before it."""
    seeds = [planned] * chunks
    for attempt in attempts[1:kept]:
        seeds[attempt.from_chunk :] = [attempt.seed] * (chunks - attempt.from_chunk)
    return tuple(seeds)


def approved_seeds(
    preview: Plan, kept: dict[str, tuple[int, Sequence[Attempt]]]
) -> dict[str, tuple[int, ...]]:
    """Segment id -> the chunk seeds of the attempt it kept, from ``{id: (kept attempt, attempts)}``."""
    out = {}
    for seg in preview.segments:
        if seg.id in kept:
            number, attempts = kept[seg.id]
            base = list(seg.chunk_seeds) or [seg.seed]
            out[seg.id] = chain_seeds(base[0], len(seg.chunks), attempts, number)
    return out


def final_plan(
    plan: Plan, preview: Plan, seeds: dict[str, tuple[int, ...]], keep: Iterable[str] = ()
) -> Plan:
    """``plan`` (the quality model, full size) with the preview's approved seeds and ``keep``."""
    ours = {s.id: s for s in plan.segments}
    theirs = {s.id: s for s in preview.segments}
    changed = sorted(
        set(ours) ^ set(theirs)
        | {i for i in ours.keys() & theirs.keys() if _shape(ours[i]) != _shape(theirs[i])}
    )
    if changed:
        raise PlanError(
            f"the storyboard (or backend) changed since the preview: segment(s) {', '.join(changed)} "
            "differ; render a new preview, or render without --final"
        )
    wanted = list(dict.fromkeys(keep))
    unknown = [k for k in wanted if k not in ours]
    if unknown:
        raise PlanError(
            f"--keep {' '.join(unknown)}: no such segment; the preview has {', '.join(ours)} "
            "(see its report.html or `composer plan`)"
        )
    for seg_id in wanted:
        parent = ours[seg_id].continues
        if parent is not None and parent.segment not in wanted:
            raise PlanError(
                f"{seg_id} continues {parent.segment} (it starts from that take's frame); keep both, "
                f"e.g. --keep {parent.segment} {seg_id}"
            )
    missing = [i for i in ours if i not in seeds]
    if missing:
        raise PlanError(
            f"the preview's report has no approved take for {', '.join(missing)}; "
            "finish the preview render first"
        )
    outputs = tuple(
        output.model_copy(
            update={
                "segments": tuple(s.model_copy(update={"chunk_seeds": seeds[s.id]}) for s in output.segments)
            }
        )
        for output in plan.outputs
    )
    generation = plan.generation.model_copy(update={"mode": "final"})
    return plan.model_copy(update={"outputs": outputs, "generation": generation, "keep": tuple(wanted)})


def _shape(segment: Segment) -> tuple[str, int, int, int]:
    # What must match for a preview's seed to mean the same shot: scene, place, length, chunks.
    return (segment.scene_id, segment.part, segment.nominal_frames, len(segment.chunks))
