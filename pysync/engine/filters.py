"""Filter rules (exclude.c semantics, our own matcher): --exclude,
--include, --filter rule text, the rules a peer sends on the wire.

A rule's pattern is anchored at the transfer root when it starts with
'/', matches only directories when it ends with '/', and is matched
against the whole relative path when it contains '/' or '**', else
against the last component.  '*' stops at '/', '**' does not, '?' is
one non-'/' character, '[...]' a class; a trailing '/***' matches the
directory and everything below it.  The first matching rule decides.
"""

from __future__ import annotations

import re

from ..errors import SyntaxUsageError

__all__ = ["FilterRule", "FilterList"]

_LONG_NAMES = {"exclude": "-", "include": "+", "hide": "H", "show": "S",
               "protect": "P", "risk": "R", "clear": "!"}


class FilterRule:
    __slots__ = ("kind", "pattern", "regex", "dir_only", "negate", "sender", "receiver", "text")

    def __init__(self, kind: str, pattern: bytes, mods: str, text: bytes):
        self.kind = kind            # '-', '+', 'H', 'S', 'P', 'R'
        self.text = text
        self.negate = "!" in mods
        self.sender = kind in "HS" or "s" in mods
        self.receiver = kind in "PR" or "r" in mods
        if kind in "-+" and not ("s" in mods or "r" in mods):
            self.sender = self.receiver = True
        self.dir_only = pattern.endswith(b"/") and pattern != b"/"
        if self.dir_only:
            pattern = pattern.rstrip(b"/")
        self.pattern = pattern
        self.regex = _compile(pattern)

    def matches(self, name: bytes, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return self.negate
        hit = bool(self.regex.match(name))
        return hit != self.negate

    @property
    def includes(self) -> bool:
        return self.kind in "+SR"


def _compile(pat: bytes):
    anchored = pat.startswith(b"/")
    if anchored:
        pat = pat[1:]
    full = anchored or b"/" in pat or b"**" in pat
    triple = pat.endswith(b"/***")
    if triple:
        pat = pat[:-4]
    out = []
    i = 0
    while i < len(pat):
        c = pat[i:i + 1]
        if pat.startswith(b"**", i):
            out.append(b".*")
            i += 2
            while pat.startswith(b"*", i):
                i += 1
            continue
        if c == b"*":
            out.append(b"[^/]*")
        elif c == b"?":
            out.append(b"[^/]")
        elif c == b"[":
            j = pat.find(b"]", i + 2)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pat[i + 1:j].replace(b"\\", b"\\\\")
                if body.startswith(b"!"):
                    body = b"^" + body[1:]
                out.append(b"[" + body + b"]")
                i = j
        elif c == b"\\" and i + 1 < len(pat):
            i += 1
            out.append(re.escape(pat[i:i + 1]))
        else:
            out.append(re.escape(c))
        i += 1
    body = b"".join(out)
    if triple:
        body += b"(?:/.*)?"
    if anchored:
        rx = b"^" + body + b"$"
    elif full:
        rx = b"^(?:.*/)?" + body + b"$"
    else:
        rx = b"^(?:.*/)?" + body + b"$"
    return re.compile(rx, re.DOTALL)


def parse_rule(text: bytes, default: str | None = None) -> FilterRule | None:
    """One rule in rsync's text form ("- pat", "+ pat", "exclude pat", "-! pat" ...)."""
    t = text.strip(b"\r\n")
    if not t:
        return None
    if default is not None:
        return FilterRule(default, t, "", (default + " ").encode() + t)
    head, sep, rest = t.partition(b" ")
    if not sep:
        head, sep, rest = t.partition(b",")
    word = head.decode("ascii", "replace")
    kind, mods = None, ""
    for name, k in _LONG_NAMES.items():
        if word == name or (word.startswith(name + ",")):
            kind, mods = k, word[len(name) + 1:]
            break
    if kind is None and word and word[0] in "-+HSPR!":
        kind, mods = word[0], word[1:]
    if kind is None or word.startswith(("merge", "dir-merge", ".", ":")) or kind == "!" and rest:
        raise SyntaxUsageError(f"unsupported filter rule: {t.decode('utf-8', 'replace')}")
    if kind == "!":
        return FilterRule("!", b"", "", t)
    bad = set(mods) - set("/!sr,C")
    if bad:
        raise SyntaxUsageError(f"unsupported filter rule modifier in: {t.decode('utf-8', 'replace')}")
    return FilterRule(kind, rest, mods, t)


class FilterList:
    def __init__(self, rules=None):
        self.rules: list[FilterRule] = rules or []

    @classmethod
    def from_options(cls, items) -> "FilterList":
        rules = []
        for item in items:
            raw = item.encode("utf-8", "surrogateescape") if isinstance(item, str) else item
            r = parse_rule(raw)
            if r is None:
                continue
            if r.kind == "!":
                rules.clear()
                continue
            rules.append(r)
        return cls(rules)

    @classmethod
    def from_wire(cls, texts) -> "FilterList":
        return cls.from_options(texts)

    def extend(self, other: "FilterList") -> None:
        self.rules.extend(other.rules)

    def wire_rules(self) -> list:
        return [r.text for r in self.rules]

    def _decide(self, name: bytes, is_dir: bool, side: str):
        for r in self.rules:
            if side == "sender" and not r.sender:
                continue
            if side == "receiver" and not r.receiver:
                continue
            if r.matches(name, is_dir):
                return not r.includes
        return False

    def excluded(self, name: bytes, is_dir: bool) -> bool:
        """Sender side: is this name left out of the file list?"""
        return self._decide(name, is_dir, "sender")

    def protected(self, name: bytes, is_dir: bool) -> bool:
        """Receiver side: is this name kept safe from --delete?"""
        return self._decide(name, is_dir, "receiver")
