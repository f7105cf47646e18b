"""docs/api.md runs as written: every ``python`` block, in order, in one namespace, in an empty folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_api_page_has_examples_of_every_public_function() -> None:
    import composer

    text = "".join(blocks())
    functions = [n for n in composer.__all__ if n[0].islower() and not n.startswith("_")]
    assert [n for n in functions if f"composer.{n}(" not in text] == []


@pytest.mark.slow
def test_every_example_on_the_api_page_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("opentimelineio")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "api_docs"}
    for number, code in enumerate(blocks(), start=1):
        exec(compile(code, f"{DOC.name} example {number}", "exec"), namespace)
    assert (tmp_path / "renders" / "quick" / "part01.mp4").is_file()
    assert (tmp_path / "joined.mp4").is_file()
