"""A render's timeline as a moviepy clip, for people who edit in Python.

The only module in composer that imports ``moviepy`` (the ``[edit]`` extra), lazily. What lives
here: :func:`to_moviepy` (one output's track: each segment a subclip of its linked take, with
its handles, placed at its frame on the track; each crossfade the incoming clip's
``CrossFadeIn`` over the outgoing one, and the two sounds faded across). What does not: the
description it plays (``describe.py``) or the run folder (``run.py``).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

from composer.errors import ComposerError, EnvironmentProblem
from composer.timeline.describe import TrackSpec, TransitionSpec
from composer.timeline.run import describe_run, link_media, load_run


def to_moviepy(run_dir: str | Path, output: str | int = 0) -> Any:
    """A ``moviepy.CompositeVideoClip`` of one output of the render in ``run_dir``.

    ``output``: its name (``"part01.mp4"``) or index (0 for the first). The clip lasts the
    output's frames at its rate, with the takes' sound; composite it, cut it or write it as any
    moviepy clip (``clip.write_videofile("cut.mp4")``). Needs moviepy (``pip install
    'composer[edit]'``); raises ComposerError for an output the render does not have.
    """
    try:
        import moviepy  # type: ignore[import-untyped]
        from moviepy import afx, vfx
    except ImportError:
        raise EnvironmentProblem(
            "composer.to_moviepy needs moviepy; install with pip install 'composer[edit]'"
        ) from None
    spec = describe_run(load_run(Path(run_dir)))
    track = _track(spec.tracks, output)
    link_media(spec)
    fps = spec.fps
    items = list(track.items)
    layers = []
    for clip, at in zip(track.clips, track.clip_starts(), strict=True):
        position = items.index(clip)
        before = items[position - 1] if position > 0 else None
        after = items[position + 1] if position + 1 < len(items) else None
        layer = moviepy.VideoFileClip(clip.media_path).subclipped(
            _seconds(clip.visible_start, fps), _seconds(clip.visible_start + clip.visible_frames, fps)
        )
        layer = layer.with_start(_seconds(at - clip.lead, fps))
        audio = layer.audio
        if isinstance(before, TransitionSpec):
            fade = _seconds(before.frames, fps)
            layer = layer.with_effects([vfx.CrossFadeIn(fade)])
            audio = audio.with_effects([afx.AudioFadeIn(fade)]) if audio is not None else None
        if isinstance(after, TransitionSpec):
            fade = _seconds(after.frames, fps)
            audio = audio.with_effects([afx.AudioFadeOut(fade)]) if audio is not None else None
        layers.append(layer.with_audio(audio) if audio is not None else layer)
    composite = moviepy.CompositeVideoClip(layers, size=(spec.width, spec.height), bg_color=(0, 0, 0))
    return composite.with_duration(_seconds(track.frames, fps)).with_fps(float(fps))


def _track(tracks: tuple[TrackSpec, ...], output: str | int) -> TrackSpec:
    names = [t.name for t in tracks]
    if isinstance(output, int) and 0 <= output < len(tracks):
        return tracks[output]
    if isinstance(output, str) and output in names:
        return tracks[names.index(output)]
    raise ComposerError(
        f"the render has no output {output!r}; it has {', '.join(names)} (or 0 to {len(names) - 1})"
    )


def _seconds(frames: int, fps: Fraction) -> float:
    return float(Fraction(frames) / fps)
