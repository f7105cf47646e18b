"""A :class:`~composer.timeline.describe.TimelineSpec` as OpenTimelineIO objects.

The only module in composer that imports ``opentimelineio`` (and through it the adapter
plug-ins the writers use). It is imported lazily, so composer works without it; only writing a
timeline needs it. What lives here: :func:`library` (the module, with an adapter checked) and
:func:`to_otio` (a ``Timeline`` of a spec, video and audio tracks, clip and timeline markers,
image bounds). What does not: the description itself (``describe.py``) or any file format
(``writers.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from composer.errors import EnvironmentProblem
from composer.timeline.describe import (
    NAMESPACE,
    ClipSpec,
    MarkerSpec,
    TimelineSpec,
    TrackSpec,
    TransitionSpec,
)

INSTALL_HINT = "install with pip install 'composer[edit]'"


def library(fmt: str = "otio", adapter: str = "otio_json", package: str = "opentimelineio") -> Any:
    """The ``opentimelineio`` module, with ``adapter`` (from ``package``) present.

    Raises EnvironmentProblem, naming the package to install, when either is missing.
    """
    try:
        import opentimelineio  # type: ignore[import-untyped]  # (it ships no type hints)
    except ImportError:
        raise EnvironmentProblem(f"writing a timeline needs OpenTimelineIO; {INSTALL_HINT}") from None
    names = {a.name for a in opentimelineio.plugins.ActiveManifest().adapters}
    if adapter not in names:
        raise EnvironmentProblem(
            f"{fmt} export needs the {package} package (OpenTimelineIO's {adapter} adapter); {INSTALL_HINT}"
        )
    return opentimelineio


def available() -> bool:
    """Whether OpenTimelineIO can be imported (the ``[edit]`` extra, or the default install)."""
    try:
        library()
    except EnvironmentProblem:
        return False
    return True


def to_otio(
    spec: TimelineSpec,
    tracks: Sequence[TrackSpec] | None = None,
    *,
    audio: bool | None = None,
    timeline_markers: bool = True,
) -> Any:
    """An ``opentimelineio.schema.Timeline`` of ``spec`` (only ``tracks`` of it, when given).

    Per output a video track and, when ``audio`` (default: ``spec.audio``), an audio track
    beside it cut and dissolved the same way. The clips' markers are on the clips (in take
    time) and, with ``timeline_markers``, on the timeline's stack too (in track time). Each
    call builds fresh objects: some adapters rewrite the timeline they are given.
    """
    otio = library()
    rate = float(spec.fps)
    chosen = list(spec.tracks if tracks is None else tracks)
    with_audio = spec.audio if audio is None else audio

    def t(frames: int) -> Any:
        return otio.opentime.RationalTime(frames, rate)

    def span(start: int, frames: int) -> Any:
        return otio.opentime.TimeRange(t(start), t(frames))

    def marker(m: MarkerSpec) -> Any:
        return otio.schema.Marker(
            name=m.name,
            marked_range=span(m.frame, 0),
            color=getattr(otio.schema.MarkerColor, m.color),
            metadata={NAMESPACE: m.metadata},
        )

    def clip(item: ClipSpec, kind: str) -> Any:
        bounds = otio.schema.Box2d(
            otio.schema.V2d(-spec.width / spec.height / 2, -0.5),
            otio.schema.V2d(spec.width / spec.height / 2, 0.5),
        )
        reference = otio.schema.ExternalReference(
            target_url=Path(item.media_path).absolute().as_uri(),
            available_range=span(0, item.take_frames),
            available_image_bounds=bounds if kind == "video" else None,
        )
        reference.name = item.media_name
        made = otio.schema.Clip(
            name=item.name,
            media_reference=reference,
            source_range=span(item.start, item.frames),
            metadata={**item.metadata, "cmx_3600": {"reel": item.reel}},
        )
        if kind == "video":  # once per segment: the audio clip beside it is the same take
            for m in item.markers:
                made.markers.append(marker(m))
        return made

    def track(track_spec: TrackSpec, kind: str) -> Any:
        made = otio.schema.Track(
            name=track_spec.name if kind == "video" else f"{track_spec.name} audio",
            kind=otio.schema.TrackKind.Video if kind == "video" else otio.schema.TrackKind.Audio,
        )
        made.metadata.update(track_spec.metadata)
        for item in track_spec.items:
            if isinstance(item, TransitionSpec):
                made.append(
                    otio.schema.Transition(
                        name="crossfade" if kind == "video" else "audio crossfade",
                        transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
                        in_offset=t(item.before),
                        out_offset=t(item.after),
                        metadata=item.metadata,
                    )
                )
            else:
                made.append(clip(item, kind))
        return made

    timeline = otio.schema.Timeline(name=spec.name, global_start_time=t(0))
    timeline.metadata[NAMESPACE] = {**spec.metadata.get(NAMESPACE, {}), "rate": rate}
    for track_spec in chosen:
        timeline.tracks.append(track(track_spec, "video"))
        if with_audio:
            timeline.tracks.append(track(track_spec, "audio"))
        if timeline_markers:
            for m in track_spec.markers:
                made = marker(m)
                made.metadata[NAMESPACE] = {**m.metadata, "output": track_spec.name}
                timeline.tracks.markers.append(made)
    return timeline
