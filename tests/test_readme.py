"""README.md, read top to bottom as a new user would: every shell command and Python example in it runs, as
written, in README order, in a fresh directory holding a copy of examples/ (as a clone has it), on sim:// and
the NI-DAQmx simulation. The few that cannot run here are listed below with the reason; nothing else is skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# Commands of the README that do not run in this test, each with why (matched at the start of the command).
NOT_RUN = {
    "make demo": "sets up the environment this test already runs in (tests/test_startup.py checks what it installs)",
    "make test": "runs this test suite itself",
    "python3.12 -m venv .venv": "creates the environment this test already runs in",
    "hwlink -b firmata:///dev/ttyACM0 latency": "needs hardware: an Arduino running Firmata on /dev/ttyACM0, OUT wired "
                                                "to IN",
    "hwlink -b 'lsl://?type=EEG' lines": "needs an LSL stream of type EEG in sight (tests/test_lsl.py runs the driver "
                                         "against real pylsl outlets)",
    "hwlink -b 'lsl://?name=Markers' read": "needs an LSL marker stream named Markers (tests/test_lsl.py)",
    "hwlink -b 'lsl://?name=rig1-lines' record": "needs an LSL stream named rig1-lines (tests/test_lsl_outlets.py "
                                                 "records one published by hwlink)",
    "hwlink -b firmata:///dev/ttyACM0 record": "needs hardware: an Arduino running Firmata, on the rig PC of a "
                                               "two-machine setup (test_two_hwlink_processes_one_clock runs the pair "
                                               "on one machine with sim://)",
    "hwlink -b 'lsl://?name=rig1&timeout=60s' record": "the recording PC of the two-machine setup: needs the rig PC's "
                                                       "stream",
    "hwlink align session.xdf": "needs a LabRecorder XDF file (tests/test_xdf_align.py writes one and aligns it)",
}


def blocks() -> list[tuple[int, str, str]]:
    """(line number, language, text) of each fenced sh/python/toml block."""
    text = README.read_text(encoding="utf-8")
    return [(text[:match.start()].count("\n") + 1, match.group(1), match.group(2))
            for match in re.finditer(r"^```(sh|python|toml)\n(.*?)^```", text, re.S | re.M)]


def shell_commands(text: str) -> list[str]:
    """Commands of a sh block: continuation lines joined, comments dropped (none of ours has '#' in a string)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    commands = []
    for line in joined.splitlines():
        command = re.sub(r"\s+#.*$", "", line).strip()
        if command and not command.startswith("#"):
            commands.append(command)
    return commands


def test_every_skipped_command_is_in_the_readme_and_needs_what_it_says() -> None:
    commands = [command for _, language, text in blocks() if language == "sh" for command in shell_commands(text)]
    for prefix in NOT_RUN:
        assert any(command.startswith(prefix) for command in commands), f"stale NOT_RUN entry: {prefix}"
    assert len(blocks()) >= 15


def test_readme_examples_run_as_written(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "100"}
    env.pop("HWLINK_BOARD", None)
    ran, failures = 0, []
    for line, language, text in blocks():
        if language == "toml":  # an experiment file: saved beside the examples (its script path is relative) and run
            experiment = tmp_path / "examples" / f"readme-{line}.toml"
            experiment.write_text(text)
            command = f"hwlink run {experiment} --duration 1s -o readme-{line}"
            done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=300)
            ran += 1
            if done.returncode != 0:
                failures.append(f"README.md:{line} (toml): {done.stderr.strip().splitlines()[-1:]}")
            continue
        if language == "python":
            done = subprocess.run([sys.executable, "-c", text], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=300)
            ran += 1
            if done.returncode != 0:
                failures.append(f"README.md:{line} (python): {done.stderr.strip().splitlines()[-1:]}")
            continue
        for command in shell_commands(text):
            if any(command.startswith(prefix) for prefix in NOT_RUN):
                continue
            done = subprocess.run(["bash", "-c", f"set -eo pipefail; {command}"], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=300)
            ran += 1
            if done.returncode != 0 or "Traceback" in done.stderr:
                failures.append(f"README.md:{line}: {command}: exit {done.returncode}: "
                                f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    assert not failures, "\n".join(failures)
    assert ran >= 30
    # what the examples promise is there
    assert (tmp_path / "recordings" / "mouse01" / "D2" / "D2_master.csv").is_file()
    assert (tmp_path / "sessions" / "train1" / "manifest.toml").is_file()
    assert (tmp_path / "offset.png").stat().st_size > 10_000 and (tmp_path / "errors.png").is_file()


@pytest.mark.parametrize("block", [b for b in blocks() if b[1] == "python"], ids=lambda b: f"line{b[0]}")
def test_python_examples_are_self_contained(block: tuple[int, str, str]) -> None:
    """Each Python example defines what it uses (a new user pastes one at a time)."""
    import ast

    tree = ast.parse(block[2])
    assigned = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    assigned |= {alias.asname or alias.name.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.Import | ast.ImportFrom) for alias in node.names}
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    import builtins

    missing = used - assigned - set(dir(builtins))
    assert not missing, f"README.md:{block[0]} uses undefined {sorted(missing)}"
