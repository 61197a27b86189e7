"""Filter rules (exclude.c semantics, our own matcher): --exclude,
--include, --filter rule text, the rules a peer sends on the wire.

A rule's pattern is anchored at the transfer root when it starts with
'/', matches only directories when it ends with '/', and is matched
against the whole relative path when it contains '/' or '**', else
against the last component.  '*' stops at '/', '**' does not, '?' is
one non-'/' character, '[...]' a class; a trailing '/***' matches the
directory and everything below it.  The first matching rule decides.

Merge rules: ``merge FILE`` (``.``) reads FILE's rules in place once;
``dir-merge NAME`` (``:``) reads NAME in every directory the walk enters,
the rules of a subdirectory before the inherited ones (``n``: not
inherited), a leading '/' in them anchored at that directory.  A NAME with
a path that is a parent of the transfer directory is also read from every
directory from there down (``-F``'s ``/.rsync-filter``).  Modifiers
``-``/``+`` (no prefixes), ``C`` (CVS style, default ``.cvsignore``),
``e`` (exclude the merge file), ``w`` (word-split), ``s``/``r`` (sides).
``-C`` inserts the CVS ignore list (defaults, ~/.cvsignore, $CVSIGNORE).
"""

from __future__ import annotations

import os

from ..errors import SyntaxUsageError

__all__ = ["FilterRule", "FilterList", "MergeRule", "DEFAULT_CVSIGNORE"]

_LONG_NAMES = {"exclude": "-", "include": "+", "hide": "H", "show": "S",
               "protect": "P", "risk": "R", "clear": "!"}



DEFAULT_CVSIGNORE = (b"RCS SCCS CVS CVS.adm RCSLOG cvslog.* tags TAGS .make.state .nse_depinfo "
                     b"*~ #* .#* ,* _$* *$ *.old *.bak *.BAK *.orig *.rej .del-* *.a *.olb *.o "
                     b"*.obj *.so *.exe *.Z *.elc *.ln core .svn/ .git/ .hg/ .bzr/")

_MERGE_DEPTH = 20


class FilterRule:
    __slots__ = ("kind", "pattern", "regex", "dir_only", "negate", "sender", "receiver", "text",
                 "perishable", "absdir", "xattr", "triple")

    def __init__(self, kind: str, pattern: bytes, mods: str, text: bytes = None, absdir=None):
        self.kind = kind            # '-', '+', 'H', 'S', 'P', 'R'
        self.negate = "!" in mods
        self.perishable = "p" in mods
        self.xattr = "x" in mods       # matches xattr names (-X), never file names
        self.sender = kind in "HS" or "s" in mods
        self.receiver = kind in "PR" or "r" in mods
        if kind in "-+" and not ("s" in mods or "r" in mods):
            self.sender = self.receiver = True
        self.dir_only = pattern.endswith(b"/") and pattern != b"/"
        if self.dir_only:
            pattern = pattern.rstrip(b"/")
        self.pattern = pattern
        # Anchored rules of a per-directory file are anchored at its directory.
        self.absdir = absdir if pattern.startswith(b"/") else None
        self.regex = _compile(pattern)
        # "dir/***": the directory itself (as "dir/") and all below it,
        # never a non-directory "dir" (exclude.c rule_matches).
        self.triple = pattern.endswith(b"/***")
        if text is None:
            text = self._canonical(mods)
        self.text = text

    def _canonical(self, mods: str) -> bytes:
        """The rule as rsync sends it (exclude.c get_rule_prefix)."""
        pre = "+" if self.includes else "-"
        if "/" in mods:
            pre += "/"
        if self.negate:
            pre += "!"
        if self.xattr:
            pre += "x"
        if self.sender and not self.receiver:
            pre += "s"
        if self.receiver and not self.sender:
            pre += "r"
        if self.perishable:
            pre += "p"
        return pre.encode() + b" " + self.pattern + (b"/" if self.dir_only else b"")

    def matches(self, name: bytes, is_dir: bool, base: bytes = None) -> bool:
        if self.dir_only and not is_dir:
            return self.negate
        if self.triple and is_dir:
            name += b"/"
        if self.absdir is not None:
            full = (base or b"") + b"/" + name
            pre = self.absdir.rstrip(b"/") + b"/"
            hit = full.startswith(pre) and bool(self.regex.match(full[len(pre):]))
        else:
            hit = bool(self.regex.match(name))
        return hit != self.negate

    @property
    def includes(self) -> bool:
        return self.kind in "+SR"


