"""``syntalos_mlink`` details that scripts observe, each as Syntalos does it: writable fields, enum printing,
SyntalosPyError for every API error, ``init_link()`` in a Python Script module, uint64 SignalBlock timestamps,
dataset names that must be new."""

from __future__ import annotations

import ast

import edlio
import pytest

from runtime_support import run_experiment, write

pytestmark = pytest.mark.timeout(60)

DETAILS = r'''
import datetime
import numpy as np
import syntalos_mlink as syl

commands = syl.get_output_port("commands")


def check(name, value):
    print(f"CHECK {name}={value!r}", flush=True)


def error_of(function):
    try:
        function()
    except Exception as error:
        return [type(error).__name__, str(error)]
    return None


check("init_link", error_of(syl.init_link))
reading = syl.LineReading()
reading.time = datetime.timedelta(milliseconds=12)
reading.line_id = 4
reading.value = 1
check("reading", [reading.time_usec, reading.line_id, reading.value, str(reading.time)])
reading.time_usec = 7
check("reading_usec", reading.time / datetime.timedelta(microseconds=1))
frame = syl.Frame()
frame.time = datetime.timedelta(microseconds=33)
frame.index = 5
check("frame", [frame.time_usec, frame.index])
command = syl.ControlCommand(syl.ControlCommandKind.START)
command.duration = 250
command.command = "go"
command.kind = syl.ControlCommandKind.STOP
check("control", [str(command.kind), command.duration, command.command])
check("enums", [str(syl.ControlCommandKind.START), int(syl.ControlCommandKind.START),
                str(syl.LineCommandKind.WRITE_DIGITAL_PULSE), str(syl.DataType.LineReading),
                f"{syl.ControlCommandKind.PAUSE}", repr(syl.ControlCommandKind.STOP),
                syl.ControlCommandKind.START == 1, str(syl.LineModeFlags.IS_INPUT)])
block = syl.SignalBlockI32()
check("block_dtype", [str(block.timestamps.dtype), str(block.data.dtype)])
block.timestamps = np.arange(60) * 1000
check("block_set", [str(block.timestamps.dtype), int(block.timestamps[-1])])

analog = syl.HwOutputLine(commands, 3, analog=True)
digital = syl.HwOutputLine(commands, 4)
errors = {
    "set_value_on_analog": lambda: analog.set_value(True),
    "pulse_on_analog": lambda: analog.pulse(),
    "analog_on_digital": lambda: digital.set_analog_value(10),
    "bad_line": lambda: syl.HwOutputLine(commands, 70000),
    "bad_input_line": lambda: syl.HwInputLine(commands, -1),
    "line_without_port": lambda: syl.HwOutputLine("commands", 2),
    "submit_wrong_type": lambda: commands.submit(syl.LineReading()),
    "metadata_type": lambda: commands.set_metadata_value("x", object()),
    "metadata_size": lambda: commands.set_metadata_value_size("size", [1, 2, 3]),
    "negative_delay": lambda: syl.schedule_delayed_call(-1, print),
    "not_callable": lambda: syl.schedule_delayed_call(10, None),
    "unknown_type": lambda: syl.register_output_port("x", "X", "NoSuchType"),
    "retyped_port": lambda: syl.register_output_port("commands", "C", syl.DataType.Frame),
    "storage_before_prepare": lambda: syl.create_default_dataset(),
    "sync_before_prepare": lambda: syl.init_clock_synchronizer(10.0),
    "throttle": lambda: syl.register_input_port("in2", "In", syl.DataType.LineReading).set_throttle_items_per_sec(-3),
}
for name, function in errors.items():
    check("error_" + name, error_of(function))


def prepare():
    first = syl.create_default_dataset()
    check("first_dataset", first.name)
    check("again", error_of(syl.create_default_dataset))
    check("taken_by_other", error_of(lambda: syl.create_default_dataset("other")))
    check("taken_by_board", error_of(lambda: syl.create_default_dataset("board")))
    group = syl.create_storage_group("shared")
    check("group_twice", syl.create_storage_group("shared").name == group.name)
    group.create_dataset("mine")
    check("group_dataset_twice", error_of(lambda: group.create_dataset("mine")))
    sync = syl.init_clock_synchronizer(100.0)  # its tsync shares the module's dataset: no error
    sync.set_strategies(int(syl.TimeSyncStrategy.WRITE_TSYNCFILE))
    check("sync_start", sync.start())
    check("sync_bad_tolerance", error_of(lambda: sync.set_tolerance_usec(-5)))
    return True
'''

OTHER = """
import syntalos_mlink as syl


def prepare():
    syl.create_default_dataset()
    return True
"""

