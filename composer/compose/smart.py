"""Smart assembly: stream-copied bodies, freshly encoded crossfades, one concat.

What lives here: running a :class:`~composer.compose.graph.Composition` the fast way. Each leg
is first brought to the output encoding (:mod:`composer.compose.normalize`, usually done long
before, as each take is accepted); then every body between two crossfades is copied packet for
packet, only the crossfade windows (and any frames that cannot be copied) are encoded again
with the very same x264 settings, the pieces are joined with the concat demuxer, and the audio
of the original clips is mixed with ``acrossfade`` and encoded once, in that same last call.
One progress callback covers every step.

The fast path is refused (:class:`SmartUnavailable`, with the reason in words) when the pieces
cannot be made compatible: a leg shorter than its two crossfades, or pieces whose codec
parameters (SPS/PPS) differ. Callers then fall back to :func:`composer.ffmpeg.compose`.

What does not live here: ffmpeg command lines (``composer/ffmpeg.py``), the frame arithmetic
(``compose/graph.py``), choosing between the two paths and checking outputs (``render.py``).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from composer import ffmpeg
from composer.compose.graph import Composition, Copy, SmartPlan, Span, leg_keyframes, smart_plan
from composer.compose.normalize import Normalized, NormSpec, cache_path, normalize_take, reference_extradata


class SmartUnavailable(Exception):
    """The smart path cannot render this composition; ``str(exc)`` says why."""


@dataclass(frozen=True)
class SmartResult:
    plan: SmartPlan
    decoded: ffmpeg.DecodeReport  # the video as decoded while it was written (no frame count)
    normalized_frames: int  # frames encoded by normalisation during this call
    reused_legs: int  # legs whose clip already carried the output encoding
    normalize_s: float
    assemble_s: float


def leg_spec(comp: Composition, index: int) -> NormSpec:
    """What leg ``index`` needs from its clip: frame range, size, rate, keyframes."""
    leg = comp.legs[index]
    return NormSpec(comp.width, comp.height, comp.fps, leg.start, leg.frames, leg_keyframes(comp, index))


def check_feasible(comp: Composition) -> None:
    """Raise SmartUnavailable if no piecewise plan exists, before anything is encoded."""
    try:
        smart_plan(comp, [frozenset({0, leg.frames}) for leg in comp.legs])
    except ValueError as exc:
        raise SmartUnavailable(str(exc)) from None


class _Progress:
    """Steps weighted by the frames each encodes (plus a share for copies and the mux).

    Reports to ``report`` in output frames (0..``comp.frames``), never going backwards, so a
    caller sees one bar for the whole composition.
    """

    def __init__(self, report: ffmpeg.ProgressFn | None, frames: int, weights: dict[str, float]) -> None:
        self._report, self._frames, self._weights = report, frames, weights
        self._total = sum(weights.values()) or 1.0
        self._done: dict[str, float] = {}
        self._shown = 0
        self._lock = threading.Lock()

    def step(self, name: str, step_total: int) -> ffmpeg.ProgressFn:
        def update(done: int) -> None:
            fraction = min(1.0, done / step_total) if step_total else 1.0
            with self._lock:
                self._done[name] = self._weights.get(name, 0.0) * fraction
                shown = int(sum(self._done.values()) / self._total * self._frames)
                if shown > self._shown:
                    self._shown = shown
                    if self._report:
                        self._report(shown)

        return update


def _piece_inputs(span: Span, legs: Sequence[Normalized]) -> list[ffmpeg.SpanInput]:
    inputs = []
    for part in span.parts:
        leg = legs[part.leg]
        # Seek to the last IDR at or before the first frame wanted, so decoding starts close.
        seek = max((c for c in leg.cut_points if c <= part.first and c < leg.frames), default=-leg.offset)
        inputs.append(ffmpeg.SpanInput(leg.path, leg.offset + part.first, part.frames, leg.offset + seek))
    return inputs


def assemble(
    comp: Composition,
    legs: Sequence[Normalized],
    dest: Path,
    *,
    on_progress: ffmpeg.ProgressFn | None = None,
    progress: _Progress | None = None,
    check: bool = True,
) -> tuple[SmartPlan, ffmpeg.DecodeReport | None]:
    """Write ``dest`` from legs already in the output encoding (see :func:`normalize_take`).

    Returns the plan and, with ``check``, what the decoder said of the video written
    (decoded in the same call, see :func:`composer.ffmpeg.assemble`). Raises
    SmartUnavailable when the legs cannot be joined by stream copy.
    """
    reference = reference_extradata(comp.width, comp.height, comp.fps)
    for index, leg in enumerate(legs):
        if leg.extradata != reference:
            raise SmartUnavailable(
                f"leg {index + 1} ({leg.path.name}) has codec parameters (SPS/PPS) that differ "
                "from composer's encoder"
            )
    try:
        plan = smart_plan(comp, [leg.cut_points for leg in legs])
    except ValueError as exc:
        raise SmartUnavailable(str(exc)) from None
    if progress is None:
        progress = _Progress(on_progress, comp.frames, _assembly_weights(comp, plan))
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.stem}.pieces.") as work:
        files = [Path(work) / f"piece{n:03d}.mp4" for n in range(len(plan.pieces))]

        def make(n: int) -> None:
            piece, out = plan.pieces[n], files[n]
            if isinstance(piece, Copy):
                leg = legs[piece.leg]
                ffmpeg.copy_frames(leg.path, out, first=leg.offset + piece.first, frames=piece.frames, fps=comp.fps)
                progress.step(f"piece{n}", 1)(1)
            else:
                ffmpeg.encode_span(
                    _piece_inputs(piece, legs),
                    piece.fades,
                    comp.width,
                    comp.height,
                    comp.fps,
                    out,
                    on_progress=progress.step(f"piece{n}", piece.frames),
                )

        # Encodes of short pieces spend much of their time starting up (decoder, lookahead);
        # two at a time keeps both cores busy.
        with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as pool:
            list(pool.map(make, range(len(plan.pieces))))
        for n, piece in enumerate(plan.pieces):
            if isinstance(piece, Span):
                extradata = ffmpeg.packets(files[n]).extradata
                if extradata != reference:  # x264 chose other parameters: joining would glitch
                    raise SmartUnavailable(
                        f"a re-encoded crossfade got codec parameters that differ from the bodies' "
                        f"({extradata} vs {reference})"
                    )
        decoded = ffmpeg.assemble(files, comp, dest, on_progress=progress.step("mux", comp.frames), check=check)
    return plan, decoded


def _assembly_weights(comp: Composition, plan: SmartPlan) -> dict[str, float]:
    weights: dict[str, float] = {}
    for n, piece in enumerate(plan.pieces):
        # A copy costs about as much as encoding 1/50 of its frames; a span, its frames.
        weights[f"piece{n}"] = piece.frames / 50 if isinstance(piece, Copy) else float(piece.frames)
    weights["mux"] = comp.frames / 25  # copying every packet plus mixing and encoding the audio
    return weights


def compose_smart(
    comp: Composition,
    dest: Path,
    *,
    cache_dir: Path | None = None,
    on_progress: ffmpeg.ProgressFn | None = None,
    allow_reuse: bool = True,
) -> SmartResult:
    """Normalise whatever legs are not yet normalised (cached), then :func:`assemble`.

    ``cache_dir`` None keeps each normalised file beside its clip (the take's folder).
    """
    check_feasible(comp)
    specs = [leg_spec(comp, i) for i in range(len(comp.legs))]
    # Legs already normalised cost nothing; the rest weigh their frames.
    pending = {
        i: spec.frames
        for i, spec in enumerate(specs)
        if not cache_path(comp.legs[i].path, spec, cache_dir).is_file()
    }
    estimate = smart_plan(comp, [frozenset(spec.keyframes) | {spec.frames} for spec in specs])
    weights = {f"norm{i}": float(frames) for i, frames in pending.items()}
    weights.update(_assembly_weights(comp, estimate))
    progress = _Progress(on_progress, comp.frames, weights)
    started = time.perf_counter()

    def prepare(i: int) -> Normalized:
        report: Callable[[int], None] = progress.step(f"norm{i}", specs[i].frames)
        return normalize_take(
            comp.legs[i].path, specs[i], cache_dir=cache_dir, allow_reuse=allow_reuse, on_progress=report
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        legs = list(pool.map(prepare, range(len(comp.legs))))
    normalized_s = time.perf_counter() - started
    plan, decoded = assemble(comp, legs, dest, progress=progress)
    assert decoded is not None  # checked by default
    return SmartResult(
        plan=plan,
        decoded=decoded,
        normalized_frames=sum(leg.encoded_frames for leg in legs),
        reused_legs=sum(leg.reused for leg in legs),
        normalize_s=normalized_s,
        assemble_s=time.perf_counter() - started - normalized_s,
    )
