"""Finding the ffmpeg binary and running it: the one place a process is started.

What lives here: :func:`ffmpeg_exe` (``COMPOSER_FFMPEG``, else ``ffmpeg`` on PATH, else the
imageio-ffmpeg wheel's), :func:`run` (a command with ``-progress``, failures raised as
MediaError in ffmpeg's own words), :func:`atomic_output` (a temporary name beside the target,
renamed when ffmpeg succeeds, so an interrupted run never leaves a half-written file under the
real name) and :func:`complaints` (the errors and warnings among ffmpeg's log lines).
What does not: what a command says (the sibling modules build their own command lines).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path

from composer.errors import EnvironmentProblem, MediaError
from composer.files import temp_beside

ProgressFn = Callable[[int], None]


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The ffmpeg binary: ``$COMPOSER_FFMPEG``, then PATH, then the imageio-ffmpeg wheel."""
    override = os.environ.get("COMPOSER_FFMPEG")
    if override:
        if not (Path(override).is_file() and os.access(override, os.X_OK)):
            raise EnvironmentProblem(
                f"COMPOSER_FFMPEG={override} is not an executable file; point it at ffmpeg or unset it"
            )
        return override
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception as exc:  # the wheel raises RuntimeError or ImportError
        raise EnvironmentProblem(
            "no ffmpeg found: install the Python package with `pip install imageio-ffmpeg`, "
            "put ffmpeg on PATH, or set COMPOSER_FFMPEG"
        ) from exc


def ffmpeg_version() -> str:
    out = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else "unknown"


@contextlib.contextmanager
def atomic_output(dest: Path, suffix: str | None = None) -> Iterator[Path]:
    """A temporary path beside ``dest``, renamed onto it if the block succeeds."""
    fd, tmp = temp_beside(dest, suffix or dest.suffix, prefix=f".{dest.stem}.")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _base_args() -> list[str]:
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y"]


def run(
    args: list[str],
    *,
    total_frames: int | None = None,
    on_progress: ProgressFn | None = None,
    what: str = "ffmpeg",
    loglevel: str = "error",
) -> list[str]:
    """Run ffmpeg with ``-progress``; raise MediaError with ffmpeg's own words on failure.

    Returns what ffmpeg wrote to stderr at ``loglevel``, one line per item.
    """
    cmd = [*args[:1], "-progress", "pipe:1", "-nostats", "-loglevel", loglevel, *args[1:]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
    errors: list[str] = []
    drain = threading.Thread(target=lambda: errors.extend(proc.stderr or []), daemon=True)
    drain.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if on_progress and line.startswith("frame="):
                with contextlib.suppress(ValueError):
                    on_progress(int(line[6:].strip()))
        proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        drain.join(timeout=5)
    if proc.returncode != 0:
        tail = "".join(errors[-15:]).strip() or f"exit code {proc.returncode}"
        raise MediaError(f"{what} failed: {tail}")
    if on_progress and total_frames is not None:
        on_progress(total_frames)
    return [line.rstrip("\n") for line in errors]


def _temp_beside(dest: Path, suffix: str) -> Path:
    fd, tmp = temp_beside(dest, suffix, prefix=f".{dest.stem}.")
    os.close(fd)
    return tmp


_ERROR_TAG = re.compile(r"^(?:\[[^\]]* @ [^\]]*\] )*\[(?:error|fatal|panic)\] ")
_WARNING_TAG = re.compile(r"^(?:\[[^\]]* @ [^\]]*\] )*\[warning\] ")


def complaints(lines: Sequence[str]) -> tuple[str, str]:
    """(errors, warnings) among ffmpeg's stderr lines logged with ``level+...``.

    The level tag follows the context of whoever logged it, e.g. ``[h264 @ 0x5…] [error] …``
    or ``[vist#0:0/h264 @ 0x5…] [dec:h264 @ 0x5…] [warning] corrupt decoded frame``, and
    comes first only for lines without one.
    """
    errors = "\n".join(ln for ln in lines if _ERROR_TAG.match(ln)).strip()
    warnings = "\n".join(ln for ln in lines if _WARNING_TAG.match(ln)).strip()
    return errors, warnings
