"""A software Firmata board: the device side of StandardFirmata on an Uno layout, served over a pty or TCP.

It is a test peer for anything that speaks Firmata (hwlink's driver, pymata4): real bytes over a real pty or
socket, scriptable from the test, with faults on demand. Behaviour follows StandardFirmata (2.4, 2.5) and
FirmataExpress: default pin modes after reset, ANALOG mode toggling channel reporting, REPORT_DIGITAL/ANALOG
answering at once, digital inputs reported per port on change, analog inputs streamed every sampling interval,
SET_DIGITAL_PIN_VALUE only from 2.5 on, "Unknown pin mode" for modes the firmware lacks (PULLUP on 2.4).

    board = SoftFirmataBoard(jumpers={13: 2})      # pin 13 wired to pin 2
    url = board.start_pty()                        # or board.start_tcp() -> 'firmata+socket://127.0.0.1:PORT'
    board.set_digital_input(7, 1); board.set_analog_input("A0", 512)
    board.output_level(13); board.wait_output(13, 1); board.pulse_widths_usec(13)
    board.inject(b"\\x42\\xf0\\x60\\xf7"); board.mute(); board.unplug(); board.replug(); board.reboot(0.5)
    board.stop()

``python -m hwlink.testing.firmata_board [--tcp PORT] [--jumper 13:2] [--firmware standard-2.4]`` serves one
from the shell and prints its URL.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import select
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from hwlink.drivers import firmata_protocol as fp
from hwlink.drivers.firmata_protocol import PinMode
from hwlink.platform import Waker, clock_ns, open_raw_pty

TOTAL_PINS = 20
ANALOG_FIRST = 14
PWM_PINS = (3, 5, 6, 9, 10, 11)
ADC_MAX = 1023


@dataclass(frozen=True)
class FirmwareProfile:
    """What the emulated firmware is: names, versions and the differences that matter to a client."""

    name: str
    firmware_version: tuple[int, int]
    protocol_version: tuple[int, int]
    has_pullup: bool
    announces: bool  # sends version + firmware report when it boots
    instance_id: int | None = None  # FirmataExpress ARE_YOU_THERE id


PROFILES = {
    "standard-2.5": FirmwareProfile("StandardFirmata.ino", (2, 5), (2, 5), has_pullup=True, announces=True),
    "standard-2.4": FirmwareProfile("StandardFirmata.ino", (2, 4), (2, 4), has_pullup=False, announces=True),
    "express": FirmwareProfile("FirmataExpress.ino", (1, 2), (2, 5), has_pullup=True, announces=False,
                               instance_id=1),
}


def uno_capabilities(has_pullup: bool) -> list[dict[int, int]]:
    """The Uno's capability report as StandardFirmata sends it: pins 0-1 (serial) without modes."""
    pins: list[dict[int, int]] = [{}, {}]
    for pin in range(2, TOTAL_PINS):
        modes = {PinMode.INPUT: 1, PinMode.OUTPUT: 1}
        if has_pullup:
            modes[PinMode.PULLUP] = 1
        if pin >= ANALOG_FIRST:
            modes[PinMode.ANALOG] = 10
        if pin in PWM_PINS:
            modes[PinMode.PWM] = 8
        modes[PinMode.SERVO] = 14
        if pin in (18, 19):
            modes[PinMode.I2C] = 1
        pins.append(modes)
    return pins


