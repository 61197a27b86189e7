"""The session's messages: errors and warnings to stderr, info to stdout,
each copied to the --log-file, and a server's info to the client once the
connection is multiplexed (rsync's log.c rwrite)."""

from __future__ import annotations

import sys
import threading

__all__ = ["Log"]


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
        self._write(self.err, text)

    def warning(self, text: str) -> None:
        self._write(self.err, text)

    def info(self, text: str) -> None:
        if self.quiet or self.remote is not None:
            if self.logfile is not None:
                self.logfile.write(text)
            if not self.quiet:
                self.remote(text)
            return
        self._write(self.out, text)
