"""nidaq:// through the real nidaqmx Task code, against the simulated NI-DAQmx system at nidaqmx's interpreter seam."""

from __future__ import annotations

import ctypes.util
import inspect
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import edlio
import nidaqmx
import nidaqmx.utils
import numpy as np
import pytest
from click.testing import CliRunner

from hwlink.cli.main import cli
from hwlink.drivers import discover_boards, open_board
from hwlink.drivers.nidaq import CounterPulseTrain, NidaqBoard, discover, nidaq_line_id
from hwlink.drivers.scheduler import PulseTrain
from hwlink.edl import Collection, read_signal_file, read_table
from hwlink.errors import BoardError, ConfigError, LineError
from hwlink.lines import LineModeFlags, LineReading, SignalBlock
from hwlink.platform import clock_ns
from hwlink.testing import nidaq_sim
from hwlink.testing.nidaq_sim import SimulatedDevice, SimulatedNidaq, default_ai_signal
from tests.conftest import invoke_cli, wait_for

PROJECT_ROOT = Path(__file__).resolve().parents[1]
IN, OUT = LineModeFlags.IS_INPUT, LineModeFlags.IS_OUTPUT
FAST = "nidaq://Dev1?rate=2kHz&block=100&di_rate=10kHz"
no_real_driver = pytest.mark.skipif(ctypes.util.find_library("nidaqmx") is not None,
                                    reason="a real NI-DAQmx driver is installed on this machine")


def wired_device(**overrides) -> SimulatedDevice:
    """DO port0/line0 -> DI port0/line1, PFI0 (port1/line0) -> DI port0/line2, ao0 -> ai3."""
    wiring = {"port0/line1": "port0/line0", "port0/line2": "port1/line0", "ai3": "ao0"}
    return SimulatedDevice(wiring=wiring, **overrides)


@pytest.fixture
def sim() -> Iterator[SimulatedNidaq]:
    with SimulatedNidaq([wired_device()]) as simulated:
        yield simulated


@pytest.fixture
def board(sim: SimulatedNidaq) -> Iterator[NidaqBoard]:
    with open_board(FAST) as opened:
        yield opened  # type: ignore[misc]


def run_cli(*args: str):
    return invoke_cli(*args)


# ----- the seam -----------------------------------------------------------------------------------------------
def test_the_private_seam_is_where_the_simulation_expects_it() -> None:
    """Fails loudly when a nidaqmx upgrade moves the interpreter seam: re-check the simulation, then the pin."""
    nidaq_sim.check_seam()
    pinned = [dep.split(";")[0].strip() for dep in tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())[
        "project"]["optional-dependencies"]["nidaq"] if dep.startswith("nidaqmx")]  # without its platform marker
    assert pinned == [f"nidaqmx=={nidaq_sim.PINNED_NIDAQMX_VERSION}"], "pyproject pin and simulation disagree"
    assert "utils._select_interpreter(grpc_options)" in inspect.getsource(nidaqmx.Task.__init__)
    original = nidaqmx.utils._select_interpreter
    with SimulatedNidaq() as simulated:
        assert nidaqmx.utils._select_interpreter is not original
        with nidaqmx.Task() as task:
            assert task._interpreter is simulated
    assert nidaqmx.utils._select_interpreter is original  # restored on exit


def test_seam_check_reports_a_changed_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    def moved(grpc_options=None, interpreter=None, session=None):  # noqa: ANN001, ANN202 - a stand-in
        return None

    monkeypatch.setattr(nidaqmx.utils, "_select_interpreter", moved)
    with pytest.raises(RuntimeError, match="seam moved.*_select_interpreter takes"):
        nidaq_sim.check_seam()


# ----- installation, URL, device ------------------------------------------------------------------------------
def test_missing_nidaqmx_package_is_one_line_saying_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nidaqmx", None)
    with pytest.raises(ConfigError, match=r"^nidaq:// needs NI's nidaqmx package: pip install 'hwlink\[nidaq\]'$"):
        open_board("nidaq://Dev1")
    assert discover() == []


@no_real_driver
def test_missing_driver_is_a_clear_error_and_no_devices() -> None:
    """No simulation installed: the real nidaqmx finds no NI-DAQmx library on this machine."""
    with SimulatedNidaq():
        pass
    with pytest.raises(nidaqmx.errors.DaqNotFoundError):
        nidaqmx.Task()  # an uninstalled simulation leaves nidaqmx's own interpreter selection
    with pytest.raises(BoardError, match="NI-DAQmx .* not installed: install NI-DAQmx from ni.com"):
        open_board("nidaq://Dev1")
    assert discover() == []
    result = run_cli("lines", "-b", "nidaq://Dev1")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and "NI-DAQmx (the driver) is not installed" in result.output


