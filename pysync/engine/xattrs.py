"""-X on the receiving side: the generator's comparison and value requests,
and the receiver's application of the sender's sets (generator.c itemize,
receiver.c recv_files, xattrs.c xattr_diff / rsync_xal_set).

The generator and the receiver are two threads here (two processes in
rsync); each keeps its own state, as rsync's two processes do: the
generator knows which sets it asked the long values of (a value is never
asked for twice: a stock sender refuses that), the receiver holds the
values that came back, shared by every entry of the same set.
"""

from __future__ import annotations

import errno
import os
import stat

from ..errors import ProtocolViolation
from ..io.xattrs import XattrError, XattrPolicy, apply_xattrs, at_path, carries_xattrs, read_pairs, read_value
from ..protocol.constants import ITEM_LOCAL_CHANGE, ITEM_REPORT_XATTR, ITEM_TRANSFER, ITEM_XNAME_FOLLOWS
from ..protocol.xattrs import decode_values, encode_request, value_digest, xattr_compare
from ..text import show

__all__ = ["GenXattrs", "RecvXattrs", "xattr_policy"]


def xattr_policy(cfg, sending: bool) -> XattrPolicy:
    """This side's namespace rules, with the session's 'x' filter rules."""
    name_ok = None
    fl = getattr(cfg, "filters", None)
    if fl is not None and fl.has_xattr_rules:
        side = "sender" if sending else "receiver"
        name_ok = lambda name: not fl.xattr_excluded(name, side)   # noqa: E731
    return XattrPolicy(sending, cfg.xattrs, name_ok=name_ok,
                       fake=getattr(cfg, "am_root", 0) < 0)


class GenXattrs:
    """The generator's half: ITEM_REPORT_XATTR and the request list."""

    def __init__(self, cfg, tree):
        self.cfg = cfg
        self.tree = tree
        self.policy = xattr_policy(cfg, False)
        self.requested = set()      # set indexes whose long values were asked for
        self.todo = {}              # set index -> nums to ask for with the next record

    def _local(self, name: bytes, st, path: bytes | None = None) -> dict:
        cfg = self.cfg
        if st is None or not carries_xattrs(st.st_mode, cfg.links, cfg.devices, cfg.specials):
            return {}
        try:
            return dict(read_pairs(path or target_of(self.tree, name), self.policy))
        except OSError:
            return {}

    def flags(self, entry, st, path: bytes | None = None, probe: bool = False) -> int:
        """ITEM_REPORT_XATTR when the destination's set (or that of the
        file at ``path``) differs from the sender's (``st`` None: the
        object is new)."""
        items = entry.xattrs or ()
        local = self._local(entry.name, st, path)
        differs, todo = xattr_compare(items, local, entry.xattr_ndx in self.requested)
        if todo and not probe:
            self.todo[entry.xattr_ndx] = todo
        return ITEM_REPORT_XATTR if differs else 0

    def copy(self, path: bytes, fd: int) -> None:
        """The xattrs of ``path`` onto a fresh copy of it."""
        try:
            apply_xattrs(fd, read_pairs(path, self.policy), self.policy)
        except OSError:
            pass            # the sender's set is applied after the itemize anyway

    def tail(self, entry, iflags: int) -> bytes:
        """What follows the itemize record on the wire: the request list
        (xattrs.c send_xattr_request, generator side)."""
        cfg = self.cfg
        if cfg.dry_run or not iflags & (ITEM_REPORT_XATTR | ITEM_TRANSFER):
            return b""
        todo = self.todo.pop(entry.xattr_ndx, [])
        self.requested.add(entry.xattr_ndx)
        from .sender import xattr_request_follows  # -X runs only; the sender engine is the sender's
        if xattr_request_follows(cfg, iflags):
            return encode_request(todo)
        return b""


