#!/usr/bin/env python3
"""A fake remote shell for rsync's ``-e``: "connects" to any host by running locally.

Usage, as rsync calls a remote shell::

    fake_rsh.py [-l user] [other ssh options] host command words...

The ssh-like options and the host are dropped. The remaining words are joined
with single spaces and run by ``/bin/sh -c``, exactly as sshd hands a command
to the login shell. That matters: rsync backslash-escapes spaces and shell
metacharacters in remote paths (``options.c:safe_arg()``) expecting a shell to
undo it, so exec'ing the words verbatim would break on such names. Like rsync's
``support/lsh.sh`` and gokrazy's test binary, this lets the real ``rsync``
client talk to a local server (stock rsync or pysync) without sshd.

Environment:

``FAKE_RSH_MAP=from=to``
    If the first word of the remote command is ``from``, replace it by ``to``
    (which may be several words), e.g. ``rsync=python3 -m pysync``.
``FAKE_RSH_RECORD=/dir``
    Run the command as a child with pipes instead of exec'ing it, forward
    bytes both ways, and record them to ``/dir/c2s.bin`` (client to server)
    and ``/dir/s2c.bin`` (server to client); the command line that was run
    goes to ``/dir/argv.txt``. stderr is passed through, not recorded.

The exit status is the command's (128 + N if it died from signal N, as a
shell reports it). Errors of this wrapper itself exit with 255, like ssh.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import BinaryIO

#: ssh options that take a value (OpenSSH ssh(1) synopsis); every other
#: letter is treated as a flag.
OPTS_WITH_VALUE = set("BbcDEeFIiJLlmOopQRSWw")

#: Exit status for failures of the wrapper itself (ssh uses 255 too).
EXIT_RSH_ERROR = 255

#: Bytes read per forwarding step.
CHUNK = 64 * 1024


def split_command(args: list[str]) -> tuple[str, list[str]]:
    """Skip ssh-style options; return (host, remote command words).

    Options may be clustered (``-4v``) and a value may be attached
    (``-p22``) or be the next word (``-l user``). ``--`` ends the options.
    """
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "-":
        word = args[i]
        i += 1
        if word == "--":
            break
        for pos, letter in enumerate(word[1:], start=1):
            if letter in OPTS_WITH_VALUE:
                if pos == len(word) - 1:  # the value is the next word
                    i += 1
                break
    if i >= len(args):
        raise ValueError("no host given")
    host, command = args[i], args[i + 1:]
    if not command:
        raise ValueError("no remote command given (interactive login is not supported)")
    return host, command


def apply_map(command: str, mapping: str | None) -> str:
    """Replace the command's first word according to ``from=to``, if it matches."""
    if not mapping:
        return command
    old, sep, new = mapping.partition("=")
    if not sep:
        raise ValueError(f"FAKE_RSH_MAP must look like from=to, got {mapping!r}")
    words = command.split(None, 1)
    if words and words[0] == old:
        return new + (" " + words[1] if len(words) > 1 else "")
    return command


def exec_shell(command: str) -> None:
    """Replace this process with ``/bin/sh -c command`` (stdio inherited)."""
    # Python ignores SIGPIPE (and SIGXFSZ); ignored signals survive exec, so
    # restore the defaults the way subprocess does for its children.
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    os.execv("/bin/sh", ["sh", "-c", command])


class _Recorder:
    """An append-only log of one direction, safe to close while a pump runs."""

    def __init__(self, path: str) -> None:
        self._file: BinaryIO | None = open(path, "wb")
        self._lock = threading.Lock()

    def write(self, chunk: bytes) -> None:
        with self._lock:
            if self._file is not None:
                self._file.write(chunk)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def _pump(src: int, dst: int, log: _Recorder) -> None:
    """Copy bytes from fd *src* to fd *dst*, logging each chunk first.

    A chunk is logged before it is forwarded, so the log holds every byte
    the far side can have received. Stops at EOF on *src* or when *dst* is
    gone (the reader exited), then closes *dst* so its reader sees EOF.
    """
    try:
        while chunk := os.read(src, CHUNK):
            log.write(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(dst, view):]
    except OSError:  # EPIPE: the reader went away
        pass
    finally:
        try:
            os.close(dst)
        except OSError:
            pass


def run_recorded(command: str, record_dir: str) -> int:
    """Run *command* with piped stdin/stdout, recording both streams.

    Two threads forward bytes so neither direction can block the other. The
    client-to-server thread is a daemon: the client may keep its end open
    until it has seen us exit, so we do not wait for that one.
    """
    os.makedirs(record_dir, exist_ok=True)
    with open(os.path.join(record_dir, "argv.txt"), "w", encoding="utf-8",
              errors="surrogateescape") as f:
        f.write(command + "\n")
    c2s = _Recorder(os.path.join(record_dir, "c2s.bin"))
    s2c = _Recorder(os.path.join(record_dir, "s2c.bin"))
    # Raw pipes rather than Popen's file objects: each pump closes the fd it
    # writes to, and nothing else must close (or reuse) it behind its back.
    child_in, to_child_fd = os.pipe()
    from_child_fd, child_out = os.pipe()
    child = subprocess.Popen(["/bin/sh", "-c", command], stdin=child_in, stdout=child_out)
    os.close(child_in)
    os.close(child_out)
    threading.Thread(target=_pump, args=(sys.stdin.fileno(), to_child_fd, c2s),
                     daemon=True).start()
    _pump(from_child_fd, sys.stdout.fileno(), s2c)  # until the server closes
    os.close(from_child_fd)
    status = child.wait()
    c2s.close()  # the stdin pump may still be blocked in read(); it logs no more
    s2c.close()
    return 128 - status if status < 0 else status


def main(argv: list[str]) -> int:
    """Parse, map and run the remote command; return the exit status."""
    try:
        _host, words = split_command(argv)
        command = apply_map(" ".join(words), os.environ.get("FAKE_RSH_MAP"))
    except ValueError as e:
        print(f"fake_rsh: {e}", file=sys.stderr)
        return EXIT_RSH_ERROR
    record_dir = os.environ.get("FAKE_RSH_RECORD")
    if not record_dir:
        exec_shell(command)  # does not return
    return run_recorded(command, record_dir)


if __name__ == "__main__":
    # os._exit: the stdin-forwarding daemon thread may still sit in read();
    # everything that matters has been flushed by now.
    exit_status = main(sys.argv[1:])
    sys.stderr.flush()
    os._exit(exit_status)
