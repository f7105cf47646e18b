"""A shared take store at a URL (``s3://bucket/prefix``, ``gs://...``, any fsspec file system).

Set ``COMPOSER_STORE`` to a URL and every render shares its takes there: a take missing from the local cache (``cache.py``, then the platform's cache folder) is
pulled from the store, checked against its ``take.json`` (size, sha256) and reused; a take made
here is pushed there (the clip first, ``take.json`` last, so a half-pushed take is never seen).
The layout inside the store is the local one (``takes/<key[:2]>/<key>/...``).

**Leases on object storage** use conditional writes: a lease is the object
``leases/<key>.<generation>.lock``, created with ``If-None-Match: *`` (fsspec mode ``"xb"``), so
exactly one writer creates each generation. The holder rewrites its object as a heartbeat; a
lease whose heartbeat is older than its ttl is taken over by creating the *next* generation,
again conditionally, so two processes taking over at once cannot both win (no delete-and-create
race). Stores without conditional writes are not safe for concurrent writers (docs/cache.md).

What does not live here: the local cache (``cache.py``) or local leases (``lease.py``).
fsspec (and s3fs for ``s3://``) is imported only when a store URL is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from composer.errors import EnvironmentProblem
from composer.jobs.cache import Take, TakeCache, file_sha256
from composer.jobs.lease import DEFAULT_POLL_S, LeaseInfo, default_ttl_s, renewed_every

STORE_ENV = "COMPOSER_STORE"


def store_url() -> str | None:
    """The shared store's URL (``$COMPOSER_STORE``), or None: the local cache alone."""
    return os.environ.get(STORE_ENV, "").strip() or None


