"""Shared fixtures: tiny real clips made with ffmpeg's lavfi sources, and an isolated take cache."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from composer import ffmpeg

MakeClip = Callable[..., Path]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never touch the user's real cache or config from a test.
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("COMPOSER_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))


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
