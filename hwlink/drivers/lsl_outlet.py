"""LSL outlets that publish hwlink streams, with master-clock timestamps converted to LSL's clock.

Used by ``hwlink record --lsl`` and the ``lsl-outlet`` module kind of ``hwlink run``. One outlet per stream:

* line readings: an irregular-rate ``double64`` stream with one channel per line (labels = line names); each
  reading is one sample holding the value in its line's channel and NaN in the others (``lsl://`` reads NaN as
  "no reading on this line");
* signal blocks: a ``float32``/``int32`` stream at the block rate (irregular if unknown), one sample per row;
* table rows, control commands and line commands: ``string`` marker streams (one channel per table column; a
  single channel ``KIND[ duration][ text]`` for commands).

Every sample carries its hwlink master timestamp converted to LSL time (``pylsl.local_clock()`` seconds): both
count CLOCK_MONOTONIC, so the conversion is exact on this machine; other machines map it with liblsl's clock
offsets (LabRecorder, ``lsl://``). The outlet's XML ``desc`` says so (``hwlink/master_clock_start_ns``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from hwlink.clock import MasterClock
from hwlink.drivers.lsl import import_pylsl, lsl_time_of
from hwlink.lines import ControlCommand, LineCommand, LineReading


CLOSE_LINGER_S = 0.25


class _Outlet:
    """A pylsl outlet with hwlink's description block."""

    def __init__(self, clock: MasterClock, name: str, stream_type: str, labels: Sequence[str], fmt: str,
                 rate_hz: float, source_id: str, units: Sequence[str] | None = None) -> None:
        pylsl = import_pylsl()
        self.clock = clock
        formats = {"double64": pylsl.cf_double64, "float32": pylsl.cf_float32, "int32": pylsl.cf_int32,
                   "string": pylsl.cf_string}
        info = pylsl.StreamInfo(name, stream_type, len(labels), rate_hz, formats[fmt], source_id)
        channels = info.desc().append_child("channels")
        for index, label in enumerate(labels):
            channel = channels.append_child("channel")
            channel.append_child_value("label", str(label))
            if units and units[index]:
                channel.append_child_value("unit", str(units[index]))
        meta = info.desc().append_child("hwlink")
        meta.append_child_value("master_clock_start_ns", str(clock.start_ns))
        meta.append_child_value("timestamps", "hwlink master clock converted to LSL local_clock")
        self.channel_count = len(labels)
        self.samples = 0
        self._outlet = pylsl.StreamOutlet(info, chunk_size=1, max_buffered=360)

    def push(self, sample: Sequence[Any], master_usec: int) -> None:
        self._outlet.push_sample(sample, float(lsl_time_of(self.clock, master_usec)), True)
        self.samples += 1

    def push_chunk(self, rows: np.ndarray, master_usec: np.ndarray) -> None:
        stamps = lsl_time_of(self.clock, master_usec).tolist()
        self._outlet.push_chunk(np.ascontiguousarray(rows), stamps, True)
        self.samples += len(stamps)

    def have_consumers(self) -> bool:
        return bool(self._outlet.have_consumers())

    def wait_for_consumers(self, timeout_s: float) -> bool:
        return bool(self._outlet.wait_for_consumers(timeout_s))

    def close(self) -> None:
        """Destroy the outlet; with consumers connected, first give liblsl's sender a moment: it sends
        asynchronously, and samples still in its queue would be lost with the outlet."""
        if self._outlet is not None and self._outlet.have_consumers():
            time.sleep(CLOSE_LINGER_S)
        self._outlet = None  # pylsl destroys the outlet with its last reference


class LineOutlet(_Outlet):
    """Line readings of known lines, one channel per line (NaN in the channels a reading does not touch)."""

    def __init__(self, clock: MasterClock, name: str, lines: dict[int, str], source_id: str,
                 stream_type: str = "hwlink-lines") -> None:
        self.line_ids = list(lines)
        self._column = {line_id: index for index, line_id in enumerate(self.line_ids)}
        super().__init__(clock, name, stream_type, [lines[line_id] for line_id in self.line_ids], "double64", 0.0,
                         source_id)
        self._row = [float("nan")] * len(self.line_ids)

    def push_reading(self, reading: LineReading, time_usec: int | None = None) -> None:
        column = self._column.get(reading.line_id)
        if column is None:
            return
        row = list(self._row)
        row[column] = float(reading.value)
        self.push(row, reading.time_usec if time_usec is None else time_usec)


class SignalOutlet(_Outlet):
    """Signal blocks (rows x channels) at their sample rate."""

    def __init__(self, clock: MasterClock, name: str, channel_names: Sequence[str], dtype: Any, rate_hz: float,
                 source_id: str, units: Sequence[str] | None = None, stream_type: str = "hwlink-signals") -> None:
        self.dtype = np.float32 if np.dtype(dtype).kind == "f" else np.int32
        super().__init__(clock, name, stream_type, channel_names, "float32" if self.dtype is np.float32 else "int32",
                         rate_hz, source_id, units)

    def push_block(self, timestamps_usec: np.ndarray, data: np.ndarray) -> None:
        rows = np.asarray(data, dtype=self.dtype).reshape(len(timestamps_usec), self.channel_count)
        self.push_chunk(rows, np.asarray(timestamps_usec))


class MarkerOutlet(_Outlet):
    """String markers: table rows (one channel per column) or commands (one channel)."""

    def __init__(self, clock: MasterClock, name: str, columns: Sequence[str], source_id: str,
                 stream_type: str = "Markers") -> None:
        super().__init__(clock, name, stream_type, columns, "string", 0.0, source_id)

    def push_row(self, row: Sequence[Any], master_usec: int) -> None:
        cells = [str(value) for value in row][: self.channel_count]
        cells += [""] * (self.channel_count - len(cells))
        self.push(cells, master_usec)

    def push_command(self, command: ControlCommand | LineCommand, master_usec: int) -> None:
        self.push([command_marker(command)], master_usec)


def command_marker(command: ControlCommand | LineCommand) -> str:
    """'START', 'STOP 500', 'STEP 0 text' for control commands; 'WRITE_DIGITAL line=13 value=1' for line commands."""
    if isinstance(command, ControlCommand):
        parts = [command.kind.name]
        if command.duration or command.command:
            parts.append(str(command.duration))
        if command.command:
            parts.append(command.command)
        return " ".join(parts)
    text = f"{command.kind.name} line={command.line_id} value={command.value}"
    if command.duration_usec:
        text += f" duration_usec={command.duration_usec}"
    return text
