"""An Open Ephys Python Processor: FIR band-pass on every channel, plus a TTL heartbeat every 10 blocks.

Written against the Open Ephys interface (PyProcessor with process(data) on channels x samples); numpy only.
"""

import os

import numpy as np

LOW_HZ = 100.0
HIGH_HZ = 300.0
TAPS = 101
HEARTBEAT_BLOCKS = 10


def band_pass_taps(low_hz, high_hz, sample_rate, count):
    """Windowed-sinc band-pass: the difference of two low-passes, Hamming window."""
    n = np.arange(count) - (count - 1) / 2
    def low_pass(cutoff):
        return 2 * cutoff / sample_rate * np.sinc(2 * cutoff / sample_rate * n)
    return (low_pass(high_hz) - low_pass(low_hz)) * np.hamming(count)


class PyProcessor:
    def __init__(self, processor, num_channels, sample_rate):
        self.processor = processor
        self.taps = band_pass_taps(LOW_HZ, HIGH_HZ, sample_rate, TAPS)
        self.history = np.zeros((num_channels, TAPS - 1), dtype=np.float32)
        self.blocks = 0
        self.ttl_events = 0
        self.recording_dir = None

    def process(self, data):
        padded = np.concatenate([self.history, data], axis=1)
        for channel in range(data.shape[0]):
            data[channel] = np.convolve(padded[channel], self.taps, mode="valid")
        self.history = padded[:, -(TAPS - 1):]
        if self.blocks % HEARTBEAT_BLOCKS == 0:
            self.processor.add_python_event(1, (self.blocks // HEARTBEAT_BLOCKS) % 2 == 0)
        self.blocks += 1

    def start_acquisition(self):
        self.blocks = 0

    def stop_acquisition(self):
        print(f"band-pass processed {self.blocks} blocks, saw {self.ttl_events} TTL events")

    def start_recording(self, recording_dir):
        self.recording_dir = recording_dir

    def stop_recording(self):
        np.save(os.path.join(self.recording_dir, "taps.npy"), self.taps)

    def handle_ttl_event(self, source_node, channel, sample_number, line, state):
        self.ttl_events += 1

    def handle_spike(self, source_node, electrode_name, num_channels, num_samples, sample_number, sorted_id,
                     spike_data):
        pass
