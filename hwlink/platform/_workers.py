"""Worker processes of the runtime: starting them, their channel to the engine, orphan protection, priority.

Channel (the framing of ``hwlink.runtime.ipc`` is the same on both):
- native (Linux, macOS): an AF_UNIX socket pair, the worker's end inherited as a file descriptor
  (``pass_fds``); the worker gets ``fd:N``.
- portable (Windows, or the ipc seam forced): the engine listens on 127.0.0.1 on a free port, the worker
  connects and first sends a one-time random token the engine gave it on its stdin (never on the command line,
  which other users can read); the engine accepts the first connection with the right token, then stops
  listening. The worker gets ``tcp:127.0.0.1:PORT``. ``start_worker`` does not wait for the connection (as
  with an inherited socket, several workers start in parallel): its socket blocks on first use until the
  worker has connected, or fails with ConnectionAbortedError if the worker exits or does not connect in time.

Orphans: a worker's stdin is a pipe from the engine, and a thread in the worker ends the process when it
reads end-of-file, which happens on every OS when the engine exits or is killed (a script spinning in its own
code never reads its socket, so EOF on the channel alone would not end it). On Linux PR_SET_PDEATHSIG kills
it as well. The worker's own stdin is /dev/null, as before.

Worker output is UTF-8 whatever the console's code page (``PYTHONIOENCODING``): the engine decodes it as UTF-8.
"""

from __future__ import annotations

import ctypes
import hmac
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from hwlink.errors import HwlinkError
from hwlink.platform._switches import IS_LINUX, IS_WINDOWS, POSIX, portable
from hwlink.platform._threads import _kernel32, _windows_timer_period

CONNECT_TIMEOUT_SEC = 60.0
TOKEN_BYTES = 16
ORPHAN_EXIT_CODE = 3
PR_SET_PDEATHSIG = 1
_LOCALHOST = "127.0.0.1"

# Windows priority classes (SetPriorityClass)
_IDLE_PRIORITY_CLASS = 0x40
_BELOW_NORMAL_PRIORITY_CLASS = 0x4000
_NORMAL_PRIORITY_CLASS = 0x20
_PROCESS_SET_INFORMATION = 0x0200


class WorkerStartError(HwlinkError):
    """The worker process did not come up and connect."""


def inherits_sockets() -> bool:
    """Whether workers get an inherited AF_UNIX socket (else loopback TCP with a token)."""
    return POSIX and hasattr(socket, "AF_UNIX") and not portable("ipc")


def worker_environment(env: dict[str, str]) -> dict[str, str]:
    return dict(env, PYTHONIOENCODING="utf-8")


