"""Durable renames: directory fsync where the OS has it, and ``os.replace`` that survives a reader's handle.

POSIX makes a rename durable only once the directory is fsynced, which needs ``os.open(dir, O_DIRECTORY)``.
Windows has no O_DIRECTORY (and cannot open a directory with ``os.open``); NTFS journals the rename itself.
On Windows ``os.replace`` fails with PermissionError while another process (a viewer, an antivirus scanner,
the search indexer) holds the target open without FILE_SHARE_DELETE; such holds are brief, so the rename is
retried for a while before the error is passed on. On POSIX a PermissionError is final and is raised at once.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import BinaryIO

from hwlink.platform._switches import IS_WINDOWS, portable

REPLACE_RETRY_SEC = 2.0
_FIRST_BACKOFF_SEC = 0.005


def fsync_directory(path: str | os.PathLike[str]) -> bool:
    """Make a rename or a new entry in ``path`` durable where the OS allows; returns whether it synced."""
    flag = getattr(os, "O_DIRECTORY", None)
    if flag is None or IS_WINDOWS or portable("files"):
        return False
    try:
        descriptor = os.open(path, os.O_RDONLY | flag)
    except OSError:
        return False
    try:
        os.fsync(descriptor)
        return True
    except OSError:
        return False
    finally:
        os.close(descriptor)


def replace_file(source: str | os.PathLike[str], target: str | os.PathLike[str],
                 retry_sec: float = REPLACE_RETRY_SEC) -> None:
    """``os.replace(source, target)``, retried on PermissionError for up to ``retry_sec`` where holds are
    transient (Windows, or the files seam forced portable)."""
    if not (IS_WINDOWS or portable("files")):
        os.replace(source, target)
        return
    deadline = time.monotonic() + retry_sec
    backoff = _FIRST_BACKOFF_SEC
    while True:
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if time.monotonic() + backoff > deadline or Path(target).is_dir():
                raise
            time.sleep(backoff)
            backoff = min(backoff * 2, 0.1)


def copy_prefix(source: BinaryIO, target: BinaryIO, length: int) -> None:
    """Copy the first ``length`` bytes of ``source`` to ``target``: in the kernel with ``copy_file_range`` where
    the OS has it (Linux; not Windows or macOS, nor when forced portable), else by reading and writing."""
    done = 0
    copy_range = None if portable("files") else getattr(os, "copy_file_range", None)
    if copy_range is not None:
        try:
            while done < length:
                moved = copy_range(source.fileno(), target.fileno(), length - done)
                if moved == 0:
                    break
                done += moved
            return
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
                raise
    source.seek(done)
    target.seek(done)
    while done < length:
        chunk = source.read(min(1 << 20, length - done))
        if not chunk:
            break
        target.write(chunk)
        done += len(chunk)
