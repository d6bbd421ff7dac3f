"""The warm-up bracket on a prompt USB frame grid: each arrival waited less than a frame, which bounds the floor
line from below as well as the lower envelope bounds it from above."""

from __future__ import annotations

import numpy as np
import pytest

from hwlink.sync.clockmodel import USB_HOST_DELAY_USEC, DeviceClock, parse_latency
from hwlink.sync.estimator import DriftEstimator, FloorBracket, LowerHull
from hwlink.sync.simulation import SimulatedPairs, simulate_pairs

FRAME = 1_000
SPIKES = "0.05:5ms-20ms"


def estimates(estimator: DriftEstimator, secondary: np.ndarray, master: np.ndarray) -> np.ndarray:
    out = []
    for device, arrival in zip(secondary.tolist(), master.tolist()):
        estimator.add(device, arrival)
        out.append(min(estimator.master_time(device), arrival))
    return np.array(out)


def hulls(x: np.ndarray, y: np.ndarray) -> tuple[LowerHull, LowerHull]:
    floor, ceiling = LowerHull(int(x[0]), int(y[0])), LowerHull(int(x[0]), -int(y[0]))
    for xi, yi in zip(x[1:].tolist(), y[1:].tolist()):
        floor.add(xi, yi)
        ceiling.add(xi, -yi)
    return floor, ceiling


@pytest.mark.parametrize("seed", range(4))
def test_the_bracket_holds_the_true_line_and_closes_once_the_waits_cover_the_frame(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.integers(1_000, 40_000, 300))
    slope, intercept = rng.uniform(-1e-4, 1e-4), rng.uniform(-5e5, 5e5)
    truth = intercept + slope * (x - x[0])
    y = np.floor(truth + rng.uniform(0, FRAME, x.size)).astype(np.int64)  # every point waited under a frame
    floor, ceiling = hulls(x, y)
    bracket = FloorBracket.between(floor, ceiling, FRAME, -1e-2, 1e-2)
    assert bracket is not None
    now = int(x[-1])
    true_now = intercept + slope * (now - x[0])
    assert bracket.low(now) - 1 <= true_now <= bracket.high(now) + 1
    assert bracket.low_slope - 1e-7 <= slope <= bracket.high_slope + 1e-7
    assert bracket.high(now) - bracket.low(now) < 60  # 300 waits spread over the frame leave little room


def test_an_arrival_that_waited_longer_than_a_frame_leaves_no_line_between_the_hulls() -> None:
    x = np.arange(0, 2_000_000, 33_333)
    y = np.full(x.size, 5_000) + (np.arange(x.size) % 3) * 333  # three sample phases on the frame grid
    y[10] += 1_500  # one arrival a frame and a half late, among ones that waited nothing
    floor, ceiling = hulls(x, y)
    assert FloorBracket.between(floor, ceiling, FRAME, -1e-2, 1e-2) is None
    y[10] -= 1_000  # half a frame: still possible
    floor, ceiling = hulls(x, y)
    bracket = FloorBracket.between(floor, ceiling, FRAME, -1e-2, 1e-2)
    assert bracket is not None
    # a flat line between the late arrival less a frame (4833) and the lowest arrival (5000) fits: its level and
    # slope lie in the bracket at the newest point
    now = int(x[-1])
    assert bracket.low(now) - 1 <= 4_900 <= bracket.high(now) + 1
    assert bracket.low_slope - 1e-7 <= 0 <= bracket.high_slope + 1e-7


def test_two_arrivals_of_one_device_time_more_than_a_frame_apart_leave_no_line() -> None:
    floor, ceiling = LowerHull(0, 0), LowerHull(0, 0)
    floor.add(500_000, 100)
    ceiling.add(500_000, -1_300)  # the same device time, received 1.2 frames later
    assert FloorBracket.between(floor, ceiling, FRAME, -1e-2, 1e-2) is None
    ceiling.add(500_000, -900)  # (a hull keeps the extreme one)
    assert FloorBracket.between(floor, ceiling, FRAME, -1e-2, 1e-2) is None


def usb_pairs(rate: float, drift: float, minutes: float, seed: int, **clock: object) -> SimulatedPairs:
    return simulate_pairs(rate, int(minutes * 60e6), DeviceClock(offset_usec=-1_234_567, drift_ppm=drift, **clock),  # type: ignore[arg-type]
                          parse_latency("usb:1ms").with_spikes(SPIKES), seed=seed)


@pytest.mark.parametrize("seed", range(4))
def test_30_hz_on_usb_frames_is_within_a_sixth_of_a_frame_after_two_seconds(seed: int) -> None:
    """30 Hz at 10 ppm: the samples keep three phases a third of a frame apart, which sweep past the frame edge
    at 10 µs/s. The envelope alone sits on the lowest stair, up to a third of a frame (and more after the first
    corner, on a guessed skew) off for tens of seconds; the bracket's middle is at most half a third off."""
    pairs = usb_pairs(30, 10, 1.5, seed)
    late = pairs.event_usec > pairs.event_usec[0] + 2e6

    def worst(frame_bracket: bool) -> float:
        error = estimates(DriftEstimator(frame_bracket=frame_bracket), pairs.secondary_usec, pairs.master_usec)
        return float(np.abs(error - pairs.event_usec - USB_HOST_DELAY_USEC)[late].max())

    assert worst(True) < 180
    assert worst(False) > 300


