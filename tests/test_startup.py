"""Packaging and start-up (issue 16, items 13-15): `python -m hwlink`, py.typed, the NI simulation's entry point
without nidaqmx, shell completion, `make demo`'s install, and a `hwlink --help` that imports no command."""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest

from hwlink.cli.main import LAZY_COMMANDS, cli

ROOT = Path(__file__).resolve().parents[1]
PROBE = ("import sys; sys.argv = ['hwlink', *sys.argv[1:]]; from hwlink.cli import main; main(); "
         "print('MODULES', ' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
         "('numpy', 'h5py', 'scipy', 'click', 'hwlink'))), file=sys.stderr)")


def probe(*args: str, cache: Path) -> tuple[str, set[str]]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "COLUMNS": "80"}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    modules = next(line for line in done.stderr.splitlines() if line.startswith("MODULES")).split()[1:]
    return done.stdout, set(modules)


def test_help_lists_every_command_as_click_would_without_importing_them(tmp_path: Path) -> None:
    first, modules = probe("--help", cache=tmp_path)
    assert not any(m.split(".")[0] in ("numpy", "h5py", "scipy") for m in modules), modules
    assert not any(m.startswith(("hwlink.drivers", "hwlink.sync", "hwlink.edl", "hwlink.cli.lines")) for m in modules)
    again, modules = probe("--help", cache=tmp_path)  # from the cache: not even click
    assert again == first and "click" not in modules, modules
    eager = subprocess.run([sys.executable, "-c", "from hwlink.cli.main import cli, LAZY_COMMANDS\n"
                            "import importlib\n"
                            "for name, (module, attribute, _) in LAZY_COMMANDS.items():\n"
                            "    cli.add_command(getattr(importlib.import_module(module), attribute), name)\n"
                            "cli(['--help'], prog_name='hwlink')"],
                           capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"}, timeout=60)
    assert eager.stdout == first  # the static summaries render exactly as the commands' own help
    version, modules = probe("--version", cache=tmp_path)
    from hwlink import __version__

    assert version == f"hwlink, version {__version__}\n" and "click" not in modules


def test_lazy_summaries_are_the_commands_docstrings() -> None:
    for name, (module, attribute, summary) in LAZY_COMMANDS.items():
        command = getattr(importlib.import_module(module), attribute)
        assert command.name == name
        first_paragraph = inspect.cleandoc(command.help or "").split("\n\n")[0]
        assert " ".join(first_paragraph.split()) == summary, name
    with click.Context(cli) as ctx:
        assert set(LAZY_COMMANDS) <= set(cli.list_commands(ctx))


def test_python_m_hwlink_is_the_hwlink_command() -> None:
    done = subprocess.run([sys.executable, "-m", "hwlink", "lines"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "A0" in done.stdout and "D13" in done.stdout, done.stderr
    bad = subprocess.run([sys.executable, "-m", "hwlink", "read", "nope", "--count", "1"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "unknown line" in bad.stderr


def test_the_package_ships_py_typed() -> None:
    assert (ROOT / "hwlink" / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["hwlink"]
    assert config["project"]["scripts"]["hwlink"] == "hwlink.cli:main"


def test_nidaq_simulation_without_nidaqmx_says_so_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "nidaqmx"
    blocker.mkdir()  # a nidaqmx that is not there: importing it fails as a missing package does
    (blocker / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'nidaqmx'\", name='nidaqmx')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "hwlink.testing.nidaq_sim", "lines"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "pip install 'hwlink[nidaq]'" in done.stderr and "Traceback" not in done.stderr


def test_shell_completion_works_as_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    assert 'eval "$(_HWLINK_COMPLETE=bash_source hwlink)"' in readme
    env = {**os.environ, "_HWLINK_COMPLETE": "bash_source"}
    script = subprocess.run([sys.executable, "-c", "import sys; sys.argv = ['hwlink']; from hwlink.cli import main; "
                             "main()"], capture_output=True, text=True, env=env, timeout=60)
    assert "complete" in script.stdout and "_HWLINK_COMPLETE" in script.stdout
    env = {**os.environ, "_HWLINK_COMPLETE": "bash_complete", "COMP_WORDS": "hwlink tsy", "COMP_CWORD": "1"}
    words = subprocess.run([sys.executable, "-c", "import sys; sys.argv = ['hwlink']; from hwlink.cli import main; "
                            "main()"], capture_output=True, text=True, env=env, timeout=60)
    assert "plain,tsync" in words.stdout.split()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_installs_only_the_package_and_make_test_everything(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Makefile", tmp_path)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    demo = subprocess.run(["make", "-n", "demo", "PYTHON=python3"], cwd=tmp_path, capture_output=True, text=True)
    installs = [line for line in demo.stdout.splitlines() if "pip install" in line and "upgrade pip" not in line]
    assert installs == [".venv/bin/python -m pip install -q -e ."], demo.stdout
    test = subprocess.run(["make", "-n", "test", "PYTHON=python3"], cwd=tmp_path, capture_output=True, text=True)
    assert "pip install -q -e '.[test,nidaq,plot,bench,lsl,nwb]'" in test.stdout, test.stdout
