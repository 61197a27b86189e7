"""rsync's per-file log formats (--out-format, --log-file-format): the
%-escapes, their widths (``%-10n``, ``%8l``) and the ``%'`` number forms,
rendered the way rsync 3.2.7 renders them (log.c log_formatted).

A format is parsed once into literal text and escapes; ``render`` fills
the escapes from one :class:`LogItem`.  Unknown escapes (and, as in
3.2.7, ``%%``) are kept as written; the daemon-only ones (%h %a %P %u)
stay as written outside a daemon, and %m is empty."""

from __future__ import annotations

import os
import stat
import time

from .protocol.constants import (ITEM_DELETED, ITEM_IS_NEW, ITEM_LOCAL_CHANGE, ITEM_REPORT_ACL,
                                 ITEM_REPORT_ATIME, ITEM_REPORT_XATTR,
                                 ITEM_REPORT_CHANGE, ITEM_REPORT_GROUP, ITEM_REPORT_OWNER,
                                 ITEM_REPORT_PERMS, ITEM_REPORT_SIZE, ITEM_REPORT_TIME,
                                 ITEM_TRANSFER, ITEM_XNAME_FOLLOWS)
from .text import show

__all__ = ["LogFormat", "LogItem", "big_num", "timestring", "itemize_code", "sum_as_hex",
           "ITEM_DELETED"]

# The escapes outside a daemon; %h %a %P %u (daemon only) and %% stay as written.
_KNOWN = "nfLlbciotBMUGpmC"


def _find_escape(fmt: str, pos: int):
    """The next escape at or after ``pos``: "%", apostrophes, an optional
    "-", width digits, apostrophes, the letter (none at the end of the
    string).  Returns (start, apostrophes, "-" or "", digits, apostrophes,
    letter, end), or None when no "%" is left.  Scanned by hand: a regex
    would load re into every run that prints a line."""
    start = fmt.find("%", pos)
    if start < 0:
        return None
    i = _skip(fmt, start + 1, "'".__eq__)
    quotes = fmt[start + 1:i]
    minus = "-" if fmt.startswith("-", i) else ""
    j = _skip(fmt, i + len(minus), str.isdecimal)
    k = _skip(fmt, j, "'".__eq__)
    letter = fmt[k:k + 1]
    return start, quotes, minus, fmt[i + len(minus):j], fmt[j:k], letter, k + len(letter)


def _skip(text: str, i: int, accept) -> int:
    while i < len(text) and accept(text[i]):
        i += 1
    return i


def timestring(t: float) -> str:
    """rsync's timestring(): local time as YYYY/MM/DD hh:mm:ss."""
    try:
        return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(t))
    except (OverflowError, OSError, ValueError):
        return "(time out of range)"


def big_num(n: int, human: int = 0) -> str:
    """rsync's do_big_num(): plain; with one ' thousands separators; with
    two or more, K/M/G/T/P units (1000 for two, 1024 for more)."""
    if human > 1:
        mult = 1000 if human == 2 else 1024
        if abs(n) >= mult:
            d = abs(n) / mult
            for unit in "KMGT":
                if d < mult:
                    break
                d /= mult
            else:
                unit = "P"
            return f"{-d if n < 0 else d:.2f}{unit}"
    return f"{n:,}" if human else str(n)


def sum_as_hex(checksum_name: str, digest: bytes | None) -> str | None:
    """A checksum as rsync shows it (util2.c sum_as_hex): the xxhash
    family as the number it is (bytes reversed), md4/md5/sha in byte
    order, none not at all."""
    if not digest or checksum_name == "none":
        return None
    return (digest[::-1] if checksum_name.startswith("xxh") else digest).hex()


def permstring(mode: int) -> str:
    """The nine rwx letters of ``ls -l`` (without the type letter)."""
    return stat.filemode(mode)[1:]


def itemize_code(iflags: int, mode: int, op: str, local: bool, times: bool = True) -> str:
    """The 11-letter %i code (log.c), "*deleting  " for a deletion."""
    if iflags & ITEM_DELETED:
        return "*deleting  "
    if iflags & ITEM_LOCAL_CHANGE:
        c0 = "h" if iflags & ITEM_XNAME_FOLLOWS else "c"
    elif not iflags & ITEM_TRANSFER:
        c0 = "."
    else:
        c0 = "<" if not local and op.startswith("s") else ">"
    t = "." if not iflags & ITEM_REPORT_TIME else "t" if times else "T"
    if stat.S_ISLNK(mode):
        c1, size = "L", "."
    else:
        c1 = ("d" if stat.S_ISDIR(mode) else "S" if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
              else "D" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "f")
        size = "s" if iflags & ITEM_REPORT_SIZE else "."
    rest = ("c" if iflags & ITEM_REPORT_CHANGE else ".") + size + t + \
        ("p" if iflags & ITEM_REPORT_PERMS else ".") + \
        ("o" if iflags & ITEM_REPORT_OWNER else ".") + \
        ("g" if iflags & ITEM_REPORT_GROUP else ".") + \
        ("u" if iflags & ITEM_REPORT_ATIME else ".") + \
        ("a" if iflags & ITEM_REPORT_ACL else ".") + \
        ("x" if iflags & ITEM_REPORT_XATTR else ".")
    if iflags & ITEM_IS_NEW:
        rest = "+" * 9
    elif c0 in ".hc" and rest == "." * 9:
        rest = " " * 9
    return c0 + c1 + rest


