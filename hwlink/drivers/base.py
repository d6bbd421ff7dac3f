"""The driver contract: what every board offers, whatever the transport underneath.

A concrete driver only implements the hardware verbs (``_apply_mode``, ``_write_digital``, ``_write_analog``,
``_close``) and calls ``_deliver``/``_fail`` from wherever its readings come in. Validation against line
capabilities, pulse scheduling, subscriptions and shutdown live here once, so all drivers behave alike.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import ClassVar

from hwlink.clock import MasterClock, run_clock
from hwlink.drivers.lineinfo import LineInfo, LineMode
from hwlink.drivers.scheduler import EdgeScheduler, PulseTrain
from hwlink.errors import BoardError, LineError
from hwlink.lines import LineCommand, LineCommandKind, LineModeFlags, LineReading, SignalBlock

log = logging.getLogger(__name__)

DEFAULT_SILENCE_LIMIT_USEC = 5_000_000  # a board that should be sending and is silent this long is dead
SILENCE_PERIODS = 10  # ... or this many of its expected intervals, whichever is longer
WATCHDOG_TICK_S = 0.2

ReadingCallback = Callable[[LineReading], None]
SignalCallback = Callable[[SignalBlock], None]
ErrorCallback = Callable[[BoardError], None]


class Subscription:
    """A registered reading callback; ``cancel()`` stops delivery."""

    def __init__(self, board: Board, callback: ReadingCallback, on_error: ErrorCallback | None,
                 lines: frozenset[int] | None) -> None:
        self._board = board
        self.callback = callback
        self.on_error = on_error
        self.lines = lines

    def cancel(self) -> None:
        self._board._remove_subscription(self)


_END = object()


class ReadingStream:
    """Iterator form of a subscription: yields readings until the board closes, raises if it dies."""

    def __init__(self, board: Board, lines: frozenset[int] | None, maxsize: int) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize)
        self.dropped = 0
        self._subscription = board.subscribe(self._put, on_error=self._put_error, lines=lines)

    def _put(self, reading: LineReading) -> None:
        try:
            self._queue.put_nowait(reading)
        except queue.Full:
            self.dropped += 1

    def _put_error(self, error: BoardError) -> None:
        self._queue.put(error)

    def _end(self) -> None:
        self._queue.put(_END)

    def get(self, timeout: float | None = None) -> LineReading | None:
        """Next reading, or None on timeout; raises BoardError if the board died, StopIteration if closed."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _END:
            self._queue.put(_END)
            raise StopIteration
        if isinstance(item, BoardError):
            self._queue.put(item)
            raise item
        return item  # type: ignore[return-value]

    def __iter__(self) -> Iterator[LineReading]:
        return self

    def __next__(self) -> LineReading:
        reading = self.get()
        assert reading is not None
        return reading

    def close(self) -> None:
        self._subscription.cancel()
        self._end()

    def __enter__(self) -> ReadingStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Board:
    """Base of all drivers. Opened by URL through ``hwlink.drivers.open_board``."""

    scheme: ClassVar[str] = ""
    has_device_clock: ClassVar[bool] = False

    def __init__(self, url: str, lines: Iterable[LineInfo], clock: MasterClock | None = None) -> None:
        self.url = url
        self.clock = clock or run_clock()
        self._lines = {info.line_id: info for info in lines}
        self._names: dict[str, int] = {}
        for info in self._lines.values():
            for name in (info.name, *info.aliases):
                self._names[name.lower()] = info.line_id
        self._modes: dict[int, LineMode] = {}
        self._subscriptions: list[Subscription] = []
        self._signal_subscriptions: list[Subscription] = []
        self._streams: list[ReadingStream] = []
        self._sub_lock = threading.Lock()
        self._closed = False
        self._error: BoardError | None = None
        self._scheduler: EdgeScheduler | None = None
        self._scheduler_lock = threading.Lock()
        # Fault accounting (read by recorders into the collection's attributes).
        self.dropped_values: dict[int, int] = {}  # line id -> readings outside the line's range, never delivered
        self.callback_errors: list[str] = []  # subscribers removed because their callback raised
        self.silences = 0  # times the device went silent past the limit (the board then fails)
        self.silence_limit_usec = DEFAULT_SILENCE_LIMIT_USEC
        self._heard_at = time.monotonic()

    # ----- lines --------------------------------------------------------------------------------------
    @property
    def lines(self) -> list[LineInfo]:
        return sorted(self._lines.values(), key=lambda info: info.line_id)

    def line(self, ref: int | str) -> LineInfo:
        """Look a line up by number ('13', 13) or by name ('D13', 'A0', a NI channel name)."""
        if isinstance(ref, int) and ref in self._lines:
            return self._lines[ref]
        text = str(ref).strip()
        if text.isdigit() and int(text) in self._lines:
            return self._lines[int(text)]
        line_id = self._names.get(text.lower())
        if line_id is None:
            raise LineError(f"unknown line {ref!r} on {self.url}; known lines: {self._line_summary()}")
        return self._lines[line_id]

    def _line_summary(self) -> str:
        names = [info.name for info in self.lines]
        return ", ".join(names) if len(names) <= 24 else ", ".join(names[:24]) + ", ..."

    def mode(self, line: int | str) -> LineMode | None:
        return self._modes.get(self.line(line).line_id)

    # ----- commands -----------------------------------------------------------------------------------
    def submit(self, command: LineCommand) -> PulseTrain | None:
        """Execute a LineCommand; pulse kinds return their (non-blocking) PulseTrain."""
        kind = command.kind
        if kind == LineCommandKind.SET_MODE:
            self.set_mode(command.line_id, command.flags)
        elif kind == LineCommandKind.WRITE_DIGITAL:
            self.write_digital(command.line_id, command.value)
        elif kind == LineCommandKind.WRITE_ANALOG:
            self.write_analog(command.line_id, command.value)
        elif kind == LineCommandKind.WRITE_DIGITAL_PULSE:
            return self.pulse(command.line_id, command.duration_usec, level=1 if command.value else 0)
        elif kind == LineCommandKind.WRITE_ANALOG_PULSE:
            return self.analog_pulse(command.line_id, command.value, command.duration_usec)
        elif kind == LineCommandKind.DEVICE_SPECIFIC:
            self._device_specific(command)
        else:
            raise LineError(f"cannot execute a LineCommand of kind {kind.name}")
        return None

    def set_mode(self, line: int | str, flags: LineModeFlags | int) -> LineMode:
        info = self.line(line)
        mode = info.resolve_mode(flags)
        self._check_alive()
        self._apply_mode(info, mode)
        self._modes[info.line_id] = mode
        self._heard_at = time.monotonic()  # a newly reporting line gets the full silence limit
        _watchdog.watch(self)
        return mode

    def _require_mode(self, info: LineInfo, allowed: tuple[LineMode, ...], action: str) -> None:
        mode = self._modes.get(info.line_id)
        if mode not in allowed:
            current = mode.value if mode else "unconfigured"
            wanted = " or ".join(m.value for m in allowed)
            raise LineError(
                f"cannot {action} line {info.label}: it is {current}, needs {wanted} (send SET_MODE first)"
            )

    def write_digital(self, line: int | str, value: int) -> None:
        info = self.line(line)
        self._require_mode(info, (LineMode.DIGITAL_OUT,), "write digital to")
        self._check_alive()
        if self._scheduler is not None:
            self._scheduler.cancel_line(info.line_id)
        self._write_digital(info.line_id, 1 if value else 0)

    def write_analog(self, line: int | str, value: int) -> None:
        info = self.line(line)
        self._require_mode(info, (LineMode.ANALOG_OUT,), "write analog to")
        if not 0 <= value <= info.analog_out_max:
            raise LineError(f"analog value {value} out of range 0..{info.analog_out_max} on line {info.label}")
        self._check_alive()
        if self._scheduler is not None:
            self._scheduler.cancel_line(info.line_id)
        self._write_analog(info.line_id, int(value))

    def pulse(self, line: int | str, width_usec: int, count: int = 1, period_usec: int = 0,
              level: int = 1) -> PulseTrain:
        """Schedule ``count`` pulses of ``width_usec`` every ``period_usec``; returns at once."""
        info = self.line(line)
        self._check_pulse(info, width_usec, count, period_usec)
        on_value = 1 if level else 0
        train = PulseTrain(info.line_id, int(width_usec), int(count), int(period_usec), on_value, 1 - on_value)
        return self._edge_scheduler().schedule(train, self.clock.now_usec())

    def _check_pulse(self, info: LineInfo, width_usec: int, count: int, period_usec: int) -> None:
        """Refuse a pulse train the line or its arguments cannot give, before anything is scheduled."""
        self._require_mode(info, (LineMode.DIGITAL_OUT,), "pulse")
        if width_usec <= 0:
            raise LineError(f"pulse width must be positive, got {width_usec} µs")
        if count < 1:
            raise LineError(f"pulse count must be at least 1, got {count}")
        if count > 1 and period_usec <= width_usec:
            raise LineError(f"pulse period ({period_usec} µs) must exceed the width ({width_usec} µs)")
        self._check_alive()

    def analog_pulse(self, line: int | str, value: int, duration_usec: int) -> PulseTrain:
        """Drive an analog output at ``value`` for ``duration_usec``, then back to 0 (non-blocking)."""
        info = self.line(line)
        self._require_mode(info, (LineMode.ANALOG_OUT,), "pulse analog")
        if not 0 <= value <= info.analog_out_max:
            raise LineError(f"analog value {value} out of range 0..{info.analog_out_max} on line {info.label}")
        if duration_usec <= 0:
            raise LineError(f"pulse duration must be positive, got {duration_usec} µs")
        self._check_alive()
        train = PulseTrain(info.line_id, int(duration_usec), on_value=int(value), off_value=0, analog=True)
        return self._edge_scheduler().schedule(train, self.clock.now_usec())

    def _edge_scheduler(self) -> EdgeScheduler:
        with self._scheduler_lock:
            if self._scheduler is None:
                self._scheduler = EdgeScheduler(self.clock, self._scheduled_write)
            return self._scheduler

    def _scheduled_write(self, line_id: int, value: int, analog: bool) -> None:
        if analog:
            self._write_analog(line_id, value)
        else:
            self._write_digital(line_id, value)

    def _device_specific(self, command: LineCommand) -> None:
        raise LineError(f"{type(self).__name__} has no device-specific commands")

    # ----- readings -----------------------------------------------------------------------------------
    def subscribe(self, callback: ReadingCallback, on_error: ErrorCallback | None = None,
                  lines: Iterable[int | str] | None = None) -> Subscription:
        """Call ``callback`` for each reading (on the driver's thread: keep it short)."""
        wanted = None if lines is None else frozenset(self.line(ref).line_id for ref in lines)
        subscription = Subscription(self, callback, on_error, wanted)
        with self._sub_lock:
            if self._error is not None and on_error is not None:
                on_error(self._error)
            self._subscriptions.append(subscription)
        return subscription

    def subscribe_signals(self, callback: SignalCallback, on_error: ErrorCallback | None = None) -> Subscription:
        """Call ``callback`` with every SignalBlock (hardware-clocked acquisition, e.g. DAQ analog input)."""
        subscription = Subscription(self, callback, on_error, None)  # type: ignore[arg-type]
        with self._sub_lock:
            if self._error is not None and on_error is not None:
                on_error(self._error)
            self._signal_subscriptions.append(subscription)
        return subscription

    def readings(self, lines: Iterable[int | str] | None = None, maxsize: int = 0) -> ReadingStream:
        """Iterator over readings; with ``maxsize`` a slow consumer drops readings and counts them."""
        wanted = None if lines is None else frozenset(self.line(ref).line_id for ref in lines)
        stream = ReadingStream(self, wanted, maxsize)
        with self._sub_lock:
            self._streams.append(stream)
            if self._closed and self._error is None:
                stream._end()
        return stream

    def _remove_subscription(self, subscription: Subscription) -> None:
        with self._sub_lock:
            for registry in (self._subscriptions, self._signal_subscriptions):
                if subscription in registry:
                    registry.remove(subscription)

    def _value_max(self, line_id: int) -> int | None:
        """Largest value an input line in its current mode can read (None: not an input, no check)."""
        mode = self._modes.get(line_id)
        if mode is LineMode.ANALOG_IN:
            bits = self._lines[line_id].analog_in_bits
            return (1 << bits) - 1 if bits else None
        if mode is LineMode.DIGITAL_IN or mode is LineMode.DIGITAL_IN_PULLUP:
            return 1
        return None

    def _in_range(self, reading: LineReading) -> bool:
        """Readings outside the line's declared range (line noise parsed as data) are dropped and counted."""
        top = self._value_max(reading.line_id)
        if top is None or 0 <= reading.value <= top:
            return True
        count = self.dropped_values.get(reading.line_id, 0)
        self.dropped_values[reading.line_id] = count + 1
        if count == 0:
            log.warning("%s: dropped reading %d on line %s (outside 0..%d); later ones are only counted",
                        self.url, reading.value, self._lines[reading.line_id].label, top)
        return False

    def _deliver(self, reading: LineReading) -> None:
        """Hand a reading to every subscriber; called by the driver's reader thread.

        A subscriber whose callback raises is reported and removed; the others and the driver's thread go on.
        """
        self._heard_at = time.monotonic()
        if not self._in_range(reading):
            return
        for subscription in tuple(self._subscriptions):
            if subscription.lines is None or reading.line_id in subscription.lines:
                self._notify(subscription, reading)

    def _notify(self, subscription: Subscription, item: object) -> None:
        """Run one subscriber's callback, isolated from the driver and the other subscribers."""
        try:
            subscription.callback(item)  # type: ignore[arg-type]
        except Exception as error:  # noqa: BLE001 - a subscriber's bug must not end the board's readings
            message = f"{self.url}: subscriber {subscription.callback!r} raised {type(error).__name__}: {error}"
            self.callback_errors.append(message)
            log.error("%s; it is unsubscribed, other subscribers go on", message, exc_info=error)
            self._remove_subscription(subscription)

    def _deliver_signals(self, block: SignalBlock) -> None:
        """Hand a signal block to every signal subscriber; called by the driver's acquisition thread."""
        self._heard_at = time.monotonic()
        for subscription in tuple(self._signal_subscriptions):
            self._notify(subscription, block)

    def _heard(self) -> None:
        """The device said something (any message, not only readings): it is alive."""
        self._heard_at = time.monotonic()

    def _expected_interval_usec(self) -> int | None:
        """How often the device should send something in its current configuration (None: no expectation,
        e.g. digital inputs that only report changes). Drivers override this; the watchdog uses it."""
        return None

    def _silence_watch(self) -> Iterator[tuple[str, float, int]]:
        """What the watchdog checks: (who should send, when it was last heard, expected interval in µs).

        By default the whole device, last heard by ``_deliver``/``_heard``. A driver with several independent
        streams (NI-DAQmx's AI and DI acquisitions) yields one per stream, so one that stalls is not hidden by
        another that goes on.
        """
        interval = self._expected_interval_usec()
        if interval is not None:
            yield "it", self._heard_at, interval

    def _check_silence(self, now: float) -> None:
        """Called by the watchdog: fail the board if it should be sending and has been silent too long."""
        if self._closed or self._error is not None:
            return
        for source, heard_at, interval in self._silence_watch():
            limit_s = max(self.silence_limit_usec, SILENCE_PERIODS * interval) / 1e6
            silent_s = now - heard_at
            if silent_s > limit_s:
                self.silences += 1
                self._fail(BoardError(f"{self.url}: no data from the device for {silent_s:.1f} s ({source} should "
                                      f"send every {interval / 1000:g} ms; silence limit {limit_s:g} s)"))
                return

    def set_silence_limit(self, limit_usec: int) -> None:
        """How long a board that should be sending may stay silent before it is declared dead."""
        if not 0 < limit_usec <= 86_400_000_000:
            raise LineError(f"silence limit must be between 0 and 24 h, got {limit_usec} µs")
        self.silence_limit_usec = int(limit_usec)

    def _fail(self, error: BoardError) -> None:
        """The board is gone: tell every subscriber once, refuse further commands."""
        with self._sub_lock:
            if self._error is not None:
                return
            self._error = error
            receivers = [s.on_error for s in self._subscriptions + self._signal_subscriptions
                         if s.on_error is not None]
        for on_error in receivers:
            try:
                on_error(error)
            except Exception:  # noqa: BLE001 - one subscriber's bug must not keep the others uninformed
                log.exception("%s: error callback %r raised", self.url, on_error)
        if self._scheduler is not None:
            self._scheduler.stop()

    @property
    def error(self) -> BoardError | None:
        return self._error

    def _check_alive(self) -> None:
        if self._error is not None:
            raise BoardError(f"{self.url}: {self._error}")
        if self._closed:
            raise BoardError(f"{self.url} is closed")

    # ----- lifetime -----------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop pulses, release the hardware, end reading streams. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        if self._scheduler is not None:
            self._scheduler.stop()
        try:
            self._close()
        finally:
            with self._sub_lock:
                streams = list(self._streams)
            for stream in streams:
                stream._end()

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}{' closed' if self._closed else ''}>"

    # ----- driver hooks -------------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str, clock: MasterClock | None = None) -> Board:
        """Parse the driver's URL and connect; called by ``open_board``."""
        raise NotImplementedError

    def _apply_mode(self, info: LineInfo, mode: LineMode) -> None:
        raise NotImplementedError

    def _write_digital(self, line_id: int, level: int) -> None:
        raise NotImplementedError

    def _write_analog(self, line_id: int, value: int) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError


class _Watchdog:
    """One daemon thread that checks every open board for silence (see ``Board._check_silence``)."""

    def __init__(self) -> None:
        self._boards: weakref.WeakSet[Board] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, board: Board) -> None:
        with self._lock:
            self._boards.add(board)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="hwlink-board-watchdog", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(WATCHDOG_TICK_S)
            with self._lock:
                boards = [board for board in self._boards if not board.closed]
            now = time.monotonic()
            for board in boards:
                try:
                    board._check_silence(now)
                except Exception:  # noqa: BLE001 - the watchdog must outlive any one board
                    log.exception("%s: silence check failed", board.url)
            del boards


_watchdog = _Watchdog()