EXPERIMENT = """
[modules.board]
kind = "board"
url = "sim://?d2=square:50Hz"
inputs = ["2"]

[modules.lines]
kind = "recorder"

[modules.other]
kind = "script"
script = "{other}"

[modules.details]
kind = "script"
script = "{details}"
outputs = {{ commands = "LineCommand" }}

[[connect]]
from = "board.readings"
to = "lines.in"
"""


def checks(log: str) -> dict[str, object]:
    found = {}
    for line in log.splitlines():
        if line.startswith("CHECK "):
            name, _, value = line[6:].partition("=")
            found[name] = ast.literal_eval(value)
    return found


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp_path = tmp_path_factory.mktemp("details")
    experiment = write(tmp_path, "exp.toml", EXPERIMENT.format(details=write(tmp_path, "details.py", DETAILS),
                                                               other=write(tmp_path, "other.py", OTHER)))
    run = run_experiment(experiment, tmp_path / "out", duration="1s")
    assert run.result.ok, run.output
    assert edlio.load(str(run.path)).dataset_by_name("details") is not None
    return checks(run.log("details"))


def test_init_link_in_a_python_script_raises_as_in_syntalos(seen: dict[str, object]) -> None:
    assert seen["init_link"] == ["SyntalosPyError", "Syntalos Module Link was already initialized. It is not "
                                                    "allowed to run `init_link()` twice!"]


def test_fields_syntalos_lets_scripts_set_are_writable(seen: dict[str, object]) -> None:
    assert seen["reading"] == [12000, 4, 1, "0:00:00.012000"]
    assert seen["reading_usec"] == 7
    assert seen["frame"] == [33, 5]
    assert seen["control"] == ["ControlCommandKind.STOP", 250, "go"]


def test_enums_print_like_syntalos_and_keep_their_values(seen: dict[str, object]) -> None:
    assert seen["enums"] == ["ControlCommandKind.START", 1, "LineCommandKind.WRITE_DIGITAL_PULSE",
                             "DataType.LineReading", "ControlCommandKind.PAUSE", "<ControlCommandKind.STOP: 3>", True,
                             "LineModeFlags.IS_INPUT"]


def test_signal_block_timestamps_are_uint64(seen: dict[str, object]) -> None:
    assert seen["block_dtype"] == ["uint64", "int32"]
    assert seen["block_set"] == ["uint64", 59000]


def test_every_api_error_is_a_syntalos_py_error(seen: dict[str, object]) -> None:
    names = [name for name in seen if name.startswith("error_")]
    assert len(names) == 16
    for name in names:
        assert seen[name] is not None and seen[name][0] == "SyntalosPyError", (name, seen[name])
    assert seen["error_set_value_on_analog"][1] == ("set_value() is only valid for digital OutputLine; line 3 is "
                                                    "analog (use set_analog_value()).")
    assert seen["error_negative_delay"][1] == "Delay must be positive or zero."
    assert "already exists" in seen["error_retyped_port"][1]


def test_a_dataset_name_already_used_in_the_run_is_refused(seen: dict[str, object]) -> None:
    assert seen["first_dataset"] == "details"
    for key, name in (("again", "details"), ("taken_by_other", "other"), ("taken_by_board", "board")):
        kind, message = seen[key]
        assert kind == "SyntalosPyError" and message.startswith(f"Dataset '{name}' already exists in group '")
    assert seen["group_twice"] is True  # groups are create-or-open, as in Syntalos
    assert seen["group_dataset_twice"] == ["SyntalosPyError", "Dataset 'mine' already exists in group 'shared'."]
    assert seen["sync_start"] is True
    assert seen["sync_bad_tolerance"][0] == "SyntalosPyError"


STANDALONE_MAIN = """
import sys
import syntalos_mlink as syl

try:
    syl.get_input_port("in")
except syl.SyntalosPyError as error:
    print(f"CHECK before_init={str(error)!r}", flush=True)


def main():
    link = syl.init_link()
    link.on_start = lambda: print("CHECK started=True", flush=True)
    link.await_data_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
"""


def test_a_standalone_python_module_initializes_its_own_link(tmp_path) -> None:
    script = write(tmp_path, "mod_main.py", STANDALONE_MAIN)
    experiment = write(tmp_path, "exp.toml", f'[modules.mod]\nkind = "python-module"\nscript = "{script}"\n')
    run = run_experiment(experiment, tmp_path / "out", duration="300ms")
    assert run.result.ok, run.output
    seen = checks(run.log("mod"))
    assert seen == {"before_init": "Syntalos Module Link was not initialized. Call `syntalos_mlink.init_link()` "
                                   "first!", "started": True}
