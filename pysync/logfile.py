"""--log-file: the client's transfer log, as rsync writes it (log.c).

Every line is "YYYY/MM/DD hh:mm:ss [pid] text".  What goes in: the
"building file list" / "receiving file list" start line, one line per
transferred or changed file and per deletion (--log-file-format, default
"%i %n%L"), the messages rsync prints (errors, warnings, "created
directory", the -v/--stats summary without its blank lines), and, when
no summary was printed or the run failed, rsync's closing line "sent N
bytes  received N bytes  total size N".

The file is opened for appending (created 0644); when it cannot be
opened rsync says so, ignores the setting and goes on -- so do we."""

from __future__ import annotations

import os
import threading
import time

from .logformat import LogFormat, timestring

__all__ = ["LogFile", "open_log_file", "DEFAULT_LOG_FILE_FORMAT"]

# upstream: options.c -- the --log-file-format used when none is given
DEFAULT_LOG_FILE_FORMAT = "%i %n%L"


class LogFile:
    """An open transfer log.  ``clock`` and ``pid`` are injectable for tests."""

    def __init__(self, fd: int, fmt: str | None, clock=time.time, pid=None):
        self._fd = fd
        self.format = LogFormat(DEFAULT_LOG_FILE_FORMAT if fmt is None else fmt)
        # rsync: a format without %i/%o logs deletions as "deleting %n";
        # one with %i also logs unchanged items it is told about.
        self.has_i = self.format.has("i")
        self.has_o_or_i = self.has_i or self.format.has("o")
        self.empty = fmt == ""
        self._clock = clock
        self._pid = os.getpid() if pid is None else pid
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        """One message (a trailing newline is added when missing)."""
        line = f"{timestring(self._clock())} [{self._pid}] {text.rstrip(chr(10))}\n"
        data = line.encode("utf-8", "surrogateescape")
        with self._lock:
            if self._fd < 0:
                return
            try:
                os.write(self._fd, data)
            except OSError:
                pass      # a full disk must not stop the transfer (rsync ignores it too)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def open_log_file(path: str, fmt: str | None, log) -> LogFile | None:
    """Open ``path`` for appending; on failure say what rsync says (an
    error line, then an info line) and return None."""
    old = os.umask(0o022)
    os.umask(0o022 | old)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        log.error(f"rsync: [client] failed to open log-file {path}: {e.strerror} ({e.errno})")
        log.info('Ignoring "log file" setting.')
        return None
    finally:
        os.umask(old)
    return LogFile(fd, fmt)
