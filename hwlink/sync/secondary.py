"""SecondaryClockSynchronizer: Syntalos' API, hwlink's drift-aware estimator.

A device that stamps its own messages (``secondary``, device clock µs) is received at ``master`` (master clock µs,
after a one-sided transport delay). ``process_timestamp`` returns the best estimate of when the event happened on
the master clock: the device time mapped through the lower-envelope line of :mod:`hwlink.sync.estimator`, from the
first pair on, never later than the receive time and never decreasing.

Strategy flags keep Syntalos' meaning, relative to the device time shifted by the calibrated offset
(``secondary - expected_offset_to_master_usec``); ``clock_correction_offset`` is how far that time is ahead of the
estimate (positive: device clock fast):

* ``SHIFT_TIMESTAMPS_BWD`` / ``SHIFT_TIMESTAMPS_FWD`` permit applying a positive / negative correction. With
  both (the default) the estimate is returned as is; with one, a correction of the other sign is not applied (the
  offset-shifted device time is returned, jitter-free but drifting); with neither, the receive time is returned.
* ``ADJUST_CLOCK`` (a no-op in Syntalos): hwlink calls the function given to :meth:`set_clock_adjust_callback`
  with ``(clock_correction_offset_usec, skew_ppm)`` whenever the correction moved by more than the tolerance since
  the last call, so a driver that can trim its device clock can do so. Returned timestamps do not depend on it.
* ``WRITE_TSYNCFILE`` writes a SYNCPOINTS tsync file (``device-time`` -> ``master-time``, µs) with a row whenever
  linear interpolation between rows would otherwise miss the returned timestamps by more than a few µs, and
  around every clock step, so edlio/Syntalos rebuild the mapping offline.
"""

from __future__ import annotations

import math
import secrets
import string
import warnings
from collections.abc import Callable
from enum import IntFlag
from pathlib import Path
from typing import Self

from hwlink.errors import ConfigError
from hwlink.sync.estimator import DriftEstimator

SECONDARY_CLOCK_TOLERANCE_USEC = 1000
DEFAULT_CALIBRATION_POINTS = 400
MIN_CALIBRATION_POINTS = 46
TSYNC_ROW_TOLERANCE_USEC = 5  # interpolation between tsync rows stays this close to the returned times
TSYNC_MAX_ROW_INTERVAL_USEC = 60_000_000


class TimeSyncStrategy(IntFlag):
    """Syntalos' strategy flags (same values); they combine with ``|``."""

    NONE = 0
    SHIFT_TIMESTAMPS_FWD = 1
    SHIFT_TIMESTAMPS_BWD = 2
    ADJUST_CLOCK = 4
    WRITE_TSYNCFILE = 8


_FWD, _BWD = int(TimeSyncStrategy.SHIFT_TIMESTAMPS_FWD), int(TimeSyncStrategy.SHIFT_TIMESTAMPS_BWD)
_ADJUST, _TSYNC = int(TimeSyncStrategy.ADJUST_CLOCK), int(TimeSyncStrategy.WRITE_TSYNCFILE)


