"""``kind = "spike-detector"``: threshold crossings of a signal stream, as spikes for Open Ephys processors.

Each electrode is a group of ``channels_per_electrode`` adjacent channels (1: single electrodes, 2:
stereotrodes, 4: tetrodes). A spike is where any channel of the electrode crosses ``threshold`` (a negative
threshold: going below it, as extracellular spikes do; a positive one: going above it); the electrode then
stays quiet for ``post_samples``. Its waveform is ``pre_samples`` before the crossing sample and
``post_samples`` from it on, on every channel of the electrode (the stream's first samples are padded with its
first value).

Output ``spikes`` (TableRow), the row ``oe-processor`` modules take on ``spikes-in``: source_node (this
module's node id), electrode_name, num_channels, num_samples, sample_number (of the crossing, counted on the
stream's sample clock from its first sample), sorted_id (0: unsorted), then the waveform channel by channel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwlink.runtime.experiment import ModuleSpec, Settings
from hwlink.runtime.module import InPort, Module, RunContext
from hwlink.runtime.datatypes import DataType

HEADER = ["source_node", "electrode_name", "num_channels", "num_samples", "sample_number", "sorted_id"]
_GROUP_NAMES = {1: "Electrode", 2: "Stereotrode", 4: "Tetrode"}


class SpikeDetectorModule(Module):
    kind = "spike-detector"
    description = "spike detector"

    def __init__(self, spec: ModuleSpec, ctx: RunContext) -> None:
        super().__init__(spec, ctx)
        settings = Settings(spec)
        self.threshold = settings.number("threshold", -50.0)
        self.pre_samples = settings.integer("pre_samples", 8, minimum=0)
        self.post_samples = settings.integer("post_samples", 32, minimum=1)
        self.group = settings.integer("channels_per_electrode", 1, minimum=1)
        settings.finish(self.description)
        if self.threshold == 0:
            raise settings.error("threshold", "threshold must not be 0 (negative: crossings below, positive: above)")
        self.add_input("signals", DataType.SignalBlockF32, self._on_block)
        self.spikes = self.add_output("spikes", DataType.TableRow)
        self._history = np.zeros((0, 0), dtype=np.float32)  # the last samples, for waveforms and crossings
        self._history_start = 0  # sample number of its first row
        self._seen = 0  # samples so far
        self._pending: list[tuple[int, int]] = []  # (electrode, crossing sample) waiting for their last samples
        self._quiet_until: np.ndarray | None = None
        self.count = 0

    def input_metadata(self, port: InPort, metadata: dict[str, Any]) -> None:
        channels = metadata.get("channel_count")
        if isinstance(channels, int) and channels % self.group == 0:
            width = self.group * (self.pre_samples + self.post_samples)
            self.spikes.set_metadata({"table_header": HEADER + [f"w{i}" for i in range(width)],
                                      "sample_rate": metadata.get("sample_rate")})

    def _electrode_name(self, electrode: int) -> str:
        return f"{_GROUP_NAMES.get(self.group, 'Electrode')} {electrode + 1}"

    def _on_block(self, port: InPort, block: Any) -> None:
        data = np.asarray(block.data, dtype=np.float32)
        rows, channels = data.shape
        if not rows:
            return
        if channels % self.group:
            raise ValueError(f"{channels} channels do not split into electrodes of {self.group}")
        electrodes = channels // self.group
        if self._quiet_until is None:
            self._quiet_until = np.zeros(electrodes, dtype=np.int64)
            first = np.repeat(data[:1], self.pre_samples + 1, axis=0)  # pads the stream's start
            self._history = first
            self._history_start = -(self.pre_samples + 1)
        previous_end = self._seen
        self._history = np.concatenate([self._history, data])
        self._seen += rows
        # crossings among the new samples (each compared with the sample before it)
        region = self._history[previous_end - 1 - self._history_start:]
        beyond = region <= self.threshold if self.threshold < 0 else region >= self.threshold
        beyond = beyond.reshape(len(region), electrodes, self.group).any(axis=2)
        onsets = beyond[1:] & ~beyond[:-1]
        for offset, electrode in zip(*np.nonzero(onsets)):
            sample = previous_end + int(offset)
            if sample >= self._quiet_until[electrode]:
                self._pending.append((int(electrode), sample))
                self._quiet_until[electrode] = sample + self.post_samples
        self._pending.sort(key=lambda entry: entry[1])
        self._emit_complete()
        keep_from = min([s - self.pre_samples for _, s in self._pending] + [self._seen - self.pre_samples - 1])
        if keep_from > self._history_start:
            self._history = self._history[keep_from - self._history_start:]
            self._history_start = keep_from

    def _emit_complete(self) -> None:
        waiting = []
        for electrode, sample in self._pending:
            if sample + self.post_samples > self._seen:
                waiting.append((electrode, sample))
                continue
            start = sample - self.pre_samples - self._history_start
            columns = slice(electrode * self.group, (electrode + 1) * self.group)
            waveform = self._history[start: start + self.pre_samples + self.post_samples, columns].T
            self.spikes.emit([str(self.ctx.node_id(self.name)), self._electrode_name(electrode), str(self.group),
                              str(self.pre_samples + self.post_samples), str(sample), "0",
                              *(repr(float(value)) for value in waveform.ravel())])
            self.count += 1
        self._pending = waiting
