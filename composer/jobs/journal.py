"""The operation journal: every paid request is written down before it is sent and once it is known.

One small JSON file per take key, beside the take cache::

    <cache>/journal/<key>.json   {state: "submitting" | "submitted", operation, request, ...}

``submitting`` is written *before* a create request is sent, ``submitted`` (with the
service's operation name) as soon as it answers and before the first poll. A run that is
killed and started again finds the entry: a ``submitted`` operation is polled and downloaded
instead of submitted again (nothing is paid twice); a ``submitting`` entry without an
operation means the create may or may not have reached the service, so the new create is
counted as a possible duplicate. The entry is removed once the take is in the cache.

What does not live here: the decision to submit, poll or retry (``jobs/remote.py``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from composer.backends.base import GenerationRequest
from composer.backends.remote import Operation
from composer.jobs.cache import write_json_atomic
from composer.models import Frozen

JOURNAL_VERSION = 1


class JournalEntry(Frozen):
    version: int = JOURNAL_VERSION
    key: str
    state: Literal["submitting", "submitted"]
    request: GenerationRequest
    operation: Operation | None = None
    creates_sent: int = 0
    possible_duplicates: int = 0
    operations: tuple[str, ...] = ()
    updated_at: str = ""


class Journal:
    """Journal entries under ``root`` (one file per take key)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> JournalEntry | None:
        try:
            return JournalEntry.model_validate_json(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def write(self, entry: JournalEntry) -> JournalEntry:
        stamped = entry.model_copy(
            update={"updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        )
        write_json_atomic(self.path(entry.key), stamped.model_dump(mode="json"))
        return stamped

    def remove(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def pending(self) -> list[JournalEntry]:
        """Every entry on disk (operations submitted by runs that did not finish)."""
        entries = []
        for path in sorted(self.root.glob("*.json")):
            entry = self.get(path.stem)
            if entry is not None:
                entries.append(entry)
        return entries
