"""Issue 17: exports and listings that a name or a rate could break, one test per finding.

The EDL at 12 fps ended in a traceback; a storyboard title with a newline wrote an event
line of its own into the EDL; a ``'`` in the cache path broke every local extension and a
newline in a clip name injected a line into ffmpeg's concat listing; the report put any
thumbnail value from ``report.json`` into a style attribute and an ``<img src>``.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from composer import ffmpeg, make_plan
from composer.errors import ComposerError, MediaError
from composer.plan.model import Plan
from composer.storyboard.model import Storyboard
from composer.timeline import KeptTake, describe, to_strings
from tests.conftest import MakeClip

pytest.importorskip("opentimelineio")


def _plan(title: str, fps: int) -> Plan:
    board = {
        "title": title,
        "output": {"length_s": 8, "resolution": "160x96", "fps": fps, "crossfade_s": 0.5},
        "generation": {"segment_s": 4},
        "scenes": [{"id": "sea", "prompt": "a calm sea", "duration_s": 8}],
    }
    return make_plan(Storyboard.model_validate(board))


def _takes(plan: Plan) -> dict[str, KeptTake]:
    return {
        s.id: KeptTake(key=f"key{s.id}", path=f"/takes/{s.id}.mp4", frames=s.take_offset + s.clip_frames + 10)
        for s in plan.segments
    }


def test_an_edl_at_12_fps_is_a_clear_error() -> None:
    plan = _plan("twelve", 12)
    with pytest.raises(ComposerError, match=r"SMPTE timecode, which has no 12 fps.*export otio instead"):
        to_strings(describe(plan, _takes(plan)), "edl")


def test_a_title_with_a_newline_stays_on_the_title_line() -> None:
    plan = _plan("cut\n099  INJECTED V C 00:00:00:00", 24)
    [text] = to_strings(describe(plan, _takes(plan)), "edl")
    lines = [line for line in text.splitlines() if "INJECTED" in line]
    assert len(lines) == 1 and lines[0].startswith("TITLE:"), text


def test_fcpxml_names_carry_no_control_characters() -> None:
    plan = _plan("bell\x07 title", 24)
    [text] = to_strings(describe(plan, _takes(plan)), "fcpxml")
    assert "\x07" not in text
    assert "bell  title" in text


def test_the_concat_listing_escapes_quotes(tmp_path: Path) -> None:
    part = tmp_path / "it's here" / "a.mp4"
    listing = ffmpeg.concat_listing([ffmpeg.ConcatPart(path=part, frames=24)], Fraction(24))
    assert "file '" + str(tmp_path) + "/it'\\''s here/a.mp4'\n" in listing


def test_a_quote_in_the_folder_joins_for_real(tmp_path: Path, make_clip: MakeClip) -> None:
    folder = tmp_path / "it's a cache"
    folder.mkdir()
    parts = []
    for n in (1, 2):
        part = folder / f"p{n}.mp4"
        part.write_bytes(make_clip("quote", seconds=1, audio_hz=None).read_bytes())
        parts.append(part)
    dest = folder / "joined.mp4"
    ffmpeg.concat_copy(parts, None, dest)
    assert dest.stat().st_size > 0


def test_a_newline_in_a_listed_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="line break"):
        ffmpeg.concat_listing([ffmpeg.ConcatPart(path=tmp_path / "a\nfile 'x.mp4", frames=24)], Fraction(24))


JPEG = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q=="


@pytest.mark.parametrize(
    "hostile",
    [
        "https://evil.example/track.gif",
        "data:image/jpeg;base64,AAAA');background:url(https://evil.example/x",
        "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
        "javascript:alert(1)",
    ],
)
def test_the_report_shows_only_jpeg_data_thumbnails(tmp_path: Path, hostile: str) -> None:
    from composer.report import write_report
    from tests.test_report_page import _report

    report = _report()
    output = report.outputs[0]
    segment = output.segments[0].model_copy(update={"thumbnail": hostile})
    seam = output.seams[0].model_copy(update={"thumbnails": {"before": hostile, "after": JPEG}})
    report = report.model_copy(
        update={"outputs": [output.model_copy(update={"segments": [segment], "seams": [seam]})]}
    )
    _, page = write_report(report, tmp_path)
    text = page.read_text(encoding="utf-8")
    assert "evil.example" not in text and "javascript:" not in text and "svg+xml" not in text
    assert JPEG in text  # the well-formed one is still shown
