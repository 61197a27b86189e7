"""-A on the receiving side: the generator's ITEM_REPORT_ACL (generator.c
itemize: set_acl(NULL, ...)) and storing the sender's ACLs on an object
(rsync.c set_file_attrs: the generator for objects it creates or fixes,
the receiver for the files it writes)."""

from __future__ import annotations

import os

from ..io.acls import AclError, acls_differ, apply_acls, carries_acls, read_acls
from ..protocol.constants import ITEM_REPORT_ACL, ITEM_REPORT_PERMS
from ..text import show
from .xattrs import target_of

__all__ = ["Acls"]


class Acls:
    def __init__(self, cfg, tree, fail):
        self.cfg = cfg
        self.tree = tree
        self.fail = fail            # logs an error line and marks the run partial
        self.access_differs = False  # set by flags(): the access ACL part differs

    def _covered(self, entry, mode: int) -> bool:
        return not entry.is_link and carries_acls(mode, self.cfg.devices, self.cfg.specials)

    def flags(self, entry, st, path: bytes | None = None) -> int:
        """ITEM_REPORT_ACL when the destination object's ACLs (or those of
        the file at ``path``) differ."""
        self.access_differs = False
        if st is None or not self._covered(entry, st.st_mode):
            return 0
        try:
            local = read_acls(path or target_of(self.tree, entry.name), st.st_mode)
        except OSError:
            return 0
        self.access_differs = acls_differ(local, entry.acl, None, entry.mode)
        return ITEM_REPORT_ACL if acls_differ(local, entry.acl, entry.def_acl, entry.mode) else 0

    def perms_follow(self, flags: int) -> int:
        """Setting an access ACL sets the permission bits too: rsync, which
        itemizes files after fixing them, then reports no 'p' (rsync.c
        set_file_attrs updates the mode it compares)."""
        if not self.cfg.dry_run and flags & ITEM_REPORT_ACL and self.access_differs:
            return flags & ~ITEM_REPORT_PERMS
        return flags

    def apply_by_name(self, entry, name: bytes | None = None) -> None:
        """On the object at ``name`` (default: the entry's own) in the tree."""
        if self.cfg.dry_run or entry.is_link:
            return
        try:
            target = target_of(self.tree, name or entry.name)
            mode = os.stat(target, follow_symlinks=False).st_mode
        except OSError:
            return
        self._apply(entry, target, mode)

    def apply_fd(self, fd: int, entry) -> None:
        self._apply(entry, fd, os.fstat(fd).st_mode)

    def _apply(self, entry, target, mode: int) -> None:
        if not self._covered(entry, mode):
            return
        try:
            apply_acls(target, read_acls(target, mode), entry.acl, entry.def_acl, entry.mode)
        except AclError as e:
            self.fail(f"rsync: [{'receiver' if isinstance(target, int) else 'generator'}] "
                      f"{e.what}: \"{show(self.tree.path(entry.name))}\" failed: "
                      f"{e.strerror} ({e.errno})")
