"""``firmata://`` — boards running Firmata (StandardFirmata 2.4/2.5, FirmataExpress), spoken directly over pyserial.

URLs: ``firmata:///dev/ttyACM0``, ``firmata://COM3``, or ``firmata+<pyserial URL>`` such as
``firmata+socket://127.0.0.1:5000`` (anything ``serial.serial_for_url`` opens). Query options:

=================  =========================================================================================
``baud``           serial speed (default 57600; FirmataExpress uses 115200)
``timeout``        handshake deadline, a duration (default 5s; covers an Uno's reset-on-open)
``analog_interval`` analog sampling interval, whole milliseconds (default 19ms, Firmata's own default)
``silence``        with analog inputs reporting, the board is declared dead (``BoardError``) after this long
                   without a message (default 5s, at least 10 sampling intervals)
=================  =========================================================================================

Other query options are handed to pyserial's URL handler (e.g. ``firmata+spy:///dev/ttyACM0?file=trace.txt``).

One reader thread per board blocks on the port (no polling), stamps each chunk on the master clock the moment it
arrives, and feeds a resynchronizing parser; a lost port reaches subscribers as a ``BoardError`` at once.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import serial
import serial.tools.list_ports

from hwlink.clock import MasterClock, run_clock
from hwlink.drivers import BoardDescription
from hwlink.drivers import firmata_protocol as fp
from hwlink.drivers.base import DEFAULT_SILENCE_LIMIT_USEC, Board
from hwlink.drivers.lineinfo import LineInfo, LineMode
from hwlink.platform import make_thread_timely
from hwlink.errors import BoardError, ConfigError, LineError
from hwlink.lines import LineCommand, LineModeFlags, LineReading
from hwlink.units import format_usec, parse_duration_usec

log = logging.getLogger(__name__)

DEFAULT_BAUD = 57600
DEFAULT_TIMEOUT_USEC = 5_000_000
DEFAULT_ANALOG_INTERVAL_USEC = 19_000
FIRMWARE_RETRY_S = 0.25  # re-ask while an auto-reset board boots
QUERY_RETRY_S = 1.0
MAX_CHUNK = 4096
HEARD_KEEP = 64  # bytes kept from the handshake for the error message

Messages = list[tuple[int, bytes]]

_FIRMATA_MODE = {
    LineMode.DIGITAL_IN: fp.PinMode.INPUT,
    LineMode.DIGITAL_IN_PULLUP: fp.PinMode.PULLUP,
    LineMode.DIGITAL_OUT: fp.PinMode.OUTPUT,
    LineMode.ANALOG_IN: fp.PinMode.ANALOG,
    LineMode.ANALOG_OUT: fp.PinMode.PWM,
}


# Replies to handshake queries that were repeated while the board booted may arrive after it: not unknown.
_LATE_REPLIES = frozenset((fp.REPORT_FIRMWARE, fp.CAPABILITY_RESPONSE, fp.ANALOG_MAPPING_RESPONSE))


@dataclass(frozen=True)
class FirmataOptions:
    """A parsed firmata URL: what to hand pyserial and how to talk to the board."""

    port_url: str
    baud: int = DEFAULT_BAUD
    timeout_usec: int = DEFAULT_TIMEOUT_USEC
    analog_interval_usec: int = DEFAULT_ANALOG_INTERVAL_USEC
    silence_usec: int = DEFAULT_SILENCE_LIMIT_USEC

    @classmethod
    def from_url(cls, url: str) -> FirmataOptions:
        scheme, sep, rest = url.partition("://")
        scheme = scheme.lower()
        if not sep or not (scheme == "firmata" or scheme.startswith("firmata+")):
            raise ConfigError(f"not a firmata URL: {url!r}")
        target, _, query = rest.partition("?")
        try:
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError:
            raise ConfigError(f"bad query in {url!r}: expected key=value&key=value") from None
        options: dict[str, int] = {}
        passed_on: list[tuple[str, str]] = []
        for key, value in pairs:
            if key == "baud":
                if not value.isdigit() or not 0 < int(value) <= 100_000_000:
                    raise ConfigError(f"firmata option baud needs a positive integer, got {value!r}")
                options["baud"] = int(value)
            elif key == "timeout":
                options["timeout_usec"] = parse_duration_usec(value)
                if not 0 < options["timeout_usec"] <= 3_600_000_000:
                    raise ConfigError(f"firmata option timeout must be more than 0 and at most 1h, got {value!r}")
            elif key == "silence":
                options["silence_usec"] = parse_duration_usec(value)
                if not 0 < options["silence_usec"] <= 86_400_000_000:
                    raise ConfigError(f"firmata option silence must be more than 0 and at most 24h, got {value!r}")
            elif key == "analog_interval":
                interval = parse_duration_usec(value)
                if interval % 1000 or not 1_000 <= interval <= 16_383_000:
                    raise ConfigError(f"analog_interval must be whole milliseconds from 1ms to 16383ms, got {value!r}")
                options["analog_interval_usec"] = interval
            else:
                passed_on.append((key, value))
        if scheme == "firmata":
            if passed_on:
                raise ConfigError(f"unknown firmata option {passed_on[0][0]!r}; known options: baud, timeout, "
                                  "analog_interval, silence")
            port_url = target
        else:
            port_url = f"{scheme.partition('+')[2]}://{target}"
            if passed_on:
                port_url += "?" + urllib.parse.urlencode(passed_on)
        if not target:
            raise ConfigError(f"{url!r} names no port; e.g. firmata:///dev/ttyACM0, firmata://COM3, "
                              "firmata+socket://HOST:PORT (`hwlink boards` lists serial ports)")
        return cls(port_url, **options)


class FirmataLink:
    """The port plus the reader thread: hands parsed, arrival-stamped messages to ``on_messages``."""

    def __init__(self, port: serial.SerialBase, url: str, clock: MasterClock,
                 on_messages: Callable[[Messages, int], None], on_lost: Callable[[BaseException], None]) -> None:
        self.port = port
        self.url = url
        self.clock = clock
        self.on_messages = on_messages
        self.on_lost = on_lost
        self.parser = fp.FirmataParser(from_board=True)
        self.heard = bytearray()
        self.keep_heard = True
        self._write_lock = threading.Lock()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"hwlink-firmata {url}", daemon=True)

    @classmethod
    def connect(cls, options: FirmataOptions, url: str, clock: MasterClock,
                on_messages: Callable[[Messages, int], None], on_lost: Callable[[BaseException], None]) -> FirmataLink:
        try:
            port = serial.serial_for_url(options.port_url, baudrate=options.baud, timeout=None, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as error:
            raise BoardError(f"cannot open {url}: {error}") from None
        raw_socket = getattr(port, "_socket", None)  # pyserial's socket:// leaves Nagle on: 40 ms stalls
        if isinstance(raw_socket, socket.socket):
            raw_socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = cls(port, url, clock, on_messages, on_lost)
        link._thread.start()
        return link

    def write(self, data: bytes) -> None:
        try:
            with self._write_lock:
                self.port.write(data)
        except (serial.SerialException, OSError, TypeError, AttributeError) as error:
            raise BoardError(f"{self.url}: write failed: {error}") from None

    def _run(self) -> None:
        make_thread_timely()  # arrival stamps are only as good as this thread's wake-up
        port = self.port
        while not self._closing:
            try:
                data = port.read(1)  # blocks until a byte arrives, the port dies, or cancel_read()
                arrival = self.clock.now_usec()
                while len(data) < MAX_CHUNK and (waiting := port.in_waiting):
                    data += port.read(min(waiting, MAX_CHUNK))
            except Exception as error:  # noqa: BLE001 - any failure of the transport ends the link
                if not self._closing:
                    self.on_lost(error)
                return
            if not data:
                continue
            if self.keep_heard and len(self.heard) < HEARD_KEEP:
                self.heard += data[: HEARD_KEEP - len(self.heard)]
            messages = self.parser.feed(data)
            if messages:
                try:
                    self.on_messages(messages, arrival)
                except Exception:  # a subscriber's bug must not end the board's readings
                    log.exception("%s: error while handling board messages", self.url)

    def close(self) -> None:
        """Stop the reader and release the port; safe from the reader thread itself (an on_error callback)."""
        self._closing = True
        other_thread = self._thread is not threading.current_thread()
        cancel = getattr(self.port, "cancel_read", None)
        if cancel is not None and self._thread.is_alive():
            try:
                cancel()
            except Exception:  # noqa: BLE001 - a dead port cannot be cancelled; closing it ends the read too
                pass
            if other_thread:
                self._thread.join(timeout=1)
        try:
            self.port.close()
        except Exception:  # noqa: BLE001 - closing a port that already failed
            pass
        if other_thread:
            self._thread.join(timeout=2)


class _Handshake:
    """Collects the replies of the start-up queries while the reader thread runs."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.firmware: fp.Firmware | None = None
        self.version: tuple[int, int] | None = None
        self.capabilities: list[dict[int, int]] | None = None
        self.analog_mapping: dict[int, int] | None = None
        self.lost: BaseException | None = None

    def on_messages(self, messages: Messages, arrival: int) -> None:
        with self.changed:
            for command, data in messages:
                try:
                    if command == fp.REPORT_VERSION:
                        self.version = (data[0], data[1])
                    elif command == fp.START_SYSEX and data[0] == fp.REPORT_FIRMWARE:
                        self.firmware = fp.decode_firmware(data)
                    elif command == fp.START_SYSEX and data[0] == fp.CAPABILITY_RESPONSE:
                        self.capabilities = fp.decode_capabilities(data)
                    elif command == fp.START_SYSEX and data[0] == fp.ANALOG_MAPPING_RESPONSE:
                        self.analog_mapping = fp.decode_analog_mapping(data)
                except ValueError as error:
                    log.warning("ignoring malformed reply during handshake: %s", error)
            self.changed.notify_all()

    def on_lost(self, error: BaseException) -> None:
        with self.changed:
            self.lost = error
            self.changed.notify_all()

    def await_reply(self, link: FirmataLink, request: bytes, attribute: str, what: str, deadline: float,
                    retry_s: float) -> None:
        """Send ``request`` until ``attribute`` is filled in or the deadline passes."""
        with self.changed:
            while getattr(self, attribute) is None:
                if self.lost is not None:
                    raise BoardError(f"{link.url}: connection lost during the handshake: {self.lost}")
                now = time.monotonic()
                if now >= deadline:
                    raise BoardError(f"{link.url}: no {what} from the board in time; {_heard(link)}")
                self.changed.release()
                try:
                    link.write(request)
                finally:
                    self.changed.acquire()
                self.changed.wait_for(lambda: getattr(self, attribute) is not None or self.lost is not None,
                                      timeout=min(retry_s, deadline - now))


