"""Temp file next to the destination, then an atomic rename.

A file is written to ``.name.XXXXXX`` (O_EXCL, mode 0600) in the
destination's own directory, finished (attributes applied through its
fd) and renamed over the old file.  Any failure removes the temp file,
so the old destination is never torn and no temp file is left behind.
"""

from __future__ import annotations

import os

__all__ = ["TempFile", "temp_name"]

_ALNUM = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# A random byte to a letter or digit in one translate() (the slight bias
# of 256 % 62 does not matter: O_EXCL guards against any clash).
_TO_ALNUM = bytes(_ALNUM[i % len(_ALNUM)] for i in range(256))

# Temp names need to be unlikely to collide, not secret (O_EXCL guards
# against any clash): one getrandom per process, then a 64-bit linear
# congruential sequence (Knuth's MMIX constants; its high 48 bits make the
# name), reseeded after a fork so parent and child do not walk the same
# sequence.  random.py would cost every receiver five more modules to load.
_MASK64 = (1 << 64) - 1
_state: int | None = None


def _reseed() -> None:
    global _state
    _state = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def _suffix() -> bytes:
    global _state
    state = _state
    if state is None:
        state = int.from_bytes(os.urandom(8), "little")
    state = _state = (state * 6364136223846793005 + 1442695040888963407) & _MASK64
    return (state >> 16).to_bytes(6, "little").translate(_TO_ALNUM)


def temp_name(base: bytes) -> bytes:
    suffix = _suffix()
    stem = base[:240]  # keep the temp name under NAME_MAX
    return b"." + stem + b"." + suffix


class TempFile:
    """An open temp file in directory ``dir_fd`` that will replace ``base``."""

    def __init__(self, dir_fd: int, base: bytes, mode: int = 0o600):
        self.dir_fd = dir_fd
        self.base = base
        for _ in range(100):
            name = temp_name(base)
            try:
                self.fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                  | os.O_CLOEXEC, mode, dir_fd=dir_fd)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"cannot create a temp file for {base!r}")
        self.name = name
        self.done = False

    def commit(self) -> None:
        """Close and rename over the destination."""
        fd, self.fd = self.fd, -1
        os.close(fd)
        os.rename(self.name, self.base, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        self.done = True

    def discard(self) -> None:
        if self.done:
            return
        self.done = True
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1
        try:
            os.unlink(self.name, dir_fd=self.dir_fd)
        except OSError:
            pass
