"""The local generator's scene table (``composer/backends/local/scenes.py``) against the code that reads it.

Every kind names a painter and a sound texture that exist, its prompt words pick it, and the
world it makes has exactly the elements its row lists (a new row needs no code beyond a painter).
"""

from __future__ import annotations

import numpy as np
import pytest

from composer.backends.local.audio import TEXTURES, ambient_audio
from composer.backends.local.paint import PAINTERS
from composer.backends.local.scenes import KINDS, SCENES, scene, scene_kind
from composer.backends.local.state import ClipState, new_state
from composer.backends.local.world import World


def test_every_kind_names_a_painter_and_a_texture_that_exist() -> None:
    assert KINDS[-1] == "abstract" and set(KINDS) == set(SCENES)
    for kind in SCENES.values():
        assert kind.painter in PAINTERS, kind.name
        assert kind.sound.texture in TEXTURES, kind.name
        assert len(kind.palette) == 3 and all(c.startswith("#") and len(c) == 7 for c in kind.palette)
    with pytest.raises(ValueError, match="not a scene kind"):
        scene("volcanic")


def test_each_kinds_words_pick_it() -> None:
    for kind in SCENES.values():
        for word in kind.words:
            assert scene_kind(f"a view of {word}") == kind.name, word


@pytest.mark.parametrize("name", KINDS)
def test_a_world_has_the_elements_its_row_lists(name: str) -> None:
    kind = SCENES[name]
    world = World(ClipState(new_state(name, "static", 3, 96, 64, "24", 2)), None)
    assert [len(p.x) for p in world.particles] == [p.count for p in kind.particles]
    assert (0 if world.birds is None else len(world.birds)) == (kind.flock.count if kind.flock else 0)
    assert len(world.cars) == len(kind.traffic)
    assert len(world.clouds) == kind.clouds
    assert (0 if world.waves is None else len(world.waves)) == kind.waves
    audio = ambient_audio(name, 3, 0, 4000)
    assert audio.shape == (4000, 2) and 0 < float(np.abs(audio).max()) < 0.5


def test_over_an_image_layout_bound_elements_are_left_out() -> None:
    image = np.full((64, 96, 3), 128, np.uint8)
    for name in ("city", "sea"):
        state = new_state(name, "static", 3, 96, 64, "24", 2, image={"path": "x", "sha256": "y"})
        world = World(ClipState(state), image)
        assert world.cars == [] and world.waves is None
