"""An Open Ephys Python Processor with every hook of the plugin's interface: a narrow band-pass (800-1500 Hz)
that also counts the TTL events it receives from the processor before it.

Runs under the Open Ephys plugin and under `hwlink run` (kind = "oe-processor") alike.
"""

import numpy as np
import oe_pyprocessor  # noqa: F401 - the plugin's embedded module; imported as processors do
from scipy import signal


class PyProcessor:
    def __init__(self, processor, num_channels, sample_rate):
        """A new processor is made whenever the settings change."""
        self.processor = processor
        self.sos = signal.butter(3, [800.0, 1500.0], btype="bandpass", output="sos", fs=sample_rate)
        self.state = np.zeros((num_channels, self.sos.shape[0], 2))
        self.ttl_events = 0
        self.spikes = 0

    def process(self, data):
        """data: channels x samples (float32), changed in place."""
        for channel in range(data.shape[0]):
            data[channel], self.state[channel] = signal.sosfilt(self.sos, data[channel], zi=self.state[channel])

    def start_acquisition(self):
        """Called when acquisition starts."""

    def stop_acquisition(self):
        """Called when acquisition stops."""
        print(f"narrow band-pass: {self.ttl_events} TTL events, {self.spikes} spikes received", flush=True)

    def handle_ttl_event(self, source_node, channel, sample_number, line, state):
        """A TTL event from upstream (source node id, channel name, sample number, line, state)."""
        self.ttl_events += 1

    def handle_spike(self, source_node, electrode_name, num_channels, num_samples, sample_number, sorted_id,
                     spike_data):
        """A spike from upstream, with its read-only num_channels x num_samples waveform."""
        self.spikes += 1

    def start_recording(self, recording_dir):
        """Called when recording starts; recording_dir is where this processor may write files."""

    def stop_recording(self):
        """Called when recording stops."""


if __name__ == "__main__":
    print("imported by the plugin (or hwlink run) as a module: this block does not run there")
