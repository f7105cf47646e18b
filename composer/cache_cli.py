"""The take store on the command line: ``composer cache ls|du|verify|gc``, and the money lines.

What lives here: the ``cache`` subcommand (its parser and what each action prints) and
:func:`money_lines`, the last lines ``composer render`` prints about possible duplicate
charges and paid work left by earlier runs. What does not: the store itself
(``jobs/cache.py``), leases (``jobs/lease.py``) or the journal (``jobs/journal.py``).
"""

from __future__ import annotations

import argparse
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
        lines.append("; ".join(parts) + "; check these against the service's bill")
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
    p.set_defaults(func=run)
    actions = p.add_subparsers(dest="cache_action", required=True)
    actions.add_parser("ls", help="list the takes in the store")
    actions.add_parser("du", help="the store's size, by kind of file")
    actions.add_parser("verify", help="check every take's size and sha256; quarantine bad ones")
    gc = actions.add_parser("gc", help="remove takes not used for DAYS, and stale temporaries")
    gc.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    gc.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError
