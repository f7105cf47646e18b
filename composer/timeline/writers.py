"""One writer per timeline format: the files an editing tool opens, from a ``TimelineSpec``.

What lives here: :data:`FORMATS`, and for each format a writer ``(spec, dest) -> [files]`` that
builds fresh OpenTimelineIO objects (``build.py``), hands them to the format's maintained
adapter, fixes what the adapter leaves out (FCPXML's frame size, MLT's profile, EDL's reel
table and record-time locators) and writes atomically. What does not: the description
(``describe.py``), run folders and media links (``run.py``), or importing ``opentimelineio``
itself (only ``build.py`` does; the writers get the module from :func:`build.library`).

Formats that hold one sequence per file (EDL, MLT, GES) write one file per output when a render
has several (``timeline-part01.edl``, ...); OTIO, OTIOZ, FCPXML and FCP 7 XML hold them all.
"""

from __future__ import annotations

import csv
import io
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from composer.errors import ComposerError, EnvironmentProblem
from composer.files import temp_beside, write_text_atomic
from composer.timeline.build import library, to_otio
from composer.timeline.describe import TimelineSpec, TrackSpec

Format = Literal["otio", "otioz", "fcpxml", "xmeml", "edl", "mlt", "xges"]


@dataclass(frozen=True)
class FormatInfo:
    """A format: its file extension, the OTIO adapter that writes it, the package providing that
    adapter, whether a file holds one output only, and the editors that open it."""

    extension: str
    adapter: str
    package: str
    one_output_per_file: bool
    editors: str


FORMATS: dict[Format, FormatInfo] = {
    "otio": FormatInfo(".otio", "otio_json", "opentimelineio", False, "DaVinci Resolve, otioview"),
    "otioz": FormatInfo(".otioz", "otioz", "opentimelineio", False, "a bundle with its media, to hand over"),
    "fcpxml": FormatInfo(".fcpxml", "fcpx_xml", "otio-fcpx-xml-adapter", False, "Final Cut Pro"),
    "xmeml": FormatInfo(".xml", "fcp_xml", "otio-fcp-adapter", False, "Premiere Pro, Resolve (FCP 7 XML)"),
    "edl": FormatInfo(".edl", "cmx_3600", "otio-cmx3600-adapter", True, "any editor (CMX 3600)"),
    "mlt": FormatInfo(".mlt", "mlt_xml", "otio-mlt-adapter", True, "Shotcut, Kdenlive, melt"),
    "xges": FormatInfo(".xges", "xges", "otio-xges-adapter", True, "Pitivi, ges-launch-1.0"),
}

# otio-fcpx-xml-adapter 1.0 maps rates through a fixed table and truncates rates to integers
# when reading; only these whole rates survive a round trip exactly.
FCPXML_RATES = frozenset({24, 25, 30, 50, 60})


def paths_for(fmt: Format, dest: Path, tracks: Sequence[TrackSpec]) -> list[Path]:
    """The files ``fmt`` writes at ``dest``: one per output for one-sequence formats with several."""
    if not FORMATS[fmt].one_output_per_file or len(tracks) == 1:
        return [dest]
    return [dest.with_name(f"{dest.stem}-{Path(t.name).stem}{dest.suffix}") for t in tracks]


def edl_paths(dest: Path, tracks: Sequence[TrackSpec]) -> list[Path]:
    return paths_for("edl", dest, tracks)


def reel_table_path(edl: Path) -> Path:
    """The reel -> file table written beside an EDL."""
    return edl.with_name(f"{edl.stem}.reels.csv")


def write(spec: TimelineSpec, fmt: Format, dest: Path) -> list[Path]:
    """Write ``spec`` as ``fmt`` at ``dest``; returns the files written (timelines first)."""
    if fmt not in FORMATS:
        raise ComposerError(f"unknown timeline format {fmt!r}; choose one of {', '.join(FORMATS)}")
    info = FORMATS[fmt]
    otio = library(fmt, info.adapter, info.package)
    return _WRITERS[fmt](otio, spec, dest)


