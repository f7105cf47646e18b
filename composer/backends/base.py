"""The backend interface and the data every backend declares about itself.

What lives here: :class:`Capabilities` (durations, extension rules, sizes, image support,
prices: data the planner reads), :class:`GenerationRequest` (the canonical request a take
is keyed by), :class:`ClipInfo` (what a backend reports about a clip it wrote) and the
:class:`Backend` protocol. What does not: any protocol (HTTP, local rendering), retries or
caching; those belong to the backend modules and to ``jobs/``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field

from composer.models import Frozen
from composer.storyboard.model import KNOBS

Size = tuple[int, int]


class Capabilities(Frozen):
    """What a backend can make, as data. Durations are seconds."""

    name: str
    base_durations_s: tuple[float, ...] = Field(description="Durations a fresh generation may have.")
    extension_step_s: float | None = Field(
        None, description="Seconds each extension adds; None: no extension."
    )
    extendable_base_durations_s: tuple[float, ...] | None = Field(
        None, description="Base durations an extension chain may start from (None: any base)."
    )
    max_extensions: int = 0
    max_total_s: float = Field(description="Longest clip an extension chain may reach.")
    native_fps: str | None = Field(
        None, description="Frame rate of generated clips; None: any requested rate."
    )
    resolutions: tuple[Size, ...] | None = Field(None, description="Sizes it generates; None: any size.")
    extension_resolutions: tuple[Size, ...] | None = Field(
        None, description="Sizes extension accepts; None: as resolutions."
    )
    first_frame: bool = True
    last_frame: bool = False
    max_reference_images: int = 0
    audio: bool = True
    models: dict[str, str] = Field(default_factory=dict, description="Aliases such as 'fast' -> model id.")
    price_per_s: dict[str, float] = Field(
        default_factory=dict, description="USD per generated second, by model id."
    )
    needs_key: bool = False
    requests_per_minute: int | None = Field(
        None, description="Create requests the service allows per minute (None: no known limit)."
    )
    poll_interval_s: float = Field(
        5.0, description="First wait before polling a submitted operation; backs off from there."
    )
    style_strength: bool = Field(
        False, description="Takes the style_strength knob (how closely the take keeps its image)."
    )
    motion_intensity: bool = Field(
        False, description="Takes the motion_intensity knob (how much the camera and elements move)."
    )

    def resolve_model(self, model: str) -> str:
        return self.models.get(model, model)

    def takes_knob(self, name: str) -> bool:
        """Whether requests to this backend carry the image-guidance knob ``name`` (see KNOBS)."""
        if name not in KNOBS:
            raise ValueError(f"unknown knob {name!r}; the knobs are {', '.join(KNOBS)}")
        return bool(getattr(self, name))

    def with_prices(self, prices: Mapping[str, float] | None) -> Capabilities:
        """These capabilities with ``prices`` (USD per second by model id or alias) laid over the
        list prices; where two names stand for one model, the last one written wins."""
        if not prices:
            return self
        resolved = {self.resolve_model(k): float(v) for k, v in prices.items()}
        return self.model_copy(update={"price_per_s": {**self.price_per_s, **resolved}})

    @property
    def longest_clip_s(self) -> float:
        """The longest single clip one chain (base plus extensions) can reach."""
        longest_base = max(self.base_durations_s)
        if self.extension_step_s is None or self.max_extensions == 0:
            return longest_base
        starts = self.extendable_base_durations_s or self.base_durations_s
        chain = max(starts) + self.extension_step_s * self.max_extensions
        return max(longest_base, min(chain, self.max_total_s))


class ImageRef(Frozen):
    """A first-frame image: a file from the storyboard, or a frame of an earlier take."""

    sha256: str | None = None
    take: str | None = Field(None, description="Key of the take the frame comes from.")
    frame: int | None = Field(None, description="Index of that frame in the take.")


class GenerationRequest(Frozen):
    """Everything that decides what a backend makes; its hash is the take's cache key."""

    backend: str
    model: str
    kind: Literal["generate", "extend"]
    prompt: str
    negative_prompt: str | None = None
    camera: str | None = None
    duration_s: float = Field(description="Base duration, or seconds added by an extension.")
    width: int
    height: int
    fps: str
    seed: int
    audio: bool = True
    first_frame: ImageRef | None = None
    parent: str | None = Field(None, description="Key of the take being extended.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Backend-specific knobs (local: drift)."
    )
    style_strength: float | None = Field(
        None, description="Sent to the backend (one that takes it); None: not sent, its default."
    )
    motion_intensity: float | None = Field(
        None, description="Sent to the backend (one that takes it); None: not sent, its default."
    )

    def key(self) -> str:
        data = self.model_dump(mode="json")
        # An unset knob is left out, so a request without knobs keeps the key it had before
        # knobs existed (and the cache keeps its takes); a set one changes the key.
        for name in KNOBS:
            if data[name] is None:
                del data[name]
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def knobs(self) -> dict[str, float]:
        """The knobs this request carries (those not None)."""
        return {name: value for name in KNOBS if (value := getattr(self, name)) is not None}


class ClipInfo(Frozen):
    """What a backend reports about a clip it has written."""

    frames: int
    fps: str
    width: int
    height: int
    has_audio: bool
    duration_s: float
    cost_usd: float = 0.0
    state: dict[str, Any] = Field(
        default_factory=dict, description="Backend state needed to continue this clip."
    )


class TakeInput(Frozen):
    """Files a request needs at run time (never part of its key)."""

    first_frame_path: Path | None = None
    first_frame_state: dict[str, Any] | None = Field(
        None, description="Backend state of the take the frame came from."
    )
    parent_path: Path | None = None
    parent_state: dict[str, Any] | None = None


class Backend(Protocol):
    """One small interface; the job runner holds the policy, the backend the protocol."""

    capabilities: Capabilities

    def generate(self, request: GenerationRequest, inputs: TakeInput, dest: Path) -> ClipInfo:
        """Make a fresh clip for ``request`` and write it to ``dest`` (an .mp4 path)."""
        ...

    def extend(self, request: GenerationRequest, inputs: TakeInput, dest: Path) -> ClipInfo:
        """Extend the parent clip; ``dest`` receives the whole lengthened clip."""
        ...

    def close(self) -> None: ...
