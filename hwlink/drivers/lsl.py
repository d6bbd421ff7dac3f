"""``lsl://`` — a Lab Streaming Layer stream as a board of input lines (extra ``[lsl]``: pylsl with its liblsl).

URL: ``lsl://?name=NAME``, ``lsl://?type=TYPE``, ``lsl://?source_id=ID`` (any combination; all must match), with

=================  ==========================================================================================
``timeout``        how long to look for the stream (default ``5s``); if none matches, the error lists the
                   streams that were seen
``tsync``          also write the driver's clock sync (LSL time µs -> master µs) to this tsync file
=================  ==========================================================================================

Each channel is an input line named after the stream's channel label (``desc/channels/channel/label``, else
``ch0``, ``ch1``...), with the channel's ``unit``; ``line_units`` gives them. Numeric streams with a nominal
rate are analog inputs delivered as :class:`SignalBlock` s (one per pulled chunk; per-sample readings go to
subscriptions that name lines, as with ``nidaq://``). Irregular numeric streams and int/string marker streams are
event lines: every sample gives one :class:`LineReading` per channel that holds a value (NaN means "no reading on
this line", which is how hwlink's own outlets put several lines in one stream). String markers become codes
(``marker_codes``: text -> code, from 1 in order of appearance; text that is an integer keeps its value).

Clocks: the LSL timestamp of each sample (the sender's ``local_clock()``) is the device clock
(``device_time_usec``). It is mapped onto hwlink's master clock by hwlink's own
:class:`~hwlink.sync.SecondaryClockSynchronizer` (the lower envelope of the one-sided arrival times: offset and
drift, jitter rejected), with liblsl's ``time_correction()`` as the prior for what one-sided data cannot reveal,
the transport's least delay (see ``LslBoard._synchronize``). ``time_usec`` of every reading and block is that
synchronized master time. The sync points can be written to a tsync file (``tsync=``), and ``hwlink record``
writes its own per event line, so the mapping can be redone offline.

liblsl reads its configuration once per process, from ``LSLAPICFG`` (see :data:`LOOPBACK_CONFIG`, which keeps all
LSL traffic on 127.0.0.1: hwlink's tests and benchmarks use it).
"""

from __future__ import annotations

import collections
import math
import statistics
import os
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from hwlink.clock import MasterClock
from hwlink.drivers import BoardDescription
from hwlink.drivers.base import Board
from hwlink.drivers.lineinfo import LineInfo, LineMode
from hwlink.errors import BoardError, ConfigError
from hwlink.lines import LineReading, SignalBlock
from hwlink.sync.secondary import SecondaryClockSynchronizer, SyncPointRecorder
from hwlink.units import parse_duration_usec

LOOPBACK_CONFIG = Path(__file__).with_name("lsl_loopback.cfg")
"""A liblsl configuration keeping discovery and data on 127.0.0.1 (machine scope, KnownPeers 127.0.0.1 only)."""

DEFAULT_TIMEOUT_USEC = 5_000_000
PULL_TIMEOUT_S = 0.05
MAX_CHUNK = 4096
_FLOAT_FORMATS = {"float32": 32, "double64": 64}
_INT_FORMATS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}


def import_pylsl() -> Any:
    """pylsl, or a one-line error saying how to get it."""
    try:
        import pylsl
    except ImportError:
        raise ConfigError("lsl:// needs pylsl: pip install 'hwlink[lsl]'") from None
    except RuntimeError as error:  # pylsl raises RuntimeError when it finds no liblsl
        raise ConfigError(f"lsl:// cannot load liblsl: {error}") from None
    return pylsl


def lsl_time_of(clock: MasterClock, master_usec: Any) -> Any:
    """LSL time (s, ``pylsl.local_clock()``) of master µs. Both clocks count CLOCK_MONOTONIC on one machine."""
    return (clock.start_ns + np.asarray(master_usec, dtype=np.float64) * 1000.0) / 1e9


def master_usec_of(clock: MasterClock, lsl_seconds: Any) -> Any:
    """Master µs (float) of a local LSL time in seconds."""
    return np.asarray(lsl_seconds, dtype=np.float64) * 1e6 - clock.start_ns / 1000.0


