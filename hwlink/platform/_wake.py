"""A waker for loops that sleep in ``select`` until a deadline or until another thread has news.

Native (Linux, macOS): a non-blocking pipe, as select() accepts any file descriptor there. Windows' select()
takes sockets only (a pipe gives WinError 10038), so the portable waker is a connected pair of loopback TCP
sockets, built here the way Windows' ``socket.socketpair`` emulation builds it, so that forcing it on Linux
runs the same code. ``fileno()`` lets a loop select on the waker together with its own sockets.
"""

from __future__ import annotations

import os
import select
import socket

from hwlink.platform._switches import IS_WINDOWS, portable


def loopback_pair() -> tuple[socket.socket, socket.socket]:
    """Two connected TCP sockets on 127.0.0.1 (checked to be each other's peer)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            client.connect(listener.getsockname())
            listener.settimeout(5)
            while True:
                server, address = listener.accept()
                if address == client.getsockname():
                    break
                server.close()  # someone else raced to connect: not our peer
        except BaseException:
            client.close()
            raise
    for sock in (server, client):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return server, client


class Waker:
    """``wake()`` from any thread ends the owner's current or next ``wait()``."""

    def __init__(self) -> None:
        self.portable = IS_WINDOWS or portable("wakeup")
        if self.portable:
            self._reader, self._writer = loopback_pair()
            self._reader.setblocking(False)
            self._writer.setblocking(False)
            self._read_fd = self._reader.fileno()
        else:
            self._read_fd, self._write_fd = os.pipe()
            os.set_blocking(self._read_fd, False)
            os.set_blocking(self._write_fd, False)
        self._closed = False

    def fileno(self) -> int:
        """What to pass to select() beside other sockets; readable after a ``wake()``."""
        return self._read_fd

    def wake(self) -> None:
        if self._closed:
            return
        try:
            if self.portable:
                self._writer.send(b"!")
            else:
                os.write(self._write_fd, b"!")
        except (BlockingIOError, InterruptedError):
            pass  # full of wake-ups already
        except OSError:
            pass  # closed under us by stop()

    def drain(self) -> None:
        """Consume pending wake-ups (after select() reported the waker readable)."""
        try:
            if self.portable:
                while self._reader.recv(4096):
                    pass
            else:
                while os.read(self._read_fd, 4096):
                    pass
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            pass

    def wait(self, timeout: float | None) -> bool:
        """Sleep until ``wake()`` or ``timeout`` seconds (None: no limit); True if woken."""
        readable, _, _ = select.select([self._read_fd], [], [], timeout)
        if readable:
            self.drain()
            return True
        return False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.portable:
            self._reader.close()
            self._writer.close()
        else:
            os.close(self._read_fd)
            os.close(self._write_fd)
