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
from hwlink.errors import HwlinkError

DELIMITER = ";"
DEFAULT_FLUSH_INTERVAL = 0.5


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
    """Appends rows to a CSV table; flushed at least every ``flush_interval`` seconds."""

    def __init__(self, path: str | os.PathLike[str], header: Sequence[str], *,
                 flush_interval: float = DEFAULT_FLUSH_INTERVAL) -> None:
        if not header:
            raise TableWriteError("a table needs a header with at least one column")
        self.path = Path(path)
        self.header = tuple(str(name) for name in header)
        self._flush_interval = flush_interval
        try:
            self._handle = open(self.path, "x", encoding="utf-8", newline="")
        except OSError as error:
            raise TableWriteError(f"cannot create table '{self.path}': {error.strerror or error}") from None
        self._lock = threading.Lock()
        self._rows = 0
        self._pending_since: float | None = None
        self._closed = False
        self._handle.write(DELIMITER.join(format_cell(name) for name in self.header) + "\n")
        self._handle.flush()
        flushing.register(self)

    @property
    def rows(self) -> int:
        return self._rows

    def append(self, row: Sequence[Any]) -> None:
        """Append one row with as many cells as the header has columns."""
        if len(row) != len(self.header):
            raise TableWriteError(f"row has {len(row)} cells, the table has {len(self.header)} columns "
                                  f"({DELIMITER.join(self.header)})")
        line = DELIMITER.join(format_cell(value) for value in row) + "\n"
        with self._lock:
            if self._closed:
                raise TableWriteError(f"table '{self.path}' is closed")
            try:
                self._handle.write(line)
            except OSError as error:
                raise TableWriteError(f"writing '{self.path}' failed: {error.strerror or error}") from None
            self._rows += 1
            now = time.monotonic()
            if self._pending_since is None:
                self._pending_since = now
            elif now - self._pending_since >= self._flush_interval:
                self._flush_locked()

    def extend(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.append(row)

    def _flush_locked(self) -> None:
        try:
            self._handle.flush()
        except OSError as error:
            raise TableWriteError(f"writing '{self.path}' failed: {error.strerror or error}") from None
        self._pending_since = None

    def flush(self) -> None:
        with self._lock:
            if not self._closed:
                self._flush_locked()

    def flush_if_due(self) -> None:
        with self._lock:
            if self._closed or self._pending_since is None:
                return
            if time.monotonic() - self._pending_since >= self._flush_interval:
                try:
                    self._flush_locked()
                except TableWriteError:
                    pass  # raised again by the next append, flush or close

    def close(self) -> None:
        flushing.unregister(self)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._handle.close()
            except OSError as error:
                raise TableWriteError(f"writing '{self.path}' failed: {error.strerror or error}") from None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_table(path: str | os.PathLike[str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (as strings) of a ``;``-separated table, Syntalos' or ours."""
    with open(path, encoding="utf-8", newline="") as handle:
        lines = [line.rstrip("\r\n") for line in handle]
    if not lines:
        return [], []
    split = [line.split(DELIMITER) for line in lines if line != ""]
    return split[0], split[1:]
