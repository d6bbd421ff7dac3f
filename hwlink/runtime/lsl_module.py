"""``kind = "lsl-outlet"``: publishes the stream connected to its ``in`` port as a Lab Streaming Layer stream.

Settings: ``name`` (stream name, default the module name), ``type`` (LSL content type, default by data type:
``hwlink-lines``, ``hwlink-signals``, ``Markers``), ``source_id`` (default ``hwlink:<run>:<module>``), ``wait_for_consumers`` (a
duration: the run starts only once a consumer such as LabRecorder is connected, or that time has passed, so it
misses nothing; sources start after consumers). LineReadings, signal blocks, table rows, control and line commands are
published as described in :mod:`hwlink.drivers.lsl_outlet`; their hwlink master timestamps are converted to LSL's
clock (rows and commands carry no time of their own: they are stamped when they reach the outlet). Samples are
pushed on the producer's thread (a push is a few µs), so they leave with no queue in between.

An input port has one source, and a board stamps all its lines through one synchronizer on one thread, so a
LineReading stream is normally in order and goes out as it comes. A source that is not (a script merging lines
of its own) is caught: the first reading older than one already pushed switches the stream to a reorder buffer
(:class:`hwlink.drivers.lsl_outlet.ReorderBuffer`, released by a thread of the outlet's own) for the rest of the run.
"""

from __future__ import annotations

from typing import Any

from hwlink.drivers.lsl_outlet import LineOutlet, MarkerOutlet, ReorderBuffer, SignalOutlet
from hwlink.errors import ConfigError
from hwlink.runtime.experiment import ModuleSpec, Settings
from hwlink.runtime.module import InPort, Module, RunContext
from hwlink.runtime.datatypes import SIGNAL_TYPES, DataType


class LslOutletModule(Module):
    kind = "lsl-outlet"
    description = "LSL outlet"

    def __init__(self, spec: ModuleSpec, ctx: RunContext) -> None:
        super().__init__(spec, ctx)
        settings = Settings(spec)
        self.stream_name = str(settings.text("name", spec.name))
        self.stream_type = settings.text("type", None)
        self.source_id = settings.text("source_id", None)
        self.wait_usec = settings.duration_usec("wait_for_consumers", 0)
        settings.finish(self.description)
        self.port = self.add_input("in", None, self._on_item)
        self.outlet: Any = None
        self._push: Any = None

    def start(self) -> None:
        source = self.port.source
        if source is None:
            return
        data_type = self.port.stream_type
        metadata = source.metadata
        clock = self.ctx.clock
        source_id = self.source_id or f"hwlink:{self.ctx.run_uuid.hex() if self.ctx.run_uuid else ''}:{self.name}"
        extra = {"stream_type": self.stream_type} if self.stream_type else {}
        if data_type == DataType.LineReading:
            names = metadata.get("line_names") or {}
            lines = {int(k): str(v) for k, v in names.items()}
            if not lines:
                raise ConfigError(f"{self.name}: the connected LineReading stream names no lines (line_names metadata)")
            self.outlet = LineOutlet(clock, self.stream_name, lines, source_id,
                                     reorder=ReorderBuffer(active=False), **extra)
            self.outlet.start_releasing()
            self._push = lambda item: self.outlet.push_reading(item)
        elif data_type in SIGNAL_TYPES:
            count = int(metadata.get("channel_count") or len(metadata.get("channel_names") or []) or 1)
            names = list(metadata.get("channel_names") or [f"ch{n}" for n in range(count)])
            dtype = "float32" if data_type == DataType.SignalBlockF32 else "int32"
            rate = float(metadata.get("sample_rate") or 0.0)
            self.outlet = SignalOutlet(clock, self.stream_name, names, dtype, rate, source_id, **extra)
            self._push = lambda item: self.outlet.push_block(item.timestamps, item.data)
        elif data_type == DataType.TableRow:
            header = [str(h) for h in metadata.get("table_header") or []] or ["row"]
            self.outlet = MarkerOutlet(clock, self.stream_name, header, source_id, **extra)
            self._push = lambda item: self.outlet.push_row(item, clock.now_usec())
        elif data_type in (DataType.ControlCommand, DataType.LineCommand):
            self.outlet = MarkerOutlet(clock, self.stream_name, ["command"], source_id, **extra)
            self._push = lambda item: self.outlet.push_command(item, clock.now_usec())
        else:
            name = data_type.name if data_type is not None else "untyped"
            raise ConfigError(f"{self.name}: an LSL outlet cannot publish {name} streams")
        if self.wait_usec and not self.outlet.wait_for_consumers(self.wait_usec / 1e6):
            self.ctx.log(self.name, f"no LSL consumer within {self.wait_usec / 1e6:g} s; publishing anyway")

    def _on_item(self, port: InPort, item: Any) -> None:
        if self._push is not None:
            self._push(item)

    def close(self) -> None:
        if self.outlet is not None:
            self.outlet.close()
            self.outlet = None
            self._push = None
