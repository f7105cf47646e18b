"""The simulator's back room: the videos it made, its operations, the worker pool, the counters.

What lives here: :class:`Clip` (a video the simulator generated: its file, its local-generator
state so it can be extended, and the names clients know it by), :class:`RenderSpec` (what to
render), :class:`Operation` and :class:`OpView` (a long-running generation and how it looks
at a moment), and :class:`Engine`, which owns storage, runs renders on a thread pool with the
project's :class:`~composer.backends.local.LocalBackend`, decides the fate of each operation
(``filter`` / ``fail`` faults) and keeps the statistics. What does not: HTTP, protocols and
validation (``http.py`` and the protocol modules).

Timing: an operation is done when its clips are rendered *and* ``latency_s`` has passed
since it was created, so a test can make operations finish slowly without slow renders and
a benchmark can see real render time when the latency is zero.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import os
import random
import re
import shutil
import string
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np

from composer import imaging
from composer.backends.base import GenerationRequest, TakeInput
from composer.backends.local import LocalBackend
from composer.errors import ComposerError
from composer.ffmpeg import extract_frame, read_frames
from composer.files import file_sha256
from composer.sim.faults import PROTOCOLS, FaultPlan

log = logging.getLogger("composer.sim")

FPS = "24"
Outcome = Literal["running", "succeeded", "filtered", "failed"]
_COUNTERS = ("polls", "downloads")
_CAMERA = re.compile(r"\bcamera\s*:\s*([^.\n]+)", re.IGNORECASE)
_ALNUM = string.ascii_lowercase + string.digits


def camera_from_prompt(prompt: str) -> str | None:
    """The camera move of a sentence like ``Camera: slow pan right.`` (the last one), or None.

    The APIs only take a prompt; composer's backends append that sentence, so the simulated
    camera follows what composer asked for.
    """
    found = _CAMERA.findall(prompt or "")
    return found[-1].strip() if found else None


@dataclass
class Clip:
    """A video the simulator generated."""

    key: str
    path: Path
    state: dict[str, Any]
    seconds: float
    frames: int
    width: int
    height: int
    audio: bool
    sha256: str
    size_bytes: int
    protocol: str
    model: str
    extensions: int
    blob: str = ""  # token of its unauthenticated download URL

    @property
    def aspect(self) -> str:
        return "16:9" if self.width >= self.height else "9:16"

    @property
    def resolution(self) -> str:
        short = min(self.width, self.height)
        return {720: "720p", 1080: "1080p", 2160: "4k"}.get(short, f"{short}p")

    def read(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True)
class RenderSpec:
    """One clip to render: a fresh generation, or an extension of ``parent``."""

    prompt: str
    seconds: float
    width: int
    height: int
    seed: int
    audio: bool = True
    image: Path | None = None
    parent: Clip | None = None
    style_strength: float | None = None  # the image-guidance knobs, None: the generator's default
    motion_intensity: float | None = None


@dataclass
class Operation:
    """A long-running generation as the simulator tracks it."""

    protocol: str
    name: str
    kind: Literal["generate", "extend"]
    model: str
    seconds: float  # seconds generated (and billed): the base duration or the extension step
    total_s: float  # length of the finished clip
    created_at: float
    fate: Literal["ok", "filter", "fail", "error"]
    error_code: int = 13
    error_message: str = ""
    futures: list[Future[Clip]] = field(default_factory=list)
    rendered_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    listed: bool = True
    deleted: bool = False

    @property
    def started(self) -> bool:
        return any(f.running() or f.done() for f in self.futures)


@dataclass(frozen=True)
class OpView:
    """An operation at one moment."""

    outcome: Outcome
    done_at: float | None
    progress: int
    started: bool
    clips: tuple[Clip, ...] = ()
    error_code: int = 13
    message: str = ""
    reason: str = ""  # "filter" | "fail" | "error" | "render" for a failed or filtered one


class Engine:
    """Storage, renders, operations and statistics; shared by all four protocols."""

    def __init__(
        self,
        *,
        latency_s: float,
        drift: float,
        seed: int,
        faults: FaultPlan,
        storage: Path | None,
    ) -> None:
        self.latency_s = max(0.0, float(latency_s))
        self.drift = float(drift)
        self.faults = faults
        self._own_storage = storage is None
        self.root = Path(tempfile.mkdtemp(prefix="composer-sim-")) if storage is None else Path(storage)
        for sub in ("videos", "images"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        # Separate streams so that adding a fault rule does not change the ids and seeds a run gets.
        self._ids = random.Random(f"composer-sim:{seed}:ids")
        self._seeds = random.Random(f"composer-sim:{seed}:seeds")
        self._lock = threading.RLock()
        self._pool = ThreadPoolExecutor(
            max_workers=os.cpu_count() or 2, thread_name_prefix="composer-sim-render"
        )
        self._ops: dict[tuple[str, str], Operation] = {}
        self._order: list[Operation] = []
        self._clips: dict[str, Clip] = {}
        self._by_sha: dict[str, Clip] = {}
        self._names: dict[tuple[str, str], Clip] = {}
        self._counts = {p: dict.fromkeys(_COUNTERS, 0) for p in PROTOCOLS}
        # Seconds of render per second of 1280x720 video, learned from finished renders (progress).
        self._render_rate = 0.8

    # -- ids and seeds -----------------------------------------------------------------------

    def token(self, length: int = 12, alphabet: str = _ALNUM) -> str:
        with self._lock:
            return "".join(self._ids.choice(alphabet) for _ in range(length))

    def uuid(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def seed(self) -> int:
        with self._lock:
            return self._seeds.randrange(2**32)

    # -- operations -------------------------------------------------------------------------

    def create(
        self,
        protocol: str,
        name: str,
        kind: Literal["generate", "extend"],
        model: str,
        specs: list[RenderSpec],
        *,
        seconds: float,
        total_s: float,
        extra: dict[str, Any] | None = None,
        error: tuple[int, str] | None = None,
    ) -> Operation:
        """Start an operation: draw its fate, queue its renders, record it.

        ``error`` makes it finish failed with that google.rpc code and message (a check the
        real service makes inside the operation rather than on the request).
        """
        _, rule = self.faults.draw("create", protocol, "create")
        fate: Literal["ok", "filter", "fail", "error"] = "ok"
        code, message = 13, ""
        if rule is not None:
            fate = "filter" if rule.kind == "filter" else "fail"
        elif error is not None:
            fate, (code, message) = "error", error
        op = Operation(
            protocol=protocol,
            name=name,
            kind=kind,
            model=model,
            seconds=seconds,
            total_s=total_s,
            created_at=time.time(),
            fate=fate,
            error_code=code,
            error_message=message,
            extra=dict(extra or {}),
        )
        if fate == "ok":
            op.futures = [self._pool.submit(self._render, protocol, model, spec) for spec in specs]
            for future in op.futures:
                future.add_done_callback(functools.partial(self._rendered, op))
        with self._lock:
            self._ops[(protocol, name)] = op
            self._order.append(op)
        return op

    def _rendered(self, op: Operation, _future: Future[Clip]) -> None:
        if all(f.done() for f in op.futures):
            with self._lock:
                op.rendered_at = op.rendered_at or time.time()

    def get(self, protocol: str, name: str) -> Operation | None:
        with self._lock:
            op = self._ops.get((protocol, name))
        return None if op is None or op.deleted else op

    def operations(self, protocol: str) -> list[Operation]:
        with self._lock:
            return [op for op in self._order if op.protocol == protocol and not op.deleted]

    def delete(self, op: Operation) -> None:
        with self._lock:
            op.deleted = True

    def view(self, op: Operation, now: float | None = None) -> OpView:
        now = time.time() if now is None else now
        ready_at = op.created_at + self.latency_s
        elapsed = now - op.created_at
        if op.fate != "ok":
            done = now >= ready_at
            reason = op.fate
            if not done:
                return OpView("running", None, self._progress(op, elapsed), elapsed > self.latency_s / 4)
            outcome: Outcome = "filtered" if op.fate == "filter" else "failed"
            return OpView(outcome, ready_at, 100, True, (), op.error_code, op.error_message, reason)
        if op.rendered_at is None or now < ready_at:
            return OpView("running", None, self._progress(op, elapsed), op.started)
        done_at = max(op.rendered_at, ready_at)
        failures = [f.exception() for f in op.futures if f.exception() is not None]
        if failures:
            message = f"Internal error encountered while rendering: {failures[0]}"
            return OpView("failed", done_at, 100, True, (), 13, message, "render")
        return OpView("succeeded", done_at, 100, True, tuple(f.result() for f in op.futures))

    def _progress(self, op: Operation, elapsed: float) -> int:
        pixels = op.extra.get("pixels", 1280 * 720) / (1280 * 720)
        expected = max(self.latency_s, self._render_rate * op.seconds * pixels, 0.1)
        return max(0, min(99, int(100 * elapsed / expected)))

    # -- renders ----------------------------------------------------------------------------

    def _render(self, protocol: str, model: str, spec: RenderSpec) -> Clip:
        key = self.token(16)
        dest = self.root / "videos" / f"{key}.mp4"
        request = GenerationRequest(
            backend="local",
            model="sim",
            kind="extend" if spec.parent is not None else "generate",
            prompt=spec.prompt,
            camera=camera_from_prompt(spec.prompt),
            duration_s=spec.seconds,
            width=spec.width,
            height=spec.height,
            fps=FPS,
            seed=spec.seed,
            audio=spec.audio,
            options={"drift": self.drift},
            style_strength=spec.style_strength,
            motion_intensity=spec.motion_intensity,
        )
        backend = LocalBackend(intermediate=True)
        started = time.monotonic()
        try:
            if spec.parent is None:
                info = backend.generate(request, TakeInput(first_frame_path=spec.image), dest)
            else:
                parent = spec.parent
                inputs = TakeInput(parent_path=parent.path, parent_state=parent.state)
                info = backend.extend(request, inputs, dest)
        except ComposerError:
            log.exception("render failed")
            raise
        took = time.monotonic() - started
        with self._lock:
            pixels = spec.width * spec.height / (1280 * 720)
            self._render_rate = 0.7 * self._render_rate + 0.3 * took / max(spec.seconds * pixels, 0.1)
        digest = file_sha256(dest)
        clip = Clip(
            key=key,
            path=dest,
            state=info.state,
            seconds=info.duration_s,
            frames=info.frames,
            width=info.width,
            height=info.height,
            audio=info.has_audio,
            sha256=digest,
            size_bytes=dest.stat().st_size,
            protocol=protocol,
            model=model,
            extensions=0 if spec.parent is None else spec.parent.extensions + 1,
            blob=self.token(24),
        )
        with self._lock:
            self._clips[key] = clip
            self._by_sha[digest] = clip
            self._names[("blob", clip.blob)] = clip
        return clip

    def save_image(self, data: bytes) -> tuple[Path, int, int]:
        """Store an uploaded image as PNG; (path, width, height). ValueError if not an image."""
        digest = hashlib.sha256(data).hexdigest()
        final = self.root / "images" / f"{digest}.png"
        if not final.is_file():
            raw = self.root / "images" / f".{digest}.upload"
            raw.write_bytes(data)
            try:
                image = imaging.read_image(raw)
            except ComposerError as error:
                raise ValueError(str(error).replace(str(raw), "the image")) from None
            finally:
                raw.unlink(missing_ok=True)
            imaging.write_png(final, image)
        width, height = imaging.probe_image(final)
        return final, width, height

    def still(self, clip: Clip, variant: str) -> bytes:
        """JPEG bytes of a clip's ``thumbnail`` (its first frame) or ``spritesheet`` (a 4x2 grid)."""
        if variant == "thumbnail":
            with tempfile.TemporaryDirectory(dir=self.root) as work:
                png = Path(work) / "first.png"
                extract_frame(clip.path, Fraction(0), png)
                image = imaging.read_image(png)
            uri = imaging.jpeg_data_uri(image, width=min(clip.width, 640))
        else:
            cell_w = 160
            cell_h = max(2, round(cell_w * clip.height / clip.width / 2) * 2)
            step = max(clip.seconds / 8, 1 / 24)
            frames = list(read_frames(clip.path, cell_w, cell_h, fps=1 / step))[:8]
            blank = np.zeros((cell_h, cell_w, 3), np.uint8)
            frames += [blank] * (8 - len(frames))
            grid = np.vstack([np.hstack(frames[:4]), np.hstack(frames[4:])])
            uri = imaging.jpeg_data_uri(grid, width=grid.shape[1])
        return base64.b64decode(uri.split(",", 1)[1])

    # -- names clients know clips by ----------------------------------------------------------

    def name(self, space: str, value: str, clip: Clip) -> None:
        with self._lock:
            self._names[(space, value)] = clip

    def named(self, space: str, value: str) -> Clip | None:
        with self._lock:
            return self._names.get((space, value))

    def by_sha256(self, data: bytes) -> Clip | None:
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            return self._by_sha.get(digest)

    # -- statistics -------------------------------------------------------------------------

    def count(self, protocol: str, what: str) -> None:
        with self._lock:
            self._counts[protocol][what] += 1

    def stats(self) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            ops = [op for op in self._order if op.listed]
            counts = {p: dict(c) for p, c in self._counts.items()}
        result: dict[str, Any] = {}
        listing = []
        injected = list(self.faults.injected)
        per: dict[str, dict[str, int]] = {
            p: {
                "created": 0,
                "extensions": 0,
                **counts[p],
                "faults": sum(1 for f in injected if f["protocol"] == p),
                "filtered": 0,
                "failed": 0,
            }
            for p in PROTOCOLS
        }
        for op in ops:
            view = self.view(op, now)
            row = per[op.protocol]
            row["created"] += 1
            row["extensions"] += op.kind == "extend"
            row["filtered"] += view.outcome == "filtered"
            row["failed"] += view.outcome == "failed"
            listing.append(
                {
                    "protocol": op.protocol,
                    "id": op.name,
                    "kind": op.kind,
                    "model": op.model,
                    "seconds": op.seconds,
                    "total_s": op.total_s,
                    "created_at": op.created_at,
                    "done_at": view.done_at,
                    "outcome": view.outcome,
                }
            )
        result.update(per)
        result["operations"] = listing
        result["faults_injected"] = injected
        result["faults"] = str(self.faults.spec)
        result["latency_s"] = self.latency_s
        return result

    def reset_stats(self) -> None:
        """Zero the counters and forget listed operations (they can still be polled)."""
        with self._lock:
            for op in self._order:
                op.listed = False
            self._counts = {p: dict.fromkeys(_COUNTERS, 0) for p in PROTOCOLS}
        self.faults.reset_record()

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        # Renders in flight finish (a half-written file in storage helps nobody); queued ones are dropped.
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._own_storage:
            shutil.rmtree(self.root, ignore_errors=True)
