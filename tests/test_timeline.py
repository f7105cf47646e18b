"""The timeline export: the pure description in frames, then timeline.otio, FCPXML and EDL read back.

The first tier needs no OpenTimelineIO: a planned minute laid out as clips and dissolves,
the take each segment kept, and the markers. The second renders tiny storyboards on the local
backend and reads every written file back with opentimelineio and its adapters.
"""

from __future__ import annotations

import ast
import csv
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from composer import ffmpeg, make_plan, timeline
from composer.cli import main
from composer.decide import Attempt, Check, Decision
from composer.errors import ComposerError
from composer.export.manifest import Manifest
from composer.export.records import TakeRecord
from composer.pipeline import render
from composer.plan.model import Plan
from composer.report.model import OutputReport, Report, SegmentReport, summarize
from composer.storyboard.model import Storyboard
from composer.timeline import ClipSpec, KeptTake, TransitionSpec, describe, edl_paths, kept_takes
from tests.support import TINY_BOARD

MINUTE = {
    "title": "minute",
    "output": {"length_s": 60, "resolution": "160x96", "fps": 24, "crossfade_s": 1},
    "generation": {"segment_s": 20, "seed": 11},
    "scenes": [
        {"id": "sea", "prompt": "a calm sea", "duration_s": 50, "camera": "pan right"},
        {"id": "city", "prompt": "a city at night", "duration_s": 40, "transition_out": "cut"},
        {"id": "snow", "prompt": "snow in a forest", "duration_s": 30},
    ],
}

# A static lake drifting on purpose, judged against a colour-similarity line no take can meet:
# every attempt fails, so the one segment is regenerated once and then kept and flagged.
DRIFTY = {
    "title": "drifty",
    "output": {"length_s": 4, "resolution": "160x96", "fps": 24, "crossfade_s": 0.5},
    "generation": {"segment_s": 4, "seed": 3, "drift": 4},
    # Levels no take can pass, so every attempt is regenerated and the last one flagged (brightness is
    # not relaxed by the natural-change rule that the structure checks have).
    "continuity": {"max_attempts": 2, "brightness_warn": 0.001, "brightness_regenerate": 0.002},
    "scenes": [
        {"id": "lake", "prompt": "a still lake under a clear sky", "duration_s": 4, "camera": "static"}
    ],
}


# --- Pure: the description, without OpenTimelineIO -------------------------------------------


@pytest.fixture(scope="module")
def minute() -> Plan:
    return make_plan(Storyboard.model_validate(MINUTE))


def _takes(plan: Plan, spare: int = 10) -> dict[str, KeptTake]:
    return {
        s.id: KeptTake(
            key=f"key-{s.id}", path=f"/takes/{s.id}/take.mp4", frames=s.take_offset + s.clip_frames + spare
        )
        for s in plan.segments
    }


def test_each_output_is_a_track_of_exactly_its_frames(minute: Plan) -> None:
    spec = describe(minute, _takes(minute))
    assert [t.name for t in spec.tracks] == ["part01.mp4", "part02.mp4"]
    for track, output in zip(spec.tracks, minute.outputs, strict=True):
        assert len(track.clips) == len(output.segments)
        assert sum(c.frames for c in track.clips) == track.frames == output.frames == 1440
        # Transitions overlap their neighbours: the clips' handles minus the fades add up too.
        assert sum(c.visible_frames for c in track.clips) - sum(t.frames for t in track.transitions) == 1440
        for clip, seg in zip(track.clips, output.segments, strict=True):
            assert (clip.visible_start, clip.visible_frames) == (seg.take_offset, seg.clip_frames)
            assert clip.visible_start >= 0 and clip.visible_start + clip.visible_frames <= clip.take_frames


def test_crossfades_are_dissolves_and_cuts_are_nothing(minute: Plan) -> None:
    spec = describe(minute, _takes(minute))
    for track, output in zip(spec.tracks, minute.outputs, strict=True):
        items = list(track.items)
        clip_at = [i for i, item in enumerate(items) if isinstance(item, ClipSpec)]
        for k, join in enumerate(output.joins):
            between = items[clip_at[k] + 1 : clip_at[k + 1]]
            if join.kind == "cut":
                assert between == []
                continue
            [fade] = between
            assert isinstance(fade, TransitionSpec)
            assert fade.frames == join.frames == 24
            # OTIO's in_offset is the part before the cut: the incoming segment's lead.
            assert (fade.before, fade.after) == (
                output.segments[k + 1].lead_frames,
                output.segments[k].tail_frames,
            )
    assert [len(t.transitions) for t in spec.tracks] == [2, 2]


