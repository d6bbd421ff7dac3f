"""``hwlink run``: experiment file validation (one line naming the file's line, exit code 2) and Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import edlio
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from hwlink.cli.main import cli
from runtime_support import EXAMPLES, write

HWLINK = Path(sys.executable).parent / "hwlink"
pytestmark = pytest.mark.timeout(60)

GOOD = """\
[experiment]
name = "demo"
duration = "1s"

[modules.camera]
kind = "camera"
fps = "30Hz"

[modules.speaker]
kind = "tone"

[modules.video]
kind = "recorder"

[[connect]]
from = "camera.frames"
to = "video.in"
"""


def run_cli(tmp_path: Path, text: str) -> tuple[int, str, Path]:
    experiment = write(tmp_path, "exp.toml", text)
    output = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(experiment), "-o", str(output)])
    return result.exit_code, result.output, experiment


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


@pytest.mark.parametrize(("change", "needle", "message"), [
    (('kind = "tone"', 'kind = "tones"'), 'kind = "tones"', "unknown module kind 'tones'"),
    (('fps = "30Hz"', 'fsp = "30Hz"'), 'fsp = "30Hz"', "unknown setting 'fsp'"),
    (('fps = "30Hz"', 'fps = "fast"'), 'fps = "fast"', "bad frequency"),
    (('duration = "1s"', 'duration = "1"'), 'duration = "1"', "needs a unit"),
    (('from = "camera.frames"', 'from = "camera.frame"'), 'from = "camera.frame"', "no output port 'frame'"),
    (('from = "camera.frames"', 'from = "kamera.frames"'), 'from = "kamera.frames"', "unknown module 'kamera'"),
    (('to = "video.in"', 'to = "speaker.control"'), 'to = "speaker.control"',
     "type mismatch: camera.frames gives Frame but speaker.control takes ControlCommand"),
    (('to = "video.in"', 'to = "video.input"'), 'to = "video.input"', "no input port 'input'"),
    (('name = "demo"', 'name = "demo'), 'name = "demo', "invalid TOML"),
    (('[modules.video]', '[modules.video]\nmystery = 1'), "mystery = 1", "unknown setting 'mystery'"),
])
def test_validation_errors_name_the_line_and_exit_2(tmp_path: Path, change: tuple[str, str], needle: str,
                                                     message: str) -> None:
    text = GOOD.replace(*change)
    code, output, experiment = run_cli(tmp_path, text)
    assert code == 2, output
    assert f"{experiment.resolve() if 'invalid TOML' not in message else experiment}:{line_of(text, needle)}:" \
        in output, output
    assert message in output
    assert "Traceback" not in output
    assert len(output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing recorded for an experiment that does not fit


def test_an_input_connected_twice_is_an_error(tmp_path: Path) -> None:
    text = GOOD + '\n[modules.camera2]\nkind = "camera"\n\n[[connect]]\nfrom = "camera2.frames"\nto = "video.in"\n'
    code, output, experiment = run_cli(tmp_path, text)
    assert code == 2 and "already connected to camera.frames" in output
    assert f":{len(text.splitlines()) - 0}:" in output  # the second connection's 'to'


def test_missing_script_and_bad_board_url_name_their_lines(tmp_path: Path) -> None:
    text = '[modules.s]\nkind = "script"\nscript = "missing.py"\n'
    code, output, _ = run_cli(tmp_path, text)
    assert code == 2 and ":3: module 's': script: no such file" in output
    text = '[modules.b]\nkind = "board"\n\nurl = "nope://x"\n'
    code, output, _ = run_cli(tmp_path, text)
    assert code == 2 and ":4: module 'b': unknown board scheme 'nope'" in output
    assert not (tmp_path / "out").exists()


def test_ports_a_script_registers_are_checked_after_it_loaded(tmp_path: Path) -> None:
    script = write(tmp_path, "standalone.py", "import syntalos_mlink as syl\n\nlink = syl.init_link()\n"
                   "frames = link.register_input_port('frames-in', 'Frames', syl.DataType.Frame)\n"
                   "link.await_data_forever()\n")
    text = GOOD + f'\n[modules.s]\nkind = "python-module"\nscript = "{script}"\n\n[[connect]]\n' \
                  'from = "camera.frames"\nto = "s.frames"\n'
    code, output, _ = run_cli(tmp_path, text)
    assert code == 2, output
    assert f":{len(text.splitlines())}: module 's' has no input port 'frames'; its inputs: frames-in" in output


def test_run_command_records_and_reports(tmp_path: Path) -> None:
    code, output, _ = run_cli(tmp_path, GOOD)
    assert code == 0, output
    assert "run duration after" in output
    collection = edlio.load(str(tmp_path / "out"))
    assert collection.attributes["experiment"] == "demo"
    run_dataset = collection.dataset_by_name("hwlink-run")
    assert [p.name for p in run_dataset.data.part_paths()] == ["exp.toml"]  # the experiment file itself
    assert (tmp_path / "out" / "speaker" / "speaker.wav").is_file()
    verified = CliRunner().invoke(cli, ["edl", "verify", str(tmp_path / "out")])
    assert verified.exit_code == 0 and "0 error(s), 0 warning(s)" in verified.output, verified.output


def start_run(tmp_path: Path, text: str) -> tuple[subprocess.Popen[str], Path]:
    experiment = write(tmp_path, "exp.toml", text)
    output = tmp_path / "out"
    process = subprocess.Popen([HWLINK, "run", str(experiment), "-o", str(output)], stderr=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:
        if "[engine] started" in line:
            return process, output
    raise AssertionError(f"the run did not start: {process.communicate()}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_cleanly_and_keeps_the_data(tmp_path: Path, signum: int) -> None:
    process, output = start_run(tmp_path, GOOD.replace('duration = "1s"\n', ""))
    time.sleep(0.7)
    process.send_signal(signum)
    _, errors = process.communicate(timeout=20)
    assert process.returncode == 0, errors
    assert "run interrupted" in errors
    with h5py.File(Path(edlio.load(str(output)).dataset_by_name("video").path) / "video.h5") as frames:
        assert frames["frames"].shape[0] >= 10


def test_second_ctrl_c_forces_a_stuck_stop_and_still_closes_the_collection(tmp_path: Path) -> None:
    script = write(tmp_path, "stuck.py", "import syntalos_mlink as syl\n\n"
                   "def stop():\n    while True:\n        pass\n")
    text = GOOD.replace('duration = "1s"\n', "") + f'\n[modules.stuck]\nkind = "script"\nscript = "{script}"\n'
    process, output = start_run(tmp_path, text)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    forced_at = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=20)
    assert time.monotonic() - forced_at < 3  # not the 5 s the engine would give a stopping script
    assert "forcing stop" in errors and "run forced" in errors
    collection = edlio.load(str(output))
    assert {"video", "hwlink-run"} <= {dataset.name for dataset in collection.datasets}
    with h5py.File(Path(collection.dataset_by_name("video").path) / "video.h5") as frames:
        assert frames["frames"].shape[0] >= 1  # what was recorded before the forced stop is kept
    manifest = tomllib.loads((Path(output) / "manifest.toml").read_text())
    assert manifest["type"] == "collection" and manifest["format_version"]


def test_examples_validate(tmp_path: Path) -> None:
    """Every example file parses and its modules build (scripts it names exist next to it or in shared/)."""
    from hwlink.runtime import Engine

    for example in sorted(EXAMPLES.glob("*.toml")):
        engine = Engine(example, tmp_path / example.stem)
        declared = tomllib.loads(example.read_text())["modules"]
        assert sorted(engine.modules) == sorted(declared), example


def test_line_locator_finds_keys_past_multiline_arrays_and_brackets_in_strings() -> None:
    from hwlink.runtime.experiment import LineLocator

    text = ('[modules.a]\nurl = "sim://?x=[1"  # [ not a table\nfrequencies = [\n  "10Hz",\n  "b]",\n]\n'
            'kind = "x"\n\n[[connect]]\nfrom = "a.b"\n\n[[connect]]\nto = "c.d"\n')
    locator = LineLocator(text)
    assert locator.line(("modules", "a"), "url") == 2
    assert locator.line(("modules", "a"), "kind") == 7
    assert locator.line(("connect", "1"), "to") == 13
    assert locator.line(("connect", "1"), "from") == 12  # missing key: its table's line
    assert locator.line(("modules", "zzz"), "kind") == 1


@pytest.mark.parametrize("example", ["pulse_train", "pulse_on_rise"])
def test_simulated_examples_run(tmp_path: Path, example: str) -> None:
    # 4 s (not 1.2 s): on a loaded machine the script's first rises can come late; 2 of ~8 are asked for
    result = CliRunner().invoke(cli, ["run", str(EXAMPLES / f"{example}.toml"), "--duration", "4s",
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    dataset = "edges" if example == "pulse_train" else "lines"
    with h5py.File(tmp_path / "out" / dataset / f"{dataset}.h5") as readings:
        lines, values = readings["line_ids"][:], readings["data"][:, 0]
    watched = 2 if example == "pulse_train" else 7  # the loopback of line 13
    rises = np.flatnonzero(np.diff(values[lines == watched].astype(int)) == 1)
    assert len(rises) >= 2  # pulses arrived (100 ms train; one per rise of the 2 Hz input)