class LogItem:
    """What one log line can tell: the file-list entry (name, mode, size,
    mtime, uid, gid, link), the item flags, the operation ("send", "recv",
    "del."), and the per-file byte counts and checksum."""

    __slots__ = ("name", "mode", "size", "mtime", "uid", "gid", "link", "iflags", "op",
                 "hlink", "path", "written", "read", "sum_hex", "sum_len", "am_sender",
                 "local", "owner", "group", "times", "given_name")

    def __init__(self, name: bytes, mode: int, iflags: int, op: str, **kw):
        self.name = name
        self.mode = mode
        self.iflags = iflags
        self.op = op
        self.size = 0
        self.mtime = 0
        self.uid = 0
        self.gid = 0
        self.link = None
        self.hlink = None        # %L " => name" for a hard link
        self.path = None         # the sender's source directory, for %f
        self.written = 0         # data bytes this file wrote / read (%b %c)
        self.read = 0
        self.sum_hex = None      # %C
        self.sum_len = 16
        self.am_sender = False
        self.local = False
        self.owner = False       # -o / -g: %U and %G show ids, else 0 / DEFAULT
        self.group = False
        self.times = True
        self.given_name = False  # a deletion: no symlink target, name as given
        for k, v in kw.items():
            setattr(self, k, v)

    @classmethod
    def of_entry(cls, entry, iflags: int, op: str, **kw) -> "LogItem":
        item = cls(entry.name, entry.mode, iflags, op, **kw)
        item.size = entry.size if not stat.S_ISLNK(entry.mode) or entry.link is None \
            else len(entry.link)
        item.mtime = entry.mtime
        item.uid = entry.uid
        item.gid = entry.gid
        item.link = entry.link
        src = getattr(entry, "src", None)
        if src is not None:
            if entry.name == b".":
                item.path = src.rstrip(b"/")
            elif src.endswith(entry.name):
                item.path = src[:len(src) - len(entry.name)].rstrip(b"/")
        return item


def _clean(path: bytes) -> bytes:
    """rsync's clean_fname() without its ".." handling: no "//", no "./"
    elements (a lone "." stays)."""
    absolute = path.startswith(b"/")
    parts = [p for p in path.split(b"/") if p and p != b"."]
    trailing_dot = path.endswith(b"/.") and parts
    out = b"/".join(parts)
    if trailing_dot:
        out += b"/."
    if absolute:
        out = b"/" + out
    return out or b"."


class LogFormat:
    """One parsed format string."""

    def __init__(self, fmt: str):
        self.text = fmt
        self.parts = []      # str literals and (humanize, "-"+width, letter) escapes
        lit = []
        pos = 0
        while True:
            m = _find_escape(fmt, pos)
            if m is None or not m[5]:      # no more, or a lone "%" at the end
                lit.append(fmt[pos:])
                break
            start, quotes, minus, width, quotes2, letter, end = m
            lit.append(fmt[pos:start])
            if letter not in _KNOWN:
                # As rsync: the "%..." stays, and the scan goes on from the
                # letter (so "%%n" is "%" and a name).
                lit.append(fmt[start:end - 1])
                pos = end - 1
                continue
            self.parts.append("".join(lit))
            lit = []
            self.parts.append((len(quotes) + len(quotes2), minus + width, letter))
            pos = end
        self.parts.append("".join(lit))

    def has(self, letter: str) -> bool:
        return any(isinstance(p, tuple) and p[2] == letter for p in self.parts)

    def render(self, item: LogItem) -> str:
        out = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
                continue
            human, spec, letter = p
            value = self._value(item, letter, human, spec)
            out.append(value if letter == "L" else _pad(value, spec))
        return "".join(out)

    def _value(self, item: LogItem, letter: str, human: int, spec: str):
        if letter == "n":
            name = show(item.name)
            if stat.S_ISDIR(item.mode):
                name += "/"
            return name
        if letter == "f":
            name = item.name
            if item.am_sender and item.path:
                name = item.path + b"/" + name
            name = _clean(name)
            return show(name[1:] if name.startswith(b"/") else name)
        if letter == "L":
            if item.hlink:
                return " => " + _pad(show(item.hlink), spec)
            if stat.S_ISLNK(item.mode) and item.link is not None and not item.given_name:
                return " -> " + _pad(show(item.link), spec)
            return "    " + _pad("", spec) if spec else ""
        if letter == "l":
            return big_num(item.size, human)
        if letter in "bc":
            if not item.iflags & ITEM_TRANSFER:
                n = 0
            elif item.am_sender != (letter == "c"):
                n = item.written
            else:
                n = item.read
            return big_num(n, human)
        if letter == "i":
            return itemize_code(item.iflags, item.mode, item.op, item.local, item.times)
        if letter == "o":
            return item.op
        if letter == "B":
            return permstring(item.mode)
        if letter == "M":
            return timestring(item.mtime).replace(" ", "-")
        if letter == "t":
            return timestring(time.time())
        if letter == "U":
            return str(item.uid if item.owner else 0)
        if letter == "G":
            return str(item.gid) if item.group else "DEFAULT"
        if letter == "p":
            return str(os.getpid())
        if letter == "m":
            return ""
        # %C
        if stat.S_ISREG(item.mode) and item.sum_hex:
            return item.sum_hex
        return " " * (2 * item.sum_len)


def _pad(value: str, spec: str) -> str:
    """printf's "%-Ns" / "%Ns"."""
    if not spec or spec == "-":
        return value
    width = int(spec.lstrip("-") or 0)
    return value.ljust(width) if spec.startswith("-") else value.rjust(width)