def test_clips_carry_the_storyboard_and_the_take(minute: Plan) -> None:
    spec = describe(minute, _takes(minute), output_paths={"part01.mp4": "/run/part01.mp4"})
    meta = spec.metadata["composer"]
    assert meta["timeline_version"] == timeline.TIMELINE_VERSION == 2
    assert (meta["fps"], meta["frames_per_output"]) == ("24", 1440)
    assert spec.tracks[0].metadata["composer"]["path"] == "/run/part01.mp4"
    clip = spec.tracks[1].clips[0]
    data = clip.metadata["composer"]
    seg = minute.outputs[1].segments[0]
    assert data["prompt"] == seg.prompt and data["scene_id"] == "city" and data["segment"] == "o2-s1"
    assert (
        data["seed"] == seg.seed
        and data["backend"] == "local"
        and data["model"] == minute.generation.model_id
    )
    assert data["take"]["key"] == "key-o2-s1" and data["frames"]["take_offset"] == 1
    assert data["continues"] == {"segment": "o1-s3", "frame": seg.continues.frame if seg.continues else None}
    assert clip.name == "o2-s1 city" and clip.markers == ()
    json.dumps(spec.metadata), json.dumps(data)  # plain data: OTIO stores it as it is


def test_a_plan_whose_handles_do_not_make_its_fade_is_refused(minute: Plan) -> None:
    output = minute.outputs[0]
    broken = output.model_copy(
        update={"segments": (output.segments[0].model_copy(update={"tail_frames": 5}), *output.segments[1:])}
    )
    plan = minute.model_copy(update={"outputs": (broken, minute.outputs[1])})
    with pytest.raises(ValueError, match="do not make the 24-frame crossfade"):
        describe(plan, _takes(minute))


def _record(segment: str, chunk: int, key: str, cost: float = 0.5, frames: int = 192) -> TakeRecord:
    return TakeRecord(
        segment=segment,
        chunk=chunk,
        kind="generate" if chunk == 0 else "extend",
        key=key,
        path=f"/cache/{key}/take.mp4",
        cached=False,
        frames=frames,
        duration_s=frames / 24,
        requested_s=8.0,
        generation_s=1.0,
        cost_usd=cost,
    )


def _manifest(records: list[TakeRecord]) -> Manifest:
    return Manifest(
        composer_version="test",
        storyboard="minute.yaml",
        backend="local",
        model_id="local-1",
        plan="plan.json",
        cache_dir="/cache",
        takes=records,
        outputs=[],
        cache_hits=0,
        generated=len(records),
        cost_usd=sum(r.cost_usd for r in records),
        timings_s={},
        versions={},
    )


def _check(name: str, verdict: str, onset_s: float | None = None, severity: float = 1.2) -> Check:
    return Check(
        name=name, verdict=verdict, value=9.0, warn=2.0, regenerate=4.0, severity=severity, onset_s=onset_s
    )


def _report(plan: Plan, histories: dict[str, tuple[list[Attempt], list[Decision]]]) -> Report:
    outputs = []
    for output in plan.outputs:
        segments = []
        for seg in output.segments:
            attempts, decisions = histories.get(
                seg.id,
                (
                    [Attempt(number=1, seed=seg.seed, take_keys=(f"{seg.id}-a1",), checks=())],
                    [Decision(action="accept", attempt=1, reason="all checks passed")],
                ),
            )
            kept = decisions[-1].attempt
            segments.append(
                SegmentReport(
                    id=seg.id,
                    scene_id=seg.scene_id,
                    prompt=seg.prompt,
                    start_s=0.0,
                    end_s=1.0,
                    attempts=attempts,
                    decisions=decisions,
                    kept_attempt=kept,
                    regenerated=len(attempts) > 1,
                    flagged=decisions[-1].action == "keep_best",
                    verdict=attempts[kept - 1].verdict,
                )
            )
        outputs.append(
            OutputReport(
                name=output.name,
                path=output.name,
                frames=output.frames,
                duration_s=60.0,
                segments=segments,
                seams=[],
            )
        )
    return Report(
        composer_version="test",
        title="minute",
        storyboard="minute.yaml",
        backend="local",
        model_id="local-1",
        created_at="2025-01-01T00:00:00+00:00",
        regenerate=True,
        max_attempts=2,
        thresholds={},
        summary=summarize(outputs),
        outputs=outputs,
    )


