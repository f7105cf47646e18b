"""Shared fixtures: an isolated cache, tiny real clips, the simulator on loopback, fake keys.

Every fixture here sets up something real: clips are made by ffmpeg from lavfi sources, the
simulator (``composer.sim``) is the project's own HTTP server on 127.0.0.1. Plain helpers that
test modules import by name (``wait_until``, ``base_url``, the fake keys, the tiny storyboards
and ``write_board``) live in ``tests/support.py``.

The simulator:

- ``sim``: one per test module, started on first use. A module changes its settings with a
  module-level ``SIM_OPTIONS = {...}`` (keyword arguments of ``Simulator``; the default is
  ``latency_s=0.05, seed=0``). Tests that change its fault rules put them back.
- ``start_sim``: a fresh simulator per call, stopped after the test, for tests that count what
  the simulator made or need their own faults from the first request on.

Keys: ``service_env`` clears every variable that could carry a real key, address or proxy into
a test; ``keys`` then sets one distinct fake key per backend (``support.FAKE_KEYS``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from composer import ffmpeg
from composer.sim import Simulator
from tests.support import FAKE_KEYS, PROXY_VARIABLES, SERVICE_VARIABLES, StartSim

MakeClip = Callable[..., Path]

SIM_DEFAULTS: dict[str, Any] = {"latency_s": 0.05, "seed": 0}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never touch the user's real cache or config from a test.
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("COMPOSER_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))


# -- clips ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def make_clip(tmp_path_factory: pytest.TempPathFactory) -> MakeClip:
    """Make (once per session) a small H.264 clip from a lavfi source, with optional sine audio."""
    folder = tmp_path_factory.mktemp("clips")
    made: dict[tuple[object, ...], Path] = {}

    def make(
        name: str,
        *,
        seconds: float = 3.0,
        size: str = "160x96",
        rate: str = "24",
        source: str = "testsrc2",
        audio_hz: int | None = 440,
        extra_video: list[str] | None = None,
        sar: str | None = None,
        container: str = "mp4",
    ) -> Path:
        key = (name, seconds, size, rate, source, audio_hz, tuple(extra_video or ()), sar, container)
        if key in made:
            return made[key]
        dest = folder / f"{name}.{container}"
        sep = ":" if "=" in source else "="
        args = [
            ffmpeg.ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"{source}{sep}size={size}:rate={rate}:duration={seconds}",
        ]
        if audio_hz:
            args += ["-f", "lavfi", "-i", f"sine=frequency={audio_hz}:sample_rate=44100:duration={seconds}"]
        vf = [f"setsar={sar}"] if sar else []
        if vf:
            args += ["-vf", ",".join(vf)]
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *(extra_video or [])]
        if audio_hz:
            args += ["-c:a", "aac"]
        args.append(str(dest))
        subprocess.run(args, check=True)
        made[key] = dest
        return dest

    return make


# -- the simulator ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim(request: pytest.FixtureRequest) -> Iterator[Simulator]:
    """The module's simulator on loopback: ``SIM_DEFAULTS`` updated by the module's ``SIM_OPTIONS``."""
    options = {**SIM_DEFAULTS, **getattr(request.module, "SIM_OPTIONS", {})}
    with Simulator(**options) as server:
        yield server


@pytest.fixture
def start_sim() -> Iterator[StartSim]:
    """Start a fresh simulator (``Simulator``'s keyword arguments over ``SIM_DEFAULTS``); stopped after the test."""
    with ExitStack() as running:

        def start(**options: Any) -> Simulator:
            return running.enter_context(Simulator(**{**SIM_DEFAULTS, **options}))

        yield start


# -- keys and the environment -------------------------------------------------------------------------


@pytest.fixture
def service_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real key, service address or proxy from the developer's shell reaches the test."""
    for name in (*SERVICE_VARIABLES, *PROXY_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def keys(service_env: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A distinct fake key for every API backend (and a Vertex project); the key per backend name."""
    for name, value in FAKE_KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "composer-test")
    return {
        "gemini": FAKE_KEYS["GEMINI_API_KEY"],
        "vertex": FAKE_KEYS["GOOGLE_OAUTH_ACCESS_TOKEN"],
        "openai": FAKE_KEYS["OPENAI_API_KEY"],
        "relay": FAKE_KEYS["COMPOSER_RELAY_API_KEY"],
    }
