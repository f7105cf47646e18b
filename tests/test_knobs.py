"""The image-guidance knobs, ``style_strength`` and ``motion_intensity`` (issue 22).

From the storyboard (located errors, the schema), through the capabilities each backend
declares and the requests and cache keys made from them, to what the local generator does
with them (measured on decoded frames), the relay protocol against the simulator on loopback,
lint, and where a render records them (manifest, report, timeline).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import httpx
import numpy as np
import opentimelineio as otio
import pytest
import yaml

from composer import ffmpeg, imaging, make_plan
from composer.backends import registry
from composer.backends.base import GenerationRequest, TakeInput
from composer.backends.local import LocalBackend
from composer.cli import main
from composer.errors import StoryboardError
from composer.jobs.remote import JobSettings
from composer.jobs.runner import request_for
from composer.pipeline import lint_storyboard, load_and_plan, render
from composer.sim import Simulator
from composer.storyboard import load_storyboard
from composer.storyboard.model import Storyboard
from composer.timeline import KeptTake, describe

PROMPT = "Waves roll slowly onto a pale beach while gulls drift above the dunes at dawn"  # 15 words
FAST = JobSettings(poll_interval_s=0.05, poll_max_s=0.2, retry_base_s=0.05, retry_max_s=0.5)


def _write(tmp_path: Path, text: str, name: str = "b.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _line(text: str, needle: str) -> int:
    [number] = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    return number


# --- The storyboard -----------------------------------------------------------------------------

BAD = """\
version: 1
generation:
  style_strength: 1.5
scenes:
  - id: a
    duration_s: 4
    prompt: a calm sea with waves rolling in
    motion_intensity: true
  - id: b
    duration_s: 4
    prompt: a city street at night with traffic
    style_strength: strong
    motion_intensity: -0.1
"""


def test_bad_knobs_are_located_errors_with_the_range(tmp_path: Path) -> None:
    path = _write(tmp_path, BAD)
    with pytest.raises(StoryboardError) as caught:
        load_storyboard(path)
    found = {(i.field, i.line, i.column): i.message for i in caught.value.issues}
    assert set(found) == {
        ("generation.style_strength", _line(BAD, "style_strength: 1.5"), 3),
        ("scenes[0].motion_intensity", _line(BAD, "motion_intensity: true"), 5),
        ("scenes[1].style_strength", _line(BAD, "style_strength: strong"), 5),
        ("scenes[1].motion_intensity", _line(BAD, "motion_intensity: -0.1"), 5),
    }
    assert found[("generation.style_strength", 3, 3)].startswith("1.5 is outside 0.0-1.0; 0.6-0.7 suits")
    # true is not read as 1.0, and text is not a number.
    assert "expected a number from 0.0 to 1.0 (got True)" in found[("scenes[0].motion_intensity", 8, 5)]
    assert "(got 'strong')" in found[("scenes[1].style_strength", 12, 5)]
    # The command line prints them as file:line:column: field: problem, exit code 2.
    assert main(["validate", str(path)]) == 2


def test_a_scene_knob_overrides_the_generation_default_and_reaches_the_plan(tmp_path: Path) -> None:
    text = f"""\
version: 1
output: {{length_s: 8, resolution: 160x96, crossfade_s: 0}}
generation: {{segment_s: 4, style_strength: 0.65}}
scenes:
  - {{id: a, duration_s: 4, prompt: {PROMPT}, motion_intensity: 0.2}}
  - {{id: b, duration_s: 4, prompt: {PROMPT}, style_strength: 0.9}}
