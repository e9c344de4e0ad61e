"""Safe file writes and reads.

Writes are atomic (readers see the old file or the new one, never half of one)
and land only on regular files: a device, FIFO, socket or directory at the target
is refused, never replaced. New files get the permissions the process umask
allows (as ``open()`` would), a replaced file keeps its mode.

Reads of files that come from elsewhere (router states) go through
:func:`read_regular_file`: size-capped, regular files only (a FIFO is refused
without being opened), optionally confined to one directory.
"""

from __future__ import annotations

import io
import os
import stat
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import InputError

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
}


def file_kind(mode: int) -> str:
    """What a ``st_mode`` describes, in words ("a regular file", "a FIFO (named pipe)", ...)."""
    return "a regular file" if stat.S_ISREG(mode) else _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def refuse_directory(path: Path, what: str) -> None:
    """Raise :class:`~uniroute.InputError` if ``path`` is a directory where ``what`` (a file) is expected.

    Called before a reader's "no such file" check, which would call an existing directory missing.
    """
    if path.is_dir():
        raise InputError(
            f"{path} is a directory; expected {what}, a file: give a file's path, e.g. one in it"
        )


def _existing_mode(path: Path) -> int | None:
    """The mode of the regular file at ``path`` (symlinks followed), None if nothing is there."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise InputError(f"refusing to write {path}: it is a dangling symbolic link") from None
        return None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"refusing to write {path}: it is {file_kind(st.st_mode)}, not a regular file; "
            "give the path of a file to create or replace"
        )
    return stat.S_IMODE(st.st_mode)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    Raises :class:`~uniroute.InputError` if ``path`` exists and is not a regular
    file. The new file has the umask's permissions (like ``open(path, "w")``), or
    the mode of the file it replaces.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _existing_mode(path)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    # O_BINARY: Windows opens a descriptor in text mode (LF written as CRLF) without it; POSIX has none
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None and hasattr(os, "fchmod"):  # POSIX; Windows has no modes to keep
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _existing_mode(path)  # again: something else may have appeared there meanwhile
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_npy(path: Path, array: np.ndarray) -> None:
    """Save one array as ``.npy`` atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def atomic_write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Save named arrays as one compressed ``.npz`` atomically (no pickled objects)."""
    buffer = io.BytesIO()
    named: dict[str, Any] = dict(arrays)  # numpy's stubs read **kwargs as its allow_pickle flag
    np.savez_compressed(buffer, **named)
    atomic_write_bytes(path, buffer.getvalue())


def read_regular_file(path: Path, max_bytes: int, inside: Path | None = None) -> bytes:
    """The bytes of the regular file at ``path``; :class:`OSError` or :class:`InputError` otherwise.

    ``inside``: the file (after following symlinks) must lie in that directory.
    Non-regular files (FIFOs, devices, directories) are refused from their
    ``stat`` without being opened; files over ``max_bytes`` are refused unread.
    """
    if inside is not None:
        real, root = Path(os.path.realpath(path)), Path(os.path.realpath(inside))
        if real.parent != root:
            raise InputError(f"{path} leads outside {inside} (to {real})")
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path} is {file_kind(st.st_mode)}, not a regular file")
    # O_BINARY: in Windows' default text mode a read turns CRLF into LF and stops at a Ctrl-Z byte
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())  # the file opened may differ from the one checked
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path} is {file_kind(st.st_mode)}, not a regular file")
        if st.st_size > max_bytes:
            raise InputError(f"{path} is {st.st_size:,} bytes, over the {max_bytes:,} bytes allowed")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(f"{path} grew over the {max_bytes:,} bytes allowed while being read")
    return data
