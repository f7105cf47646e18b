"""Time the local backend's ``generate`` end to end (render + x264 encode + audio) at 720p and 1080p.

Run: ``python benchmarks/bench_local_speed.py [--seconds 8] [--sizes 1280x720,1920x1080]``.
It prints, per size and scene, frames per second and the multiple of real time, plus the
share of the wall time the renderer alone takes (the rest is ffmpeg). Figures depend on
the machine and on what else runs on it; never assert on them in tests.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from composer.backends import procedural
from composer.backends.base import GenerationRequest, TakeInput
from composer.backends.local import LocalBackend

SCENES = [
    ("a city skyline at night with lit windows and traffic", "zoom in"),
    ("a snowy forest, snow falling between tall pines", "slow pan right"),
    ("a calm sea, waves rolling toward the shore", "static"),
    ("a blue sky with drifting clouds and birds", "pan left"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--sizes", default="1280x720,1920x1080")
    args = parser.parse_args()
    backend = LocalBackend()
    with tempfile.TemporaryDirectory() as work:
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.split("x"))
            total_frames, total_wall = 0, 0.0
            for prompt, camera in SCENES:
                request = GenerationRequest(
                    backend="local",
                    model="local-fast",
                    kind="generate",
                    prompt=prompt,
                    camera=camera,
                    duration_s=args.seconds,
                    width=width,
                    height=height,
                    fps="24",
                    seed=5,
                )
                started = time.perf_counter()
                info = backend.generate(request, TakeInput(), Path(work) / "clip.mp4")
                wall = time.perf_counter() - started
                renderer = procedural.Renderer(info.state)
                started = time.perf_counter()
                for _ in renderer.frames():
                    pass
                render = time.perf_counter() - started
                total_frames += info.frames
                total_wall += wall
                print(
                    f"{size:>9} {procedural.scene_kind(prompt):>6} {camera:>15}: {info.frames / wall:6.1f} frames/s, "
                    f"{args.seconds / wall:5.2f}x real time (render alone {render / info.frames * 1000:5.2f} ms/frame, "
                    f"{render / wall:4.0%} of wall)"
                )
            print(
                f"{size:>9}    all: {total_frames / total_wall:6.1f} frames/s, "
                f"{total_frames / 24 / total_wall:5.2f}x real time"
            )


if __name__ == "__main__":
    main()
