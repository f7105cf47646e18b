"""The take store on the command line: ``composer cache ls|du|verify|gc``, and the money lines.

What lives here: the ``cache`` subcommand (its parser and what each action prints) and
:func:`money_lines`, the last lines ``composer render`` prints about possible duplicate
charges and paid work left by earlier runs. What does not: the store itself
(``jobs/cache.py``), leases (``jobs/lease.py``) or the journal (``jobs/journal.py``).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any


def money_lines(manifest: Any) -> list[str]:
    """Lines naming every possible duplicate charge and leftover paid operation of a render."""
    lines: list[str] = []
    for dup in getattr(manifest, "possible_duplicate_charges", []):
        creates = dup.get("unanswered_creates", [])
        when = ", ".join(f"#{c['attempt']} at {c['sent_at']}" for c in creates)
        ops = ", ".join(dup.get("operations", [])) or "none"
        extra = ", ".join(dup.get("duplicate_operations", []))
        parts = [f"possible duplicate charge: {dup['take']} (take {dup['key'][:12]}): operation(s) {ops}"]
        if extra:
            parts.append(f"duplicates found: {extra}")
        if creates:
            parts.append(f"{len(creates)} create(s) without an answer: {when}")
        if dup.get("possibly_charged_usd"):
            parts.append(f"up to ${dup['possibly_charged_usd']:.2f} beyond the take's cost")
        lines.append("; ".join(parts) + "; check these against the service's bill")
    possibly = getattr(manifest, "possibly_charged_usd", 0.0)
    if possibly:
        lines.append(
            f"possibly charged: up to ${possibly:.2f} beyond the delivered takes' ${manifest.cost_usd:.2f}, "
            "if every create without an answer started an operation"
        )
    for left in getattr(manifest, "left_by_earlier_runs", []):
        what = (
            f"operation {left['operation']}"
            if left.get("operation")
            else f"{left.get('unanswered_creates', 0)} create(s) without an answer"
        )
        lines.append(
            f"left by an earlier run: take {left['key'][:12]} ({left.get('prompt', '')!r}): {what}, "
            f"{left.get('state')} at {left.get('updated_at')}; render its storyboard again to finish it"
        )
    return lines


def add_parser(sub: Any) -> None:
    """Register ``composer cache`` on the CLI's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser("cache", help="list, size, verify or clean the take store")
    p.add_argument(
        "--cache", metavar="DIR", help="the store (default $COMPOSER_CACHE, else the platform cache folder)"
    )
    p.set_defaults(func=run)
    actions = p.add_subparsers(dest="cache_action", required=True)
    actions.add_parser("ls", help="list the takes in the store")
    actions.add_parser("du", help="the store's size, by kind of file")
    actions.add_parser("verify", help="check every take's size and sha256; quarantine damaged ones")
    gc = actions.add_parser("gc", help="remove takes not used for DAYS, old quarantine and temporaries")
    gc.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    gc.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")


def run(args: argparse.Namespace) -> int:
    from composer.errors import ComposerError
    from composer.jobs.cache import TakeCache

    cache = TakeCache(Path(args.cache) if args.cache else None)
    if args.cache_action == "ls":
        return _ls(cache)
    if args.cache_action == "du":
        return _du(cache)
    if args.cache_action == "verify":
        return _verify(cache)
    if args.older_than < 0:
        raise ComposerError(f"--older-than must not be negative, not {args.older_than:g}")
    return _gc(cache, args.older_than * 86400.0, dry_run=args.dry_run)


def _keys(cache: Any) -> list[str]:
    return sorted(p.parent.name for p in (cache.root / "takes").glob("*/*/take.json"))


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _ls(cache: Any) -> int:
    count = 0
    for key in _keys(cache):
        take = cache.read(key)
        if take is None:
            continue
        count += 1
        r = take.request
        print(
            f"{key[:12]}  {r.backend}/{r.model}  {r.kind} {take.clip.duration_s:.2f} s  "
            f"{take.clip.width}x{take.clip.height}  {_mb(_size(take.path))}  {take.created_at}  "
            f"{r.prompt[:40]!r}"
        )
    print(f"{count} take(s) in {cache.root}")
    return 0


def _du(cache: Any) -> int:
    root = cache.root
    kinds = ["takes", "frames", "checks", "journal", "leases", "quarantine"]
    total = 0
    for kind in kinds:
        size = _size(root / kind)
        total += size
        files = sum(1 for p in (root / kind).rglob("*") if p.is_file()) if (root / kind).is_dir() else 0
        print(f"{kind:<11} {files:>6} file(s)  {_mb(size):>10}")
    print(f"{'total':<11} {'':>14}  {_mb(total):>10}  ({root})")
    return 0


def _verify(cache: Any) -> int:
    bad = 0
    keys = _keys(cache)
    for key in keys:
        take = cache.read(key)
        problem = "take.json cannot be read" if take is None else cache.problem(take, hash_check=True)
        if problem is None:
            continue
        bad += 1
        where = cache.quarantine(key, problem)
        print(f"{key[:12]}: {problem}; moved to {where}" if where else f"{key[:12]}: {problem}")
    print(f"{len(keys) - bad} of {len(keys)} take(s) intact" + (f"; {bad} quarantined" if bad else ""))
    if bad:
        print("the next render of their storyboards makes them again")
    return 1 if bad else 0


def _gc(cache: Any, older_than_s: float, *, dry_run: bool) -> int:
    from composer.jobs.journal import Journal
    from composer.jobs.lease import Leases

    now = time.time()
    leases = Leases(cache.root / "leases")
    pending = {e.key for e in Journal(cache.root / "journal").pending()}
    gone: list[Path] = []
    for meta in sorted((cache.root / "takes").glob("*/*/take.json")):
        key = meta.parent.name
        # A take being made or with paid work in flight stays whatever its age.
        if key in pending or leases.held(key) or now - meta.stat().st_mtime <= older_than_s:
            continue
        gone.append(meta.parent)
    for pattern in ("frames/*.png", "checks/*.json"):
        gone += [p for p in cache.root.glob(pattern) if now - p.stat().st_mtime > older_than_s]
    gone += [p for p in cache.root.glob("quarantine/*") if now - p.stat().st_mtime > older_than_s]
    freed = sum(_size(p) for p in gone)
    if not dry_run:
        for path in gone:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        swept = cache.sweep(older_than_s=min(older_than_s, 3600.0))
        leases.sweep()
        gone += swept
    verb = "would remove" if dry_run else "removed"
    print(f"{verb} {len(gone)} item(s), {_mb(freed)}, not used for {older_than_s / 86400:g} day(s)")
    return 0