def random_sync_id() -> str:
    """Syntalos gives an unnamed synchronizer a random 4-character id."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(4))


def syntalos_points_and_tolerance(frequency_hz: float) -> tuple[int, int]:
    """Calibration point count and tolerance (µs) Syntalos derives from an expected frequency."""
    points = math.ceil((frequency_hz + 1 / (0.01 + (frequency_hz / 250) ** 2)) * 10)
    if points > frequency_hz * 90:
        points = math.ceil(frequency_hz * 90)
    points = max(points, MIN_CALIBRATION_POINTS)
    half_period_usec = ((1000 / frequency_hz) / 2) * 1000
    return points, int(math.floor(half_period_usec + 0.5))  # lround: half away from zero (positive here)


class SyncPointRecorder:
    """Writes SYNCPOINTS rows so that linear interpolation between rows reproduces the returned timestamps.

    A row is written when the returned time strays from the line through the last row (with the slope then
    estimated) by more than a few µs, at every clock step, at least once a minute, and for the last pair.
    The previous pair is written first, closing the last linear piece where it was still accurate.
    """

    def __init__(self, path: Path, module_name: str, tolerance_usec: int, collection_id: object = None) -> None:
        from hwlink.sync.tsync import TSyncFileMode, TSyncWriter  # the writer lives with the file format

        self.writer = TSyncWriter(path, mode=TSyncFileMode.SYNCPOINTS, time_names=("device-time", "master-time"),
                                  module_name=module_name, tolerance_us=tolerance_usec,
                                  collection_id=collection_id)  # type: ignore[arg-type]
        self._row: tuple[int, int, float] | None = None  # device, master, slope at the last row
        self._previous: tuple[int, int] | None = None  # last pair seen, if not written

    def record(self, device_usec: int, master_usec: int, step: bool, slope: float) -> None:
        row = self._row
        if row is not None and not step and device_usec - row[0] <= TSYNC_MAX_ROW_INTERVAL_USEC \
                and abs(master_usec - row[1] - (device_usec - row[0]) * (1.0 + row[2])) <= TSYNC_ROW_TOLERANCE_USEC:
            self._previous = (device_usec, master_usec)
            return
        if self._previous is not None:
            self.writer.add(*self._previous)
            self._previous = None
        self.writer.add(device_usec, master_usec)
        self._row = (device_usec, master_usec, slope)

    def flush(self) -> None:
        """Make the rows so far, up to the latest pair, survive a crash (the file stays open)."""
        if self._previous is not None and self._row is not None:
            self.writer.add(*self._previous)  # on the line through the last row, so its slope still holds
            self._row = (*self._previous, self._row[2])
            self._previous = None
        self.writer.flush()

    def close(self) -> None:
        if self._previous is not None:
            self.writer.add(*self._previous)
            self._previous = None
        self.writer.close()


class SyncPointOutput:
    """What both synchronizers share: an id, strategy bits, a tolerance and the optional tsync file of sync points."""

    def __init__(self, id: str | None) -> None:  # noqa: A002 - Syntalos name
        self.id = id or random_sync_id()
        self._strategy_bits = _FWD | _BWD  # a plain int: IntFlag operators cost a microsecond each
        self._tolerance_usec = SECONDARY_CLOCK_TOLERANCE_USEC
        self._tsync_path: Path | None = None
        self._collection_id: object = None  # the EDL collection the tsync file belongs to (written in its header)
        self._recorder: SyncPointRecorder | None = None
        self._started = False
        self._stopped = False

    def set_tsync_file_path(self, path: str | Path | None) -> None:
        """Where WRITE_TSYNCFILE writes (``.tsync`` appended if missing); like Syntalos' basename setter,
        a path sets WRITE_TSYNCFILE and an empty one clears it."""
        if self._started and not self._stopped:
            raise ConfigError("cannot change the tsync file of a running synchronizer")
        if path is None or str(path) == "":
            self._tsync_path = None
            self._strategy_bits &= ~_TSYNC
            return
        path = Path(path)
        self._tsync_path = path if path.suffix == ".tsync" else path.with_name(path.name + ".tsync")
        self._strategy_bits |= _TSYNC

    def set_collection_id(self, collection_id: object) -> None:
        """The id (UUID) of the EDL collection the tsync file goes into, for its header (as Syntalos writes it)."""
        self._collection_id = collection_id

    @property
    def strategies(self) -> TimeSyncStrategy:
        return TimeSyncStrategy(self._strategy_bits)

    @property
    def tolerance_usec(self) -> int:
        return self._tolerance_usec

    @property
    def tsync_file_path(self) -> Path | None:
        return self._tsync_path

    def _begin(self) -> bool:
        """Open the tsync output (with WRITE_TSYNCFILE); False if this instance already ran."""
        if self._started:
            warnings.warn(f"synchronizer {self.id}: cannot be restarted", RuntimeWarning, stacklevel=3)
            return False
        if self._strategy_bits & _TSYNC:
            if self._tsync_path is None:
                raise ConfigError(f"synchronizer {self.id}: WRITE_TSYNCFILE needs set_tsync_file_path(path)")
            self._recorder = SyncPointRecorder(self._tsync_path, f"hwlink::{self.id}", self._tolerance_usec,
                                               self._collection_id)
        self._started = True
        return True

    def flush(self) -> None:
        """Put the sync points so far on disk, so a crashed recording keeps its mapping (WRITE_TSYNCFILE)."""
        if self._recorder is not None:
            self._recorder.flush()

    def stop(self) -> None:
        """Write the last pair and close the tsync file; safe to call more than once."""
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None
        self._stopped = True

    def start(self) -> bool:
        return self._begin()

    def __enter__(self) -> Self:
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class SecondaryClockSynchronizer(SyncPointOutput):
    """Maps (master receive time, device time) pairs to corrected master timestamps, modelling offset and drift.

    Differences from Syntalos on purpose: output is corrected from the first pair (``is_calibrated`` once the
    estimate is drift-aware, about one second of data); ``calibration_points_count`` is kept for API
    compatibility only; device clock steps and backwards timestamps re-calibrate instead of producing garbage.
    """

    def __init__(self, expected_frequency_hz: float = 0, id: str | None = None) -> None:  # noqa: A002 - Syntalos name
        super().__init__(id)
        self._calibration_points = DEFAULT_CALIBRATION_POINTS
        self._expected_frequency_hz = 0.0
        self._clock_adjust_callback: Callable[[int, float], None] | None = None
        self._min_latency_usec = 0
        self._counter_bits: int | None = None
        self._reset_state()
        if expected_frequency_hz > 0:
            self.set_expected_clock_frequency_hz(expected_frequency_hz)

    def _reset_state(self) -> None:
        self._estimator = DriftEstimator(min_latency_usec=self._min_latency_usec, counter_bits=self._counter_bits)
        self._calibrated = False
        self._expected_offset = 0
        self._correction = 0
        self._last_output: int | None = None
        self._last_adjust_correction = 0

    # -- configuration (locked once calibrated, as in Syntalos) ---------------------------------------------

    def _configurable(self, what: str) -> bool:
        if self._calibrated:
            warnings.warn(f"synchronizer {self.id}: cannot change {what} once calibrated; ignored",
                          RuntimeWarning, stacklevel=3)
            return False
        return True

    def set_calibration_points_count(self, count: int) -> None:
        if self._configurable("the calibration point count"):
            self._calibration_points = max(int(count), MIN_CALIBRATION_POINTS)

    def set_expected_clock_frequency_hz(self, frequency_hz: float) -> None:
        """As Syntalos: tolerance becomes half a sample period (the point count is kept for compatibility)."""
        if frequency_hz <= 0:
            warnings.warn(f"synchronizer {self.id}: ignoring expected frequency {frequency_hz} <= 0",
                          RuntimeWarning, stacklevel=2)
            return
        if self._configurable("the expected frequency"):
            self._expected_frequency_hz = float(frequency_hz)
            self._calibration_points, self._tolerance_usec = syntalos_points_and_tolerance(frequency_hz)

    def set_strategies(self, strategies: int) -> None:
        if self._configurable("the strategies"):
            self._strategy_bits = int(TimeSyncStrategy(int(strategies)))

    def set_tolerance(self, tolerance_usec: int) -> None:
        """Threshold for clock-adjust callbacks (ADJUST_CLOCK); also written to the tsync header."""
        if int(tolerance_usec) <= 0:
            raise ConfigError(f"tolerance must be positive, got {tolerance_usec}")
        if self._configurable("the tolerance"):
            self._tolerance_usec = int(tolerance_usec)

    set_tolerance_usec = set_tolerance

    def set_min_latency_usec(self, latency_usec: int) -> None:
        """The device's known minimum transport delay (one-way data cannot reveal it), subtracted from output."""
        if int(latency_usec) < 0:
            raise ConfigError(f"minimum latency must not be negative, got {latency_usec}")
        if self._configurable("the minimum latency"):
            self._min_latency_usec = int(latency_usec)
            self._estimator.min_latency_usec = self._min_latency_usec

    def set_device_counter_bits(self, bits: int | None) -> None:
        """The width of the device's timestamp counter (e.g. 32 for µs in a uint32): when it wraps, the stamps
        are unwrapped instead of taken for a clock reset. Without it an obvious wrap (a backwards jump of a power
        of two matching the master clock's advance) is unwrapped too; ``None`` goes back to that."""
        self._counter_bits = None if bits is None else int(bits)
        self._estimator.set_counter_bits(self._counter_bits)

    def set_clock_adjust_callback(self, callback: Callable[[int, float], None] | None) -> None:
        """``callback(clock_correction_offset_usec, skew_ppm)``, called under ADJUST_CLOCK (see module doc)."""
        self._clock_adjust_callback = callback

    # -- read-only state ------------------------------------------------------------------------------------

    @property
    def calibration_points_count(self) -> int:
        return self._calibration_points

    @property
    def expected_clock_frequency_hz(self) -> float:
        return self._expected_frequency_hz

    @property
    def is_calibrated(self) -> bool:
        return self._calibrated

    @property
    def expected_offset_to_master_usec(self) -> int:
        """Device minus master time at calibration (re-based at clock steps so the correction stays smooth)."""
        return self._expected_offset

    @property
    def clock_correction_offset(self) -> int:
        """What the device clock has gained on the master clock since calibration, µs (negative: device slow).

        The device-minus-master offset now is ``expected_offset_to_master_usec + clock_correction_offset``; e.g. a
        device 2 s ahead and 50 ppm fast reads ≈ 1 999 850 (2 s, plus 1 s of drift, less the unseen minimum
        latency of 200 µs) and, 20 s in, ≈ +950 (50 ppm × the 19 s since calibration).
        """
        return self._correction

    clock_correction_offset_usec = clock_correction_offset

    @property
    def skew_ppm(self) -> float:
        """Estimated device clock rate error (positive: device clock fast)."""
        return self._estimator.skew_ppm

    @property
    def clock_resets(self) -> int:
        """Device clock steps and backwards timestamps seen so far."""
        return self._estimator.resets

    # -- run ---------------------------------------------------------------------------------------------------

    def start(self) -> bool:
        """Reset and (with WRITE_TSYNCFILE) open the tsync file. One run per instance, as in Syntalos."""
        if not self._started:
            self._reset_state()
        return self._begin()

    def process_timestamp(self, master_usec: int, secondary_usec: int) -> int:
        """The corrected master timestamp (µs) of a message the device stamped ``secondary_usec``."""
        if not self._started:
            self.start()
        master = int(master_usec)
        estimator = self._estimator
        event = estimator.add(int(secondary_usec), master)
        estimate = estimator.master_time(int(secondary_usec))
        secondary = int(secondary_usec) + estimator.wrap_offset  # unwrapped device time
        if estimate > master:
            estimate = master  # nothing arrives before it happened
        if not self._calibrated:
            self._expected_offset = math.floor(secondary - estimate + 0.5)
            self._calibrated = estimator.span_usec >= estimator.min_span_usec
        elif event:
            # re-calibrate at a clock step: keep the correction continuous, re-base the expected offset
            self._expected_offset = math.floor(secondary - estimate + 0.5) - self._correction
        shifted = secondary - self._expected_offset
        correction = math.floor(shifted - estimate + 0.5)
        self._correction = correction
        strategies = self._strategy_bits
        shift_bwd = strategies & _BWD
        shift_fwd = strategies & _FWD
        if shift_bwd and shift_fwd or shift_bwd and correction >= 0 or shift_fwd and correction <= 0:
            output = math.floor(estimate + 0.5)
        elif shift_bwd or shift_fwd:
            output = min(shifted, master)
        else:
            output = master
        last = self._last_output
        if last is not None and output < last:
            output = last
        if self._recorder is not None:
            self._recorder.record(secondary, output, bool(event), estimator.slope)
        if strategies & _ADJUST and self._clock_adjust_callback is not None \
                and self._calibrated and abs(correction - self._last_adjust_correction) > self._tolerance_usec:
            self._last_adjust_correction = correction
            self._clock_adjust_callback(correction, estimator.skew_ppm)
        self._last_output = output
        return output
