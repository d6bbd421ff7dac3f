"""The experiment runtime end to end: user scripts unmodified, module kinds, errors and stop conditions.

Every test runs a real engine with real worker processes and reads what it recorded with edlio and h5py.
"""

from __future__ import annotations

import time
import wave
from pathlib import Path

import edlio
import h5py
import numpy as np
import pytest

from hwlink.testing.firmata_board import SoftFirmataBoard
from runtime_support import EXAMPLES, USER_SCRIPTS, run_experiment, write

pytestmark = pytest.mark.timeout(60)


def tone_intervals(path: Path, threshold: float = 1000.0) -> tuple[list[tuple[float, float]], float, float]:
    """(on, off) seconds of the tone in a WAV (10 ms RMS windows), its length, and its dominant frequency."""
    with wave.open(str(path)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(float)
    window = rate // 100
    rms = np.sqrt((samples[: len(samples) // window * window].reshape(-1, window) ** 2).mean(axis=1))
    on = np.concatenate([[False], rms > threshold, [False]])
    edges = np.flatnonzero(np.diff(on.astype(int)))
    intervals = [(start / 100, stop / 100) for start, stop in zip(edges[::2], edges[1::2])]
    spectrum = np.abs(np.fft.rfft(samples))
    return intervals, len(samples) / rate, float(np.argmax(spectrum) * rate / len(samples))


def test_syntalos_tutorial_beep_drives_the_tone_generator(tmp_path: Path) -> None:
    experiment = write(tmp_path, "beep.toml", f"""
[modules.beeper]
kind = "script"
script = "{USER_SCRIPTS / 'syntalos-tutorial-beep.py'}"
outputs = {{ control-out = "ControlCommand" }}

[modules.speaker]
kind = "tone"
frequency = "1kHz"

[[connect]]
from = "beeper.control-out"
to = "speaker.control"
""")
    run = run_experiment(experiment, tmp_path / "out", duration="7.4s")
    assert run.result.ok, run.output
    collection = edlio.load(str(run.path))
    wav_dataset = collection.dataset_by_name("speaker")
    (wav_path,) = wav_dataset.data.part_paths()
    intervals, length, frequency = tone_intervals(wav_path)
    assert length == pytest.approx(7.4, abs=0.15)
    assert frequency == pytest.approx(1000, abs=5)
    assert len(intervals) == 2, intervals
    (first_on, first_off), (second_on, second_off) = intervals
    assert first_on == pytest.approx(0.0, abs=0.1)
    assert first_off - first_on == pytest.approx(2.0, abs=0.05)   # 2 s tones ...
    assert second_on - first_on == pytest.approx(5.0, abs=0.1)    # ... every 5 s
    assert second_off - second_on == pytest.approx(2.0, abs=0.05)


def test_syntalos_frame_forward_with_the_simulated_camera(tmp_path: Path) -> None:
    text = (EXAMPLES / "frame_forward.toml").read_text().replace(  # the verbatim Syntalos script in our example
        "scripts/frame_stamps.py", str(USER_SCRIPTS / "syntalos-frame-forward.py"))
    assert str(USER_SCRIPTS) in text
    run = run_experiment(write(tmp_path, "ff.toml", text), tmp_path / "out", duration="1.5s")
    assert run.result.ok, run.output
    collection = edlio.load(str(run.path))
    video = collection.dataset_by_name("video")
    with h5py.File(Path(video.path) / "video.h5") as frames:
        count = frames["frames"].shape[0]
        assert count >= 30  # 30 fps for 1.5 s, forwarded through the script
        assert frames["frames"].shape[1:] == (120, 160)
        assert list(frames["index"][:]) == list(range(count))
        assert np.all(np.diff(frames["timestamps"][:]) > 0)
    assert video.attributes["framerate"] == pytest.approx(30.0)  # metadata the script copied in start()
    table = collection.group_by_name("events").dataset_by_name("table")
    header, *rows = list(table.read_data())
    assert header == ["Time Received", "Frame Time"]
    assert count - 1 <= len(rows) <= count + 1
    received, frame_time = np.array(rows, dtype=np.int64).T
    assert np.all(received >= frame_time)  # a frame is received after it was taken


def test_script_pulses_a_firmata_output_whenever_an_input_rises(tmp_path: Path) -> None:
    with SoftFirmataBoard() as firmata:
        url = firmata.start_pty()
        text = (EXAMPLES / "pulse_on_rise.toml").read_text()
        text = text.replace('url = "sim://?d2=square:2Hz&loopback=13:7"', f'url = "{url}"').replace(
            'inputs = ["7"]\n', "")
        text = text.replace("scripts/pulse_on_rise.py", str(EXAMPLES / "scripts" / "pulse_on_rise.py"))

        def drive(engine: object) -> None:
            assert firmata.wait_for(lambda: firmata.pin_mode(13) == 1 and firmata.pin_mode(2) == 0, 5)
            for level in (1, 0, 1, 0):  # two rising edges, two falling edges
                firmata.set_digital_input(2, level)
                time.sleep(0.1)
            assert firmata.wait_for(lambda: len(firmata.pulse_widths_usec(13)) >= 2, 3)
            time.sleep(0.1)

        run = run_experiment(write(tmp_path, "firmata.toml", text), tmp_path / "out", during=drive)
        assert run.during_error is None, (repr(run.during_error), run.output)
        assert run.result.ok, run.output
        widths = firmata.pulse_widths_usec(13)
    assert len(widths) == 2, widths  # one pulse per rising edge, none for falling edges
    # 5 ms pulses, host-timed by the driver's edge scheduler; on a loaded machine a late rising edge shortens
    # them (the falling edge keeps its planned time), so only loose bounds here.
    assert np.all((widths > 0) & (widths < 50_000)), widths
    with h5py.File(Path(run.path) / "lines" / "lines.h5") as readings:
        on_line_2 = readings["data"][:, 0][readings["line_ids"][:] == 2]
    assert list(on_line_2[-4:]) == [1, 0, 1, 0]


def test_open_ephys_band_pass_processors_on_simulated_signal_blocks(tmp_path: Path) -> None:
    text = (EXAMPLES / "bandpass.toml").read_text().replace(
        "scripts/oe_bandpass.py", str(EXAMPLES / "scripts" / "oe_bandpass.py"))
    run = run_experiment(write(tmp_path, "bp.toml", text), tmp_path / "out", duration="1.5s")
    assert run.result.ok, run.output
    with h5py.File(run.path / "raw" / "raw.h5") as raw, h5py.File(run.path / "filtered" / "filtered.h5") as filtered:
        raw_data, filtered_data = raw["data"][:], filtered["data"][:]
        assert np.array_equal(raw["timestamps"][: len(filtered_data)], filtered["timestamps"][:])
    assert raw_data.shape[1] == filtered_data.shape[1] == 4
    assert len(filtered_data) >= 1000

    def amplitude(signal: np.ndarray, frequency: float) -> float:
        t = np.arange(len(signal)) / 1000.0
        return float(2 * abs(np.mean(signal * np.exp(-2j * np.pi * frequency * t))))

    settled = slice(300, len(filtered_data))  # after both filters' transients
    for channel in range(4):
        assert amplitude(raw_data[settled, channel], 10) == pytest.approx(1000, rel=0.02)
        assert amplitude(filtered_data[settled, channel], 10) < 20           # 10 Hz removed (twice)
        assert amplitude(filtered_data[settled, channel], 200) == pytest.approx(1000, rel=0.05)  # 200 Hz kept
    with h5py.File(run.path / "ttl" / "ttl.h5") as ttl:  # add_python_event -> TTL events downstream
        states = ttl["data"][:, 0]
        assert len(states) >= 3 and list(states[:3]) == [1, 0, 1]
        assert np.all(ttl["line_ids"][:] == 1)
    for name in ("bandpass", "bandpass2"):  # start_recording got the module's own directory
        assert (run.path / name / "taps.npy").is_file()
    assert "saw 0 TTL events" in run.log("bandpass")
    assert "saw 0 TTL events" not in run.log("bandpass2")  # handle_ttl_event got bandpass' events


CAMERA_AND_SCRIPT = """
[modules.camera]
kind = "camera"
fps = "50Hz"
width = 32
height = 24

[modules.video]
kind = "recorder"

[modules.failing]
kind = "script"
script = "{script}"
inputs = {{ frames = "Frame" }}
outputs = {{ commands = "LineCommand" }}

[[connect]]
from = "camera.frames"
to = "video.in"

[[connect]]
from = "camera.frames"
to = "failing.frames"
"""


def recorded_frames(run_path: Path) -> int:
    collection = edlio.load(str(run_path))  # the collection is complete and readable
    with h5py.File(Path(collection.dataset_by_name("video").path) / "video.h5") as frames:
        return int(frames["frames"].shape[0])


@pytest.mark.parametrize(("body", "expected"), [
    ("    if frame.index == 10:\n        commands.submit('not a command')\n",
     ["SyntalosPyError", "Data submission failed", "cannot take a str", "failing.py\", line 11"]),
    ("    if frame.index == 10:\n        raise ValueError(f'bad frame {frame.index}')\n",
     ["ValueError: bad frame 10", "in on_frame", "failing.py\", line 11"]),
])
def test_errors_in_on_data_stop_the_run_with_the_traceback_and_keep_data(tmp_path: Path, body: str,
                                                                          expected: list[str]) -> None:
    script = write(tmp_path, "failing.py", "import syntalos_mlink as syl\n\n"
                   "frames = syl.get_input_port('frames')\ncommands = syl.get_output_port('commands')\n\n"
                   "def prepare():\n    frames.on_data = on_frame\n\ndef on_frame(frame):\n" + body)
    run = run_experiment(write(tmp_path, "exp.toml", CAMERA_AND_SCRIPT.format(script=script)), tmp_path / "out",
                         duration="10s")
    assert run.result.reason == "failed"
    assert run.result.duration_usec < 5_000_000  # stopped by the error, not by the duration
    for text in expected:
        assert text in run.result.failure, run.result.failure
        assert text in run.output  # reached the terminal
    assert str(script) in run.result.failure
    assert "Traceback" in (run.path / "hwlink-run" / "run.log").read_text()
    assert expected[0] in run.log("failing")  # and in the script's own log
    assert recorded_frames(run.path) >= 10  # data up to the failure is kept


def test_syntax_error_in_a_script_stops_the_run_with_its_traceback(tmp_path: Path) -> None:
    script = write(tmp_path, "broken.py", "import syntalos_mlink as syl\n\ndef start(:\n    pass\n")
    run = run_experiment(write(tmp_path, "exp.toml", CAMERA_AND_SCRIPT.format(script=script)), tmp_path / "out",
                         duration="10s")
    assert run.result.reason == "failed"
    assert "SyntaxError" in run.result.failure and f'"{script}", line 3' in run.result.failure
    assert "SyntaxError" in run.output
    collection = edlio.load(str(run.path))  # closed properly: the experiment file and logs are there
    assert (Path(collection.dataset_by_name("hwlink-run").path) / "exp.toml").is_file()


def test_raise_error_stops_the_run(tmp_path: Path) -> None:
    script = write(tmp_path, "stopper.py", "import syntalos_mlink as syl\n\n"
                   "def start():\n    syl.schedule_delayed_call(300, lambda: syl.raise_error('enough data'))\n")
    run = run_experiment(write(tmp_path, "exp.toml", CAMERA_AND_SCRIPT.format(script=script)), tmp_path / "out",
                         duration="10s")
    assert run.result.reason == "failed" and run.result.failure == "enough data"
    assert 0.25e6 < run.result.duration_usec < 3e6
    assert recorded_frames(run.path) >= 10


CRASH = ("import os\nimport syntalos_mlink as syl\n\n"
         "frames = syl.get_input_port('frames')\n\ndef prepare():\n    frames.on_data = on_frame\n\n"
         "def on_frame(frame):\n    if frame.index == 10:\n        os._exit(7)\n")


def test_a_crashing_script_process_does_not_take_the_engine_down(tmp_path: Path) -> None:
    script = write(tmp_path, "crash.py", CRASH)
    run = run_experiment(write(tmp_path, "exp.toml", CAMERA_AND_SCRIPT.format(script=script)), tmp_path / "out",
                         duration="10s")
    assert run.result.reason == "failed"
    assert "exited unexpectedly (exit code 7)" in run.result.failure
    assert recorded_frames(run.path) >= 10


def test_with_on_error_continue_the_run_goes_on_without_the_crashed_script(tmp_path: Path) -> None:
    script = write(tmp_path, "crash.py", CRASH)
    text = CAMERA_AND_SCRIPT.format(script=script).replace(
        'outputs = { commands = "LineCommand" }', 'outputs = { commands = "LineCommand" }\non_error = "continue"')
    run = run_experiment(write(tmp_path, "exp.toml", text), tmp_path / "out", duration="1.5s")
    assert run.result.reason == "duration" and run.result.failure is None
    assert "FAILED, the run continues without it: script process exited unexpectedly (exit code 7)" in run.output
    assert recorded_frames(run.path) >= 60  # 50 fps for the whole 1.5 s


def test_raise_error_stops_the_run_even_with_on_error_continue(tmp_path: Path) -> None:
    script = write(tmp_path, "stopper.py", "import syntalos_mlink as syl\n\n"
                   "def start():\n    syl.schedule_delayed_call(200, lambda: syl.raise_error('stop now'))\n")
    text = CAMERA_AND_SCRIPT.format(script=script).replace(
        'outputs = { commands = "LineCommand" }', 'outputs = { commands = "LineCommand" }\non_error = "continue"')
    run = run_experiment(write(tmp_path, "exp.toml", text), tmp_path / "out", duration="10s")
    assert run.result.reason == "failed" and run.result.failure == "stop now"


def test_a_failing_board_stops_the_run_and_keeps_its_readings(tmp_path: Path) -> None:
    experiment = write(tmp_path, "exp.toml", """
[modules.board]
kind = "board"
url = "sim://?d2=square:20Hz&fail_after=800ms"
inputs = ["2"]

[modules.lines]
kind = "recorder"

[[connect]]
from = "board.readings"
to = "lines.in"
""")
    run = run_experiment(experiment, tmp_path / "out", duration="10s")
    assert run.result.reason == "failed" and "disconnected" in run.result.failure
    with h5py.File(run.path / "lines" / "lines.h5") as readings:
        assert len(readings["timestamps"]) >= 10
    assert edlio.load(str(run.path)).dataset_by_name("board") is not None  # its clock-sync tsync


def test_a_cpu_bound_script_neither_stalls_driver_timestamps_nor_blocks_the_stop(tmp_path: Path) -> None:
    script = write(tmp_path, "spin.py", "import syntalos_mlink as syl\n\n"
                   "readings = syl.get_input_port('readings')\nrows = syl.get_output_port('rows')\n\n"
                   "def prepare():\n    readings.on_data = print\n\n"
                   "def run():\n    rows.submit(['before spinning'])\n    while True:\n        pass\n")
    experiment = write(tmp_path, "exp.toml", f"""
[modules.board]
kind = "board"
url = "sim://?d2=square:20Hz&latency=none"
inputs = ["2"]
timestamps = "arrival"

[modules.spin]
kind = "script"
script = "{script}"
inputs = {{ readings = "LineReading" }}
outputs = {{ rows = "TableRow" }}

[modules.lines]
kind = "recorder"

[modules.rows]
kind = "recorder"

[[connect]]
from = "spin.rows"
to = "rows.in"

[[connect]]
from = "board.readings"
to = "spin.readings"

[[connect]]
from = "board.readings"
to = "lines.in"
""")
    run = run_experiment(experiment, tmp_path / "out", duration="3s")  # room for a loaded machine to notice the spin
    assert run.result.reason == "duration", run.output
    assert "did not stop" in run.output  # the spinning worker was ended at stop
    assert "spins outside await_data" in run.output  # and ran at low priority meanwhile
    # what it submitted before spinning left without the script ever returning to the loop
    assert list(edlio.load(str(run.path)).dataset_by_name("rows").read_data())[1:] == [["before spinning"]]
    with h5py.File(run.path / "lines" / "lines.h5") as readings:
        stamps = readings["timestamps"][1:]  # after the SET_MODE reading
        device = readings["device_timestamps"][1:]
    assert len(stamps) >= 20  # 40 edges per second once the board runs
    # Arrival stamps follow the device's edges: the spinning script does not delay the driver thread.
    # loose (two CPU hogs may sit beside the suite); a driver thread held up by the spinner would lag by seconds
    assert np.max(np.abs(np.diff(stamps) - np.diff(device))) < 250_000


def test_pulse_train_generator_follows_control_commands(tmp_path: Path) -> None:
    script = write(tmp_path, "trigger.py", "import syntalos_mlink as syl\n\n"
                   "control = syl.get_output_port('control')\n\n"
                   "def start():\n    command = syl.ControlCommand(syl.ControlCommandKind.START)\n"
                   "    command.duration = 1000\n    control.submit(command)\n")
    experiment = write(tmp_path, "exp.toml", f"""
[modules.trigger]
kind = "script"
script = "{script}"
outputs = {{ control = "ControlCommand" }}

[modules.pulses]
kind = "pulse-train"
line = 13
width = "20ms"
period = "100ms"

[modules.board]
kind = "board"
url = "sim://?loopback=13:2&latency=none"
inputs = ["2"]

[modules.lines]
kind = "recorder"

[modules.sent]
kind = "recorder"

[modules.controls]
kind = "recorder"

[[connect]]
from = "trigger.control"
to = "pulses.control"

[[connect]]
from = "trigger.control"
to = "controls.in"

[[connect]]
from = "pulses.commands"
to = "sent.in"

[[connect]]
from = "pulses.commands"
to = "board.commands"

[[connect]]
from = "board.readings"
to = "lines.in"
""")
    run = run_experiment(experiment, tmp_path / "out", duration="3s")  # START lasts 1 s from the script's start
    assert run.result.ok, run.output
    with h5py.File(run.path / "lines" / "lines.h5") as readings:
        values = readings["data"][:, 0]
        stamps = readings["timestamps"][:]
    rises = stamps[1:][np.diff(values.astype(int)) == 1]
    assert len(rises) == 10  # START for 1000 ms at 100 ms period
    # The period is the generator's: judged by the median gap, so one scheduler stall on a loaded machine (which
    # bunches the pulse after it) does not decide the test; the ten pulses still span the 1 s START window.
    assert abs(np.median(np.diff(rises)) - 100_000) < 20_000
    assert 600_000 < rises[-1] - rises[0] < 1_500_000
    collection = edlio.load(str(run.path))  # commands of both kinds recorded as CSV tables
    header, *commands = list(collection.dataset_by_name("sent").read_data())
    assert header == ["time_usec", "kind", "line_id", "value", "duration_usec", "flags"]
    assert commands[0][1:] == ["SET_MODE", "13", "0", "0", "2"]
    assert [row[1:5] for row in commands[1:]] == [["WRITE_DIGITAL_PULSE", "13", "1", "20000"]] * 10
    header, *controls = list(collection.dataset_by_name("controls").read_data())
    assert header == ["time_usec", "kind", "duration_msec", "command"] and controls[0][1:] == ["START", "1000", ""]


SPIKE_SOURCE = """
import syntalos_mlink as syl

rows = syl.get_output_port("spikes")


def start():
    for sorted_id in range(3):
        rows.submit(["node1", "electrode A", 2, 3, 100 + sorted_id, sorted_id, *range(6)])
"""

SPIKE_PROCESSOR = """
class SpikeCounter:
    def __init__(self, processor, num_channels, sample_rate):
        self.processor = processor
        self.seen = []

    def process(self, data):
        pass

    def handle_spike(self, source_node, electrode_name, num_channels, num_samples, sample_number, sorted_id,
                     spike_data):
        assert not spike_data.flags.writeable and spike_data.shape == (num_channels, num_samples)
        self.seen.append((source_node, electrode_name, sample_number, spike_data[1].tolist()))
        self.processor.add_python_event(sorted_id, True)

    def stop_acquisition(self):
        print("SPIKES", self.seen)
"""


def test_open_ephys_spikes_and_events_outside_process(tmp_path: Path) -> None:
    source = write(tmp_path, "spikes.py", SPIKE_SOURCE)
    processor = write(tmp_path, "counter.py", SPIKE_PROCESSOR)
    experiment = write(tmp_path, "exp.toml", f"""
[modules.signals]
kind = "signal-source"

[modules.source]
kind = "script"
script = "{source}"
outputs = {{ spikes = "TableRow" }}

[modules.counter]
kind = "oe-processor"
script = "{processor}"
class = "SpikeCounter"

[modules.events]
kind = "recorder"

[[connect]]
from = "signals.signals"
to = "counter.signals-in"

[[connect]]
from = "source.spikes"
to = "counter.spikes-in"

[[connect]]
from = "counter.events-out"
to = "events.in"
""")
    run = run_experiment(experiment, tmp_path / "out", duration="1s")
    assert run.result.ok, run.output
    assert ("SPIKES [('node1', 'electrode A', 100, [3.0, 4.0, 5.0]), ('node1', 'electrode A', 101, [3.0, 4.0, 5.0]), "
            "('node1', 'electrode A', 102, [3.0, 4.0, 5.0])]") in run.log("counter")
    with h5py.File(run.path / "events" / "events.h5") as events:
        assert list(events["line_ids"][:]) == [0, 1, 2] and list(events["data"][:, 0]) == [1, 1, 1]


def test_nidaq_board_signal_blocks_feed_a_processor_and_a_recorder(tmp_path: Path) -> None:
    """The driver module's signal output, with real nidaqmx Task code against the simulated NI-DAQmx system."""
    from hwlink.testing.nidaq_sim import SimulatedNidaq

    processor = write(tmp_path, "count.py", "class Counter:\n"
                      "    def __init__(self, processor, num_channels, sample_rate):\n"
                      "        print('CHANNELS', num_channels, sample_rate)\n        self.samples = 0\n"
                      "    def process(self, data):\n        self.samples += data.shape[1]\n        data *= 2\n"
                      "    def stop_acquisition(self):\n        print('SAMPLES', self.samples)\n")
    experiment = write(tmp_path, "exp.toml", f"""
[modules.daq]
kind = "board"
url = "nidaq://Dev1?rate=1kHz&block=50"
inputs = ["ai0", "ai1"]
sample_rate = "1kHz"

[modules.double]
kind = "oe-processor"
script = "{processor}"
class = "Counter"

[modules.raw]
kind = "recorder"

[modules.doubled]
kind = "recorder"

[[connect]]
from = "daq.signals"
to = "double.signals-in"

[[connect]]
from = "daq.signals"
to = "raw.in"

[[connect]]
from = "double.signals-out"
to = "doubled.in"
""")
    with SimulatedNidaq():
        run = run_experiment(experiment, tmp_path / "out", duration="1.2s")
    assert run.result.ok, run.output
    assert "CHANNELS 2 1000.0" in run.log("double")
    with h5py.File(run.path / "raw" / "raw.h5") as raw, h5py.File(run.path / "doubled" / "doubled.h5") as doubled:
        assert raw["data"].shape[1] == 2 and raw["data"].shape[0] >= 500
        assert np.all(np.diff(raw["timestamps"][:]) > 0)
        rows = doubled["data"].shape[0]
        assert np.allclose(doubled["data"][:], 2 * raw["data"][:rows])
    assert f"SAMPLES {rows}" in run.log("double")  # every processed block reached the recorder before the stop


def test_a_module_that_cannot_start_fails_the_run_cleanly(tmp_path: Path) -> None:
    experiment = write(tmp_path, "exp.toml", """
[modules.camera]
kind = "camera"

[modules.video]
kind = "recorder"

[modules.board]
kind = "board"
url = "sim://"
inputs = ["DAC0"]

[[connect]]
from = "camera.frames"
to = "video.in"
""")
    run = run_experiment(experiment, tmp_path / "out", duration="5s")
    assert run.result.reason == "failed" and "DAC0" in run.result.failure
    assert run.engine.failed_module == "board"
    run_dataset = edlio.load(str(run.path)).dataset_by_name("hwlink-run")
    run_log = (Path(run_dataset.path) / "run.log").read_text()
    assert "FAILED" in run_log and "DAC0" in run_log  # the run's own record says what failed
    assert (Path(run_dataset.path) / "exp.toml").read_text() == experiment.read_text()
    camera = run.engine.modules["camera"]
    assert camera not in run.engine._started_modules or not camera._thread._thread.is_alive()


def test_a_script_that_does_not_keep_up_stops_the_run_before_memory_runs_out(tmp_path: Path) -> None:
    script = write(tmp_path, "slow.py", "import time\nimport syntalos_mlink as syl\n\n"
                   "frames = syl.get_input_port('frames')\n\n"
                   "def prepare():\n    frames.on_data = lambda frame: time.sleep(1)\n")
    experiment = write(tmp_path, "exp.toml", f"""
[modules.camera]
kind = "camera"
fps = "200Hz"
width = 320
height = 240

[modules.video]
kind = "recorder"

[modules.slow]
kind = "script"
script = "{script}"
inputs = {{ frames = "Frame" }}
max_backlog_mb = 2

[[connect]]
from = "camera.frames"
to = "video.in"

[[connect]]
from = "camera.frames"
to = "slow.frames"
""")
    run = run_experiment(experiment, tmp_path / "out", duration="20s")
    assert run.result.reason == "failed" and "does not keep up" in run.result.failure
    assert run.result.duration_usec < 10_000_000
    assert recorded_frames(run.path) >= 20
