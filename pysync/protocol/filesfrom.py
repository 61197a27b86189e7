"""--files-from names on the wire (SPEC.md §5.1).

When the side that builds the file list (the sender) is not the side
that has the list of names, the other side forwards the names after the
filter list: each name ended by one NUL byte, no empty names, and the
whole ended by an empty name (so the stream ends "\\0\\0", or a single
"\\0" when nothing was sent).  Lines of a newline-separated list have
their CR and LF turned into NULs first.  Inside multiplexed MSG_DATA
frames (protocol >= 31).

upstream: io.c forward_filesfrom_data(), io.c read_line()
"""

from __future__ import annotations

from .buffer import NeedMore, ProtocolError, ReadBuffer
from .constants import MAXPATHLEN

__all__ = ["encode_files_from", "decode_files_from_name", "split_names"]


def split_names(data: bytes, from0: bool) -> list:
    """The names of a --files-from list as its sender forwards them:
    NUL-separated with --from0, else split at CR and LF; empty names
    dropped."""
    if not from0:
        data = data.replace(b"\r", b"\0").replace(b"\n", b"\0")
    return [n for n in data.split(b"\0") if n]


def encode_files_from(data: bytes, from0: bool) -> bytes:
    """The whole forwarded stream for the list ``data`` (the file's bytes),
    end marker included."""
    names = split_names(data, from0)
    if not names:
        return b"\0"
    return b"\0".join(names) + b"\0\0"


def decode_files_from_name(buf: ReadBuffer):
    """One forwarded name (bytes), or None at the end of the list.
    A name longer than MAXPATHLEN is a protocol error (exit 2)."""
    n = buf.find(b"\0", MAXPATHLEN + 1)
    if n < 0:
        if len(buf) > MAXPATHLEN:
            raise ProtocolError("files-from name longer than MAXPATHLEN from the peer", 2)
        raise NeedMore
    name = buf.take(n)
    buf.take(1)
    return name or None
