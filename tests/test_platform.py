"""The platform seam (hwlink.platform): each native path and each portable fallback, and imitations of the
failures issue 20 found on Windows (ctypes.CDLL(None) raising TypeError, no os.O_DIRECTORY, a cp1252 console).

`make test` runs this file twice, the second time with HWLINK_PORTABLE=1; tests that need one path set it.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hwlink import platform
from hwlink.cli.main import cli
from hwlink.drivers import open_board
from hwlink.edl import Collection
from hwlink.edl.files import atomic_write_text
from hwlink.lines import LineModeFlags
from hwlink.platform import _console, _threads
from hwlink.runtime.ipc import CONTROL, Channel

from runtime_support import run_experiment, write

LINUX = sys.platform.startswith("linux")
PYTHON = sys.executable
WORKER_PRELUDE = "import sys\nfrom hwlink.platform import connect_to_engine\nsock = connect_to_engine(sys.argv[-1])\n"


def windows_cdll(*args: object, **kwargs: object) -> ctypes.CDLL:
    raise TypeError("LoadLibrary() argument 1 must be str, not None")  # what ctypes.CDLL(None) does on Windows


# ----- switches ---------------------------------------------------------------------------------------------------
def test_switches_name_seams_and_reject_unknown_ones() -> None:
    assert platform.forced_seams("") == frozenset() == platform.forced_seams("0")
    assert platform.forced_seams("1") == frozenset(platform.SEAMS) == platform.forced_seams("all")
    assert platform.forced_seams("ipc, wakeup") == {"ipc", "wakeup"}
    with pytest.raises(ValueError, match="unknown seam.*clok"):
        platform.forced_seams("clok")


def test_a_misspelt_switch_is_a_cli_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWLINK_PORTABLE", "ipc,wakup")
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 2 and "unknown seam(s) wakup" in result.output


def test_doctor_reports_each_seam_and_the_priority_obtained() -> None:
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    for key in ("clock", "wait granularity", "scheduler wake-up", "worker channel", "orphan protection",
                "directory fsync", "stop signals", "thread timing threads (probe)"):
        assert key in result.output
    portable = os.environ.get("HWLINK_PORTABLE") == "1"
    assert ("loopback TCP + one-time token" in result.output) == (portable or not LINUX)


# ----- clock (finding 7) ------------------------------------------------------------------------------------------
def child_clock(env: dict[str, str]) -> tuple[str, int]:
    out = subprocess.run([PYTHON, "-c", "from hwlink import platform; print(platform.CLOCK_NAME, platform.clock_ns())"],
                         env=env, capture_output=True, text=True, check=True).stdout.split()
    return out[0], int(out[1])


def test_worker_processes_share_the_master_clock() -> None:
    """A child process (inheriting the switches, as workers do) reads the same clock: between two parent reads."""
    before = platform.clock_ns()
    name, child = child_clock(dict(os.environ))
    after = platform.clock_ns()
    assert name == platform.CLOCK_NAME
    assert before < child < after


def test_clock_source_follows_the_switch_and_resolution() -> None:
    forced, _ = child_clock(dict(os.environ, HWLINK_PORTABLE="clock"))
    assert forced == "perf_counter"
    native, _ = child_clock({k: v for k, v in os.environ.items() if k != "HWLINK_PORTABLE"})
    fine = time.get_clock_info("monotonic").resolution <= 1e-6
    assert native == ("monotonic" if fine else "perf_counter")  # Windows 3.12: 15.6 ms monotonic -> perf_counter
    assert platform.clock_resolution_sec() <= 1e-6


# ----- thread priority (findings 1, 9) ----------------------------------------------------------------------------
def test_priority_never_raises_when_ctypes_cdll_none_raises_typeerror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes, "CDLL", windows_cdll)
    result: list[platform.Priority] = []
    thread = threading.Thread(target=lambda: result.append(platform.make_thread_timely("imitation")))
    thread.start()
    thread.join()
    assert len(result) == 1  # the thread survived
    if LINUX and not platform.portable("priority"):
        assert "timer slack unchanged (TypeError" in result[0].description
    assert platform.obtained()["imitation"] == result[0].description


def test_pulses_and_sim_readings_work_when_ctypes_cdll_none_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 1: on Windows the scheduler and sim threads died at start; no pulses, no readings."""
    monkeypatch.setattr(ctypes, "CDLL", windows_cdll)
    with open_board("sim://?d2=square:50Hz&latency=none") as board:
        board.set_mode(13, LineModeFlags.IS_OUTPUT)
        train = board.pulse(13, 2_000, count=3, period_usec=6_000)
        assert train.wait(5)
        assert np.all(np.abs(train.achieved_widths_usec - 2_000) < 20_000)  # loose: the machine is shared
        assert len(train.achieved_widths_usec) == 3