class RecvXattrs:
    """The receiver's half: the answers to our requests, and setting the
    sender's set on the file."""

    def __init__(self, cfg, tree, fail):
        self.cfg = cfg
        self.tree = tree
        self.fail = fail            # logs an error line and marks the run partial
        self.policy = xattr_policy(cfg, False)
        self.values = {}            # (set index, num) -> full value

    def read_answer(self, wire, entry, iflags: int) -> None:
        from .sender import xattr_request_follows
        if not xattr_request_follows(self.cfg, iflags):
            return
        by_num = {it.num: it for it in entry.xattrs or ()}
        for num, value in wire.read(decode_values):
            it = by_num.get(num)
            key = (entry.xattr_ndx, num)
            if it is None:
                raise ProtocolViolation(f"[receiver] could not find xattr #{num} for "
                                        f"{show(entry.name)}", 2)
            if not it.abbreviated or key in self.values:
                raise ProtocolViolation(f"[receiver] internal abbrev error on {show(entry.name)} "
                                        f"({show(it.name)}, len={it.datum_len})!", 2)
            self.values[key] = value

    def wants_apply(self, iflags: int) -> bool:
        """An itemized entry without data: its set is applied now
        (receiver.c recv_files)."""
        both = ITEM_XNAME_FOLLOWS | ITEM_LOCAL_CHANGE
        return (not self.cfg.dry_run and bool(iflags & ITEM_REPORT_XATTR)
                and iflags & both != both)

    def _wanted(self, entry, basis, target) -> list:
        """The sender's set with every long value filled in: answered by
        the sender, or equal to the basis file's (checked by digest)."""
        out = []
        for it in entry.xattrs or ():
            if not it.abbreviated:
                out.append((it.name, it.value))
                continue
            key = (entry.xattr_ndx, it.num)
            value = self.values.get(key)
            if value is None:
                for src in (basis, target):
                    if src is None:
                        continue
                    v = read_value(src, it.name)
                    if v is not None and len(v) == it.datum_len and value_digest(v) == it.digest:
                        value = self.values[key] = v
                        break
            if value is None:
                self.fail(f"Missing abbreviated xattr value, {show(it.name)}, for "
                               f"\"{show(self.tree.path(entry.name))}\"")
                continue
            out.append((it.name, value))
        return out

    def apply_by_name(self, entry) -> None:
        try:
            target = target_of(self.tree, entry.name)
        except OSError:
            return
        self._apply(entry, target, target, None)

    def apply_fd(self, fd: int, entry, basis_path: bytes | None) -> None:
        """On the new file (a temp file) before it is renamed into place;
        ``basis_path`` is the file it was built from."""
        self._apply(entry, fd, None, basis_path)

    def _apply(self, entry, target, current, basis) -> None:
        wanted = self._wanted(entry, basis, current)
        if not wanted and not entry.xattrs and isinstance(target, int):
            return              # a fresh temp file has nothing to remove
        try:
            try:
                apply_xattrs(target, wanted, self.policy)
            except XattrError as e:
                if e.errno != errno.EACCES or self.policy.root or isinstance(target, int):
                    raise
                # A read-only file of ours: user.* needs write permission,
                # added for the change only (xattrs.c set_xattr does the same).
                mode = os.stat(target, follow_symlinks=False).st_mode
                if stat.S_ISLNK(mode) or mode & stat.S_IWUSR:
                    raise
                os.chmod(target, stat.S_IMODE(mode) | stat.S_IWUSR)
                try:
                    apply_xattrs(target, wanted, self.policy)
                finally:
                    os.chmod(target, stat.S_IMODE(mode))
        except XattrError as e:
            self.fail(f"rsync: [receiver] {e.what} failed for "
                           f"\"{show(self.tree.path(entry.name))}\": {e.strerror} ({e.errno})")


def basis_path(tree, name: bytes, basis_name: bytes | None) -> bytes | None:
    """The path long values may be copied from when unchanged."""
    b = basis_name or name
    if b.startswith(b"/"):
        return b
    try:
        return target_of(tree, b)
    except OSError:
        return None


def target_of(tree, name: bytes) -> bytes:
    """A no-follow path to ``name`` beneath the tree's held directory fds."""
    if name == b".":
        return at_path(tree.root_fd, b".")
    dfd, base = tree.locate(name)
    return at_path(dfd, base)