def test_the_kept_take_is_the_last_chunk_of_the_kept_attempt(minute: Plan) -> None:
    seg = minute.outputs[0].segments[0]  # four chunks
    first = [f"a1c{i}" for i in range(4)]
    # Attempt 2 made chunks 3 and 4 again; the report says attempt 1 was kept after all.
    second = [*first[:2], "a2c2", "a2c3"]
    histories = {
        seg.id: (
            [
                Attempt(
                    number=1,
                    seed=1,
                    take_keys=tuple(first),
                    checks=(_check("drift.brightness", "regenerate", 9.0),),
                ),
                Attempt(
                    number=2,
                    seed=2,
                    from_chunk=2,
                    take_keys=tuple(second),
                    checks=(_check("drift.brightness", "regenerate", 9.5, 1.5),),
                ),
            ],
            [
                Decision(
                    action="regenerate", attempt=1, reason="drift.brightness crossed", from_chunk=2, seed=2
                ),
                Decision(
                    action="keep_best", attempt=1, reason="2 attempts made, keeping attempt 1", flagged=True
                ),
            ],
        )
    }
    records = [_record(seg.id, i, k) for i, k in enumerate(first)] + [
        _record(seg.id, i, k, cost=0.0 if i < 2 else 0.5) for i, k in enumerate(second)
    ]
    records += [_record(s.id, 0, f"{s.id}-a1") for s in minute.segments[1:]]
    takes = kept_takes(minute, _manifest(records), _report(minute, histories))
    kept = takes[seg.id]
    assert (kept.key, kept.path, kept.attempt, kept.seed) == ("a1c3", "/cache/a1c3/take.mp4", 1, 1)
    assert kept.chain == tuple(first) and kept.frames == 192
    assert kept.cost_usd == 3.0  # four takes, then two made again (the reused two were cached)


def test_without_a_report_the_manifest_must_be_unambiguous(minute: Plan) -> None:
    records = [_record(s.id, i, f"{s.id}-c{i}") for s in minute.segments for i in range(len(s.chunks))]
    takes = kept_takes(minute, _manifest(records))
    assert takes["o1-s1"].key == "o1-s1-c3" and takes["o1-s1"].attempt is None
    again = [*records, _record("o1-s1", 3, "o1-s1-again")]
    with pytest.raises(ComposerError, match=r"o1-s1 was made more than once.*report\.json"):
        kept_takes(minute, _manifest(again))


def test_a_report_from_another_render_is_refused(minute: Plan) -> None:
    records = [_record(s.id, 0, f"{s.id}-other") for s in minute.segments]
    with pytest.raises(ComposerError, match="different renders"):
        kept_takes(minute, _manifest(records), _report(minute, {}))


def test_markers_mark_regenerations_flags_and_warnings(minute: Plan) -> None:
    flagged_seg, warned_seg = minute.outputs[0].segments[1], minute.outputs[1].segments[0]
    histories = {
        flagged_seg.id: (
            [
                Attempt(
                    number=1, seed=1, take_keys=("f1",), checks=(_check("drift.camera", "regenerate", 3.0),)
                ),
                Attempt(
                    number=2, seed=2, take_keys=("f2",), checks=(_check("drift.camera", "regenerate", 99.0),)
                ),
            ],
            [
                Decision(action="regenerate", attempt=1, reason="drift.camera crossed", seed=2),
                Decision(
                    action="keep_best", attempt=2, reason="2 attempts made, keeping attempt 2", flagged=True
                ),
            ],
        ),
        warned_seg.id: (
            [Attempt(number=1, seed=1, take_keys=("w1",), checks=(_check("seam.previous", "warn"),))],
            [
                Decision(
                    action="accept", attempt=1, reason="passed with warnings: seam.previous", flagged=True
                )
            ],
        ),
    }
    spec = describe(minute, _takes(minute), _report(minute, histories))
    clips = {c.segment: c for t in spec.tracks for c in t.clips}
    regen, flag = clips[flagged_seg.id].markers
    assert (regen.kind, regen.color) == ("regenerated", "BLUE")
    assert regen.name.startswith("regenerated attempt 1: drift.camera")
    assert regen.frame == 72  # where the problem began: 3 s into the take
    assert regen.metadata["reason"] == "drift.camera crossed" and regen.metadata["worst"]["onset_s"] == 3.0
    assert (flag.kind, flag.color) == ("flagged", "RED") and "keeping attempt 2" in flag.name
    clip = clips[flagged_seg.id]
    assert flag.frame == clip.start + clip.frames - 1  # an onset past the cut range shows at its end
    [warn] = clips[warned_seg.id].markers
    assert (warn.kind, warn.color, warn.name) == ("warn", "YELLOW", "warning: seam.previous")
    assert warn.frame == clips[warned_seg.id].start  # no onset: the cut where the clip starts
    assert clips[flagged_seg.id].metadata["composer"]["attempt_kept"] is None  # takes given, not chosen here
    assert all(not c.markers for s, c in clips.items() if s not in histories)