"""
    _, plan = load_and_plan(_write(tmp_path, text))
    assert [s.knobs() for s in plan.segments] == [
        {"style_strength": 0.65, "motion_intensity": 0.2},
        {"style_strength": 0.9},
    ]
    # Without knobs nothing is set: the backend's own defaults.
    board = Storyboard.model_validate({"scenes": [{"id": "a", "prompt": PROMPT, "duration_s": 60}]})
    assert all(s.knobs() == {} for s in make_plan(board).segments)


def test_schema_gives_the_range_and_the_guidance(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    for model in ("Scene", "GenerationSettings"):
        props = schema["$defs"][model]["properties"]
        for knob in ("style_strength", "motion_intensity"):
            number = next(option for option in props[knob]["anyOf"] if option.get("type") == "number")
            assert (number["minimum"], number["maximum"]) == (0, 1), (model, knob)
        assert "0.6-0.7 for product and architecture walkthroughs" in props["style_strength"]["description"]
        assert "0.8-0.9 for brand content" in props["style_strength"]["description"]
        assert "above about 0.85 motion becomes constrained" in props["style_strength"]["description"]


# --- Capabilities, requests and cache keys ----------------------------------------------------


def _knob_board(backend: str) -> Storyboard:
    return Storyboard.model_validate(
        {
            "output": {"length_s": 8, "resolution": "1280x720"},
            "generation": {
                "backend": backend,
                "segment_s": 8,
                "style_strength": 0.7,
                "motion_intensity": 0.4,
            },
            "scenes": [{"id": "a", "prompt": PROMPT, "duration_s": 8}],
        }
    )


def test_requests_carry_only_the_knobs_the_backend_declares() -> None:
    relay = make_plan(_knob_board("relay"))
    seg = relay.segments[0]
    request = request_for(relay, seg, 0, None, None)
    assert request.knobs() == {"style_strength": 0.7, "motion_intensity": 0.4}

    gemini = make_plan(_knob_board("gemini"))
    request = request_for(gemini, gemini.segments[0], 0, None, None)
    assert request.knobs() == {}
    assert gemini.knobs_not_sent(gemini.segments[0]) == {"style_strength": 0.7, "motion_intensity": 0.4}
    # Capabilities are data: the same backend declaring the knob gets it sent, whatever its name.
    caps = registry.capabilities("gemini").model_copy(update={"style_strength": True})
    taking = gemini.model_copy(update={"capabilities": caps})
    assert request_for(taking, taking.segments[0], 0, None, None).knobs() == {"style_strength": 0.7}
    assert taking.knobs_not_sent(taking.segments[0]) == {"motion_intensity": 0.4}


def test_knobs_are_part_of_the_take_key() -> None:
    plan = make_plan(_knob_board("relay"))
    seg = plan.segments[0]
    keys = {
        request_for(plan, s, 0, None, None).key()
        for s in (
            seg,
            seg.model_copy(update={"style_strength": 0.9}),
            seg.model_copy(update={"motion_intensity": 0.9}),
            seg.model_copy(update={"style_strength": None, "motion_intensity": None}),
        )
    }
    assert len(keys) == 4
    # A request without knobs keeps the key it had before knobs existed, so cached takes stay valid.
    plain = request_for(
        plan, seg.model_copy(update={"style_strength": None, "motion_intensity": None}), 0, None, None
    )
    data = plain.model_dump(mode="json")
    del data["style_strength"], data["motion_intensity"]
    legacy = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]
    assert plain.key() == legacy


# --- Lint ---------------------------------------------------------------------------------------


def _board(tmp_path: Path, scene: str, generation: str = "") -> tuple[Path, str]:
    text = f"version: 1\ngeneration: {{backend: local{generation}}}\nscenes:\n  - id: a\n    duration_s: 8\n{scene}"
    return _write(tmp_path, text), text


def _rules(path: Path, backend: str | None = None) -> list[tuple[str, str, int | None]]:
    return [(w.rule, w.issue.field, w.issue.line) for w in lint_storyboard(path, backend=backend)]


def test_high_style_strength_with_large_motion_gets_the_seeds_warning(tmp_path: Path) -> None:
    scene = f"    camera: whip pan right\n    style_strength: 0.9\n    prompt: {PROMPT}\n"
    path, text = _board(tmp_path, scene)
    [warning] = lint_storyboard(path)
    assert (warning.rule, warning.issue.field, warning.issue.line) == (
        "style-motion",
        "scenes[0].style_strength",
        _line(text, "style_strength: 0.9"),
    )
    assert "above about 0.85 motion becomes constrained" in warning.message
    assert "'whip pan' (in `camera:`)" in warning.message and "0.6-0.7" in warning.message
    # At 0.85 itself, with a modest move, or with the fast motion negated: no warning.
    assert _rules(_board(tmp_path, scene.replace("0.9", "0.85"))[0]) == []
    assert _rules(_board(tmp_path, scene.replace("whip pan right", "slow pan left"))[0]) == []
    calm = f"    camera: static\n    style_strength: 0.95\n    prompt: {PROMPT}, no fast motion\n"
    assert [r for r, _, _ in _rules(_board(tmp_path, calm)[0])] == ["negation"]


def test_the_generation_default_and_a_high_motion_intensity_count_too(tmp_path: Path) -> None:
    # The strength comes from generation:, so the warning points there; the large motion is asked
    # for by motion_intensity and by a tracking shot in the prompt.
    scene = f"    motion_intensity: 0.8\n    prompt: A tracking shot as {PROMPT}\n"
    path, _ = _board(tmp_path, scene, ", style_strength: 0.9")
    [warning] = lint_storyboard(path)
    assert (warning.rule, warning.issue.field, warning.issue.line) == (
        "style-motion",
        "generation.style_strength",
        2,
    )
    assert "'tracking shot' (in the prompt)" in warning.message and "motion_intensity 0.8" in warning.message


def test_validate_warns_where_the_backend_cannot_take_a_knob(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scene = f"    camera: static\n    motion_intensity: 0.3\n    prompt: {PROMPT}\n"
    path, text = _board(tmp_path, scene, ", style_strength: 0.7")
    assert main(["validate", str(path)]) == 0  # local takes both
    assert "warning" not in capsys.readouterr().err
    assert main(["validate", str(path), "--backend", "gemini"]) == 0  # a warning never blocks
    err = capsys.readouterr().err
    assert (
        f"{path}:2:30: generation.style_strength: warning[knob-unsupported]: the gemini backend does not take style_strength"
        in err
    )
    line = _line(text, "motion_intensity: 0.3")
    assert (
        f"{path}:{line}:5: scenes[0].motion_intensity: warning[knob-unsupported]: the gemini backend" in err
    )
    assert "not sent" in err and "knobs_not_sent" in err
    assert main(["validate", str(path), "--backend", "gemini", "--strict"]) == 2


# --- The local generator ------------------------------------------------------------------------


def _hs_hist(frame: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(frame, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [30, 32], [0, 180, 0, 256])
    return cv2.normalize(hist, hist).flatten()


def _local_take(tmp_path: Path, name: str, **fields: object) -> list[np.ndarray]:
    """Render a tiny local take and decode it again: every frame, as the file holds it."""
    base: dict[str, object] = {
        "backend": "local",
        "model": "local-fast",
        "kind": "generate",
        "prompt": "a calm sea at dawn",
        "camera": "static",
        "duration_s": 4.0,
        "width": 160,
        "height": 96,
        "fps": "24",
        "seed": 3,
        "audio": False,
        "options": {"drift": 0.0},
    }
    image = fields.pop("image", None)
    request = GenerationRequest(**{**base, **fields})  # type: ignore[arg-type]
    dest = tmp_path / f"{name}.mp4"
    LocalBackend().generate(request, TakeInput(first_frame_path=image), dest)  # type: ignore[arg-type]
    return list(ffmpeg.read_frames(dest, 160, 96))


def test_a_higher_style_strength_keeps_the_first_frames_colours_over_the_take(tmp_path: Path) -> None:
    # A reference image in colours far from the prompt's (a sea): red, green and a white block.
    image = np.zeros((96, 160, 3), np.uint8)
    image[:, :80], image[:, 80:], image[30:60, 50:110] = (40, 40, 220), (60, 200, 60), (230, 230, 230)
    ref = tmp_path / "ref.png"
    imaging.write_png(ref, image)
    similarity = {}
    for strength in (0.2, 0.6, 0.95):
        frames = _local_take(tmp_path, f"s{strength}", image=ref, style_strength=strength)
        first = _hs_hist(frames[0])
        similarity[strength] = float(
            np.mean([cv2.compareHist(first, _hs_hist(f), cv2.HISTCMP_CORREL) for f in frames])
        )
    assert similarity[0.95] > 0.98  # held: the colours of the first frame stay
    assert similarity[0.95] > similarity[0.6] > similarity[0.2] + 0.05, similarity


def _travel(frames: list[np.ndarray], until: int) -> float:
    """How far the picture moved between the first frame and frame ``until`` (phase correlation)."""
    grey = [cv2.cvtColor(frames[i], cv2.COLOR_BGR2GRAY).astype(np.float32) for i in (0, until)]
    (dx, dy), _ = cv2.phaseCorrelate(grey[0], grey[1])
    return float(np.hypot(dx, dy))


def test_a_higher_motion_intensity_moves_the_camera_further(tmp_path: Path) -> None:
    moved = {
        m: _travel(_local_take(tmp_path, f"m{m}", camera="pan right", duration_s=2.0, motion_intensity=m), 36)
        for m in (0.1, 0.5, 0.9)
    }
    # The usual pace at 0.5 is 0.045 frame widths a second: 1.5 s at 160 px is about 11 px.
    assert 7 < moved[0.5] < 15, moved
    assert moved[0.9] > 1.5 * moved[0.5] > 2 * moved[0.1], moved


# --- Through renders: relay on the simulator, local with its report and timeline ---------------


@pytest.mark.slow
def test_relay_render_sends_both_knobs_and_the_simulator_applies_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPOSER_RELAY_API_KEY", "rk-knobs-0123456789")
    monkeypatch.delenv("COMPOSER_RELAY_BASE_URL", raising=False)
    board = {
        "output": {"length_s": 4, "resolution": "1280x720", "crossfade_s": 0},
        "generation": {"backend": "relay", "segment_s": 4, "seed": 5, "style_strength": 0.7},
        "continuity": {"max_attempts": 1},
        "scenes": [
            {"id": "sea", "prompt": PROMPT, "duration_s": 4, "camera": "static", "motion_intensity": 0.3}
        ],
    }
    path = _write(tmp_path, yaml.safe_dump(board))
    with Simulator(latency_s=0.05, seed=1) as sim:
        base = sim.base_url + "/relay"
        result = render(path, tmp_path / "out", base_url=base, jobs=FAST)
        manifest = json.loads(result.manifest_path.read_text())
        [take] = manifest["takes"]
        headers = {"authorization": "Bearer rk-knobs-0123456789"}
        with httpx.Client(base_url=base, headers=headers) as client:
            # What the simulator applied to the video it made (it echoes the checked knobs).
            job = client.get(f"/videos/{take['operations'][-1]}").json()
            assert job["status"] == "COMPLETED"
            assert job["parameters"] == {"style_strength": 0.7, "motion_intensity": 0.3}
            # And it checks them: out of range, or not a number, is a 400 naming the field.
            body = {
                "model": "veo-3.1-fast",
                "prompt": PROMPT,
                "parameters": {"duration": 4, "style_strength": 1.5},
            }
            refused = client.post("/videos/generate", json=body)
            assert refused.status_code == 400
            assert (
                "parameters.style_strength must be a number from 0.0 to 1.0"
                in refused.json()["error"]["message"]
            )
            body["parameters"] = {"duration": 4, "motion_intensity": "high"}
            assert client.post("/videos/generate", json=body).status_code == 400
        # The same storyboard through gemini, which takes neither knob: not sent, and recorded so.
        monkeypatch.setenv("GEMINI_API_KEY", "AIza-knobs-0123456789")
        monkeypatch.delenv("GOOGLE_GEMINI_BASE_URL", raising=False)
        gemini = render(path, tmp_path / "gemini", backend="gemini", base_url=sim.base_url, jobs=FAST)
    assert manifest["knobs_not_sent"] == []
    assert result.outputs[0].is_file()
    not_sent = json.loads(gemini.manifest_path.read_text())["knobs_not_sent"]
    assert not_sent == [
        {"segment": "o1-s1", "knob": "style_strength", "value": 0.7, "backend": "gemini"},
        {"segment": "o1-s1", "knob": "motion_intensity", "value": 0.3, "backend": "gemini"},
    ]
    page = (tmp_path / "gemini" / "report.html").read_text()
    assert "style_strength 0.7 (not sent) · motion_intensity 0.3 (not sent)" in page


@pytest.mark.slow
def test_local_render_records_the_knobs_in_the_report_and_the_timeline(tmp_path: Path) -> None:
    board = {
        "output": {"length_s": 4, "resolution": "160x96", "crossfade_s": 0},
        "generation": {"segment_s": 4, "seed": 5, "style_strength": 0.65, "motion_intensity": 0.4},
        "continuity": {"max_attempts": 1},
        "scenes": [{"id": "sea", "prompt": PROMPT, "duration_s": 4, "camera": "static"}],
    }
    result = render(_write(tmp_path, yaml.safe_dump(board)), tmp_path / "out", cache_dir=tmp_path / "cache")
    out = tmp_path / "out"
    page = (out / "report.html").read_text()
    assert "0.00–4.00 s · style_strength 0.65 · motion_intensity 0.4 <span" in page
    report = json.loads((out / "report.json").read_text())
    [seg] = report["outputs"][0]["segments"]
    assert seg["knobs"] == {"style_strength": 0.65, "motion_intensity": 0.4} and seg["knobs_not_sent"] == []
    timeline = otio.adapters.read_from_file(str(out / "timeline.otio"))
    [clip] = list(timeline.video_tracks()[0].find_clips())
    assert clip.metadata["composer"]["knobs"] == {"style_strength": 0.65, "motion_intensity": 0.4}
    assert clip.metadata["composer"]["knobs_not_sent"] == {}
    assert json.loads(result.manifest_path.read_text())["knobs_not_sent"] == []


def test_a_backend_that_cannot_take_a_knob_leaves_it_out_and_says_so() -> None:
    plan = make_plan(_knob_board("gemini"))
    takes = {
        s.id: KeptTake(key=f"k-{s.id}", path=f"/t/{s.id}.mp4", frames=s.clip_frames + 24)
        for s in plan.segments
    }
    data = describe(plan, takes).tracks[0].clips[0].metadata["composer"]
    assert data["knobs"] == {} and data["knobs_not_sent"] == {"style_strength": 0.7, "motion_intensity": 0.4}
