"""Leases on take keys: one maker per take, however many processes share a take store.

The first process to need a take that is not in the store creates its lease file::

    <store>/leases/<key>.lock   {owner, host, pid, acquired_at, heartbeat_at, ttl_s}

with an exclusive create (``O_CREAT | O_EXCL``: exactly one creator wins). The holder rewrites
``heartbeat_at`` every ``ttl_s / 3`` seconds while it makes the take and removes the file when
the take is committed (or given up). Every other process waits for the lease to go, then takes
it and finds the take in the store (and reuses it) or, if the holder failed, makes it itself.

A lease is stale, and is taken over, when its heartbeat is older than ``ttl_s`` or when its
holder ran on this host and its process is gone (a killed render is taken over at once on the
same machine). A takeover renames the stale file aside first (a rename has one winner) and
checks that what it renamed is the stale lease it judged, so two processes taking over at once
do not both make the take.

Journal entries (``journal.py``) are read and written only by a lease's holder, so an entry
left in ``submitting`` is always a dead holder's, never a live neighbour's create in flight.

A holder paused for longer than the ttl (a suspended laptop, a stopped container) has lost its
lease when it resumes, though its heartbeat task has not run yet to notice. So the paid step
asks first: ``await ensure_held(what)`` before every create checks, with a heartbeat, that each
lease the running task holds is still its own, and raises ``LeaseLost`` when one was taken
over; the caller then waits for the new holder and reuses its take (a fencing check).

What does not live here: what is made under a lease (``runner.py``, ``remote.py``). Limits:
the exclusive create and the rename must be atomic on the store's file system: true for local
disks and NFSv3+; see docs/cache.md for the object stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.errors import ComposerError
from composer.files import write_bytes_atomic

LEASE_VERSION = 1
#: A lease whose heartbeat is older than this is taken over (``$COMPOSER_LEASE_TTL_S`` overrides).
DEFAULT_TTL_S = 60.0
#: How often a waiting process looks at a lease again.
DEFAULT_POLL_S = 0.2


class LeaseLost(ComposerError):
    """This task's lease on a take was taken over while it paused: another process makes the take."""


#: The leases the running task holds, as checks that renew one and say whether it is still its
#: own. A context variable, so the check reaches the create however deep in the task it is sent.
_HELD: ContextVar[tuple[Callable[[], bool], ...]] = ContextVar("composer_leases_held", default=())


async def ensure_held(what: str) -> None:
    """Raise ``LeaseLost`` unless every lease this task holds is still its own (before paid steps)."""
    for check in _HELD.get():
        if not await asyncio.to_thread(check):
            raise LeaseLost(
                f"{what}: another process took over making this take while this one was paused for "
                "longer than the lease ttl; it is not created twice (waiting for that process's take)"
            )


@contextlib.asynccontextmanager
async def renewed_every(period_s: float, renew: Callable[[], bool], name: str) -> AsyncIterator[None]:
    """Within the block, ``renew`` (a heartbeat: False once the lease was taken over) runs every
    ``period_s`` seconds in the background until it fails, and before every paid step
    (``ensure_held``)."""

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(period_s)
            if not await asyncio.to_thread(renew):
                return

    task = asyncio.create_task(heartbeat(), name=name)
    token = _HELD.set((*_HELD.get(), renew))
    try:
        yield
    finally:
        _HELD.reset(token)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def default_ttl_s() -> float:
    try:
        return max(0.5, float(os.environ.get("COMPOSER_LEASE_TTL_S", DEFAULT_TTL_S)))
    except ValueError:
        return DEFAULT_TTL_S


