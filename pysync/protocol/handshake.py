"""Session start (compat.c setup_protocol, negotiate_the_strings):
version exchange, compat flags from the client's capability letters,
checksum/compression name negotiation and the checksum seed.

These functions only build and parse bytes; the session does the I/O in
the order SPEC.md gives.
"""

from __future__ import annotations

from .buffer import ProtocolError, ReadBuffer
from .constants import (CAPABILITY_FLAGS, CF_SYMLINK_TIMES, MAX_PROTOCOL_VERSION,
                        MIN_OUR_PROTOCOL, MIN_PROTOCOL_VERSION, RERR_PROTOCOL,
                        RERR_UNSUPPORTED)
from .ints import decode_int32, decode_vstring, encode_int32, encode_vstring

__all__ = ["encode_version", "decode_version", "negotiate_version", "server_compat_flags",
           "encode_name_list", "decode_name_list", "choose_as_client", "choose_as_server",
           "encode_seed", "decode_seed", "MAX_NAME_LIST"]

# rsync's reader caps each negotiation string at 255 bytes (MAX_NSTR_STRLEN).
MAX_NAME_LIST = 255


def encode_version(v: int) -> bytes:
    return encode_int32(v)


def decode_version(buf: ReadBuffer) -> int:
    return decode_int32(buf)


def negotiate_version(ours: int, theirs: int) -> int:
    """The session speaks min(ours, theirs); refuse what we cannot speak."""
    if theirs < MIN_PROTOCOL_VERSION or theirs > MAX_PROTOCOL_VERSION:
        raise ProtocolError(
            f"protocol version mismatch -- is your shell clean? (peer sent {theirs & 0xFFFFFFFF:#x})",
            RERR_PROTOCOL)
    v = min(ours, theirs)
    if v < MIN_OUR_PROTOCOL:
        raise ProtocolError(
            f"peer speaks protocol {theirs}; pysync needs protocol {MIN_OUR_PROTOCOL} or newer "
            "(rsync 3.1 or later)", RERR_PROTOCOL)
    return v


def server_compat_flags(letters: str, symlink_times: bool = True) -> int:
    """Compat flags a server announces for the client's -e letters.
    Incremental recursion is never turned on."""
    flags = CF_SYMLINK_TIMES if symlink_times else 0
    for ch in letters:
        flags |= CAPABILITY_FLAGS.get(ch, 0)
    return flags


def encode_name_list(names) -> bytes:
    return encode_vstring(" ".join(names).encode("ascii"))


def decode_name_list(buf: ReadBuffer) -> list:
    raw = decode_vstring(buf, MAX_NAME_LIST)
    return raw.decode("ascii", "replace").split()


def choose_as_client(ours, theirs, what: str) -> str:
    """Our most preferred name that the peer also has."""
    for name in ours:
        if name in theirs:
            return name
    raise ProtocolError(f"Failed to negotiate a {what} choice", RERR_UNSUPPORTED)


def choose_as_server(client_list, ours, what: str) -> str:
    """The first name of the client's list that we support (agrees with every
    stock rsync version as long as lists keep the canonical order)."""
    for name in client_list:
        if name in ours:
            return name
    raise ProtocolError(f"Failed to negotiate a {what} choice", RERR_UNSUPPORTED)


def encode_seed(seed: int) -> bytes:
    return encode_int32(seed)


def decode_seed(buf: ReadBuffer) -> int:
    return decode_int32(buf)