class SoftFirmataBoard:
    """One emulated board; start it with ``start_pty()`` or ``start_tcp()``, stop it with ``stop()``."""

    def __init__(self, firmware: str | FirmwareProfile = "standard-2.5", jumpers: dict[int, int] | None = None,
                 reset_on_connect_s: float | None = None, capabilities: list[dict[int, int]] | None = None) -> None:
        """``capabilities`` replaces the Uno's per-pin {mode: resolution} (same 20 pins), e.g. 16-bit PWM."""
        self.profile = PROFILES[firmware] if isinstance(firmware, str) else firmware
        self.capabilities = capabilities or uno_capabilities(self.profile.has_pullup)
        self.jumpers = dict(jumpers or {})
        self.reset_on_connect_s = reset_on_connect_s
        self.on_output: Callable[[int, int, int], None] | None = None  # (pin, level, monotonic ns)
        self.url = ""
        self.commands: list[tuple[int, bytes]] = []  # every message received, in order
        self.unknown: list[tuple[int, bytes]] = []  # messages the firmware has no handler for
        self._lock = threading.RLock()  # board state
        self._write_lock = threading.Lock()
        self._events: list[tuple[int, int, int]] = []
        self._parser = fp.FirmataParser(from_board=False)
        self._waker: Waker | None = Waker()
        self._thread: threading.Thread | None = None
        self._running = False
        self._muted = False
        self._boot_until = 0.0
        self._announce_due = False
        self._requests: list[tuple[Callable[[], None], threading.Event]] = []
        self._driven: dict[int, int] = {}  # levels the outside world puts on pins
        self._analog_values = [0] * (TOTAL_PINS - ANALOG_FIRST)
        self._observed = [0] * TOTAL_PINS  # output levels as last recorded
        # transports
        self._master: int | None = None
        self._slave: int | None = None
        self._link_dir: Path | None = None
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._tcp_address: tuple[str, int] | None = None
        self._system_reset()

    # ----- starting and stopping ----------------------------------------------------------------------
    def start_pty(self) -> str:
        """Serve on a new pty; returns the board URL (a stable symlink path that survives ``replug()``)."""
        self._link_dir = Path(tempfile.mkdtemp(prefix="hwlink-firmata-"))
        self._open_pty()
        self.url = f"firmata://{self.path}"
        self._start_thread()
        return self.url

    def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on a TCP socket (one client at a time); returns ``firmata+socket://HOST:PORT``."""
        self._listen(host, port)
        assert self._tcp_address is not None
        self.url = f"firmata+socket://{self._tcp_address[0]}:{self._tcp_address[1]}"
        self._start_thread()
        return self.url

    @property
    def path(self) -> str:
        """The pty's stable path (a symlink to the current /dev/pts/N)."""
        assert self._link_dir is not None, "not started on a pty"
        return str(self._link_dir / "tty")

    def stop(self) -> None:
        if self._waker is None:
            return
        self._running = False
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._close_transports()
        if self._link_dir is not None:
            Path(self.path).unlink(missing_ok=True)
            self._link_dir.rmdir()
            self._link_dir = None
        self._waker.close()
        self._waker = None

    def __enter__(self) -> SoftFirmataBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- the outside world ----------------------------------------------------------------------------
    def set_digital_input(self, pin: int, level: int) -> int:
        """Drive an input pin from outside; returns the monotonic ns at which the port report (if any) was sent."""
        with self._lock:
            self._driven[pin] = 1 if level else 0
            return self._update_inputs()

    def release_input(self, pin: int) -> None:
        """Stop driving a pin from outside (it floats low, or reads high with the pull-up on)."""
        with self._lock:
            self._driven.pop(pin, None)
            self._update_inputs()

    def set_analog_input(self, pin: int | str, value: int) -> None:
        """Set what an analog input reads: by pin (14), name ('A0') or channel given as 'A<n>'."""
        channel = self._channel(pin)
        with self._lock:
            self._analog_values[channel] = int(np.clip(value, 0, ADC_MAX))

    def output_level(self, pin: int) -> int:
        """What the pin drives when it is an output (0 otherwise)."""
        with self._lock:
            return self._port_register[pin] if self._modes[pin] == PinMode.OUTPUT else 0

    def pwm_value(self, pin: int) -> int:
        with self._lock:
            return self._pwm[pin]

    def pin_mode(self, pin: int) -> int:
        with self._lock:
            return self._modes[pin]

    @property
    def sampling_interval_ms(self) -> int:
        return self._sampling_ms

    def reporting_channels(self) -> set[int]:
        with self._lock:
            return set(self._reporting_analog)

    def output_events(self, pin: int | None = None) -> list[tuple[int, int, int]]:
        """Output level changes so far as (pin, level, monotonic ns)."""
        with self._lock:
            return [event for event in self._events if pin is None or event[0] == pin]

    def clear_events(self) -> None:
        with self._lock:
            self._events.clear()

    def pulse_widths_usec(self, pin: int) -> np.ndarray:
        """Widths of the complete high pulses seen on an output pin, in µs (from its level changes)."""
        times = np.array([t for _, _, t in self.output_events(pin)], dtype=np.int64)
        levels = np.array([level for _, level, _ in self.output_events(pin)], dtype=np.int64)
        rising = np.flatnonzero(levels == 1)
        rising = rising[rising + 1 < len(levels)]
        return (times[rising + 1] - times[rising]) // 1000

    def wait_for(self, condition: Callable[[], bool], timeout: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    def wait_output(self, pin: int, level: int, timeout: float = 2.0) -> bool:
        return self.wait_for(lambda: self.output_level(pin) == level, timeout)

    # ----- faults ----------------------------------------------------------------------------------------
    def inject(self, data: bytes) -> None:
        """Send raw bytes to the client (garbage, truncated or unknown messages)."""
        self._send(bytes(data))

    def mute(self, muted: bool = True) -> None:
        """A board that never answers: input is ignored and nothing is sent."""
        self._muted = muted

    def unplug(self) -> None:
        """The port vanishes: the pty closes (and its path disappears) or the TCP peer and listener go away."""
        self._on_device_thread(self._close_transports)

    def replug(self) -> None:
        """Come back after ``unplug()`` on the same path or TCP port, freshly booted."""
        def plug_in() -> None:
            if self._link_dir is not None:
                self._open_pty()
            else:
                assert self._tcp_address is not None
                self._listen(*self._tcp_address)
            self.reboot(0.0)
        self._on_device_thread(plug_in)

    def _on_device_thread(self, action: Callable[[], None]) -> None:
        """Run ``action`` between two select() calls, so no file descriptor is closed under the loop."""
        done = threading.Event()
        with self._lock:
            self._requests.append((action, done))
        self._wake()
        if not done.wait(timeout=2):
            raise TimeoutError("the software Firmata board did not respond")

    def reboot(self, boot_s: float = 0.0) -> None:
        """Reset as an Uno does when its port is opened: deaf for ``boot_s``, then announce (StandardFirmata)."""
        with self._lock:
            self._system_reset()
            self._boot_until = time.monotonic() + boot_s
            self._announce_due = self.profile.announces
        self._wake()

    # ----- transports ------------------------------------------------------------------------------------
    def _open_pty(self) -> None:
        master, slave, slave_path = open_raw_pty()  # raw, non-blocking master (POSIX only)
        self._master, self._slave = master, slave
        assert self._link_dir is not None
        link = self._link_dir / "tty"
        staging = self._link_dir / "tty.new"
        staging.unlink(missing_ok=True)
        staging.symlink_to(slave_path)
        os.replace(staging, link)

    def _listen(self, host: str, port: int) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(1)
        self._listener = listener
        self._tcp_address = listener.getsockname()[:2]

    def _close_transports(self) -> None:
        with self._write_lock:
            for fd in (self._master, self._slave):
                if fd is not None:
                    os.close(fd)
            self._master = self._slave = None
        if self._link_dir is not None:
            (self._link_dir / "tty").unlink(missing_ok=True)
        for sock in (self._client, self._listener):
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
        self._client = self._listener = None

    def _send(self, data: bytes) -> None:
        if self._muted or time.monotonic() < self._boot_until:
            return
        with self._write_lock:
            if self._master is not None:
                view = memoryview(data)
                while view:
                    try:
                        view = view[os.write(self._master, view):]
                    except (BlockingIOError, OSError):
                        return
            elif self._client is not None:
                try:
                    self._client.sendall(data)
                except OSError:
                    pass

    def _wake(self) -> None:
        waker = self._waker
        if waker is not None:
            waker.wake()

    # ----- device loop -----------------------------------------------------------------------------------
    def _start_thread(self) -> None:
        self._running = True
        self._next_sample = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="soft-firmata", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self._running:
            with self._lock:
                assert self._waker is not None
                wake_fd = self._waker.fileno()
                sources: list[int | socket.socket] = [wake_fd]
                for source in (self._master, self._listener, self._client):
                    if source is not None:
                        sources.append(source)
                timeout = self._next_deadline()
            try:
                readable, _, _ = select.select(sources, [], [], timeout)
            except (OSError, ValueError):  # a transport closed under us: rebuild the list
                readable = []
            if wake_fd in readable:
                self._waker.drain()
            with self._lock:
                requests, self._requests = self._requests, []
                for action, done in requests:
                    action()
                    done.set()
                if requests:
                    continue
                if readable and readable != [wake_fd]:
                    self._serve(readable)
                self._tick()

    def _next_deadline(self) -> float | None:
        now = time.monotonic()
        deadlines = []
        if self._boot_until > now or self._announce_due:
            deadlines.append(self._boot_until)
        if self._reporting_analog:
            deadlines.append(self._next_sample)
        return max(0.0, min(deadlines) - now) if deadlines else None

    def _serve(self, readable: list[int | socket.socket]) -> None:
        if self._listener is not None and self._listener in readable:
            client, _ = self._listener.accept()
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._client is not None:
                self._client.close()
            self._client = client
            if self.reset_on_connect_s is not None:
                self.reboot(self.reset_on_connect_s)
            return
        data = b""
        try:
            if self._master is not None and self._master in readable:
                data = os.read(self._master, 4096)
            elif self._client is not None and self._client in readable:
                data = self._client.recv(4096)
                if not data:  # the client closed: wait for the next one
                    self._client.close()
                    self._client = None
        except BlockingIOError:
            return
        except OSError:
            if self._client is not None:
                self._client.close()
                self._client = None
            return
        if self._muted or time.monotonic() < self._boot_until:
            return
        for command, payload in self._parser.feed(data):
            self.commands.append((command, payload))
            self._handle(command, payload)

    def _tick(self) -> None:
        now = time.monotonic()
        if self._announce_due and now >= self._boot_until:
            self._announce_due = False
            self._send(self._version_message() + self._firmware_message())
        if self._reporting_analog and now >= self._next_sample:
            self._next_sample = max(self._next_sample + self._sampling_ms / 1000, now)
            self._send(b"".join(fp.analog_message(channel, self._analog_values[channel])
                                for channel in sorted(self._reporting_analog)))

    # ----- firmware behaviour ----------------------------------------------------------------------------
    def _system_reset(self) -> None:
        with self._lock:
            self._modes = [PinMode.ANALOG if pin >= ANALOG_FIRST else PinMode.OUTPUT for pin in range(TOTAL_PINS)]
            self._modes[0] = self._modes[1] = PinMode.SERIAL
            self._port_register = [0] * TOTAL_PINS
            self._pwm = [0] * TOTAL_PINS
            self._jumper_levels: dict[int, int] = {}
            self._reporting_ports: set[int] = set()
            self._reporting_analog: set[int] = set()
            self._last_sent_ports: dict[int, int] = {}
            self._sampling_ms = 19
            for pin in range(TOTAL_PINS):
                self._refresh_output(pin)

    def _version_message(self) -> bytes:
        return bytes((fp.REPORT_VERSION, *self.profile.protocol_version))

    def _firmware_message(self) -> bytes:
        return fp.firmware_report(*self.profile.firmware_version, self.profile.name)

    def _handle(self, command: int, data: bytes) -> None:
        high = command & 0xF0
        if command == fp.REPORT_VERSION:
            self._send(self._version_message())
        elif command == fp.SET_PIN_MODE:
            self._set_mode(data[0], data[1])
        elif command == fp.SET_DIGITAL_PIN_VALUE and self.profile.protocol_version >= (2, 5):
            pin = data[0]
            if pin < TOTAL_PINS and self._modes[pin] == PinMode.OUTPUT:
                self._drive_output(pin, data[1] & 1)
        elif high == fp.DIGITAL_MESSAGE:
            self._write_port(command & 0x0F, data[0] | (data[1] << 7))
        elif high == fp.ANALOG_MESSAGE:
            self._analog_write(command & 0x0F, data[0] | (data[1] << 7))
        elif high == fp.REPORT_ANALOG:
            self._report_analog(command & 0x0F, bool(data[0]))
        elif high == fp.REPORT_DIGITAL:
            port = command & 0x0F
            if data[0]:
                self._reporting_ports.add(port)
                self._send_port(port, force=True)
            else:
                self._reporting_ports.discard(port)
        elif command == fp.SYSTEM_RESET:
            self._system_reset()
        elif command == fp.START_SYSEX:
            self._handle_sysex(data[0], data[1:])
        else:
            self.unknown.append((command, data))

    def _handle_sysex(self, sysex_id: int, payload: bytes) -> None:
        if sysex_id == fp.REPORT_FIRMWARE:
            self._send(self._firmware_message())
        elif sysex_id == fp.CAPABILITY_QUERY:
            self._send(fp.encode_capabilities(self.capabilities))
        elif sysex_id == fp.ANALOG_MAPPING_QUERY:
            mapping = [pin - ANALOG_FIRST if pin >= ANALOG_FIRST else fp.NO_ANALOG_CHANNEL for pin in range(TOTAL_PINS)]
            self._send(fp.sysex(fp.ANALOG_MAPPING_RESPONSE, mapping))
        elif sysex_id == fp.PIN_STATE_QUERY and payload:
            pin = payload[0]
            if pin < TOTAL_PINS:
                state = self._pwm[pin] if self._modes[pin] == PinMode.PWM else self._port_register[pin]
                self._send(fp.sysex(fp.PIN_STATE_RESPONSE, bytes((pin, self._modes[pin])) + fp.split7(state)))
        elif sysex_id == fp.SAMPLING_INTERVAL and len(payload) >= 2:
            self._sampling_ms = max(1, fp.join7(payload[:2]))
        elif sysex_id == fp.EXTENDED_ANALOG and len(payload) >= 2:
            self._analog_write(payload[0], fp.join7(payload[1:]))
        elif sysex_id == fp.ARE_YOU_THERE and self.profile.instance_id is not None:
            self._send(fp.sysex(fp.I_AM_HERE, (self.profile.instance_id,)))
        else:
            self.unknown.append((fp.START_SYSEX, bytes((sysex_id,)) + payload))

    def _set_mode(self, pin: int, mode: int) -> None:
        if pin >= TOTAL_PINS or mode not in self.capabilities[pin]:
            self._send(fp.sysex(fp.STRING_DATA, fp.encode_string("Unknown pin mode")))
            return
        previous = self._modes[pin]
        if pin >= ANALOG_FIRST:
            self._report_analog(pin - ANALOG_FIRST, mode == PinMode.ANALOG)
        if previous == PinMode.PWM:
            self._pwm[pin] = 0
        self._modes[pin] = PinMode(mode)
        if mode == PinMode.INPUT:
            self._port_register[pin] = 0
        elif mode == PinMode.PULLUP:
            self._port_register[pin] = 1
        elif mode == PinMode.OUTPUT and previous == PinMode.PWM:
            self._port_register[pin] = 0
        self._refresh_output(pin)
        self._update_inputs()

    def _write_port(self, port: int, mask: int) -> None:
        for bit in range(8):
            pin = port * 8 + bit
            if pin >= TOTAL_PINS:
                break
            level = (mask >> bit) & 1
            if self._modes[pin] == PinMode.OUTPUT:
                self._drive_output(pin, level)
            elif self._modes[pin] == PinMode.INPUT and level:  # legacy: writing 1 to an input enables the pull-up
                self._port_register[pin] = 1
        self._update_inputs()

    def _analog_write(self, pin: int, value: int) -> None:
        if pin < TOTAL_PINS and self._modes[pin] == PinMode.PWM:
            self._pwm[pin] = value

    def _report_analog(self, channel: int, enable: bool) -> None:
        if channel >= len(self._analog_values):
            return
        if enable:
            if not self._reporting_analog:
                self._next_sample = time.monotonic() + self._sampling_ms / 1000
            self._reporting_analog.add(channel)
            self._send(fp.analog_message(channel, self._analog_values[channel]))
        else:
            self._reporting_analog.discard(channel)

    def _drive_output(self, pin: int, level: int) -> None:
        self._port_register[pin] = level
        self._refresh_output(pin)

    def _refresh_output(self, pin: int) -> None:
        """Record a change of what the pin drives, and pass it through a jumper."""
        level = self._port_register[pin] if self._modes[pin] == PinMode.OUTPUT else 0
        if level == self._observed[pin]:
            return
        self._observed[pin] = level
        now = clock_ns()
        self._events.append((pin, level, now))
        if self.on_output is not None:
            self.on_output(pin, level, now)
        if pin in self.jumpers:
            self._jumper_levels[self.jumpers[pin]] = level
            self._update_inputs()

    def _input_level(self, pin: int) -> int:
        if pin in self._driven:
            return self._driven[pin]
        if pin in self._jumper_levels:
            return self._jumper_levels[pin]
        return 1 if self._modes[pin] == PinMode.PULLUP or self._port_register[pin] else 0

    def _port_value(self, port: int) -> int:
        value = 0
        for bit in range(8):
            pin = port * 8 + bit
            if pin < TOTAL_PINS and self._modes[pin] in (PinMode.INPUT, PinMode.PULLUP) and self._input_level(pin):
                value |= 1 << bit
        return value

    def _send_port(self, port: int, force: bool = False) -> int:
        value = self._port_value(port)
        if not force and self._last_sent_ports.get(port, 0) == value:
            return 0
        self._last_sent_ports[port] = value
        sent_at = clock_ns()  # before the write: a client may see the bytes before write() returns
        self._send(fp.digital_message(port, value))
        return sent_at

    def _update_inputs(self) -> int:
        sent_at = clock_ns()
        for port in sorted(self._reporting_ports):
            sent_at = self._send_port(port) or sent_at
        return sent_at

    def _channel(self, pin: int | str) -> int:
        text = str(pin).strip().upper()
        if text.startswith("A"):
            return int(text[1:])
        number = int(text)
        if not ANALOG_FIRST <= number < TOTAL_PINS:
            raise ValueError(f"pin {pin} has no analog channel (analog pins are {ANALOG_FIRST}..{TOTAL_PINS - 1})")
        return number - ANALOG_FIRST


class BoardProcess:
    """A SoftFirmataBoard in a child process, so the board does not share the client's GIL (latency measurements).

    ``call("set_digital_input", 2, 1)`` runs the board's method in the child and returns its result.
    """

    def __init__(self, transport: str = "pty", **board_options: object) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve_in_process, args=(child, transport, board_options),
                                        name="soft-firmata", daemon=True)
        self._process.start()
        if not self._connection.poll(30):
            self._process.kill()
            raise RuntimeError("the software Firmata board process did not start")
        self.url, self.path = self._connection.recv()

    def call(self, method: str, *args: object) -> object:
        self._connection.send((method, args))
        ok, value = self._connection.recv()
        if not ok:
            raise RuntimeError(f"software board {method}{args}: {value}")
        return value

    def stop(self) -> None:
        if self._process.is_alive():
            self._connection.send(("stop", ()))
            self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
        self._connection.close()

    def __enter__(self) -> BoardProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve_in_process(connection: Connection, transport: str, board_options: dict) -> None:
    board = SoftFirmataBoard(**board_options)  # type: ignore[arg-type]
    url = board.start_pty() if transport == "pty" else board.start_tcp()
    connection.send((url, board.path if transport == "pty" else None))
    try:
        while True:
            method, args = connection.recv()
            if method == "stop":
                break
            try:
                connection.send((True, getattr(board, method)(*args)))
            except Exception as error:  # noqa: BLE001 - reported to the caller
                connection.send((False, repr(error)))
    finally:
        board.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m hwlink.testing.firmata_board", description=__doc__.split("\n")[0])
    parser.add_argument("--tcp", type=int, metavar="PORT", help="serve on 127.0.0.1:PORT instead of a pty")
    parser.add_argument("--firmware", choices=sorted(PROFILES), default="standard-2.5")
    parser.add_argument("--jumper", action="append", default=[], metavar="OUT:IN", help="wire an output to an input")
    args = parser.parse_args()
    jumpers = {int(a): int(b) for a, b in (item.split(":") for item in args.jumper)}
    board = SoftFirmataBoard(args.firmware, jumpers=jumpers)
    url = board.start_tcp(port=args.tcp) if args.tcp is not None else board.start_pty()
    print(url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()


if __name__ == "__main__":
    main()
