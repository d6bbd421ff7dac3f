"""The engine <-> worker channel at its limits: empty payloads, header field extremes, messages larger than one
receive, messages split at every byte, and the non-blocking sender's backlog."""

from __future__ import annotations

import pickle
import socket
import struct
import threading
import time

import numpy as np
import pytest

from hwlink.lines import LineCommand, LineCommandKind, LineReading
from hwlink.platform import portable
from hwlink.runtime import ipc
from hwlink.runtime.ipc import (
    CONTROL,
    DATA,
    HEADER,
    Channel,
    Message,
    control_message,
    data_message,
)
from hwlink.runtime.datatypes import (
    DataType,
    Frame,
    SignalBlockF32,
    SignalBlockI32,
    SignalBlockU16,
    decode,
    encode,
)


@pytest.fixture
def pair():
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sender, receiver = Channel(left, blocking_send=True), Channel(right, blocking_send=True)
    yield sender, receiver
    sender.close()
    receiver.close()


def receive_all(channel: Channel, count: int, timeout: float = 5.0) -> list[Message]:
    messages: list[Message] = []
    while len(messages) < count:
        got = channel.receive(timeout)
        assert got, f"timed out after {len(messages)} of {count} messages"
        messages += got
    return messages


def test_header_is_eight_bytes_little_endian() -> None:
    assert HEADER.size == 8
    assert data_message(0x0102, 3, b"xy") == b"\x02\x00\x00\x00\x01\x03\x02\x01xy"
    assert (DATA, CONTROL) == (1, 2)


def test_a_lone_zero_length_message_is_delivered(pair) -> None:
    """Bug caught: ``end - position >= HEADER.size`` changed to ``>`` (a header-only message at the end of the
    buffer is never taken)."""
    sender, receiver = pair
    sender.send(data_message(7, 3, b""))
    assert receiver.receive(5.0) == [Message(DATA, 3, 7, b"")]
    assert receiver.receive(0.05) == []


def test_zero_length_messages_between_others_keep_their_order(pair) -> None:
    sender, receiver = pair
    sender.send(data_message(1, 1, b"") + data_message(2, 2, b"a") + data_message(3, 3, b""))
    assert receive_all(receiver, 3) == [Message(DATA, 1, 1, b""), Message(DATA, 2, 2, b"a"), Message(DATA, 3, 3, b"")]


def test_header_fields_at_their_extremes(pair) -> None:
    sender, receiver = pair
    sender.send(data_message(0xFFFF, 0xFF, b"\xff"))
    sender.send(data_message(0, 0, b"\x00"))
    assert receive_all(receiver, 2) == [Message(DATA, 0xFF, 0xFFFF, b"\xff"), Message(DATA, 0, 0, b"\x00")]
    with pytest.raises(struct.error):
        data_message(0x10000, 0, b"")
    with pytest.raises(struct.error):
        data_message(0, 0x100, b"")


@pytest.mark.parametrize("size", [ipc._RECV_CHUNK - HEADER.size - 1, ipc._RECV_CHUNK - HEADER.size,
                                  ipc._RECV_CHUNK - HEADER.size + 1, 3 * ipc._RECV_CHUNK + 5])
def test_messages_around_and_beyond_one_receive_chunk(pair, size: int) -> None:
    sender, receiver = pair
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    thread = threading.Thread(target=sender.send, args=(data_message(5, 1, payload) + data_message(6, 1, b"!"),))
    thread.start()
    messages = receive_all(receiver, 2)
    thread.join(10)
    assert [m.port for m in messages] == [5, 6]
    assert messages[0].payload == payload and messages[1].payload == b"!"


def test_a_message_split_at_every_byte_arrives_whole_once() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    receiver = Channel(right, blocking_send=True)
    try:
        stream = data_message(9, 4, b"payload") + data_message(10, 4, b"")
        for cut in range(1, len(stream)):
            left.sendall(stream[:cut])
            first = receiver.receive(0.05)
            left.sendall(stream[cut:])
            rest = receive_all(receiver, 2 - len(first))
            assert first + rest == [Message(DATA, 4, 9, b"payload"), Message(DATA, 4, 10, b"")], cut
    finally:
        left.close()
        receiver.close()


def test_control_messages_round_trip(pair) -> None:
    sender, receiver = pair
    sender.send_control("start", at=12, names=["a"])
    sender.send(control_message("stop"))
    first, second = receive_all(receiver, 2)
    assert first.kind == CONTROL and (first.data_type, first.port) == (0, 0)
    assert first.control() == ("start", {"at": 12, "names": ["a"]})
    assert second.control() == ("stop", {})
    assert pickle.loads(first.payload) == ("start", {"at": 12, "names": ["a"]})


def test_timeout_zero_and_negative_return_at_once(pair) -> None:
    _, receiver = pair
    assert receiver.receive(0) == []
    assert receiver.receive(-1) == []