def describe_stream(info: Any) -> str:
    """'NAME (TYPE, 4 ch float32 @ 500 Hz, source_id X, host H)' for error messages and listings."""
    rate = info.nominal_srate()
    rate_text = f"{rate:g} Hz" if rate > 0 else "irregular"
    source = f", source_id {info.source_id()}" if info.source_id() else ""
    return (f"{info.name()} ({info.type() or 'no type'}, {info.channel_count()} ch "
            f"{_format_name(info)} @ {rate_text}{source}, host {info.hostname()})")


def _format_name(info: Any) -> str:
    pylsl = import_pylsl()
    names = {pylsl.cf_float32: "float32", pylsl.cf_double64: "double64", pylsl.cf_string: "string",
             pylsl.cf_int8: "int8", pylsl.cf_int16: "int16", pylsl.cf_int32: "int32", pylsl.cf_int64: "int64"}
    return names.get(info.channel_format(), f"format {info.channel_format()}")


def discover(wait_s: float = 1.0) -> list[BoardDescription]:
    """LSL streams visible from here (within the liblsl configuration in force); none if pylsl is missing."""
    try:
        pylsl = import_pylsl()
    except ConfigError:
        return []
    found = []
    for info in pylsl.resolve_streams(wait_time=wait_s):
        query = urllib.parse.urlencode({"name": info.name()} | ({"source_id": info.source_id()}
                                                               if info.source_id() else {}))
        found.append(BoardDescription(f"lsl://?{query}", f"LSL stream {describe_stream(info)}",
                                      {"type": info.type(), "channels": str(info.channel_count()),
                                       "rate": f"{info.nominal_srate():g}", "host": info.hostname()}))
    return found


def _parse_url(url: str) -> tuple[dict[str, str], int, str | None]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "lsl" or parts.netloc or parts.path not in ("", "/"):
        raise ConfigError(f"bad lsl URL {url!r}: use lsl://?name=NAME (or type=, source_id=)")
    try:
        pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ConfigError(f"bad query in {url!r}: expected key=value&key=value") from None
    match: dict[str, str] = {}
    timeout = DEFAULT_TIMEOUT_USEC
    tsync = None
    for key, value in pairs:
        if key in ("name", "type", "source_id"):
            if not value:
                raise ConfigError(f"lsl:// option {key} needs a value")
            if "'" in value:
                raise ConfigError(f"lsl:// option {key}: quotes are not allowed in {value!r}")
            match[key] = value
        elif key == "timeout":
            timeout = parse_duration_usec(value)
        elif key == "tsync":
            tsync = value
        else:
            raise ConfigError(f"unknown lsl:// option {key!r}; known options: name, type, source_id, timeout, tsync")
    if not match:
        raise ConfigError(f"{url}: say which stream: lsl://?name=NAME, ?type=TYPE or ?source_id=ID")
    return match, timeout, tsync


def resolve(match: dict[str, str], timeout_usec: int) -> Any:
    """The StreamInfo of the one stream matching all of ``match``; a one-line error listing what was seen."""
    pylsl = import_pylsl()
    predicate = " and ".join(f"{key}='{value}'" for key, value in match.items())
    found = pylsl.resolve_bypred(predicate, 1, timeout_usec / 1e6)
    if found:
        return found[0]
    seen = pylsl.resolve_streams(wait_time=min(1.0, timeout_usec / 1e6))
    wanted = ", ".join(f"{key}={value}" for key, value in match.items())
    listing = "; ".join(describe_stream(info) for info in seen) or "none"
    config = os.environ.get("LSLAPICFG")
    where = f" (liblsl config {config})" if config else ""
    raise BoardError(f"no LSL stream with {wanted} within {timeout_usec / 1e6:g} s{where}; streams seen: {listing}")


def channel_metadata(info: Any) -> tuple[list[str], list[str]]:
    """Channel labels and units from the stream's XML description (LSL's channel meta-data convention)."""
    count = info.channel_count()
    labels = [f"ch{n}" for n in range(count)]
    units = [""] * count
    try:
        root = ET.fromstring(info.as_xml())
    except ET.ParseError:
        return labels, units
    channels = root.findall("./desc/channels/channel")
    for index, channel in enumerate(channels[:count]):
        label = (channel.findtext("label") or channel.findtext("name") or "").strip()
        if label:
            labels[index] = label
        units[index] = (channel.findtext("unit") or "").strip()
    seen: set[str] = set()
    for index, label in enumerate(labels):  # line names must be unique
        if label.lower() in seen:
            labels[index] = f"{label}_{index}"
        seen.add(labels[index].lower())
    return labels, units