def _compile(pat: bytes):
    import re      # here: a run without filter rules loads no re
    anchored = pat.startswith(b"/")
    if anchored:
        pat = pat[1:]
    full = anchored or b"/" in pat or b"**" in pat
    triple = pat.endswith(b"/***")
    if triple:
        pat = pat[:-4]
    out = []
    i = 0
    if not anchored and pat.startswith(b"**/"):
        out.append(b"(?:.*/)?")     # a leading "**/" also matches at the start (WILD2_PREFIX)
        i = 3
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
        body += b"/.*"          # a directory is matched with a "/" after its name
    if anchored:
        rx = b"^" + body + b"$"
    elif full:
        rx = b"^(?:.*/)?" + body + b"$"
    else:
        rx = b"^(?:.*/)?" + body + b"$"
    return re.compile(rx, re.DOTALL)


class MergeRule:
    """A dir-merge rule: its per-directory rules live in a walk context."""
    __slots__ = ("name", "no_prefix", "word_split", "no_inherit", "cvs", "sides", "text",
                 "index", "setup_done", "dynamic")

    def __init__(self, name: bytes, mods: str, text: bytes):
        self.cvs = "C" in mods
        self.no_prefix = "+" if "+" in mods else "-" if ("-" in mods or self.cvs) else None
        self.word_split = "w" in mods or self.cvs
        self.no_inherit = "n" in mods or self.cvs
        self.sides = "".join(c for c in "sr" if c in mods)
        self.name = name or (b".cvsignore" if self.cvs else name)
        self.text = text
        self.index = -1
        self.setup_done = False
        self.dynamic = False

    def template(self):
        return (self.no_prefix, self.word_split, self.sides, self.cvs)


class Context:
    """The per-directory rules in effect in one directory of a walk."""
    __slots__ = ("base", "lists")

    def __init__(self, base: bytes, lists):
        self.base = base        # absolute directory the matched names are relative to
        self.lists = lists      # one rule list per dir-merge rule


def _bad(text: bytes, why: str = "unsupported filter rule"):
    raise SyntaxUsageError(f"{why}: {text.decode('utf-8', 'replace')}")


# Compiled on first use (re caches it): most runs parse no filter rule.
_PREFIX_RE = (rb"^(?:(exclude|include|hide|show|protect|risk|clear|merge|dir-merge)"
              rb"(?:,([^ _]*))?|([-+HSPR!.:]),?([^ _]*))(?:[ _]|$)")
_LONG_KIND = {b"exclude": "-", b"include": "+", b"hide": "H", b"show": "S", b"protect": "P",
              b"risk": "R", b"clear": "!", b"merge": ".", b"dir-merge": ":"}


def _split_prefix(t: bytes):
    """(kind, modifiers, pattern) of a prefixed rule, or None."""
    import re
    m = re.match(_PREFIX_RE, t)
    if not m:
        return None
    if m.group(1):
        kind, mods = _LONG_KIND[m.group(1)], (m.group(2) or b"")
    else:
        kind, mods = m.group(3).decode(), (m.group(4) or b"")
    return kind, mods.decode("ascii", "replace"), t[m.end():]


