"""End to end on the local backend: storyboard -> takes -> exact outputs, cache reuse, resume, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from composer import ffmpeg
from composer.cli import main
from composer.pipeline import render
from composer.timecode import audio_samples
from tests.support import TINY_BOARD, wait_until, write_board

BOARD = TINY_BOARD


@pytest.fixture
def board_file(tmp_path: Path) -> Path:
    return write_board(tmp_path, BOARD)


@pytest.mark.slow
def test_render_writes_exact_outputs_and_reuses_the_cache(board_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = render(board_file, out)
    assert [p.name for p in first.outputs] == ["part01.mp4", "part02.mp4"]
    for path in first.outputs:
        report = ffmpeg.decode(path)
        assert report.frames == 144
        assert report.errors == ""
        assert report.audio_samples is not None
        assert abs(report.audio_samples - audio_samples(144, 24)) <= 1024
    plan = json.loads((out / "plan.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert plan["version"] == 1 and manifest["version"] == 1
    assert manifest["cache_hits"] == 0
    assert manifest["generated"] == len(manifest["takes"]) >= plan_calls(plan)
    assert all(o["frames"] == 144 and o["composed"] for o in manifest["outputs"])
    # Encode once: the local takes were generated in the output encoding, keyframes included,
    # so the outputs were assembled from them by stream copy with nothing normalised.
    assert all(o["method"] == "smart" for o in manifest["outputs"])
    assert not list(Path(manifest["cache_dir"]).rglob("*.norm-*.mp4"))

    second = render(board_file, out)
    assert second.manifest.generated == 0
    assert second.manifest.cache_hits == first.manifest.generated
    assert not any(o.composed for o in second.manifest.outputs)  # up to date: nothing recomposed
    # The measurements were stored with the takes and reused: the same decisions, nothing re-measured.
    assert list(Path(second.manifest.cache_dir, "checks").glob("*.json"))
    assert first.report is not None and second.report is not None
    assert second.report.summary == first.report.summary


@pytest.mark.slow
def test_plan_json_renders_without_the_storyboard(board_file: Path, tmp_path: Path) -> None:
    first = render(board_file, tmp_path / "a")
    board_file.unlink()  # the plan carries everything: prompts, seeds, sizes, frames
    again = render(first.plan_path, tmp_path / "b")
    assert again.manifest.generated == 0
    assert [ffmpeg.decode(p).frames for p in again.outputs] == [144, 144]


def plan_calls(plan: dict[str, object]) -> int:
    return sum(len(s["chunks"]) for o in plan["outputs"] for s in o["segments"])  # type: ignore[index,union-attr]


@pytest.mark.slow
def test_continuation_and_extension_chains_are_used(board_file: Path, tmp_path: Path) -> None:
    board = {
        **BOARD,
        "generation": {"segment_s": 10, "seed": 1, "drift": 0},
        "output": {**BOARD["output"], "length_s": 12},
        "scenes": [
            {"id": "sea", "prompt": "a calm sea with waves", "duration_s": 18, "camera": "pan left"},
            {"id": "city", "prompt": "a city at night", "duration_s": 6},
        ],
    }
    result = render(write_board(tmp_path, board, "long.yaml"), tmp_path / "out")
    kinds = [t.kind for t in result.manifest.takes]
    assert "extend" in kinds  # the 12 s segment is an 8 s base plus a 7 s extension
    continued = [s for s in result.plan.segments if s.continues]
    assert continued and continued[0].output == 2  # the sea goes on into the second output
    assert [ffmpeg.decode(p).frames for p in result.outputs] == [288, 288]


@pytest.mark.slow
def test_cli_render_prints_outputs(
    board_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["render", str(board_file), "-o", str(tmp_path / "cli")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "part01.mp4" in captured.out and "144 frames" in captured.out


def test_plan_cli_table_and_json(
    board_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", str(board_file)]) == 0
    table = capsys.readouterr().out
    assert "part01.mp4" in table and "API calls" in table
    target = tmp_path / "plan.json"
    assert main(["plan", str(board_file), "--json", str(target)]) == 0
    assert json.loads(target.read_text())["output"]["frames"] == 144


def _spawn_render(board_file: Path, out: Path, cache: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "COMPOSER_CACHE": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-m", "composer", "render", str(board_file), "-o", str(out), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finished_takes(cache: Path) -> set[str]:
    return {p.parent.name for p in cache.glob("takes/*/*/take.json")}


def _wait_for_takes(cache: Path, count: int, proc: subprocess.Popen[bytes], limit_s: float = 60) -> None:
    def enough() -> bool:
        if len(_finished_takes(cache)) >= count:
            return True
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        return False

    wait_until(enough, timeout_s=limit_s, interval_s=0.05, what=f"{count} finished takes")


@pytest.mark.slow
def test_killed_render_resumes_without_generating_twice(board_file: Path, tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    proc = _spawn_render(board_file, out, cache)
    _wait_for_takes(cache, 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = _finished_takes(cache)
    assert done_before

    result = render(board_file, out, cache_dir=cache)
    assert result.manifest.cache_hits >= len(done_before)
    regenerated = {t.key for t in result.manifest.takes if not t.cached}
    assert not (regenerated & done_before)
    assert all(ffmpeg.decode(p).frames == 144 for p in result.outputs)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_leaves_no_half_written_output(board_file: Path, tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    proc = _spawn_render(board_file, out, cache)
    _wait_for_takes(cache, 1, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err
    assert not list(out.glob("*.mp4")) if out.exists() else True
    leftovers = [p for p in cache.rglob(".*") if p.is_file()]
    assert leftovers == [], leftovers


def test_bad_storyboard_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_board(tmp_path, {**BOARD, "output": {**BOARD["output"], "fps": 0}}, "bad.yaml")
    out = tmp_path / "never"
    assert main(["render", str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:" in err and "output.fps" in err
    assert not out.exists()


@pytest.mark.slow
def test_drift_makes_attempts_fail_and_regenerate(tmp_path: Path) -> None:
    board = {
        **BOARD,
        "generation": {"segment_s": 10, "seed": 3, "drift": 4},
        "output": {**BOARD["output"], "length_s": 20},
        "continuity": {"max_attempts": 2},
        "scenes": [
            {"id": "lake", "prompt": "a still lake under a clear sky", "duration_s": 20, "camera": "static"}
        ],
    }
    result = render(write_board(tmp_path, board, "drifty.yaml"), tmp_path / "out")
    assert result.report is not None
    summary = result.report.summary
    assert summary.segments_regenerated >= 1
    assert summary.attempts > summary.segments
    decisions = [d for o in result.report.outputs for s in o.segments for d in s.decisions]
    assert any(d.action == "regenerate" and "drift." in d.reason for d in decisions)
    assert ffmpeg.decode(result.outputs[0]).frames == 480
    page = (tmp_path / "out" / "report.html").read_text()
    assert "regenerat" in page


@pytest.mark.slow
def test_runner_offers_each_chain_before_judging_it(tmp_path: Path) -> None:
    # The pipeline starts normalising a take when it is offered, so the judge's time is not
    # added to the tail: every attempt is offered first, judged next, and only the kept one
    # is accepted.
    from composer.backends import registry
    from composer.decide import Check
    from composer.jobs.cache import TakeCache
    from composer.jobs.runner import Runner
    from composer.pipeline import load_and_plan

    board = {**BOARD, "continuity": {"max_attempts": 2}}
    _, plan = load_and_plan(write_board(tmp_path, board))
    events: dict[str, list[tuple[str, str]]] = {}
    judged: set[str] = set()

    def judge(segment, takes, previous):  # type: ignore[no-untyped-def]
        events.setdefault(segment.id, []).append(("judge", takes[-1].key))
        first = segment.id not in judged
        judged.add(segment.id)
        value = 2.0 if first else 0.0  # the first attempt at each segment fails
        verdict = "regenerate" if first else "ok"
        return [
            Check(
                name="drift.test",
                verdict=verdict,
                value=value,
                warn=0.5,
                regenerate=1.0,
                severity=value,
                chunk=0,
            )
        ]

    backend = registry.create("local")
    try:
        Runner(
            plan,
            backend,
            TakeCache(tmp_path / "cache"),
            workers=1,
            judge=judge,
            max_attempts=2,
            on_candidate=lambda segment, take: events.setdefault(segment.id, []).append(("offer", take.key)),
            on_accept=lambda segment, take: events.setdefault(segment.id, []).append(("accept", take.key)),
        ).run()
    finally:
        backend.close()
    assert set(events) == {segment.id for segment in plan.segments}
    for seen in events.values():
        assert [kind for kind, _ in seen] == ["offer", "judge", "offer", "judge", "accept"]
        (_, first), (_, judged_first), (_, second), (_, judged_second), (_, kept) = seen
        assert (first, second) == (judged_first, judged_second)
        assert first != second and kept == second  # the regenerated take is the one kept