def test_eof_is_reported_once_the_buffer_is_drained(pair) -> None:
    sender, receiver = pair
    sender.send(data_message(1, 1, b"last"))
    sender.close()
    assert receive_all(receiver, 1) == [Message(DATA, 1, 1, b"last")]
    with pytest.raises(EOFError, match="peer closed"):
        receiver.receive(5.0)
    with pytest.raises(EOFError):
        receiver.receive(None)


def test_eof_in_the_middle_of_a_message_is_reported() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    receiver = Channel(right, blocking_send=True)
    left.sendall(data_message(1, 1, b"cut short")[:-1])
    left.close()
    with pytest.raises(EOFError):
        receiver.receive(5.0)
    receiver.close()


def test_non_blocking_sender_keeps_order_through_its_backlog() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sender, receiver = Channel(left, blocking_send=False), Channel(right, blocking_send=True)
    try:
        payloads = [bytes([i % 256]) * (1000 + i) for i in range(300)]
        for port, payload in enumerate(payloads):
            sender.send(data_message(port, 1, payload))  # never blocks: what the socket refuses goes to the backlog
        assert sender.backlog_bytes > 0 or sender._flusher is not None
        messages = receive_all(receiver, len(payloads), timeout=10.0)
        assert [m.port for m in messages] == list(range(300))
        assert [m.payload for m in messages] == payloads
    finally:
        sender.close()
        receiver.close()


def test_closed_peer_raises_on_blocking_send() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sender = Channel(left, blocking_send=True)
    right.close()
    with pytest.raises((BrokenPipeError, ConnectionError)):
        for _ in range(100):
            sender.send(data_message(1, 1, bytes(100_000)))
    sender.close()
    sender.close()  # closing twice is harmless


# ----- stream payloads at their size limits ---------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(0,), (0, 0), (1, 0, 3), (1,), (1, 1), (480, 640, 3)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_frames_of_every_edge_shape_round_trip(shape: tuple[int, ...], dtype) -> None:
    mat = (np.arange(int(np.prod(shape))) % 251).astype(dtype).reshape(shape)
    back = decode(DataType.Frame, encode(DataType.Frame, Frame(2**64 - 1, -(2**63), mat)))
    assert (back.index, back.time_usec) == (2**64 - 1, -(2**63))
    assert back.mat.shape == shape and back.mat.dtype == dtype and np.array_equal(back.mat, mat)


def test_a_frame_larger_than_a_receive_chunk_crosses_the_channel(pair) -> None:
    sender, receiver = pair
    mat = (np.arange(720 * 1280 * 3) % 256).astype(np.uint8).reshape(720, 1280, 3)  # 2.6 MB > 256 kB chunks
    message = data_message(3, int(DataType.Frame), encode(DataType.Frame, Frame(1, 2, mat)))
    thread = threading.Thread(target=sender.send, args=(message,))
    thread.start()
    (got,) = receive_all(receiver, 1, timeout=10.0)
    thread.join(10)
    assert np.array_equal(decode(DataType.Frame, got.payload).mat, mat)


@pytest.mark.parametrize("row", [[], [""], ["", ""], ["ä" * 70_000], ["a", "", "b"]])
def test_table_rows_at_their_edges(row: list[str]) -> None:
    assert decode(DataType.TableRow, encode(DataType.TableRow, row)) == row


@pytest.mark.parametrize("cls", [SignalBlockI32, SignalBlockU16, SignalBlockF32])
@pytest.mark.parametrize("rows, cols", [(0, 1), (0, 0), (1, 1), (1, 64)])
def test_signal_blocks_at_their_edges(cls, rows: int, cols: int) -> None:
    block = cls.of(np.arange(rows, dtype=np.int64), np.ones((rows, cols)))
    back = decode(cls.data_type, encode(cls.data_type, block))
    assert (back.rows, back.cols) == (rows, cols) and back.data.shape == (rows, cols)
    assert np.array_equal(back.data, block.data) and np.array_equal(back.timestamps, block.timestamps)


@pytest.mark.parametrize("device", [None, -(2**63) + 1, 2**63 - 1, 0])
def test_reading_device_time_extremes(device) -> None:
    reading = LineReading(65535, 2**32 - 1, -(2**63), device)
    assert decode(DataType.LineReading, encode(DataType.LineReading, reading)) == reading


def test_command_payload_extremes_and_an_unknown_kind() -> None:
    command = LineCommand(LineCommandKind.DEVICE_SPECIFIC, 65535, 2**32 - 1, -(2**63), 15, b"\xff" * 1000)
    assert decode(DataType.LineCommand, encode(DataType.LineCommand, command)) == command
    raw = bytearray(LineCommand().to_bytes())
    raw[0] = 99  # a kind no version knows
    with pytest.raises(ValueError, match="99"):
        decode(DataType.LineCommand, bytes(raw))


# ----- the non-blocking sender's backlog, made deterministic at the socket seam ---------------------------------
NATIVE_SEND = pytest.mark.skipif(
    portable("ipc"), reason="native path only: the forced portable ipc seam never sends directly (as on Windows, "
                            "which has no per-call non-blocking send); tests/test_platform.py runs the flusher path")