def start_worker(arguments: list[str], *, env: dict[str, str], cwd: str | os.PathLike[str],
                 timeout: float = CONNECT_TIMEOUT_SEC) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """Start ``python ARGUMENTS CHANNEL`` and return it with the engine's end of its channel.

    The last argument the worker gets names the channel; pass it to ``connect_to_engine``. stdout and stderr
    are pipes (UTF-8); stdin is the orphan guard's pipe (keep the Popen until the worker has exited).
    """
    env = worker_environment(env)
    common: dict[str, Any] = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=env, cwd=cwd)
    if IS_WINDOWS:
        # Ctrl-C / Ctrl-Break go to the engine only, which stops the workers in order.
        common["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    command = [sys.executable, *arguments]
    if inherits_sockets():
        engine_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = subprocess.Popen([*command, f"fd:{worker_end.fileno()}"], pass_fds=[worker_end.fileno()],
                                       **common)
        except BaseException:
            engine_end.close()
            raise
        finally:
            worker_end.close()
        return process, engine_end
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind((_LOCALHOST, 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        token = secrets.token_hex(TOKEN_BYTES).encode()
        process = subprocess.Popen([*command, f"tcp:{_LOCALHOST}:{port}"], **common)
    except BaseException:
        listener.close()
        raise
    try:
        assert process.stdin is not None
        process.stdin.write(token + b"\n")
        process.stdin.flush()
    except OSError:
        pass  # the worker is gone already: the pending socket reports it
    return process, PendingSocket(listener, token, process, timeout)  # type: ignore[return-value]


class PendingSocket:
    """The engine's end of a TCP channel whose worker is still starting: any use waits for the connection.

    Accepting runs on a thread of its own, so ``start_worker`` returns at once. If the worker exits or does not
    connect in time, every use raises ConnectionAbortedError (an OSError: to the channel, a dead peer).
    """

    def __init__(self, listener: socket.socket, token: bytes, process: subprocess.Popen[bytes],
                 timeout: float) -> None:
        self._listener = listener
        self._ready = threading.Event()
        self._sock: socket.socket | None = None
        self._error = ""
        self._closed = False
        threading.Thread(target=self._accept, args=(token, process, timeout), name="hwlink-worker-accept",
                         daemon=True).start()

    def _accept(self, token: bytes, process: subprocess.Popen[bytes], timeout: float) -> None:
        try:
            self._sock = _accept_worker(self._listener, token, process, timeout, lambda: self._closed)
        except (OSError, ValueError, WorkerStartError) as error:
            self._error = str(error)
        finally:
            self._listener.close()
            if self._closed and self._sock is not None:
                self._sock.close()
            self._ready.set()

    def connected(self, timeout: float | None = None) -> socket.socket:
        """The connected socket (waiting up to ``timeout`` s for it)."""
        if not self._ready.wait(timeout):
            raise TimeoutError("the worker has not connected yet")
        if self._sock is None:
            raise ConnectionAbortedError(self._error or "the channel was closed before the worker connected")
        return self._sock

    def fileno(self) -> int:
        return self.connected().fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connected(), name)

    def close(self) -> None:
        self._closed = True
        if self._ready.is_set() and self._sock is not None:
            self._sock.close()


def _accept_worker(listener: socket.socket, token: bytes, process: subprocess.Popen[bytes], timeout: float,
                   cancelled: Any = lambda: False) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if cancelled():
            raise WorkerStartError("the channel was closed before the worker connected")
        if process.poll() is not None:
            raise WorkerStartError(f"worker exited (code {process.returncode}) before connecting")
        if remaining <= 0:
            raise WorkerStartError(f"worker did not connect within {timeout:.0f} s")
        readable, _, _ = select.select([listener], [], [], min(remaining, 0.05))
        if not readable:
            continue
        connection, _ = listener.accept()
        try:
            connection.settimeout(max(min(deadline - time.monotonic(), 5.0), 0.1))
            received = b""
            while len(received) < len(token) + 1:
                chunk = connection.recv(len(token) + 1 - len(received))
                if not chunk:
                    break
                received += chunk
        except OSError:
            received = b""
        if hmac.compare_digest(received, token + b"\n"):
            connection.settimeout(None)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return connection
        connection.close()  # not our worker: keep listening


# ----- the worker's side --------------------------------------------------------------------------------------
def connect_to_engine(channel: str) -> socket.socket:
    """In the worker: arm the orphan guard, leave console signals to the engine, and connect the channel.

    ``channel`` is what ``start_worker`` appended (``fd:N``, ``tcp:HOST:PORT``; a bare number is ``fd:N``).
    """
    guard_fd = _take_stdin()
    _die_with_parent()
    if IS_WINDOWS:
        _windows_timer_period()  # the script's wait()/await_data() timeouts: 1 ms ticks instead of 15.6 ms
    for name in ("SIGINT", "SIGBREAK"):  # Ctrl-C / Ctrl-Break are the engine's to handle
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    kind, _, address = channel.partition(":") if not channel.isdigit() else ("fd", "", channel)
    if kind == "fd":
        sock = socket.socket(fileno=int(address))
    elif kind == "tcp":
        host, _, port = address.rpartition(":")
        token = _read_line(guard_fd) if guard_fd is not None else b""
        sock = socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_SEC)
        sock.sendall(token + b"\n")
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    else:
        raise ValueError(f"unknown worker channel {channel!r}")
    if guard_fd is not None:
        threading.Thread(target=_exit_when_closed, args=(guard_fd,), name="hwlink-orphan-guard", daemon=True).start()
    return sock


def _take_stdin() -> int | None:
    """Move the engine's pipe off fd 0 (scripts see an empty stdin, as before); None if there is no stdin."""
    try:
        guard_fd = os.dup(0)
    except OSError:
        return None
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return guard_fd


def _read_line(fd: int, limit: int = 256) -> bytes:
    line = b""
    while len(line) < limit:
        byte = os.read(fd, 1)
        if not byte or byte == b"\n":
            break
        line += byte
    return line


def _exit_when_closed(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass
    os._exit(ORPHAN_EXIT_CODE)  # the engine is gone: nobody reads what this worker would produce


def _die_with_parent() -> str:
    """Linux: the kernel kills this process when the parent (the engine) dies."""
    if not IS_LINUX or portable("orphan"):
        return "stdin guard"
    try:
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            return "stdin guard (PR_SET_PDEATHSIG refused)"
    except Exception:  # noqa: BLE001 - the stdin guard still covers it
        return "stdin guard (PR_SET_PDEATHSIG unavailable)"
    return "PR_SET_PDEATHSIG + stdin guard"


def orphan_protection() -> str:
    """How a worker is ended when the engine dies (for reports)."""
    if not IS_LINUX or portable("orphan"):
        return "stdin guard"
    return "PR_SET_PDEATHSIG + stdin guard"


# ----- sending without blocking -----------------------------------------------------------------------------------
def try_send(sock: socket.socket, data: bytes | memoryview) -> int:
    """Send what the socket takes at once without blocking the caller; returns the bytes sent.

    Needs MSG_DONTWAIT (POSIX). Windows has no per-call non-blocking send (and switching the socket's mode
    would break a concurrent blocking recv), so there it sends nothing and the caller's flusher thread sends.
    """
    if IS_WINDOWS or portable("ipc") or not hasattr(socket, "MSG_DONTWAIT"):
        return 0
    try:
        return sock.send(data, socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return 0


# ----- process priority -------------------------------------------------------------------------------------------
def own_nice() -> int:
    """This process's nice value (0 where the OS has none)."""
    if IS_WINDOWS or not hasattr(os, "getpriority"):
        return 0
    return os.getpriority(os.PRIO_PROCESS, 0)


def _windows_priority_class(pid: int, priority_class: int) -> None:
    kernel32 = _kernel32()
    handle = kernel32.OpenProcess(_PROCESS_SET_INFORMATION, False, pid)
    if not handle:
        raise OSError(ctypes.get_last_error(), "OpenProcess")  # type: ignore[attr-defined]
    try:
        if not kernel32.SetPriorityClass(handle, priority_class):
            raise OSError(ctypes.get_last_error(), "SetPriorityClass")  # type: ignore[attr-defined]
    finally:
        kernel32.CloseHandle(handle)


def set_nice(pid: int, nice: int) -> None:
    """Give process ``pid`` the nice value ``nice`` (0..19); on Windows the matching priority class."""
    if IS_WINDOWS:
        _windows_priority_class(pid, _NORMAL_PRIORITY_CLASS if nice <= 0 else
                                _BELOW_NORMAL_PRIORITY_CLASS if nice < 10 else _IDLE_PRIORITY_CLASS)
        return
    os.setpriority(os.PRIO_PROCESS, pid, nice)


def lower_priority(pid: int, lowest_nice: int = 19) -> None:
    """Run ``pid`` only when nothing else wants the CPU: SCHED_IDLE on Linux (a waking driver thread preempts
    it at once), nice 19 on other POSIX systems, the idle priority class on Windows. Raises OSError."""
    if IS_LINUX and not portable("priority") and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    else:
        set_nice(pid, lowest_nice)


def restore_priority(pid: int, nice: int) -> None:
    """Undo ``lower_priority`` (needs privileges a user may lack on POSIX: then OSError)."""
    if IS_LINUX and not portable("priority") and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
    set_nice(pid, nice)


def set_process_name(name: str) -> None:
    """Name the process as `top`/`ps` show it (Linux); elsewhere nothing."""
    if not IS_LINUX:
        return
    try:
        Path("/proc/self/comm").write_text(name[:15])
    except OSError:
        pass
