"""The ``syntalos_mlink`` API as scripts see it, in both forms (PyScript functions and standalone link).

The scripts report what they observe with ``println("CHECK name=value")``; the test reads the script's log in
the collection (which is also how the output reaches users) and checks what was recorded.
"""

from __future__ import annotations

import ast
from pathlib import Path

import edlio
import pytest

from hwlink.sync.tsync import read_tsync
from runtime_support import run_experiment, write

pytestmark = pytest.mark.timeout(60)

PYSCRIPT = '''
import numpy as np
import syntalos_mlink as syl

fast = syl.get_input_port("fast")
slow = syl.get_input_port("slow")
rows = syl.get_output_port("rows")
counts = {"fast": 0, "slow": 0}
delayed = []


def check(name, value):
    syl.println(f"CHECK {name}={value!r}")


check("unknown_in", syl.get_input_port("nope"))
check("unknown_out", syl.get_output_port("nope"))
check("running_at_load", syl.is_running())
check("size", tuple(syl.MetaSize(3, 4)))
check("synonyms", {row["np_format"] for row in syl.list_types_synonyms()} >= {"uint8", "float32"})


def count(name):
    def on_data(reading):
        assert isinstance(reading, syl.LineReading)
        counts[name] += 1
    return on_data


def prepare():
    fast.on_data = count("fast")
    slow.on_data = count("slow")
    slow.set_throttle_items_per_sec(10)
    rows.set_metadata_value("table_header", ["name", "value"])
    rows.set_metadata_value("data_name_proposal", "checks/table")
    check("board_metadata", fast.metadata.get("board"))
    dataset = syl.create_default_dataset()
    dataset.add_aux_file("notes.txt", key="notes", summary="script notes").write_text("hello")
    dataset.set_attribute("answer", 42)
    sub = syl.create_storage_group("extra").create_dataset("sub")
    sub.set_data_file("values.npy", summary="numbers")
    np.save(sub.path / "values.npy", np.arange(3))
    global sync
    sync = syl.init_clock_synchronizer(100.0)
    sync.set_strategies(int(syl.TimeSyncStrategy.SHIFT_TIMESTAMPS_FWD) | int(syl.TimeSyncStrategy.WRITE_TSYNCFILE))
    sync.start()
    try:
        rows.submit(42)
    except syl.SyntalosPyError as error:
        check("type_check", type(error).__name__)
    block = syl.SignalBlockF32()
    check("default_block", (block.rows, block.cols, block.length))
    return True


def start():
    check("running_at_start", syl.is_running())
    syl.schedule_delayed_call(100, lambda: delayed.append(syl.time_since_start_msec()))


def run():
    t0 = syl.time_since_start_usec()
    syl.wait(200)
    t1 = syl.time_since_start_usec()
    syl.wait_sec(0.2)
    t2 = syl.time_since_start_usec()
    check("wait_ms", (t1 - t0) // 1000)
    check("wait_sec_ms", (t2 - t1) // 1000)
    check("delayed_ms", delayed)
    for i in range(5):
        rows.submit(("row", i))
    for i in range(50):
        sync.process_timestamp(syl.time_since_start_usec(), 1_000_000 + i * 10_000)
    while syl.is_running():
        syl.await_data(100_000)


def stop():
    check("counts", counts)
    check("running_at_stop", syl.is_running())
    rows.submit(["from", "stop"])
'''


def checks(log: str) -> dict[str, object]:
    found = {}
    for line in log.splitlines():
        if line.startswith("CHECK "):
            name, _, value = line[6:].partition("=")
            found[name] = ast.literal_eval(value)
    return found


