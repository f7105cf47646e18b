"""Benchmark composition: full xfade re-encode vs moviepy 2 vs composer's smart assembly.

For each size (1080p24 and 720p24) it makes three 20 s clips with audio whose content is not
trivially compressible (testsrc2; mandelbrot rendered at half size and upscaled; gradients
soft-light blended with life), encoded like a generator's takes would be (x264 medium, its
default keyframes, AAC). Then it joins them with two 1 s crossfades (58 s, 1392 frames) and
prints, in one table:

* ``full``: composer's single-command ``xfade`` + ``acrossfade`` re-encode (``render.compose_full``);
* ``moviepy``: moviepy 2 ``concatenate_videoclips(method="compose", padding=-1)`` with
  ``CrossFadeIn`` and audio fades (x264 veryfast, the same preset) -- skipped if not installed;
* ``normalise``: composer bringing each take to the output encoding, as the pipeline does
  while the other segments are still generating (per take, summed; in the same pass it keeps
  the frames the crossfades will blend, losslessly, so the assembly need not decode them);
* ``assembly``: composer's smart assembly from the normalised takes, like the full re-encode
  without any check of the file written;
* ``assembly + check``: the same as a render runs it, then decoding the file written around
  its joins and its audio (the tail a user waits for when the last take was generated straight
  into the output encoding);
* ``tail``: normalising the last take plus the checked assembly (the tail when the last take
  comes from an API in another encoding).

Then (issue 19), clips that are not a render's takes, against the same one-command ``xfade``
re-encode of *those* clips (``compose_full``):

* ``own outputs re-joined``: each clip first brought into composer's encoding with
  ``composer compose X -o take.mp4`` (``compose_clips([X])``), then
  ``composer compose take1 take2 take3 --crossfade 1`` (``compose_clips``, checks included);
* ``foreign, matching``: clips encoded with composer's x264 settings but x264's default GOP of
  250 frames (an editor exporting at the same settings), joined the same way: cut from their
  IDR frames, never normalised;
* ``spans alone``: the floor of each case, encoding only what composer must encode (the spans:
  each fade and the incoming head up to its next IDR) side by side and nothing else, with its
  ratio to the full re-encode: no re-join can beat it with composer's encoder;
* the GOP file-size cost: the three clips encoded with composer's settings at an IDR every
  1 s, 2 s and every 250 frames, total bytes.

Each row has wall time, frame count, a clean-decode flag and the ratio to composer's assembly.
Afterwards: PSNR / SSIM of the smart output against the full re-encode (whole file and the
crossfade windows) and whether the bodies equal the normalised takes bit for bit.

The composer assembly rows are the median of ``--repeat`` runs (default 3; each run is listed):
a few seconds of work suffers from a noisy neighbour in a way the minute-long baselines do not.

Run: ``python benchmarks/bench_compose.py [--quick] [--sizes 1920x1080,1280x720] [--no-moviepy] [--repeat N]
[--cases assembly,rejoin] [--no-gop-sizes]``
(``pip install -e .[bench]`` for moviepy). ``--quick`` uses 4 s clips. The figures are noisy on
a shared machine; the ratios within one run are what count. Never assert on them in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

from composer import ffmpeg
from composer.compose import smart
from composer.compose.clips import clip_facts, compose_clips, plan_clips
from composer.compose.graph import Copy, Leg, Span, build, smart_plan
from composer.compose.normalize import normalize_take
from composer.compose.render import compose_full

FPS = Fraction(24)
SOURCES = {
    "a": "testsrc2=size={w}x{h}:rate=24",
    "b": "mandelbrot=size={hw}x{hh}:rate=24,scale={w}:{h}",
    "c": "gradients=size={w}x{h}:rate=24:speed=0.02[g];life=size={w}x{h}:rate=24:mold=10:ratio=0.2,format=rgba[l];"
    "[g][l]blend=all_mode=softlight",
}


def make_clip(name: str, width: int, height: int, seconds: float, hz: int, dest: Path) -> None:
    graph = SOURCES[name].format(w=width, h=height, hw=width // 2, hh=height // 2)
    cmd = [ffmpeg.ffmpeg_exe(), "-v", "error", "-y", "-filter_complex", f"{graph},format=yuv420p[v]"]
    cmd += ["-f", "lavfi", "-i", f"sine=frequency={hz}:sample_rate=48000:duration={seconds}"]
    cmd += ["-map", "[v]", "-map", "0:a", "-t", str(seconds), "-c:v", "libx264", "-preset", "medium"]
    cmd += ["-crf", "20", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", str(dest)]
    subprocess.run(cmd, check=True)


def moviepy_join(paths: list[Path], fade_s: float, dest: Path) -> float | None:
    """moviepy 2's crossfade concatenation; None if moviepy is not installed."""
    try:
        from moviepy import VideoFileClip, afx, concatenate_videoclips, vfx
    except ImportError:
        return None
    started = time.perf_counter()
    clips = [VideoFileClip(str(p)) for p in paths]
    faded = []
    for i, clip in enumerate(clips):
        effects = []
        if i > 0:  # CrossFadeIn fades the mask: only effective with method="compose"
            effects += [vfx.CrossFadeIn(fade_s), afx.AudioFadeIn(fade_s)]
        if i < len(clips) - 1:  # overlapping audio is summed: fade the outgoing one out
            effects.append(afx.AudioFadeOut(fade_s))
        faded.append(clip.with_effects(effects) if effects else clip)
    # padding=-F with the default method="chain" silently gives hard cuts; compose it is.
    final = concatenate_videoclips(faded, method="compose", padding=-fade_s)
    final.write_videofile(
        str(dest), fps=24, codec="libx264", preset="veryfast", audio_codec="aac", logger=None, threads=2
    )
    for clip in clips:
        clip.close()
    return time.perf_counter() - started


