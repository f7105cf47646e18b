"""The operation journal: every paid request is written down before it is sent and once it is known.

One small JSON file per take key, beside the take cache::

    <cache>/journal/<key>.json   {state: "submitting" | "submitted", operation, request, attempts, ...}

Every create is written down *before* it is sent, as one more :class:`CreateAttempt` (its
number, when it was sent, outcome ``sending``), and its outcome after: ``created`` (with the
service's operation name, and the entry becomes ``submitted`` before the first poll),
``not_sent`` (the request never reached the service), ``refused`` (an answer that started
nothing), or ``ambiguous`` (a 5xx after the body was sent, a dropped or timed-out answer: an
operation may exist, and it counts as spent until a listing proves otherwise). A run that is
killed and started again finds the entry: a ``submitted`` operation is polled and downloaded
instead of submitted again (nothing is paid twice); an attempt still ``sending`` is an
ambiguous create of the killed run, reported as a possible duplicate charge if another create
follows. The entry is removed once the take is in the cache.

Entries are read and written only by the holder of the take's lease (``lease.py``), and every
write is flushed to the disk with its folder (an entry is never empty after a power loss).

With a shared take store (``store.py``, ``COMPOSER_STORE``) the entries live in the store, under
``journal/``, not in the local cache: a machine that dies mid-render leaves its operations
where the machine that takes its leases over finds them, polls and downloads them, and never
creates them again. The store is then the only copy (a put is durable once answered).

What does not live here: the decision to submit, poll or retry (``jobs/remote.py``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, Protocol

from composer.backends.base import GenerationRequest
from composer.backends.remote import Operation
from composer.files import fsync_folder, write_json_atomic
from composer.models import Frozen

JOURNAL_VERSION = 2

Outcome = Literal["sending", "created", "not_sent", "refused", "ambiguous", "adopted", "nothing"]


class CreateAttempt(Frozen):
    """One create request: written down before it is sent, then its outcome."""

    number: int
    sent_at: float  # epoch seconds, to match the service's own records and listings
    outcome: Outcome = "sending"
    operation: str | None = None
    error: str = ""
    run: str = ""  # the process that sent it (host:pid)

    @property
    def possibly_charged(self) -> bool:
        """True when this create may have started an operation nobody knows the name of."""
        return self.outcome in ("sending", "ambiguous")


class JournalEntry(Frozen):
    version: int = JOURNAL_VERSION
    key: str
    state: Literal["submitting", "submitted"]
    request: GenerationRequest
    operation: Operation | None = None
    creates_sent: int = 0
    possible_duplicates: int = 0
    operations: tuple[str, ...] = ()
    attempts: tuple[CreateAttempt, ...] = ()
    #: Operations a listing found beside the one adopted: duplicates with known names.
    duplicates: tuple[str, ...] = ()
    owner: str = ""
    updated_at: str = ""


class SharedFolder(Protocol):
    """A folder of small objects in a shared store (``store.StoreFolder``)."""

    def put(self, name: str, data: bytes) -> None: ...
    def get(self, name: str) -> bytes | None: ...
    def remove(self, name: str) -> None: ...
    def names(self) -> list[str]: ...


class Journal:
    """Journal entries under ``root`` (one file per take key), or in ``shared`` when given."""

    def __init__(self, root: Path, shared: SharedFolder | None = None) -> None:
        self.root = root
        self.shared = shared

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> JournalEntry | None:
        try:
            if self.shared is not None:
                data = self.shared.get(f"{key}.json")
                return None if data is None else JournalEntry.model_validate_json(data)
            return JournalEntry.model_validate_json(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def write(self, entry: JournalEntry) -> JournalEntry:
        stamped = entry.model_copy(
            update={"updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        )
        if self.shared is not None:
            self.shared.put(f"{entry.key}.json", stamped.model_dump_json().encode())
            return stamped
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path(entry.key), stamped.model_dump(mode="json"), durable=True)
        return stamped

    def remove(self, key: str) -> None:
        if self.shared is not None:
            self.shared.remove(f"{key}.json")
            return
        self.path(key).unlink(missing_ok=True)
        fsync_folder(self.root)

    def pending(self) -> list[JournalEntry]:
        """Every entry (operations submitted by runs that did not finish)."""
        if self.shared is not None:
            names = sorted(n for n in self.shared.names() if n.endswith(".json"))
        else:
            names = sorted(p.name for p in self.root.glob("*.json"))
        entries = []
        for name in names:
            entry = self.get(name.removesuffix(".json"))
            if entry is not None:
                entries.append(entry)
        return entries
