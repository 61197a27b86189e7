"""Local copies as rsync makes them: a socketpair and a forked child that
runs the server (receiving) role, so sender and receiver run on two
cores and every local copy goes over the same wire as a remote one.
Fork happens before any thread exists in this process.

With ``side=True`` a second socketpair goes with it, as ``stream.side`` on
both ends: the local-copy side channel (SPEC.md §14) that lets the child
copy files in the kernel.  It carries nothing of rsync's protocol.  A
child started as a fresh interpreter instead (rsh.CommandChild) gets it
through ``SIDE_ENV`` and ``inherited_side``."""

from __future__ import annotations

import os
import struct
import sys

# _signal: the built-in module under signal.py (which adds enum classes only)
import _signal
from _signal import SIG_IGN, SIGHUP, SIGINT, SIGTERM

from .base import FdStream

__all__ = ["LocalChild", "SideChannel", "SIDE_ENV", "inherited_side"]


class SideChannel:
    """The local-copy side channel: bytes beside the main stream, between
    a local client and its own child only (SPEC.md §14)."""

    def __init__(self, sock):
        # A _socket.socket, the C type socket.py wraps: all a socketpair
        # needs, without socket.py's enum tables and selectors (~2 ms of a
        # local copy's start, before its fork).  Imported where a socket is
        # made, so a server on pipes loads no socket module at all.
        self.sock = sock

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> bytes:
        """Blocks for more bytes; b"" at the end (or if the peer is gone)."""
        try:
            return self.sock.recv(1 << 16)
        except OSError:
            return b""

    def recv_ready(self):
        """What has arrived so far without waiting: b"" if nothing, None at
        the end."""
        from _socket import MSG_DONTWAIT
        try:
            data = self.sock.recv(1 << 16, MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            return None
        return data or None

    def close(self) -> None:
        self.sock.close()

# A local child started as a fresh interpreter (CommandChild) finds the
# side channel's descriptor number here.
SIDE_ENV = "PYSYNC_LOCAL_SIDE_FD"


def inherited_side():
    """The side channel a local parent passed to this ``--server``, or None.
    Trusted only if it is a Unix socket whose other end belongs to our
    parent process and our user: a variable set by anyone else is ignored."""
    value = os.environ.pop(SIDE_ENV, None)
    if value is None or not value.isdigit() or int(value) <= 2:
        return None
    fd = int(value)
    import _socket  # only a local copy's child gets this far
    try:
        ident = os.fstat(fd)
        if any(_same_file(ident, std) for std in (0, 1)):
            return None       # never the protocol stream itself
        sock = _socket.socket(fileno=fd)
    except OSError:
        return None
    try:
        if sock.family == _socket.AF_UNIX and sock.type == _socket.SOCK_STREAM:
            pid, uid, _gid = struct.unpack("3i", sock.getsockopt(
                _socket.SOL_SOCKET, _socket.SO_PEERCRED, struct.calcsize("3i")))
            if pid == os.getppid() and uid == os.getuid():
                return SideChannel(sock)
    except OSError:
        pass
    sock.detach()     # not ours to close: leave the descriptor as it was
    return None


def _same_file(st, fd: int) -> bool:
    try:
        other = os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino)


class LocalChild(FdStream):
    def __init__(self, server_main, side: bool = False):
        """``server_main(stream) -> exit code`` runs in the child."""
        import _socket
        parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        side_pair = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM) if side else (None, None)
        for s in (parent, child) + (side_pair if side else ()):
            s.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDBUF, 1 << 20)
            s.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, 1 << 20)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                parent.close()
                if side_pair[0] is not None:
                    side_pair[0].close()
                # The terminal's ^C reaches both processes; the parent's
                # exit ends the stream, and this side then cleans up.
                _signal.signal(SIGINT, SIG_IGN)
                stream = FdStream(child.fileno(), child.fileno(), child)
                stream.side = SideChannel(side_pair[1]) if side else None
                code = server_main(stream)
            except BaseException as e:  # never return into the parent's code
                try:
                    import traceback
                    sys.stderr.write(f"pysync: local server failed: {e!r}\n")
                    if os.environ.get("PYSYNC_DEBUG"):
                        traceback.print_exc()
                except Exception:
                    pass
                code = 12 if code == 1 else code
            finally:
                try:
                    sys.stderr.flush()
                    sys.stdout.flush()
                    cache = sys.modules.get("pysync.modcache")
                    if cache is not None:
                        cache.save()    # what the interpreter's exit would do
                finally:
                    os._exit(code)
        child.close()
        if side_pair[1] is not None:
            side_pair[1].close()
        self.side = SideChannel(side_pair[0]) if side else None
        self.pid = pid
        self._sock_obj = parent
        super().__init__(parent.fileno(), parent.fileno(), parent)

    def wait(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        self._sock_obj.close()
        if self.side is not None:
            self.side.close()
        if os.WIFSIGNALED(status):
            return 20 if os.WTERMSIG(status) in (SIGINT, SIGTERM, SIGHUP) else 15
        return os.WEXITSTATUS(status)