def test_missing_device_names_the_ones_there(sim: SimulatedNidaq) -> None:
    with pytest.raises(BoardError, match=r"NI-DAQmx device 'Dev9' not found \(devices: Dev1\)"):
        open_board("nidaq://Dev9")


@pytest.mark.parametrize("url, message", [
    ("nidaq://", "expected nidaq://DEVICE"),
    ("nidaq://Dev1?speed=3", "unknown nidaq:// option 'speed'"),
    ("nidaq://Dev1?block=0", "block needs a sample count"),
    ("nidaq://Dev1?terminal=weird", "terminal must be one of"),
    ("nidaq://Dev1?rate=fast", "bad frequency"),
    ("nidaq://Dev1?silence=0s", "silence must be positive"),
    ("nidaq://Dev1?silence=-1s", "must not be negative"),
    ("nidaq://Dev1?silence=nan", "bad duration"),
    ("nidaq://Dev1?silence=1e400s", "out of range"),
    ("nidaq://Dev1?silence=5", "needs a unit"),
])
def test_bad_urls(sim: SimulatedNidaq, url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_board(url)


def test_discovery_lists_devices(sim: SimulatedNidaq) -> None:
    found = [b for b in discover_boards(["nidaq"])]
    assert [b.url for b in found] == ["nidaq://Dev1"]
    assert found[0].description == "NI PCIe-6363 (simulated)"
    assert found[0].details == {"product": "PCIe-6363", "serial": "1A2B3C4D", "ai": "16", "ao": "4", "dio": "48",
                                "ctr": "4"}


# ----- lines --------------------------------------------------------------------------------------------------
def test_lines_have_stable_ids_and_ni_names(board: NidaqBoard) -> None:
    assert nidaq_line_id("port2/line7") == 207 and nidaq_line_id("ai15") == 1015
    ids = [info.line_id for info in board.lines]
    assert ids[:3] == [0, 1, 2] and 131 not in ids and 207 in ids
    assert board.line("port1/line3").line_id == 103 == board.line("PFI3").line_id
    assert board.line("Dev1/ai2").line_id == 1002 == board.line("1002").line_id
    assert board.line("ai0").analog_in_bits == 16 and board.line("ai0").modes()[0].value == "analog-in"
    assert board.line("ao1").analog_out_max == 65535 and board.line("ao1").line_id == 2001
    assert board.line("ctr3").line_id == 3003 and board.line("ctr3").digital_out
    assert len(board.lines) == 48 + 16 + 4 + 4
    with pytest.raises(LineError, match="unknown line 'ai99'"):
        board.line("ai99")
    with pytest.raises(LineError, match="supported modes: digital-out"):
        board.set_mode("ctr0", IN)


# ----- outputs ------------------------------------------------------------------------------------------------
def test_digital_out_on_demand(board: NidaqBoard, sim: SimulatedNidaq) -> None:
    board.set_mode("port0/line5", OUT)
    assert sim.digital_level("Dev1", "port0/line5") == 0
    board.write_digital("port0/line5", 1)
    assert sim.digital_level("Dev1", "port0/line5") == 1
    board.write_digital(5, 0)
    assert sim.digital_level("Dev1", "port0/line5") == 0
    with pytest.raises(LineError, match="counter output: it can pulse, not hold a level"):
        board.set_mode("ctr0", OUT)
        board.write_digital("ctr0", 1)


def test_analog_out_on_demand_codes_and_volts(board: NidaqBoard, sim: SimulatedNidaq) -> None:
    board.set_mode("ao1", OUT)
    board.write_analog("ao1", 65535)
    assert sim.analog_output("Dev1", "ao1") == pytest.approx(10.0)
    board.write_analog("ao1", 0)
    assert sim.analog_output("Dev1", "ao1") == pytest.approx(-10.0)
    board.write_voltage("ao1", 2.5)
    assert sim.analog_output("Dev1", "ao1") == pytest.approx(2.5)
    with pytest.raises(LineError, match="out of range -10..10 V"):
        board.write_voltage("ao1", 11)
    with pytest.raises(LineError, match="out of range 0..65535"):
        board.write_analog("ao1", 65536)


def test_hardware_timed_analog_waveform(board: NidaqBoard, sim: SimulatedNidaq) -> None:
    board.set_mode("ao2", OUT)
    wave = np.linspace(-1.0, 1.0, 20)
    output = board.write_waveform("ao2", wave, rate_hz=1000)
    output.wait()
    times, values = sim.analog_output_changes("Dev1", "ao2")
    np.testing.assert_allclose(values[-20:], wave)
    np.testing.assert_allclose(np.diff(times[-20:]), 1e6, atol=1)  # one sample per ms on the AO clock
    board.write_voltage("ao2", 0.5)  # back to on-demand output
    assert sim.analog_output("Dev1", "ao2") == pytest.approx(0.5)
    with pytest.raises(LineError, match="at least 2 samples within"):
        board.write_waveform("ao2", np.array([20.0, 0.0]), 1000)


def test_waveform_refused_without_an_ao_sample_clock() -> None:
    device = SimulatedDevice(product_type="USB-6001", ao_samp_clk_supported=False)
    with SimulatedNidaq([device]), open_board("nidaq://Dev1") as board:
        board.set_mode("ao0", OUT)
        with pytest.raises(LineError, match="USB-6001 Dev1 has no AO sample clock"):
            board.write_waveform("ao0", np.zeros(10), 1000)


# ----- pulses -------------------------------------------------------------------------------------------------
def test_counter_line_pulses_are_hardware_timed(board: NidaqBoard, sim: SimulatedNidaq) -> None:
    board.set_mode("ctr1", OUT)
    assert board.pulse_timing("ctr1") == "hardware (ctr1 -> its output terminal)"
    train = board.pulse("ctr1", width_usec=1500, count=3, period_usec=4000)
    assert isinstance(train, CounterPulseTrain) and train.wait(2)
    np.testing.assert_array_equal(train.achieved_widths_usec, [1500, 1500, 1500])
    assert train.terminal == "/Dev1/PFI13"
    name, edges = sim.counter_trains[-1]
    assert name == "Dev1/ctr1"
    np.testing.assert_array_equal(edges[1::2] - edges[0::2], 1_500_000)
    np.testing.assert_array_equal(np.diff(edges[0::2]), 4_000_000)
    with pytest.raises(LineError, match="active-low pulses need the host scheduler"):
        board.pulse("ctr1", 1000, level=0)
    board.set_mode("ctr2", OUT)
    unfinished = board.pulse("ctr2", width_usec=50_000, count=5, period_usec=100_000)  # on PFI14 = port2/line6
    assert sim.digital_level("Dev1", "port2/line6") == 1
    board.close()
    closed_ns = clock_ns()
    assert unfinished.cancelled and sim.digital_level("Dev1", "port2/line6") == 0
    times, _ = sim.digital_changes("Dev1", "port2/line6")
    assert times.max() <= closed_ns  # closing stopped the counter: its planned edges never happen


def test_pfi_pulses_use_a_free_counter_and_are_seen_by_digital_input(board: NidaqBoard, sim: SimulatedNidaq) -> None:
    readings: list[LineReading] = []
    board.subscribe(readings.append, lines=["port0/line2"])
    board.set_mode("port0/line2", IN)
    board.set_mode("PFI0", OUT)
    time.sleep(0.25)  # let the DI synchronizer see a dozen blocks before the edges that are checked
    assert board.pulse_timing("PFI0") == "hardware (ctr0 -> PFI0)"
    train = board.pulse("PFI0", width_usec=2000, count=4, period_usec=5000)
    assert isinstance(train, CounterPulseTrain) and train.terminal == "/Dev1/PFI0"
    assert train.wait(2)
    assert wait_for(lambda: len(readings) >= 9)
    edges = readings[1:9]  # the first reading is the initial level
    assert [r.value for r in edges] == [1, 0] * 4
    device = np.array([r.device_time_usec for r in edges])
    np.testing.assert_allclose(device[1::2] - device[0::2], 2000, atol=100)  # DI samples every 100 µs
    np.testing.assert_allclose(np.diff(device[0::2]), 5000, atol=100)
    truth_usec = (sim.counter_trains[-1][1] - board.clock.start_ns) / 1000
    np.testing.assert_allclose([r.time_usec for r in edges], truth_usec, atol=5000)  # loose: host scheduling
    board.write_digital("PFI0", 1)  # the line is an on-demand output again
    assert sim.digital_level("Dev1", "port1/line0") == 1


def test_pulses_fall_back_to_software_timing_without_a_free_counter(sim: SimulatedNidaq) -> None:
    with SimulatedNidaq([wired_device(counter_count=1)]) as one_counter, open_board(FAST) as board:
        board.set_mode("PFI1", OUT)
        board.set_mode("port0/line0", OUT)
        assert board.pulse_timing("port0/line0") == "software (host pulse scheduler)"
        long_train = board.pulse("PFI1", width_usec=300_000)
        assert isinstance(long_train, CounterPulseTrain)
        assert board.pulse_timing("PFI2") == "software (host pulse scheduler)"
        board.set_mode("PFI2", OUT)
        fallback = board.pulse("PFI2", width_usec=3000)
        assert type(fallback) is PulseTrain and fallback.wait(2)
        times, levels = one_counter.digital_changes("Dev1", "port1/line2")
        assert list(levels[-2:]) == [1, 0]
        seen_width_usec = (times[-1] - times[-2]) / 1000  # software-timed: never short, late by host load only
        assert 2500 <= seen_width_usec < 50_000
        assert one_counter.digital_level("Dev1", "port1/line1") == 1  # the 300 ms counter pulse is still high
        board.write_digital("PFI1", 0)  # an explicit write stops the running counter train
        written_ns = clock_ns()
        assert long_train.cancelled and one_counter.digital_level("Dev1", "port1/line1") == 0
        times, _ = one_counter.digital_changes("Dev1", "port1/line1")
        assert times.max() <= written_ns  # the train's planned falling edge never happens
        assert board.pulse_timing("PFI2") == "hardware (ctr0 -> PFI2)"


# ----- inputs -------------------------------------------------------------------------------------------------
def test_digital_input_reports_edges_with_sample_clock_timestamps(board: NidaqBoard, sim: SimulatedNidaq) -> None:
    readings: list[LineReading] = []
    board.subscribe(readings.append)
    board.set_mode("port0/line0", OUT)
    board.set_mode("port0/line1", IN)
    assert wait_for(lambda: len(readings) >= 1)
    assert (readings[0].line_id, readings[0].value, readings[0].device_time_usec) == (1, 0, 0)
    time.sleep(0.25)  # let the DI synchronizer see a dozen blocks
    board.write_digital(0, 1)
    time.sleep(0.03)
    board.write_digital(0, 0)
    assert wait_for(lambda: len(readings) >= 3)
    rise, fall = readings[1], readings[2]
    assert (rise.value, fall.value) == (1, 0)
    changes, _ = sim.digital_changes("Dev1", "port0/line0")
    true_width_usec = (changes[-1] - changes[-2]) / 1000
    assert abs((fall.device_time_usec - rise.device_time_usec) - true_width_usec) <= 200
    true_rise_usec = (changes[-2] - board.clock.start_ns) / 1000
    assert abs(rise.time_usec - true_rise_usec) < 5000
    assert board.has_device_clock


def test_analog_input_blocks_are_float32_and_on_the_master_clock(board: NidaqBoard, sim: SimulatedNidaq) -> None:
    blocks: list[SignalBlock] = []
    board.subscribe_signals(blocks.append)
    board.set_mode("ai0", IN)
    board.set_mode("ai2", IN)

    def both() -> list[SignalBlock]:  # the ai0-only acquisition may deliver a block before ai2 restarts it
        return [b for b in blocks if b.line_ids == (1000, 1002)]

    assert wait_for(lambda: len(both()) >= 5)
    first = both()[:5]
    assert [b.first_index for b in first] == [0, 100, 200, 300, 400]
    for block in first:
        assert block.data.dtype == np.float32 and block.data.shape == (100, 2)
        assert block.line_ids == (1000, 1002)
        seconds = np.arange(block.first_index, block.first_index + 100) / 2000
        expected = np.stack([default_ai_signal(0, seconds), default_ai_signal(2, seconds)], axis=1)
        np.testing.assert_allclose(block.data, expected, atol=1e-6)
    stamps = np.concatenate([b.timestamps for b in first])
    assert np.all(np.diff(stamps) >= 0)
    truth = (np.array([sim.sample_time_ns("Dev1", "ai0", i) for i in range(500)]) - board.clock.start_ns) / 1000
    assert np.max(np.abs(stamps - truth)) < 5000  # loose bound: estimator warm-up and thread wake-ups


def test_analog_input_follows_a_drifting_sample_clock() -> None:
    """A sample clock 2 % fast: timestamps follow the true sample times, not the nominal rate."""
    with SimulatedNidaq([wired_device(clock_drift_ppm=20_000)]) as drifting, open_board(FAST) as board:
        blocks: list[SignalBlock] = []
        board.subscribe_signals(blocks.append)
        board.set_mode("ai1", IN)
        assert wait_for(lambda: len(blocks) >= 12)
        stamps = np.concatenate([b.timestamps for b in blocks[:12]])
        truth = (np.array([drifting.sample_time_ns("Dev1", "ai1", i) for i in range(1200)]) -
                 board.clock.start_ns) / 1000
        nominal_span = 1199 * 500.0
        assert truth[-1] - truth[0] < nominal_span - 10_000  # 2 %: 12 ms shorter than nominal over 0.6 s
        assert np.abs(stamps[600:] - truth[600:]).max() < 6_000  # uncorrected, the 2 % drift leaves 6-12 ms here; loose for a loaded machine


def test_analog_readings_for_subscribers_that_name_the_line(board: NidaqBoard, sim: SimulatedNidaq) -> None:
    board.set_mode("ao0", OUT)
    board.write_voltage("ao0", 5.0)  # wired to ai3
    named: list[LineReading] = []
    everything: list[LineReading] = []
    board.subscribe(named.append, lines=["ai3"])
    board.subscribe(everything.append)
    board.set_mode("ai3", IN)
    assert wait_for(lambda: len(named) >= 100)
    assert {r.line_id for r in named} == {1003}
    assert {r.value for r in named} == {round(15 / 20 * 65535)}  # 5 V on ±10 V, 16 bit
    assert [r.device_time_usec for r in named[:3]] == [0, 500, 1000]
    assert everything == []


def test_changing_the_input_set_restarts_the_acquisition(board: NidaqBoard, sim: SimulatedNidaq) -> None:
    blocks: list[SignalBlock] = []
    board.subscribe_signals(blocks.append)
    board.set_mode("ai0", IN)
    assert wait_for(lambda: len(blocks) >= 1)
    board.set_mode("ai1", IN)
    assert wait_for(lambda: any(b.line_ids == (1000, 1001) for b in blocks))
    assert len(sim.running_tasks()) == 1
    board.close()
    assert sim.running_tasks() == [] and sim.task_count() == 0


# ----- errors -------------------------------------------------------------------------------------------------
def test_daqmx_errors_name_device_channel_and_code(board: NidaqBoard, sim: SimulatedNidaq) -> None:
    sim.inject_error(-201003, "create", channel="Dev1/ao3", message="Device cannot be accessed.")
    with pytest.raises(BoardError, match=r"nidaq://Dev1.*: Dev1/ao3: Device cannot be accessed \(DAQmx error -201003"):
        board.set_mode("ao3", OUT)
    board.set_mode("port0/line4", OUT)
    sim.inject_error(-200524, "write", message="Write cannot be performed.")
    with pytest.raises(BoardError, match=r"Dev1/port0/line4: Write cannot be performed \(DAQmx error -200524\)"):
        board.write_digital("port0/line4", 1)


def test_a_failed_input_change_keeps_the_running_acquisition(board: NidaqBoard, sim: SimulatedNidaq) -> None:
    blocks: list[SignalBlock] = []
    board.subscribe_signals(blocks.append)
    board.set_mode("ai0", IN)
    sim.inject_error(-200077, "create", channel="Dev1/ai5", message="Requested value is not supported.")
    with pytest.raises(BoardError, match=r"Dev1/ai0, Dev1/ai5: Requested value is not supported"):
        board.set_mode("ai5", IN)
    count = len(blocks)
    assert wait_for(lambda: len(blocks) >= count + 2)
    assert blocks[-1].line_ids == (1000,) and board.mode("ai5") is None


def test_a_second_board_on_a_busy_timing_engine_is_refused(board: NidaqBoard, sim: SimulatedNidaq) -> None:
    board.set_mode("ai0", IN)
    with open_board(FAST) as second:
        with pytest.raises(BoardError, match=r"Dev1/ai5: The specified resource is reserved.*\(DAQmx error -50103\)"):
            second.set_mode("ai5", IN)


def test_injected_buffer_overflow_stops_the_run_and_keeps_the_data(board: NidaqBoard, sim: SimulatedNidaq) -> None:
    sim.inject_error(-200279, "read", channel="Dev1/ai0", after_samples=300)
    blocks: list[SignalBlock] = []
    errors: list[BoardError] = []
    board.subscribe_signals(blocks.append, on_error=errors.append)
    board.set_mode("ai0", IN)
    assert wait_for(lambda: errors)
    assert [b.first_index for b in blocks] == [0, 100, 200]
    message = str(errors[0])
    assert "Dev1/ai0" in message and "overflow" in message and "-200279" in message and "after 300 samples" in message
    assert wait_for(lambda: sim.running_tasks() == [])
    with pytest.raises(BoardError, match="-200279"):
        board.set_mode("ai1", IN)


def test_a_consumer_that_falls_behind_gets_a_real_overflow() -> None:
    """The simulated buffer (10k samples at 10 kHz, DAQmx's default) overruns while a subscriber stalls."""
    url = "nidaq://Dev1?rate=10kHz&block=1000&buffer=0.1s"
    with SimulatedNidaq([wired_device()]) as simulated, open_board(url) as board:
        errors: list[BoardError] = []
        stalled = threading.Event()

        def slow(block: SignalBlock) -> None:
            if not stalled.is_set():
                stalled.set()
                time.sleep(1.3)

        board.subscribe_signals(slow, on_error=errors.append)
        board.set_mode("ai0", IN)
        assert wait_for(lambda: errors, timeout=5)
        assert "input buffer overflow" in str(errors[0]) and "(DAQmx error -200279)" in str(errors[0])
        assert wait_for(lambda: simulated.running_tasks() == [])


# ----- liveness -----------------------------------------------------------------------------------------------
def _watch_blocks(board: NidaqBoard) -> tuple[list[float], list[BoardError]]:
    """Arrival times (monotonic) of every signal block, and the errors the board reports to subscribers."""
    arrivals: list[float] = []
    errors: list[BoardError] = []
    board.subscribe_signals(lambda block: arrivals.append(time.monotonic()),
                            on_error=lambda error: (errors.append(error), arrivals.append(-time.monotonic())))
    return arrivals, errors


@pytest.mark.parametrize("url, limit_s", [
    (FAST + "&silence=1s", 1.0),  # 50 ms blocks: the silence option rules
    ("nidaq://Dev1?rate=1kHz&block=200&silence=1s", 2.0),  # 200 ms blocks: 10 block intervals rule
])
def test_a_stalled_acquisition_fails_the_board_within_the_bound(sim: SimulatedNidaq, url: str,
                                                                limit_s: float) -> None:
    sim.stall_events(channel="Dev1/ai0", after_samples=600)
    with open_board(url) as board:
        arrivals, errors = _watch_blocks(board)
        board.set_mode("ai0", IN)
        assert wait_for(lambda: errors, timeout=limit_s + 15)
        blocks = [t for t in arrivals if t > 0]
        failed_at = -arrivals[-1]
        assert len(blocks) == 600 // board.config.block  # everything before the stall was delivered
        assert failed_at - blocks[-1] >= limit_s - 0.1  # never before the limit
        message = str(errors[0])
        assert "no data from the device" in message and "Dev1/ai0" in message and f"limit {limit_s:g} s" in message
        assert board.silences == 1 and board.error is errors[0]
        assert wait_for(lambda: sim.running_tasks() == [])  # a dead board releases its acquisition
        with pytest.raises(BoardError, match="no data from the device"):
            board.set_mode("ai1", IN)


def test_a_stalled_analog_acquisition_is_not_hidden_by_running_digital_input(sim: SimulatedNidaq) -> None:
    """AI and DI are separate tasks: DI edges keep coming, yet the AI stall is seen."""
    with open_board(FAST + "&silence=3s") as board:
        readings: list[LineReading] = []
        errors: list[BoardError] = []
        board.subscribe(readings.append, on_error=errors.append, lines=["port0/line1"])
        board.set_mode("port0/line1", IN)
        board.set_mode("ai0", IN)
        sim.stall_events(channel="Dev1/ai0", after_samples=200)
        # stalled, still "running", no DAQmx error: only the 3 s limit can end it
        assert wait_for(lambda: sim.stalled_tasks() or errors, timeout=10) and errors == [], errors
        stop = threading.Event()

        def toggle() -> None:  # DI keeps delivering edges the whole time
            level = 0
            while not stop.wait(0.1):
                level ^= 1
                sim.set_digital_input("Dev1", "port0/line0", level)

        toggler = threading.Thread(target=toggle)
        toggler.start()
        try:
            assert wait_for(lambda: errors, timeout=25)
        finally:
            stop.set()
            toggler.join()
        assert "Dev1/ai0" in str(errors[0]) and "limit 3 s" in str(errors[0]) and board.silences == 1, errors
        assert len(readings) >= 5, readings  # DI was delivering while AI was silent


def test_a_stalled_digital_input_acquisition_is_silence_too(sim: SimulatedNidaq) -> None:
    """DI is hardware-timed sampling, so its blocks are due even when no line changes."""
    sim.stall_events(channel="Dev1/port0/line1")
    with open_board(FAST + "&silence=1s") as board:
        errors: list[BoardError] = []
        board.subscribe(lambda reading: None, on_error=errors.append)
        board.set_mode("port0/line1", IN)
        assert wait_for(lambda: errors, timeout=15)
        assert "Dev1/port0/line1" in str(errors[0]) and "every 20 ms" in str(errors[0]) and board.silences == 1


def test_slow_blocks_are_not_silence(sim: SimulatedNidaq) -> None:
    """One block every 1.5 s with silence=1s: the limit is 10 block intervals, so a slow but healthy
    acquisition (and the 1.5 s wait for its first block) never trips it."""
    with open_board("nidaq://Dev1?rate=100Hz&block=150&silence=1s") as board:
        arrivals, errors = _watch_blocks(board)
        board.set_mode("ai0", IN)
        assert wait_for(lambda: len(arrivals) >= 2 or errors, timeout=15)
        assert errors == [] and board.silences == 0 and board.error is None


def test_restarted_and_stopped_acquisitions_are_not_silence(sim: SimulatedNidaq) -> None:
    """Changing the input set replaces a task; removing the last DI line stops DI: neither is a silence."""
    with open_board("nidaq://Dev1?rate=1kHz&block=100&di_rate=1kHz&silence=1s") as board:
        arrivals, errors = _watch_blocks(board)
        board.set_mode("port0/line1", IN)
        board.set_mode("ai0", IN)
        deadline = time.monotonic() + 3.0  # three silence limits of restarts
        extra = 1
        while time.monotonic() < deadline:
            board.set_mode("port0/line2", OUT if extra % 2 == 0 else IN)  # DI restarts
            board.set_mode(f"ai{extra % 16}", IN)  # AI restarts while the set grows
            extra += 1
            time.sleep(0.25)
        board.set_mode("port0/line1", OUT)
        board.set_mode("port0/line2", OUT)  # no DI input left: DI stops for good
        count = len(arrivals)
        time.sleep(2.5)
        assert errors == [] and board.silences == 0 and board.error is None
        assert len(arrivals) > count  # AI still runs
        assert board._digital_input is None


def test_record_on_a_stalled_nidaq_board_fails_and_counts_the_silence(sim: SimulatedNidaq, tmp_path: Path) -> None:
    sim.stall_events(channel="Dev1/ai0", after_samples=600)
    result = CliRunner().invoke(cli, ["record", "-b", FAST + "&silence=1s", "--lines", "ai0", "--duration", "30s",
                                      "-o", str(tmp_path / "stalled"), "-q"])
    assert result.exit_code == 2, result.output
    assert "board failed, recording saved in" in result.output and "no data from the device" in result.output
    assert "Traceback" not in result.output
    path = tmp_path / "stalled"
    attributes = edlio.load(path).attributes
    assert attributes["success"] is False and attributes["end_reason"] == "failed"
    assert attributes["device_silences"] == 1 and "no data from the device" in attributes["failure_reason"]
    assert attributes["recording_length_msec"] < 25_000
    data = read_signal_file(path / "signals" / "signals.h5")["data"]
    assert _sample_offset(data[:, 0], 0, 2000) + data.shape[0] == 600  # everything up to the stall


def test_record_on_a_healthy_nidaq_board_counts_no_silence(sim: SimulatedNidaq, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["record", "-b", "nidaq://Dev1?rate=1kHz&block=1000&silence=1s", "--lines",
                                      "ai0", "--duration", "2500ms", "-o", str(tmp_path / "slow"), "-q"])
    assert result.exit_code == 0, result.output
    attributes = edlio.load(tmp_path / "slow").attributes
    assert attributes["success"] is True and attributes["device_silences"] == 0


# ----- command line -------------------------------------------------------------------------------------------
def test_cli_lines_write_pulse_and_read(sim: SimulatedNidaq) -> None:
    listing = run_cli("lines", "-b", "nidaq://Dev1")
    assert listing.exit_code == 0
    rows = [row.split() for row in listing.output.splitlines()]
    assert ["103", "port1/line3", "digital-in,", "digital-out"] in rows and ["3003", "ctr3", "digital-out"] in rows
    assert ["1000", "ai0", "analog-in", "(16", "bit)"] in rows
    assert run_cli("write", "port0/line0", "1", "-b", "nidaq://Dev1").output.strip() == "line 0 (port0/line0) <- 1"
    assert sim.digital_level("Dev1", "port0/line0") == 1
    pulsed = run_cli("pulse", "ctr0", "--width", "2ms", "--count", "2", "--period", "5ms", "-b", "nidaq://Dev1")
    assert pulsed.exit_code == 0 and "pulse 2: width 2.000 ms (error +0 µs)" in pulsed.output
    digital = run_cli("read", "port0/line1", "--count", "1", "--format", "csv", "-b", FAST)
    assert digital.exit_code == 0, digital.output
    assert digital.output.splitlines()[1].split(",")[1:] == ["1", "port0/line1", "1", "0"]  # wired to port0/line0
    analog = run_cli("read", "ai3", "--count", "3", "--format", "csv", "-b", FAST)
    rows = [line.split(",") for line in analog.output.splitlines()[1:4]]
    assert [row[1:] for row in rows] == [["1003", "ai3", "0.000153", str(t)] for t in (0, 500, 1000)]  # 0 V from ao0 (one LSB: volts from the code)
    bad = run_cli("read", "ai99", "--count", "1", "-b", "nidaq://Dev1")
    assert bad.exit_code == 2 and "unknown line 'ai99' on nidaq://Dev1" in bad.output


def test_cli_read_stops_cleanly_on_a_daqmx_error(sim: SimulatedNidaq) -> None:
    sim.inject_error(-200279, "read", after_samples=200)
    result = run_cli("read", "ai0", "--duration", "5s", "--format", "csv", "-b", FAST)
    assert result.exit_code == 2
    assert "board failed after 200 reading(s)" in result.output and "-200279" in result.output
    assert result.output.count(",1000,ai0,") == 200  # every sample before the overflow was written out


def test_demo_entry_point_runs_the_cli_against_the_simulation() -> None:
    result = subprocess.run([sys.executable, "-m", "hwlink.testing.nidaq_sim", "read", "ai0", "--count", "3",
                             "--format", "csv", "-b", "nidaq://Dev1"], capture_output=True, text=True, timeout=60,
                            cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "time_usec,line_id,line,value,device_time_usec"
    assert len(result.stdout.splitlines()) == 4 and "3 reading(s)" in result.stderr


# ----- hwlink record ------------------------------------------------------------------------------------------
def _sample_offset(column: np.ndarray, channel: int, rate_hz: float) -> int:
    """The acquisition index of the first recorded row (within the signal's first period, 1 s for ai0), found by
    matching the known signal."""
    candidates = np.arange(0, round(rate_hz / (channel + 1)))
    window = column[:50].astype(np.float64)
    errors = [np.abs(default_ai_signal(channel, (k + np.arange(50)) / rate_hz) - window).max() for k in candidates]
    return int(candidates[int(np.argmin(errors))])


def test_record_on_nidaq_writes_signals_and_events_edlio_opens(sim: SimulatedNidaq, tmp_path: Path) -> None:
    def toggle() -> None:  # once the recording samples (AI and DI tasks running), so a slow start misses nothing
        wait_for(lambda: len(sim.running_tasks()) >= 2, timeout=30)
        for level in (1, 0):
            time.sleep(0.2)
            sim.set_digital_input("Dev1", "port0/line0", level)  # port0/line1 is wired to it

    toggler = threading.Thread(target=toggle)
    toggler.start()
    result = CliRunner().invoke(cli, ["record", "-b", FAST, "--lines", "ai0,ai3,port0/line1", "--duration", "700ms",
                                      "-o", str(tmp_path / "daq"), "-q"])
    toggler.join()
    assert result.exit_code == 0, result.output
    path = tmp_path / "daq"
    loaded = edlio.load(path)
    assert sorted(dataset.name for dataset in loaded.datasets) == ["port0_line1", "signals"]
    signals = read_signal_file(path / "signals" / "signals.h5")
    data, stamps = signals["data"], signals["timestamps"]
    assert data.dtype == np.float32 and data.shape[1] == 2 and 1000 <= data.shape[0] <= 1600
    assert list(signals["attrs"]["channel_names"]) == ["ai0", "ai3"]
    first = _sample_offset(data[:, 0], 0, 2000)
    seconds = (first + np.arange(data.shape[0])) / 2000
    np.testing.assert_allclose(data[:, 0], default_ai_signal(0, seconds), atol=1e-6)
    np.testing.assert_allclose(data[:, 1], 0.0, atol=1e-6)  # ai3 is wired to ao0, which nobody drives
    assert np.all(np.diff(stamps) >= 0) and np.median(np.diff(stamps)) == pytest.approx(500, abs=2)
    header, rows = read_table(path / "port0_line1" / "port0_line1.csv")
    assert header[:3] == ["time_usec", "value", "device_time_usec"]
    assert [int(row[1]) for row in rows[-2:]] == [1, 0]
    device_times = [int(row[2]) for row in rows[-2:]]
    toggled_ns, _ = sim.digital_changes("Dev1", "port0/line0")
    # edges are found between DI samples (10 kHz): device times are the real toggle times to one sample
    assert abs((device_times[1] - device_times[0]) - (toggled_ns[-1] - toggled_ns[-2]) / 1000) <= 2 * 100


def test_record_stops_cleanly_on_buffer_overflow_with_data_kept(sim: SimulatedNidaq, tmp_path: Path) -> None:
    sim.inject_error(-200279, "read", channel="Dev1/ai0", after_samples=600)
    result = CliRunner().invoke(cli, ["record", "-b", FAST, "--lines", "ai0", "--duration", "5s", "-o",
                                      str(tmp_path / "overflow"), "-q"])
    assert result.exit_code == 2
    assert "board failed, recording saved in" in result.output and "-200279" in result.output
    assert "Traceback" not in result.output
    path = tmp_path / "overflow"
    collection = Collection.open(path)
    assert collection.attributes["success"] is False and "-200279" in collection.attributes["failure_reason"]
    data = read_signal_file(path / "signals" / "signals.h5")["data"]
    first = _sample_offset(data[:, 0], 0, 2000)
    assert first + data.shape[0] == 600  # everything up to the overflow, nothing after
    edlio.load(path)


@no_real_driver
def test_hwlink_boards_lists_nidaq_devices_only_where_there_are_some(sim: SimulatedNidaq) -> None:
    listed = run_cli("boards")
    assert listed.exit_code == 0
    row = next(line for line in listed.output.splitlines() if line.startswith("nidaq://"))
    assert row.split(None, 1) == ["nidaq://Dev1", "NI PCIe-6363 (simulated) (product PCIe-6363, serial 1A2B3C4D, "
                                                  "ai 16, ao 4, dio 48, ctr 4)"]
    sim.uninstall()
    assert "nidaq://" not in run_cli("boards").output  # no NI-DAQmx driver on this machine
