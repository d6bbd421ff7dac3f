"""The simulated board's URL options, signal generators and device clock/latency models."""

from __future__ import annotations

import time

import numpy as np
import pytest

from hwlink.drivers.sim import SimConfig
from hwlink.errors import ConfigError
from hwlink.lines import LineModeFlags
from hwlink.sync.clockmodel import DeviceClock, parse_latency, parse_steps


def collect(board, line, seconds: float) -> list:
    with board.readings(lines=[line]) as stream:
        deadline = time.monotonic() + seconds
        readings = []
        while (remaining := deadline - time.monotonic()) > 0:
            reading = stream.get(timeout=remaining)
            if reading is not None:
                readings.append(reading)
        return readings


@pytest.mark.parametrize(
    "query, message",
    [("bogus=1", "unknown sim:// option 'bogus'"), ("loopback=13", "OUT:IN"), ("loopback=13:13", "different"),
     ("loopback=13:A0", "OUT:IN"), ("latency=gauss:1ms", "bad latency"), ("latency=exp:1", "needs a unit"),
     ("spikes=2:1ms-2ms", "probability"), ("drift_ppm=fast", "needs a number"), ("a0=square:1Hz", "analog"),
     ("d2=sine:1Hz", "square"), ("steps=30s", "AT:STEP"), ("a9=const:1", "unknown sim:// option"),
     ("loopback=13:2&d2=square:1Hz", "both")],
)
def test_bad_options_are_rejected_clearly(query: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SimConfig.from_url(f"sim://?{query}")


def test_options_configure_the_model() -> None:
    config = SimConfig.from_url(
        "sim://?seed=7&loopback=13:2,13:3&offset=-1.5s&drift_ppm=25&drift_change=3&steps=30s:+50ms"
        "&latency=usb:1ms&spikes=0.05:5ms-20ms&analog_interval=2ms&a1=noise:10:100&d5=square:5Hz:0.2"
    )
    assert config.seed == 7 and config.loopback == {13: [2, 3]}
    assert config.device_clock == DeviceClock(-1_500_000.0, 25.0, 3.0, ((30_000_000, 50_000),))
    assert config.latency.kind == "usb" and config.latency.spike_probability == 0.05
    assert config.analog_interval_usec == 2_000
    assert config.analog[15].kind == "noise" and config.digital[5].duty == 0.2


def test_device_clock_model() -> None:
    clock = DeviceClock(offset_usec=1000.0, drift_ppm=100.0, steps=((1_000_000, -50_000),))
    t = np.array([0.0, 999_999.0, 1_000_000.0, 2_000_000.0])
    np.testing.assert_allclose(clock.device_time(t), [1000.0, 1000.0 + 999_999 * 1.0001,
                                                      1000 + 1_000_000 * 1.0001 - 50_000,
                                                      1000 + 2_000_000 * 1.0001 - 50_000])
    changing = DeviceClock(drift_change_ppm_per_hour=36.0)
    hour = 3.6e9
    # Drift grows linearly from 0 to 36 ppm over an hour: the accumulated error is half of 36 ppm-hours.
    assert changing.device_time(hour) - hour == pytest.approx(0.5 * 36e-6 * hour)


def test_latency_models_are_one_sided_fifo_and_seeded() -> None:
    events = np.arange(0.0, 1e6, 1000.0)
    model = parse_latency("exp:1ms").with_spikes("0.05:5ms-20ms")
    first = model.arrival_times(events, np.random.default_rng(3))
    again = model.arrival_times(events, np.random.default_rng(3))
    np.testing.assert_array_equal(first, again)
    assert np.all(first >= events) and np.all(np.diff(first) >= 0)
    assert (first - events).max() > 5_000  # spikes happened
    usb = parse_latency("usb:1ms").arrival_times(np.array([10.0, 999.0, 1001.0]), np.random.default_rng(0))
    np.testing.assert_array_equal(usb, [1050.0, 1050.0, 2050.0])
    assert parse_steps("90s:-1ms, 30s:+50ms") == ((30_000_000, 50_000), (90_000_000, -1_000))


def test_analog_inputs_sample_at_the_interval_with_generators(open_sim) -> None:
    board = open_sim("analog_interval=5ms&a0=const:300&a1=step:100ms:10:900&latency=none")
    board.set_mode("A0", LineModeFlags.IS_INPUT)
    board.set_mode("A1", LineModeFlags.IS_INPUT)
    const = collect(board, "A0", 0.3)
    assert {r.value for r in const} == {300}
    device_times = np.array([r.device_time_usec for r in const])
    assert np.all(np.diff(device_times) == pytest.approx(5_000, abs=2))
    step = collect(board, "A1", 0.05)
    assert {r.value for r in step} == {900}  # the step at 100 ms is over by now
    board.set_analog_input("A0", 777)
    assert {r.value for r in collect(board, "A0", 0.05)} == {777}


def test_external_square_wave_and_pullups(open_sim) -> None:
    board = open_sim("d5=square:50Hz&latency=none")
    board.set_mode(5, LineModeFlags.IS_INPUT)
    readings = collect(board, 5, 0.2)
    values = [r.value for r in readings]
    assert len(values) >= 15 and all(a != b for a, b in zip(values, values[1:]))
    intervals = np.diff([r.device_time_usec for r in readings])
    assert np.median(intervals) == pytest.approx(10_000, abs=200)
    with board.readings(lines=[7]) as stream:
        board.set_mode(7, LineModeFlags.IS_INPUT | LineModeFlags.PULL_UP)
        assert stream.get(timeout=1).value == 1
        board.drive_input(7, 0)
        assert stream.get(timeout=1).value == 0
