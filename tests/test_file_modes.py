"""Issue 17: written files follow the umask, and inputs that are not regular files are refused.

Every file composer writes goes through a temporary beside its destination and a rename; the
temporary used to keep :func:`tempfile.mkstemp`'s ``0600``, so renders, cache files and reports
were unreadable to a group or a web server whatever the umask said.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from composer import ffmpeg, imaging
from composer.files import NotReadable, read_regular, write_json_atomic, write_text_atomic


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_json_text_png_and_ffmpeg_outputs_follow_the_umask(tmp_path: Path, umask_027: None) -> None:
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    write_text_atomic(tmp_path / "b.html", "<p>hi</p>")
    imaging.write_png(tmp_path / "c.png", np.zeros((16, 16, 3), np.uint8))
    with ffmpeg.atomic_output(tmp_path / "d.mp4") as tmp:
        tmp.write_bytes(b"not really a video")
    for name in ("a.json", "b.html", "c.png", "d.mp4"):
        assert _mode(tmp_path / name) == 0o640, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.html", "c.png", "d.mp4"]


def test_a_wide_umask_gives_world_readable_files(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "a.json", {})
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.json") == 0o644


def test_a_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "board.yaml"
    os.mkfifo(fifo)
    began = time.monotonic()
    with pytest.raises(NotReadable, match="FIFO"):
        read_regular(fifo, max_bytes=1000, what="storyboard")
    assert time.monotonic() - began < 2


@pytest.mark.parametrize(
    ("target", "words"),
    [("/dev/zero", "device"), (".", "folder"), ("nul\0l.yaml", "NUL")],
)
def test_devices_folders_and_nul_names_are_refused(tmp_path: Path, target: str, words: str) -> None:
    path = target if target.startswith("/") else str(tmp_path / target)
    with pytest.raises(NotReadable, match=words):
        read_regular(path, max_bytes=1000, what="storyboard")


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * 2000)
    with pytest.raises(NotReadable, match="at most 1000 bytes"):
        read_regular(big, max_bytes=1000, what="storyboard")
    assert read_regular(big, max_bytes=2000) == b"#" * 2000
