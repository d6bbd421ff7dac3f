"""Models of a secondary device clock and of the transport between device and host.

The simulated board uses them in real time; the synchronizer tests and benchmarks use the same models in
simulated time over whole arrays, so what is measured offline is what the board does live.

Spec strings (used in ``sim://`` URLs and ``hwlink sync simulate``):

* latency: ``none`` | ``const:1ms`` | ``exp:1ms`` (base 0, exponential mean) | ``uniform:0.5ms-2ms`` |
  ``usb:1ms`` (arrival at the next USB frame boundary of that length, plus 50 µs)
* spikes: ``P:LOW-HIGH`` e.g. ``0.05:5ms-20ms`` — each message independently delayed by an extra
  uniform LOW..HIGH with probability P.
* steps: ``AT:STEP[,AT:STEP...]`` e.g. ``30s:+50ms`` — the device clock jumps by STEP at master time AT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwlink.errors import ConfigError
from hwlink.units import parse_duration_usec


@dataclass(frozen=True)
class DeviceClock:
    """Device time as a function of master time: offset, constant drift, linear drift change, steps."""

    offset_usec: float = 0.0
    drift_ppm: float = 0.0
    drift_change_ppm_per_hour: float = 0.0
    steps: tuple[tuple[int, int], ...] = ()

    def device_time(self, master_usec: np.ndarray | float) -> np.ndarray:
        t = np.asarray(master_usec, dtype=np.float64)
        rate_change_per_usec = self.drift_change_ppm_per_hour * 1e-6 / 3.6e9
        device = self.offset_usec + t * (1.0 + self.drift_ppm * 1e-6) + 0.5 * rate_change_per_usec * t * t
        for at_usec, step_usec in self.steps:
            device = device + np.where(t >= at_usec, float(step_usec), 0.0)
        return device

    def device_time_int(self, master_usec: np.ndarray | float) -> np.ndarray:
        """Device timestamps as the device would report them: whole microseconds."""
        return np.floor(self.device_time(master_usec)).astype(np.int64)


USB_HOST_DELAY_USEC = 50.0  # from the end of a USB frame to the host's receive timestamp


@dataclass(frozen=True)
class LatencyModel:
    """One-sided transport delay from device to host; FIFO like a serial line (no reordering)."""

    kind: str = "none"
    a_usec: float = 0.0
    b_usec: float = 0.0
    spike_probability: float = 0.0
    spike_low_usec: float = 0.0
    spike_high_usec: float = 0.0
    spec: str = field(default="none", compare=False)

    def arrival_times(self, event_usec: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Host arrival times (float µs) of messages sent at ``event_usec`` (sorted)."""
        t = np.asarray(event_usec, dtype=np.float64)
        n = t.shape[0]
        if self.kind == "none":
            arrival = t.copy()
        elif self.kind == "const":
            arrival = t + self.a_usec
        elif self.kind == "exp":
            arrival = t + rng.exponential(self.a_usec, n)
        elif self.kind == "uniform":
            arrival = t + rng.uniform(self.a_usec, self.b_usec, n)
        elif self.kind == "usb":
            frame = self.a_usec
            arrival = np.ceil(t / frame) * frame + USB_HOST_DELAY_USEC
        else:  # pragma: no cover - parse_latency rejects other kinds
            raise ConfigError(f"unknown latency kind {self.kind!r}")
        if self.spike_probability > 0:
            spiking = rng.random(n) < self.spike_probability
            arrival = arrival + spiking * rng.uniform(self.spike_low_usec, self.spike_high_usec, n)
        return np.maximum.accumulate(arrival) if n else arrival

    @property
    def constant_usec(self) -> float:
        """The delay every message has (the model's minimum): invisible in one-way data, so no estimator removes
        it unless told (``set_min_latency_usec``)."""
        if self.kind in ("const", "uniform"):
            return self.a_usec
        return USB_HOST_DELAY_USEC if self.kind == "usb" else 0.0

    def with_spikes(self, spec: str | None) -> LatencyModel:
        if not spec:
            return self
        try:
            probability_text, range_text = spec.split(":", 1)
            low_text, high_text = range_text.split("-", 1)
            probability = float(probability_text)
        except ValueError:
            raise ConfigError(f"bad spikes {spec!r}: expected P:LOW-HIGH, e.g. 0.05:5ms-20ms") from None
        if not 0 <= probability <= 1:
            raise ConfigError(f"bad spikes {spec!r}: probability must be within 0..1")
        low, high = parse_duration_usec(low_text), parse_duration_usec(high_text)
        if high < low:
            raise ConfigError(f"bad spikes {spec!r}: HIGH must not be below LOW")
        return LatencyModel(self.kind, self.a_usec, self.b_usec, probability, low, high, f"{self.spec}+{spec}")


def parse_latency(spec: str) -> LatencyModel:
    """Build a LatencyModel from a spec string (see the module docstring)."""
    text = spec.strip()
    if text in ("", "none", "0"):
        return LatencyModel()
    kind, _, argument = text.partition(":")
    try:
        if kind in ("const", "exp", "usb"):
            value = parse_duration_usec(argument)
            if kind == "usb" and value <= 0:
                raise ConfigError("usb frame length must be positive")
            return LatencyModel(kind, float(value), spec=text)
        if kind == "uniform":
            low_text, high_text = argument.split("-", 1)
            low, high = parse_duration_usec(low_text), parse_duration_usec(high_text)
            if high < low:
                raise ConfigError("HIGH must not be below LOW")
            return LatencyModel(kind, float(low), float(high), spec=text)
    except (ConfigError, ValueError) as error:
        raise ConfigError(f"bad latency {spec!r}: {error}") from None
    raise ConfigError(f"bad latency {spec!r}: use none, const:T, exp:MEAN, uniform:LOW-HIGH or usb:FRAME")


def parse_steps(spec: str) -> tuple[tuple[int, int], ...]:
    """'30s:+50ms,90s:-50ms' -> ((30_000_000, 50_000), (90_000_000, -50_000))."""
    steps = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        at_text, sep, step_text = part.partition(":")
        if not sep:
            raise ConfigError(f"bad clock step {part!r}: expected AT:STEP, e.g. 30s:+50ms")
        steps.append((parse_duration_usec(at_text), parse_duration_usec(step_text, allow_negative=True)))
    return tuple(sorted(steps))
