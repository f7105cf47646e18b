"""Storyboard format v1: the pydantic models a storyboard file is read into.

What lives here: the fields, their defaults, and the checks one field (or one model) can
make on its own. What does not: reading files, locating errors by line, checking that
images exist, or planning (see ``load.py`` and ``plan/``). Models are frozen and reject
unknown keys, so a typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Annotated, Literal

from pydantic import (
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)

from composer.models import Frozen
from composer.timecode import fps_text, parse_fps

FORMAT_VERSION = 1

_RESOLUTION_PRESETS = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
_RESOLUTION_RE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")
_MAX_SIDE = 7680


def duplicate_ids(ids: list[str]) -> list[tuple[int, str]]:
    """(position, id) of every id that appeared earlier in ``ids``."""
    seen: set[str] = set()
    repeats = []
    for index, item in enumerate(ids):
        if item in seen:
            repeats.append((index, item))
        seen.add(item)
    return repeats


def duplicate_message(scene_id: str) -> str:
    return f"duplicate scene id {scene_id!r}; every scene needs its own id"


#: The image-guidance knobs: a scene's own value, else ``generation:``'s; unset: the backend's default.
KNOBS = ("style_strength", "motion_intensity")

_STYLE_STRENGTH_HELP = (
    "How closely the video keeps the reference image's colours and composition, 0.0-1.0: "
    "0.6-0.7 for product and architecture walkthroughs, 0.8-0.9 for brand content, lower when "
    "large motion is wanted (above about 0.85 motion becomes constrained). Unset: the backend's default."
)
_MOTION_INTENSITY_HELP = (
    "How much the camera and the things in the picture move, 0.0 (nearly still) to 1.0 (as much "
    "as the model makes). Unset: the backend's default."
)
_KNOB_HINTS = {
    "style_strength": "0.6-0.7 suits product and architecture walkthroughs, 0.8-0.9 brand content",
    "motion_intensity": "0.0 is nearly still, 1.0 as much motion as the model makes",
}


def check_knob(name: str, value: object) -> object:
    """Refuse what is not a number from 0.0 to 1.0 for knob ``name``, with the range and a hint.

    Runs before pydantic's own checks, so ``true`` (which pydantic would read as 1.0), text and
    out-of-range numbers all get this message.
    """
    if value is None:
        return value
    hint = _KNOB_HINTS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number from 0.0 to 1.0 (got {value!r}); {hint}")
    if not 0.0 <= float(value) <= 1.0:  # NaN fails this too
        raise ValueError(f"{value!r} is outside 0.0-1.0; {hint}")
    return float(value)


class _Model(Frozen):
    model_config = ConfigDict(str_strip_whitespace=True)


def _parse_resolution(value: object) -> tuple[int, int]:
    if isinstance(value, str):
        preset = _RESOLUTION_PRESETS.get(value.strip().lower())
        if preset:
            return preset
        match = _RESOLUTION_RE.match(value)
        if not match:
            raise ValueError("expected WIDTHxHEIGHT such as 1280x720 (or 480p, 720p, 1080p)")
        width, height = int(match.group(1)), int(match.group(2))
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        width, height = (int(v) for v in value)
    else:
        raise ValueError("expected WIDTHxHEIGHT such as 1280x720 (or 480p, 720p, 1080p)")
    if width <= 0 or height <= 0:
        raise ValueError(f"{width}x{height} has a zero side; use a size such as 1280x720")
    if width % 2 or height % 2:
        raise ValueError(
            f"{width}x{height} has an odd side; H.264 in yuv420p needs even sizes "
            f"(try {width + width % 2}x{height + height % 2})"
        )
    if width > _MAX_SIDE or height > _MAX_SIDE:
        raise ValueError(f"{width}x{height} is larger than {_MAX_SIDE} pixels on a side")
    return width, height


Resolution = Annotated[
    tuple[int, int],
    PlainSerializer(lambda v: f"{v[0]}x{v[1]}", return_type=str),
]
Fps = Annotated[Fraction, PlainSerializer(fps_text, return_type=str)]


class OutputSettings(_Model):
    """How the final videos look: length, size, rate, crossfade, audio."""

    length_s: float = Field(60.0, gt=0, le=3600, description="Length of every output video, seconds.")
    resolution: Resolution = Field(
        (1280, 720),
        description="Output size as WIDTHxHEIGHT (even sides) or 480p / 720p / 1080p.",
        json_schema_extra={"type": "string", "examples": ["1280x720", "1080p"]},
    )
    fps: Fps = Field(
        Fraction(24),
        description="Frames per second: a number (24, 29.97) or a ratio such as 30000/1001.",
        json_schema_extra={"type": ["number", "string"], "examples": [24, "30000/1001"]},
    )
    crossfade_s: float = Field(
        1.0, ge=0, le=10, description="Crossfade length at every join, seconds (0: cuts)."
    )
    audio: bool = Field(True, description="Write an audio track (AAC 48 kHz stereo).")
    remainder: Literal["extend", "drop", "error"] = Field(
        "extend",
        description=(
            "When the scenes do not add up to a whole number of outputs: 'extend' lengthens "
            "the last scene to fill the last output, 'drop' leaves the partial output out, "
            "'error' refuses the storyboard."
        ),
    )

    @field_validator("resolution", mode="before")
    @classmethod
    def _resolution(cls, value: object) -> tuple[int, int]:
        return _parse_resolution(value)

    @field_validator("fps", mode="before")
    @classmethod
    def _fps(cls, value: object) -> Fraction:
        if isinstance(value, bool) or not isinstance(value, (int, float, str, Fraction)):
            raise ValueError("expected a frame rate such as 24, 29.97 or 30000/1001")
        try:
            fps = parse_fps(value)
        except (ValueError, ZeroDivisionError):
            raise ValueError(
                f"{value!r} is not a frame rate; use a number above 0 such as 24 or 30000/1001"
            ) from None
        if fps > 240:
            raise ValueError(f"{value} fps is above the 240 fps limit")
        return fps


class GenerationSettings(_Model):
    """Which backend makes the clips, and how."""

    backend: str = Field("local", min_length=1, description="local, gemini, vertex, openai or relay.")
    model: str = Field(
        "fast", min_length=1, description="'fast', 'quality', or a model id the backend knows."
    )
    segment_s: float = Field(20.0, gt=0, le=600, description="Target segment length, seconds.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Base seed; scenes may override it.")
    drift: float = Field(
        1.0,
        ge=0,
        le=10,
        description="How strongly the local generator drifts (0: none). API backends ignore it.",
    )
    fallback_model: str | None = Field(
        None,
        min_length=1,
        description=(
            "When the service refuses the model permanently (an unknown or retired id, a request "
            "that model will not take), make the take with this one instead ('fast' or a model id). "
            "Unset: no fallback. Every fallback is recorded in the manifest and the report."
        ),
    )
    style_strength: float | None = Field(None, ge=0, le=1, description=_STYLE_STRENGTH_HELP)
    motion_intensity: float | None = Field(None, ge=0, le=1, description=_MOTION_INTENSITY_HELP)

    @field_validator(*KNOBS, mode="before")
    @classmethod
    def _knob(cls, value: object, info: ValidationInfo) -> object:
        return check_knob(str(info.field_name), value)


class ContinuitySettings(_Model):
    """Drift and seam checks, and what to do when they fail. Unset levels use the defaults
    documented in docs/analysis.md (measured on footage with defects of known size)."""

    max_attempts: int = Field(
        3, ge=1, le=10, description="Attempts per segment before the best is kept and flagged."
    )
    regenerate: bool = Field(True, description="False: only report, never regenerate.")
    brightness_warn: float | None = Field(
        None, gt=0, description="|ΔL*| of the still background against the anchor."
    )
    brightness_regenerate: float | None = Field(None, gt=0)
    saturation_warn: float | None = Field(
        None, gt=0, description="|ΔC*/C*|: colours grown stronger or weaker."
    )
    saturation_regenerate: float | None = Field(None, gt=0)
    white_balance_warn: float | None = Field(None, gt=0, description="|(Δa*, Δb*)|: a colour cast.")
    white_balance_regenerate: float | None = Field(None, gt=0)
    hist_sim_warn: float | None = Field(None, gt=0, le=1, description="Colour similarity below this warns.")
    hist_sim_regenerate: float | None = Field(None, gt=0, le=1)
    ncc_warn: float | None = Field(None, gt=-1, le=1, description="Structural similarity below this warns.")
    ncc_regenerate: float | None = Field(None, gt=-1, le=1)
    changed_area_warn: float | None = Field(
        None, gt=0, le=1, description="Share of the still background turned into other content."
    )
    changed_area_regenerate: float | None = Field(None, gt=0, le=1)
    sharpness_warn: float | None = Field(
        None, gt=0, le=1, description="Share of the fine detail lost (softening)."
    )
    sharpness_regenerate: float | None = Field(None, gt=0, le=1)
    camera_warn: float | None = Field(
        None, gt=0, description="Camera translation the shot's camera does not ask for, % of width."
    )
    camera_regenerate: float | None = Field(None, gt=0)
    zoom_warn: float | None = Field(None, gt=0, description="Zoom the shot's camera does not ask for, %.")
    zoom_regenerate: float | None = Field(None, gt=0)
    roll_warn: float | None = Field(
        None, gt=0, description="Roll the shot's camera does not ask for, degrees."
    )
    roll_regenerate: float | None = Field(None, gt=0)
    seam_warn_z: float | None = Field(None, gt=0, description="Robust z-score at a join that warns.")
    seam_regenerate_z: float | None = Field(None, gt=0)

    def overrides(self) -> dict[str, float]:
        """The thresholds that were set, without the policy fields."""
        skip = {"max_attempts", "regenerate"}
        return {k: v for k, v in self.model_dump().items() if k not in skip and v is not None}


class Scene(_Model):
    """One scene: a prompt held for ``duration_s`` seconds."""

    id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Unique name: letters, digits, '_', '.', '-'.",
    )
    prompt: str = Field(min_length=1, max_length=4000, description="What the scene shows.")
    duration_s: float = Field(gt=0, le=3600, description="Scene length on the timeline, seconds.")
    image: str | None = Field(
        None, description="First-frame reference image, relative to the storyboard file."
    )
    camera: str | None = Field(
        None, description="Camera move in words: static, pan left/right, tilt up/down, zoom in/out."
    )
    negative_prompt: str | None = Field(None, description="What the scene must not show.")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Overrides generation.seed.")
    transition_out: Literal["crossfade", "cut"] = Field(
        "crossfade", description="How this scene hands over to the next one."
    )
    style_strength: float | None = Field(
        None, ge=0, le=1, description=f"{_STYLE_STRENGTH_HELP} Overrides generation.style_strength."
    )
    motion_intensity: float | None = Field(
        None, ge=0, le=1, description=f"{_MOTION_INTENSITY_HELP} Overrides generation.motion_intensity."
    )

    @field_validator(*KNOBS, mode="before")
    @classmethod
    def _knob(cls, value: object, info: ValidationInfo) -> object:
        return check_knob(str(info.field_name), value)

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt(cls, value: object) -> object:
        # Before the length check, so an empty or blank prompt gets this message rather
        # than "String should have at least 1 character".
        if isinstance(value, str) and not value.strip():
            raise ValueError("the prompt is empty; describe what the scene shows")
        return value


class Storyboard(_Model):
    """A whole storyboard file (format version 1)."""

    version: Literal[1] = Field(1, description="Storyboard format version; 1 is the only one.")
    title: str = Field("", max_length=200, description="A name for the piece.")
    output: OutputSettings = Field(default_factory=OutputSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    continuity: ContinuitySettings = Field(default_factory=ContinuitySettings)
    style: str = Field("", max_length=1000, description="Added to the end of every prompt.")
    scenes: list[Scene] = Field(min_length=1, description="The scenes, in order.")

    @model_validator(mode="after")
    def _unique_ids(self) -> Storyboard:
        for index, scene_id in duplicate_ids([s.id for s in self.scenes]):
            raise ValueError(f"scenes[{index}].id: {duplicate_message(scene_id)}")
        return self

    def prompt_for(self, scene: Scene) -> str:
        """The prompt sent to the backend: the scene's prompt, then the style line."""
        return f"{scene.prompt.rstrip()} {self.style}".strip() if self.style else scene.prompt

    def seed_for(self, index: int) -> int:
        """The seed of scene ``index``: its own, else the base seed plus its position."""
        scene = self.scenes[index]
        if scene.seed is not None:
            return scene.seed
        return (self.generation.seed + index) % 2**32

    def knobs_for(self, index: int) -> dict[str, float]:
        """The image-guidance knobs of scene ``index`` that are set: its own, else ``generation:``'s."""
        scene, knobs = self.scenes[index], {}
        for name in KNOBS:
            value = getattr(scene, name)
            value = getattr(self.generation, name) if value is None else value
            if value is not None:
                knobs[name] = float(value)
        return knobs

    def knob_field(self, index: int, name: str) -> str | None:
        """Where scene ``index``'s knob ``name`` was set (``scenes[i].name`` or ``generation.name``)."""
        if getattr(self.scenes[index], name) is not None:
            return f"scenes[{index}].{name}"
        return f"generation.{name}" if getattr(self.generation, name) is not None else None