def to_strings(spec: TimelineSpec, fmt: Format) -> list[str]:
    """The text of ``spec`` as ``fmt`` without writing it (one text per timeline file; not otioz)."""
    if fmt not in FORMATS or fmt == "otioz":
        raise ComposerError(f"no text for timeline format {fmt!r}; choose one of otio, fcpxml, edl, ...")
    info = FORMATS[fmt]
    otio = library(fmt, info.adapter, info.package)
    texts = _TEXTS[fmt](otio, spec, Path(f"timeline{info.extension}"))
    return [text for path, text in texts if path.suffix == info.extension]  # not the EDL's reel table


# --- One writer per format ---------------------------------------------------------------------

Texts = list[tuple[Path, str]]


def _otio_texts(otio: Any, spec: TimelineSpec, dest: Path) -> Texts:
    return [(dest, otio.adapters.write_to_string(to_otio(spec), "otio_json"))]


def _fcpxml_texts(otio: Any, spec: TimelineSpec, dest: Path) -> Texts:
    """One project per output (in one event when there are several), each with its audio.

    The adapter names a format only by probing the media with ffprobe and gives it no size;
    every format here is the render's, so its size and name are set from the spec.
    """
    if spec.fps.denominator != 1 or spec.fps.numerator not in FCPXML_RATES:
        raise ComposerError(
            f"FCPXML export (otio-fcpx-xml-adapter) handles {', '.join(map(str, sorted(FCPXML_RATES)))} "
            f"fps exactly; this render is at {float(spec.fps):g} fps: export otio or edl instead"
        )
    timelines = _per_output(spec, timeline_markers=False)
    if len(timelines) == 1:
        text = otio.adapters.write_to_string(timelines[0], "fcpx_xml")
    else:
        collection = otio.schema.SerializableCollection(name=spec.name, children=timelines)
        text = otio.adapters.write_to_string(collection, "fcpx_xml")
    return [(dest, _fcpxml_formats(text, spec))]


def _fcpxml_formats(text: str, spec: TimelineSpec) -> str:
    root = ET.fromstring(text)
    for element in root.iter("format"):
        element.set("width", str(spec.width))
        element.set("height", str(spec.height))
        if not element.get("name"):
            element.set("name", f"FFVideoFormat{spec.height}p{int(spec.fps)}")
    for asset in root.iter("asset"):
        if spec.audio:
            asset.set("audioSources", "1")
            asset.set("audioChannels", "2")
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n{body}\n'


def _xmeml_texts(otio: Any, spec: TimelineSpec, dest: Path) -> Texts:
    timelines = _per_output(spec)
    if len(timelines) == 1:
        return [(dest, _xmeml_formats(otio.adapters.write_to_string(timelines[0], "fcp_xml"), spec))]
    collection = otio.schema.SerializableCollection(name=spec.name, children=timelines)
    return [(dest, _xmeml_formats(otio.adapters.write_to_string(collection, "fcp_xml"), spec))]


def _xmeml_formats(text: str, spec: TimelineSpec) -> str:
    """Each sequence's frame size: the adapter leaves its video ``<format>`` empty, and an
    importer then guesses one (Premiere takes its default preset)."""
    root = ET.fromstring(text)
    for video in root.iter("video"):
        element = video.find("format")
        if element is None or len(element):
            continue
        sample = ET.SubElement(element, "samplecharacteristics")
        rate = ET.SubElement(sample, "rate")
        ET.SubElement(rate, "timebase").text = str(round(spec.fps))
        ET.SubElement(rate, "ntsc").text = "FALSE" if spec.fps.denominator == 1 else "TRUE"
        ET.SubElement(sample, "width").text = str(spec.width)
        ET.SubElement(sample, "height").text = str(spec.height)
        ET.SubElement(sample, "pixelaspectratio").text = "square"
        ET.SubElement(sample, "fielddominance").text = "none"
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n{body}\n'


#: An event line's channel field (the adapter writes ``V`` for every video event):
#: ``001  REEL____ V     C ...`` (edit number, reel padded to 8, channel padded to 5).
_EVENT_CHANNEL = re.compile(r"^(\d{3}  .{8} )V {4}(?= [CD] )", re.MULTILINE)


