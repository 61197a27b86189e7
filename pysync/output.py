"""Where the client's own output goes, set once from the command line:
--stderr=all (every message on stderr, as rsync's msgs2stderr 1),
--outbuf (stdout's buffering, as rsync's setvbuf) and -8 (names with
high-bit bytes written as they are)."""

from __future__ import annotations

import sys

__all__ = ["setup_stdout"]


def setup_stdout(opts, stdout=None):
    """Apply the options to the process' streams; returns the stream the
    client's normal output now goes to."""
    if opts.outbuf and not opts.server:
        _set_buffering(sys.stdout, opts.outbuf)
    if opts.eight_bit and not opts.server:
        from . import text
        text.EIGHT_BIT = True
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.reconfigure(errors="surrogateescape")
            except (AttributeError, ValueError):
                pass            # not a text file of ours (a test's capture)
    if opts.msgs2stderr == 1 and not opts.server:
        # Messages and listings alike: rsync's rwrite picks stderr for all.
        sys.stdout = sys.stderr
        return sys.stderr
    return stdout


def _set_buffering(stream, mode: str) -> None:
    """N: every write reaches the file at once; L: at each newline; B: when
    the buffer fills (the output's own flushes still apply, as rsync's
    flush after each finished line)."""
    try:
        stream.flush()
        if mode == "N":
            stream.reconfigure(line_buffering=False, write_through=True)
        else:
            stream.reconfigure(line_buffering=mode == "L", write_through=False)
    except (AttributeError, ValueError):
        pass
