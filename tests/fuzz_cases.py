"""Mutated storyboards for the fuzz test and ``benchmarks/bench_fuzz.py`` (issue 17).

:func:`storyboards` is a hypothesis strategy of ``(text, suffix)``: a valid storyboard with
its text mutated (characters, lines, YAML constructs such as anchors, merge keys, tags, deep
brackets, odd scalars) or its structure mutated (values replaced by values of any type, keys
dropped or added) and dumped as YAML or JSON. :func:`check` runs ``composer validate`` on one
and says what is wrong with the outcome, if anything: the only acceptable outcomes are exit 0
(a valid plan) or exit 2 with every message located at ``FILE:LINE:``, within a few seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

#: The most one case may take (validate on a small file takes a few tens of milliseconds).
CASE_LIMIT_S = 5.0

TEMPLATES = [
    """version: 1
title: Harbour to forest
output:
  length_s: 60
  resolution: 1280x720
  fps: 24
  crossfade_s: 1.0
  remainder: extend
generation:
  backend: local
  model: fast
  segment_s: 20
  seed: 42
style: soft natural light, gentle film grain
scenes:
  - id: harbour-dawn
    duration_s: 20
    image: ref.png
    camera: slow pan right
    prompt: A quiet harbour at dawn, small boats rock on calm water while the sun rises over the headland.
    negative_prompt: people, text
  - id: forest-path
    duration_s: 25
    camera: slow zoom in
    prompt: A winding path through a beech forest in morning mist, light falls between the trunks.
    transition_out: cut
  - id: lake
    duration_s: 15
    prompt: A still alpine lake under snow-capped peaks, small clouds drift across a blue sky.
""",
    """{"version": 1, "title": "json board", "output": {"length_s": 30, "fps": "30000/1001", "resolution": "480p"},
 "scenes": [{"id": "a", "prompt": "waves roll onto a wide beach, slow pan left", "duration_s": 30, "seed": 5}]}
""",
    """scenes:
  - {id: one, prompt: a city at night with traffic and lit windows, duration_s: 12.5}
  - {id: two, prompt: snow falling in a pine forest at dusk, duration_s: 47.5, camera: static}
continuity:
  max_attempts: 2
  hist_sim_regenerate: 0.7
""",
]

SNIPPETS = [
    "&a ",
    "*a",
    "<<: *a\n",
    "? ",
    "=: 1\n",
    "!!python/object/apply:os.system ['true']",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!!timestamp 2001-02-30",
    "2001-02-30",
    "2001-02-03T25:00:00",
    "[" * 60,
    "{" * 60,
    "]",
    "}",
    "\t",
    '"\\x00"',
    '"\\x1b[31m"',
    '"a\\nb"',
    '"\\u2028"',
    "1e999",
    "-.inf",
    ".nan",
    "0x720",
    "0o777",
    "9" * 5000,
    "~",
    "null",
    "yes",
    "- ",
    ": ",
    "'",
    '"',
    "#",
    "%YAML 1.1\n---\n",
    "---\n",
    "...\n",
    "\n  ",
    "&b [*b]",
    "a" * 5000,
    "../" * 40 + "etc/passwd",
    "/dev/zero",
    "\ufeff",
    "é",
    "\U0001f600",
]

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        ["1280x720", "720p", "24", "30000/1001", "0", "-1", "crossfade", "cut", "extend", "local"]
    ),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.extend(_paths(value, (*prefix, index)))
    return found


def _set(data: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


@st.composite
def _text_mutation(draw: st.DrawFn) -> tuple[str, str]:
    index = draw(st.integers(0, len(TEMPLATES) - 1))
    text = TEMPLATES[index]
    suffix = ".json" if index == 1 and draw(st.booleans()) else ".yaml"
    for _ in range(draw(st.integers(1, 4))):
        lines = text.split("\n")
        kind = draw(
            st.sampled_from(["insert", "replace", "delete", "line-dup", "line-del", "line-swap", "indent"])
        )
        at = draw(st.integers(0, max(0, len(text) - 1)))
        row = draw(st.integers(0, max(0, len(lines) - 1)))
        if kind == "insert":
            piece = draw(st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=8)))
            text = text[:at] + piece + text[at:]
        elif kind == "replace":
            text = text[:at] + draw(st.characters()) + text[at + 1 :]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
        elif kind == "line-dup":
            lines.insert(row, lines[row])
            text = "\n".join(lines)
        elif kind == "line-del":
            del lines[row]
            text = "\n".join(lines)
        elif kind == "line-swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[row], lines[other] = lines[other], lines[row]
            text = "\n".join(lines)
        else:
            lines[row] = draw(st.sampled_from(["", " ", "  ", "    ", "\t"])) + lines[row].lstrip()
            text = "\n".join(lines)
    return text, suffix


@st.composite
def _structure_mutation(draw: st.DrawFn) -> tuple[str, str]:
    data = yaml.safe_load(TEMPLATES[draw(st.integers(0, len(TEMPLATES) - 1))])
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        delete = bool(path) and draw(st.booleans())
        data = _set(data, path, draw(_values), delete)
    if draw(st.booleans()):
        return json.dumps(data, default=str), ".json"
    try:
        return yaml.safe_dump(data, allow_unicode=draw(st.booleans())), ".yaml"
    except (yaml.YAMLError, ValueError):
        return json.dumps(data, default=str), ".json"


def storyboards() -> st.SearchStrategy[tuple[str, str]]:
    """Mutated storyboards: ``(text, suffix)``."""
    return st.one_of(_text_mutation(), _structure_mutation())


def prepare(folder: Path) -> None:
    """The reference image the templates name (``ref.png``, 32x32)."""
    import cv2
    import numpy as np

    if not (folder / "ref.png").exists():
        ok, data = cv2.imencode(".png", np.full((32, 32, 3), 100, np.uint8))
        assert ok
        (folder / "ref.png").write_bytes(data.tobytes())


def check(folder: Path, text: str, suffix: str) -> str | None:
    """Run ``composer validate`` on ``text``; None if the outcome is acceptable, else what is wrong."""
    from composer.cli import main

    path = folder / f"board{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    err, out = io.StringIO(), io.StringIO()
    began = time.monotonic()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(["validate", str(path)])
    except BaseException as exc:  # the finding: anything but an exit code
        return f"{type(exc).__name__}: {str(exc)[:300]}"
    seconds = time.monotonic() - began
    if seconds > CASE_LIMIT_S:
        return f"took {seconds:.1f} s"
    message = err.getvalue()
    if "Traceback" in message:
        return "a traceback was printed"
    if code == 0:
        return None
    if code != 2:
        return f"exit {code}: {message[:300]}"
    problems = [line for line in message.splitlines() if line.startswith(str(path))]
    located = re.compile(re.escape(str(path)) + r":\d+(:\d+)?: ")
    if not problems:
        return f"exit 2 without a message naming the file: {message[:300]}"
    unlocated = [line for line in problems if not located.match(line)]
    if unlocated:
        return f"a message without a line: {unlocated[0][:300]}"
    if len(message) > 100_000:
        return f"{len(message)} characters of messages"
    return None