def _edl_texts(otio: Any, spec: TimelineSpec, dest: Path) -> Texts:
    """One EDL per output: a unique reel per take, the reel -> file table beside it (CSV), and
    the markers as ``* LOC:`` lines at their record timecode (where they show on the sequence),
    which is what editors import them at."""
    _check_edl_rate(otio, spec.fps)
    texts: Texts = []
    for path, track in zip(paths_for("edl", dest, spec.tracks), spec.tracks, strict=True):
        timeline = to_otio(spec, [track], timeline_markers=False)
        timeline.name = f"{spec.name} {Path(track.name).stem}"
        video = timeline.tracks[0]
        starts = track.clip_starts()
        for clip, spec_clip, at in zip(video.find_clips(), track.clips, starts, strict=True):
            # The writer prints a marker's time as it is: give it the record frame.
            for marker, m in zip(clip.markers, spec_clip.markers, strict=True):
                marker.marked_range = otio.opentime.TimeRange(
                    otio.opentime.RationalTime(at + m.frame - spec_clip.start, float(spec.fps)),
                    otio.opentime.RationalTime(0, float(spec.fps)),
                )
        _one_line_names(timeline)
        text = otio.adapters.write_to_string(timeline, "cmx_3600")
        if spec.audio:
            # The adapter writes the first track only. The sound is cut and dissolved exactly as
            # the picture, so every event carries both: channel AA/V (picture and the two audio
            # channels of the take's stereo track), as editors conform picture-and-sound edits.
            text = _EVENT_CHANNEL.sub(r"\1AA/V ", text)
        # Readers (OTIO's among them) refuse comments before the first event, so the reel table
        # is the file beside; each event's FROM CLIP / TO CLIP comments name its reel's file too.
        title, _, rest = text.partition("\n\n")
        texts.append((path, f"{title}\nFCM: NON-DROP FRAME\n\n{rest}"))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["reel", "file", "clip"])
        writer.writerows((c.reel, c.media_path, c.name) for c in track.clips)
        texts.append((reel_table_path(path), buffer.getvalue()))
    return texts


def _mlt_texts(otio: Any, spec: TimelineSpec, dest: Path) -> Texts:
    """MLT XML per output with a complete profile: without a size melt and Shotcut fall back
    to their default (720x576)."""
    texts: Texts = []
    for path, track in zip(paths_for("mlt", dest, spec.tracks), spec.tracks, strict=True):
        timeline = to_otio(spec, [track], timeline_markers=False)
        _one_line_names(timeline)
        aspect = Fraction(spec.width, spec.height)
        text = otio.adapters.write_to_string(
            timeline,
            "mlt_xml",
            width=spec.width,
            height=spec.height,
            frame_rate_num=spec.fps.numerator,
            frame_rate_den=spec.fps.denominator,
            progressive=1,
            sample_aspect_num=1,
            sample_aspect_den=1,
            display_aspect_num=aspect.numerator,
            display_aspect_den=aspect.denominator,
            colorspace=709,
            description=f"{spec.width}x{spec.height} {float(spec.fps):g} fps",
        )
        texts.append((path, _mlt_unique_producers(text)))
    return texts


def _mlt_unique_producers(text: str) -> str:
    """One producer per id: the adapter writes a take's producer again for its audio and at each
    dissolve, under the same id (the same file), which MLT's XML does not allow."""
    root = ET.fromstring(text)
    seen: set[str] = set()
    for producer in list(root.findall("producer")):
        ident = producer.get("id", "")
        if ident in seen:
            root.remove(producer)
        seen.add(ident)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _xges_texts(otio: Any, spec: TimelineSpec, dest: Path) -> Texts:
    texts: Texts = []
    for path, track in zip(paths_for("xges", dest, spec.tracks), spec.tracks, strict=True):
        timeline = to_otio(spec, [track])
        _one_line_names(timeline)
        texts.append((path, _xges_rate(otio.adapters.write_to_string(timeline, "xges"), spec)))
    return texts


