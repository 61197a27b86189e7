"""Errors carrying rsync's exit codes.  Only cli.py turns them into a
process exit; everything else raises them."""

from __future__ import annotations

from .protocol.constants import (EXIT_TEXT, IOERR_DEL_LIMIT, IOERR_GENERAL, IOERR_VANISHED, RERR_DEL_LIMIT,
                                 RERR_FILEIO, RERR_PARTIAL, RERR_PROTOCOL, RERR_STREAMIO, RERR_SYNTAX,
                                 RERR_TIMEOUT, RERR_UNSUPPORTED, RERR_VANISHED)


class PysyncError(Exception):
    """A failure that ends the run with rsync exit code ``code``."""

    code = RERR_PARTIAL

    def __init__(self, message: str = "", code: int | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class SyntaxUsageError(PysyncError):
    code = RERR_SYNTAX


class ProtocolViolation(PysyncError):
    """The peer broke the protocol (exit 2, 4, 12 or 22 as rsync)."""
    code = RERR_PROTOCOL


class StreamError(PysyncError):
    """The connection broke or closed early (exit 12)."""
    code = RERR_STREAMIO


class FileIOError(PysyncError):
    code = RERR_FILEIO


class UnsupportedError(PysyncError):
    code = RERR_UNSUPPORTED


class TimeoutError_(PysyncError):
    code = RERR_TIMEOUT


class RemoteExit(PysyncError):
    """The peer announced it is exiting with ``code`` (MSG_ERROR_EXIT)."""


def exit_text(code: int) -> str:
    return EXIT_TEXT.get(code, "unexplained error")


def exit_code_for(io_error: int, code: int = 0) -> int:
    """rsync's mapping of leftover I/O error bits to an exit code."""
    if code:
        return code
    if io_error & IOERR_GENERAL:
        return RERR_PARTIAL
    if io_error & IOERR_VANISHED:
        return RERR_VANISHED
    if io_error & IOERR_DEL_LIMIT:
        return RERR_DEL_LIMIT
    return 0