class SharedStore:
    """Takes and leases at ``url`` through fsspec."""

    def __init__(self, url: str, *, ttl_s: float | None = None, poll_s: float = DEFAULT_POLL_S) -> None:
        try:
            import fsspec
        except ImportError:
            raise EnvironmentProblem(
                f"the take store {url} needs fsspec (and s3fs for s3://): pip install 'composer[s3]'"
            ) from None
        try:
            self.fs, self.base = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            raise EnvironmentProblem(f"cannot open the take store {url}: {exc}") from None
        self.url = url
        self.base = self.base.rstrip("/")
        self.ttl_s = ttl_s if ttl_s is not None else default_ttl_s()
        self.poll_s = poll_s
        self.host = socket.gethostname()
        self.pid = os.getpid()

    def _path(self, *parts: str) -> str:
        return "/".join([self.base, *parts])

    def _take_dir(self, key: str) -> str:
        return self._path("takes", key[:2], key)

    # -- takes ----------------------------------------------------------------------------------

    def pull(self, key: str, cache: TakeCache) -> Take | None:
        """Copy the store's take ``key`` into ``cache`` (checked), or None when the store has none."""
        try:
            meta = self.fs.cat_file(self._take_dir(key) + "/take.json")
        except FileNotFoundError:
            return None
        try:
            recorded = json.loads(meta)
            size, sha = int(recorded["size"]), str(recorded["sha256"])
        except (ValueError, KeyError, TypeError):
            return None
        staged = cache.unchecked_path(key)
        staged.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.fs.get_file(self._take_dir(key) + "/take.mp4", str(staged))
        except FileNotFoundError:
            return None
        if staged.stat().st_size != size or file_sha256(staged) != sha:
            staged.unlink(missing_ok=True)
            cache.notes.append(f"the store's take {key[:12]} did not match its take.json: made again")
            return None
        os.replace(staged, cache.clip_path(key))
        (cache.folder(key) / "take.json").write_bytes(meta)
        return cache.get(key)

    def push(self, take: Take, cache: TakeCache) -> None:
        """Copy a committed local take to the store: the clip, then ``take.json``."""
        folder = self._take_dir(take.key)
        self.fs.put_file(str(take.path), folder + "/take.mp4")
        self.fs.put_file(str(cache.folder(take.key) / "take.json"), folder + "/take.json")

    def folder(self, name: str) -> StoreFolder:
        """A folder of small objects in the store (the operation journal's ``journal/``)."""
        return StoreFolder(self.fs, self._path(name))

    # -- leases ---------------------------------------------------------------------------------

    def _leases(self, key: str) -> list[tuple[int, str]]:
        pattern = re.compile(rf"{re.escape(key)}\.(\d+)\.lock$")
        try:
            names = self.fs.ls(self._path("leases"), detail=False, refresh=True)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            match = pattern.search(str(name))
            if match:
                found.append((int(match.group(1)), str(name)))
        return sorted(found)

    def _read(self, path: str) -> LeaseInfo | None:
        try:
            return LeaseInfo.parse(self.fs.cat_file(path))
        except FileNotFoundError:
            return None

    def held(self, key: str) -> bool:
        """True when a live holder (fresh heartbeat) has the store's lease on ``key``."""
        leases = self._leases(key)
        info = self._read(leases[-1][1]) if leases else None
        return info is not None and time.time() - info.heartbeat_at <= info.ttl_s

    def try_acquire(self, key: str) -> tuple[LeaseInfo, str] | None:
        """The lease on ``key`` (info, object path) if free or stale, else None."""
        leases = self._leases(key)
        generation = 0
        if leases:
            newest, path = leases[-1]
            info = self._read(path)
            now = time.time()
            if info is not None and now - info.heartbeat_at <= info.ttl_s:
                return None
            if info is None:
                with contextlib.suppress(OSError, KeyError):
                    modified = self.fs.info(path).get("LastModified")
                    if modified is not None and now - modified.timestamp() <= self.ttl_s:
                        return None  # being written
            generation = newest + 1
        now = time.time()
        info = LeaseInfo(key, uuid.uuid4().hex, self.host, self.pid, now, now, self.ttl_s)
        path = self._path("leases", f"{key}.{generation}.lock")
        try:
            with self.fs.open(path, "xb") as fh:  # If-None-Match: * on S3: one creator wins
                fh.write(info.dump())
        except FileExistsError:
            return None
        for _, older in leases:
            with contextlib.suppress(OSError):
                self.fs.rm_file(older)
        return info, path

    def _beat(self, info: LeaseInfo, path: str) -> LeaseInfo | None:
        leases = self._leases(info.key)
        if not leases or leases[-1][1] != path:
            return None  # taken over
        renewed = LeaseInfo(**{**info.__dict__, "heartbeat_at": time.time()})
        self.fs.pipe_file(path, renewed.dump())
        return renewed

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[LeaseInfo]:
        """Wait for the store's lease on ``key``, hold it with heartbeats, release it."""
        got = await asyncio.to_thread(self.try_acquire, key)
        while got is None:
            await asyncio.sleep(self.poll_s)
            got = await asyncio.to_thread(self.try_acquire, key)
        info, path = got
        state: dict[str, Any] = {"info": info}

        def still_ours() -> bool:
            renewed = self._beat(state["info"], path)
            if renewed is not None:
                state["info"] = renewed
            return renewed is not None

        try:
            async with renewed_every(self.ttl_s / 3, still_ours, f"store lease {key[:12]}"):
                yield info
        finally:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self.fs.rm_file, path)


class StoreFolder:
    """Small objects under one folder of the store: whole-object puts, gets, removes, a listing."""

    def __init__(self, fs: Any, path: str) -> None:
        self.fs = fs
        self.path = path

    def put(self, name: str, data: bytes) -> None:
        self.fs.pipe_file(f"{self.path}/{name}", data)

    def get(self, name: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(f"{self.path}/{name}"))
        except FileNotFoundError:
            return None

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(f"{self.path}/{name}")

    def names(self) -> list[str]:
        try:
            found = self.fs.ls(self.path, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return [str(n).rsplit("/", 1)[-1] for n in found]