LSL_STEP_THRESHOLD_USEC = 1_000_000
TIME_CORRECTION_EVERY_USEC = 2_000_000  # liblsl re-probes every 2 s (tuning.TimeUpdateInterval)
SYNC_TOLERANCE_USEC = 1000
GAP_MEMORY = 15  # liblsl probe answers (one per 2 s) whose median is the least-delay prior: the last 30 s
LSL_MAX_SKEW = 500e-6  # computer clocks: NTP's own limit; steeper slopes are latency noise over short spans


class _LslSynchronizer(SecondaryClockSynchronizer):
    """hwlink's synchronizer for LSL time stamps. liblsl stamps with the sender's monotonic clock, which does not
    step; but LSL delivery stalls for tens of ms at a time (TCP, a busy sender), which the default 1 ms step
    detection would take for clock steps. So only jumps beyond a second count as steps here. And the two clocks
    are computer clocks, whose rates differ by less than 500 ppm (NTP's limit): a steeper lower envelope over the
    first seconds is delivery jitter, not drift."""

    def _reset_state(self) -> None:
        super()._reset_state()
        self._estimator.step_threshold_usec = LSL_STEP_THRESHOLD_USEC
        self._estimator.max_skew = LSL_MAX_SKEW


class LslBoard(Board):
    """An LSL inlet; see the module docstring for the URL and the clock mapping."""

    scheme = "lsl"
    has_device_clock = True

    def __init__(self, info: Any, url: str, clock: MasterClock | None = None, tsync_path: str | None = None,
                 timeout_usec: int = DEFAULT_TIMEOUT_USEC) -> None:
        pylsl = import_pylsl()
        # The resolved info is the short form: the channel description comes with the inlet's full info.
        self._inlet = pylsl.StreamInlet(info, max_buflen=360, max_chunklen=0, recover=False, processing_flags=0)
        try:
            info = self._inlet.info(timeout=timeout_usec / 1e6)
        except pylsl.TimeoutError:
            raise BoardError(f"{url}: the stream did not send its description") from None
        labels, units = channel_metadata(info)
        fmt = info.channel_format()
        self.stream_name = info.name()
        self.stream_type = info.type()
        self.source_id = info.source_id()
        self.nominal_rate_hz = float(info.nominal_srate())
        self.channel_format = _format_name(info)
        self.is_string = fmt == pylsl.cf_string
        numeric_bits = _FLOAT_FORMATS.get(self.channel_format) or _INT_FORMATS.get(self.channel_format, 0)
        # Sampled analog streams: numeric with a nominal rate; events otherwise (markers, irregular values).
        self.sampled = self.nominal_rate_hz > 0 and not self.is_string
        # blocks keep the stream's own sample type (float32 stays float32, integers stay exact)
        self._block_dtype = {"float32": np.float32, "int8": np.int8, "int16": np.int16, "int32": np.int32,
                             "int64": np.int64}.get(self.channel_format, np.float64)
        lines = []
        for index, label in enumerate(labels):
            if self.sampled:
                lines.append(LineInfo(index, label, analog_in_bits=numeric_bits, aliases=(str(index),)))
            else:
                lines.append(LineInfo(index, label, digital_in=True, aliases=(str(index),)))
        super().__init__(url, lines, clock)
        self.line_units = dict(zip(range(len(units)), units, strict=True))
        self.marker_codes: dict[str, int] = {}
        self._next_code = 1
        self._inlet.open_stream(timeout=timeout_usec / 1e6)
        # The prior: liblsl's round-trip estimate of (local LSL clock - sender clock). It fixes the one thing
        # one-sided arrival times cannot reveal, the transport's minimum delay; the drift model is hwlink's.
        try:
            self.time_correction_s = float(self._inlet.time_correction(timeout=max(2.0, timeout_usec / 1e6)))
        except pylsl.TimeoutError:
            raise BoardError(f"{url}: the stream did not answer liblsl's clock probes") from None
        self.sync = _LslSynchronizer(self.nominal_rate_hz if self.nominal_rate_hz > 0 else 0,
                                     id=f"lsl-{self.stream_name}")
        self.sync.start()
        self.min_latency_usec = 1 << 62  # the least delay seen (see _synchronize)
        self._last_output = -(1 << 62)
        self._tc_read_at = 0
        self._gaps: collections.deque[float] = collections.deque(maxlen=GAP_MEMORY)
        self._recorder = None if not tsync_path else SyncPointRecorder(
            Path(tsync_path), f"hwlink::lsl-{self.stream_name}", SYNC_TOLERANCE_USEC)
        self._sample_index = 0
        self._running = True
        # Samples wait in liblsl's buffer until the first line is put in input mode (as a board's inputs report
        # nothing before that), so a recorder that subscribes first and sets modes next misses none.
        self._thread = threading.Thread(target=self._pull_loop, name=f"hwlink-lsl-{self.stream_name}", daemon=True)
        self._thread_lock = threading.Lock()

    def _value_max(self, line_id: int) -> int | None:
        """No range to enforce: an event line carries whatever the stream holds (marker codes, another hwlink's
        analog values, counts); what arrives is a decoded LSL sample, not line noise parsed as data."""
        return None

    @classmethod
    def open(cls, url: str, clock: MasterClock | None = None) -> LslBoard:
        match, timeout, tsync = _parse_url(url)
        info = resolve(match, timeout)
        return cls(info, url, clock, tsync, timeout)

    # ----- driver hooks: every line is an input, always on ------------------------------------------------
    def _apply_mode(self, info: LineInfo, mode: LineMode) -> None:
        if not mode.is_input:
            raise ConfigError(f"line {info.label} of {self.url} is an input (LSL inlets only receive)")
        self._modes[info.line_id] = mode
        with self._thread_lock:
            if not self._thread.is_alive() and self._running:
                self._thread.start()

    def _write_digital(self, line_id: int, level: int) -> None:
        raise ConfigError(f"{self.url}: LSL inlets have no outputs")

    def _write_analog(self, line_id: int, value: int) -> None:
        raise ConfigError(f"{self.url}: LSL inlets have no outputs")

    def _close(self) -> None:
        with self._thread_lock:
            self._running = False
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self.sync.stop()
        if self._recorder is not None:
            self._recorder.close()
        try:
            self._inlet.close_stream()
        except Exception:  # noqa: BLE001 - closing a dead stream must not mask the close
            pass

    # ----- the clock mapping ----------------------------------------------------------------------------
    def _refresh_time_correction(self, now_usec: int) -> bool:
        """liblsl re-measures the offset every few seconds; read its latest value (without waiting). True if
        the value changed."""
        if now_usec - self._tc_read_at < TIME_CORRECTION_EVERY_USEC:
            return False
        self._tc_read_at = now_usec
        try:
            value = float(self._inlet.time_correction(timeout=0.0))
        except Exception:  # noqa: BLE001 - a probe that has no fresh answer keeps the last one
            return False
        changed = value != self.time_correction_s
        self.time_correction_s = value
        return changed

    def _synchronize(self, arrival_usec: int, lsl_stamps: list[float]) -> tuple[list[int], list[int]]:
        """(device µs, synchronized master µs) of a chunk that arrived at ``arrival_usec``.

        hwlink's estimator gives the lower envelope of the arrivals: the event time plus the transport's least
        delay, with drift and jitter modelled. One-sided data cannot tell that least delay; liblsl's round-trip
        offset (``time_correction``) can: the least gap between the envelope and the sample times moved by that
        offset is the delay, subtracted from the envelope: the median over the recent probe answers, as one answer
        can be off by a scheduling delay of either process.
        """
        device = [round(stamp * 1e6) for stamp in lsl_stamps]
        # A chunk arrives at once, but its older samples were on their way earlier: each is given the arrival
        # the newest sample had, less the time between them. That is never before the sample happened (the
        # newest one's delay is real), so hwlink's lower-envelope estimate stays valid, and the older samples
        # of a chunk do not look late (which would hold the monotonic output up).
        newest = device[-1]
        process = self.sync.process_timestamp
        envelope = [process(min(arrival_usec - (newest - value), arrival_usec), value) for value in device]
        if self._refresh_time_correction(arrival_usec) or not self._gaps:
            self._gaps.append(math.inf)  # a new probe answer: a new gap measurement begins
        shift = self.time_correction_s * 1e6 - self.clock.start_ns / 1000.0  # LSL s * 1e6 + shift = master µs
        gap = min(env - (stamp * 1e6 + shift) for env, stamp in zip(envelope, lsl_stamps, strict=True))
        if gap < self._gaps[-1]:
            self._gaps[-1] = gap
            # one probe answer can be off by a scheduling delay: the median over recent answers is the prior
            self.min_latency_usec = max(0, math.floor(statistics.median(self._gaps)))
        latency = self.min_latency_usec
        last = self._last_output
        master = []
        for env in envelope:
            last = max(env - latency, last)
            master.append(last)
        self._last_output = last
        if self._recorder is not None:
            slope = self.sync.skew_ppm * 1e-6
            for device_usec, master_usec in zip(device, master, strict=True):
                self._recorder.record(device_usec, master_usec, False, slope)
        return device, master

    def flush_clock_sync(self) -> None:
        """Put the sync points so far in the tsync file (``tsync=``)."""
        if self._recorder is not None:
            self._recorder.flush()

    # ----- the reader -------------------------------------------------------------------------------------
    def _pull_loop(self) -> None:
        pylsl = import_pylsl()
        inlet = self._inlet
        try:
            while self._running:
                # liblsl's pull_chunk with a timeout waits for a full chunk: wait for one sample instead, then
                # take whatever else is there, so each sample leaves as soon as it came.
                first, stamp = inlet.pull_sample(timeout=PULL_TIMEOUT_S)
                if stamp is None:
                    continue
                samples, stamps = inlet.pull_chunk(timeout=0.0, max_samples=MAX_CHUNK)
                arrival = self.clock.now_usec()  # after the chunk: a sample in it may have come after the first
                samples = [first, *samples]
                stamps = [stamp, *stamps]
                device, master = self._synchronize(arrival, stamps)
                if self.sampled:
                    self._deliver_block(np.asarray(samples, dtype=self._block_dtype), device, master)
                else:
                    self._deliver_events(samples, device, master)
        except pylsl.LostError:
            self._fail(BoardError(f"{self.url}: the LSL stream {self.stream_name!r} was lost"))
        except Exception as error:  # noqa: BLE001 - a reader thread must report, never die silently
            if self._running:
                self._fail(BoardError(f"{self.url}: {error}"))

    def _deliver_block(self, data: np.ndarray, device_list: list[int], master_list: list[int]) -> None:
        device, master = np.array(device_list, dtype=np.int64), np.array(master_list, dtype=np.int64)
        line_ids = tuple(range(len(self._lines)))
        first = self._sample_index
        self._sample_index += len(master)
        samples = np.ascontiguousarray(data.reshape(len(master), len(line_ids)))
        self._deliver_signals(SignalBlock(master, samples, line_ids, first))
        named = [s for s in list(self._subscriptions) if s.lines is not None]
        if not named:
            return
        values = np.rint(samples).astype(np.int64).tolist()
        for row, (stamp, device_usec) in enumerate(zip(master.tolist(), device.tolist(), strict=True)):
            for line_id in line_ids:
                reading = LineReading(line_id, values[row][line_id], stamp, device_usec)
                for subscription in named:
                    if line_id in subscription.lines:  # type: ignore[operator]
                        subscription.callback(reading)

    def _code(self, text: str) -> int:
        stripped = text.strip()
        try:
            return int(stripped)
        except ValueError:
            pass
        code = self.marker_codes.get(text)
        if code is None:
            code = self.marker_codes[text] = self._next_code
            self._next_code += 1
        return code

    def _deliver_events(self, samples: list[list[Any]], device: list[int], master: list[int]) -> None:
        modes = self._modes
        for row, stamp, device_usec in zip(samples, master, device, strict=True):
            for line_id, value in enumerate(row):
                if line_id not in modes:
                    continue  # a line not (yet) put in input mode reports nothing
                if self.is_string:
                    number = self._code(str(value))
                else:
                    if not math.isfinite(value):
                        continue  # no reading on this line in this sample
                    number = int(round(value))
                self._deliver(LineReading(line_id, number, stamp, device_usec))
