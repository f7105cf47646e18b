"""Issue 17: storyboards that used to crash or hang ``composer validate``, one test per finding.

Each is written into ``tmp_path`` and run through the real command line: exit 2, a message
``FILE:LINE:`` (where the file has lines) naming the field and the problem, no traceback,
and no more than a few seconds.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from composer import imaging
from composer.cli import main
from composer.errors import MediaError
from composer.storyboard import load_storyboard

GOOD = (
    "version: 1\ntitle: fine\nscenes:\n"
    "  - id: a\n    prompt: waves roll onto a wide sandy beach at dawn, slow pan left along the shore\n"
    "    duration_s: 60\n"
)


def _validate(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    began = time.monotonic()
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert time.monotonic() - began < 10, "validate took too long"
    assert "Traceback" not in err
    assert code == 2, err
    return err


def _write(tmp_path: Path, text: str, name: str = "board.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _alias_bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_stops_at_the_alias_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _alias_bomb()
    assert len(text) < 500
    err = _validate(_write(tmp_path, text), capsys)
    assert "aliases (*name) expand to more than 10000 values" in err
    assert len(err) < 2000  # one located line, not megabytes of repeated values


def test_a_small_alias_is_still_read(tmp_path: Path) -> None:
    text = GOOD.replace("title: fine\n", "title: &t fine\nstyle: *t\n")
    loaded = load_storyboard(_write(tmp_path, text))
    assert loaded.storyboard.style == "fine"


def test_a_recursive_alias_is_a_located_loop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _validate(_write(tmp_path, "x: &s [*s]\n" + GOOD), capsys)
    assert "board.yaml:1:" in err and "(a loop)" in err


@pytest.mark.parametrize(
    ("head", "words"),
    [
        ("b: &b {title: x}\n<<: *b\n", "merge keys (<<) are not supported"),
        ("=: 1\n", "the key '=' is not a name"),
        ("? [a, b]\n: 1\n", "a key here is a list"),
        ("{1: 2}: 3\n", "a key here is a mapping"),
        ("7: seven\n", "the key '7' is not a name"),
    ],
    ids=["merge", "equals", "complex-list", "complex-mapping", "number"],
)
def test_keys_that_are_not_names_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], head: str, words: str
) -> None:
    err = _validate(_write(tmp_path, head + GOOD), capsys)
    assert words in err
    assert "board.yaml:" in err


def test_an_impossible_date_is_kept_as_the_text_written(tmp_path: Path) -> None:
    loaded = load_storyboard(_write(tmp_path, GOOD.replace("title: fine", "title: 2001-02-30")))
    assert loaded.storyboard.title == "2001-02-30"


def test_a_date_where_a_number_belongs_is_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _validate(_write(tmp_path, GOOD.replace("duration_s: 60", "duration_s: 2001-02-30")), capsys)
    assert "board.yaml:6:" in err and "scenes[0].duration_s" in err


def test_an_integer_too_long_to_convert_is_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _validate(_write(tmp_path, GOOD.replace("duration_s: 60", "duration_s: " + "9" * 5000)), capsys)
    assert "board.yaml:6:" in err and "cannot be read" in err
    assert len(err) < 1000


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_twenty_thousand_brackets_are_refused_by_depth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    err = _validate(_write(tmp_path, "[" * 20000, name=f"deep{suffix}"), capsys)
    assert "nested more than 32 levels deep" in err


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("title: fine", 'title: "one\\ntwo"', "title"),
        ("id: a", 'id: "a\\x1b"', "scenes[0].id"),
        ("duration_s: 60", 'duration_s: 60\n    camera: "pan\\rleft"', "scenes[0].camera"),
    ],
    ids=["title-newline", "id-escape", "camera-cr"],
)
def test_control_characters_in_one_line_fields_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, field: str
) -> None:
    err = _validate(_write(tmp_path, GOOD.replace(old, new)), capsys)
    assert f" {field}: contains the control character" in err


def test_a_prompt_may_span_lines(tmp_path: Path) -> None:
    text = GOOD.replace("prompt: waves", 'prompt: "first line\\nwaves')
    text = text.replace("shore\n", 'shore"\n')
    loaded = load_storyboard(_write(tmp_path, text))
    assert "\n" in loaded.storyboard.scenes[0].prompt


def test_a_fifo_storyboard_is_refused_without_hanging(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "board.yaml"
    os.mkfifo(fifo)
    err = _validate(fifo, capsys)
    assert "FIFO" in err and "regular file" in err


def test_a_folder_storyboard_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _validate(tmp_path, capsys)
    assert "folder" in err


def test_an_oversized_storyboard_is_refused_before_parsing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "board.yaml"
    path.write_bytes(GOOD.encode() + b"#" * (3 * 1024 * 1024))
    err = _validate(path, capsys)
    assert "may be at most" in err


def _with_image(image: str) -> str:
    return GOOD + f"    image: {image}\n"


def test_a_5000_character_image_name_is_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _validate(_write(tmp_path, _with_image("a" * 5000 + ".png")), capsys)
    assert "board.yaml:7:" in err and "scenes[0].image" in err and "the limit is 1024" in err
    assert len(err) < 1000


def test_a_300_byte_image_name_is_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _validate(_write(tmp_path, _with_image("a" * 300 + ".png")), capsys)
    assert "board.yaml:7:" in err and "longer than 255 bytes" in err


def test_a_nul_in_an_image_path_is_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _validate(_write(tmp_path, _with_image('"a\\0b.png"')), capsys)
    assert "board.yaml:7:" in err and "scenes[0].image" in err and "U+0000" in err


@pytest.mark.parametrize("image", ["/dev/zero", "."], ids=["device", "folder"])
def test_an_image_that_is_not_a_regular_file_is_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], image: str
) -> None:
    err = _validate(_write(tmp_path, _with_image(image)), capsys)
    assert "board.yaml:7:" in err and "regular file" in err


def test_an_image_fifo_does_not_hang(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    err = _validate(_write(tmp_path, _with_image("pipe.png")), capsys)
    assert "FIFO" in err


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\0" * 64


def test_a_png_claiming_30000x30000_is_refused_from_its_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "big.png").write_bytes(_png_header(30000, 30000))
    err = _validate(_write(tmp_path, _with_image("big.png")), capsys)
    assert "30000x30000" in err and f"{imaging.MAX_IMAGE_PIXELS} pixel limit" in err


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp"])
def test_the_header_probe_reads_real_files(tmp_path: Path, ext: str) -> None:
    ok, data = cv2.imencode(ext, np.full((48, 80, 3), 90, np.uint8))
    assert ok
    found = imaging.header_size(data.tobytes())
    assert found is not None and found[1:] == (80, 48)


def test_a_file_that_is_no_image_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "fake.png"
    path.write_bytes(b"BM" + b"\0" * 100)
    with pytest.raises(MediaError, match="not a PNG, JPEG or WebP"):
        imaging.read_image(path)


def test_a_raw_control_character_at_the_start_is_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found by the fuzz test: PyYAML's reader checks the first characters while it is made.
    err = _validate(_write(tmp_path, "\x1f" + GOOD), capsys)
    assert "board.yaml:1:1:" in err and "U+001F is not allowed" in err
