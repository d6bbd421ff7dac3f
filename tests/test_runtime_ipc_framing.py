"""The channel's receive loop splits any byte stream back into the messages sent, whatever the boundaries at
which the kernel hands the bytes over (issue 19 rewrote that hot loop)."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from hwlink.runtime.ipc import CONTROL, DATA, Channel, data_message


@pytest.mark.parametrize("seed", range(6))
def test_messages_survive_arbitrary_split_points(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sent = []
    for index in range(2000):
        payload = rng.bytes(int(rng.choice([0, 1, 7, 30, 300, 70_000])))
        sent.append((DATA, int(rng.integers(0, 256)), index % 65536, payload))
    stream = b"".join(data_message(port, data_type, payload) for _, data_type, port, payload in sent)
    mine, theirs = socket.socketpair()
    receiver = Channel(theirs, blocking_send=True)
    received = []
    position = 0
    while position < len(stream):
        step = int(rng.integers(1, 100_000))
        mine.sendall(stream[position:position + step])
        position += step
        received += receiver.receive(0.0)
    mine.close()
    while len(received) < len(sent):
        received += receiver.receive(None)
    assert [(m.kind, m.data_type, m.port, bytes(m.payload)) for m in received] == sent
    with pytest.raises(EOFError):
        receiver.receive(None)


def test_control_messages_between_data() -> None:
    mine, theirs = socket.socketpair()
    sender, receiver = Channel(mine, blocking_send=True), Channel(theirs, blocking_send=True)
    sender.send(data_message(3, 9, b"abc"))
    sender.send_control("stop", reason="x")
    sender.send(data_message(4, 9, b""))
    messages = []
    while len(messages) < 3:
        messages += receiver.receive(None)
    assert [m.kind for m in messages] == [DATA, CONTROL, DATA]
    assert messages[1].control() == ("stop", {"reason": "x"})
    assert messages[0].payload == b"abc" and messages[2].payload == b"" and messages[2].port == 4
