"""Open Ephys Python Processor scripts, run in a script worker.

The script defines a processor class (``PyProcessor`` unless the experiment names another) with Open Ephys'
interface: ``__init__(processor, num_channels, sample_rate)``, ``process(data)`` on a channels x samples
float32 array (changed in place, and what it holds afterwards flows downstream), ``start_acquisition`` /
``stop_acquisition``, ``start_recording(dir)`` / ``stop_recording``, ``handle_ttl_event(...)`` and
``handle_spike(...)``. ``processor.add_python_event(line, state)`` sends a TTL event downstream as a
LineReading. Unlike the Open Ephys plugin, any number of instances can run in one experiment (each is a
process of its own).

Ports: ``signals-in`` / ``signals-out`` (SignalBlockF32), ``events-in`` / ``events-out`` (LineReading: TTL
edges), ``spikes-in`` (TableRow: source_node, electrode_name, num_channels, num_samples, sample_number,
sorted_id, then the waveform values channel-major).
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwlink.lines import LineReading
from hwlink.runtime import mlink
from hwlink.runtime.types import SignalBlockF32

if TYPE_CHECKING:
    from hwlink.runtime.host import Host

SIGNAL_PORTS = ("signals-in", "signals-out")


class ProcessorHandle:
    """The ``processor`` object Open Ephys passes to the script's constructor."""

    def __init__(self, adapter: OEAdapter) -> None:
        self._adapter = adapter

    def add_python_event(self, line: int, state: bool) -> None:
        self._adapter.emit_event(int(line), bool(state))


class OEAdapter:
    """Drives an Open Ephys-style processor class from the worker's lifecycle and ports."""

    def __init__(self, host: Host, class_name: str) -> None:
        self._host = host
        self._class = host.namespace.get(class_name)
        if not isinstance(self._class, type):
            raise mlink.SyntalosPyError(f"the script defines no processor class {class_name!r}")
        self._instance: Any = None
        self._samples_seen = 0
        self._block_start_sample = 0
        self._block_start_usec = 0
        self._current_time_usec: int | None = None
        self._sample_rate = 0.0
        self._signals_out = host.outputs["signals-out"]
        self._events_out = host.outputs["events-out"]
        handle = ProcessorHandle(self)
        # Open Ephys scripts may import the plugin's module; give them one that adds events here.
        module = types.ModuleType("oe_pyprocessor")
        module.add_python_event = handle.add_python_event  # type: ignore[attr-defined]
        sys.modules["oe_pyprocessor"] = module
        self._handle = handle

    # lifecycle hooks the host calls
    def prepare(self) -> bool:
        metadata = self._host.inputs["signals-in"].metadata
        channels = metadata.get("channel_count")
        rate = metadata.get("sample_rate")
        if channels is None or rate is None:
            raise mlink.SyntalosPyError("signals-in must be connected to a signal source "
                                        "(it gives channel_count and sample_rate)")
        self._sample_rate = float(rate)
        self._instance = self._class(self._handle, int(channels), float(rate))
        self._host.inputs["signals-in"].on_data = self._on_signals
        self._host.inputs["events-in"].on_data = self._on_event
        self._host.inputs["spikes-in"].on_data = self._on_spike
        self._signals_out.set_metadata(dict(metadata))
        return True

    def start(self) -> None:
        self._call("start_acquisition")
        self._dataset = mlink.create_default_dataset()
        self._call("start_recording", str(self._dataset.path))

    def stop(self) -> None:
        self._call("stop_recording")
        self._call("stop_acquisition")
        self._register_recording()

    def _register_recording(self) -> None:
        """What the processor wrote into its recording directory becomes the dataset's data (the first file by
        name) and aux files, so the dataset says what it holds; if it wrote nothing, an attribute says why the
        dataset exists."""
        dataset = getattr(self, "_dataset", None)
        if dataset is None:
            return
        written = sorted(p.name for p in Path(dataset.path).iterdir()
                         if p.is_file() and p.name not in ("manifest.toml", "attributes.toml"))
        for index, name in enumerate(written):
            if index == 0:
                dataset.set_data_file(name, "written by the processor (start_recording directory)")
            else:
                dataset.add_aux_file(name, summary="written by the processor (start_recording directory)")
        if not written:
            dataset.set_attribute("contents", "the start_recording() directory of an Open Ephys-style processor; "
                                              "the processor wrote nothing into it")

    def _call(self, name: str, *args: Any) -> Any:
        method = getattr(self._instance, name, None)
        return None if method is None else method(*args)

    # data
    def _on_signals(self, block: SignalBlockF32) -> None:
        data = np.ascontiguousarray(block.data.T, dtype=np.float32)  # channels x samples, as Open Ephys has it
        self._block_start_sample = self._samples_seen
        self._block_start_usec = int(block.timestamps[0]) if block.rows else 0
        self._samples_seen += block.rows
        self._current_time_usec = int(block.timestamps[-1]) if block.rows else None
        try:
            self._instance.process(data)
        finally:
            self._current_time_usec = None
        if self._signals_out.connected:
            self._signals_out.submit(SignalBlockF32.of(block.timestamps, data.T))

    def _sample_number(self, time_usec: int) -> int:
        offset = round((time_usec - self._block_start_usec) * self._sample_rate / 1e6)
        return max(self._block_start_sample + offset, 0)

    def _on_event(self, reading: LineReading) -> None:
        self._call("handle_ttl_event", "hwlink", reading.line_id, self._sample_number(reading.time_usec),
                   reading.line_id, bool(reading.value))

    def _on_spike(self, row: list[str]) -> None:
        source, electrode, channels, samples, sample_number, sorted_id, *values = row
        waveform = np.array(values, dtype=np.float32).reshape(int(channels), int(samples))
        waveform.flags.writeable = False
        self._call("handle_spike", source, electrode, int(channels), int(samples), int(sample_number),
                   int(sorted_id), waveform)

    def emit_event(self, line: int, state: bool) -> None:
        time_usec = self._current_time_usec
        if time_usec is None:
            time_usec = mlink.time_since_start_usec()
        self._events_out.submit(LineReading(line, 1 if state else 0, time_usec))
