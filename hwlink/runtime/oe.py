"""Open Ephys Python Processor scripts, run in a script worker.

The script is imported as a module, as the plugin imports it (its directory joins ``sys.path``; ``__name__``
is the file's stem, so an ``if __name__ == "__main__":`` block does not run), after ``oe_pyprocessor`` was
registered. It defines a processor class (``PyProcessor`` unless the experiment names another) with the
plugin's interface, driven here as the plugin drives it:

* ``__init__(processor, num_channels, sample_rate)`` when the run is prepared: ``processor`` is an
  ``oe_pyprocessor.PythonProcessor``, ``num_channels`` an int, ``sample_rate`` a float (from the metadata of
  the stream on ``signals-in``).
* ``process(data)`` for every block with samples: ``data`` is a C-contiguous channels x samples float32 array
  (the plugin's dtype); what it holds afterwards flows on through ``signals-out`` with the block's timestamps.
* ``handle_ttl_event(source_node, channel, sample_number, line, state)`` for LineReadings on ``events-in``:
  the int node id of the module the event comes from, the name (str) of its event channel, the event's sample
  number on this processor's own stream, the line (0..255) and a bool.
* ``handle_spike(source_node, electrode_name, num_channels, num_samples, sample_number, sorted_id,
  spike_data)`` for spike rows on ``spikes-in`` (as the ``spike-detector`` module writes them);
  ``spike_data`` is a read-only num_channels x num_samples float32 array.
* ``processor.add_python_event(line, state)`` queues a TTL event while acquisition runs (dropped otherwise);
  the queue leaves after the current (or next) block is processed, each event stamped with that block's first
  sample (its time on the master clock), as a LineReading on ``events-out``.
* ``start_acquisition()`` / ``stop_acquisition()`` around the run; ``start_recording(recording_dir)`` /
  ``stop_recording()`` inside them. ``recording_dir`` is a directory named after the module in the collection;
  what the script writes there becomes the module's dataset, and an empty one is removed.

Unlike the plugin, any number of processors can run in one chain: each is a process of its own.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from hwlink.lines import LineReading
from hwlink.runtime.oe_pyprocessor import PythonProcessor
from hwlink.runtime.ports import SyntalosPyError
from hwlink.runtime.datatypes import SignalBlockF32

if TYPE_CHECKING:
    from collections.abc import Callable

    from hwlink.runtime.host import Host

SIGNAL_PORTS = ("signals-in", "signals-out")
EVENT_CHANNEL_NAME = "Python Processor Output"  # the plugin's name for the TTL channel it adds
SPIKE_FIELDS = ("source_node", "electrode_name", "num_channels", "num_samples", "sample_number", "sorted_id")
_KEPT_BLOCKS = 16  # recent blocks kept to place an event on the stream's sample clock


class OEAdapter:
    """Drives an Open Ephys-style processor class from the worker's lifecycle and ports (a ScriptForm)."""

    async_start = True

    def __init__(self, host: Host, module: ModuleType, class_name: str) -> None:
        self._host = host
        self._class = getattr(module, class_name, None)
        if not isinstance(self._class, type):
            raise SyntalosPyError(f"the script defines no processor class {class_name!r}")
        self._instance: Any = None
        self.processor = PythonProcessor._create(self._add_event)
        self._sample_rate = 0.0
        self._samples_seen = 0
        self._blocks: deque[tuple[int, np.ndarray]] = deque(maxlen=_KEPT_BLOCKS)  # (first sample, stamps)
        self._queue: list[tuple[int, bool]] = []
        self._queue_lock = threading.Lock()  # scripts may add events from threads of their own, as in the plugin
        self._acquiring = False
        self._recording_dir: str | None = None
        self._warned_lines = False
        self._signals_out = host.outputs["signals-out"]
        self._events_out = host.outputs["events-out"]

    # ----- the lifecycle (ScriptForm) -------------------------------------------------------------------------
    def prepare_hook(self) -> Callable[[], object]:
        return self._prepare

    def start_hook(self) -> Callable[[], object]:
        return self._start

    def run_hook(self) -> None:
        return None

    def stop_hook(self) -> Callable[[], object]:
        return self._stop

    def load_settings_hook(self) -> None:
        return None

    def save_settings_hook(self) -> None:
        return None

    def _prepare(self) -> bool:
        metadata = self._host.inputs["signals-in"].metadata
        channels = metadata.get("channel_count")
        rate = metadata.get("sample_rate")
        if channels is None or rate is None:
            raise SyntalosPyError("signals-in must be connected to a signal source "
                                  "(it gives channel_count and sample_rate)")
        self._sample_rate = float(rate)
        self._instance = self._class(self.processor, int(channels), float(rate))
        self._host.inputs["signals-in"].on_data = self._on_signals
        self._host.inputs["events-in"].on_data = self._on_event
        self._host.inputs["spikes-in"].on_data = self._on_spike
        self._signals_out.set_metadata(dict(metadata))
        self._events_out.set_metadata({"channel_name": EVENT_CHANNEL_NAME, "device_clock": False,
                                       "sample_rate": self._sample_rate})
        return True

    def _start(self) -> None:
        self._call("start_acquisition")
        self._acquiring = True
        if hasattr(self._instance, "start_recording"):
            self._recording_dir = self._host.storage_request("recording-dir", explicit=False)["path"]
            self._call("start_recording", self._recording_dir)

    def _stop(self) -> None:
        try:
            if self._recording_dir is not None:
                self._call("stop_recording")
        finally:
            if self._recording_dir is not None:
                self._host.storage_request("recording-done", explicit=False)
            with self._queue_lock:
                self._acquiring = False
                self._queue.clear()  # queued events leave only with a processed block
            self._call("stop_acquisition")

    def _call(self, name: str, *args: Any) -> Any:
        method = getattr(self._instance, name, None)
        return None if method is None else method(*args)

    # ----- events the script sends ----------------------------------------------------------------------------
    def _add_event(self, line: int, state: bool) -> None:
        with self._queue_lock:
            if self._acquiring:
                self._queue.append((line, state))

    # ----- data -----------------------------------------------------------------------------------------------
    def _on_signals(self, block: SignalBlockF32) -> None:
        if not block.rows:
            return  # the plugin calls process() only for blocks with samples
        data = np.ascontiguousarray(block.data.T, dtype=np.float32)  # channels x samples, as Open Ephys has it
        first_sample = self._samples_seen
        self._samples_seen += block.rows
        stamps = np.asarray(block.timestamps).astype(np.int64)
        self._blocks.append((first_sample, stamps))
        self._instance.process(data)
        if self._signals_out.connected:
            self._signals_out.submit(SignalBlockF32.of(block.timestamps, data.T))
        with self._queue_lock:
            events, self._queue = self._queue, []
        for line, state in events:
            self._events_out.submit(LineReading(line, 1 if state else 0, int(stamps[0])))

    def sample_number(self, time_usec: int) -> int:
        """Where ``time_usec`` (master clock) falls on this processor's stream: the nearest sample of a recent
        block, else extrapolated at the sample rate from the nearest block."""
        if not self._blocks:
            return max(round(time_usec * self._sample_rate / 1e6), 0)
        for first_sample, stamps in reversed(self._blocks):
            if stamps[0] <= time_usec <= stamps[-1]:
                index = int(np.searchsorted(stamps, time_usec))
                if index > 0 and time_usec - stamps[index - 1] <= stamps[index] - time_usec:
                    index -= 1
                return first_sample + index
        first_sample, stamps = self._blocks[-1] if time_usec > self._blocks[-1][1][-1] else self._blocks[0]
        offset = round((time_usec - int(stamps[0])) * self._sample_rate / 1e6)
        return max(first_sample + offset, 0)

    def _on_event(self, reading: LineReading) -> None:
        if reading.line_id > 255:
            if not self._warned_lines:
                self._warned_lines = True
                print(f"events-in: line {reading.line_id} is beyond Open Ephys' TTL lines 0..255; such events are "
                      "not given to handle_ttl_event", file=sys.stderr, flush=True)
            return
        port = self._host.inputs["events-in"]
        node, source_name = port.source or (0, "")
        channel = str(port.metadata.get("channel_name") or source_name)
        self._call("handle_ttl_event", int(node), channel, self.sample_number(reading.time_usec),
                   int(reading.line_id), bool(reading.value))

    def _on_spike(self, row: list[str]) -> None:
        try:
            source, electrode, channels, samples, sample_number, sorted_id, *values = row
            shape = (int(channels), int(samples))
            waveform = np.array(values, dtype=np.float32).reshape(shape)
        except ValueError:
            raise SyntalosPyError(f"spikes-in: a spike row is {', '.join(SPIKE_FIELDS)}, then num_channels x "
                                  f"num_samples waveform values; got {len(row)} fields") from None
        waveform.flags.writeable = False
        node: int | str = int(source) if source.lstrip("-").isdigit() else source
        self._call("handle_spike", node, electrode, shape[0], shape[1], int(sample_number), int(sorted_id),
                   waveform)