def test_an_edl_per_output_when_there_are_several(tmp_path: Path, minute: Plan) -> None:
    tracks = describe(minute, _takes(minute)).tracks
    assert edl_paths(tmp_path / "cut.edl", tracks) == [
        tmp_path / "cut-part01.edl",
        tmp_path / "cut-part02.edl",
    ]
    assert edl_paths(tmp_path / "cut.edl", tracks[:1]) == [tmp_path / "cut.edl"]


def test_one_module_imports_opentimelineio_one_moviepy_and_only_when_used() -> None:
    package = Path(timeline.__file__).parents[1]
    importers: dict[str, set[str]] = {"opentimelineio": set(), "moviepy": set()}
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for library, found in importers.items():
                if any(n.split(".")[0] == library for n in names):
                    found.add(path.relative_to(package).as_posix())
    assert importers == {"opentimelineio": {"timeline/build.py"}, "moviepy": {"timeline/moviepy_clip.py"}}
    # Rendering imports it only at the end, to write the file: composer works without it.
    probe = "import sys, composer.cli, composer.pipeline; print('opentimelineio' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
        == "False\n"
    )


# --- Rendered runs, read back with OpenTimelineIO and its adapters ---------------------------


def _render(folder: Path, board: dict[str, Any], name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"{name}.yaml"
    source.write_text(yaml.safe_dump(board))
    render(source, folder / "out", cache_dir=folder / "cache")
    return folder / "out"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _render(tmp_path_factory.mktemp("tiny"), TINY_BOARD, "tiny")


@pytest.fixture(scope="module")
def drifty_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _render(tmp_path_factory.mktemp("drifty"), DRIFTY, "drifty")


@pytest.fixture
def otio() -> Any:
    return pytest.importorskip("opentimelineio")


def _frames(time: Any) -> int:
    assert time.rate == 24
    assert time.value == int(time.value)
    return int(time.value)


def test_every_render_writes_a_timeline_that_adds_up(tiny_run: Path, otio: Any) -> None:
    plan = Plan.model_validate_json((tiny_run / "plan.json").read_text())
    report = Report.model_validate_json((tiny_run / "report.json").read_text())
    read = otio.adapters.read_from_file(str(tiny_run / "timeline.otio"))
    assert read.name == "tiny" and read.metadata["composer"]["timeline_version"] == 2
    video = [t for t in read.tracks if t.kind == otio.schema.TrackKind.Video]
    assert len(video) == len(plan.outputs) == 2
    kept = {s.id: s.attempts[s.kept_attempt - 1].take_keys[-1] for o in report.outputs for s in o.segments}
    for track, output in zip(video, plan.outputs, strict=True):
        assert track.name == output.name and track.kind == otio.schema.TrackKind.Video
        assert _frames(track.duration()) == output.frames == 144
        clips = list(track.find_clips())
        fades = [item for item in track if isinstance(item, otio.schema.Transition)]
        assert len(clips) == len(output.segments)
        assert len(fades) == sum(1 for j in output.joins if j.kind == "crossfade")
        assert sum(_frames(c.source_range.duration) for c in clips) == 144
        for index, item in enumerate(track):
            if isinstance(item, otio.schema.Transition):
                assert item.transition_type == otio.schema.TransitionTypes.SMPTE_Dissolve
                assert isinstance(track[index - 1], otio.schema.Clip) and isinstance(
                    track[index + 1], otio.schema.Clip
                )
        for k, join in enumerate(output.joins):
            left, right = track.index(clips[k]), track.index(clips[k + 1])
            assert right - left == (1 if join.kind == "cut" else 2)
            if join.kind == "crossfade":
                assert _frames(track[left + 1].in_offset) + _frames(track[left + 1].out_offset) == join.frames
        for clip, seg in zip(clips, output.segments, strict=True):
            available = clip.media_reference.available_range
            visible = clip.visible_range()
            assert _frames(available.start_time) == 0
            assert _frames(clip.source_range.start_time) >= 0
            assert _frames(clip.source_range.end_time_exclusive()) <= _frames(available.duration)
            assert (_frames(visible.start_time), _frames(visible.duration)) == (
                seg.take_offset,
                seg.clip_frames,
            )
            assert _frames(visible.end_time_exclusive()) <= _frames(available.duration)
            data = clip.metadata["composer"]
            assert data["prompt"] == seg.prompt and data["segment"] == seg.id
            assert data["take"]["key"] == kept[seg.id] and clip.media_reference.name == f"{seg.id}-a1.mp4"
            # The take linked into the run folder under its unique name: the same file as the cached one.
            path = Path(clip.media_reference.target_url.removeprefix("file://"))
            assert path == tiny_run / "media" / f"{seg.id}-a1.mp4" and str(path) == data["take"]["media"]
            assert path.samefile(data["take"]["path"])


def test_regenerations_and_flags_are_markers(drifty_run: Path, otio: Any) -> None:
    report = Report.model_validate_json((drifty_run / "report.json").read_text())
    read = otio.adapters.read_from_file(str(drifty_run / "timeline.otio"))
    clips = {c.metadata["composer"]["segment"]: c for c in read.video_tracks()[0].find_clips()}
    segments = [s for o in report.outputs for s in o.segments]
    assert report.summary.segments_regenerated == report.summary.segments_flagged == len(segments) == 1
    for seg in segments:
        clip = clips[seg.id]
        colors = [m.color for m in clip.markers]
        regenerations = [d for d in seg.decisions if d.action == "regenerate"]
        assert colors.count(otio.schema.MarkerColor.BLUE) == len(regenerations)
        assert (otio.schema.MarkerColor.RED in colors) == seg.flagged
        assert (otio.schema.MarkerColor.YELLOW in colors) == (not seg.flagged and seg.verdict == "warn")
        for marker in clip.markers:
            start = _frames(marker.marked_range.start_time)
            assert clip.source_range.start_time.value <= start < clip.source_range.end_time_exclusive().value
            assert marker.metadata["composer"]["kind"] in ("regenerated", "flagged", "warn")
        reasons = [
            m.metadata["composer"]["reason"] for m in clip.markers if m.color == otio.schema.MarkerColor.BLUE
        ]
        assert reasons == [d.reason for d in regenerations]
        data = clip.metadata["composer"]
        assert data["attempt_kept"] == seg.kept_attempt and data["attempts"] == len(seg.attempts)
        assert data["flagged"] == seg.flagged and data["verdict"] == seg.verdict


def test_fcpxml_and_edl_read_back_with_the_adapters(
    tiny_run: Path, otio: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = Plan.model_validate_json((tiny_run / "plan.json").read_text())
    assert main(["export", str(tiny_run), "--format", "fcpxml", "-o", str(tmp_path / "cut.fcpxml")]) == 0
    assert main(["export", str(tiny_run), "--format", "edl", "-o", str(tmp_path / "cut.edl")]) == 0
    printed = capsys.readouterr().out.split()
    edls = [tmp_path / "cut-part01.edl", tmp_path / "cut-part02.edl"]
    tables = [tmp_path / "cut-part01.reels.csv", tmp_path / "cut-part02.reels.csv"]
    assert printed == [
        str(tmp_path / "cut.fcpxml"),
        *(str(p) for pair in zip(edls, tables, strict=True) for p in pair),
    ]

    # FCPXML: one project per output in one event (the adapter writes cuts, not dissolves).
    projects = otio.adapters.read_from_file(str(tmp_path / "cut.fcpxml"))
    assert isinstance(projects, otio.schema.SerializableCollection)
    assert [t.name for t in projects] == ["tiny part01", "tiny part02"]
    for project, output in zip(projects, plan.outputs, strict=True):
        [video] = project.video_tracks()
        [audio] = project.audio_tracks()  # the takes' sound, cut the same way
        assert [c.name for c in audio.find_clips()] == [c.name for c in video.find_clips()]
        clips = list(video.find_clips())
        assert len(clips) == len(output.segments)
        assert [c.name for c in clips] == [f"{s.id} {s.scene_id}" for s in output.segments]
        assert sum(_frames(c.source_range.duration) for c in clips) == _frames(project.duration()) == 144

    # EDL: one per output, with the dissolves (an EDL starts a dissolve at the cut), every event
    # picture and sound (AA/V: the reader makes the stereo track two mono tracks, A1 and A2).
    for path, output in zip(edls, plan.outputs, strict=True):
        edl = otio.adapters.read_from_file(str(path), rate=24)
        assert [(t.name, t.kind) for t in edl.tracks] == [("V", "Video"), ("A1", "Audio"), ("A2", "Audio")]
        track = edl.tracks[0]
        for sound in edl.tracks[1:]:
            assert [(type(i).__name__, i.name, i.duration()) for i in sound] == [
                (type(i).__name__, i.name, i.duration()) for i in track
            ]
        clips = list(track.find_clips())
        fades = [i for i in track if isinstance(i, otio.schema.Transition)]
        assert len(clips) == len(output.segments)
        assert [f.out_offset.value + f.in_offset.value for f in fades] == [
            j.frames for j in output.joins if j.kind == "crossfade"
        ]
        assert sum(_frames(c.source_range.duration) for c in clips) == _frames(track.duration()) == 144
        reels = {c.metadata["cmx_3600"]["reel"] for c in clips}
        assert len(reels) == len(clips)  # every take is its own reel, named after its key


def test_export_defaults_to_the_run_folder(tiny_run: Path, otio: Any, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "timeline.otio").unlink()
    assert timeline.export(run) == [run / "timeline.otio"]
    written = otio.adapters.read_from_file(str(run / "timeline.otio"))
    original = otio.adapters.read_from_file(str(tiny_run / "timeline.otio"))
    # The same edit, pointing at the copied run's own media folder.
    pairs = list(zip(written.find_clips(), original.find_clips(), strict=True))
    assert all(a.source_range == b.source_range and a.name == b.name for a, b in pairs)
    assert all(a.media_reference.target_url.startswith((run / "media").as_uri()) for a, _ in pairs)
    assert timeline.export(run, "edl")[::2] == [run / "timeline-part01.edl", run / "timeline-part02.edl"]


def test_missing_adapters_say_how_to_install_them(
    tiny_run: Path, otio: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from composer.timeline.writers import FORMATS

    monkeypatch.setitem(
        FORMATS, "edl", FORMATS["edl"].__class__(".edl", "no_such_adapter", "otio-cmx3600-adapter", True, "")
    )
    assert main(["export", str(tiny_run), "--format", "edl"]) == 3
    assert "otio-cmx3600-adapter" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "opentimelineio", None)  # as if it were not installed
    assert main(["export", str(tiny_run)]) == 3
    assert "pip install 'composer[edit]'" in capsys.readouterr().err


def test_a_folder_without_a_render_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path)]) == 1
    assert "plan.json not found" in capsys.readouterr().err


