"""A server's side of -s (--secluded-args / --protect-args): the arguments
the command line left out arrive first on stdin (protocol/args.py), read
one byte at a time so not a byte of the protocol after them is taken.
As rsync's server does, the paths after the "." are expanded as
wildcards here (no remote shell saw them); a pattern that matches
nothing stays as it is."""

from __future__ import annotations

import os

from .errors import ProtocolViolation, StreamError
from .protocol.args import ProtectedArgsDecoder

__all__ = ["read_protected_args"]


def read_protected_args(fd: int) -> list:
    dec = ProtectedArgsDecoder()
    try:
        while not dec.done:
            b = os.read(fd, 1)
            if not b:
                raise StreamError("connection unexpectedly closed (while reading the protected args)")
            dec.feed(b)
    except ValueError as e:
        raise ProtocolViolation(str(e), 12) from None
    words = [a.decode("utf-8", "surrogateescape") for a in dec.args]
    if "." not in words:
        return words
    dot = words.index(".")
    return words[:dot + 1] + [m for p in words[dot + 1:] for m in _expand(p)]


def _expand(path: str) -> list:
    if not any(c in path for c in "*?["):
        return [path]
    import glob
    found = sorted(glob.glob(path))
    return found or [path]
