"""The engine <-> worker control vocabulary, and the ``oe_pyprocessor`` module scripts import."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from hwlink.runtime import control as ctl
from hwlink.runtime import oe_pyprocessor
from hwlink.runtime.host import Host
from hwlink.runtime.ipc import CONTROL, Channel
from hwlink.runtime.script_module import ScriptModule

MESSAGES = {cls for cls in vars(ctl).values()
            if isinstance(cls, type) and issubclass(cls, ctl.ControlMessage) and cls is not ctl.ControlMessage}


def sample(cls: type) -> ctl.ControlMessage:
    values = {"str": "x", "int": 3, "bool": True, "float": 0.5, "bytes": b"\x00\x01"}
    fields = {}
    for field in dataclasses.fields(cls):
        kind = str(field.type).split(" | ")[0]
        fields[field.name] = values.get(kind, [] if kind.startswith("list") else {"k": 1})
    return cls(**fields)


def test_every_message_is_handled_by_exactly_one_side() -> None:
    one, two = socket.socketpair()
    host = Host(Channel(one, blocking_send=True))
    worker_side = set(host._handlers) | {ctl.Load}  # Load is read by the worker's main before the loop runs
    engine_side = set(ScriptModule._HANDLERS)
    assert worker_side | engine_side == MESSAGES
    assert not worker_side & engine_side
    one.close()
    two.close()


@pytest.mark.parametrize("cls", sorted(MESSAGES, key=lambda cls: cls.__name__))
def test_messages_cross_the_channel_as_themselves(cls: type) -> None:
    one, two = socket.socketpair()
    sender, receiver = Channel(one, blocking_send=True), Channel(two, blocking_send=True)
    message = sample(cls)
    sender.send_control(message)
    (received,) = receiver.receive(2)
    assert received.kind == CONTROL and received.control() == message and type(received.control()) is cls
    for field in dataclasses.fields(cls):  # messages are values: nobody changes one on its way
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(message, field.name, None)
    sender.close()
    receiver.close()


def test_oe_pyprocessor_exposes_the_plugins_processor_class() -> None:
    assert oe_pyprocessor.__all__ == ["PythonProcessor"]
    with pytest.raises(TypeError, match="No constructor defined"):
        oe_pyprocessor.PythonProcessor()
    events: list[tuple[int, bool]] = []
    processor = oe_pyprocessor.PythonProcessor._create(lambda line, state: events.append((line, state)))
    processor.add_python_event(3, 1)
    processor.add_python_event(True, False)  # bool is an int, as pybind11 takes it
    assert events == [(3, True), (1, False)]
    with pytest.raises(TypeError):
        processor.add_python_event(1.5, True)
    with pytest.raises(ValueError, match="0..255"):
        processor.add_python_event(256, True)