@pytest.mark.skipif(not hasattr(os, "sched_getscheduler"), reason="SCHED_FIFO exists on Linux only")
def test_native_linux_priority_is_sched_fifo_or_says_why_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HWLINK_PORTABLE", raising=False)
    result: list[platform.Priority] = []
    thread = threading.Thread(target=lambda: result.append(platform.make_thread_timely("native probe")))
    thread.start()
    thread.join()
    if result[0].elevated:
        assert result[0].description.startswith("SCHED_FIFO 10, timer slack 1 µs")
    else:
        assert "SCHED_FIFO refused" in result[0].description
    monkeypatch.setenv("HWLINK_PORTABLE", "priority")
    assert not platform.make_thread_timely("portable probe").elevated


def test_wait_granularity_and_coarse_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWLINK_PORTABLE", "wakeup")
    granularity = platform.wait_granularity_ns()
    assert 0 <= granularity < 50_000_000
    assert platform.coarse_timeout(1.0) == pytest.approx(1.0 - granularity / 1e9)
    assert platform.coarse_timeout(granularity / 2e9) == 0.0  # the last stretch is polled, never overslept
    if LINUX:
        monkeypatch.delenv("HWLINK_PORTABLE")
        assert platform.wait_granularity_ns() == 0 and platform.coarse_timeout(0.0001) == 0.0001


