"""Headless Chromium for report tests: screenshot, DOM dump and console messages of a local page."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Flags that keep Chromium off the (closed) network and quiet in a container.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


@dataclass(frozen=True)
class PageLoad:
    dom: str
    console: list[str]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def load(page: Path, screenshot: Path) -> PageLoad:
    exe = chromium()
    assert exe, "chromium is needed for the report's browser test (.ci/run installs Debian's chromium)"
    with tempfile.TemporaryDirectory() as profile:
        shot = subprocess.run(
            [
                exe,
                *FLAGS,
                f"--user-data-dir={profile}/a",
                "--window-size=1280,2000",
                f"--screenshot={screenshot}",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        dump = subprocess.run(
            [exe, *FLAGS, f"--user-data-dir={profile}/b", "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    console = [ln for ln in (shot.stderr + dump.stderr).splitlines() if ":CONSOLE" in ln]
    return PageLoad(dom=dump.stdout, console=console)
