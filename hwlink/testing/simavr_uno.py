"""Genuine firmware on an emulated Arduino Uno: runs ``tools/simavr-bridge/uno_bridge`` and talks to its control socket.

The bridge (built by ``make firmware`` into ``.cache/simavr/``) runs an Intel HEX image in simavr, paced to real time,
with UART0 on a pty. Through the control socket a test drives input pins and ADC channels and sees every level
change of the output pins, stamped on the simulated clock (so pulse widths are measured as the pin saw them).

    with SimavrUno.start() as uno:                 # StandardFirmata 2.4 from avrgirl-arduino@5.0.1
        board = open_board(uno.url)                # firmata:///dev/pts/N
        uno.set_pin(2, 1); uno.set_adc(0, 2500); uno.pin(13); uno.pwm(9); uno.pulse_widths_usec(13)
"""

from __future__ import annotations

import queue
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BRIDGE = PROJECT_ROOT / ".cache" / "simavr" / "uno_bridge"
DEFAULT_FIRMWARE = PROJECT_ROOT / ".cache" / "firmata" / "package" / "junk" / "hex" / "uno" / "StandardFirmata.cpp.hex"
_READY = re.compile(r"READY pty=(\S+) ctrl=(\d+)")
_EVENT = re.compile(r"ev (\d+) ([01]) sim_us=(-?\d+) wall_us=(-?\d+)")


@dataclass(frozen=True)
class PinEvent:
    """A level change of an output pin, on the simulated clock and on CLOCK_MONOTONIC (µs)."""

    pin: int
    level: int
    sim_usec: int
    wall_usec: int


class SimavrUno:
    """A running bridge process; ``url`` opens its firmware with hwlink's Firmata driver."""

    def __init__(self, process: subprocess.Popen[bytes], pty: str, control: socket.socket) -> None:
        self.process = process
        self.pty = pty
        self.url = f"firmata://{pty}"
        self._control = control
        self._replies: queue.Queue[str] = queue.Queue()
        self._events: list[PinEvent] = []
        self._lock = threading.Lock()
        self._command_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_control, name="simavr-control", daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, firmware: Path = DEFAULT_FIRMWARE, bridge: Path = DEFAULT_BRIDGE, paced: bool = True,
              timeout: float = 10.0) -> SimavrUno:
        for path, what in ((bridge, "simavr bridge"), (firmware, "StandardFirmata image")):
            if not path.exists():
                raise FileNotFoundError(f"{what} {path} is missing: run `make firmware`")
        command = [str(bridge), str(firmware)] + ([] if paced else ["--free"])
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        assert process.stderr is not None
        first_line: queue.Queue[bytes] = queue.Queue()  # a thread, not select(): pipes are not selectable everywhere
        stderr = process.stderr
        threading.Thread(target=lambda: first_line.put(stderr.readline()), daemon=True).start()
        try:
            line = first_line.get(timeout=timeout).decode(errors="replace")
        except queue.Empty:
            line = ""
        match = _READY.search(line)
        if match is None:
            process.kill()
            process.wait()
            raise RuntimeError(f"simavr bridge did not start: {line.strip() or 'no READY line'}")
        control = socket.create_connection(("127.0.0.1", int(match.group(2))), timeout=timeout)
        control.settimeout(None)
        control.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(process, match.group(1), control)

    # ----- control commands -----------------------------------------------------------------------------
    def command(self, text: str, timeout: float = 5.0) -> str:
        with self._command_lock:
            self._control.sendall(text.encode() + b"\n")
            try:
                reply = self._replies.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"simavr bridge did not answer {text!r}") from None
        if reply.startswith("error"):
            raise ValueError(f"simavr bridge: {reply}")
        return reply

    def set_pin(self, pin: int, level: int) -> None:
        """Drive a pin from outside (Arduino numbering)."""
        self.command(f"set {pin} {1 if level else 0}")

    def set_adc(self, channel: int, millivolts: int) -> None:
        """Put a voltage on ADC channel A<channel> (AVCC is 5000 mV, so code = mV * 1023 / 5000)."""
        self.command(f"adc {channel} {millivolts}")

    def pin(self, pin: int) -> dict[str, int]:
        """The pin's PORT, DDR and PIN register bits."""
        reply = self.command(f"get {pin}")
        return {key: int(value) for key, value in re.findall(r"(\w+)=(\d)", reply)}

    def pwm(self, pin: int) -> int:
        """The output-compare register value (PWM duty 0..255) behind a PWM pin."""
        return int(self.command(f"pwm {pin}").split()[-1])

    # ----- observed output changes ----------------------------------------------------------------------
    def events(self, pin: int | None = None) -> list[PinEvent]:
        with self._lock:
            return [event for event in self._events if pin is None or event.pin == pin]

    def clear_events(self) -> None:
        with self._lock:
            self._events.clear()

    def wait_level(self, pin: int, level: int, timeout: float = 3.0) -> bool:
        """Wait until the pin is an output driving ``level`` (read from its registers)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.pin(pin)
            if state["ddr"] and state["port"] == level:
                return True
            time.sleep(0.005)
        return False

    def pulse_widths_usec(self, pin: int) -> np.ndarray:
        """High-pulse widths seen on the pin, on the simulated clock (µs)."""
        seen = self.events(pin)
        widths = [after.sim_usec - before.sim_usec for before, after in zip(seen, seen[1:])
                  if before.level == 1 and after.level == 0]
        return np.array(widths, dtype=np.int64)

    def _read_control(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self._control.recv(4096)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace").strip()
                match = _EVENT.fullmatch(line)
                if match:
                    event = PinEvent(*(int(group) for group in match.groups()))
                    with self._lock:
                        self._events.append(event)
                elif line:
                    self._replies.put(line)

    # ----- lifetime --------------------------------------------------------------------------------------
    def stop(self) -> None:
        try:
            self._control.close()
        except OSError:
            pass
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def __enter__(self) -> SimavrUno:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
