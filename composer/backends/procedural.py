"""The local generator's public functions under their old module name.

The generator lives in the package ``composer.backends.local`` (``scenes.py``, ``state.py``,
``paint.py``, ``world.py``, ``render.py``, ``audio.py``); this module only gathers the names
that tests, benchmarks and other code import from ``composer.backends.procedural``, so those
imports keep working. New code imports from the package's modules.
"""

from __future__ import annotations

from composer.backends.local.audio import ambient_audio
from composer.backends.local.render import Renderer
from composer.backends.local.scenes import KINDS, SCENES, scene_kind
from composer.backends.local.state import (
    DEPART_MAX,
    DEPART_RATE,
    DRIFT_COMPONENTS,
    STATE_VERSION,
    CameraMove,
    ClipState,
    continue_state,
    extend_state,
    motion_factor,
    new_state,
    parse_camera,
)
from composer.backends.local.world import World
from composer.backends.local.world import painted_world as _painted_world

__all__ = [
    "DEPART_MAX",
    "DEPART_RATE",
    "DRIFT_COMPONENTS",
    "KINDS",
    "SCENES",
    "STATE_VERSION",
    "CameraMove",
    "ClipState",
    "Renderer",
    "World",
    "_painted_world",
    "ambient_audio",
    "continue_state",
    "extend_state",
    "motion_factor",
    "new_state",
    "parse_camera",
    "scene_kind",
]
