"""--files-from: reading the list of names and turning names into the
source arguments the scanner walks.

Who reads the list (options.c, main.c): the side that builds the file list
reads a local list itself; a client that receives (a pull) forwards its
local list to the remote sender on the wire (protocol/filesfrom.py); a
list named ``host:path`` or ``:path`` is read on the remote side, and a
remote receiver then forwards it to a sending client.
"""

from __future__ import annotations

import os
import sys

from .errors import PysyncError, SyntaxUsageError
from .protocol.filesfrom import split_names

__all__ = ["read_list", "local_names", "anchored_sources", "check_remote_list"]


def check_remote_list(spec: str, path: str, host: str | None) -> None:
    """A list on the remote side (``spec`` is "host:path" or ":path", whose
    path is ``path``) must be on the transfer's host; rsync's refusals,
    exit 1."""
    from .client import parse_remote
    if host is None:
        raise SyntaxUsageError("--files-from cannot be remote when the transfer is local")
    r = None if spec.startswith(":") else parse_remote(spec)
    if r is not None and r[1] != host:
        raise SyntaxUsageError("--files-from hostname is not the same as the transfer hostname")
    if path == "-":
        raise SyntaxUsageError("Invalid --files-from remote filename")


def read_list(path: str, stdin=None) -> bytes:
    """The list's bytes; "-" is standard input.  A list that cannot be
    opened ends the run with rsync's line and exit 1."""
    try:
        if path == "-":
            return (stdin or sys.stdin.buffer).read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise PysyncError(f"rsync: failed to open files-from file {path}: {e.strerror}", 1) from None


def local_names(data: bytes, from0: bool) -> list:
    """Names of a list read by the side that uses it: as forwarded, and
    lines starting with '#' or ';' are comments (io.c read_line with
    RL_DUMP_COMMENTS)."""
    return [n for n in split_names(data, from0) if n[:1] not in (b"#", b";")]


def anchored_sources(base: bytes, names, relative: bool) -> list:
    """Scanner arguments for ``names`` below the source directory ``base``:
    with -R anchored there by "/./" (the names keep their path), else
    joined (each sends its base name)."""
    b = base.rstrip(b"/") or b"/"
    if relative:
        return [b + b"/./" + n for n in names]
    return [os.path.join(b, n.lstrip(b"/")) for n in names]
