"""Files written atomically with the modes the user's umask asks for, and inputs read safely.

What lives here: :func:`temp_beside` (a temporary file next to its destination, already given
the mode a plain ``open()`` would have given it), :func:`write_bytes_atomic` /
:func:`write_text_atomic` / :func:`write_json_atomic` (temporary, mode, rename), and
:func:`read_regular` (read an input file only if it is a regular file of bounded size, so a
FIFO, a device or a directory named as input is refused instead of hanging or filling memory),
and :func:`file_sha256`. What does not: what the files contain.

Why the mode is set by hand: :func:`tempfile.mkstemp` creates files ``0600`` whatever the umask,
and a rename keeps that mode, so every output, cache file and report came out readable by its
owner only; a user sharing renders with a group or a web server found them unreadable.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import threading
from pathlib import Path

_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the platform allows (Linux ``/proc``).

    Read each time (it is cheap), so a program that changes its umask gets what it asked for.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # Elsewhere the only way is to set it and put it back; the lock keeps two threads from
    # reading each other's placeholder.
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: ``0o666`` less the umask."""
    return 0o666 & ~current_umask()


def temp_beside(dest: Path, suffix: str = ".tmp", *, prefix: str | None = None) -> tuple[int, Path]:
    """(open descriptor, path) of a new temporary file in ``dest``'s folder, with the umask's mode.

    The caller writes it and renames it onto ``dest`` (``os.replace``), or removes it.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=prefix or f".{dest.name}.", suffix=suffix)
    try:
        os.fchmod(fd, file_mode())
    except (AttributeError, OSError):  # no fchmod on Windows; chmod by name there
        os.chmod(name, file_mode())
    return fd, Path(name)


def write_bytes_atomic(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to a temporary file beside ``path``, set its mode, rename it into place.

    ``durable`` also flushes the file and then its folder to the disk (``fsync``), so after a
    power loss the file is either the old one or the new one, never empty (journal entries).
    """
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename, a new file) to the disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: Path, text: str, *, durable: bool = False) -> None:
    """:func:`write_bytes_atomic` for UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"), durable=durable)


def write_json_atomic(path: Path, data: object, *, durable: bool = False) -> None:
    """Write JSON (indented, one trailing newline) atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", durable=durable)


class NotReadable(Exception):
    """An input that is not a regular file, too large, or cannot be opened; ``str`` says which."""


def read_regular(path: str | Path, *, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``, else NotReadable.

    ``os.stat`` comes first so a FIFO is never opened (opening one blocks until a writer
    appears); the file is then opened non-blocking and checked again on the descriptor, so a
    name swapped in between is caught too.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise NotReadable("file not found") from None
    except ValueError:  # a NUL in the name
        raise NotReadable("the path contains a NUL character") from None
    except OSError as exc:
        raise NotReadable(f"cannot be read: {exc.strerror}") from None
    _check_regular(info, what, max_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise NotReadable(f"cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        _check_regular(os.fstat(fh.fileno()), what, max_bytes)
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise NotReadable(f"it is larger than {max_bytes} bytes, the most {_a(what)} may be")
    return data


def _a(what: str) -> str:
    return f"an {what}" if what[:1] in "aeiou" else f"a {what}"


def _check_regular(info: os.stat_result, what: str, max_bytes: int) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise NotReadable(f"it is a folder; {_a(what)} must be a regular file")
    if not stat.S_ISREG(info.st_mode):
        kind = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(info.st_mode)
            else "a device"
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
            else "a socket"
            if stat.S_ISSOCK(info.st_mode)
            else "not a regular file"
        )
        raise NotReadable(f"it is {kind}; {_a(what)} must be a regular file")
    if info.st_size > max_bytes:
        raise NotReadable(f"it is {info.st_size} bytes; {_a(what)} may be at most {max_bytes} bytes")


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, hex, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