def _heard(link: FirmataLink) -> str:
    if not link.heard:
        return (f"heard nothing at {link.port.baudrate} baud (is Firmata loaded? FirmataExpress needs ?baud=115200)")
    shown = " ".join(f"{byte:02x}" for byte in link.heard[:24])
    more = " ..." if len(link.heard) > 24 else ""
    return (f"heard {len(link.heard)}{'+' if len(link.heard) >= HEARD_KEEP else ''} byte(s) without a valid reply: "
            f"{shown}{more} (wrong baud rate, or not Firmata?)")


def _handshake(link: FirmataLink, handshake: _Handshake, timeout_usec: int, full: bool = True) -> None:
    deadline = time.monotonic() + timeout_usec / 1e6
    # An auto-reset board drops what it hears while booting, so the firmware query is repeated until answered.
    handshake.await_reply(link, fp.REQUEST_FIRMWARE + fp.REQUEST_VERSION, "firmware", "firmware report",
                          deadline, FIRMWARE_RETRY_S)
    if not full:
        return
    handshake.await_reply(link, fp.REQUEST_VERSION, "version", "protocol version", deadline, QUERY_RETRY_S)
    handshake.await_reply(link, fp.REQUEST_CAPABILITIES, "capabilities", "capability report", deadline,
                          QUERY_RETRY_S)
    handshake.await_reply(link, fp.REQUEST_ANALOG_MAPPING, "analog_mapping", "analog mapping", deadline,
                          QUERY_RETRY_S)


