"""Fuzz ``composer validate`` with mutated storyboards for a while; print cases run and findings.

Run: ``python benchmarks/bench_fuzz.py [--seconds 60] [--seed N]``. The cases are those of
``tests/fuzz_cases.py`` (text and structure mutations of valid storyboards, YAML and JSON);
the test suite runs a short fixed budget of them, this runs fresh seeds until the time is up.
A finding is any outcome but exit 0 or a located exit 2 within a few seconds (a traceback, an
unlocated message, a slow case). It prints the number of cases, cases per second, the slowest
case, the peak memory of the process and every distinct finding with a storyboard that shows it.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fuzz_cases import check, prepare, storyboards

BATCH = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to fuzz (default 60)")
    parser.add_argument(
        "--seed", type=int, default=int(time.time()), help="first batch's seed (default: the clock)"
    )
    args = parser.parse_args()
    findings: dict[str, str] = {}
    cases, slowest = 0, 0.0
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="composer-fuzz-") as work:
        folder = Path(work)
        prepare(folder)
        batch = 0
        while time.monotonic() - began < args.seconds:

            @seed(args.seed + batch)
            @settings(
                max_examples=BATCH,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(storyboards())
            def run(board: tuple[str, str]) -> None:
                nonlocal cases, slowest
                if time.monotonic() - began >= args.seconds:
                    return
                started = time.monotonic()
                finding = check(folder, *board)
                slowest = max(slowest, time.monotonic() - started)
                cases += 1
                if finding is not None:
                    # One example per kind of finding (its first line, without the temp path).
                    kind = finding.splitlines()[0].replace(str(folder), "DIR")[:160]
                    findings.setdefault(kind, board[0][:400])

            run()
            batch += 1
    wall = time.monotonic() - began
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"bench_fuzz: seed {args.seed}, {cases} cases in {wall:.1f} s ({cases / wall:.1f}/s)")
    print(f"slowest case {slowest * 1000:.0f} ms, peak memory {peak_mb:.0f} MB")
    print(f"findings: {len(findings)}")
    for kind, example in findings.items():
        print(f"- {kind}\n  storyboard: {example!r}")


if __name__ == "__main__":
    main()
