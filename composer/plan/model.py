"""The plan: outputs -> segments -> chunks, in whole frames. ``plan.json`` is this model.

A plan holds everything a render needs without the storyboard: prompts, seeds, images
(absolute paths and hashes), sizes, exact frame counts, join kinds and the chunks each
segment is made of. What does not live here: how the plan is computed (``planner.py``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from composer.backends.base import Capabilities, Size
from composer.models import Frozen
from composer.plan import timing
from composer.storyboard.model import KNOBS, ContinuitySettings

PLAN_VERSION = 1


class Chunk(Frozen):
    """One backend call: a fresh generation, or an extension of the previous chunk."""

    index: int
    kind: Literal["generate", "extend"]
    duration_s: float = Field(description="Seconds this call adds.")
    total_s: float = Field(description="Length of the clip after this call.")


class SourceImage(Frozen):
    path: str
    sha256: str


class Continuation(Frozen):
    """This segment starts from a frame of an earlier segment's take."""

    segment: str
    frame: int


class Segment(Frozen):
    """About ``segment_s`` of one scene: one take chain, trimmed to ``clip_frames``."""

    id: str = Field(description="Stable name, e.g. 'o1-s2'.")
    output: int
    scene_id: str
    scene_index: int
    part: int = Field(description="Position of this segment within its scene (0-based).")
    timeline_start: int = Field(
        description="Frame where this segment's own time starts, on the whole timeline."
    )
    nominal_frames: int = Field(description="Frames this segment owns in its output (between join centres).")
    lead_frames: int = Field(description="Extra frames before, overlapped by the incoming crossfade.")
    tail_frames: int = Field(description="Extra frames after, overlapped by the outgoing crossfade.")
    clip_frames: int = Field(description="Frames used from the take: lead + nominal + tail.")
    take_offset: int = Field(
        0, description="Frames skipped at the start of the take (a continued frame shown already)."
    )
    prompt: str
    negative_prompt: str | None = None
    camera: str | None = None
    seed: int
    image: SourceImage | None = None
    continues: Continuation | None = None
    generate_size: Size
    chunks: tuple[Chunk, ...]
    chunk_seeds: tuple[int, ...] = Field(
        (), description="A seed per chunk (a final render reuses the ones a preview approved); empty: seed."
    )
    style_strength: float | None = Field(
        None,
        description="As the storyboard asks (scene, else generation); sent only if the backend takes it.",
    )
    motion_intensity: float | None = Field(
        None,
        description="As the storyboard asks (scene, else generation); sent only if the backend takes it.",
    )

    def knobs(self) -> dict[str, float]:
        """The image-guidance knobs the storyboard set for this segment."""
        return {name: value for name in KNOBS if (value := getattr(self, name)) is not None}


class Join(Frozen):
    kind: Literal["crossfade", "cut"]
    frames: int = Field(description="Crossfade length in frames (0 for a cut).")


class OutputPlan(Frozen):
    index: int
    name: str
    frames: int
    timeline_start: int
    segments: tuple[Segment, ...]
    joins: tuple[Join, ...] = Field(description="joins[k] sits between segments[k] and segments[k+1].")

    def layout(self) -> timing.Layout:
        """Each segment's leg in this output: fades, keyframes, blends, where it lands."""
        return timing.layout([s.clip_frames for s in self.segments], [j.frames for j in self.joins])


class OutputSpec(Frozen):
    width: int
    height: int
    fps: str
    frames: int
    crossfade_frames: int
    audio: bool


class GenerationSpec(Frozen):
    backend: str
    model: str
    model_id: str
    drift: float
    mode: Literal["render", "preview", "final"] = Field(
        "render", description="preview: fast model, smallest size; final: seeds approved in a preview."
    )
    fallback_model_id: str | None = Field(
        None,
        description="Model a permanently refused request falls back to (storyboard generation.fallback_model).",
    )


class StoryboardRef(Frozen):
    path: str
    sha256: str
    title: str


class Plan(Frozen):
    version: int = PLAN_VERSION
    composer_version: str
    storyboard: StoryboardRef
    output: OutputSpec
    generation: GenerationSpec
    capabilities: Capabilities
    timeline_frames: int = Field(
        description="Frames of the whole storyboard timeline after the remainder rule."
    )
    dropped_frames: int = Field(0, description="Frames left out by remainder: drop.")
    extended_frames: int = Field(0, description="Frames added to the last scene by remainder: extend.")
    outputs: tuple[OutputPlan, ...]
    continuity: ContinuitySettings = Field(default_factory=ContinuitySettings)
    notes: tuple[str, ...] = ()
    keep: tuple[str, ...] = Field(
        (), description="A final render of some segments only (--keep); empty: every segment is made."
    )

    @property
    def segments(self) -> list[Segment]:
        return [s for o in self.outputs for s in o.segments]

    def take_keyframes(self, segment: Segment) -> tuple[int, ...]:
        """Frames of ``segment``'s take that its output's assembly wants as IDR frames.

        A generator that encodes straight into the output encoding puts keyframes there, so
        the take is assembled by stream copy without being normalised first: the same layout
        the normalisation and the assembly read (:meth:`timing.LegLayout.take_keyframes`).
        """
        output = next(o for o in self.outputs if o.index == segment.output)
        index = next(i for i, s in enumerate(output.segments) if s.id == segment.id)
        return output.layout().legs[index].take_keyframes(segment.take_offset)

    def knobs_sent(self, segment: Segment) -> dict[str, float]:
        """The knobs of ``segment`` its requests carry: those the backend takes."""
        return {k: v for k, v in segment.knobs().items() if self.capabilities.takes_knob(k)}

    def knobs_not_sent(self, segment: Segment) -> dict[str, float]:
        """The knobs of ``segment`` the backend cannot take, so its requests leave them out."""
        return {k: v for k, v in segment.knobs().items() if not self.capabilities.takes_knob(k)}

    @property
    def api_calls(self) -> int:
        return sum(len(s.chunks) for s in self.segments)

    @property
    def generated_seconds(self) -> float:
        return sum(c.duration_s for s in self.segments for c in s.chunks)

    @property
    def estimated_cost_usd(self) -> float:
        price = self.capabilities.price_per_s.get(self.generation.model_id, 0.0)
        return round(price * self.generated_seconds, 2)
