"""Dependency arrows point one way: lines <- drivers; sync and edl stand alone; runtime and cli on top.
Every OS-specific choice is made in the platform seam (``hwlink.platform``) and nowhere else."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hwlink"
BASE = {"hwlink", "hwlink.errors", "hwlink.units", "hwlink.clock"}
# layer -> the layers its modules may import (besides itself and BASE)
ALLOWED = {
    "base": set(),
    "lines": set(),
    "sync": set(),
    "edl": set(),
    "drivers": {"lines", "sync"},
    "testing": {"lines", "sync", "drivers", "cli"},  # the simulators' demo entry points run the CLI
    "glue": {"sync", "edl"},
    "runtime": {"lines", "sync", "edl", "drivers", "testing", "glue"},
    "cli": {"lines", "sync", "edl", "drivers", "testing", "glue", "runtime"},
    "__main__": {"cli"},  # `python -m hwlink`
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if module in BASE or parts[1] == "platform":  # the platform seam is usable from every layer
        return "base"
    if parts[1] in ("edl_correction", "nwb_export", "nwb_electrodes"):
        return "glue"
    return parts[1]


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def hwlink_imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Every hwlink module ``path`` imports, including imports inside functions (they hide cycles)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hwlink"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("hwlink"))
    return found


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def test_every_module_is_in_a_known_layer() -> None:
    assert {layer_of(name) for name in MODULES} <= set(ALLOWED)


def test_imports_follow_the_layers() -> None:
    violations = []
    for name, path in MODULES.items():
        layer = layer_of(name)
        for imported in hwlink_imports(path, top_level_only=False):
            target = layer_of(imported)
            if target not in {"base", layer} | ALLOWED[layer]:
                violations.append(f"{name} imports {imported}")
    assert violations == []


def all_imports(path: Path) -> set[str]:
    """Every import anywhere in the file (module level, inside functions, for type checking), with the modules
    ``from hwlink.x import y`` names when y is a module: a cycle through any of them is a cycle of the design."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hwlink"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if f"{node.module}.{alias.name}" in MODULES)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("hwlink"))
    return found


def test_no_import_cycles_between_modules() -> None:
    graph = {name: {i for i in all_imports(path) if i in MODULES and i != name}
             for name, path in MODULES.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for neighbour in graph[node]:
            if state.get(neighbour) == 1 and not node.startswith(neighbour + "."):
                return trail + [node, neighbour]  # a package importing its own submodule is no cycle
            if neighbour not in state and (cycle := visit(neighbour, trail + [node])):
                return cycle
        state[node] = 2
        return None

    cycles = [cycle for name in graph if name not in state and (cycle := visit(name, []))]
    assert cycles == []


def test_the_cycle_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hwlink.runtime import engine\n"
                      "def f():\n    from hwlink.runtime import mlink\n    import hwlink.lines\n")
    assert all_imports(source) == {"hwlink.runtime", "hwlink.runtime.engine", "hwlink.runtime.mlink", "hwlink.lines"}


def test_worker_side_layers() -> None:
    """ports <- host <- mlink / oe / clocksync / storage <- worker: the host loop knows no scripting API."""
    below = {"hwlink.runtime.host": {"hwlink.runtime.mlink", "hwlink.runtime.oe", "hwlink.runtime.clocksync",
                                     "hwlink.runtime.storage", "hwlink.runtime.worker"},
             "hwlink.runtime.ports": {"hwlink.runtime.host", "hwlink.runtime.mlink", "hwlink.runtime.oe"}}
    for name, forbidden in below.items():
        assert not (hwlink_imports(MODULES[name]) & forbidden), name
# ----- the platform seam --------------------------------------------------------------------------------------------
SEAM = PACKAGE / "platform"
# Modules that only exist on some systems, or (ctypes) whose use always is OS-specific.
OS_MODULES = {"ctypes", "tty", "termios", "fcntl", "pty", "msvcrt", "winreg", "_winapi", "_overlapped", "resource",
              "grp", "pwd", "posix", "nt", "winsound"}
