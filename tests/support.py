"""What test modules import by name: waiting for something to happen, service addresses, fake keys, tiny boards.

Fixtures live in ``conftest.py`` (pytest finds them there; it does not mean that file to be
imported); this module holds the plain functions and constants that several test files share.
Nothing here mocks composer: the helpers wait on real servers, real processes and real files.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from composer.sim import Simulator

T = TypeVar("T")
# The ``start_sim`` fixture: ``Simulator`` keyword arguments in, a running simulator out.
StartSim = Callable[..., Simulator]

# Generous on purpose: on a loaded two-core machine a simulator render can take many seconds,
# and a wait that gives up early fails a correct program.
WAIT_S = 120.0

# One fake key per variable the API backends read, each distinct, so a leak names its source.
# "LEAKCHECK" in every value: tests grep outputs, logs and caches for it.
FAKE_KEYS = {
    "GEMINI_API_KEY": "AIzaLEAKCHECK-gemini-0123456789",
    "OPENAI_API_KEY": "sk-LEAKCHECK-openai-0123456789",
    "COMPOSER_RELAY_API_KEY": "rk-LEAKCHECK-relay-0123456789",
    "GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.LEAKCHECK-vertex-0123456789",
}
# Variables that would send test traffic elsewhere than the loopback simulator, or carry a
# developer's real key into a test: cleared by the ``service_env`` fixture.
SERVICE_VARIABLES = (
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
    "VERTEX_ACCESS_TOKEN",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_VERTEX_BASE_URL",
    "COMPOSER_VERTEX_STORAGE_URI",
    "COMPOSER_GCS_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "COMPOSER_OPENAI_EXTENSIONS",
    "COMPOSER_RELAY_API_KEY",
    "COMPOSER_RELAY_BASE_URL",
)
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

# The smallest boards that still exercise the whole pipeline (160x96, 6 s, 3 s segments).
# TINY_BOARD: three scenes on the local backend, a cut and two crossfades, two 6 s outputs.
TINY_BOARD: dict[str, Any] = {
    "title": "tiny",
    "output": {"length_s": 6, "resolution": "160x96", "fps": 24, "crossfade_s": 0.5},
    "generation": {"segment_s": 3, "seed": 7, "drift": 0},
    "style": "soft light",
    "scenes": [
        {"id": "sea", "prompt": "a calm sea with waves", "duration_s": 4.5, "camera": "pan right"},
        {"id": "city", "prompt": "a city at night", "duration_s": 4.5, "transition_out": "cut"},
        {"id": "snow", "prompt": "snow falling in a forest", "duration_s": 3, "camera": "static"},
    ],
}
# TINY_API_BOARD: two scenes, one attempt per segment, for renders through the simulator.
TINY_API_BOARD: dict[str, Any] = {
    "title": "tiny api",
    "output": {"length_s": 6, "resolution": "160x96", "fps": 24, "crossfade_s": 0.5},
    "generation": {"segment_s": 3, "seed": 5},
    "continuity": {"max_attempts": 1},
    "scenes": [
        {"id": "sea", "prompt": "a calm sea with waves", "duration_s": 6, "camera": "pan right"},
        {"id": "city", "prompt": "a city street at night", "duration_s": 6, "camera": "static"},
    ],
}


def write_board(folder: Path, board: dict[str, Any], name: str = "tiny.yaml") -> Path:
    """Write ``board`` as YAML to ``folder/name``; the path."""
    path = folder / name
    path.write_text(yaml.safe_dump(board))
    return path


def base_url(sim: Simulator, backend: str) -> str:
    """The simulator's address as ``backend`` expects it (openai and relay live under a prefix)."""
    return {"openai": sim.base_url + "/v1", "relay": sim.base_url + "/relay"}.get(backend, sim.base_url)


def wait_until(
    check: Callable[[], T],
    done: Callable[[T], bool] = bool,
    *,
    timeout_s: float = WAIT_S,
    interval_s: float = 0.1,
    what: str = "the condition",
) -> T:
    """Call ``check`` until ``done`` accepts its answer; that answer. Fails the test after ``timeout_s``.

    ``check`` may assert (a helper process still alive, say): its failure ends the wait at once.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        answer = check()
        if done(answer):
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached after {timeout_s:g} s; last: {answer!r}")
        time.sleep(interval_s)


async def wait_until_async(
    check: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout_s: float = WAIT_S,
    interval_s: float = 0.05,
    what: str = "the condition",
) -> T:
    """``wait_until`` for coroutines (a backend's ``poll``), sleeping without blocking the loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        answer = await check()
        if done(answer):
            return answer
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached after {timeout_s:g} s; last: {answer!r}")
        await asyncio.sleep(interval_s)
