"""Issue 17: mutated storyboards end in a valid plan or a located exit-2 message, never a traceback.

A short budget here (deterministic, so the suite is stable); ``benchmarks/bench_fuzz.py`` runs
the same cases for longer with fresh seeds and prints how many it ran and what it found.
"""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz_cases import check, prepare, storyboards


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    prepare(path)
    return path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_mutated_storyboards_are_planned_or_refused_with_a_line(folder: Path) -> None:
    before = _peak_rss_mb()

    @settings(
        max_examples=300,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(storyboards())
    def case(board: tuple[str, str]) -> None:
        finding = check(folder, *board)
        assert finding is None, f"{finding}\n--- the storyboard ---\n{board[0][:2000]}"

    case()
    assert _peak_rss_mb() - before < 300  # a few hundred MB at most, for all cases together


def test_bytes_that_are_not_utf8_are_located(folder: Path) -> None:
    # Found by the fuzz checker: "not UTF-8 text" came without a line.
    assert check(folder, "title: a\nscenes:\n  - id: \udcff\n", ".yaml") is None