def test_without_opentimelineio_a_render_notes_how_to_get_the_timeline(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    shutil.copytree(tiny_run, out)  # its outputs are up to date: only the files beside them are written
    stale = out / "timeline.otio"  # from the earlier render: it would describe takes no longer used
    monkeypatch.setattr("composer.timeline.run.available", lambda: False)
    result = render(tiny_run.parent / "tiny.yaml", out, cache_dir=tiny_run.parent / "cache")
    assert not any(o.composed for o in result.manifest.outputs)
    assert not stale.exists()
    notes = json.loads((out / "manifest.json").read_text())["notes"]
    assert any("timeline.otio" in n and "pip install 'composer[edit]'" in n for n in notes)


# --- Complete timelines: audio, media, markers, and each format read back ---------------------


def test_audio_beside_video_and_markers_on_the_timeline(drifty_run: Path, otio: Any) -> None:
    report = Report.model_validate_json((drifty_run / "report.json").read_text())
    read = otio.adapters.read_from_file(str(drifty_run / "timeline.otio"))
    [video], [audio] = read.video_tracks(), read.audio_tracks()
    assert [c.name for c in audio.find_clips()] == [c.name for c in video.find_clips()]
    assert [c.source_range for c in audio.find_clips()] == [c.source_range for c in video.find_clips()]
    assert read.metadata["composer"]["rate"] == 24.0
    [clip] = video.find_clips()
    bounds = clip.media_reference.available_image_bounds
    assert (bounds.max.x - bounds.min.x) / (bounds.max.y - bounds.min.y) == pytest.approx(160 / 96)
    # The timeline's own markers: one per clip marker, at the same picture, with the reason.
    [seg] = report.outputs[0].segments
    timeline_markers = list(read.tracks.markers)
    assert len(timeline_markers) == len(clip.markers) == 2
    for on_timeline, on_clip in zip(timeline_markers, clip.markers, strict=True):
        offset = clip.source_range.start_time.value
        assert on_timeline.marked_range.start_time.value == on_clip.marked_range.start_time.value - offset
        assert on_timeline.metadata["composer"]["reason"] == on_clip.metadata["composer"]["reason"] != ""
        assert on_timeline.metadata["composer"]["output"] == "part01.mp4"
    # The kept attempt's checks, each with its value and levels.
    kept = seg.attempts[seg.kept_attempt - 1]
    checks = clip.metadata["composer"]["checks"]
    assert [(c["check"], c["value"]) for c in checks] == [(c.name, c.value) for c in kept.checks]
    assert clip.media_reference.name == f"{seg.id}-a{seg.kept_attempt}.mp4"


def test_media_are_linked_into_the_run_folder_under_unique_names(tiny_run: Path) -> None:
    media = sorted((tiny_run / "media").iterdir())
    plan = Plan.model_validate_json((tiny_run / "plan.json").read_text())
    assert [p.name for p in media] == sorted(f"{s.id}-a1.mp4" for s in plan.segments)
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    takes = {Path(t["path"]).stat().st_ino for t in manifest["takes"]}
    assert {p.stat().st_ino for p in media} <= takes  # hard links: the cache's own files, no copies


def test_otioz_bundles_the_media(tiny_run: Path, otio: Any, tmp_path: Path) -> None:
    [path] = timeline.export(tiny_run, "otioz", tmp_path / "cut.otioz")
    names = zipfile.ZipFile(path).namelist()
    assert "content.otio" in names and sum(n.startswith("media/") for n in names) == 5
    extracted = tmp_path / "x"
    extracted.mkdir()
    read = otio.adapters.read_from_file(str(path), extract_to_directory=str(extracted))
    for clip in read.find_clips():
        assert (extracted / clip.media_reference.target_url).is_file()  # relative to the bundle


def test_edl_reels_name_one_file_each_and_locators_are_at_record_time(
    drifty_run: Path, tiny_run: Path, otio: Any, tmp_path: Path
) -> None:
    paths = timeline.export(tiny_run, "edl", tmp_path / "t.edl")
    for edl, table in zip(paths[::2], paths[1::2], strict=True):
        rows = list(csv.DictReader(table.open()))
        reels = {r["reel"]: r["file"] for r in rows}
        assert len(reels) == len(rows) and len(set(reels.values())) == len(rows)
        track = otio.adapters.read_from_file(str(edl), rate=24).tracks[0]
        for clip in track.find_clips():
            # OTIO's reader gives a dissolve's incoming clip the outgoing file; the reel is right.
            assert Path(reels[clip.metadata["cmx_3600"]["reel"]]).name.startswith(clip.name.split()[0])
    [edl, _] = timeline.export(drifty_run, "edl", tmp_path / "d.edl")
    spec = timeline.describe_run(timeline.load_run(drifty_run))
    [clip] = otio.adapters.read_from_file(str(edl), rate=24).tracks[0].find_clips()
    assert [m.marked_range.start_time.value for m in clip.markers] == [
        m.frame for m in spec.tracks[0].markers
    ]


def test_xmeml_mlt_and_xges_read_back(tiny_run: Path, otio: Any, tmp_path: Path) -> None:
    pytest.importorskip("otio_fcp_adapter")
    pytest.importorskip("otio_xges_adapter")
    pytest.importorskip("otio_mlt_adapter")
    [xml] = timeline.export(tiny_run, "xmeml", tmp_path / "cut.xml")
    sequences = otio.adapters.read_from_file(str(xml))
    assert len(sequences) == 2
    sizes = ET.parse(xml).getroot().findall(".//sequence/media/video/format/samplecharacteristics")
    assert [(e.findtext("width"), e.findtext("height")) for e in sizes] == [("160", "96")] * 2
    for sequence in sequences:
        assert sequence.video_tracks() and sequence.audio_tracks()
        assert sequence.duration().to_frames() == 144
    for path in timeline.export(tiny_run, "xges", tmp_path / "cut.xges"):
        read = otio.adapters.read_from_file(str(path))
        assert read.video_tracks() and read.audio_tracks()
        assert round(read.duration().to_seconds() * 24) == 144
        assert "framerate=(fraction)24/1" in path.read_text()
    for path in timeline.export(tiny_run, "mlt", tmp_path / "cut.mlt"):
        root = ET.parse(path).getroot()
        profile = root.find("profile")
        assert profile is not None
        assert (profile.get("width"), profile.get("height"), profile.get("frame_rate_num")) == (
            "160",
            "96",
            "24",
        )
        ids = [p.get("id") for p in root.findall("producer")]
        assert len(ids) == len(set(ids))


def _engine_matches(rendered: Path, output: Path, joins: list[int]) -> None:
    """Same frame count, sound, and PSNR >= 40 dB over the bodies (the fades are the engine's own)."""
    assert ffmpeg.decode(rendered).frames == ffmpeg.decode(output).frames == 144
    assert ffmpeg.probe(rendered).has_audio
    assert float(np.abs(ffmpeg.read_audio(rendered)).mean()) > 0.01  # not silence
    scores = ffmpeg.compare_video(output, rendered)
    fades = {f for centre in joins for f in range(centre - 8, centre + 8)}
    bodies = [s.psnr for i, s in enumerate(scores) if i not in fades]
    assert len(scores) == 144 and sum(bodies) / len(bodies) >= 40, bodies


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("melt") is None, reason="melt (MLT) is not installed: apt-get install melt")
def test_melt_renders_the_mlt_export_like_composer(tiny_run: Path, otio: Any, tmp_path: Path) -> None:
    pytest.importorskip("otio_mlt_adapter")
    [path, _] = timeline.export(tiny_run, "mlt", tmp_path / "cut.mlt")
    rendered = tmp_path / "melt.mp4"
    subprocess.run(
        [
            "melt",
            "-quiet",
            str(path),
            "-consumer",
            f"avformat:{rendered}",
            "vcodec=libx264",
            "crf=10",
            "acodec=aac",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    _engine_matches(rendered, tiny_run / "part01.mp4", [48, 102])


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("ges-launch-1.0") is None, reason="GES is not installed: apt-get install ges1.0-tools"
)
def test_ges_renders_the_xges_export_like_composer(tiny_run: Path, otio: Any, tmp_path: Path) -> None:
    pytest.importorskip("otio_xges_adapter")
    [path, _] = timeline.export(tiny_run, "xges", tmp_path / "cut.xges")
    rendered = tmp_path / "ges.mkv"  # raw pictures: the GES install's own H.264 encoder is baseline only
    subprocess.run(
        ["ges-launch-1.0", "-l", str(path), "-o", rendered.as_uri(),
         "--format=video/x-matroska:video/x-raw,format=I420:audio/x-raw"],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    _engine_matches(rendered, tiny_run / "part01.mp4", [48, 102])


def test_to_moviepy_plays_the_timeline_like_composer(tiny_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("moviepy")
    import composer

    clip = composer.to_moviepy(tiny_run, "part01.mp4")
    assert (clip.duration, clip.fps, tuple(clip.size)) == (6.0, 24.0, (160, 96))
    written = tmp_path / "moviepy.mp4"
    clip.write_videofile(
        str(written), codec="libx264", audio_codec="aac", ffmpeg_params=["-crf", "10"], logger=None
    )
    assert ffmpeg.decode(written).frames == 144
    assert float(np.abs(ffmpeg.read_audio(written)).mean()) > 0.01
    scores = [s.psnr for s in ffmpeg.compare_video(tiny_run / "part01.mp4", written)]
    # moviepy composites in RGB, so every frame, fades included, is near but not bit-exact.
    assert len(scores) == 144 and min(scores) >= 35 and sum(scores) / 144 >= 38, scores
    with pytest.raises(ComposerError, match=r"no output 'part09\.mp4'"):
        composer.to_moviepy(tiny_run, "part09.mp4")
