"""Opt-in live tests against the real services: they cost money, so they run only when asked.

Each renders one 4-second take (the cheapest request the service accepts) through the real
API and checks it decodes. They run only with ``COMPOSER_LIVE_TESTS=1`` *and* the backend's
real key in the environment, e.g.::

    COMPOSER_LIVE_TESTS=1 GEMINI_API_KEY=... python -m pytest -q -m live tests/test_live.py

Everywhere else they are skipped with the reason shown (``-ra``), never silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from composer import ffmpeg
from composer.pipeline import render

BACKENDS = {
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "vertex": ("GOOGLE_CLOUD_PROJECT",),
    "openai": ("OPENAI_API_KEY",),
    "relay": ("COMPOSER_RELAY_API_KEY",),
}


@pytest.mark.live
@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_one_real_take(backend: str, tmp_path: Path) -> None:
    if os.environ.get("COMPOSER_LIVE_TESTS") != "1":
        pytest.skip("live test: set COMPOSER_LIVE_TESTS=1 and the backend's key to run it (it costs money)")
    if not any(os.environ.get(v) for v in BACKENDS[backend]):
        pytest.skip(f"live test: {' or '.join(BACKENDS[backend])} is not set")
    board = {
        "title": "live check",
        "output": {"length_s": 4, "resolution": "1280x720", "fps": 24, "crossfade_s": 0},
        "generation": {"backend": backend, "segment_s": 4},
        "continuity": {"max_attempts": 1},
        "scenes": [
            {
                "id": "sea",
                "duration_s": 4,
                "camera": "slow pan right",
                "prompt": "A calm sea at sunrise, small waves rolling towards a sandy beach, soft golden light, "
                "the camera pans slowly right along the shore.",
            }
        ],
    }
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(board))
    result = render(path, tmp_path / "out", cache_dir=tmp_path / "cache")
    assert ffmpeg.decode(result.outputs[0]).frames == 96
    assert result.manifest.takes[0].operations
