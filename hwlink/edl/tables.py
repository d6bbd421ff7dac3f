"""CSV tables as Syntalos' table module writes them: ``;``-separated UTF-8, a header row, no quoting.

Syntalos replaces ``;`` inside a cell with the fullwidth ``；`` rather than quoting; line breaks inside a
cell become spaces. edlio and ``pandas.read_csv(path, sep=";")`` read the result.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Self

from hwlink.edl import flushing
from hwlink.edl.files import ensure_space
from hwlink.errors import HwlinkError

DELIMITER = ";"
DEFAULT_FLUSH_INTERVAL = 0.25  # with the flusher's tick, a kill loses well under the README's 0.5 s


class TableWriteError(HwlinkError):
    """A row does not fit the table, or the file cannot be written."""


def format_cell(value: Any) -> str:
    """One cell: ``None`` is empty, floats keep full precision, separators are replaced as Syntalos does."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        text = repr(value)
    else:
        text = str(value)
    return text.replace(DELIMITER, "\uff1b").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


class TableWriter:
    """Appends rows to a CSV table; flushed at least every ``flush_interval`` seconds.

    Rows are kept whole: they are buffered here and written in one go per flush, and a flush that fails (disk
    full, I/O error) truncates the file back to its last flushed size, so the file never ends in a cut row.
    After a failure every call raises :class:`TableWriteError`.
    """

    def __init__(self, path: str | os.PathLike[str], header: Sequence[str], *,
                 flush_interval: float = DEFAULT_FLUSH_INTERVAL) -> None:
        if not header:
            raise TableWriteError("a table needs a header with at least one column")
        self.path = Path(path)
        self.header = tuple(str(name) for name in header)
        self._flush_interval = flush_interval
        try:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o666)
        except OSError as error:
            raise TableWriteError(f"cannot create table '{self.path}': {error.strerror or error}") from None
        self._lock = threading.Lock()
        self._rows = 0
        self._pending: list[str] = []
        self._pending_since: float | None = None
        self._size = 0  # bytes on disk after the last successful flush
        self._error: str | None = None
        self._closed = False
        self._pending.append(DELIMITER.join(format_cell(name) for name in self.header) + "\n")
        self._flush_locked()
        flushing.register(self)

    @property
    def rows(self) -> int:
        return self._rows

    def _check(self) -> None:
        if self._error is not None:
            raise TableWriteError(f"writing '{self.path}' failed earlier: {self._error}")
        if self._closed:
            raise TableWriteError(f"table '{self.path}' is closed")

    def append(self, row: Sequence[Any]) -> None:
        """Append one row with as many cells as the header has columns."""
        if len(row) != len(self.header):
            raise TableWriteError(f"row has {len(row)} cells, the table has {len(self.header)} columns "
                                  f"({DELIMITER.join(self.header)})")
        line = DELIMITER.join(format_cell(value) for value in row) + "\n"
        with self._lock:
            self._check()
            self._pending.append(line)
            self._rows += 1
            now = time.monotonic()
            if self._pending_since is None:
                self._pending_since = now
            elif now - self._pending_since >= self._flush_interval or len(self._pending) >= 65536:
                self._flush_locked()

    def extend(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.append(row)

    def _flush_locked(self) -> None:
        if not self._pending:
            self._pending_since = None
            return
        data = "".join(self._pending).encode("utf-8")
        assert self._fd is not None
        try:
            ensure_space(self.path, len(data))
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as error:
            self._error = error.strerror or str(error)
            try:
                os.ftruncate(self._fd, self._size)  # no cut row: back to the last whole flush
            except OSError:
                pass
            raise TableWriteError(f"writing '{self.path}' failed: {self._error}") from None
        self._size += len(data)
        self._pending.clear()
        self._pending_since = None

    def flush(self) -> None:
        with self._lock:
            self._check()
            self._flush_locked()

    def flush_if_due(self) -> None:
        with self._lock:
            if self._closed or self._error is not None or self._pending_since is None:
                return
            if time.monotonic() - self._pending_since >= self._flush_interval:
                try:
                    self._flush_locked()
                except TableWriteError:
                    pass  # raised again by the next append, flush or close

    def close(self) -> None:
        """Write what is buffered and close; raises (once) if any write of this table failed."""
        flushing.unregister(self)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            failure = None
            if self._error is None:
                try:
                    self._flush_locked()
                except TableWriteError as error:
                    failure = error
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)
            if failure is not None:
                raise failure
            if self._error is not None:
                raise TableWriteError(f"writing '{self.path}' failed: {self._error}")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_table(path: str | os.PathLike[str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (as strings) of a ``;``-separated table, Syntalos' or ours."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            lines = [line.rstrip("\r\n") for line in handle]
    except UnicodeDecodeError as error:
        raise TableWriteError(f"'{path}' is not UTF-8 text (byte {error.start}): not a table") from None
    if not lines:
        return [], []
    split = [line.split(DELIMITER) for line in lines if line != ""]
    return split[0], split[1:]