# ----- waker (findings 5, 8) --------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["native", "portable"])
def test_waker_wakes_times_out_and_multiplexes_with_sockets(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setenv("HWLINK_PORTABLE", "wakeup" if mode == "portable" else "0")
    waker = platform.Waker()
    assert waker.portable == (mode == "portable" or sys.platform == "win32")
    try:
        assert not waker.wait(0.01)
        for _ in range(10_000):  # far more than a pipe or socket buffer holds: never blocks
            waker.wake()
        assert waker.wait(0) and not waker.wait(0)  # drained in one go
        threading.Timer(0.05, waker.wake).start()
        started = time.monotonic()
        assert waker.wait(10)
        assert time.monotonic() - started < 5
        a, b = platform.loopback_pair()
        with a, b:
            b.sendall(b"x")
            readable, _, _ = select.select([waker.fileno(), a], [], [], 5)
            assert readable == [a]
            waker.wake()
            readable, _, _ = select.select([waker.fileno(), a], [], [], 5)
            assert waker.fileno() in readable
    finally:
        waker.close()
    waker.wake()  # after close: ignored


# ----- files (findings 2, 12) -------------------------------------------------------------------------------------
def test_edl_writes_without_o_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Finding 2: Windows has no os.O_DIRECTORY; every EDL write failed with AttributeError."""
    monkeypatch.delattr(os, "O_DIRECTORY", raising=False)
    atomic_write_text(tmp_path / "a.toml", "x = 1\n")
    assert (tmp_path / "a.toml").read_text() == "x = 1\n"
    assert platform.fsync_directory(tmp_path) is False
    collection = Collection.create(tmp_path / "c", attributes={"who": "imitation"})
    collection.create_dataset("d")
    collection.close()
    assert Collection.open(tmp_path / "c").attributes["who"] == "imitation"


def test_directory_fsync_native_and_portable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HWLINK_PORTABLE", "files")
    assert platform.fsync_directory(tmp_path) is False
    monkeypatch.setenv("HWLINK_PORTABLE", "0")
    assert platform.fsync_directory(tmp_path) is hasattr(os, "O_DIRECTORY")


def flaky_replace(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[int]:
    real = os.replace
    calls: list[int] = []

    def replace(source: object, target: object) -> None:
        calls.append(1)
        if len(calls) <= failures:
            raise PermissionError(13, "The process cannot access the file because it is being used by another "
                                      "process")
        real(source, target)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    return calls


def test_replace_retries_while_another_process_holds_the_target(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """Finding 12: on Windows a reader's open handle makes os.replace fail for a moment."""
    monkeypatch.setenv("HWLINK_PORTABLE", "files")
    calls = flaky_replace(monkeypatch, failures=3)
    (tmp_path / "manifest.toml").write_text("old")
    atomic_write_text(tmp_path / "manifest.toml", "new")
    assert (tmp_path / "manifest.toml").read_text() == "new" and len(calls) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.toml"]  # no temp file left


def test_replace_gives_up_after_its_deadline_and_posix_fails_at_once(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    source, target = tmp_path / "s", tmp_path / "t"
    source.write_text("s")
    monkeypatch.setenv("HWLINK_PORTABLE", "files")
    calls = flaky_replace(monkeypatch, failures=10**6)
    started = time.monotonic()
    with pytest.raises(PermissionError):
        platform.replace_file(source, target, retry_sec=0.2)
    assert 0.1 < time.monotonic() - started < 5 and len(calls) > 2
    if sys.platform != "win32":
        monkeypatch.setenv("HWLINK_PORTABLE", "0")
        calls.clear()
        with pytest.raises(PermissionError):
            platform.replace_file(source, target)
        assert len(calls) == 1  # a POSIX PermissionError is a real one


# ----- worker channel and orphans (findings 4, 6) -----------------------------------------------------------------
def start(code: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Channel]:
    process, sock = platform.start_worker(["-c", WORKER_PRELUDE + textwrap.dedent(code)], env=dict(os.environ),
                                          cwd=tmp_path)
    return process, Channel(sock, blocking_send=False)


def receive_one(channel: Channel) -> tuple[str, dict]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        messages = channel.receive(1.0)
        if messages:
            assert messages[0].kind == CONTROL
            return messages[0].control()
    raise AssertionError("no message from the worker")


@pytest.mark.parametrize("mode", ["native", "portable"])
def test_worker_channel_carries_framed_messages_both_ways(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          mode: str) -> None:
    monkeypatch.setenv("HWLINK_PORTABLE", "ipc" if mode == "portable" else "0")
    process, channel = start("""
        from hwlink.runtime.ipc import Channel
        channel = Channel(sock, blocking_send=True)
        verb, fields = channel.receive(None)[0].control()
        channel.send_control("echo", text=fields["text"] * 2, argv=sys.argv[-1], stdin=sys.stdin.read())
        print("worker says \\u2192 \\u65e5\\u672c")
    """, tmp_path)
    try:
        channel.send_control("hello", text="µ→")
        verb, fields = receive_one(channel)
        assert verb == "echo" and fields["text"] == "µ→µ→"
        assert fields["stdin"] == ""  # the script's stdin is empty, as before; the guard pipe is elsewhere
        native = mode == "native" and sys.platform != "win32"
        assert fields["argv"].startswith("fd:" if native else "tcp:127.0.0.1:")
        out = process.stdout.read()  # type: ignore[union-attr]  # (communicate() would close the guard's pipe)
        assert out.decode("utf-8") == "worker says → 日本\n"  # UTF-8 whatever the console
        assert process.wait(timeout=30) == 0
    finally:
        channel.close()
        process.kill()
        process.wait()


def test_the_tcp_channel_accepts_only_the_worker_with_the_token(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    monkeypatch.setenv("HWLINK_PORTABLE", "ipc")
    real_connect = """
        import socket, sys
        host, port = sys.argv[-1][len("tcp:"):].rsplit(":", 1)
        rogue = socket.create_connection((host, int(port)))
        rogue.sendall(b"0" * 32 + b"\\n")  # a local process guessing
        rogue.settimeout(30)
        closed = rogue.recv(1) == b""
        from hwlink.platform import connect_to_engine
        sock = connect_to_engine(sys.argv[-1])
        from hwlink.runtime.ipc import Channel
        Channel(sock, blocking_send=True).send_control("rogue", closed=closed)
    """
    process, sock = platform.start_worker(["-c", textwrap.dedent(real_connect)], env=dict(os.environ), cwd=tmp_path)
    channel = Channel(sock, blocking_send=False)
    try:
        assert receive_one(channel) == ("rogue", {"closed": True})
    finally:
        channel.close()
        process.kill()
        process.wait()


def test_a_worker_that_never_connects_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HWLINK_PORTABLE", "ipc")
    process, sock = platform.start_worker(["-c", "import sys; print('boom', file=sys.stderr); sys.exit(7)"],
                                          env=dict(os.environ), cwd=tmp_path)
    channel = Channel(sock, blocking_send=False)
    with pytest.raises(ConnectionAbortedError, match=r"worker exited \(code 7\) before connecting"):
        channel.receive(None)  # the engine's reader sees a dead peer; the log has the worker's stderr
    assert process.stderr.read().strip() == b"boom"  # type: ignore[union-attr]
    channel.close()


def test_start_worker_returns_before_the_worker_connected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Like an inherited socket, several workers start in parallel: the engine does not wait in start_worker."""
    monkeypatch.setenv("HWLINK_PORTABLE", "ipc")
    started = time.monotonic()
    process, sock = platform.start_worker(["-c", "import time; time.sleep(3)\n" + WORKER_PRELUDE +
                                           "sock.sendall(b'late')\n"], env=dict(os.environ), cwd=tmp_path)
    try:
        assert time.monotonic() - started < 2.5
        assert sock.recv(4) == b"late"
    finally:
        sock.close()
        process.kill()
        process.wait()


@pytest.mark.parametrize("mode", ["native", "portable"])
def test_a_spinning_worker_exits_when_its_stdin_from_the_engine_closes(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path, mode: str) -> None:
    monkeypatch.setenv("HWLINK_PORTABLE", "ipc,orphan" if mode == "portable" else "0")
    process, channel = start("""
        from hwlink.runtime.ipc import Channel
        Channel(sock, blocking_send=True).send_control("spinning")
        while True:
            pass
    """, tmp_path)
    try:
        assert receive_one(channel)[0] == "spinning"
        assert process.poll() is None
        process.stdin.close()  # type: ignore[union-attr]  # what the OS does when the engine dies
        assert process.wait(timeout=30) == 3
    finally:
        channel.close()
        process.kill()
        process.wait()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="kills the engine with SIGKILL (POSIX)")
def test_a_spinning_script_dies_with_a_killed_engine(tmp_path: Path) -> None:
    """Finding 6: on macOS a spinning worker outlived a killed engine (no PR_SET_PDEATHSIG). With
    HWLINK_PORTABLE=1 (second pass) the stdin guard alone must end it."""
    engine_code = WORKER_PRELUDE.replace("sock = connect_to_engine(sys.argv[-1])\n", "") + textwrap.dedent("""
        import os, time
        from hwlink.platform import start_worker
        process, sock = start_worker(["-c", "import sys\\nfrom hwlink.platform import connect_to_engine\\n"
                                      "connect_to_engine(sys.argv[-1])\\nwhile True: pass\\n"],
                                     env=dict(os.environ), cwd=os.getcwd())
        print(process.pid, flush=True)
        time.sleep(600)
    """)
    engine = subprocess.Popen([PYTHON, "-c", engine_code], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        worker = int(engine.stdout.readline())  # type: ignore[union-attr]
        time.sleep(0.5)
        os.kill(worker, 0)  # running
        engine.send_signal(signal.SIGKILL)
        engine.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(worker, signal.SIGKILL)
            raise AssertionError("the worker outlived the killed engine")
    finally:
        engine.kill()
        engine.wait()


def test_try_send_is_non_blocking_natively_and_leaves_everything_to_the_flusher_portably(
        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = platform.loopback_pair()
    with a, b:
        monkeypatch.setenv("HWLINK_PORTABLE", "ipc")
        assert platform.try_send(a, b"x") == 0
        if sys.platform != "win32":
            monkeypatch.setenv("HWLINK_PORTABLE", "0")
            assert platform.try_send(a, b"abc") == 3
            sent = sum(platform.try_send(a, b"y" * 65536) for _ in range(1000))  # fills the buffers: no block
            assert 0 < sent < 1000 * 65536


@pytest.mark.skipif(not hasattr(os, "sched_getscheduler"), reason="SCHED_IDLE is Linux's")
@pytest.mark.parametrize("mode", ["native", "portable"])
def test_lowering_a_spinning_script(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setenv("HWLINK_PORTABLE", "priority" if mode == "portable" else "0")
    child = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(60)"])
    try:
        platform.lower_priority(child.pid)
        if mode == "native":
            assert os.sched_getscheduler(child.pid) == os.SCHED_IDLE
        else:
            assert os.getpriority(os.PRIO_PROCESS, child.pid) == 19
        if os.geteuid() == 0:  # going back needs privileges
            platform.restore_priority(child.pid, platform.own_nice())
            assert os.sched_getscheduler(child.pid) == os.SCHED_OTHER
            assert os.getpriority(os.PRIO_PROCESS, child.pid) == platform.own_nice()
    finally:
        child.kill()
        child.wait()


# ----- console: signals and encodings (findings 10, 13) -----------------------------------------------------------
def test_stop_signals_call_the_handler_and_restore_the_previous_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    before = signal.getsignal(signal.SIGTERM)
    with platform.stop_signals(lambda signum, frame: calls.append(signum)):
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)
    assert calls == [signal.SIGTERM, signal.SIGINT]
    assert signal.getsignal(signal.SIGTERM) == before
    names = {signal.Signals(n).name for n in platform.stop_signal_numbers()}
    assert {"SIGINT", "SIGTERM"} <= names
    if sys.platform == "win32":
        assert "SIGBREAK" in names
    elif not platform.portable("signals"):
        assert "SIGHUP" in names  # the terminal closed: stop cleanly instead of dying mid-write


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX terminal hang-up")
def test_a_hangup_stops_cleanly_unless_nohup_ignores_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWLINK_PORTABLE", "0")
    calls: list[int] = []
    with platform.stop_signals(lambda signum, frame: calls.append(signum)):
        signal.raise_signal(signal.SIGHUP)
    assert calls == [signal.SIGHUP]
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with platform.stop_signals(lambda signum, frame: calls.append(signum)):
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_console_close_asks_to_stop_and_holds_until_the_run_closed() -> None:
    """Windows ends the process when the console handler returns: it must wait for the collection to close."""
    calls: list[int] = []
    finished = threading.Event()
    threading.Timer(0.2, finished.set).start()
    started = time.monotonic()
    assert _console.on_console_event(_console.CTRL_CLOSE_EVENT, lambda s, f: calls.append(s), finished, 10)
    assert 0.1 < time.monotonic() - started < 5
    assert calls == [_console.console_event_signal()]
    assert not _console.on_console_event(0, lambda s, f: calls.append(s), finished)  # Ctrl-C: Python's own
    assert len(calls) == 1


def test_a_cp1252_console_does_not_break_the_cli() -> None:
    code = "from hwlink.platform import setup_console; setup_console(); print('pulse \\u2192 \\u65e5\\u672c \\u2713')"
    env = dict(os.environ, PYTHONIOENCODING="cp1252")
    result = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == b"pulse \\u2192 \\u65e5\\u672c \\u2713"
    broken = subprocess.run([PYTHON, "-c", code.split("; ", 2)[2]], env=env, capture_output=True)
    assert b"UnicodeEncodeError" in broken.stderr  # what the imitation guards against


def test_run_with_a_cp1252_console_logs_script_output_as_utf8(tmp_path: Path) -> None:
    """Finding 10: a script printing characters cp1252 lacks, under a cp1252 console: the run finishes, the logs
    hold the exact text (UTF-8), the terminal an escaped copy."""
    script = write(tmp_path, "hello.py", "print('température → 日本 ✓', flush=True)\n"
                                         "def run():\n    pass\n")
    experiment = write(tmp_path, "exp.toml", f'[modules.hello]\nkind = "script"\nscript = "{script}"\n')
    env = dict(os.environ, PYTHONIOENCODING="cp1252")
    result = subprocess.run([PYTHON, "-c", "from hwlink.cli.main import main; main()", "run", str(experiment),
                             "--duration", "300ms", "-o", str(tmp_path / "out")], env=env, capture_output=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr.decode("cp1252", "replace")
    assert "température → 日本 ✓" in (tmp_path / "out" / "hwlink-run" / "hello.log").read_text(encoding="utf-8")
    assert "temp\xe9rature \\u2192 \\u65e5\\u672c \\u2713".encode("cp1252") in result.stdout + result.stderr
    run_log = (tmp_path / "out" / "hwlink-run" / "run.log").read_text(encoding="utf-8")
    assert "[engine] platform: " in run_log and "worker channel: " in run_log  # what was obtained, recorded


def test_the_run_log_records_the_priority_each_timing_thread_obtained(tmp_path: Path) -> None:
    experiment = write(tmp_path, "exp.toml", '[modules.board]\nkind = "board"\nurl = "sim://?d2=square:20Hz"\n'
                                             'inputs = ["2"]\n')
    run = run_experiment(experiment, tmp_path / "out", duration="300ms")
    assert run.result.reason == "duration", run.output
    line = next(line for line in (run.path / "hwlink-run" / "run.log").read_text(encoding="utf-8").splitlines()
                if "platform:" in line)
    assert "thread hwlink-sim: " in line and f"clock: {platform.CLOCK_NAME}" in line


# ----- pty (finding 11) -------------------------------------------------------------------------------------------
def test_the_firmata_test_board_imports_and_serves_tcp_without_a_pty(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 11: tty/openpty at module level kept the test peer from importing on Windows."""
    code = ("import builtins, sys\nreal = builtins.__import__\n"
            "def no_posix(name, *a, **k):\n    if name in ('tty', 'pty'): raise ImportError(name)\n"
            "    return real(name, *a, **k)\nbuiltins.__import__ = no_posix\n"
            "from hwlink.testing.firmata_board import SoftFirmataBoard\n"
            "from hwlink.drivers import open_board\n"
            "with SoftFirmataBoard() as soft:\n    url = soft.start_tcp()\n"
            "    with open_board(url) as board: print(board.url.split(':')[0])\n")
    result = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "firmata+socket"


@pytest.mark.skipif(not platform.has_pty(), reason="ptys are POSIX's")
def test_raw_pty_passes_bytes_untouched() -> None:
    master, slave, path = platform.open_raw_pty()
    try:
        assert os.path.exists(path)
        os.write(slave, b"\x00\x7f\r\n\x03")
        time.sleep(0.05)
        assert os.read(master, 100) == b"\x00\x7f\r\n\x03"  # no line discipline, no echo, no CR/LF mapping
    finally:
        os.close(master)
        os.close(slave)


def test_thread_roles_are_recorded() -> None:
    platform.make_thread_timely("recorded role")
    assert "recorded role" in platform.obtained()
    assert "thread recorded role" in platform.describe()
    assert platform.summary().startswith("platform: system: ")
    assert _threads.measured_granularity_ns() is None or _threads.measured_granularity_ns() >= 0


# ----- Windows and macOS code paths, with the OS API replaced at the outermost seam (ctypes) -----------------------
class FakeFunction:
    def __init__(self, calls: list[tuple], name: str, result: object) -> None:
        self.calls, self.name, self.result = calls, name, result
        self.argtypes: list = []
        self.restype: object = None

    def __call__(self, *args: object) -> object:
        self.calls.append((self.name, *args))
        return self.result(*args) if callable(self.result) else self.result


class FakeLibrary:
    """A DLL whose functions record their calls and return what ``results`` says (default 1: success)."""

    def __init__(self, calls: list[tuple], results: dict[str, object]) -> None:
        self._calls, self._results = calls, results

    def __getattr__(self, name: str) -> FakeFunction:
        function = FakeFunction(self._calls, name, self._results.get(name, 1))
        setattr(self, name, function)
        return function


def pretend(monkeypatch: pytest.MonkeyPatch, system: str, results: dict[str, object]) -> list[tuple]:
    from hwlink.platform import _workers

    calls: list[tuple] = []
    monkeypatch.delenv("HWLINK_PORTABLE", raising=False)
    for module in (_threads, _workers, _console):
        for name, value in (("IS_WINDOWS", system == "Windows"), ("IS_LINUX", False),
                            ("IS_MACOS", system == "macOS")):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, value)
    monkeypatch.setattr(ctypes, "WinDLL", lambda name, **kwargs: FakeLibrary(calls, results), raising=False)
    monkeypatch.setattr(ctypes, "CDLL", lambda name, **kwargs: FakeLibrary(calls, results))
    monkeypatch.setattr(_threads, "_timer_period", None)
    return calls


def test_windows_thread_priority_and_timer_period(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = pretend(monkeypatch, "Windows", {"GetCurrentThread": 0xFFFFFFFFFFFFFFFE, "GetThreadPriority": 15,
                                             "timeBeginPeriod": 0})
    result = platform.make_thread_timely("windows imitation")
    assert result.elevated and result.description == "time-critical thread priority, timer period 1 ms"
    assert ("timeBeginPeriod", 1) in calls and ("SetThreadPriority", 0xFFFFFFFFFFFFFFFE, 15) in calls
    platform.make_thread_timely("again")
    assert calls.count(("timeBeginPeriod", 1)) == 1  # once per process


def test_windows_priority_refused_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    pretend(monkeypatch, "Windows", {"SetThreadPriority": 0, "timeBeginPeriod": 97})
    result = platform.make_thread_timely("windows refused")
    assert not result.elevated
    assert "SetThreadPriority failed" in result.description and "timeBeginPeriod refused" in result.description


def test_windows_worker_priority_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = pretend(monkeypatch, "Windows", {"OpenProcess": 1234})
    platform.set_nice(42, 5)
    platform.lower_priority(42)
    platform.restore_priority(42, 0)
    classes = [call[2] for call in calls if call[0] == "SetPriorityClass"]
    assert classes == [0x4000, 0x40, 0x20]  # below normal, idle, normal
    assert calls.count(("CloseHandle", 1234)) == 3
    assert platform.own_nice() == 0


def test_macos_thread_qos(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = pretend(monkeypatch, "macOS", {"pthread_set_qos_class_self_np": 0})
    result = platform.make_thread_timely("macos imitation")
    assert result.elevated and result.description == "QoS user-interactive"
    assert calls == [("pthread_set_qos_class_self_np", 0x21, 0)]


def test_windows_console_handler_is_installed_and_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = pretend(monkeypatch, "Windows", {})
    monkeypatch.setattr(ctypes, "WINFUNCTYPE", lambda *types: (lambda function: function), raising=False)
    seen: list[int] = []
    with platform.stop_signals(lambda signum, frame: seen.append(signum)):
        installed = [call for call in calls if call[0] == "SetConsoleCtrlHandler"]
        assert len(installed) == 1 and installed[0][2] is True
        routine = installed[0][1]
        finished_later = threading.Thread(target=lambda: seen.append(routine(_console.CTRL_CLOSE_EVENT)))
        finished_later.start()
        time.sleep(0.3)
        assert seen == [_console.console_event_signal()]  # asked to stop; the handler still holds the process
    finished_later.join(5)
    assert seen == [_console.console_event_signal(), 1]  # returned (handled) once the block was left
    assert [call[2] for call in calls if call[0] == "SetConsoleCtrlHandler"] == [True, False]


def test_tsync_publishes_without_copy_file_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows and macOS have no os.copy_file_range: a tsync writer's atomic republish copies by read/write."""
    from hwlink.sync.tsync import TSyncWriter, read_tsync

    monkeypatch.delattr(os, "copy_file_range", raising=False)
    path = tmp_path / "x.tsync"
    writer = TSyncWriter(path, block_size=4)
    writer.add_many(list(range(10)), list(range(0, 20, 2)))
    writer.flush()  # two complete blocks copied forward, the block in progress terminated
    assert read_tsync(path).times[:, 1].tolist() == list(range(0, 20, 2))
    writer.add(10, 20)
    writer.close()
    assert read_tsync(path).times[:, 0].tolist() == list(range(11))
