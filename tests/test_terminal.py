"""Progress on the command line (issue 19): a bar on a terminal, plain lines in logs and pipes.

``composer compose`` runs for real in a subprocess, its stderr once a pipe and once a
pseudo-terminal (the ``pty`` module), over two tiny clips.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.conftest import MakeClip

ROOT = Path(__file__).resolve().parents[1]
PLAIN_LINE = re.compile(r"^compose\s+\d+\.\d%\s+\d+\.\d+s  \S+$")


def _command(make_clip: MakeClip, out: Path) -> list[str]:
    a = make_clip("term_a", seconds=2, source="testsrc2")
    b = make_clip("term_b", seconds=2, source="testsrc", audio_hz=880)
    return [sys.executable, "-m", "composer", "compose", str(a), str(b), "-o", str(out), "--crossfade", "0.5"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}


def test_a_pipe_gets_plain_lines_never_a_redrawn_bar(make_clip: MakeClip, tmp_path: Path) -> None:
    proc = subprocess.run(
        _command(make_clip, tmp_path / "out.mp4"), capture_output=True, text=True, env=_env(), check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("compose")]
    assert lines, proc.stderr
    assert all(PLAIN_LINE.match(line) for line in lines), lines
    assert lines[-1].split()[1] == "100.0%"
    assert len(lines) <= 11  # one line per 10% of the composition at most


@pytest.mark.parametrize("columns", [100, 0], ids=["sized", "no-size"])
def test_a_terminal_gets_one_bar_for_the_whole_composition(
    make_clip: MakeClip, tmp_path: Path, columns: int
) -> None:
    leader, follower = pty.openpty()
    # A terminal 100 columns wide, or one that reports no size at all (a bare pty).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30 if columns else 0, columns, 0, 0))
    try:
        proc = subprocess.Popen(
            _command(make_clip, tmp_path / "out.mp4"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=follower,
            env=_env(),
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other end closed: the process is done with it
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=120)
    finally:
        os.close(leader)
    assert proc.returncode == 0
    shown = b"".join(chunks).decode(errors="replace")
    assert "\r" in shown  # redrawn in place
    assert "frame/s" in shown or "s/frame" in shown  # the bar's rate, in output frames
    assert re.search(r"compose\s*: *100%\|[^|]*\| *(\d+)/\1 ", shown), shown[-500:]
    assert not PLAIN_LINE.search(shown)
    if columns:
        widest = max(len(line) for line in re.split(r"[\r\n]", shown) if line.startswith("compose"))
        assert 60 < widest <= columns
