"""Compose clips from anywhere: the engine behind ``composer compose CLIP... -o OUT.mp4``.

What lives here: reading what each clip is (size, pixel aspect, rotation, frame rate, variable
rate, audio or not), deciding the output (size, rate, crossfades, cuts, exact length) and
rendering it with the same two-path engine as planned outputs (``render.compose_composition``:
smart assembly, full re-encode as the fallback). What does not: argument parsing (``cli.py``)
or ffmpeg command lines (``composer/ffmpeg/``).

The rules, as documented in ``docs/composition.md``:

* **Output size and rate** default to the first clip's *display* picture: its coded size with
  non-square pixels squared (width x SAR) and a 90/270 degree rotation applied, rounded to even
  numbers; its frame rate (a variable-rate clip gives its average, read as 24000/1001 and the
  like). Other clips are converted to that rate, pixels squared, rotated, and letterboxed.
* **Clip lengths** are counted in output frames from each clip's video duration, so a
  variable-rate clip contributes what it shows, evenly resampled.
* **Crossfades**: every join is a ``crossfade_s`` crossfade, except joins listed in ``cut_at``.
  ``cut_at`` holds clip numbers (1-based, as the user lists them): ``cut_at=[3]`` means clip 3
  starts with a hard cut after clip 2. A crossfade never takes more than half of either clip
  (so a clip's two crossfades cannot overlap); a shortened one is noted in the result.
* **Length**: without ``length_s`` the output is as long as the clips joined
  (sum of clip frames minus crossfade frames). With ``length_s`` it has exactly
  ``round(length_s * fps)`` frames: a longer output holds the last frame of the last clip (its
  audio continues as silence); a shorter one keeps the first frames and drops the rest, and if
  the cut falls inside a crossfade, that crossfade and the clip it leads into are dropped and
  the output ends on the outgoing clip (never half-way through a fade).
* **Audio**: the output has a stereo 48 kHz track when any clip has audio; clips without audio
  contribute silence.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from composer import ffmpeg
from composer.compose.graph import Composition, Leg, build
from composer.compose.render import OutputCheck, compose_composition
from composer.errors import MediaError
from composer.timecode import parse_fps, to_frames

DEFAULT_FPS = Fraction(24)


@dataclass(frozen=True)
class ClipFacts:
    """What composition needs to know about one input clip."""

    path: Path
    display_width: int
    display_height: int
    fps: Fraction | None
    duration_s: Fraction
    has_audio: bool


@dataclass(frozen=True)
class ComposeResult:
    path: Path
    frames: int
    natural_frames: int  # length before --length trimmed or padded it
    width: int
    height: int
    fps: Fraction
    fades: tuple[int, ...]  # frames per join (0 = cut)
    check: OutputCheck  # includes which path rendered it (smart or full) and why
    notes: tuple[str, ...]


def clip_facts(path: Path) -> ClipFacts:
    """Read a clip: display size (SAR and rotation applied), rate, video duration, audio."""
    media = ffmpeg.probe(path)
    info = ffmpeg.packets(path)
    if not info.pts:
        raise MediaError(f"{path} has no video frames")
    end = max(p + d for p, d in zip(info.pts, info.durations, strict=True))
    duration = (end - min(info.pts)) * info.time_base
    width, height = media.display_size  # the output's size is made even in plan_clips
    return ClipFacts(path, width, height, media.fps, Fraction(duration), media.has_audio)


def _even(value: int) -> int:
    return max(2, 2 * round(value / 2))


def plan_clips(
    clips: Sequence[ClipFacts],
    *,
    crossfade_s: float,
    length_s: float | None = None,
    cut_at: Sequence[int] = (),
    width: int | None = None,
    height: int | None = None,
    fps: Fraction | str | float | None = None,
) -> tuple[Composition, int, tuple[str, ...]]:
    """The composition for ``clips`` under the rules above: (composition, natural frames, notes)."""
    if not clips:
        raise ValueError("no clips to compose")
    first = clips[0]
    rate = parse_fps(fps) if fps is not None else (first.fps or DEFAULT_FPS)
    out_w = _even(width or first.display_width)
    out_h = _even(height or first.display_height)
    bad_cuts = [k for k in cut_at if not 2 <= k <= len(clips)]
    if bad_cuts:
        raise ValueError(f"--cut-at takes clip numbers from 2 to {len(clips)}, not {bad_cuts}")
    frames = [max(1, to_frames(c.duration_s, rate)) for c in clips]
    fade = to_frames(crossfade_s, rate)
    notes: list[str] = []
    fades = []
    for k in range(len(clips) - 1):
        wanted = 0 if (k + 2) in cut_at else fade
        fitted = min(wanted, frames[k] // 2, frames[k + 1] // 2)
        if fitted != wanted:
            notes.append(f"crossfade before clip {k + 2} shortened to {fitted} frames to fit the clips")
        fades.append(fitted)
    legs = [Leg(c.path, n, c.has_audio) for c, n in zip(clips, frames, strict=True)]
    audio = any(c.has_audio for c in clips)
    natural = build(legs, fades, out_w, out_h, rate, audio)
    if length_s is None or to_frames(length_s, rate) == natural.frames:
        return natural, natural.frames, tuple(notes)
    target = to_frames(length_s, rate)
    if target < 1:
        raise ValueError("--length must be at least one frame")
    if target > natural.frames:
        # Hold the last frame (the leg chain clones it; audio pads with silence).
        extra = target - natural.frames
        legs[-1] = Leg(legs[-1].path, legs[-1].frames + extra, legs[-1].has_audio)
        notes.append(f"held the last frame for {extra} frames to reach {target}")
        return build(legs, fades, out_w, out_h, rate, audio), natural.frames, tuple(notes)
    starts = [leg.at for leg in natural.layout.legs]
    last = max(i for i, s in enumerate(starts) if s < target)
    if last > 0 and target < starts[last] + fades[last - 1]:
        # The end falls inside a crossfade: end on the outgoing clip instead.
        last -= 1
    kept = legs[: last + 1]
    kept[-1] = Leg(kept[-1].path, target - starts[last], kept[-1].has_audio)
    notes.append(f"kept the first {target} of {natural.frames} frames")
    return build(kept, fades[:last], out_w, out_h, rate, audio), natural.frames, tuple(notes)


def compose_clips(
    paths: Sequence[Path],
    dest: Path,
    *,
    crossfade_s: float = 1.0,
    length_s: float | None = None,
    cut_at: Sequence[int] = (),
    width: int | None = None,
    height: int | None = None,
    fps: Fraction | str | float | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    work_dir: Path | None = None,
    smart_path: bool = True,
) -> ComposeResult:
    """Join ``paths`` into ``dest`` with crossfades; ``on_progress(done, total)`` in frames.

    Clips that already carry the output's codec parameters (composer's own takes and outputs,
    or any x264 clip encoded alike, whatever its keyframes) are cut from their IDR frames as
    they are; the others are normalised once (the notes say which parameter forced it) into ``work_dir`` (kept, so a second run
    reuses them) or into a temporary folder beside ``dest`` (removed afterwards).
    """
    with ThreadPoolExecutor(max_workers=4) as pool:  # probing is mostly waiting on the files
        clips = list(pool.map(clip_facts, map(Path, paths)))
    comp, natural, notes = plan_clips(
        clips, crossfade_s=crossfade_s, length_s=length_s, cut_at=cut_at, width=width, height=height, fps=fps
    )

    def report(done: int) -> None:
        if on_progress:
            on_progress(done, comp.frames)

    dest.parent.mkdir(parents=True, exist_ok=True)
    if work_dir is not None:
        check = compose_composition(comp, dest, report, smart_path=smart_path, cache_dir=work_dir)
    else:
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.stem}.work.") as work:
            check = compose_composition(comp, dest, report, smart_path=smart_path, cache_dir=Path(work))
    return ComposeResult(
        path=dest,
        frames=comp.frames,
        natural_frames=natural,
        width=comp.width,
        height=comp.height,
        fps=comp.fps,
        fades=tuple(j.fade for j in comp.joins),
        check=check,
        notes=(*notes, *check.normalized),
    )
