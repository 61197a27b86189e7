"""A byte buffer that decoders read from, with commit and rollback.

Decoders call ``take(n)`` and friends; when the buffer is short they raise
:class:`NeedMore` and the caller rolls back to the last commit, feeds more
bytes and tries again, so a short read never loses bytes and the same
decoder serves a blocking reader and a test feeding one byte at a time.
"""

from __future__ import annotations

__all__ = ["NeedMore", "ProtocolError", "ReadBuffer"]


class NeedMore(Exception):
    """The buffer ends before the value being decoded."""


class ProtocolError(Exception):
    """The peer sent bytes that break the protocol.

    ``code`` is rsync's exit code for it (2 = protocol incompatibility,
    4 = unsupported/unsafe, 12 = stream error, 22 = overflow).
    """

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


class ReadBuffer:
    """Append-only input with a read position and a commit mark."""

    __slots__ = ("_data", "_pos", "_mark")

    def __init__(self, data: bytes = b""):
        self._data = bytearray(data)
        self._pos = 0
        self._mark = 0

    def feed(self, data) -> None:
        self._data += data

    def __len__(self) -> int:
        """Bytes not yet read."""
        return len(self._data) - self._pos

    def take(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise NeedMore
        out = bytes(self._data[self._pos:end])
        self._pos = end
        return out

    def unpack(self, st):
        """The values of struct ``st`` at the read position (no copy)."""
        pos = self._pos
        end = pos + st.size
        if end > len(self._data):
            raise NeedMore
        self._pos = end
        return st.unpack_from(self._data, pos)

    def byte(self) -> int:
        if self._pos >= len(self._data):
            raise NeedMore
        b = self._data[self._pos]
        self._pos += 1
        return b

    def find(self, sub: bytes, limit: int) -> int:
        """Offset of ``sub`` among the next ``limit`` unread bytes, or -1."""
        i = self._data.find(sub, self._pos, self._pos + limit)
        return i - self._pos if i >= 0 else -1

    def peek(self, n: int) -> bytes:
        return bytes(self._data[self._pos:self._pos + n])

    def tell(self) -> int:
        """The read position, for ``seek`` back within the same decode
        (positions move when a commit compacts the buffer)."""
        return self._pos

    def seek(self, pos: int) -> None:
        """Go back to a position ``tell`` gave since the last commit."""
        if not self._mark <= pos <= len(self._data):
            raise ValueError("seek outside the uncommitted data")
        self._pos = pos

    def commit(self) -> None:
        """Forget what was read; compact now and then so memory stays bounded."""
        self._mark = self._pos
        if self._pos > 65536 and self._pos * 2 > len(self._data):
            del self._data[:self._pos]
            self._pos = self._mark = 0

    def rollback(self) -> None:
        self._pos = self._mark

    def rest(self) -> bytes:
        """Everything not yet read (consumes it)."""
        out = bytes(self._data[self._pos:])
        self._pos = len(self._data)
        return out

    def attempt(self, decode, *args):
        """Run ``decode(self, *args)``; commit on success, roll back on NeedMore."""
        try:
            value = decode(self, *args)
        except NeedMore:
            self.rollback()
            raise
        self.commit()
        return value
