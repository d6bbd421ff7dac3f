"""Families of clocks and links for testing clock sync beyond a grid: crystal wander, rate steps, stair-shaped and
bursty latency, slow events, counters that wrap, resets and gaps.

Each family is a generator of (true event time, device stamp, master arrival) over a whole run, drawn with numpy.
:data:`CONDITIONS` names concrete runs of them (``hwlink sync simulate --condition NAME``, the benchmark and the
tests use the same names), so a user can see how a link like theirs behaves.

Device clock: ``device(t) = offset + t + drift*t + wander(t) + rate steps + clock steps`` (µs), where wander is a
temperature-like sinusoid of the *rate* (``±amplitude`` ppm with a period), so the offset bends as an arc. Events
happen every ``1/rate`` of *device* time (a device samples on its own crystal). Stamps are whole µs, reduced
modulo ``2**counter_bits`` when the device counter is that narrow; a reset sets the device time back to zero.

Latency (one-sided, FIFO, never reordering):

* ``exp`` — exponential with a mean; ``gamma`` — a floor plus gamma (shape 2) with a mean;
* ``usb`` — released at the end of the next 1 ms full-speed frame, plus 50 µs to the host's timestamp;
* ``timer`` — a USB-serial adapter's latency timer: bytes are held until the timer (1-16 ms) fires, so arrivals
  come in bursts on a grid of that period (then a USB frame);
* ``ble`` — a wireless connection interval (7.5-50 ms): a packet leaves at the next connection event; with a
  probability a retransmission stall holds it (and everything behind it) for tens to hundreds of ms;
* ``ethernet`` — a floor plus exponential jitter, and bursts of congestion (every ~10 s, ~0.2 s long) adding
  milliseconds;
plus optional spikes (rare extra delays). ``floor_usec`` is the smallest delay the link can have: no one-way method
can see it, so errors are judged beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from hwlink.errors import ConfigError
from hwlink.sync.clockmodel import USB_HOST_DELAY_USEC
from hwlink.sync.simulation import SimulatedPairs

MINUTE = 60_000_000


@dataclass(frozen=True)
class WanderClock:
    """A device crystal: offset, drift, sinusoidal rate wander, rate steps, clock steps, resets, counter width."""

    offset_usec: float = -1_234_567.0
    drift_ppm: float = 0.0
    wander_ppm: float = 0.0  # amplitude of the rate's sinusoid
    wander_period_usec: float = 20 * MINUTE
    wander_phase: float = 0.0
    rate_steps: tuple[tuple[float, float], ...] = ()  # (master time, ppm added from then on)
    steps: tuple[tuple[float, float], ...] = ()  # (master time, µs the device clock jumps)
    resets: tuple[float, ...] = ()  # master times at which the device time restarts from zero
    counter_bits: int = 64

    def smooth(self, t: np.ndarray) -> np.ndarray:
        """Device time without steps or resets (float µs)."""
        t = np.asarray(t, dtype=np.float64)
        device = self.offset_usec + t * (1 + self.drift_ppm * 1e-6)
        if self.wander_ppm:
            omega = 2 * np.pi / self.wander_period_usec
            # rate error wander_ppm * sin(omega t + phase), integrated
            device = device + self.wander_ppm * 1e-6 / omega * (np.cos(self.wander_phase)
                                                                 - np.cos(omega * t + self.wander_phase))
        for at, ppm in self.rate_steps:
            device = device + np.where(t >= at, (t - at) * ppm * 1e-6, 0.0)
        return device

    def rate(self, t: np.ndarray) -> np.ndarray:
        """d(device)/d(master)."""
        t = np.asarray(t, dtype=np.float64)
        rate = 1 + self.drift_ppm * 1e-6 + np.zeros_like(t)
        if self.wander_ppm:
            omega = 2 * np.pi / self.wander_period_usec
            rate = rate + self.wander_ppm * 1e-6 * np.sin(omega * t + self.wander_phase)
        for at, ppm in self.rate_steps:
            rate = rate + np.where(t >= at, ppm * 1e-6, 0.0)
        return rate

    def device_time(self, t: np.ndarray) -> np.ndarray:
        """Device time with clock steps and resets (float µs, before the counter's width)."""
        t = np.asarray(t, dtype=np.float64)
        device = self.smooth(t)
        for at, step in self.steps:
            device = device + np.where(t >= at, step, 0.0)
        for at in sorted(self.resets):
            at_device = float(self.device_time_before(at))
            device = np.where(t >= at, device - at_device, device)
        return device

    def device_time_before(self, at: float) -> float:
        earlier = WanderClock(self.offset_usec, self.drift_ppm, self.wander_ppm, self.wander_period_usec,
                              self.wander_phase, self.rate_steps, tuple(s for s in self.steps if s[0] < at),
                              tuple(r for r in self.resets if r < at))
        return float(earlier.device_time(np.array([at]))[0])

    def stamps(self, t: np.ndarray) -> np.ndarray:
        """What the device reports: whole µs modulo its counter's width."""
        stamps = np.floor(self.device_time(t)).astype(np.int64)
        if self.counter_bits < 64:
            stamps = np.mod(stamps, np.int64(1) << self.counter_bits)
        return stamps

    def event_times(self, rate_hz: float, duration_usec: float, rng: np.random.Generator) -> np.ndarray:
        """Master times of events every ``1/rate_hz`` of smooth device time within ``[0, duration)``."""
        period = 1e6 / rate_hz
        first = float(self.smooth(np.array([0.0]))[0]) + rng.uniform(0, period)
        ticks = first + period * np.arange(int(duration_usec * (1 + 1e-3) / period) + 2, dtype=np.float64)
        events = ticks - self.offset_usec
        for _ in range(4):  # Newton on the smooth clock (its rate is within a percent of 1)
            events -= (self.smooth(events) - ticks) / self.rate(events)
        return events[(events >= 0) & (events < duration_usec)]


@dataclass(frozen=True)
class LinkLatency:
    """A transport family (see the module doc) and its parameters (µs)."""

    kind: str = "exp"
    mean_usec: float = 1000.0  # exp/gamma/ethernet jitter mean
    floor_param_usec: float = 0.0  # gamma/ethernet floor
    interval_usec: float = 1000.0  # timer period / BLE connection interval
    stall_probability: float = 0.0  # BLE: a packet needs retransmissions
    stall_low_usec: float = 20_000.0
    stall_high_usec: float = 300_000.0
    spike_probability: float = 0.0
    spike_low_usec: float = 5_000.0
    spike_high_usec: float = 20_000.0

    @property
    def constant_usec(self) -> float:
        """The delay every message has (as :attr:`LatencyModel.constant_usec`)."""
        return self.floor_usec

    @property
    def floor_usec(self) -> float:
        """The smallest delay this link can give: invisible in one-way data."""
        if self.kind in ("gamma", "ethernet"):
            return self.floor_param_usec
        if self.kind in ("usb", "timer"):
            return USB_HOST_DELAY_USEC
        return 0.0

    def arrivals(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        t = np.asarray(events, dtype=np.float64)
        n = t.size
        if self.kind == "exp":
            arrival = t + rng.exponential(self.mean_usec, n)
        elif self.kind == "gamma":
            arrival = t + self.floor_param_usec + rng.gamma(2.0, self.mean_usec / 2.0, n)
        elif self.kind == "usb":
            arrival = np.ceil(t / 1000.0) * 1000.0 + USB_HOST_DELAY_USEC
        elif self.kind == "timer":
            phase = rng.uniform(0, self.interval_usec)
            fire = np.ceil((t - phase) / self.interval_usec) * self.interval_usec + phase
            arrival = np.ceil(fire / 1000.0) * 1000.0 + USB_HOST_DELAY_USEC
        elif self.kind == "ble":
            phase = rng.uniform(0, self.interval_usec)
            arrival = np.ceil((t - phase) / self.interval_usec) * self.interval_usec + phase
            stalled = rng.random(n) < self.stall_probability
            stall = rng.uniform(self.stall_low_usec, self.stall_high_usec, n)
            # a stall lasts whole connection intervals
            arrival = arrival + stalled * np.ceil(stall / self.interval_usec) * self.interval_usec
        elif self.kind == "ethernet":
            arrival = t + self.floor_param_usec + rng.exponential(self.mean_usec, n)
            duration = float(t[-1]) if n else 0.0
            starts = np.cumsum(rng.exponential(10e6, int(duration / 10e6) + 4))
            starts = starts[starts < duration + 1]
            extra = rng.uniform(500, 5_000, starts.size)
            burst = np.searchsorted(starts, t, side="right") - 1  # the latest burst begun before each event
            inside = (burst >= 0) & (t < starts[np.maximum(burst, 0)] + 200_000)
            arrival = arrival + np.where(inside, extra[np.maximum(burst, 0)], 0.0)
        else:
            raise ConfigError(f"unknown link kind {self.kind!r}")
        if self.spike_probability > 0:
            spiking = rng.random(n) < self.spike_probability
            arrival = arrival + spiking * rng.uniform(self.spike_low_usec, self.spike_high_usec, n)
        return np.maximum.accumulate(arrival) if n else arrival


@dataclass(frozen=True)
class Condition:
    """One run of a family: what the device clock does, what the link does, how often events come."""

    name: str
    rate_hz: float
    clock: WanderClock
    link: LinkLatency
    duration_usec: int
    gaps: tuple[tuple[int, int], ...] = ()
    description: str = ""
    tags: frozenset[str] = field(default_factory=frozenset)

    def pairs(self, seed: int = 0) -> SimulatedPairs:
        rng = np.random.default_rng(seed)
        clock = self.clock
        if clock.wander_ppm:  # each seed its own phase of the wander
            clock = replace(clock, wander_phase=float(rng.uniform(0, 2 * np.pi)))
        events = clock.event_times(self.rate_hz, self.duration_usec, rng)
        keep = np.ones(events.size, dtype=bool)
        for at, length in self.gaps:
            keep &= ~((events >= at) & (events < at + length))
        events = events[keep]
        secondary = clock.stamps(events)
        master = np.floor(self.link.arrivals(events, rng)).astype(np.int64)
        return SimulatedPairs(events, secondary, master)

    def with_duration(self, duration_usec: int) -> Condition:
        """The same run shortened or lengthened (events scheduled at fractions of the run move with it)."""
        scale = duration_usec / self.duration_usec
        clock = replace(self.clock,
                        rate_steps=tuple((at * scale, ppm) for at, ppm in self.clock.rate_steps),
                        steps=tuple((at * scale, step) for at, step in self.clock.steps),
                        resets=tuple(at * scale for at in self.clock.resets))
        gaps = tuple((int(at * scale), length) for at, length in self.gaps)
        return replace(self, clock=clock, duration_usec=int(duration_usec), gaps=gaps)

    @property
    def floor_usec(self) -> float:
        return self.link.floor_usec

    @property
    def latency(self) -> LinkLatency:
        return self.link

    @property
    def first_event_usec(self) -> float | None:
        times = [at for at, _ in self.clock.steps] + list(self.clock.resets) + [at for at, _ in self.gaps]
        return min(times) if times else None


def _conditions() -> dict[str, Condition]:
    exp1 = LinkLatency("exp", mean_usec=1000)
    usb = LinkLatency("usb", spike_probability=0.05)
    found: list[Condition] = []

    def add(name: str, rate: float, clock: WanderClock, link: LinkLatency, minutes: float, description: str,
            gaps: tuple[tuple[int, int], ...] = (), tags: tuple[str, ...] = ()) -> None:
        found.append(Condition(name, rate, clock, link, int(minutes * MINUTE), gaps, description, frozenset(tags)))

    add("exp-30hz", 30, WanderClock(drift_ppm=50), exp1, 20, "30 Hz, 50 ppm, exponential 1 ms")
    add("usb-30hz", 30, WanderClock(drift_ppm=10), usb, 20, "30 Hz, 10 ppm, USB 1 ms frames + 5 % spikes",
        tags=("stairs",))
    add("usb-1khz", 1000, WanderClock(drift_ppm=3), usb, 20, "1 kHz, 3 ppm, USB frames + 5 % spikes",
        tags=("stairs",))
    add("exp-10khz", 10_000, WanderClock(drift_ppm=20), LinkLatency("exp", mean_usec=200), 5,
        "10 kHz, 20 ppm, exponential 0.2 ms")
    add("wander-5ppm-5min", 100, WanderClock(drift_ppm=20, wander_ppm=5, wander_period_usec=5 * MINUTE), exp1, 20,
        "100 Hz, crystal wander ±5 ppm with a 5-minute period, exponential 1 ms", tags=("wander",))
    add("wander-20ppm-20min", 100, WanderClock(drift_ppm=-30, wander_ppm=20, wander_period_usec=20 * MINUTE),
        exp1, 40, "100 Hz, wander ±20 ppm with a 20-minute period, exponential 1 ms", tags=("wander",))
    add("wander-1ppm-60min-usb", 30, WanderClock(drift_ppm=2, wander_ppm=1, wander_period_usec=60 * MINUTE),
        usb, 60, "30 Hz, wander ±1 ppm with a 60-minute period, USB frames", tags=("wander", "stairs"))
    add("rate-step", 100, WanderClock(drift_ppm=10, rate_steps=((10 * MINUTE, 15.0),)), exp1, 20,
        "100 Hz, the rate jumps by 15 ppm after 10 min (a heater switched on)")
    add("gamma-floor", 200, WanderClock(drift_ppm=-40), LinkLatency("gamma", mean_usec=400, floor_param_usec=300),
        20, "200 Hz, -40 ppm, 0.3 ms floor + gamma(2) of mean 0.4 ms")
    add("ftdi-16ms-30hz", 30, WanderClock(drift_ppm=20), LinkLatency("timer", interval_usec=16_000), 20,
        "30 Hz over a USB-serial adapter with a 16 ms latency timer", tags=("stairs",))
    add("ftdi-1ms-1khz", 1000, WanderClock(drift_ppm=20), LinkLatency("timer", interval_usec=1_000), 10,
        "1 kHz over a USB-serial adapter with a 1 ms latency timer", tags=("stairs",))
    add("ble-7.5ms-50hz", 50, WanderClock(drift_ppm=30),
        LinkLatency("ble", interval_usec=7_500, stall_probability=0.002), 20,
        "50 Hz over BLE, 7.5 ms connection interval, retransmission stalls 20-300 ms", tags=("stairs",))
    add("ble-30ms-10hz", 10, WanderClock(drift_ppm=-15),
        LinkLatency("ble", interval_usec=30_000, stall_probability=0.005), 30,
        "10 Hz over BLE, 30 ms connection interval, stalls", tags=("stairs",))
    add("ethernet-bursts", 500, WanderClock(drift_ppm=5),
        LinkLatency("ethernet", mean_usec=50, floor_param_usec=120), 20,
        "500 Hz over Ethernet: 0.12 ms floor, 50 µs jitter, congestion bursts of 0.5-5 ms")
    add("events-1hz", 1, WanderClock(drift_ppm=40), exp1, 60, "1 Hz trial events, exponential 1 ms")
    add("events-0.1hz", 0.1, WanderClock(drift_ppm=40), exp1, 240, "0.1 Hz trial events, exponential 1 ms")
    add("counter32-wrap", 100, WanderClock(offset_usec=2**32 - 5 * MINUTE, drift_ppm=25, counter_bits=32), exp1, 20,
        "100 Hz, a 32-bit µs counter wrapping after 5 min")
    add("counter16-wrap", 1000, WanderClock(drift_ppm=25, counter_bits=16), LinkLatency("exp", mean_usec=300), 5,
        "1 kHz, a 16-bit µs counter (wraps every 65.5 ms)")
    add("step-forward", 100, WanderClock(drift_ppm=60, steps=((7 * MINUTE, 50_000),)), usb, 20,
        "100 Hz, the device clock jumps 50 ms ahead after 7 min", tags=("events",))
    add("step-back", 100, WanderClock(drift_ppm=60, steps=((7 * MINUTE, -50_000),)), usb, 20,
        "100 Hz, the device clock jumps 50 ms back after 7 min", tags=("events",))
    add("reset-zero", 100, WanderClock(drift_ppm=60, resets=(7 * MINUTE,)), exp1, 20,
        "100 Hz, the device restarts its clock from zero after 7 min", tags=("events",))
    add("gaps", 100, WanderClock(drift_ppm=30, wander_ppm=3, wander_period_usec=10 * MINUTE), exp1, 20,
        "100 Hz, wander ±3 ppm, gaps of 30 s and 3 min in the data",
        gaps=((5 * MINUTE, 30_000_000), (11 * MINUTE, 3 * MINUTE)), tags=("events",))
    return {c.name: c for c in found}


CONDITIONS: dict[str, Condition] = _conditions()


def condition(name: str) -> Condition:
    try:
        return CONDITIONS[name]
    except KeyError:
        raise ConfigError(f"unknown condition {name!r}; choose from {', '.join(CONDITIONS)}") from None


def oracle_output(condition_: Condition, pairs: SimulatedPairs) -> np.ndarray:
    """An estimator that knows the true rate (the event's master time up to one constant per clock segment) and
    takes the smallest delay seen so far in the segment: what the data can show at best, causally."""
    events, master = pairs.event_usec, pairs.master_usec.astype(np.float64)
    delay = master - events
    out = np.empty(events.size)
    bounds = [0, *segment_starts(condition_, events), events.size]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        out[lo:hi] = events[lo:hi] + np.minimum.accumulate(delay[lo:hi])
    return out


def segment_starts(condition_: Condition, events: np.ndarray) -> list[int]:
    """Indices where a clock step or reset begins a new segment of the device clock."""
    times = sorted([at for at, _ in condition_.clock.steps] + list(condition_.clock.resets))
    return [int(i) for i in np.searchsorted(events, times) if 0 < i < events.size]


