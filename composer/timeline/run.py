"""Timelines of a run folder: reading it, linking its media, writing the files.

What lives here (the I/O edge of the timeline): :func:`load_run` (``plan.json``,
``manifest.json`` and ``report.json`` read back, for ``composer export``), :func:`link_media`
(each kept take linked into ``RUN/media/`` under its unique name: a hard link where the cache
and the run share a file system, else a copy; the cache itself is never changed),
:func:`export` and :func:`write_timeline` (the end of every render, from the values the render
already holds). What does not: the description (``describe.py``) or the formats (``writers.py``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from composer.errors import ComposerError, EnvironmentProblem
from composer.export.manifest import Manifest
from composer.files import temp_beside
from composer.plan.model import Plan
from composer.report.model import Report
from composer.timeline.build import INSTALL_HINT, available
from composer.timeline.describe import TimelineSpec, describe_render, media_links
from composer.timeline.writers import FORMATS, Format, write


@dataclass(frozen=True)
class Run:
    """What a render folder holds that a timeline is made from."""

    folder: Path
    plan: Plan
    manifest: Manifest
    report: Report | None


def _read(path: Path, model: type[BaseModel], what: str) -> Any:
    try:
        return model.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ComposerError(
            f"{path} not found; give the folder a render wrote (it holds plan.json and manifest.json)"
        ) from None
    except (OSError, ValidationError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ComposerError(
            f"{path} is not a composer {what} ({first}); render again to rewrite it"
        ) from None


def load_run(folder: Path) -> Run:
    """Read ``plan.json`` and ``manifest.json`` (and ``report.json`` when present) from ``folder``."""
    plan: Plan = _read(folder / "plan.json", Plan, "plan")
    manifest: Manifest = _read(folder / "manifest.json", Manifest, "manifest")
    report_path = folder / "report.json"
    report: Report | None = _read(report_path, Report, "report") if report_path.is_file() else None
    return Run(folder, plan, manifest, report)


def describe_run(run: Run) -> TimelineSpec:
    return describe_render(run.plan, run.manifest, run.report, run.folder)


def link_media(spec: TimelineSpec) -> list[Path]:
    """Put every kept take at its timeline path (``RUN/media/<segment>-a<attempt>.mp4``).

    A hard link where possible (no space used), else a copy; written beside and renamed, so a
    file there is always whole. An up-to-date link (the same file) is left as it is. Raises
    ComposerError when a take is missing (the cache was cleaned since the render).
    """
    done = []
    for media, take in media_links(spec).items():
        dest, source = Path(media), Path(take)
        if not source.is_file():
            raise ComposerError(
                f"take {source} is missing (the cache was cleaned since the render?); render again to remake it"
            )
        try:
            if dest.exists() and os.path.samefile(dest, source):
                done.append(dest)
                continue
            fd, temp = temp_beside(dest, ".mp4")
            os.close(fd)
            try:
                temp.unlink()
                try:
                    os.link(source, temp)
                except OSError:  # another file system, or links not allowed there
                    shutil.copyfile(source, temp)
                os.replace(temp, dest)
            finally:
                temp.unlink(missing_ok=True)
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot put take {source.name} at {dest} ({exc.strerror}); check that the run folder is writable"
            ) from None
        done.append(dest)
    return done


def default_path(folder: Path, fmt: Format) -> Path:
    return folder / f"timeline{FORMATS[fmt].extension}"


def export_spec(spec: TimelineSpec, fmt: Format, dest: Path) -> list[Path]:
    """Link the media and write ``spec`` as ``fmt`` at ``dest``; the files written."""
    if fmt not in FORMATS:
        raise ComposerError(f"unknown timeline format {fmt!r}; choose one of {', '.join(FORMATS)}")
    link_media(spec)
    return write(spec, fmt, dest)


def export(folder: Path, fmt: Format = "otio", dest: Path | None = None) -> list[Path]:
    """Write the timeline of the render in ``folder`` as ``fmt``; returns the files written.

    ``dest`` defaults to ``folder/timeline.<ext>``. EDL, MLT and GES hold a single sequence,
    so a render with several outputs gets one file per output (``timeline-part01.edl``, ...);
    an EDL also gets its reel table beside it (``timeline.reels.csv``).
    """
    if fmt not in FORMATS:
        raise ComposerError(f"unknown timeline format {fmt!r}; choose one of {', '.join(FORMATS)}")
    spec = describe_run(load_run(folder))
    return export_spec(spec, fmt, dest if dest is not None else default_path(folder, fmt))


def write_timeline(
    folder: Path, plan: Plan | None = None, manifest: Manifest | None = None, report: Report | None = None
) -> Path | None:
    """``folder/timeline.otio`` for the render just finished there; None without OpenTimelineIO.

    Made from the values the render holds (``plan``, ``manifest``, ``report``); without them
    they are read from ``folder``. A timeline left by an earlier render is removed when none can
    be written, since it would describe takes this render may no longer use.
    """
    path = default_path(folder, "otio")
    if not available():
        path.unlink(missing_ok=True)
        return None
    if plan is None or manifest is None:
        run = load_run(folder)
        plan, manifest, report = run.plan, run.manifest, run.report
    return export_spec(describe_render(plan, manifest, report, folder), "otio", path)[0]


def timeline_notes() -> list[str]:
    """The note a render adds to its manifest when it cannot write ``timeline.otio``."""
    if available():
        return []
    return [f"timeline.otio was not written: it needs OpenTimelineIO; {INSTALL_HINT}"]