def _xges_rate(text: str, spec: TimelineSpec) -> str:
    """Give the GES timeline the render's frame rate and size: the adapter leaves the project's
    restriction caps without them, and GES then renders at 30 fps."""
    fps = f"{spec.fps.numerator}/{spec.fps.denominator}"
    caps = f"video/x-raw, width=(int){spec.width}, height=(int){spec.height}, framerate=(fraction){fps}"
    root = ET.fromstring(text)
    for track in root.iter("track"):
        if track.get("track-type") == "4":  # video
            track.set("caps", "video/x-raw(ANY)")
            # Nested in a GstStructure string: GES escapes , = ( ) and spaces with a backslash.
            escaped = re.sub(r"([,=() ])", r"\\\1", caps)
            track.set("properties", f'properties, restriction-caps=(string)"{escaped}";')
    for timeline in root.iter("timeline"):
        props = timeline.get("properties", "properties;")
        if "framerate" not in props:
            timeline.set("properties", props.rstrip(";") + f", framerate=(fraction){fps};")
    return ET.tostring(root, encoding="unicode")


def _per_output(spec: TimelineSpec, *, timeline_markers: bool = True) -> list[Any]:
    timelines = []
    for track in spec.tracks:
        timeline = to_otio(spec, [track], timeline_markers=timeline_markers)
        timeline.name = f"{spec.name} {Path(track.name).stem}" if len(spec.tracks) > 1 else spec.name
        _one_line_names(timeline)  # XML 1.0 has no place for most control characters
        timelines.append(timeline)
    return timelines


def _write_texts(texts_of: Callable[[Any, TimelineSpec, Path], Texts]) -> Callable[..., list[Path]]:
    def writer(otio: Any, spec: TimelineSpec, dest: Path) -> list[Path]:
        texts = texts_of(otio, spec, dest)
        for path, text in texts:
            _write_text_atomic(path, text)
        return [path for path, _ in texts]

    return writer


def _write_otioz(otio: Any, spec: TimelineSpec, dest: Path) -> list[Path]:
    """A zip of ``content.otio`` and every take it uses (``media/<unique name>.mp4``)."""
    fd, temp = _temp(dest)
    os.close(fd)
    try:
        temp.unlink()  # the adapter creates the file itself
        otio.adapters.write_to_file(to_otio(spec), str(temp), adapter_name="otioz")
        os.replace(temp, dest)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise EnvironmentProblem(
            f"cannot write {dest} ({exc.strerror}); choose another file with -o"
        ) from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return [dest]


_TEXTS: dict[Format, Callable[[Any, TimelineSpec, Path], Texts]] = {
    "otio": _otio_texts,
    "fcpxml": _fcpxml_texts,
    "xmeml": _xmeml_texts,
    "edl": _edl_texts,
    "mlt": _mlt_texts,
    "xges": _xges_texts,
}
_WRITERS: dict[Format, Callable[[Any, TimelineSpec, Path], list[Path]]] = {
    **{fmt: _write_texts(texts) for fmt, texts in _TEXTS.items()},
    "otioz": _write_otioz,
}


# --- Shared -----------------------------------------------------------------------------------


def _check_edl_rate(otio: Any, fps: Fraction) -> None:
    """A clear error where the CMX 3600 writer would end in a traceback: its SMPTE timecode
    has no frame count for rates such as 12 or 15 fps."""
    try:
        otio.opentime.RationalTime(1, float(fps)).to_timecode(float(fps))
    except ValueError:
        raise ComposerError(
            f"an EDL counts time in SMPTE timecode, which has no {float(fps):g} fps "
            "(it has 23.976, 24, 25, 29.97, 30, 48, 50, 59.94 and 60): export otio instead"
        ) from None


def _one_line_names(timeline: Any) -> None:
    """Control characters out of every name: an EDL is one event per line, so a newline in a
    storyboard title or a marker would write an event line of its own (and XML 1.0 cannot
    hold most of them)."""
    items = [timeline, *timeline.tracks, *timeline.find_children()]
    for item in items:
        item.name = _CONTROL.sub(" ", item.name or "")
        for marker in getattr(item, "markers", ()):
            marker.name = _CONTROL.sub(" ", marker.name or "")
    for marker in timeline.tracks.markers:
        marker.name = _CONTROL.sub(" ", marker.name or "")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def _temp(dest: Path) -> tuple[int, Path]:
    try:
        return temp_beside(dest, dest.suffix)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot write {dest} ({exc.strerror}); choose another file with -o"
        ) from None


def _write_text_atomic(path: Path, text: str) -> None:
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot write {path} ({exc.strerror}); choose another file with -o"
        ) from None