@dataclass(frozen=True)
class LeaseInfo:
    """What a lease file says about its holder."""

    key: str
    owner: str
    host: str
    pid: int
    acquired_at: float
    heartbeat_at: float
    ttl_s: float

    @classmethod
    def parse(cls, data: bytes) -> LeaseInfo | None:
        try:
            raw: Any = json.loads(data)
            return cls(
                key=str(raw["key"]),
                owner=str(raw["owner"]),
                host=str(raw["host"]),
                pid=int(raw["pid"]),
                acquired_at=float(raw["acquired_at"]),
                heartbeat_at=float(raw["heartbeat_at"]),
                ttl_s=float(raw["ttl_s"]),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def dump(self) -> bytes:
        data = {"version": LEASE_VERSION, **self.__dict__}
        return (json.dumps(data, indent=2) + "\n").encode()

    def stale(self, now: float, host: str) -> bool:
        """True when the holder stopped beating, or is a process of this host that is gone."""
        if now - self.heartbeat_at > self.ttl_s:
            return True
        return self.host == host and not pid_alive(self.pid)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return True
    return True


class Leases:
    """Leases under ``root`` (one lock file per take key)."""

    def __init__(self, root: Path, *, ttl_s: float | None = None, poll_s: float = DEFAULT_POLL_S) -> None:
        self.root = root
        self.ttl_s = ttl_s if ttl_s is not None else default_ttl_s()
        self.poll_s = poll_s
        self.host = socket.gethostname()
        self.pid = os.getpid()
        #: How many leases this process waited for (another maker held them), for the run's notes.
        self.waited = 0
        self.taken_over = 0

    def path(self, key: str) -> Path:
        return self.root / f"{key}.lock"

    def read(self, key: str) -> LeaseInfo | None:
        try:
            return LeaseInfo.parse(self.path(key).read_bytes())
        except OSError:
            return None

    def held(self, key: str) -> bool:
        """True when a live holder (fresh heartbeat) has a lease on ``key``."""
        info = self.read(key)
        return info is not None and not info.stale(time.time(), self.host)

    def _new(self, key: str) -> LeaseInfo:
        now = time.time()
        return LeaseInfo(key, uuid.uuid4().hex, self.host, self.pid, now, now, self.ttl_s)

    def try_acquire(self, key: str) -> LeaseInfo | None:
        """The lease on ``key`` if it is free (or stale, taken over now), else None."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.path(key)
        info = self._new(key)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            self._take_over_if_stale(key)
            return None
        with os.fdopen(fd, "wb") as fh:
            fh.write(info.dump())
            fh.flush()
            os.fsync(fh.fileno())
        return info

    def _take_over_if_stale(self, key: str) -> None:
        path = self.path(key)
        try:
            seen = path.read_bytes()
        except OSError:
            return
        info = LeaseInfo.parse(seen)
        if info is None:
            # Being written by its creator right now, or damaged: damaged only once it is old.
            try:
                if time.time() - path.stat().st_mtime <= self.ttl_s:
                    return
            except OSError:
                return
        elif not info.stale(time.time(), self.host):
            return
        aside = path.with_name(f"{path.name}.{uuid.uuid4().hex}.stale")
        try:
            os.rename(path, aside)
        except OSError:
            return  # another process took it over first
        try:
            if aside.read_bytes() != seen:
                # Between our read and the rename the lease was taken over by someone else:
                # put theirs back (link fails if yet another lease is there already).
                with contextlib.suppress(OSError):
                    os.link(aside, path)
            else:
                self.taken_over += 1
        finally:
            aside.unlink(missing_ok=True)

    def beat(self, info: LeaseInfo) -> LeaseInfo | None:
        """Renew the heartbeat; None when the lease is no longer ours (taken over)."""
        current = self.read(info.key)
        if current is None or current.owner != info.owner:
            return None
        renewed = LeaseInfo(**{**info.__dict__, "heartbeat_at": time.time()})
        write_bytes_atomic(self.path(info.key), renewed.dump())
        return renewed

    def release(self, info: LeaseInfo) -> None:
        current = self.read(info.key)
        if current is not None and current.owner == info.owner:
            self.path(info.key).unlink(missing_ok=True)

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[LeaseInfo]:
        """Wait for the lease on ``key``, hold it (with heartbeats) for the block, then release it."""
        info = self.try_acquire(key)
        if info is None:
            self.waited += 1
        while info is None:
            await asyncio.sleep(self.poll_s)
            info = self.try_acquire(key)
        holder = {"info": info}

        def still_ours() -> bool:
            renewed = self.beat(holder["info"])
            if renewed is not None:
                holder["info"] = renewed
            return renewed is not None

        try:
            async with renewed_every(self.ttl_s / 3, still_ours, f"lease {key[:12]}"):
                yield info
        finally:
            self.release(holder["info"])

    def sweep(self) -> int:
        """Remove stale leases and leftover ``.stale`` files; returns how many went."""
        removed = 0
        if not self.root.is_dir():
            return 0
        now = time.time()
        for path in self.root.iterdir():
            if path.name.endswith(".stale"):
                with contextlib.suppress(OSError):
                    if now - path.stat().st_mtime > self.ttl_s:
                        path.unlink()
                        removed += 1
            elif path.suffix == ".lock":
                info = self.read(path.stem)
                if info is not None and info.stale(now, self.host):
                    self._take_over_if_stale(path.stem)
                    removed += 0 if path.exists() else 1
        return removed