class ThrottledSocket:
    """A real socket whose first non-blocking send takes only ``first_send`` bytes (a full kernel buffer) and whose
    blocking sends start late (a slow reader): the windows in which a sender could overtake the backlog."""

    def __init__(self, sock: socket.socket, first_send: int, sendall_delay: float = 0.2) -> None:
        self.sock = sock
        self.first_send = first_send
        self.sendall_delay = sendall_delay
        self.sends = 0
        self.sendalls = 0

    def send(self, data, flags: int = 0) -> int:
        self.sends += 1
        if self.sends == 1:
            return self.sock.send(bytes(data)[:self.first_send], flags)
        return self.sock.send(data, flags)

    def sendall(self, data) -> None:
        self.sendalls += 1
        time.sleep(self.sendall_delay)
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


def flusher_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "hwlink-ipc-flush"]


@NATIVE_SEND
def test_later_messages_queue_behind_the_backlog_and_direct_sends_resume_after_it() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    throttled = ThrottledSocket(left, first_send=10)
    sender, receiver = Channel(throttled, blocking_send=False), Channel(right, blocking_send=True)  # type: ignore[arg-type]
    try:
        before = set(flusher_threads())
        first, second = data_message(1, 1, bytes(range(200))), data_message(2, 1, b"second")
        sender.send(first)  # 10 bytes go out, the rest is backlog for the flusher (busy in its slow sendall)
        deadline = time.monotonic() + 5
        while sender.backlog_bytes and time.monotonic() < deadline:  # the flusher took the backlog...
            time.sleep(0.001)
        sender.send(second)  # ...and is still sending it: this must queue behind it, never go out directly
        assert throttled.sends == 1
        started = [thread for thread in flusher_threads() if thread not in before]
        assert len(started) == 1 and started[0].daemon  # a stuck peer never keeps the process alive
        assert receive_all(receiver, 2) == [Message(DATA, 1, 1, bytes(range(200))), Message(DATA, 1, 2, b"second")]
        deadline = time.monotonic() + 5
        while (sender.backlog_bytes or sender._flushing) and time.monotonic() < deadline:
            time.sleep(0.01)
        calls = throttled.sendalls
        time.sleep(0.5)
        assert throttled.sendalls == calls  # an idle flusher waits instead of spinning on empty sends
        sender.send(data_message(3, 1, b"third"))  # backlog drained: straight out again
        assert throttled.sends == 2 and throttled.sendalls == calls
        assert receive_all(receiver, 1) == [Message(DATA, 1, 3, b"third")]
        sender.close()
        started[0].join(2)
        assert not started[0].is_alive()  # closing ends the flusher
    finally:
        sender.close()
        receiver.close()


@NATIVE_SEND
def test_a_fully_sent_message_starts_no_flusher() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sender, receiver = Channel(left, blocking_send=False), Channel(right, blocking_send=True)
    try:
        before = set(flusher_threads())
        sender.send(data_message(1, 1, b"small"))
        assert sender.backlog_bytes == 0 and set(flusher_threads()) == before
        assert receive_all(receiver, 1) == [Message(DATA, 1, 1, b"small")]
    finally:
        sender.close()
        receiver.close()


@NATIVE_SEND
def test_the_blocking_side_blocks_instead_of_queueing() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sender, receiver = Channel(left, blocking_send=True), Channel(right, blocking_send=True)
    try:
        before = set(flusher_threads())
        big = data_message(1, 1, bytes(2_000_000))
        thread = threading.Thread(target=sender.send, args=(big,), daemon=True)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive()  # held back by the reader, not buffered in memory
        assert sender.backlog_bytes == 0 and set(flusher_threads()) == before
        assert [m.payload for m in receive_all(receiver, 1, timeout=10.0)] == [bytes(2_000_000)]
        thread.join(5)
        assert not thread.is_alive()
    finally:
        sender.close()
        receiver.close()


def test_complete_messages_before_a_partial_one_are_returned_at_once() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    receiver = Channel(right, blocking_send=True)
    try:
        second = data_message(2, 1, b"second")
        for cut in (5, HEADER.size, HEADER.size + 3):  # inside the header, exactly the header, inside the payload
            left.sendall(data_message(1, 1, b"first") + second[:cut])
            assert receiver.receive(5.0) == [Message(DATA, 1, 1, b"first")], cut
            left.sendall(second[cut:])
            assert receiver.receive(5.0) == [Message(DATA, 1, 2, b"second")], cut
    finally:
        left.close()
        receiver.close()


def test_a_zero_timeout_polls_without_waiting() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    receiver = Channel(right, blocking_send=True)
    try:
        started = time.monotonic()
        assert receiver.receive(0.0) == []
        assert time.monotonic() - started < 0.9  # a poll, not a wait (a 1 s wait would be a bug)
        left.close()
        with pytest.raises(EOFError, match="^peer closed the channel$"):
            receiver.receive(1.0)
    finally:
        receiver.close()
