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
from composer.files import fsync_folder, write_bytes_atomic
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


class Folder(Protocol):
    """A folder of small objects: a local one (:class:`LocalFolder`) or a store's (``store.StoreFolder``)."""

    def put(self, name: str, data: bytes) -> None: ...
    def get(self, name: str) -> bytes | None: ...
    def remove(self, name: str) -> None: ...
    def names(self) -> list[str]: ...


class LocalFolder:
    """Files in a local folder, each write and removal flushed to the disk with the folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, name: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.root / name, data, durable=True)

    def get(self, name: str) -> bytes | None:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            return None

    def remove(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)
        fsync_folder(self.root)

    def names(self) -> list[str]:
        return [p.name for p in self.root.glob("*")] if self.root.is_dir() else []


class Journal:
    """Journal entries under ``root`` (one file per take key), or in ``shared`` when given."""

    def __init__(self, root: Path, shared: Folder | None = None) -> None:
        self.folder: Folder = shared if shared is not None else LocalFolder(root)

    def get(self, key: str) -> JournalEntry | None:
        try:
            data = self.folder.get(f"{key}.json")
            return None if data is None else JournalEntry.model_validate_json(data)
        except (OSError, ValueError):
            return None

    def write(self, entry: JournalEntry) -> JournalEntry:
        stamped = entry.model_copy(
            update={"updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        )
        self.folder.put(f"{entry.key}.json", stamped.model_dump_json(indent=2).encode() + b"\n")
        return stamped

    def remove(self, key: str) -> None:
        self.folder.remove(f"{key}.json")

    def pending(self) -> list[JournalEntry]:
        """Every entry (operations submitted by runs that did not finish)."""
        entries = []
        for name in sorted(n for n in self.folder.names() if n.endswith(".json")):
            entry = self.get(name.removesuffix(".json"))
            if entry is not None:
                entries.append(entry)
        return entries
