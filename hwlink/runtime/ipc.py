"""Message channel between the engine and a script worker process: one stream socket (an AF_UNIX pair, or
loopback TCP where the platform has no socket inheritance: ``hwlink.platform.start_worker``).

Why this IPC: a Unix socket pair costs at most one syscall per message (a few µs, far under the 0.5 ms goal),
needs no shared-memory bookkeeping, reports a dead peer as EOF at once, and the kernel buffer lets the reader
take many small messages in one ``recv`` (throughput). Every message is an 8-byte header
(payload length u32, kind u8, data type u8, port index u16) and a payload: stream items use the compact
encodings of ``hwlink.runtime.datatypes``; rare lifecycle messages are pickled (``hwlink.runtime.control``).

The engine side never blocks the thread that sends (a driver's reading thread must keep timestamping): it
tries a non-blocking send and leaves whatever the socket did not take to a flusher thread. The worker side
sends blocking, so a script that floods a port is slowed down instead of growing memory without bound.
"""

from __future__ import annotations

import pickle
import select
import socket
import struct
import threading
from typing import Any, NamedTuple

from hwlink.platform import try_send

HEADER = struct.Struct("<IBBH")
_HEADER_SIZE = HEADER.size
DATA = 1
CONTROL = 2
_RECV_CHUNK = 1 << 18


class Message(NamedTuple):
    kind: int
    data_type: int
    port: int
    payload: bytes

    def control(self) -> Any:
        """The control message (a ``hwlink.runtime.control`` dataclass; a (verb, fields) pair if sent so)."""
        return pickle.loads(self.payload)


def data_message(port: int, data_type: int, payload: bytes) -> bytes:
    return HEADER.pack(len(payload), DATA, data_type, port) + payload


def control_message(message: Any, **fields: Any) -> bytes:
    """A control message: a ``hwlink.runtime.control`` object, or a verb and fields (tools and tests)."""
    payload = pickle.dumps((message, fields) if isinstance(message, str) else message,
                           protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload), CONTROL, 0, 0) + payload


class Channel:
    """Framed messages over a connected stream socket; see the module docstring for the send policy."""

    def __init__(self, sock: socket.socket, *, blocking_send: bool) -> None:
        self.sock = sock
        self._blocking_send = blocking_send
        self._send_lock = threading.Lock()
        self._backlog = bytearray()
        self._backlog_ready = threading.Condition(self._send_lock)
        self._flusher: threading.Thread | None = None
        self._flushing = False
        self._closed = False
        self._buffer = bytearray()

    # ----- sending ------------------------------------------------------------------------------------------
    def send(self, message: bytes) -> None:
        """Send one framed message; raises BrokenPipeError/ConnectionError if the peer is gone."""
        with self._send_lock:
            if self._blocking_send:
                self.sock.sendall(message)
                return
            if self._backlog or self._flushing:
                self._backlog += message
                self._backlog_ready.notify()
                return
            sent = try_send(self.sock, message)  # 0 where the OS has no non-blocking send (Windows): flusher sends
            if sent < len(message):
                self._backlog += memoryview(message)[sent:]
                self._start_flusher()
                self._backlog_ready.notify()

    def send_control(self, message: Any, **fields: Any) -> None:
        self.send(control_message(message, **fields))

    def _start_flusher(self) -> None:
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_loop, name="hwlink-ipc-flush", daemon=True)
            self._flusher.start()

    def _flush_loop(self) -> None:
        """Drains the backlog with blocking sends, outside the lock so senders keep appending."""
        while True:
            with self._send_lock:
                while not self._backlog and not self._closed:
                    self._backlog_ready.wait()
                if self._closed:
                    return
                chunk = bytes(self._backlog)
                self._backlog.clear()
                self._flushing = True  # senders queue behind this chunk, keeping the order
            try:
                self.sock.sendall(chunk)
            except OSError:
                return
            with self._send_lock:
                self._flushing = False

    @property
    def backlog_bytes(self) -> int:
        return len(self._backlog)

    # ----- receiving ----------------------------------------------------------------------------------------
    def _take_messages(self) -> list[Message]:
        """Split the complete messages off the receive buffer (the hot loop of every receiver: one bytes copy of
        the buffer, then one slice and one tuple per message)."""
        buffer = self._buffer
        end = len(buffer)
        if end < _HEADER_SIZE:
            return []
        data = bytes(buffer)
        messages: list[Message] = []
        append = messages.append
        unpack = HEADER.unpack_from
        new = tuple.__new__
        position = 0
        while end - position >= _HEADER_SIZE:
            length, kind, data_type, port = unpack(data, position)
            start = position + _HEADER_SIZE
            stop = start + length
            if stop > end:
                break
            append(new(Message, (kind, data_type, port, data[start:stop])))
            position = stop
        if position:
            del buffer[:position]
        return messages

    def receive(self, timeout: float | None = None) -> list[Message]:
        """The messages that are complete within ``timeout`` seconds (None: wait for at least one).

        Raises EOFError when the peer closed its end.
        """
        messages = self._take_messages()
        if messages:
            return messages
        while True:
            if timeout is not None:
                readable, _, _ = select.select([self.sock], [], [], max(timeout, 0.0))
                if not readable:
                    return []
            chunk = self.sock.recv(_RECV_CHUNK)
            if not chunk:
                raise EOFError("peer closed the channel")
            self._buffer += chunk
            messages = self._take_messages()
            if messages:
                return messages

    def close(self) -> None:
        with self._send_lock:
            self._closed = True
            self._backlog_ready.notify_all()
        try:
            self.sock.close()
        except OSError:
            pass
