"""The content-addressed take cache.

A take is stored under its request's key (the hash of the canonical request: backend,
model, prompt, image hash, seed, duration, size, parent take...)::

    <root>/takes/<key[:2]>/<key>/take.mp4    the clip (written to a temporary name, renamed)
    <root>/takes/<key[:2]>/<key>/take.json   request + clip facts; written last, so it marks
                                              the take complete
    <root>/frames/<key>-<frame>.png          frames extracted from takes (continuations)
    <root>/checks/<key>.json                 drift and seam measurements of an attempt

``<root>`` is ``$COMPOSER_CACHE``, else the platform cache folder + ``/composer``. A take
whose ``take.json`` exists is never generated again, so a killed render started again
reuses every finished take. What does not live here: deciding what to generate (``runner.py``).
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from composer.backends.base import ClipInfo, GenerationRequest
from composer.errors import EnvironmentProblem
from composer.files import write_json_atomic
from composer.models import Frozen

__all__ = ["Take", "TakeCache", "default_cache_dir", "write_json_atomic"]

TAKE_VERSION = 1


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
    path: Path
    request: GenerationRequest
    clip: ClipInfo
    created_at: str
    generation_s: float


class TakeCache:
    """Takes on disk, addressed by request key."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_cache_dir()).expanduser()
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

    def get(self, key: str) -> Take | None:
        """The finished take for ``key``, or None (missing, incomplete or unreadable)."""
        meta = self.folder(key) / "take.json"
        try:
            take = Take.model_validate_json(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not take.path.is_file() or take.path.stat().st_size == 0:
            return None
        return take

    def commit(self, request: GenerationRequest, clip: ClipInfo, generation_s: float) -> Take:
        """Record a clip the backend wrote to :meth:`clip_path`; the take is complete after this."""
        key = request.key()
        take = Take(
            key=key,
            path=self.clip_path(key),
            request=request,
            clip=clip,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            generation_s=round(generation_s, 3),
        )
        write_json_atomic(self.folder(key) / "take.json", take.model_dump(mode="json"))
        return take
