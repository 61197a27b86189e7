"""--chmod: permission changes applied to the file list's modes on the
client (the sender's list before it goes out, or the received list of a
pull), with rsync 3.2's grammar: comma-separated items
``[D|F][ugoa]*[+-=][rwxXst]*`` or ``[D|F]OCTAL``; ``D``/``F`` limit an item
to directories / other files, ``X`` adds execute only where some execute
bit is set (or on directories), no ``ugoa`` means "a" less the umask."""

from __future__ import annotations

import os
import stat

__all__ = ["parse_chmod", "tweak_mode", "ChmodError"]

_BITS = 0o7777
_DIRS, _FILES, _X_KEEP = 1, 2, 4


class ChmodError(ValueError):
    pass


class _Item:
    __slots__ = ("and_", "or_", "flags")

    def __init__(self, and_: int, or_: int, flags: int):
        self.and_, self.or_, self.flags = and_, or_, flags


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def parse_chmod(text: str, umask: int | None = None) -> list:
    """The items of one --chmod argument; ChmodError if it is malformed."""
    if umask is None:
        umask = _umask()
    items = []
    for part in text.split(","):
        items.append(_parse_item(part, umask, text))
    return items


def _parse_item(s: str, umask: int, whole: str) -> _Item:
    flags = where = what = topbits = topoct = 0
    op = None
    i = 0
    # who: D/F, then u/g/o/a
    while i < len(s) and s[i] in "DFugoa":
        c = s[i]
        if c == "D":
            if flags & _FILES:
                raise ChmodError(whole)
            flags |= _DIRS
        elif c == "F":
            if flags & _DIRS:
                raise ChmodError(whole)
            flags |= _FILES
        elif c == "u":
            where |= 0o100
            topbits |= 0o4000
        elif c == "g":
            where |= 0o010
            topbits |= 0o2000
        elif c == "o":
            where |= 0o001
        else:
            where |= 0o111
        i += 1
    if i < len(s) and s[i].isdigit() and s[i] < "8" and not where:
        digits = s[i:]
        if not digits or any(not (d.isdigit() and d < "8") for d in digits):
            raise ChmodError(whole)
        value = 0
        for d in digits:
            value = value * 8 + int(d)
            if value > _BITS:
                raise ChmodError(whole)
        return _Item(0, value, flags)
    if i >= len(s) or s[i] not in "+-=":
        raise ChmodError(whole)
    op = s[i]
    for c in s[i + 1:]:
        if c == "r":
            what |= 4
        elif c == "w":
            what |= 2
        elif c in "xX":
            what |= 1
            if c == "X":
                flags |= _X_KEEP
        elif c == "s":
            topoct = topoct | topbits if topbits else 0o4000
        elif c == "t":
            topoct |= 0o1000
        else:
            raise ChmodError(whole)
    if where:
        bits = where * what
    else:
        where = 0o111
        bits = (where * what) & ~umask
    if op == "+":
        return _Item(_BITS, bits + topoct, flags)
    if op == "-":
        return _Item(_BITS - bits - topoct, 0, flags)
    return _Item(_BITS - where * 7 - (topbits if topoct else 0), bits + topoct, flags)


def tweak_mode(mode: int, items) -> int:
    """``mode`` with the --chmod items applied (symlinks are left alone by
    the callers)."""
    is_x = mode & 0o111
    nonperm = mode & ~_BITS
    is_dir = stat.S_ISDIR(nonperm)
    for it in items:
        if it.flags & _DIRS and not is_dir:
            continue
        if it.flags & _FILES and is_dir:
            continue
        mode &= it.and_
        if it.flags & _X_KEEP and not is_x and not is_dir:
            mode |= it.or_ & ~0o111
        else:
            mode |= it.or_
    return (mode & _BITS) | nonperm
