"""``python -m hwlink.runtime.worker CHANNEL``: the script worker process, wiring the layers together.

It builds the ``Host`` (``hwlink.runtime.host``) on the channel to the engine (``hwlink.platform.connect_to_engine``), registers the scripting APIs under the names
scripts import (``syntalos_mlink``, ``oe_pyprocessor``) *before* any user code runs, waits for the engine's
``Load`` and runs the script in the form its module kind asks for:

* ``script`` (Syntalos' Python Script): executed as the main program, with the link already initialized;
  its global ``prepare``/``start``/``run``/``stop`` are the lifecycle.
* ``python-module`` (Syntalos' standalone Python module): executed as the main program; it calls
  ``init_link()`` and ``await_data_forever()`` itself.
* ``oe-processor`` (Open Ephys Python Processor): imported as a module the way the plugin imports it, then
  driven by ``hwlink.runtime.oe``.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

from hwlink import platform
from hwlink.runtime import control as ctl
from hwlink.runtime import mlink, oe_pyprocessor
from hwlink.runtime.host import FATAL, GIL_SWITCH_INTERVAL_SEC, Host, format_user_traceback, watch_for_spinning
from hwlink.runtime.ipc import CONTROL, Channel
from hwlink.runtime.oe import OEAdapter
from hwlink.runtime.ports import SyntalosPyError
from hwlink.runtime.datatypes import DataType

FORMS = ("script", "python-module", "oe-processor")


def _run_as_main(host: Host, path: Path, standalone: bool) -> None:
    """Execute the script as the main program (``__name__ == "__main__"``), from its own directory's view; a
    Python Script module gets its link before its first line runs, a standalone module makes its own."""
    sys.argv = [str(path)]
    sys.path.insert(0, str(path.parent))
    namespace = {"__name__": "__main__", "__file__": str(path), "__builtins__": __builtins__}
    if not standalone:
        mlink._init_link_for_script(host, namespace)
    code = compile(path.read_bytes(), str(path), "exec")
    exec(code, namespace)  # noqa: S102 - running the user's script is the point


def _import_processor(path: Path) -> ModuleType:
    """Import the script as the plugin does: its directory appended to ``sys.path``, imported by its stem."""
    name = path.stem
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.append(directory)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SyntalosPyError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    if name not in sys.modules:  # a script named like an installed module must not replace it
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load(host: Host, message: ctl.Load) -> None:
    host.module_name = message.module_name
    host.node_id = message.node_id
    host.settings = message.settings
    host.base_dir = Path(message.base_dir)
    for name, data_type in message.inputs:
        host.register_port("in", name, DataType(data_type))
    for name, data_type in message.outputs:
        host.register_port("out", name, DataType(data_type))
    path = Path(message.script)
    module: ModuleType | None = None
    try:
        if message.form == "oe-processor":
            module = _import_processor(path)
        else:
            _run_as_main(host, path, standalone=message.form == "python-module")
    except FATAL as error:
        if not host.shutdown_requested:
            host.report_error(format_user_traceback(error))
        return
    except BaseException as error:
        host.report_error(format_user_traceback(error))
        return
    if module is not None:
        try:
            host.form = OEAdapter(host, module, message.processor_class or "PyProcessor")
        except SyntalosPyError as error:
            host.report_error(str(error))


def main(argv: list[str]) -> int:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SEC)
    # Ends this worker when the engine dies (a spinning script never reads the socket's EOF); Ctrl-C is the engine's.
    channel = Channel(platform.connect_to_engine(argv[1]), blocking_send=True)
    host = Host(channel)
    mlink._bind(host)
    sys.modules["syntalos_mlink"] = mlink
    sys.modules["oe_pyprocessor"] = oe_pyprocessor
    message: ctl.Load | None = None
    while message is None:
        messages = channel.receive(None)
        for index, received in enumerate(messages):
            command = received.control() if received.kind == CONTROL else None
            if isinstance(command, ctl.Load):
                message = command
                host._pending.extend(messages[index + 1:])
                break
    if message.cpu_guard:
        threading.Thread(target=watch_for_spinning, args=(host,), name="hwlink-watch", daemon=True).start()
    load(host, message)
    try:
        if not host.shutdown_requested:
            host.serve()
    except FATAL:
        pass
    try:
        host.flush()
    except OSError:
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    channel.close()
    return 1 if host.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
