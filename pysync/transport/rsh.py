"""-e/--rsh: run a remote-shell command (default ssh) that starts the
server on the other side, and talk to it over its stdin/stdout.  Its
stderr stays connected to ours, as rsync does."""

from __future__ import annotations

import os
import shlex
import subprocess

from .base import FdStream
from .local import SIDE_ENV, SideChannel

__all__ = ["CommandChild", "RshChild", "escape_arg", "remote_command"]

# Characters a remote shell would interpret (options.c safe_arg): each gets
# a backslash.  Wildcards are left alone so remote globbing still works.
_SPECIAL = set("!#$&;|<>(){}\"' \t\r\n\\`")


def escape_arg(arg: str, tilde: bool = False, escape: bool = True) -> str:
    """``arg`` quoted for the remote shell.  ``tilde``: a leading "~" is
    quoted too, so the shell cannot expand it into a name the client did
    not ask for (a checked pull, options.c safe_arg).  ``escape=False``
    (--old-args): the name goes as it is, for the remote shell to split
    and expand; only a leading "-" still gets its "./"."""
    if not escape:
        return "./" + arg if arg.startswith("-") else arg
    out = "".join("\\" + c if c in _SPECIAL else c for c in arg)
    if out.startswith("-"):
        out = "./" + out
    elif tilde and out.startswith("~"):
        out = "\\" + out
    return out


def remote_command(rsync_path: str, server_args, paths, relative: bool = False,
                   checked: bool = False, escape: bool = True) -> list:
    """``checked``: a pull that checks the names it gets (engine/implied.py):
    a leading "~" of a path whose base name would be the request is quoted.
    ``escape=False``: --old-args, the paths are not escaped."""
    def tilde(p):
        return checked and ((relative and "/./" not in p) or "/" not in p)
    return (shlex.split(rsync_path) + list(server_args) + ["."]
            + [escape_arg(p, tilde(p), escape) for p in paths])


class CommandChild(FdStream):
    """A child process whose stdin/stdout are the stream (stderr is ours).
    ``side=True`` (a local pysync child only) also hands it the local-copy
    side channel, named in the environment (transport/local.py)."""

    def __init__(self, argv: list, side: bool = False):
        self.argv = argv
        self.side = None
        pair = None
        if side:
            import socket
            pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        kw = {}
        if pair is not None:
            kw = {"pass_fds": (pair[1].fileno(),),
                  "env": dict(os.environ, **{SIDE_ENV: str(pair[1].fileno())})}
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         bufsize=0, close_fds=True, **kw)
        except FileNotFoundError:
            raise OSError(2, f"command not found: {argv[0]}") from None
        finally:
            if pair is not None:
                pair[1].close()
        if pair is not None:
            self.side = SideChannel(pair[0])
        super().__init__(self.proc.stdout.fileno(), self.proc.stdin.fileno())

    def close_write(self) -> None:
        if not self._closed_w:
            self._closed_w = True
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def abort(self) -> None:
        """Stop talking: close our side; the child gets a moment to exit
        on its own in wait() before it is terminated."""
        self.aborted = True
        self.close_write()

    def wait(self) -> int:
        """The child's exit status.  After abort() the run's code is ours
        (the error that made us abort): a child we had to stop reports 0."""
        try:
            code = self.proc.wait(timeout=5 if self.aborted else None)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            code = 0
        self.proc.stdout.close()
        if self.side is not None:
            self.side.close()
        if code < 0:
            return 0 if self.aborted else 20
        return code


class RshChild(CommandChild):
    """``RSH [-l user] host command...`` (the -e remote shell)."""

    def __init__(self, rsh: str, user: str | None, host: str, command: list,
                 family: int = 0):
        argv = shlex.split(rsh)
        if user:
            argv += ["-l", user]
        if family and os.path.basename(argv[0]) == "ssh":
            argv.append(f"-{family}")      # -4 / -6, for ssh only (main.c do_cmd)
        argv += [host] + command
        try:
            super().__init__(argv)
        except OSError:
            raise OSError(2, f"remote shell not found: {argv[0]}") from None
