"""Smart assembly: stream-copied bodies, freshly encoded crossfades, one concat.

What lives here: running a :class:`~composer.compose.graph.Composition` the fast way. Each leg
is first brought to the output encoding (:mod:`composer.compose.normalize`, usually done long
before, as each take is accepted); then every body between two crossfades is copied packet for
packet, only the crossfade windows (and any frames that cannot be copied) are encoded again
with the very same x264 settings (blending the frames the normalisation kept losslessly, its
edges, where it kept them), and the audio of the original clips is mixed with
``acrossfade`` and encoded once, side by side with those encodes; one stream copy (the concat
demuxer) then joins it all. The file written is decoded around every join, where stitching
can go wrong. One progress callback covers every step.

The fast path is refused (:class:`SmartUnavailable`, with the reason in words) when the pieces
cannot be made compatible: a leg shorter than its two crossfades, or pieces whose codec
parameters (SPS/PPS) differ. Callers then fall back to :func:`composer.compose.render.compose_full`.

What does not live here: ffmpeg command lines (``composer/ffmpeg/``), the frame arithmetic
(``compose/graph.py``), choosing between the two paths and checking outputs (``render.py``).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from composer import ffmpeg
from composer.compose import verified
from composer.compose.graph import Composition, Copy, SmartPlan, Span, smart_plan
from composer.compose.normalize import Normalized, NormSpec, cache_path, normalize_take, reference_extradata

#: Above this share of the output's frames re-encoded, the smart path is refused for the
#: one-command full re-encode (its copies would save too little to pay for the joins' check).
MOSTLY_ENCODED = 0.9

#: Frames the decode check reads from where each piece starts (a copied body, a re-encoded
#: span): the IDR that opens it and the packets decoded right after it, which is where a
#: stitch goes wrong (parameter sets, a reference across the join; timestamps and frame
#: counts are checked from the packets). Four pictures shown take the IDR, the P frame after
#: it and the run of B-frames between (x264 puts three in a row), including any B-frame that
#: would lean on the GOP before; the rest of a piece is packets that decoded cleanly before,
#: or that x264 has just written.
JOIN_CHECK_FRAMES = 4


class SmartUnavailable(Exception):
    """The smart path cannot render this composition; ``str(exc)`` says why."""


@dataclass(frozen=True)
class SmartResult:
    plan: SmartPlan
    decoded: ffmpeg.DecodeReport  # the decoder's word on the joins and on bodies nobody had decoded
    normalized_frames: int  # frames encoded by normalisation during this call
    reused_legs: int  # legs whose clip already carried the output encoding
    normalize_s: float
    assemble_s: float
    normalized: tuple[str, ...] = ()  # per leg normalised: which parameter forced it


def leg_spec(comp: Composition, index: int) -> NormSpec:
    """What leg ``index`` needs from its clip: frame range, size, rate, keyframes, edges."""
    return NormSpec.for_leg(
        comp.width, comp.height, comp.fps, comp.legs[index].start, comp.layout.legs[index]
    )


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
        end = part.first + part.frames
        edge = next((e for e in leg.edges if e.first <= part.first and end <= e.first + e.frames), None)
        if edge is not None:  # frames the normalisation kept losslessly: no H.264 to decode
            inputs.append(ffmpeg.SpanInput(edge.path, part.first - edge.first, part.frames, 0))
            continue
        # Seek to the last IDR at or before the first frame wanted, so decoding starts close.
        seek = max((c for c in leg.cut_points if c <= part.first and c < leg.frames), default=-leg.offset)
        inputs.append(ffmpeg.SpanInput(leg.path, leg.offset + part.first, part.frames, leg.offset + seek))
    return inputs


def _direct_part(piece: Copy | Span, legs: Sequence[Normalized]) -> ffmpeg.ConcatPart | None:
    """The body ``piece`` read straight from its leg's file by the final concat, or None when
    it must be copied to a file of its own first.

    Only a file with no stream but its video can be read this way: the concat demuxer ends a
    file at the first packet of *any* stream past the out point (an audio packet interleaved
    ahead of the last pictures would cut them off), and it matches streams by their index.
    Reading bodies in place saves writing and reading them again (about 130 MB for a minute
    at 1080p).
    """
    if not isinstance(piece, Copy):
        return None
    leg = legs[piece.leg]
    if ffmpeg.probe(leg.path).streams != 1:
        return None
    first = leg.offset + piece.first
    try:
        inpoint, outpoint = ffmpeg.packets(leg.path).copy_points(first, first + piece.frames)
    except ValueError:
        return None
    return ffmpeg.ConcatPart(leg.path, piece.frames, inpoint, outpoint)


def assemble(
    comp: Composition,
    legs: Sequence[Normalized],
    dest: Path,
    *,
    on_progress: ffmpeg.ProgressFn | None = None,
    progress: _Progress | None = None,
    check: bool = True,
    known_good: bool = False,
) -> tuple[SmartPlan, ffmpeg.DecodeReport | None]:
    """Write ``dest`` from legs already in the output encoding (see :func:`normalize_take`).

    The crossfade spans, the body copies and the audio are made side by side, then joined by
    one stream copy. Returns the plan and, with ``check``, what the decoder said of the file
    around every join (:func:`join_windows`). ``known_good`` says the clips were decoded
    cleanly before (a render's takes: checked on download, or written by composer's encoder),
    so bodies copied from them as they are need not be decoded again; otherwise those bodies
    are decoded whole. Raises SmartUnavailable when the legs cannot be joined by stream copy.
    """
    reference = reference_extradata(comp.width, comp.height, comp.fps)
    for index, leg in enumerate(legs):
        if leg.extradata != reference:
            raise SmartUnavailable(
                f"leg {index + 1} ({leg.path.name}) has codec parameters (SPS/PPS) that differ "
                "from composer's encoder"
            )
    try:
        plan = smart_plan(comp, [leg.cut_points for leg in legs], [leg.end_points for leg in legs])
    except ValueError as exc:
        raise SmartUnavailable(str(exc)) from None
    if progress is None:
        progress = _Progress(on_progress, comp.frames, _assembly_weights(comp, plan))
    direct = {n: part for n, piece in enumerate(plan.pieces) if (part := _direct_part(piece, legs))}
    inputs = {n: _piece_inputs(p, legs) for n, p in enumerate(plan.pieces) if isinstance(p, Span)}
    # Bodies copied from a clip nobody has decoded must be decoded once; composer's own checked
    # outputs (verified.known) have been, in every part, and a render's takes too (known_good).
    unchecked = (
        set()
        if known_good or not check
        else {i for i, leg in enumerate(legs) if leg.reused and not verified.known(leg.path)}
    )
    # Of those, the spans will decode a tail (from the outgoing clip's last IDR before its fade);
    # the rest is decoded from the clip itself beside the encodes instead of from the output
    # afterwards: the very same packets, and free on a machine with cores to spare.
    spanned = _span_reads(plan, legs, inputs)
    prechecks = {
        n: head
        for n, piece in enumerate(plan.pieces)
        if isinstance(piece, Copy)
        and piece.leg in unchecked
        and (head := _not_decoded(piece, spanned.get(piece.leg, ()))) > JOIN_CHECK_FRAMES
    }
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.stem}.pieces.") as work:
        files = [Path(work) / f"piece{n:03d}.mp4" for n in range(len(plan.pieces))]
        audio = Path(work) / "audio.m4a" if comp.audio else None
        lock = threading.Lock()  # for the three below, filled by the jobs
        decoded: dict[int, list[tuple[int, int]]] = {}  # leg -> its frames [first, end) decoded cleanly
        prechecked: list[int] = []  # frames of bodies decoded cleanly from their clips
        extradata: dict[int, str] = {}  # span piece -> the codec parameters x264 wrote

        def mix(path: Path) -> None:
            legs = [ffmpeg.LegInput(leg.path, leg.frames, leg.has_audio, leg.start) for leg in comp.legs]
            ffmpeg.encode_audio(
                legs, [join.fade for join in comp.joins], path, fps=comp.fps, frames=comp.frames
            )
            progress.step("audio", 1)(1)

        def make(n: int) -> None:
            piece, out = plan.pieces[n], files[n]
            if isinstance(piece, Copy):
                leg = legs[piece.leg]
                ffmpeg.copy_frames(
                    leg.path, out, first=leg.offset + piece.first, frames=piece.frames, fps=comp.fps
                )
                progress.step(f"piece{n}", 1)(1)
                return
            said = ffmpeg.encode_span(
                inputs[n],
                piece.fades,
                comp.width,
                comp.height,
                comp.fps,
                out,
                on_progress=progress.step(f"piece{n}", piece.frames),
                single_thread=True,
            )
            extradata[n] = ffmpeg.packets(out).extradata
            if not any(said):  # the span decoded these frames of its clips without a word
                with lock:
                    for leg, read in _span_reads(plan, legs, {n: inputs[n]}).items():
                        decoded.setdefault(leg, []).extend(read)

        def precheck(n: int) -> None:
            piece, frames = plan.pieces[n], prechecks[n]
            leg = legs[piece.leg]
            report = ffmpeg.decode_range(leg.path, leg.offset + piece.first, frames, comp.fps)
            if not (report.errors or report.warnings) and report.frames == frames:
                with lock:
                    decoded.setdefault(piece.leg, []).append((piece.first, piece.first + frames))
                    prechecked.append(frames)

        # Everything at once: the audio (one thread), the spans (their decoders on one thread;
        # x264 takes what is left) and the copies share the cores as the kernel sees fit, so
        # no job waits for a free worker while a core idles (a fixed pool of one job per core
        # ran the second span only after the first, 0.4 s later at 1080p).
        jobs = [partial(mix, audio)] if audio else []
        jobs += [partial(make, n) for n, p in enumerate(plan.pieces) if isinstance(p, Span)]
        jobs += [
            partial(make, n) for n, p in enumerate(plan.pieces) if isinstance(p, Copy) and n not in direct
        ]
        jobs += [partial(precheck, n) for n in prechecks]
        with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
            for done in [pool.submit(job) for job in jobs]:
                done.result()
        for got in extradata.values():
            if got != reference:  # x264 chose other parameters: joining would glitch
                raise SmartUnavailable(
                    f"a re-encoded crossfade got codec parameters that differ from the bodies' ({got} vs {reference})"
                )
        parts = [
            direct.get(n) or ffmpeg.ConcatPart(files[n], piece.frames) for n, piece in enumerate(plan.pieces)
        ]
        ffmpeg.assemble(
            parts,
            dest,
            audio,
            fps=comp.fps,
            frames=comp.frames,
            on_progress=progress.step("mux", comp.frames),
        )
        for n in direct:
            progress.step(f"piece{n}", 1)(1)
    if not check:
        return plan, None
    report = check_joins(dest, comp, plan, whole=unchecked, decoded=decoded)
    return plan, replace(report, frames=report.frames + sum(prechecked))


def _span_reads(
    plan: SmartPlan, legs: Sequence[Normalized], inputs: Mapping[int, Sequence[ffmpeg.SpanInput]]
) -> dict[int, list[tuple[int, int]]]:
    """leg -> the frames ``[first, end)`` of its own file that the spans in ``inputs`` (piece ->
    its inputs) decode: from the IDR each seeks to, to the last frame it uses."""
    reads: dict[int, list[tuple[int, int]]] = {}
    for n, items in inputs.items():
        piece = plan.pieces[n]
        assert isinstance(piece, Span)
        for part, item in zip(piece.parts, items, strict=True):
            leg = legs[part.leg]
            if item.path == leg.path:  # not a lossless edge file
                reads.setdefault(part.leg, []).append((item.seek - leg.offset, part.first + part.frames))
    return reads


def join_windows(
    comp: Composition,
    plan: SmartPlan,
    whole: Set[int] = frozenset(),
    decoded: Mapping[int, Sequence[tuple[int, int]]] | None = None,
) -> list[tuple[int, int]]:
    """The ``(first frame, frames)`` ranges of the output that the decode check reads.

    Every piece starts with an IDR frame, and every piece is read from there for
    ``JOIN_CHECK_FRAMES``: the join into it. That is where a stitch goes wrong; a
    re-encoded span's later frames are what x264 has just written, and a copied body's are
    packets that decoded cleanly before. A body from a leg in ``whole`` (a clip nobody has
    decoded yet) is read whole, except for a tail that the spans already decoded cleanly from
    the clip itself (``decoded``: leg -> its frame ranges ``[first, end)``; a span decodes the
    outgoing clip from its last IDR before the fade, often most of a long GOP). The frame
    count and timing of every piece are checked from the packets (``verify``). Overlaps merge.
    """
    ranges: list[tuple[int, int]] = []
    for piece in plan.pieces:
        read = min(piece.frames, JOIN_CHECK_FRAMES)
        if isinstance(piece, Copy) and piece.leg in whole:
            read = max(read, _not_decoded(piece, (decoded or {}).get(piece.leg, ())))
        ranges.append((piece.at, piece.at + read))
    merged: list[tuple[int, int]] = []
    for first, end in ranges:
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((first, end))
    return [(first, end - first) for first, end in merged]


def _not_decoded(body: Copy, decoded: Sequence[tuple[int, int]]) -> int:
    """How many of ``body``'s first frames are left once the tail that ``decoded`` covers,
    without a gap, back from the body's end is taken off (the body's length if none is)."""
    start = body.first + body.frames
    while reach := [first for first, end in decoded if first < start <= end]:
        start = min(reach)
    return max(0, start - body.first)


def check_joins(
    dest: Path,
    comp: Composition,
    plan: SmartPlan,
    whole: Set[int] = frozenset(),
    decoded: Mapping[int, Sequence[tuple[int, int]]] | None = None,
) -> ffmpeg.DecodeReport:
    """Decode :func:`join_windows` of ``dest`` and its whole audio, side by side; one report.

    A window that gives fewer frames than it should is an error: a join lost pictures.
    """
    windows = join_windows(comp, plan, whole, decoded)
    # All at once: short decodes, each mostly its own start-up and seek.
    with ThreadPoolExecutor(max_workers=min(8, len(windows) + 1)) as pool:
        sound = pool.submit(ffmpeg.decode, dest, video=False) if comp.audio else None
        pool.submit(ffmpeg.packets, dest)  # remembered for verify(), which counts frames from it
        reports = list(pool.map(lambda w: ffmpeg.decode_range(dest, w[0], w[1], comp.fps), windows))
        audio = sound.result() if sound else None
    errors = [r.errors for r in reports if r.errors]
    errors += [
        f"frames {first}-{first + frames - 1} decoded to {r.frames} frames, not {frames}"
        for (first, frames), r in zip(windows, reports, strict=True)
        if r.frames != frames
    ]
    warnings = [r.warnings for r in reports if r.warnings]
    if audio is not None:
        errors += [audio.errors] if audio.errors else []
        warnings += [audio.warnings] if audio.warnings else []
    return ffmpeg.DecodeReport(
        frames=sum(r.frames for r in reports),
        audio_samples=audio.audio_samples if audio else None,
        errors="\n".join(errors),
        warnings="\n".join(warnings),
    )


def _assembly_weights(comp: Composition, plan: SmartPlan) -> dict[str, float]:
    weights: dict[str, float] = {}
    for n, piece in enumerate(plan.pieces):
        # A copy costs about as much as encoding 1/50 of its frames; a span, its frames.
        weights[f"piece{n}"] = piece.frames / 50 if isinstance(piece, Copy) else float(piece.frames)
    weights["audio"] = comp.frames / 25 if comp.audio else 0.0  # mixing and encoding it
    weights["mux"] = comp.frames / 100  # copying every packet
    return weights


def compose_smart(
    comp: Composition,
    dest: Path,
    *,
    cache_dir: Path | None = None,
    on_progress: ffmpeg.ProgressFn | None = None,
    allow_reuse: bool = True,
    known_good: bool = False,
) -> SmartResult:
    """Normalise whatever legs are not yet normalised (cached), then :func:`assemble`.

    ``cache_dir`` None keeps each normalised file beside its clip (the take's folder);
    ``known_good`` as in :func:`assemble`.
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
    try:
        encoded = smart_plan(
            comp, [leg.cut_points for leg in legs], [leg.end_points for leg in legs]
        ).encoded_frames
    except ValueError as exc:
        raise SmartUnavailable(str(exc)) from None
    if encoded > MOSTLY_ENCODED * comp.frames:
        # Clips used as they are with IDR frames too far apart (a foreign GOP of 250 frames in
        # short clips): the spans would encode nearly everything, and one command does that
        # faster than spans, copies, a concat and a check.
        raise SmartUnavailable(
            f"the clips' keyframes leave {encoded} of {comp.frames} frames to re-encode: "
            "one full re-encode is faster"
        )
    plan, decoded = assemble(comp, legs, dest, progress=progress, known_good=known_good)
    assert decoded is not None  # checked by default
    return SmartResult(
        plan=plan,
        decoded=decoded,
        normalized_frames=sum(leg.encoded_frames for leg in legs),
        reused_legs=sum(leg.reused for leg in legs),
        normalize_s=normalized_s,
        assemble_s=time.perf_counter() - started - normalized_s,
        normalized=normalization_notes(comp, legs),
    )


def normalization_notes(comp: Composition, legs: Sequence[Normalized]) -> tuple[str, ...]:
    """One line per leg that was normalised rather than copied from: the clip and the parameter
    that forced it (:func:`composer.compose.normalize.encoding_problem`). Several legs cut from
    one clip are named once."""
    notes: dict[str, None] = {}
    for index, leg in enumerate(legs):
        if not leg.reused:
            notes[f"clip {index + 1} ({comp.legs[index].path.name}) normalised: {leg.reason}"] = None
    return tuple(notes)
