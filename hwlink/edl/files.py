"""File-level helpers of EDL writing: atomic replacement, file/media types, natural sorting."""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

from hwlink import platform

# Kept free on the recording's file system: a writer stops cleanly (raising ENOSPC itself) rather than let a
# library meet a full disk halfway through a write (HDF5 then leaves zero rows behind and can crash at exit),
# and closing every file and rewriting the manifests still finds room.
SPACE_RESERVE_BYTES = 256 << 10

# Media types edlio dispatches on (Q7 of the format notes): write one only where edlio has a loader for it;
# .tsync, .h5, .rhd and .zarr must carry a file_type only.
_MEDIA_TYPES = {
    "csv": "text/csv",
    "json": "application/json",
    "mkv": "video/x-matroska",
    "mp4": "video/mp4",
    "avi": "video/x-msvideo",
    "webm": "video/webm",
}
_COMPRESSION_SUFFIXES = {"zst", "gz", "xz"}


def file_type_of(fname: str) -> str | None:
    """Extension without the dot, case kept; ``data.json.zst`` -> ``json.zst`` as Syntalos does."""
    name = Path(fname).name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return None
    if ext.lower() in _COMPRESSION_SUFFIXES:
        inner_stem, inner_dot, inner_ext = stem.rpartition(".")
        if inner_dot and inner_stem:
            return f"{inner_ext}.{ext}"
    return ext


def media_type_of(fname: str) -> str | None:
    file_type = file_type_of(fname)
    return None if file_type is None else _MEDIA_TYPES.get(file_type.lower())


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so a crash leaves either the old or the new file, never a torn one."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        platform.replace_file(temp, path)  # retried while another process holds the target (Windows)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def ensure_space(path: Path, needed: int) -> None:
    """Raise ENOSPC (as the OS would) unless ``needed`` bytes plus the reserve are free where ``path`` lives."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return  # cannot tell: let the write itself find out
    if free < needed + SPACE_RESERVE_BYTES:
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({free // 1024} KiB free, stopped before "
                                    f"the last {SPACE_RESERVE_BYTES // 1024} KiB)", str(path))


def fsync_directory(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable (where the OS has directory fsync)."""
    platform.fsync_directory(path)


_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting ``f2`` before ``f10`` (and zero-padded runs before plain numbers, like strverscmp)."""
    key: list[tuple[int, int | str]] = []
    for index, piece in enumerate(_DIGITS.split(name)):
        if index % 2 == 0:
            key.append((2, piece))
        elif len(piece) > 1 and piece.startswith("0"):
            key.append((0, piece))
        else:
            key.append((1, int(piece)))
    return tuple(key)