def test_after_a_clock_step_the_bracket_keeps_to_the_measured_skew() -> None:
    """A +50 ms step at 100 ppm restarts the hulls; the skew measured before carries on, so the envelope is on the
    floor again at the first corner. The young bracket alone would allow skews far from it and pull the output
    up to 0.17 ms off (some of it early); held to the measured skew it leaves the envelope alone."""
    pairs = usb_pairs(30, 100, 3.5, 1, steps=((150_000_000, 50_000),))
    estimator = DriftEstimator()
    error = estimates(estimator, pairs.secondary_usec, pairs.master_usec) - pairs.event_usec
    assert estimator.resets == 1
    after = pairs.event_usec > 151e6  # the step's own second holds raw receive times
    assert error[after].min() > 0
    assert np.abs(error[after] - USB_HOST_DELAY_USEC).max() < 60


def frame_grid_arrivals(event_usec: np.ndarray, extra_wait_usec: np.ndarray) -> np.ndarray:
    arrival = np.ceil((event_usec + extra_wait_usec) / FRAME) * FRAME + USB_HOST_DELAY_USEC
    return np.maximum.accumulate(arrival).astype(np.int64)


def test_a_latency_timer_on_the_frame_grid_is_not_taken_for_prompt_frames() -> None:
    """An FTDI adapter sends on the USB frame grid too, but only when its 16 ms latency timer runs out: most
    arrivals wait many frames, so 'waited less than a frame' would put the bracket too early. It stays off and
    the output is the envelope's."""
    pairs = usb_pairs(30, 10, 1.5, 0)
    rng = np.random.default_rng(0)
    master = frame_grid_arrivals(pairs.event_usec, rng.uniform(0, 16_000, pairs.event_usec.size))
    bracketing = DriftEstimator()
    with_bracket = estimates(bracketing, pairs.secondary_usec, master)
    without = estimates(DriftEstimator(frame_bracket=False), pairs.secondary_usec, master)
    assert bracketing.on_frame_grid and not bracketing.frames_prompt
    np.testing.assert_array_equal(with_bracket, without)


def test_a_1_khz_device_with_short_delays_is_not_taken_for_prompt_frames() -> None:
    """Samples every 1 ms with 0.1 ms delays cluster on a 1 ms grid by their own period: the events' phases are
    as clustered as the arrivals', so no frames are assumed and the output is the envelope's."""
    pairs = simulate_pairs(1000, 20_000_000, DeviceClock(drift_ppm=20), parse_latency("exp:0.02ms"), seed=2)
    bracketing = DriftEstimator()
    with_bracket = estimates(bracketing, pairs.secondary_usec, pairs.master_usec)
    without = estimates(DriftEstimator(frame_bracket=False), pairs.secondary_usec, pairs.master_usec)
    assert bracketing.on_frame_grid and not bracketing.frames_prompt
    np.testing.assert_array_equal(with_bracket, without)


def test_prompt_usb_frames_at_30_hz_are_recognised() -> None:
    pairs = usb_pairs(30, 10, 0.2, 0)
    estimator = DriftEstimator()
    bracketed = estimates(estimator, pairs.secondary_usec, pairs.master_usec)
    assert estimator.on_frame_grid and estimator.frames_prompt
    # recognised means used: the output leaves the plain envelope's and stays within a frame of the events
    envelope = estimates(DriftEstimator(frame_bracket=False), pairs.secondary_usec, pairs.master_usec)
    assert np.any(bracketed != envelope)
    error = bracketed - pairs.event_usec
    assert np.all(np.abs(error[pairs.event_usec > pairs.event_usec[0] + 2e6]) < FRAME + USB_HOST_DELAY_USEC)


def test_a_rate_whose_phases_sweep_the_frame_in_a_second_keeps_the_envelope() -> None:
    """333 Hz: the events' phases move 3 µs per sample, so over the statistics' 64 arrivals they look clustered
    and the frames look prompt only now and then. Collecting the frame-bound arrivals only then left the upper
    hull thin and the bracket half a frame wide, which pulled an exact envelope 0.2 ms off; once the frames have
    looked prompt, every such arrival is collected, and the bracket closes within a sweep."""
    pairs = simulate_pairs(333, 300_000_000, DeviceClock(offset_usec=-777_777, drift_ppm=-82.4),
                           parse_latency("usb:1ms").with_spikes(SPIKES), seed=1)
    error = estimates(DriftEstimator(), pairs.secondary_usec, pairs.master_usec) - pairs.event_usec
    late = pairs.event_usec > pairs.event_usec[0] + 5e6
    assert np.abs(error[late] - USB_HOST_DELAY_USEC).max() < 20
