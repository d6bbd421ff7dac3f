"""Stream types, their wire codec, and the engine <-> worker channel."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwlink.lines import ControlCommand, ControlCommandKind, LineCommand, LineCommandKind, LineModeFlags, LineReading
from hwlink.runtime.ipc import CONTROL, DATA, Channel, data_message
from hwlink.runtime.datatypes import (
    DataType,
    Frame,
    SignalBlockF32,
    SignalBlockI32,
    SignalBlockU16,
    can_connect,
    check_item,
    convert_signal,
    decode,
    encode,
)


def roundtrip(data_type: DataType, item: object) -> object:
    return decode(data_type, encode(data_type, item))


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF_FFFF), st.integers(-(2**62), 2**62),
       st.one_of(st.none(), st.integers(-(2**62), 2**62)))
def test_line_reading_roundtrip_keeps_the_device_time(line: int, value: int, time_usec: int,
                                                      device: int | None) -> None:
    reading = LineReading(line, value, time_usec, device)
    assert roundtrip(DataType.LineReading, reading) == reading
    assert encode(DataType.LineReading, reading)[:14] == reading.to_bytes()  # Syntalos' layout first


@given(st.text(), st.lists(st.text(), max_size=5), st.binary(max_size=40))
def test_text_and_command_roundtrips(command_text: str, row: list[str], extra: bytes) -> None:
    control = ControlCommand(ControlCommandKind.START, 2000, command_text)
    assert roundtrip(DataType.ControlCommand, control) == control
    assert roundtrip(DataType.TableRow, row) == row
    command = LineCommand(LineCommandKind.SET_MODE, 7, 0, 0, LineModeFlags.IS_INPUT | LineModeFlags.PULL_UP, extra)
    assert roundtrip(DataType.LineCommand, command) == command


@pytest.mark.parametrize("cls", [SignalBlockI32, SignalBlockU16, SignalBlockF32])
def test_signal_block_and_frame_roundtrip(cls: type) -> None:
    block = cls.of(np.arange(5) * 1000, np.arange(15).reshape(5, 3))
    back = roundtrip(cls.data_type, block)
    assert back.data.dtype == cls.dtype and back.rows == 5 and back.cols == 3
    assert np.array_equal(back.timestamps, block.timestamps) and np.array_equal(back.data, block.data)
    frame = Frame(3, 1234, np.arange(24, dtype=np.uint16).reshape(2, 4, 3))
    frame_back = roundtrip(DataType.Frame, frame)
    assert (frame_back.index, frame_back.time_usec) == (3, 1234)
    assert frame_back.mat.dtype == np.uint16 and np.array_equal(frame_back.mat, frame.mat)


def test_signal_conversion_and_type_rules() -> None:
    floats = SignalBlockF32.of(np.arange(3), np.array([[np.nan], [1e12], [-2.6]]))
    assert convert_signal(floats, DataType.SignalBlockI32).data.ravel().tolist() == [0, 2**31 - 1, -2]
    assert can_connect(DataType.SignalBlockU16, DataType.SignalBlockF32)
    assert not can_connect(DataType.Frame, DataType.LineReading)
    assert check_item(DataType.TableRow, (1, "a", 2.5)) == ["1", "a", "2.5"]
    with pytest.raises(TypeError, match="TableRow port takes a list"):
        check_item(DataType.TableRow, "abc")
    with pytest.raises(TypeError, match="LineCommand cannot take a LineReading"):
        check_item(DataType.LineCommand, LineReading())


def test_engine_side_never_blocks_and_keeps_the_order() -> None:
    """A worker that does not read must not block the sender (a driver thread): the backlog is flushed later."""
    engine_end, worker_end = socket.socketpair()
    sender = Channel(engine_end, blocking_send=False)
    receiver = Channel(worker_end, blocking_send=True)
    payload = bytes(1000)
    count = 5000  # 5 MB: far more than the socket buffer holds
    done = threading.Event()

    def send_all() -> None:
        for index in range(count):
            sender.send(data_message(index % 65536, int(DataType.TableRow), index.to_bytes(4, "little") + payload))
        sender.send_control("stop", reason="done")
        done.set()

    threading.Thread(target=send_all, daemon=True).start()
    assert done.wait(10)  # all sent without the receiver reading anything
    # What the kernel can hold between the two ends is far less than what was sent, so the rest waited in the
    # sender's own backlog (or the flusher's chunk in flight), not in a blocked send() call.
    kernel_bytes = sum(end.getsockopt(socket.SOL_SOCKET, option)
                       for end in (engine_end, worker_end) for option in (socket.SO_SNDBUF, socket.SO_RCVBUF))
    assert count * len(payload) > 4 * kernel_bytes
    received = []
    while True:
        messages = receiver.receive(5)
        assert messages, "messages lost"
        received.extend(messages)
        if received[-1].kind == CONTROL:
            break
    assert [m.kind for m in received[:-1]] == [DATA] * count
    assert [int.from_bytes(m.payload[:4], "little") for m in received[:-1]] == list(range(count))
    assert received[-1].control() == ("stop", {"reason": "done"})
    sender.close()
    receiver.close()


def test_receive_reports_a_closed_peer() -> None:
    one, two = socket.socketpair()
    channel = Channel(one, blocking_send=True)
    assert channel.receive(0.01) == []
    two.close()
    with pytest.raises(EOFError):
        channel.receive(1)
    channel.close()
