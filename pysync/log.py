"""The session's messages: errors and warnings to stderr, info to stdout,
each copied to the --log-file, and a server's info to the client once the
connection is multiplexed (rsync's log.c rwrite)."""

from __future__ import annotations

import sys
import threading

from .protocol.constants import MSG_ERROR, MSG_INFO, MSG_WARNING

__all__ = ["Log", "route_server_messages"]


class Log:
    """Errors and warnings to stderr, info to stdout (a server's info goes
    to the client once the connection is multiplexed, to stderr before:
    its stdout is the protocol stream)."""

    def __init__(self, am_server: bool, quiet: bool = False, err=None, out=None):
        self.am_server = am_server
        self.quiet = quiet
        self.err = err or sys.stderr
        self.out = out or (sys.stderr if am_server else sys.stdout)
        self._lock = threading.Lock()
        self.errors = 0
        self.logfile = None     # --log-file: every message goes there too (log.c rwrite)
        # A server's info lines go to the client (MSG_INFO), as rsync's do,
        # once the connection is multiplexed.
        self.remote = None
        # --stderr=client: a server's errors and warnings go to the client
        # too (tag, text), instead of to the server's stderr.
        self.remote_error = None
        self.line_breaker = None    # () -> True if stdout's last line is unfinished

    def _write(self, stream, text):
        if self.logfile is not None:
            self.logfile.write(text)
        with self._lock:
            if self.line_breaker is not None and self.line_breaker():
                text = "\n" + text      # after "building file list ... " & co.
            stream.write(text.rstrip("\n") + "\n")
            stream.flush()

    def error(self, text: str) -> None:
        self.errors += 1
        self._problem(MSG_ERROR, text)

    def warning(self, text: str) -> None:
        self._problem(MSG_WARNING, text)

    def _problem(self, tag: int, text: str) -> None:
        if self.remote_error is None:
            self._write(self.err, text)
            return
        if self.logfile is not None:
            self.logfile.write(text)
        self.remote_error(tag, text)

    def info(self, text: str) -> None:
        if self.quiet or self.remote is not None:
            if self.logfile is not None:
                self.logfile.write(text)
            if not self.quiet:
                self.remote(text)
            return
        self._write(self.out, text)


def route_server_messages(log: Log, report, wire, msgs2stderr: int) -> None:
    """A server's messages once the connection is multiplexed, by --stderr
    (rsync's log.c rwrite): errors (2, the default) keeps errors on the
    server's stderr and sends info to the client; all (1) writes both to
    the server's stderr; client (0) sends both to the client."""
    from .errors import PysyncError

    def send(tag, text):
        # Information goes raw, as rsync's server sends it: the client
        # escapes the names once (text.unshow).
        if tag == MSG_INFO:
            from .text import unshow
            wire.send_msg(tag, unshow(text.rstrip("\n")) + b"\n")
        else:
            wire.send_msg(tag, (text.rstrip("\n") + "\n").encode("utf-8", "surrogateescape"))
    if msgs2stderr == 1:
        if report.remote_info is not None:      # -v / --log-format: it has lines to say
            report.remote_info = lambda text: log._write(log.err, text)
        return
    log.remote = lambda text: send(MSG_INFO, text)
    if msgs2stderr == 0:
        def send_error(tag, text):
            try:
                send(tag, text)
            except (OSError, PysyncError):    # the connection is gone: say it here, as rsync
                log._write(log.err, text)
        log.remote_error = send_error
