"""Run metrics: the pure numbers on hand-made records, and the Prometheus file of real renders.

The file is read back with ``prometheus_client``'s own text parser (what a scraper or
node_exporter's textfile collector accepts) and checked against ``manifest.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from composer.cli import main
from composer.export.records import FailureRecord, SegmentRecord, TakeRecord
from composer.export.run_metrics import latency, percentile, prometheus_text, run_metrics
from composer.sim import Simulator

BOARD = {
    "title": 'tiny "metrics" \\ board',  # quotes and a backslash: the label value must be escaped
    "output": {"length_s": 6, "resolution": "160x96", "fps": 24, "crossfade_s": 0.5},
    "generation": {"segment_s": 3, "seed": 7, "drift": 0},
    "scenes": [  # one 6 s output of two segments: a few seconds to render
        {"id": "sea", "prompt": "a calm sea with waves", "duration_s": 3, "camera": "pan right"},
        {"id": "city", "prompt": "a city at night", "duration_s": 3, "camera": "static"},
    ],
}
API_BOARD = {
    "title": "tiny api",
    "output": {"length_s": 4, "resolution": "160x96", "fps": 24, "crossfade_s": 0.5},
    "generation": {"segment_s": 4, "seed": 5},
    "continuity": {"max_attempts": 1},
    "scenes": [
        {"id": "sea", "prompt": "a calm sea with waves", "duration_s": 4, "camera": "pan right"},
        {"id": "city", "prompt": "a city street at night", "duration_s": 4, "camera": "static"},
    ],
}


def take(segment: str = "s1", chunk: int = 0, **fields: object) -> TakeRecord:
    base: dict[str, object] = {
        "segment": segment,
        "chunk": chunk,
        "kind": "generate",
        "key": f"{segment}-{chunk}",
        "path": f"/cache/{segment}-{chunk}.mp4",
        "cached": False,
        "frames": 96,
        "duration_s": 4.0,
        "requested_s": 4.0,
        "generation_s": 1.0,
        "cost_usd": 0.0,
    }
    return TakeRecord.model_validate({**base, **fields})


def segment(id: str, attempts: int, judge_s: float = 0.0) -> SegmentRecord:
    return SegmentRecord(
        id=id, take_key=f"{id}-0", attempts=attempts, judge_s=judge_s, started_s=0, accepted_s=1
    )


def families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    """Parsed families by name: (sample name, labels, value) for each sample."""
    return {
        f.name: [(s.name, s.labels, s.value) for s in f.samples] for f in text_string_to_metric_families(text)
    }


def one(found: dict[str, list[tuple[str, dict[str, str], float]]], sample: str, **labels: str) -> float:
    family = sample.removesuffix("_total").removesuffix("_count").removesuffix("_sum")
    values = [
        v for n, lab, v in found[family] if n == sample and all(lab.get(k) == w for k, w in labels.items())
    ]
    assert len(values) == 1, (sample, labels, found[family])
    return values[0]


# The pure numbers.


def test_percentiles_are_linear_between_neighbours_and_none_without_samples() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5  # order does not matter
    assert percentile([1.0, 2.0, 10.0], 0.95) == pytest.approx(9.2)  # at position 0.95 * 2 = 1.9
    assert percentile([1.0, 2.0, 10.0], 0.99) == pytest.approx(9.84)  # at position 1.98
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([], 0.5) is None
    empty = latency([])
    assert (empty.samples, empty.sum_s, empty.p50_s, empty.p95_s, empty.p99_s, empty.max_s) == (
        0,
        0.0,
        None,
        None,
        None,
        None,
    )
    assert latency([0.1, 0.2, 0.3]).model_dump() == {
        "samples": 3,
        "sum_s": 0.6,
        "p50_s": 0.2,
        "p95_s": 0.29,
        "p99_s": 0.298,
        "max_s": 0.3,
    }


def test_api_metrics_count_misses_once_and_sample_only_what_this_run_measured() -> None:
    takes = [
        take("s1", submit_s=0.1, wait_s=1.0, download_s=0.5, cost_usd=1.6, operations=["op1"], retries=2, polls=3),
        take("s1", 1, kind="extend", requested_s=7.0, submit_s=0.2, wait_s=2.0, download_s=0.6, cost_usd=2.8,
             operations=["op2", "op3"], possible_duplicates=1, polls=5),
        take("s2", submit_s=0.3, wait_s=10.0, download_s=0.7, cost_usd=1.6, operations=["op4"]),
        # Submitted by an interrupted run: its submit and wait happened (mostly) elsewhere.
        take("s3", resumed=True, submit_s=0.0, wait_s=0.05, download_s=0.8, cost_usd=1.6, operations=["op5"]),
        take("s4", cached=True, cost_usd=0.0, generation_s=99.0),
    ]  # fmt: skip
    segments = [segment("s1", 1, judge_s=0.4), segment("s2", 3, judge_s=1.5), segment("s3", 2, judge_s=1.0)]
    # s5's operation was abandoned (one miss, not two); s6 was refused before an operation (a
    # miss); the budget stopped s7 before anything was tried (no miss).
    failures = [
        FailureRecord(segment="s5", kind="filtered", message="blocked"),
        FailureRecord(segment="s6", kind="failed", message="400"),
        FailureRecord(segment="s7", kind="budget", message="stopped"),
    ]
    abandoned = [
        {
            "segment": "s5",
            "take": "s5 chunk 1/1",
            "operation": "op6",
            "outcome": "filtered",
            "message": "blocked",
        }
    ]
    metrics = run_metrics(
        takes,
        segments,
        failures,
        abandoned,
        backend="gemini",
        model_id="veo-3",
        remote=True,
        segments_flagged=1,
    )
    assert list(metrics.backends) == ["gemini"] and metrics.version == 1
    m = metrics.backends["gemini"]
    assert (m.takes, m.generated, m.cache_hits) == (5, 4, 1)
    assert (m.operations, m.retries, m.polls, m.possible_duplicates, m.resumed) == (6, 2, 8, 1, 1)
    assert m.abandoned_operations == {"filtered": 1}
    assert m.failures == {"budget": 1, "failed": 1, "filtered": 1}
    assert (m.segments, m.attempts, m.regenerations, m.segments_flagged) == (3, 6, 3, 1)
    assert m.unsuccessful == 2 and m.success_rate == pytest.approx(4 / 6, abs=1e-4)
    assert m.submit.samples == 3 and m.submit.p50_s == 0.2 and m.submit.max_s == 0.3
    assert (m.generation.samples, m.generation.p50_s, m.generation.p95_s) == (3, 2.0, 9.2)
    assert m.generation.p99_s == 9.84  # P99 sits between P95 and the maximum (10.0)
    assert m.download.samples == 4 and m.download.p50_s == 0.65 and m.download.max_s == 0.8
    # Judging: each attempt is one sample of its segment's mean (0.4; 0.5 x 3; 0.5 x 2).
    assert (m.judge.samples, m.judge.sum_s, m.judge.p50_s, m.judge.max_s) == (6, 2.9, 0.5, 0.5)
    assert m.generated_s == 19.0 and m.cost_usd == 7.6
    assert m.cost_per_generated_s_usd == pytest.approx(0.4)


def test_local_metrics_time_the_generator_and_have_nothing_to_submit_or_download() -> None:
    takes = [
        take("s1", generation_s=1.0),
        take("s2", generation_s=3.0),
        take("s3", cached=True, generation_s=50),
    ]
    failures = [FailureRecord(segment="s4", kind="error", message="boom")]
    m = run_metrics(takes, [segment("s1", 1), segment("s2", 1)], failures, [], backend="local",
                    model_id="procedural", remote=False).backends["local"]  # fmt: skip
    assert (m.generation.samples, m.generation.p50_s, m.generation.max_s) == (2, 2.0, 3.0)
    assert m.submit.samples == m.download.samples == 0 and m.submit.p50_s is None
    assert m.success_rate == pytest.approx(2 / 3, abs=1e-4) and m.regenerations == 0
    assert m.cost_usd == 0 and m.cost_per_generated_s_usd == 0


def test_empty_inputs_give_zeros_and_nones_and_still_a_valid_file() -> None:
    metrics = run_metrics([], [], [], [], backend="local", model_id="procedural", remote=False)
    m = metrics.backends["local"]
    assert (m.takes, m.generated, m.operations, m.regenerations, m.unsuccessful) == (0, 0, 0, 0, 0)
    assert m.success_rate is None and m.cost_per_generated_s_usd is None and m.segments_flagged is None
    assert all(getattr(m, s).p50_s is None for s in ("submit", "generation", "download", "judge"))
    found = families(prometheus_text(metrics))
    assert one(found, "composer_takes_total", outcome="generated") == 0
    assert one(found, "composer_take_generation_seconds_count") == 0
    assert not any("quantile" in lab for _, lab, _ in found["composer_take_generation_seconds"])
    assert "composer_success_ratio" not in found  # unknown is left out, not written as 0


def test_label_values_are_escaped_and_bad_label_names_refused() -> None:
    metrics = run_metrics([take()], [], [], [], backend="local", model_id="procedural", remote=False)
    title = 'a "quoted"\\ title\non two lines'
    text = prometheus_text(metrics, {"storyboard": title})
    found = families(text)
    assert one(found, "composer_takes_total", outcome="generated", storyboard=title) == 1
    for bad in ("backend", "quantile", "9lives", "__name__", "with-dash"):
        with pytest.raises(ValueError, match="label name"):
            prometheus_text(metrics, {bad: "x"})


# Real renders.


@pytest.mark.slow
def test_local_render_writes_metrics_the_parser_accepts_and_that_match_the_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    board = tmp_path / "tiny.yaml"
    board.write_text(yaml.safe_dump(BOARD))
    out = tmp_path / "out"
    prom = tmp_path / "textfile" / "composer.prom"  # the folder does not exist yet
    code = main(["render", str(board), "-o", str(out), "--metrics-file", str(prom)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"metrics: {prom.resolve()}" in captured.out
    assert [p.name for p in prom.parent.iterdir()] == ["composer.prom"]  # no temporary file left behind

    manifest = json.loads((out / "manifest.json").read_text())
    metrics = manifest["metrics"]
    assert metrics["version"] == 1 and list(metrics["backends"]) == ["local"]
    m = metrics["backends"]["local"]
    assert m["generated"] == manifest["generated"] > 0 and m["cache_hits"] == manifest["cache_hits"] == 0
    assert m["takes"] == len(manifest["takes"]) and m["success_rate"] == 1.0
    assert m["attempts"] == sum(s["attempts"] for s in manifest["segments"])
    assert m["generation"]["samples"] == manifest["generated"] and m["generation"]["p50_s"] is not None
    assert m["submit"]["samples"] == 0 and m["download"]["p50_s"] is None

    found = families(prom.read_text())
    labels = {"backend": "local", "model": manifest["model_id"], "storyboard": BOARD["title"]}
    assert one(found, "composer_takes_total", outcome="generated", **labels) == manifest["generated"]
    assert one(found, "composer_takes_total", outcome="cached", **labels) == 0
    assert one(found, "composer_cost_usd_total", **labels) == manifest["cost_usd"]
    assert one(found, "composer_regenerations_total", **labels) == m["regenerations"]
    assert one(found, "composer_success_ratio", **labels) == 1.0
    assert one(found, "composer_take_generation_seconds_count", **labels) == manifest["generated"]
    for q, field in (("0.5", "p50_s"), ("0.95", "p95_s"), ("0.99", "p99_s")):
        assert one(found, "composer_take_generation_seconds", quantile=q) == m["generation"][field]
    assert one(found, "composer_stage_max_seconds", stage="generation") == m["generation"]["max_s"]
    assert one(found, "composer_segment_failures_total", kind="filtered") == 0
    assert one(found, "composer_take_submit_seconds_count") == 0

    report = json.loads((out / "report.json").read_text())
    assert report["metrics"] == metrics
    page = (out / "report.html").read_text()
    assert "<h2>Run metrics</h2>" in page and 'class="run-metrics"' in page
    assert "<th>P95</th><th>P99</th><th>max</th>" in page
    assert f"<td>{m['generation']['p99_s']:.2f} s</td>" in page
    assert "success rate" in page and "regenerations" in page and "100.0%" in page


@pytest.mark.slow
def test_api_render_that_fails_still_writes_its_metrics(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-fake-metrics-0123456789")
    for variable in ("GOOGLE_GEMINI_BASE_URL", "GOOGLE_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    board = tmp_path / "api.yaml"
    board.write_text(yaml.safe_dump(API_BOARD))
    out, prom = tmp_path / "out", tmp_path / "api.prom"
    with Simulator(latency_s=0.05, faults="filter=1x", seed=3) as sim:
        code = main(["render", str(board), "-o", str(out), "--backend", "gemini", "--base-url", sim.base_url,
                     "--poll-interval", "0.05", "--metrics-file", str(prom)])  # fmt: skip
    assert code == 1, capsys.readouterr().err  # the safety filter struck one segment

    manifest = json.loads((out / "manifest.json").read_text())
    m = manifest["metrics"]["backends"]["gemini"]
    assert m["failures"] == {"filtered": 1} and m["abandoned_operations"] == {"filtered": 1}
    assert m["unsuccessful"] == 1 and m["success_rate"] == round(m["generated"] / (m["generated"] + 1), 4)
    found = families(prom.read_text())
    labels = {"backend": "gemini", "model": manifest["model_id"], "storyboard": "tiny api"}
    assert one(found, "composer_segment_failures_total", kind="filtered", **labels) == 1
    assert one(found, "composer_operations_abandoned_total", outcome="filtered", **labels) == 1
    assert one(found, "composer_takes_total", outcome="generated", **labels) == manifest["generated"]
    assert one(found, "composer_operations_total") == m["operations"] >= manifest["generated"] + 1
    # Both segments are submitted at once, so the other one was in flight and was finished.
    assert manifest["generated"] >= 1
    for stage in ("submit", "generation", "download"):
        name = f"composer_take_{stage}_seconds"
        assert one(found, f"{name}_count") == m[stage]["samples"] > 0
        assert one(found, name, quantile="0.5") == m[stage]["p50_s"] is not None
        assert one(found, name, quantile="0.95") == m[stage]["p95_s"]
        assert one(found, name, quantile="0.99") == m[stage]["p99_s"] is not None
