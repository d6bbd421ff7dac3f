"""An Open Ephys Python Processor: a Butterworth band-pass (500-2000 Hz) on every channel, with scipy.signal.

Written for the Open Ephys Python Processor plugin's interface, so the same file runs there and under
`hwlink run` (kind = "oe-processor"). Each buffer is filtered with the filter state carried over from the last
one, so buffer edges leave no transients. A TTL event on line 1 toggles every 50 buffers as a heartbeat.
"""

import numpy as np
import oe_pyprocessor  # noqa: F401 - the plugin's embedded module; imported as processors do
from scipy import signal

LOW_HZ, HIGH_HZ, ORDER = 500.0, 2000.0, 2
HEARTBEAT_BUFFERS = 50


class PyProcessor:
    def __init__(self, processor, num_channels, sample_rate):
        """Called whenever the processor's settings change: design the filter for this stream's rate."""
        self.processor = processor
        self.sos = signal.butter(ORDER, [LOW_HZ, HIGH_HZ], btype="bandpass", output="sos", fs=sample_rate)
        self.state = np.zeros((num_channels, self.sos.shape[0], 2))
        self.buffers = 0

    def process(self, data):
        """data: channels x samples, filtered in place and passed on."""
        for channel in range(data.shape[0]):
            data[channel], self.state[channel] = signal.sosfilt(self.sos, data[channel], zi=self.state[channel])
        if self.buffers % HEARTBEAT_BUFFERS == 0:
            self.processor.add_python_event(1, (self.buffers // HEARTBEAT_BUFFERS) % 2 == 0)
        self.buffers += 1

    def start_acquisition(self):
        self.state[:] = 0

    def stop_acquisition(self):
        print(f"band-pass {LOW_HZ:g}-{HIGH_HZ:g} Hz: {self.buffers} buffers", flush=True)

    def handle_ttl_event(self, source_node, channel, sample_number, line, state):
        pass

    def handle_spike(self, source_node, electrode_name, num_channels, num_samples, sample_number, sorted_id,
                     spike_data):
        pass

    def start_recording(self, recording_dir):
        pass

    def stop_recording(self):
        pass
