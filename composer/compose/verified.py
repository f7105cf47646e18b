"""Files composer wrote and checked: cut again later, their bodies need no decoding.

A composed output has been decoded cleanly in every part (its joins by the check after
assembly, its bodies when their takes or clips were checked or encoded by composer, or the
whole file by the full path's check). Re-joining such files (``composer compose`` of earlier
outputs, after one segment was regenerated) would otherwise decode every copied body again,
which at 1080p costs more than encoding the crossfades. :func:`record` notes a checked file in
``<cache>/verified/`` (``COMPOSER_CACHE``), :func:`known` says whether a file is one of them,
unchanged: its resolved path, size and modification time must match what was recorded (an
edited, replaced or copied file is decoded again, like any clip from elsewhere).

What does not live here: the checks themselves (``compose/render.py``, ``compose/smart.py``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from composer.files import write_json_atomic
from composer.jobs.cache import default_cache_dir

VERIFIED_VERSION = 1


def _entry(path: Path) -> tuple[Path, dict[str, object]]:
    resolved = path.resolve()
    stat = resolved.stat()
    facts: dict[str, object] = {
        "version": VERIFIED_VERSION,
        "path": str(resolved),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }
    name = hashlib.sha256(str(resolved).encode()).hexdigest()[:32]
    return default_cache_dir() / "verified" / f"{name}.json", facts


def record(path: Path, frames: int) -> None:
    """Note that ``path`` (``frames`` frames) was written by composer and decoded cleanly."""
    where, facts = _entry(path)
    where.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(where, {**facts, "frames": frames})


def known(path: Path) -> bool:
    """True if ``path`` is a file :func:`record` noted, with the same size and modification time."""
    try:
        where, facts = _entry(path)
        saved = json.loads(where.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(saved, dict) and all(saved.get(k) == v for k, v in facts.items())