def _clean(path: Path) -> tuple[int, bool]:
    report = ffmpeg.decode(path)
    return report.frames, not report.errors and not report.warnings


def bench_size(width: int, height: int, seconds: float, use_moviepy: bool, work: Path, repeat: int) -> None:
    print(f"\n== {width}x{height} @ 24 fps, 3 x {seconds:g} s, two 1 s crossfades ==", flush=True)
    paths = []
    for name, hz in zip("abc", (440, 660, 880), strict=True):
        path = work / f"{name}_{height}.mp4"
        make_clip(name, width, height, seconds, hz, path)
        paths.append(path)
    frames = round(seconds * 24)
    comp = build([Leg(p, frames, True) for p in paths], [24, 24], width, height, FPS, True)
    rows: list[tuple[str, float, int | None, bool | None]] = []

    started = time.perf_counter()
    full = work / f"full_{height}.mp4"
    compose_full(comp, full)
    rows.append(("full xfade re-encode (ffmpeg.compose)", time.perf_counter() - started, *_clean(full)))

    if use_moviepy:
        mp = work / f"moviepy_{height}.mp4"
        took = moviepy_join(paths, 1.0, mp)
        if took is None:
            print("moviepy not installed (pip install -e .[bench]); skipped")
        else:
            rows.append(("moviepy 2 compose + CrossFadeIn", took, *_clean(mp)))

    norm_times, legs = [], []
    for i, path in enumerate(paths):
        started = time.perf_counter()
        legs.append(normalize_take(path, smart.leg_spec(comp, i), cache_dir=work / f"norm{height}"))
        norm_times.append(time.perf_counter() - started)
    out = work / f"smart_{height}.mp4"
    # A few seconds of work is at the mercy of a noisy neighbour in a way a minute is not:
    # the short composer steps run `repeat` times and count by their median.
    checked_runs, assembly_runs = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        smart.assemble(comp, legs, work / f"smart_checked_{height}.mp4")
        checked_runs.append(time.perf_counter() - started)
        started = time.perf_counter()
        plan, _ = smart.assemble(comp, legs, out, check=False)
        assembly_runs.append(time.perf_counter() - started)
    checked, assembly = statistics.median(checked_runs), statistics.median(assembly_runs)
    out_frames, out_clean = _clean(out)
    rows.append(("composer normalise (3 takes, during generation)", sum(norm_times), None, None))
    rows.append((f"composer assembly (smart, median of {repeat})", assembly, out_frames, out_clean))
    rows.append(("composer assembly + its decode check (a render)", checked, None, None))
    rows.append(
        ("composer tail: normalise last take + assembly + check", norm_times[-1] + checked, None, None)
    )

    print(f"{'step':50} {'wall s':>8} {'frames':>7} {'clean':>6} {'x assembly':>11}")
    for name, wall, count, clean in rows:
        flag = "" if clean is None else ("yes" if clean else "NO")
        print(
            f"{name:50} {wall:8.2f} {count if count is not None else '':>7} {flag:>6} {wall / assembly:11.1f}"
        )
    full_s = rows[0][1]
    print(
        "assembly runs: "
        + ", ".join(f"{s:.2f}" for s in assembly_runs)
        + "; with the check: "
        + ", ".join(f"{s:.2f}" for s in checked_runs)
    )
    print(
        f"expected {comp.frames} frames; re-encoded {plan.encoded_frames}, copied {plan.copied_frames}; "
        f"assembly = {assembly / full_s:.1%} of the full re-encode, with its check (a render's tail) "
        f"{checked / full_s:.1%}, tail with the last take normalised = {(norm_times[-1] + checked) / full_s:.1%}"
    )

    scores = ffmpeg.compare_video(full, out)
    windows = [s for j in comp.joins for s in scores[j.offset : j.offset + j.fade]]
    print(
        f"smart vs full: PSNR min {min(s.psnr for s in scores):.2f} dB mean "
        f"{sum(min(s.psnr, 99) for s in scores) / len(scores):.2f} dB, SSIM min {min(s.ssim for s in scores):.4f}; "
        f"windows PSNR min {min(s.psnr for s in windows):.2f} dB, SSIM min {min(s.ssim for s in windows):.4f}"
    )
    out_hashes = ffmpeg.frame_hashes(out)
    exact = True
    for piece in plan.pieces:
        if isinstance(piece, Copy):
            body = ffmpeg.frame_hashes(legs[piece.leg].path)[piece.first : piece.first + piece.frames]
            exact &= out_hashes[piece.at : piece.at + piece.frames] == body
    print(f"bodies identical to the normalised takes (decoded, bit for bit): {exact}", flush=True)