# Attributes that exist on some systems only, test the system, or (signal.signal) belong to the seam's choices.
OS_ATTRIBUTES = {
    "sys": {"platform", "getwindowsversion"},
    "os": {"name", "uname", "getpriority", "setpriority", "sched_setscheduler", "sched_getscheduler", "sched_param",
           "SCHED_FIFO", "SCHED_RR", "SCHED_IDLE", "SCHED_OTHER", "SCHED_BATCH", "PRIO_PROCESS", "O_DIRECTORY",
           "openpty", "ttyname", "pipe", "fork", "forkpty", "setsid", "killpg", "getpgid", "nice", "geteuid",
           "getuid", "mkfifo", "sched_getaffinity", "sched_setaffinity", "set_blocking", "sync",
           "copy_file_range"},
    "socket": {"AF_UNIX", "MSG_DONTWAIT", "socketpair", "SO_REUSEPORT", "fromshare"},
    "signal": {"SIGKILL", "SIGHUP", "SIGBREAK", "SIGUSR1", "SIGUSR2", "SIGCHLD", "SIGALRM", "SIGPIPE", "SIGQUIT",
               "CTRL_C_EVENT", "CTRL_BREAK_EVENT", "setitimer", "pthread_kill", "signal", "siginterrupt",
               "pthread_sigmask"},
    "subprocess": {"CREATE_NEW_PROCESS_GROUP", "STARTUPINFO"},
}
OS_KEYWORDS = {"pass_fds", "preexec_fn", "start_new_session", "creationflags", "process_group"}


def os_specific_uses(source: str) -> list[str]:
    """Every use of an OS-specific API in ``source``, as 'line: what'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [f"{line}: import {a.name}" for a in node.names if a.name.split(".")[0] in OS_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in OS_MODULES:
                found.append(f"{line}: from {node.module} import")
            found += [f"{line}: from {node.module} import {a.name}" for a in node.names
                      if a.name in OS_ATTRIBUTES.get(node.module, ())]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.attr in OS_ATTRIBUTES.get(node.value.id, ()):
                found.append(f"{line}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
            if (len(node.args) >= 2 and isinstance(node.args[0], ast.Name) and isinstance(node.args[1], ast.Constant)
                    and node.args[1].value in OS_ATTRIBUTES.get(node.args[0].id, ())):
                found.append(f"{line}: {node.func.id}({node.args[0].id}, {node.args[1].value!r})")
        elif isinstance(node, ast.keyword) and node.arg in OS_KEYWORDS:
            found.append(f"{line}: {node.arg}=")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("/proc/"):
            found.append(f"{line}: {node.value!r}")
    return found


def test_the_scan_finds_each_kind_of_os_specific_use() -> None:
    """The rule below can fail: each finding of issue 20 in its original form is caught."""
    originals = {
        "import ctypes\nctypes.CDLL(None).prctl(29, 1, 0, 0, 0)": "import ctypes",
        "fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)": "os.O_DIRECTORY",
        "base = os.getpriority(os.PRIO_PROCESS, 0)": "os.getpriority",
        "a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)": "socket.AF_UNIX",
        "subprocess.Popen(args, pass_fds=[fd])": "pass_fds=",
        "r, w = os.pipe()": "os.pipe",
        "libc.prctl(1, signal.SIGKILL)": "signal.SIGKILL",
        "if sys.platform == 'win32': pass": "sys.platform",
        "import tty": "import tty",
        "from os import openpty": "from os import openpty",
        "ok = hasattr(os, 'SCHED_IDLE')": "hasattr(os, 'SCHED_IDLE')",
        "Path('/proc/self/comm').write_text(name)": "'/proc/self/comm'",
        "signal.signal(signal.SIGINT, handler)": "signal.signal",
        "sent = sock.send(data, socket.MSG_DONTWAIT)": "socket.MSG_DONTWAIT",
    }
    for source, expected in originals.items():
        assert any(expected in use for use in os_specific_uses(source)), source
    assert os_specific_uses("import os, socket, select\nos.replace(a, b)\nsocket.create_connection(x)") == []


def test_only_the_platform_seam_uses_os_specific_apis() -> None:
    violations = [f"{path.relative_to(PACKAGE.parent)}:{use}" for path in sorted(PACKAGE.rglob("*.py"))
                  if SEAM not in path.parents for use in os_specific_uses(path.read_text())]
    assert violations == []


def test_the_platform_seam_uses_only_the_base_layer() -> None:
    for path in SEAM.rglob("*.py"):
        for imported in hwlink_imports(path, top_level_only=False):
            assert imported in BASE or imported.startswith("hwlink.platform"), f"{path.name} imports {imported}"
