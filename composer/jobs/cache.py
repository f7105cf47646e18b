"""The content-addressed take cache.

A take is stored under its request's key (the hash of the canonical request: backend,
model, prompt, image hash, seed, duration, size, parent take...)::

    <root>/takes/<key[:2]>/<key>/take.mp4    the clip (checked under another name, then renamed)
    <root>/takes/<key[:2]>/<key>/take.json   request + clip facts (path relative to <root>, size,
                                              sha256, frames, duration); written last, so it
                                              marks the take complete
    <root>/frames/<key>-<frame>.png          frames extracted from takes (continuations)
    <root>/checks/<key>.json                 drift and seam measurements of an attempt
    <root>/journal/<key>.json                paid operations in flight (``journal.py``)
    <root>/leases/<key>.lock                 who is making a take now (``lease.py``)
    <root>/quarantine/<key>-<time>/          takes found damaged, kept for a look, never used

``<root>`` is ``$COMPOSER_CACHE``, else the platform cache folder + ``/composer``. A take
whose ``take.json`` exists and whose file has the size it records is never generated again,
so a killed render started again reuses every finished take; paths inside are relative, so a
moved or differently mounted store is reused as it is. A take whose file is missing or has
another size is moved to ``quarantine/`` and made again (with a note in the manifest);
``composer cache verify`` also checks the sha256. What does not live here: deciding what to
generate (``runner.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from composer.backends.base import ClipInfo, GenerationRequest
from composer.errors import EnvironmentProblem
from composer.files import write_json_atomic
from composer.models import Frozen

__all__ = ["Take", "TakeCache", "default_cache_dir", "write_json_atomic"]

TAKE_VERSION = 2
#: The name a clip has while it is checked, before it becomes ``take.mp4``.
UNCHECKED = "take.unchecked.mp4"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """``$COMPOSER_CACHE``, else the platform's user cache folder + ``composer``."""
    override = os.environ.get("COMPOSER_CACHE")
    if override:
        return Path(override).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "composer"


class Take(Frozen):
    """A generated clip in the cache."""

    version: int = TAKE_VERSION
    key: str
    path: Path  # absolute in memory; relative to the store in take.json
    request: GenerationRequest
    clip: ClipInfo
    created_at: str
    generation_s: float
    size: int = 0  # bytes of the clip (0: a version-1 take, not recorded)
    sha256: str = ""


class TakeCache:
    """Takes on disk, addressed by request key."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_cache_dir()).expanduser()
        #: What was found damaged and set aside in this run, for the manifest's notes.
        self.notes: list[str] = []
        try:
            (self.root / "takes").mkdir(parents=True, exist_ok=True)
            (self.root / "frames").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot create the take cache at {self.root} ({exc.strerror}); "
                "set COMPOSER_CACHE to a writable folder"
            ) from None

    def folder(self, key: str) -> Path:
        return self.root / "takes" / key[:2] / key

    def clip_path(self, key: str) -> Path:
        return self.folder(key) / "take.mp4"

    def frame_path(self, key: str, frame: int) -> Path:
        return self.root / "frames" / f"{key}-{frame}.png"

    def unchecked_path(self, key: str) -> Path:
        """Where a clip is written and checked before it becomes :meth:`clip_path`."""
        return self.folder(key) / UNCHECKED

    def read(self, key: str) -> Take | None:
        """``take.json`` of ``key`` as it is (path made absolute), or None; nothing is checked."""
        meta = self.folder(key) / "take.json"
        try:
            take = Take.model_validate_json(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        # Version 1 recorded the absolute path of a store that may have moved since: the clip
        # is always at the same place inside the store.
        return take.model_copy(update={"path": self.clip_path(key)})

    def problem(self, take: Take, *, hash_check: bool = False) -> str | None:
        """Why a take cannot be trusted (missing, empty, another size or hash), or None."""
        try:
            size = take.path.stat().st_size
        except OSError:
            return "its clip is missing"
        if size == 0:
            return "its clip is empty"
        if take.size and size != take.size:
            return f"its clip has {size} bytes, not the {take.size} recorded"
        if hash_check and take.sha256 and file_sha256(take.path) != take.sha256:
            return "its clip's sha256 differs from the one recorded"
        return None

    def get(self, key: str, *, fix: bool = True) -> Take | None:
        """The finished take for ``key``, or None (missing, incomplete, unreadable or damaged).

        A damaged take (clip missing or of another size than recorded) is quarantined, so it
        is made again, and a note says so; with ``fix=False`` (a caller without the take's
        lease, whose holder may be rewriting it) it is only not returned.
        """
        take = self.read(key)
        if take is None:
            return None
        problem = self.problem(take)
        if problem is not None:
            if fix:
                self.quarantine(key, problem)
            return None
        # Last use, for `composer cache gc --older-than`.
        with contextlib.suppress(OSError):
            os.utime(self.folder(key) / "take.json")
        return take

    def quarantine(self, key: str, reason: str) -> Path | None:
        """Move a take's folder aside to ``quarantine/`` (never used again); returns where it went."""
        folder = self.folder(key)
        dest = self.root / "quarantine" / f"{key}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(folder, dest)
        except OSError:
            # Another process moved it first, or the store refuses: at least never trust it.
            with contextlib.suppress(OSError):
                (folder / "take.json").unlink()
            dest = None
        where = f"; kept in {dest}" if dest is not None else ""
        self.notes.append(f"cached take {key[:12]} was damaged ({reason}): made again{where}")
        return dest

    def commit(self, request: GenerationRequest, clip: ClipInfo, generation_s: float) -> Take:
        """Record a clip the backend wrote to :meth:`clip_path`; the take is complete after this."""
        key = request.key()
        path = self.clip_path(key)
        take = Take(
            key=key,
            path=path,
            request=request,
            clip=clip,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            generation_s=round(generation_s, 3),
            size=path.stat().st_size,
            sha256=file_sha256(path),
        )
        data = take.model_dump(mode="json")
        data["path"] = path.relative_to(self.root).as_posix()
        write_json_atomic(self.folder(key) / "take.json", data, durable=True)
        return take

    def sweep(self, older_than_s: float = 3600.0) -> list[Path]:
        """Remove ``.part`` downloads, unchecked clips and temporaries older than ``older_than_s``."""
        removed: list[Path] = []
        now = time.time()
        patterns = (
            "takes/*/*/*.part",
            "takes/*/*/.*.tmp",
            f"takes/*/*/{UNCHECKED}",
            "*/.*.tmp",
            "frames/*.part",
        )
        for pattern in patterns:
            for path in self.root.glob(pattern):
                with contextlib.suppress(OSError):
                    if now - path.stat().st_mtime > older_than_s:
                        path.unlink()
                        removed.append(path)
        return removed

    def remove(self, key: str) -> None:
        shutil.rmtree(self.folder(key), ignore_errors=True)
