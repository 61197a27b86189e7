"""The stream every transport gives the session: read, write, close the
write side, abort, and at the end the remote's exit status."""

from __future__ import annotations

import os
import select

__all__ = ["FdStream"]

_IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024) if hasattr(os, "sysconf") else 1024


class FdStream:
    """A duplex stream over one or two file descriptors; ``sock``: the
    socket object they belong to, if they are a socket (a local copy)."""

    # socket is imported only where a stream has one: loading it costs ~2 ms
    # at start-up, and a server or a remote-shell client talks over pipes.
    def __init__(self, rfd: int, wfd: int, sock=None):
        self.rfd = rfd
        self.wfd = wfd
        self.sock = sock
        self._closed_w = False
        self.aborted = False

    def read(self, n: int) -> bytes:
        while True:
            if self.aborted:
                return b""
            # Wait in slices so abort() can end a read that would block
            # forever (stdin of a server whose peer went silent).
            r, _, _ = select.select([self.rfd], [], [], 1.0)
            if not r:
                continue
            try:
                return os.read(self.rfd, n)
            except ConnectionResetError:
                return b""
            except BlockingIOError:
                continue  # the peer may have left a shared descriptor non-blocking

    def write(self, data) -> None:
        mv = memoryview(data)
        while mv:
            try:
                n = os.write(self.wfd, mv)
            except BlockingIOError:
                select.select([], [self.wfd], [])
                continue
            mv = mv[n:]

    def writev(self, bufs) -> None:
        """Write a list of buffers in order, with as few syscalls as
        possible (os.writev, IOV_MAX at a time)."""
        bufs = list(bufs)
        i = 0
        nb = len(bufs)
        while i < nb:
            try:
                n = os.writev(self.wfd, bufs[i:i + _IOV_MAX])
            except BlockingIOError:
                select.select([], [self.wfd], [])
                continue
            while i < nb:
                size = len(bufs[i])
                if n >= size:
                    n -= size
                    i += 1
                    continue
                if n:
                    bufs[i] = memoryview(bufs[i])[n:]
                break

    def close_write(self) -> None:
        if self._closed_w:
            return
        self._closed_w = True
        if self.sock is not None:
            from _socket import SHUT_WR
            try:
                self.sock.shutdown(SHUT_WR)
            except OSError:
                pass
        elif self.wfd != self.rfd:
            os.close(self.wfd)

    def abort(self) -> None:
        self.aborted = True
        if self.sock is not None:
            from _socket import SHUT_RDWR
            try:
                self.sock.shutdown(SHUT_RDWR)
            except OSError:
                pass
        else:
            self.close_write()

    def wait(self) -> int:
        return 0
