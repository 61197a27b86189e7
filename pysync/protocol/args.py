"""Protected arguments (-s/--protect-args, rsync's "secluded args").

With -s the remote command line stops after the short-option cluster
(which carries an ``s``); everything else a server needs, its long
options, the "." and the paths, travels as the first bytes on the
connection, before the version exchange, where no remote shell can split
or expand it: a new argv[0] ("rsync"), then each argument, each ended by
a NUL (an empty argument is sent as "."), then one more NUL."""

from __future__ import annotations

__all__ = ["encode_protected_args", "ProtectedArgsDecoder", "MAX_PROTECTED"]

MAX_PROTECTED = 1 << 20     # all of them together; a peer sending more is refused


def encode_protected_args(args) -> bytes:
    """``args`` without the argv[0]: what follows the command line."""
    out = bytearray(b"rsync\0")
    for a in args:
        b = a.encode("utf-8", "surrogateescape") if isinstance(a, str) else bytes(a)
        if b"\0" in b:
            raise ValueError("an argument cannot contain a NUL byte")
        out += (b or b".") + b"\0"
    out += b"\0"
    return bytes(out)


class ProtectedArgsDecoder:
    """Feed bytes; ``done`` once the empty argument has arrived, then
    ``args`` holds the arguments after argv[0] and ``rest`` whatever came
    after the list (the start of the protocol)."""

    def __init__(self):
        self._buf = bytearray()
        self.args = None
        self.rest = b""

    @property
    def done(self) -> bool:
        return self.args is not None

    def feed(self, data: bytes) -> None:
        if self.done:
            self.rest += data
            return
        start = max(0, len(self._buf) - 1)
        self._buf += data
        # No argument is empty (an empty one travels as "."), so the first
        # pair of NULs is the end (looked for in the new bytes only).
        end = self._buf.find(b"\0\0", start)
        if end < 0:
            if len(self._buf) > MAX_PROTECTED:
                raise ValueError("protected arguments too long")
            return
        words = bytes(self._buf[:end]).split(b"\0")
        self.rest = bytes(self._buf[end + 2:])
        self.args = words[1:]
