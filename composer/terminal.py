"""Progress on the command line: a bar per stage on a terminal, plain lines for logs and pipes.

What lives here: :class:`ProgressBar`, the callback the CLI hands the pipeline (and
``composer compose``), and :class:`BatchDisplay`, one line for a batch of storyboards. On a terminal each stage gets one tqdm bar, redrawn in place, with its
rate and time left; the compose stage counts the frames of *all* the outputs, so its bar covers
the whole composition. When the stream is not a terminal (a log file, a pipe, CI) it writes a
line every 10% of a stage instead: no carriage returns or escape codes to clutter a log.
tqdm is imported here and nowhere else (one module per outside library).
What does not live here: the progress figures themselves (``pipeline.Progress``, fed by each
ffmpeg's ``-progress``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import ClassVar, TextIO

from tqdm import tqdm

#: What each stage counts, for the bar's rate ("frame/s").
UNITS = {"compose": "frame", "generate": "chunk"}


def _has_size(stream: TextIO) -> bool:
    try:
        size = os.get_terminal_size(stream.fileno())
        return size.columns > 0 and size.lines > 0
    except (OSError, ValueError):
        return False


class ProgressBar:
    """A tqdm bar per stage on a terminal; a line every ~10% of a stage otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._stage = ""
        self._last_step = -1
        self._started = time.perf_counter()
        self._bar: tqdm[None] | None = None
        self._finished = False  # this stage's bar reached its end (a repeated 100% draws nothing)

    def __call__(self, progress: object) -> None:
        stage, done, total, detail = (getattr(progress, k) for k in ("stage", "done", "total", "detail"))
        if stage != self._stage:
            self.close()
            self._stage, self._last_step, self._started = stage, -1, time.perf_counter()
            self._finished = False
        if self.tty:
            self._draw(stage, done, total, detail)
        else:
            self._line(stage, done, total, detail)

    def _draw(self, stage: str, done: int, total: int, detail: str) -> None:
        if self._finished:
            return
        if self._bar is None:
            sized = _has_size(self.stream)
            self._bar = tqdm(
                total=total,
                desc=f"{stage:<9}",
                unit=UNITS.get(stage, "step"),
                file=self.stream,
                # Follow the terminal's width; a terminal that reports no size (a bare pty,
                # some CI consoles) gets 80x24: tqdm would draw nothing in 0 rows.
                dynamic_ncols=sized,
                ncols=None if sized else 80,
                nrows=None if sized else 24,
                leave=True,
                # Redraw at most 10 times a second: ffmpeg reports twice a second per process,
                # and several run at once during an assembly.
                mininterval=0.1,
            )
        bar = self._bar
        if total != bar.total:
            bar.total = total  # regenerations add chunks
        bar.n = min(done, total) if total else done
        bar.set_postfix_str(detail[:40], refresh=False)
        bar.refresh()
        if total and done >= total:
            self._finished = True
            self.close()

    def _line(self, stage: str, done: int, total: int, detail: str) -> None:
        fraction = min(1.0, done / total) if total else 1.0
        elapsed = time.perf_counter() - self._started
        step = int(fraction * 10)
        if step != self._last_step:
            self._last_step = step
            self.stream.write(f"{stage:<9}{fraction * 100:5.1f}%  {elapsed:6.1f}s  {detail}\n")
            self.stream.flush()

    def close(self) -> None:
        """End the bar being drawn (its line stays on the screen); nothing for plain lines."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class BatchDisplay:
    """One progress display for a batch: every storyboard's stage and share done, and the total.

    On a terminal one line redrawn in place; otherwise a line whenever the total passes
    another tenth, or a storyboard changes stage.
    """

    #: Each stage's share of a storyboard's work, as the display counts it.
    STAGES: ClassVar[dict[str, tuple[float, float]]] = {
        "generate": (0.0, 0.8),
        "compose": (0.8, 0.18),
        "report": (0.98, 0.02),
    }

    def __init__(self, names: Sequence[str], stream: TextIO) -> None:
        self.stream, self.tty = stream, stream.isatty()
        self.state: dict[str, tuple[str, float]] = {n: ("waiting", 0.0) for n in names}
        self._last_step = -1
        self._started = time.perf_counter()

    def __call__(self, update: object) -> None:
        name, progress = getattr(update, "name"), getattr(update, "progress")  # noqa: B009
        start, share = self.STAGES.get(progress.stage, (0.0, 0.0))
        fraction = min(1.0, progress.done / progress.total) if progress.total else 1.0
        changed = self.state.get(name, ("", 0.0))[0] != progress.stage
        self.state[name] = (progress.stage, start + share * fraction)
        total = sum(f for _, f in self.state.values()) / max(1, len(self.state))
        parts = "  ".join(f"{n} {s} {f * 100:3.0f}%" for n, (s, f) in self.state.items())
        line = f"batch {total * 100:5.1f}%  {time.perf_counter() - self._started:6.1f}s  {parts}"
        if self.tty:
            self.stream.write("\r" + line[:200])
        elif changed or int(total * 10) != self._last_step:
            self._last_step = int(total * 10)
            self.stream.write(line + "\n")
        self.stream.flush()