def test_pyscript_form_api(tmp_path: Path) -> None:
    script = write(tmp_path, "api.py", PYSCRIPT)
    experiment = write(tmp_path, "exp.toml", f"""
[modules.board]
kind = "board"
url = "sim://?d2=square:100Hz"
inputs = ["2"]

[modules.api]
kind = "script"
script = "{script}"
inputs = {{ fast = "LineReading", slow = "LineReading" }}
outputs = {{ rows = "TableRow" }}

[modules.table]
kind = "recorder"

[[connect]]
from = "board.readings"
to = "api.fast"

[[connect]]
from = "board.readings"
to = "api.slow"

[[connect]]
from = "api.rows"
to = "table.in"
""")
    run = run_experiment(experiment, tmp_path / "out", duration="2s")
    assert run.result.ok, run.output
    seen = checks(run.log("api"))
    assert seen["unknown_in"] is None and seen["unknown_out"] is None
    assert seen["running_at_load"] is False and seen["running_at_start"] is True
    assert seen["running_at_stop"] is False
    assert seen["size"] == (3, 4) and seen["synonyms"] is True
    assert seen["board_metadata"] == "sim://?d2=square:100Hz"
    assert seen["type_check"] == "SyntalosPyError"
    assert seen["default_block"] == (60, 1, 60)
    assert 200 <= seen["wait_ms"] < 400 and 200 <= seen["wait_sec_ms"] < 400
    assert len(seen["delayed_ms"]) == 1 and 100 <= seen["delayed_ms"][0] < 300  # ran during wait()
    counts = seen["counts"]
    assert counts["fast"] >= 100  # 200 edges per second
    assert 1 <= counts["slow"] <= 10 * 2 + 2  # really throttled to 10 items/s
    collection = edlio.load(str(run.path))
    header, *rows = list(collection.group_by_name("checks").dataset_by_name("table").read_data())
    assert header == ["name", "value"] and rows == [["row", str(i)] for i in range(5)] + [["from", "stop"]]
    own = collection.dataset_by_name("api")
    assert own.attributes["answer"] == 42
    aux = {Path(p).name for entry in own.aux_data for p in entry.part_paths()}
    assert "notes.txt" in aux and (Path(own.path) / "notes.txt").read_text() == "hello"
    tsync_name = next(name for name in aux if name.endswith(".tsync"))
    assert len(read_tsync(Path(own.path) / tsync_name).time1) >= 2
    sub = collection.group_by_name("extra").dataset_by_name("sub")
    assert [p.name for p in sub.data.part_paths()] == ["values.npy"]


STANDALONE = '''
import json
import syntalos_mlink as syl

link = syl.init_link()
try:
    syl.init_link()
except syl.SyntalosPyError:
    print("CHECK init_twice='error'")
readings = link.register_input_port("in", "Readings", syl.DataType.LineReading)
commands = link.register_output_port("out", "Commands", syl.DataType.LineCommand)
print(f"CHECK same_port={link.register_output_port('out', 'Commands', syl.DataType.LineCommand) is commands!r}")
try:
    link.register_output_port("out", "Frames", syl.DataType.Frame)
except syl.SyntalosPyError:
    print("CHECK retyped='error'")
state = {"settings": None, "ticks": 0, "levels": []}


def on_load_settings(data, base_dir):
    state["settings"] = json.loads(data)
    return True


def on_prepare():
    print(f"CHECK uuid_len={len(link.run_uuid)!r}")
    print(f"CHECK root={str(link.root_group.path)!r}")
    return True


def on_start():
    print(f"CHECK running_in_start={link.is_running!r}")
    syl.HwInputLine(commands, 2).send_mode()
    led = syl.HwOutputLine(commands, 13)
    led.send_mode()
    led.set_value(True)


def on_reading(reading):
    state["levels"].append(reading.value)


def on_stop():
    print(f"CHECK levels={state['levels']!r}")
    print(f"CHECK settings={state['settings']!r}")
    print(f"CHECK ticked={state['ticks'] > 5!r}")


def tick():
    state["ticks"] += 1


readings.on_data = on_reading
link.on_load_settings = on_load_settings
link.on_save_settings = lambda base_dir: b"saved-" + json.dumps(state["settings"]).encode()
link.on_prepare = on_prepare
link.on_start = on_start
link.on_stop = on_stop
link.allow_async_start = False
link.await_data_forever(tick)
print("CHECK left_loop=True")
'''


def test_standalone_form_api(tmp_path: Path) -> None:
    script = write(tmp_path, "standalone.py", STANDALONE)
    experiment = write(tmp_path, "exp.toml", f"""
[modules.board]
kind = "board"
url = "sim://?loopback=13:2&latency=none"

[modules.link]
kind = "python-module"
script = "{script}"
settings = {{ gain = 3 }}

[[connect]]
from = "board.readings"
to = "link.in"

[[connect]]
from = "link.out"
to = "board.commands"
""")
    run = run_experiment(experiment, tmp_path / "out", duration="1s")
    assert run.result.ok, run.output
    seen = checks(run.log("link"))
    assert seen["init_twice"] == "error" and seen["retyped"] == "error" and seen["same_port"] is True
    assert seen["uuid_len"] == 16 and seen["root"] == str(run.path)
    assert seen["running_in_start"] is True
    assert seen["levels"] == [0, 1]  # SET_MODE reports the idle level, then the loopback rises
    assert seen["settings"] == {"gain": 3}
    assert seen["ticked"] is True and seen["left_loop"] is True
    assert (run.path / "hwlink-run" / "link.settings").read_bytes() == b'saved-{"gain": 3}'
