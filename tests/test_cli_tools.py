"""`composer analyze` and `composer compose` on clips from anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from composer import ffmpeg
from composer.cli import main
from tests.conftest import MakeClip


def test_analyze_json_has_the_documented_shape(
    make_clip: MakeClip, capsys: pytest.CaptureFixture[str]
) -> None:
    a = make_clip("an_a", seconds=3, source="testsrc2")
    b = make_clip("an_b", seconds=3, source="smptebars")
    assert main(["analyze", str(a), str(b), "--json", "--seams"]) == 0
    data = json.loads(capsys.readouterr().out)
    clip = data["clips"][0]
    assert set(clip) == {
        "path",
        "duration_s",
        "fps",
        "frames_analyzed",
        "discontinuities",
        "drift",
        "findings",
    }
    assert clip["frames_analyzed"] == 72 and clip["fps"] == 24
    assert clip["drift"]["verdict"] in {"ok", "warn", "regenerate"}
    assert len(data["seams"]) == 1 and data["seams"][0]["verdict"] == "regenerate"  # two different pictures


def test_analyze_fast_reads_only_the_reference_frames(
    make_clip: MakeClip, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = make_clip("an_bframes", seconds=3, source="testsrc2", extra_video=["-preset", "veryfast"])
    results = []
    for extra in ([], ["--fast"]):
        assert main(["analyze", str(clip), "--json", *extra]) == 0
        results.append(json.loads(capsys.readouterr().out)["clips"][0])
    full, fast = results
    assert full["frames_analyzed"] == 72 and 30 <= fast["frames_analyzed"] <= 45  # x264 B-frames skipped
    assert set(fast) == set(full) and fast["duration_s"] == full["duration_s"] and fast["fps"] == 24


@pytest.mark.slow
def test_analyze_fail_on_and_html(
    make_clip: MakeClip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = make_clip("an_a", seconds=3, source="testsrc2")
    b = make_clip("an_b", seconds=3, source="smptebars")
    page = tmp_path / "analysis.html"
    assert main(["analyze", str(a), str(b), "--seams", "--fail-on", "regenerate", "--html", str(page)]) == 1
    assert page.is_file() and "an_b.mp4" in page.read_text()
    assert "seam an_a.mp4 -> an_b.mp4: regenerate" in capsys.readouterr().out


def test_analyze_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(tmp_path / "nope.mp4")]) == 1
    assert "no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_compose_joins_clips_to_an_exact_length(
    make_clip: MakeClip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = make_clip("co_a", seconds=3)
    b = make_clip("co_b", seconds=3, size="192x96", rate="30", audio_hz=None, source="smptebars")
    out = tmp_path / "joined.mp4"
    assert main(["compose", str(a), str(b), "-o", str(out), "--crossfade", "0.5", "--length", "5"]) == 0
    report = ffmpeg.decode(out)
    assert report.frames == 120 and report.errors == ""
    assert "120 frames" in capsys.readouterr().out