class _Parser:
    """Turns rule text into FilterRule / MergeRule items (merge files read
    in place, -C expanded), into ``out``; '!' clears ``out``."""

    def __init__(self, flist: "FilterList", out: list, absdir=None, depth=0):
        self.flist = flist
        self.out = out
        self.absdir = absdir
        self.depth = depth
        self.cleared = False

    def clear(self) -> None:
        self.out.clear()
        self.cleared = True

    def rule_text(self, text: bytes, template=(None, False, "", False)) -> None:
        no_prefix, word_split, sides, cvs = template
        t = text.strip(b"\r\n") if not word_split else text
        if not t:
            return
        if no_prefix:
            if t == b"!":
                self.clear()
                return
            self.add(FilterRule(no_prefix, t, sides, absdir=self.absdir))
            return
        parts = _split_prefix(t)
        if parts is None:
            _bad(t, "Unknown filter rule")
        kind, mods, pat = parts
        if kind == "!":
            if pat:
                _bad(t, "'!' rule has trailing characters")
            self.clear()
            return
        ok = set("/!sr,pCx") if kind in "-+" else set("-+Cenwsr/p,") if kind in ".:" else set("/!p,")
        if set(mods) - ok:
            _bad(t, "invalid modifier in filter rule")
        if sides and (set(mods) & set("sr") or kind in "HSPR"):
            _bad(t, "specified-side merge file contains specified-side filter")
        mods += sides
        if kind in ".:":
            self.merge(kind, mods, pat, t)
            return
        if "C" in mods:
            if kind != "-" or pat:
                _bad(t)
            self.cvs_list()
            return
        if not pat:
            _bad(t, "unexpected end of filter rule")
        if kind in "HSPR" and self.absdir is None and not sides:
            self.add(FilterRule(kind, pat, mods.replace(",", ""), t))
        else:
            self.add(FilterRule(kind, pat, mods.replace(",", ""), absdir=self.absdir))

    def add(self, rule) -> None:
        self.out.append(rule)

    def merge(self, kind: str, mods: str, pat: bytes, text: bytes) -> None:
        if "C" in mods and not pat:
            pat = b".cvsignore"
        if not pat:
            _bad(text, "unexpected end of filter rule")
        if "e" in mods:
            self.add(FilterRule("-", os.path.basename(pat), ""))
        if kind == ":":
            m = MergeRule(pat, mods, b":" + _merge_mods(mods).encode() + b" " + pat)
            # One named in a per-directory file is read from that directory
            # down, while its rule is in effect (never from the parents).
            m.dynamic = m.setup_done = self.absdir is not None
            m.index = len(self.flist.merges)
            self.flist.merges.append(m)
            self.add(m)
            return
        m = MergeRule(pat, mods, text)
        self.read_file(pat, m.template(), fatal=True)

    def read_file(self, path: bytes, template, fatal: bool) -> bool:
        if self.depth >= _MERGE_DEPTH:
            _bad(path, "merge-file include depth limit exceeded")
        try:
            if path == b"-" and fatal:
                import sys
                data = sys.stdin.buffer.read()
            else:
                with open(path, "rb") as f:
                    data = f.read()
        except OSError as e:
            if fatal:
                from ..errors import PysyncError
                raise PysyncError(f"rsync: [client] failed to open "
                                  f"{'in' if template[0] == '+' else 'ex'}clude file "
                                  f"{path.decode('utf-8', 'replace')}: {e.strerror} ({e.errno})", 11)
            return False
        sub = _Parser(self.flist, self.out, self.absdir, self.depth + 1)
        for item in _split_file(data, template[1]):
            sub.rule_text(item, template)
        self.cleared |= sub.cleared
        return True

    def cvs_list(self) -> None:
        for w in DEFAULT_CVSIGNORE.split():
            self.add(FilterRule("-", w, "p"))
        home = os.environ.get("HOME")
        if home:
            self.read_file(os.path.join(os.fsencode(home), b".cvsignore"), ("-", True, "", True),
                           fatal=False)
        env = os.environb.get(b"CVSIGNORE")
        if env:
            for w in env.split():
                self.rule_text(w, ("-", True, "", True))


def _merge_mods(mods: str) -> str:
    if "C" in mods:
        out = "C"
    else:
        out = "".join(c for c in "nw" if c in mods)
        out += "+" if "+" in mods else "-" if "-" in mods else ""
    return out + "".join(c for c in "sr" if c in mods)


def _split_file(data: bytes, word_split: bool):
    if word_split:
        return data.split()
    out = []
    for raw in data.split(b"\n"):
        line = raw.rstrip(b"\r")
        if not line.strip() or line[:1] in (b"#", b";"):
            continue
        out.append(line)
    return out


def parse_rule(text: bytes, default: str | None = None):
    """One rule in rsync's text form; None for an empty one."""
    items = []
    fl = FilterList()
    _Parser(fl, items).rule_text(text if default is None else (default + " ").encode() + text)
    return items[0] if items else None