def encode_like_composer(source: Path, dest: Path, gop: int) -> Path:
    """``source`` in composer's x264 settings but with an IDR every ``gop`` frames (audio copied)."""
    args = ffmpeg.x264_args(FPS)
    args[args.index("-g") + 1] = str(gop)
    cmd = [ffmpeg.ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-map", "0", *args, "-c:a", "copy"]
    subprocess.run([*cmd, str(dest)], check=True)
    return dest


def spans_alone(clips: list[Path], work: Path) -> float:
    """The floor of a re-join: encoding only what composer must encode (its spans: each fade and
    the incoming head up to its next IDR), side by side, with nothing else (no audio, copies,
    concat or check). Wall seconds."""
    comp, _, _ = plan_clips([clip_facts(p) for p in clips], crossfade_s=1)
    legs = [
        normalize_take(leg.path, smart.leg_spec(comp, i), cache_dir=work) for i, leg in enumerate(comp.legs)
    ]
    plan = smart_plan(comp, [leg.cut_points for leg in legs], [leg.end_points for leg in legs])
    spans = [piece for piece in plan.pieces if isinstance(piece, Span)]

    def encode(n: int) -> None:
        inputs = smart._piece_inputs(spans[n], legs)
        ffmpeg.encode_span(
            inputs,
            spans[n].fades,
            comp.width,
            comp.height,
            comp.fps,
            work / f"floor{n}.mp4",
            single_thread=True,
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(spans)) as pool:
        list(pool.map(encode, range(len(spans))))
    return time.perf_counter() - started


def bench_rejoin(
    paths: list[Path], frames: int, width: int, height: int, work: Path, repeat: int, gop_sizes: bool = True
) -> None:
    """The own-outputs and foreign-clip cases beside their one-command xfade baselines."""
    print(f"\n-- clips from outside a render ({width}x{height}), x full = one-command xfade / composer --")
    own = []
    for path in paths:
        take = work / f"own_{path.stem}.mp4"
        if not take.is_file():
            compose_clips([path], take)
        own.append(take)
    foreign = [
        f if (f := work / f"foreign_{p.stem}.mp4").is_file() else encode_like_composer(p, f, 250)
        for p in paths
    ]
    print(
        f"{'case':44} {'full s':>7} {'composer s':>11} {'x full':>7} {'encoded':>8} {'normalised':>11} {'clean':>6}"
        f" {'spans alone s':>14} {'x full':>7}"
    )
    for name, clips in (("own outputs re-joined (1 s GOP)", own), ("foreign, matching, GOP 250", foreign)):
        comp = build([Leg(p, frames, True) for p in clips], [24, 24], width, height, FPS, True)
        started = time.perf_counter()
        compose_full(comp, work / f"full_{name[:3]}.mp4")
        full_s = time.perf_counter() - started
        runs, result = [], None
        for _ in range(repeat):
            out = work / f"rejoin_{name[:3]}.mp4"
            out.unlink(missing_ok=True)
            started = time.perf_counter()
            result = compose_clips(clips, out, crossfade_s=1)
            runs.append(time.perf_counter() - started)
        assert result is not None
        took = statistics.median(runs)
        normalised = sum("normalised" in note for note in result.notes)
        count, clean = _clean(result.path)
        exact = count == comp.frames and result.check.frames == comp.frames
        floor = spans_alone(clips, work)
        print(
            f"{name:44} {full_s:7.2f} {took:11.2f} {full_s / took:7.1f} {result.check.encoded_frames:>8} "
            f"{normalised:>11} {'yes' if clean and exact and result.check.method == 'smart' else 'NO':>6}"
            f" {floor:14.2f} {full_s / floor:7.1f}"
        )
        scores = ffmpeg.compare_video(work / f"full_{name[:3]}.mp4", result.path)
        windows = [s for j in comp.joins for s in scores[j.offset : j.offset + j.fade]]
        print(
            f"    runs {', '.join(f'{r:.2f}' for r in runs)} s; {count} frames of {comp.frames}; vs full: "
            f"windows PSNR min {min(s.psnr for s in windows):.2f} dB, SSIM min "
            f"{min(s.ssim for s in windows):.4f}; whole file PSNR min {min(s.psnr for s in scores):.2f} dB, "
            f"SSIM min {min(s.ssim for s in scores):.4f}",
            flush=True,
        )
    if not gop_sizes:
        return
    sizes = {}
    for gop, label in ((24, "1 s"), (48, "2 s"), (250, "250 frames")):
        sizes[label] = sum(
            encode_like_composer(p, work / f"gop{gop}_{p.stem}.mp4", gop).stat().st_size for p in paths
        )
    base = sizes["250 frames"]
    print(
        "GOP file-size cost (3 clips, composer's x264 settings): "
        + ", ".join(f"IDR every {k}: {v / 1e6:.2f} MB ({v / base - 1:+.1%})" for k, v in sizes.items()),
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 s clips instead of 20 s")
    parser.add_argument("--sizes", default="1920x1080,1280x720")
    parser.add_argument("--no-moviepy", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each short composer step (median)")
    parser.add_argument("--cases", default="assembly,rejoin", help="assembly (a render), rejoin (issue 19)")
    parser.add_argument("--no-gop-sizes", action="store_true", help="skip the GOP file-size encodes")
    parser.add_argument(
        "--work", help="keep the clips in this folder and reuse them next time (default: a temporary one)"
    )
    args = parser.parse_args(argv)
    print(ffmpeg.ffmpeg_version())
    with contextlib.ExitStack() as stack:
        if args.work:
            work = args.work
            Path(work).mkdir(parents=True, exist_ok=True)
        else:
            work = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_compose."))
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.split("x"))
            seconds = 4.0 if args.quick else 20.0
            cases = args.cases.split(",")
            if "assembly" in cases:
                bench_size(width, height, seconds, not args.no_moviepy, Path(work), args.repeat)
            if "rejoin" in cases:
                paths = []
                for name, hz in zip("abc", (440, 660, 880), strict=True):
                    path = Path(work) / f"{name}_{height}.mp4"
                    if not path.is_file():
                        make_clip(name, width, height, seconds, hz, path)
                    paths.append(path)
                bench_rejoin(
                    paths, round(seconds * 24), width, height, Path(work), args.repeat, not args.no_gop_sizes
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
