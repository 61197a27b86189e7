"""Implied includes: the names a pulling client asked for (CVE-2022-29154).

A client that receives from a remote sender turns each path it asked for
(its remote arguments, or the --files-from names it forwards) into include
rules.  A file-list name that none of them allows was not requested: the
run ends with "ERROR: rejecting unrequested file-list name: NAME" (exit 4,
RERR_UNSUPPORTED).  Off with --trust-sender, on servers and when the
--files-from list is read on the remote host.

With -R every directory above a requested path is allowed as a *parent*
only; a sender that flags such a directory as a content directory (which
would let --delete sweep its other entries) is downgraded to a non-content
implied directory.
"""

from __future__ import annotations

from ..protocol.constants import XMIT_NO_CONTENT_DIR, XMIT_TOP_DIR
from .filters import _compile

__all__ = ["ImpliedRules"]

_WILD = b"*[?"


class _Rule:
    """One anchored include: a literal name (compared whole) or a wildcard
    pattern; ``parent``: a directory-only rule for a -R parent."""
    __slots__ = ("pattern", "regex", "parent")

    def __init__(self, pattern: bytes, wild: bool, parent: bool = False):
        self.pattern = pattern
        self.regex = _compile(pattern) if wild else None
        self.parent = parent

    def matches(self, name: bytes, is_dir: bool) -> bool:
        if self.parent and not is_dir:
            return False
        if self.regex is not None:
            return self.regex.match(name) is not None
        return name == self.pattern[1:]


def _literal_brackets(pattern: bytes) -> bytes | None:
    """A failed "[..]" glob on the remote shell leaves the literal name:
    the same pattern with each live '[' escaped, or None without one."""
    out = bytearray()
    i, n = 0, 0
    while i < len(pattern):
        c = pattern[i:i + 1]
        if c == b"\\" and i + 1 < len(pattern):
            out += pattern[i:i + 2]
            i += 2
            continue
        if c == b"[":
            out += b"\\"
            n += 1
        out += c
        i += 1
    return bytes(out) if n else None


class ImpliedRules:
    """The implied-include list of one pull.  ``add(arg)`` for each
    requested path; ``allowed(name, is_dir)`` for each file-list name."""

    # upstream: exclude.c add_implied_include(), is_implied_parent_dir()

    def __init__(self, relative: bool, recursive: bool, xfer_dirs: bool):
        self.relative = relative
        self.recursive = recursive
        self.xfer_dirs = xfer_dirs
        self.rules: list[_Rule] = []
        self._patterns: set = set()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def _push(self, pattern: bytes, wild: bool, parent: bool = False, brackets: bool = False):
        self.rules.append(_Rule(pattern, wild, parent))
        self._patterns.add(pattern)
        if brackets:
            lit = _literal_brackets(pattern)
            if lit is not None:
                self.rules.append(_Rule(lit, True, parent))

    def add(self, arg: bytes) -> None:
        if self.relative:
            cut = arg.find(b"/./")
            if cut >= 0:
                arg = arg[cut + 3:]
        else:
            arg = arg[arg.rfind(b"/") + 1:]
        if arg == b".":
            arg = b""
        wild = any(c in arg for c in (b"*", b"[", b"?"))
        live_bracket = False
        backslashes = 0
        pat = b""
        if arg:
            out = bytearray(b"/")
            i = 0
            while i < len(arg):
                c = arg[i:i + 1]
                nxt = arg[i + 1:i + 2]
                if c == b"\\":
                    if nxt == b"]":
                        if not wild:
                            i += 1          # a \] in a literal name: the \ goes
                    elif not nxt or nxt not in _WILD:
                        backslashes += 1
                        if wild:
                            out += b"\\"
                    out += arg[i:i + 1]
                    i += 1
                elif c == b"/":
                    if out[-1:] == b"/":
                        i += 1
                        if i == len(arg):
                            del out[-1]
                    elif i + 1 == len(arg):
                        i += 1
                    else:
                        out += c
                        i += 1
                elif c == b"." and out[-1:] == b"/":
                    if nxt == b"/":
                        i += 2
                        if i == len(arg):
                            del out[-1]
                    elif not nxt:
                        i += 1
                        del out[-1]
                    else:
                        out += c
                        i += 1
                else:
                    if c == b"[":
                        live_bracket = True
                    out += c
                    i += 1
            pat = bytes(out)
            if pat:
                self._push(pat, wild, brackets=live_bracket)
                if self.relative:
                    self._add_parents(pat, wild, live_bracket)
        if self.recursive or self.xfer_dirs:
            base = pat
            if not wild and backslashes:
                base = base.replace(b"\\", b"\\\\")
            tail = b"/**" if self.recursive else b"/*"
            self._push(base + tail, True, brackets=live_bracket)

    def _add_parents(self, pat: bytes, wild: bool, live_bracket: bool) -> None:
        head = pat
        while True:
            cut = head.rfind(b"/")
            if cut <= 0:
                return
            head = head[:cut]
            if head in self._patterns:
                return          # this parent and those above it are in already
            sub_wild = wild and any(c in head for c in (b"*", b"[", b"?", b"\\"))
            self._push(head, sub_wild, parent=True, brackets=live_bracket)

    def allowed(self, name: bytes, is_dir: bool) -> bool:
        """A name the requests allow (the transfer root "." always is)."""
        if not self.rules or name in (b".", b"/."):
            return True
        return any(r.matches(name, is_dir) for r in self.rules)

    def parent_only(self, name: bytes) -> bool:
        """A directory allowed only as the parent of a requested path."""
        if not self.rules:
            return False
        if name in (b".", b"/."):
            return not any(r.pattern in (b"/**", b"/*") for r in self.rules)
        parent = False
        for r in self.rules:
            if not r.matches(name, True):
                continue
            if not r.parent:
                return False
            parent = True
        return parent

    def downgrade(self, entry) -> None:
        """A parent-only directory the sender flagged as content becomes a
        non-content implied directory (so --delete keeps its siblings)."""
        both = XMIT_TOP_DIR | XMIT_NO_CONTENT_DIR
        if entry.is_dir and entry.xflags & both != both and self.parent_only(entry.name):
            entry.xflags |= both