class FilterList:
    def __init__(self, rules=None):
        self.rules: list = rules or []
        self.merges: list = []

    @classmethod
    def from_options(cls, items) -> "FilterList":
        fl = cls()
        p = _Parser(fl, fl.rules)
        for item in items:
            raw = item.encode("utf-8", "surrogateescape") if isinstance(item, str) else item
            p.rule_text(raw)
        return fl

    @classmethod
    def from_wire(cls, texts) -> "FilterList":
        return cls.from_options(texts)

    def add_texts(self, texts) -> None:
        p = _Parser(self, self.rules)
        for t in texts:
            p.rule_text(t.encode() if isinstance(t, str) else t)

    def extend(self, other: "FilterList") -> None:
        for m in other.merges:
            m.index = len(self.merges)
            self.merges.append(m)
        self.rules.extend(other.rules)

    def wire_rules(self, am_sender: bool | None = None, delete_excluded: bool = False) -> list:
        """The rules' texts for the peer; a client that is ``am_sender``
        (True/False) keeps the rules of its own side to itself, as rsync
        does (exclude.c send_rules): a sender its hide/show rules, a
        receiver its protect/risk rules, and with --delete-excluded a
        sender also its rules for both sides (the receiver deletes what
        they exclude), but for the per-directory files with prefixes."""
        out = []
        for r in self.rules:
            if isinstance(r, MergeRule):
                sender, receiver = "s" in r.sides, "r" in r.sides
                sender, receiver = (sender or not receiver), (receiver or not sender)
                both_kept = r.no_prefix is None
            else:
                sender, receiver = r.sender, r.receiver
                both_kept = False
            if am_sender is not None and sender != receiver and sender == am_sender:
                continue
            if am_sender and delete_excluded and sender == receiver and not both_kept:
                continue
            out.append(r.text)
        return out

    # ---- per-directory merge files --------------------------------------------------
    def root_context(self, base: bytes):
        """The context names relative to ``base`` (an absolute directory) start in."""
        if not self.merges:
            return None
        return Context(base, [[] for _ in self.merges])

    def enter(self, ctx, dirpath: bytes):
        """The context inside directory ``dirpath`` (read its merge files)."""
        if ctx is None:
            return None
        absdir = os.path.normpath(os.path.abspath(dirpath))
        lists = []
        active = set()          # dir-merge rules from per-directory files in effect here
        for m in self.merges:   # (grows while this directory's files are read)
            if m.dynamic and m.index not in active:
                lists.append([])
                continue
            inherited = ctx.lists[m.index] if m.index < len(ctx.lists) else []
            base = [] if m.no_inherit else inherited
            if not m.setup_done:
                m.setup_done = True
                base = self._parent_scan(m, absdir, base)
            lst = self._read(m, absdir, base)
            lists.append(lst)
            active.update(x.index for x in lst if isinstance(x, MergeRule))
        return Context(ctx.base, lists)

    def _parent_scan(self, m: MergeRule, absdir: bytes, inherited: list) -> list:
        """A name with a path: read it from each directory between the
        path's directory and ``absdir`` (exclusive), when it is a parent."""
        if b"/" not in m.name:
            return inherited
        full = os.path.normpath(os.path.join(absdir, m.name))
        start, m.name = os.path.split(full)
        cur = inherited
        if absdir == start or absdir.startswith(start.rstrip(b"/") + b"/"):
            dirs = []
            d = absdir
            while d != start and d != b"/":
                d = os.path.dirname(d)
                dirs.append(d)
            for d in reversed(dirs):
                cur = self._read(m, d, [] if m.no_inherit else cur)
        return cur

    def _read(self, m: MergeRule, absdir: bytes, inherited: list) -> list:
        out: list = []
        p = _Parser(self, out, absdir=absdir, depth=1)
        if not p.read_file(os.path.join(absdir, m.name), m.template(), fatal=False):
            return list(inherited)
        return out + ([] if p.cleared else list(inherited))

    # ---- matching ---------------------------------------------------------------------
    def _decide(self, name: bytes, is_dir: bool, side: str, ctx=None, perishable=True,
                xattr=False):
        base = ctx.base if ctx is not None else None
        hit = self._first_match(self.rules, name, is_dir, side, ctx, perishable, base, xattr)
        return bool(hit)

    def _first_match(self, rules, name, is_dir, side, ctx, perishable, base, xattr=False):
        """True (excluded) / False (included) by the first rule of ``rules``
        that matches, a dir-merge rule standing for its per-directory
        rules in ``ctx``; None when none matches."""
        for r in rules:
            if isinstance(r, MergeRule):
                if ctx is not None and r.index < len(ctx.lists):
                    hit = self._first_match(ctx.lists[r.index], name, is_dir, side, ctx,
                                            perishable, base, xattr)
                    if hit is not None:
                        return hit
                continue
            if side == "sender" and not r.sender:
                continue
            if side == "receiver" and not r.receiver:
                continue
            if side == "receiver!" and (not r.receiver or r.sender):
                continue
            if r.xattr != xattr:
                continue
            if r.perishable and not perishable:
                continue
            if r.matches(name, is_dir, base):
                return not r.includes
        return None

    def excluded(self, name: bytes, is_dir: bool, ctx=None) -> bool:
        """Sender side: is this name left out of the file list?"""
        return self._decide(name, is_dir, "sender", ctx)

    @property
    def has_xattr_rules(self) -> bool:
        return any(getattr(r, "xattr", False) for r in self.rules)

    def xattr_excluded(self, name: bytes, side: str) -> bool:
        """Is this xattr name left alone (rules with the 'x' modifier)?
        ``side``: "sender" (not sent) or "receiver" (not stored, not removed)."""
        return self._decide(name, False, side, None, xattr=True)

    def protected(self, name: bytes, is_dir: bool, ctx=None, perishable=True,
                  delete_excluded=False) -> bool:
        """Receiver side: is this name kept safe from --delete?  (Without
        ``perishable``, perishable rules are skipped: a deleted directory.
        With ``delete_excluded`` only the receiver's own rules count: P, R
        and those with 'r'.)"""
        return self._decide(name, is_dir, "receiver!" if delete_excluded else "receiver",
                            ctx, perishable)