def lines_from_capabilities(capabilities: list[dict[int, int]], analog_mapping: dict[int, int]) -> list[LineInfo]:
    """One line per Firmata pin; analog-capable pins are named A<channel> (D<pin> as an alias)."""
    lines = []
    for pin, modes in enumerate(capabilities):
        channel = analog_mapping.get(pin)
        name = f"A{channel}" if channel is not None else f"D{pin}"
        aliases = (f"D{pin}", str(pin)) if channel is not None else (str(pin),)
        pwm_bits = modes.get(fp.PinMode.PWM, 0)
        lines.append(LineInfo(
            pin, name,
            digital_in=fp.PinMode.INPUT in modes,
            digital_out=fp.PinMode.OUTPUT in modes,
            pullup=fp.PinMode.PULLUP in modes,
            analog_in_bits=modes.get(fp.PinMode.ANALOG, 0) if channel is not None else 0,
            analog_out_max=(1 << pwm_bits) - 1 if pwm_bits else 0,
            analog_out_kind="pwm" if pwm_bits else "",
            aliases=aliases,
        ))
    return lines


class FirmataBoard(Board):
    """A Firmata board; see the module docstring for URLs and options."""

    scheme = "firmata"
    has_device_clock = False

    def __init__(self, url: str, options: FirmataOptions, link: FirmataLink, handshake: _Handshake,
                 clock: MasterClock) -> None:
        assert handshake.capabilities is not None and handshake.analog_mapping is not None
        assert handshake.firmware is not None and handshake.version is not None
        super().__init__(url, lines_from_capabilities(handshake.capabilities, handshake.analog_mapping), clock)
        self.options = options
        self.firmware: fp.Firmware = handshake.firmware
        self.protocol_version: tuple[int, int] = handshake.version
        self._link = link
        self._channel_of = dict(handshake.analog_mapping)
        self._pin_of_channel = {channel: pin for pin, channel in self._channel_of.items()}
        ports = (len(handshake.capabilities) + 7) // 8
        self._port_inputs = [0] * ports  # bit set: pin is a digital input we report
        self._port_levels = [0] * ports  # last reported levels
        self._port_pending = [0] * ports  # inputs whose first reading is still due
        self._output_latch = [0] * ports  # levels we drive, for whole-port writes (protocol < 2.5)
        self._latch_lock = threading.Lock()
        self._analog_pins: set[int] = set()
        self._pin_value_command = self.protocol_version >= (2, 5)  # SET_DIGITAL_PIN_VALUE is new in 2.5
        self.analog_interval_usec = options.analog_interval_usec
        self.silence_limit_usec = options.silence_usec
        self.board_strings: deque[str] = deque(maxlen=32)  # STRING_DATA the firmware sent (its error messages)
        self.unknown_messages = 0
        link.keep_heard = False
        link.on_messages = self._on_messages
        link.on_lost = self._on_lost
        self._link.write(fp.sampling_interval(self.analog_interval_usec // 1000))

    @classmethod
    def open(cls, url: str, clock: MasterClock | None = None) -> FirmataBoard:
        options = FirmataOptions.from_url(url)
        clock = clock or run_clock()
        handshake = _Handshake()
        link = FirmataLink.connect(options, url, clock, handshake.on_messages, handshake.on_lost)
        try:
            _handshake(link, handshake, options.timeout_usec)
            return cls(url, options, link, handshake, clock)
        except BaseException:
            link.close()
            raise

    # ----- readings (reader thread) ---------------------------------------------------------------------
    def _on_messages(self, messages: Messages, arrival: int) -> None:
        self._heard()
        for command, data in messages:
            high = command & 0xF0
            if high == fp.DIGITAL_MESSAGE:
                self._on_port(command & 0x0F, data[0] | (data[1] << 7), arrival)
            elif high == fp.ANALOG_MESSAGE:
                pin = self._pin_of_channel.get(command & 0x0F)
                if pin in self._analog_pins:
                    self._deliver(LineReading(pin, data[0] | (data[1] << 7), arrival))
            elif command == fp.START_SYSEX and data[0] == fp.STRING_DATA:
                text = fp.decode_string(data[1:])
                self.board_strings.append(text)
                log.warning("%s says: %s", self.url, text)
            elif command != fp.REPORT_VERSION and not (command == fp.START_SYSEX and data[0] in _LATE_REPLIES):
                self.unknown_messages += 1

    def _expected_interval_usec(self) -> int | None:
        """With analog inputs reporting, the firmware sends every sampling interval; digital inputs only on change."""
        return self.analog_interval_usec if self._analog_pins else None

    def _on_port(self, port: int, levels: int, arrival: int) -> None:
        if port >= len(self._port_inputs):
            self.unknown_messages += 1
            return
        inputs = self._port_inputs[port]
        report = ((levels ^ self._port_levels[port]) | self._port_pending[port]) & inputs
        self._port_levels[port] = levels
        self._port_pending[port] &= ~report
        base = port * 8
        while report:
            bit = report & -report
            index = bit.bit_length() - 1
            self._deliver(LineReading(base + index, (levels >> index) & 1, arrival))
            report ^= bit

    def _on_lost(self, error: BaseException) -> None:
        self._fail(BoardError(f"connection lost ({error or type(error).__name__})"))

    def set_mode(self, line: int | str, flags: LineModeFlags | int) -> LineMode:
        """As Board.set_mode; an analog pin named by its analog name ('A0') means analog input.

        Firmata's analog pins are digital pins too, so plain IS_INPUT on pin 14 (or 'D14') is a digital input,
        while IS_INPUT on 'A0' samples the ADC, which is what someone naming A0 wants.
        """
        flags = LineModeFlags(int(flags))
        if (isinstance(line, str) and line.strip()[:1] in ("A", "a") and self.line(line).analog_in_bits
                and not flags & (LineModeFlags.IS_OUTPUT | LineModeFlags.PULL_UP)):
            flags |= LineModeFlags.ANALOG
        return super().set_mode(line, flags)

    # ----- driver hooks ---------------------------------------------------------------------------------
    def _apply_mode(self, info: LineInfo, mode: LineMode) -> None:
        pin = info.line_id
        port, bit = pin >> 3, 1 << (pin & 7)
        messages = bytearray()
        if pin in self._analog_pins and mode is not LineMode.ANALOG_IN:
            self._analog_pins.discard(pin)
            messages += fp.report_analog(self._channel_of[pin], False)
        messages += fp.set_pin_mode(pin, _FIRMATA_MODE[mode])
        if mode in (LineMode.DIGITAL_IN, LineMode.DIGITAL_IN_PULLUP):
            self._port_pending[port] |= bit
            self._port_inputs[port] |= bit
            messages += fp.report_digital(port, True)  # since Firmata 2.4 this also reports the port at once
        elif self._port_inputs[port] & bit:
            self._port_inputs[port] &= ~bit
            self._port_pending[port] &= ~bit
            if not self._port_inputs[port]:
                messages += fp.report_digital(port, False)
        if mode is LineMode.ANALOG_IN:  # SET_PIN_MODE ANALOG itself turns the channel's reporting on
            self._analog_pins.add(pin)
        elif mode is LineMode.DIGITAL_OUT:  # start low, whatever the pin's register held before
            with self._latch_lock:
                self._output_latch[port] &= ~bit
                messages += self._digital_write_message(pin, 0)
                self._link.write(bytes(messages))
            return
        self._link.write(bytes(messages))

    def _digital_write_message(self, pin: int, level: int) -> bytes:
        """SET_DIGITAL_PIN_VALUE where the firmware has it (2.5+), else the whole port from our latch."""
        if self._pin_value_command:
            return fp.set_digital_pin_value(pin, level)
        return fp.digital_message(pin >> 3, self._output_latch[pin >> 3])

    def _write_digital(self, line_id: int, level: int) -> None:
        port, bit = line_id >> 3, 1 << (line_id & 7)
        with self._latch_lock:
            latch = self._output_latch[port]
            self._output_latch[port] = latch | bit if level else latch & ~bit
            self._link.write(self._digital_write_message(line_id, level))

    def _write_analog(self, line_id: int, value: int) -> None:
        self._link.write(fp.analog_write(line_id, value))

    def _close(self) -> None:
        if self._error is None:
            quiet = bytearray()
            for pin in self._analog_pins:
                quiet += fp.report_analog(self._channel_of[pin], False)
            for port, inputs in enumerate(self._port_inputs):
                if inputs:
                    quiet += fp.report_digital(port, False)
            try:
                if quiet:
                    self._link.write(bytes(quiet))
            except BoardError:
                pass
        self._link.close()

    # ----- Firmata specifics ----------------------------------------------------------------------------
    def set_analog_interval(self, interval_usec: int) -> None:
        """Set how often the firmware reports analog inputs (whole ms, 1 ms..16383 ms)."""
        if interval_usec % 1000 or not 1_000 <= interval_usec <= 16_383_000:
            raise LineError(f"analog interval must be whole milliseconds from 1 ms to 16383 ms, "
                            f"got {format_usec(interval_usec)}")
        self._check_alive()
        self._link.write(fp.sampling_interval(interval_usec // 1000))
        self.analog_interval_usec = interval_usec

    def send_raw(self, data: bytes) -> None:
        """Send Firmata messages as they are (e.g. sysex of a firmware extension); replies are not readings."""
        data = bytes(data)
        if not data or not data[0] & 0x80:
            raise LineError("raw Firmata data must start with a command byte (0x80..0xFF)")
        self._check_alive()
        self._link.write(data)

    def _device_specific(self, command: LineCommand) -> None:
        """DEVICE_SPECIFIC LineCommands carry raw Firmata messages in ``extra``."""
        self.send_raw(command.extra)


def probe(url: str, timeout_usec: int = 3_000_000) -> fp.Firmware:
    """Open a port just long enough to ask for the Firmata firmware report."""
    options = FirmataOptions.from_url(url)
    handshake = _Handshake()
    link = FirmataLink.connect(options, url, run_clock(), handshake.on_messages, handshake.on_lost)
    try:
        _handshake(link, handshake, timeout_usec, full=False)
    finally:
        link.close()
    assert handshake.firmware is not None
    return handshake.firmware


def port_url(device: str) -> str:
    """The firmata URL of a serial device path ('/dev/ttyACM0' -> 'firmata:///dev/ttyACM0', 'COM3' -> 'firmata://COM3')."""
    return f"firmata://{device}"


def discover() -> list[BoardDescription]:
    """Serial ports that may carry a Firmata board, USB ones with their VID:PID (nothing is opened here)."""
    found = []
    for info in sorted(serial.tools.list_ports.comports(), key=lambda p: p.device):
        details = {}
        if info.vid is not None:
            details["vid:pid"] = f"{info.vid:04x}:{info.pid or 0:04x}"
        for key in ("manufacturer", "product", "serial_number"):
            value = getattr(info, key, None)
            if value:
                details[key] = str(value)
        description = info.description if info.description and info.description != "n/a" else "serial port"
        found.append(BoardDescription(port_url(info.device), description, details))
    return found
