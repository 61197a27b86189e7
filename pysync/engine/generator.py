"""The generator role (generator.c recv_generator/generate_files): walk the
sorted file list against the destination, create directories, symlinks
and special files, decide which regular files need data (quick check),
send their requests with block sums of the basis, run the redo phase,
delete extraneous files, and fix directory attributes after their
contents.  It only writes to the wire; the receiver thread reports back
through a queue."""

from __future__ import annotations

import os
import stat
import time

from .. import native
from ..text import show
from ..io.attrs import apply_fd, apply_name, differs, time_differs
from ..io.replace import temp_name
from ..protocol.constants import (FNAMECMP_BACKUP, IOERR_GENERAL, ITEM_BASIS_TYPE_FOLLOWS,
                                  ITEM_IS_NEW, ITEM_LOCAL_CHANGE, ITEM_REPORT_ACL,
                                  ITEM_REPORT_CHANGE, ITEM_REPORT_GROUP, ITEM_REPORT_OWNER,
                                  ITEM_REPORT_PERMS, ITEM_REPORT_SIZE, ITEM_REPORT_TIME,
                                  ITEM_TRANSFER, ITEM_XNAME_FOLLOWS, MSG_DELETED, NDX_DEL_STATS, NDX_DONE,
                                  XMIT_NO_CONTENT_DIR, XMIT_TOP_DIR)
from ..protocol.ints import encode_shortint, encode_vstring
from ..protocol.ndx import NdxEncoder
from ..protocol.stats import DeleteStats, encode_del_stats
from ..protocol.sums import SumHead, encode_block_sums, encode_sum_head, sum_head_for
from .delete import delete_extraneous, remove_tree
from .acls import Acls
from .xattrs import GenXattrs
from .sender import encode_item

__all__ = ["Generator"]

SUMS_READ_SIZE = 1 << 20     # bytes of the basis read per call when summing it
FLUSH_INTERVAL = 0.05

_DIFF_TO_ITEM = ((1, ITEM_REPORT_TIME), (2, ITEM_REPORT_PERMS), (4, ITEM_REPORT_OWNER),
                 (8, ITEM_REPORT_GROUP))


class Generator:
    def __init__(self, wire, flist, tree, cfg, policy, log, report, stats, from_receiver,
                 requested, io_error_fn):
        self.wire = wire
        self.flist = flist
        self.tree = tree
        self.cfg = cfg
        self.policy = policy
        self.log = log
        self.report = report
        self.stats = stats
        self.queue = from_receiver
        self.requested = requested
        self.io_error = io_error_fn      # () -> sender's io_error bits so far
        self.ndx_out = NdxEncoder()
        self.dirs = []                   # (ndx, entry) to fix after contents
        self.hlink_followers = []        # (ndx, entry) linked after the transfer
        self.del_stats = DeleteStats()
        self.failed = 0
        self.missing_dirs = set()        # dry run: dirs we would have created
        self.created_dirs = set()
        self.skipped_deletes = 0
        # As rsync: one member of each hard-link group (see _pick_leader)
        # gets the data; the others are linked to it once it is done.
        self.leader_ndx = {}
        self.group_members = {}
        if cfg.hard_links:
            for ndx, e in enumerate(flist):
                if e.hlink is not None and not e.cleared and e.is_reg:
                    self.leader_ndx[e.hlink] = ndx
                    self.group_members.setdefault(e.hlink, []).append(ndx)
            for group, members in self.group_members.items():
                self.leader_ndx[group] = self._pick_leader(members)
        # ndx -> name of the basis file when it is not the entry's own name
        # (shared with the receiver, which must read the same basis).
        self.basis = {}
        # Local copies: files copied in the kernel (engine/offload.py) and
        # requested without data; the receiver takes them out again.
        self.copier = None
        self.offloaded = set()
        self.backup_basis = set()        # ndx whose basis is its --inplace backup
        # --remove-source-files: (ndx, name) -> MSG_SUCCESS to the sender.
        self.success = None
        self.xattrs = GenXattrs(cfg, tree) if cfg.xattrs else None
        self.acls = Acls(cfg, tree, self._fail) if cfg.acls else None

    def _pick_leader(self, members: list) -> int:
        """The member of a hard-link group that gets the data: the last one,
        unless one is already there as a regular file; then the first such
        one (so --inplace updates the file that exists; rsync's
        hard_link_check treats the missing members before it as skipped)."""
        for m in members[:-1]:
            try:
                if stat.S_ISREG(self.tree.lstat(self.flist[m].name).st_mode):
                    return m
            except OSError:
                continue
        return members[-1]

    def _leave_group(self, ndx: int, entry) -> None:
        """A group's leader skipped (--append): it is not linked, and the
        others choose a new leader (rsync's handle_skipped_hlink); one the
        walk has passed already is generated now."""
        group = entry.hlink
        members = [m for m in self.group_members.get(group, ()) if m != ndx]
        self.group_members[group] = members
        if not members:
            self.leader_ndx.pop(group, None)
            return
        new = self.leader_ndx[group] = self._pick_leader(members)
        if new < ndx:
            self.hlink_followers = [(n, e) for n, e in self.hlink_followers if n != new]
            self._generate(new, self.flist[new])

    # ---- phase 0 ---------------------------------------------------------------------
    def run(self) -> None:
        wire = self.wire
        mode = self.cfg.delete_mode
        if self.cfg.delete and mode == "before":
            self._delete_pass()
        last_flush = time.monotonic()
        for ndx, entry in enumerate(self.flist):
            if entry.cleared or self.cfg.list_only:
                continue
            now = time.monotonic()
            if now - last_flush > FLUSH_INTERVAL:
                # Keep the sender busy: requests should not wait for a full
                # buffer while we are slow (checksumming a large basis).
                wire.flush()
                last_flush = now
            if (self.cfg.relative and not self.cfg.implied_dirs and entry.is_dir
                    and entry.xflags & XMIT_TOP_DIR and entry.xflags & XMIT_NO_CONTENT_DIR):
                # --no-implied-dirs: the sender's implied directories are
                # neither created nor updated (missing ones come from
                # _make_parents, with default permissions).
                entry.cleared = True
                continue
            try:
                if self.cfg.relative and not self.cfg.implied_dirs and b"/" in entry.name:
                    self._make_parents(entry.name)
                self._generate(ndx, entry)
            except OSError as e:
                self._fail(f"rsync: [generator] failed to set up \"{_show(self.tree.path(entry.name))}\": "
                           f"{e.strerror} ({e.errno})")
        wire.write(self.ndx_out.encode(NDX_DONE))
        wire.flush()
        # Wait until the receiver has seen the end of phase 0, then redo.
        redo = []
        self._wait_for(lambda what, v: what == "done", redo)
        delay = self.cfg.delay_updates
        if not delay:
            self._finish_hard_links(set(redo))
        for ndx in redo:
            # Itemized against the file as it is now (rsync runs the whole
            # generator step again; --inplace has changed the file).
            entry = self.flist[ndx]
            try:
                st = self.tree.lstat(entry.name)
            except OSError:
                st = None
            self._request(ndx, entry, st=st, new=st is None, redo=True)
        wire.write(self.ndx_out.encode(NDX_DONE))   # end of the redo phase
        if delay:
            # --delay-updates: the receiver renames the delayed files into
            # place when the sender's answer to that DONE reaches it; the
            # delay phase ends after that (and hard links follow the
            # leaders once these are in place).
            wire.flush()
            self._wait_for(lambda what, v: what == "done" and v == 2, None)
            self._finish_hard_links(set())
        wire.write(self.ndx_out.encode(NDX_DONE))   # the delay-updates phase
        if self.cfg.delete and mode in ("after", "delay"):
            # --delete-after/-delay: once the receiver has seen the sender's
            # last file; the delete stats and the "deletions done" DONE
            # follow the deletions (rsync's late delete-done message).
            wire.flush()
            self._wait_for(lambda what, v: what == "done" and v == 3, None)
            self._delete_pass()
        if self.cfg.delete:
            wire.write(self.ndx_out.encode(NDX_DEL_STATS) + encode_del_stats(self.del_stats))
        wire.write(self.ndx_out.encode(NDX_DONE))   # "deletions done" (protocol >= 31)
        wire.flush()
        self._wait_for(lambda what, v: what == "end", None)
        self._finish_hard_links(set(), late=True)
        self._touch_up_dirs()
        wire.write(self.ndx_out.encode(NDX_DONE))   # the final goodbye
        wire.flush()

    def _wait_for(self, pred, redo) -> None:
        while True:
            what, value = self.queue.get()
            if what == "redo" and redo is not None:
                redo.append(value)
            elif what == "abort":
                raise value
            if pred(what, value):
                return

    # ---- one entry --------------------------------------------------------------------
    def _generate(self, ndx: int, entry) -> None:
        name = entry.name
        tree = self.tree
        parent = name.rsplit(b"/", 1)[0] if b"/" in name else b""
        if self.cfg.dry_run and (parent in self.missing_dirs):
            st = None
        else:
            try:
                st = tree.lstat(name)
            except FileNotFoundError:
                st = None
        if self._skipped(entry, st):
            return
        if not entry.is_dir and not entry.is_reg and not self._preserved(entry):
            self._skip_nonregular(entry)
            return
        if entry.is_dir:
            self._gen_dir(ndx, entry, st)
        elif entry.is_reg:
            if entry.hlink is not None and self.leader_ndx.get(entry.hlink) != ndx:
                self.hlink_followers.append((ndx, entry))
                return
            self._gen_file(ndx, entry, st)
        elif entry.is_link:
            self._gen_link(ndx, entry, st)
        else:
            self._gen_special(ndx, entry, st)

    def _preserved(self, entry) -> bool:
        c = self.cfg
        if entry.is_link:
            return c.links
        if entry.is_device:
            return c.devices
        return c.specials

    def _skip_nonregular(self, entry) -> None:
        """rsync's generator line for a type that is not preserved (-l,
        --devices, --specials); a server's log sends it to the client."""
        self.log.info(f"skipping non-regular file \"{_show(entry.name)}\"")

    def _skipped(self, entry, st) -> bool:
        """--existing, --ignore-existing, -u, --max-size/--min-size
        (generator.c recv_generator's early exits)."""
        cfg = self.cfg
        if entry.name == b".":
            return False
        if cfg.existing and st is None:
            if entry.is_dir:
                self.missing_dirs.add(entry.name)   # and nothing below it
            return True
        if cfg.ignore_existing and st is not None and not entry.is_dir:
            return True
        if entry.is_reg:
            if cfg.max_size is not None and entry.size > cfg.max_size:
                return True
            if cfg.min_size is not None and entry.size < cfg.min_size:
                return True
            if cfg.update and st is not None and stat.S_ISREG(st.st_mode) \
                    and st.st_mtime_ns // 1_000_000_000 - entry.mtime > max(cfg.modify_window, 0):
                return True   # newer on the receiver
        return False

    def _item(self, ndx: int, entry, iflags: int) -> None:
        """An itemize record for a change that moves no data; the sender
        echoes it so the client can log it in order."""
        if self.xattrs is not None:
            if iflags & ITEM_IS_NEW or iflags & (ITEM_LOCAL_CHANGE | ITEM_REPORT_CHANGE) == \
                    ITEM_LOCAL_CHANGE | ITEM_REPORT_CHANGE:
                # A new object, or one replaced by a new one: it has no xattrs yet.
                iflags |= self.xattrs.flags(entry, None)
            tail = self.xattrs.tail(entry, iflags)
        else:
            tail = b""
        self.wire.write(self.ndx_out.encode(ndx) + encode_shortint(iflags) + tail)
        # Logged when the sender's echo comes back, in list order (rsync
        # does the same from protocol 29 on).

    def _attr_flags(self, entry, st, path: bytes | None = None, probe: bool = False) -> int:
        """Item flags for the attributes of ``st`` (the destination object,
        or the file at ``path`` outside the tree) that differ from the entry.
        ``probe``: only asking; no xattr values are queued for a request."""
        d = differs(entry, st, self.policy, entry.is_link)
        flags = 0
        for bit, item in _DIFF_TO_ITEM:
            if d & bit:
                flags |= item
        if self.acls is not None:
            flags |= self.acls.flags(entry, st, path)
        if self.xattrs is not None:
            flags |= self.xattrs.flags(entry, st, path, probe)
        return flags

    def _remove_in_way(self, entry, st) -> bool:
        """Remove what stands where ``entry`` must go (a different type)."""
        if self.cfg.dry_run:
            return True
        dfd, base = self.tree.locate(entry.name)
        if stat.S_ISDIR(st.st_mode):
            if not (self.cfg.delete or self.cfg.force):
                try:
                    os.rmdir(base, dir_fd=dfd)
                except OSError:
                    self._fail(f"rsync: [generator] cannot delete non-empty directory: {_show(entry.name)}")
                    return False
            else:
                # rsync reports the contents it removes, not the directory.
                top = entry.name
                remove_tree(self.tree, top,
                            lambda n, m: None if n == top else self.note_deleted(n, m),
                            backups=self.cfg.backups)
            self.tree.forget(entry.name)
        elif self.cfg.backups is not None:
            self.cfg.backups.keep(entry.name, move=True)
        else:
            os.unlink(base, dir_fd=dfd)
        return True

    def _gen_dir(self, ndx, entry, st) -> None:
        if st is not None and not stat.S_ISDIR(st.st_mode):
            if not self._remove_in_way(entry, st):
                return
            st = None
        if entry.name == b"." and b"." in self.created_dirs:
            st = None           # the destination root we just created
        if st is None:
            if entry.name == b".":
                if self.acls is not None and b"." in self.created_dirs:
                    self.acls.apply_by_name(entry)      # the root we just created
            elif self.cfg.dry_run:
                self.missing_dirs.add(entry.name)
            else:
                dfd, base = self.tree.locate(entry.name)
                os.mkdir(base, 0o700, dir_fd=dfd)
                self.created_dirs.add(entry.name)
                if self.acls is not None:
                    self.acls.apply_by_name(entry)
            alt = self._alt_lstat(entry, stat.S_IFDIR) if self.cfg.alt_dests and entry.name != b"." else None
            if alt is not None:
                flags = self._attr_flags(entry, alt)
                if flags:
                    self._item(ndx, entry, flags)
            else:
                self._item(ndx, entry, ITEM_LOCAL_CHANGE | ITEM_IS_NEW)
        else:
            flags = self._attr_flags(entry, st)
            if flags & ITEM_REPORT_ACL and self.acls is not None:
                self.acls.apply_by_name(entry)
            if flags or self.cfg.itemize_unchanged:
                self._item(ndx, entry, flags)
            if self.cfg.delete and self.cfg.delete_mode in (None, "during") and self._content_dir(entry):
                self._delete_in(entry)
        self.dirs.append((ndx, entry))

    def _content_dir(self, entry) -> bool:
        # Protocol >= 30: the sender's flag alone decides (flist.c), so -d
        # deletes in "." of "src/" and in no directory below it.
        return not entry.xflags & XMIT_NO_CONTENT_DIR

    def _delete_pass(self) -> None:
        """--delete-before / --delete-after: every content directory that
        exists as a directory, in list order."""
        for entry in self.flist:
            if entry.cleared or not entry.is_dir or not self._content_dir(entry):
                continue
            try:
                st = self.tree.lstat(entry.name)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                self._delete_in(entry)

    def _make_parents(self, name: bytes) -> None:
        """-R --no-implied-dirs: missing parents of a name are created with
        default permissions (rsync's make_path)."""
        if self.cfg.dry_run or getattr(self.tree, "root_fd", -1) < 0:
            return
        parent = name.rsplit(b"/", 1)[0]
        try:
            st = self.tree.lstat(parent)
            if stat.S_ISDIR(st.st_mode):
                return
        except OSError:
            pass
        os.makedirs(self.tree.path(parent), exist_ok=True)

    def _delete_in(self, entry) -> None:
        if self.io_error() & IOERR_GENERAL:
            if not getattr(self, "_warned_io", False):
                self.log.warning("IO error encountered -- skipping file deletion")
                self._warned_io = True
            return
        delete_extraneous(self, entry)

    def note_deleted(self, name: bytes, mode: int) -> None:
        """Count and report one deletion (called by delete.py)."""
        d = self.del_stats
        if stat.S_ISDIR(mode):
            d.dirs += 1
        elif stat.S_ISLNK(mode):
            d.symlinks += 1
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            d.devices += 1
        elif stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            d.specials += 1
        else:
            d.files += 1
        shown = name + (b"/" if stat.S_ISDIR(mode) else b"")
        if self.cfg.am_server:
            self.wire.send_msg(MSG_DELETED, name + (b"\0" if stat.S_ISDIR(mode) else b""))
        else:
            self.report.deleted(shown, mode)

    def _gen_link(self, ndx, entry, st) -> None:
        tree = self.tree
        if st is not None and stat.S_ISLNK(st.st_mode):
            dfd, base = tree.locate(entry.name)
            if os.readlink(base, dir_fd=dfd) == entry.link:
                flags = self._attr_flags(entry, st)
                if flags and not self.cfg.dry_run:
                    apply_name(dfd, base, entry, self.policy, st, differs(entry, st, self.policy, True))
                if flags or self.cfg.itemize_unchanged:
                    self._item(ndx, entry, flags)
                self._succeeded(ndx, entry)
                return
        # A link where there was none (or something else) is new; a link
        # with another target is a change.
        is_new = st is None or not stat.S_ISLNK(st.st_mode)
        change = ITEM_IS_NEW if is_new else ITEM_REPORT_CHANGE
        if not is_new and self.cfg.times and time_differs(st, entry, self.cfg.modify_window):
            change |= ITEM_REPORT_TIME
        if st is not None and stat.S_ISDIR(st.st_mode):
            if not self._remove_in_way(entry, st):
                return
        if not self.cfg.dry_run:
            dfd, base = tree.locate(entry.name)
            tmp = temp_name(base)
            os.symlink(entry.link, tmp, dir_fd=dfd)
            try:
                apply_name(dfd, tmp, entry, self.policy, None)
                self._backup_before_replace(entry.name, st)
                os.rename(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd)
            except BaseException:
                os.unlink(tmp, dir_fd=dfd)
                raise
        self._item(ndx, entry, ITEM_LOCAL_CHANGE | change)
        self._succeeded(ndx, entry)

    def _gen_special(self, ndx, entry, st) -> None:
        tree = self.tree
        want_dev = os.makedev(*entry.rdev) if entry.is_device else 0
        if st is not None and stat.S_IFMT(st.st_mode) == stat.S_IFMT(entry.mode) and \
                (not entry.is_device or st.st_rdev == want_dev):
            flags = self._attr_flags(entry, st)
            if self.acls is not None:
                flags = self.acls.perms_follow(flags)
            if flags and not self.cfg.dry_run:
                dfd, base = tree.locate(entry.name)
                apply_name(dfd, base, entry, self.policy, st, differs(entry, st, self.policy))
                if flags & ITEM_REPORT_ACL and self.acls is not None:
                    self.acls.apply_by_name(entry)
            if flags or self.cfg.itemize_unchanged:
                self._item(ndx, entry, flags)
            self._succeeded(ndx, entry)
            return
        is_new = st is None or stat.S_IFMT(st.st_mode) != stat.S_IFMT(entry.mode)
        if st is not None and stat.S_ISDIR(st.st_mode):
            if not self._remove_in_way(entry, st):
                return
        if not self.cfg.dry_run:
            dfd, base = tree.locate(entry.name)
            tmp = temp_name(base)
            try:
                os.mknod(tmp, stat.S_IFMT(entry.mode) | 0o600, want_dev, dir_fd=dfd)
            except PermissionError as e:
                self._fail(f"rsync: [generator] mknod \"{_show(tree.path(entry.name))}\" failed: "
                           f"{e.strerror} ({e.errno})")
                return
            try:
                apply_name(dfd, tmp, entry, self.policy, None)
                if self.acls is not None:
                    self.acls.apply_by_name(entry, os.path.join(os.path.dirname(entry.name), tmp))
                self._backup_before_replace(entry.name, st)
                os.rename(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd)
            except BaseException:
                os.unlink(tmp, dir_fd=dfd)
                raise
        self._item(ndx, entry, ITEM_LOCAL_CHANGE | (ITEM_IS_NEW if is_new else ITEM_REPORT_CHANGE))
        self._succeeded(ndx, entry)

    def _backup_before_replace(self, name: bytes, st) -> None:
        if self.cfg.backups is not None and st is not None and not stat.S_ISDIR(st.st_mode):
            self.cfg.backups.keep(name, move=False)

    def _partial_path(self, name: bytes) -> bytes:
        """Where --partial-dir keeps the partial file of ``name``."""
        pdir = self.cfg.partial_dir
        parent, base = os.path.split(name)
        if os.path.isabs(pdir):
            return os.path.join(pdir, base)
        return os.path.join(self.tree.root, parent, pdir, base)

    def _alt_lstat(self, entry, want_type: int):
        """The first --*-dest copy of ``entry`` of the given type, for
        itemizing against it (rsync compares a new entry with it)."""
        for _kind, d in self.cfg.alt_dests:
            try:
                ast = os.lstat(os.path.join(d, entry.name))
            except OSError:
                continue
            if stat.S_IFMT(ast.st_mode) == want_type:
                return ast
        return None

    def _try_alt_dests(self, ndx, entry) -> bool:
        """--compare-dest / --copy-dest / --link-dest for a file missing in
        the destination (generator.c try_dests_reg): a copy in DIR with the
        same data and attributes (xattrs and ACLs included) is compared,
        copied or hard-linked; one with the same data but other attributes
        is copied here and itemized as a local change; a changed one
        becomes the basis of the delta."""
        cfg = self.cfg
        candidate = None
        same_data = None
        for kind, d in cfg.alt_dests:
            path = os.path.join(d, entry.name)
            try:
                ast = os.lstat(path)
            except OSError:
                continue
            if not stat.S_ISREG(ast.st_mode):
                continue
            if candidate is None and ast.st_size:
                candidate = path
            if not self._up_to_date(entry, ast, path):
                continue
            if self._attr_flags(entry, ast, path, probe=True):
                if same_data is None:
                    same_data = path, ast
                continue
            if kind == "compare":
                return True
            if not cfg.dry_run:
                if kind == "link":
                    dfd, base = self.tree.locate(entry.name)
                    tmp = temp_name(base)
                    os.link(path, tmp, dst_dir_fd=dfd, follow_symlinks=False)
                    os.rename(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd)
                else:
                    self._copy_alt(entry, path)
            return True     # unchanged: not itemized (rsync shows these only with -ii)
        if same_data is not None:
            path, ast = same_data
            flags = self._attr_flags(entry, ast, path)
            if not cfg.dry_run:
                self._copy_alt(entry, path)
            self._item(ndx, entry, ITEM_LOCAL_CHANGE | flags)
            return True
        if candidate is not None:
            self.basis[ndx] = candidate     # an absolute path: outside the tree
        return False

    def _copy_alt(self, entry, path: bytes) -> None:
        """A local copy of an --*-dest file, with its xattrs (the sender's
        come after, as for any itemized change), then the entry's attributes."""
        dfd, base = self.tree.locate(entry.name)
        tmp = temp_name(base)
        _copy_file(path, dfd, tmp)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            try:
                if self.xattrs is not None:
                    self.xattrs.copy(path, fd)
                if self.acls is not None:
                    self.acls.apply_fd(fd, entry)
                apply_fd(fd, entry, self.policy, None)
            finally:
                os.close(fd)
            os.rename(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            os.unlink(tmp, dir_fd=dfd)
            raise

    def _gen_file(self, ndx, entry, st) -> None:
        cfg = self.cfg
        if st is not None and not stat.S_ISREG(st.st_mode):
            if not self._remove_in_way(entry, st):
                return
            st = None
        if st is None and entry.hlink is not None and entry.hlink in self.group_members:
            # A hard-link leader with no file of its own: an existing member
            # of its group makes a good basis (rsync does the same).
            for m in self.group_members[entry.hlink]:
                if m == ndx:
                    continue
                try:
                    mst = self.tree.lstat(self.flist[m].name)
                except OSError:
                    continue
                if stat.S_ISREG(mst.st_mode) and mst.st_size:
                    self.basis[ndx] = self.flist[m].name
                    break
        if st is None and cfg.alt_dests and self._try_alt_dests(ndx, entry):
            self._succeeded(ndx, entry)
            return
        if cfg.partial_dir is not None and ndx not in self.basis:
            ppath = self._partial_path(entry.name)
            try:
                if stat.S_ISREG(os.lstat(ppath).st_mode):
                    self.basis[ndx] = ppath
            except OSError:
                pass
        if st is not None and self._up_to_date(entry, st):
            flags = self._attr_flags(entry, st)
            if self.acls is not None:
                flags = self.acls.perms_follow(flags)
            if flags and not cfg.dry_run:
                dfd, base = self.tree.locate(entry.name)
                apply_name(dfd, base, entry, self.policy, st, differs(entry, st, self.policy))
                if flags & ITEM_REPORT_ACL and self.acls is not None:
                    self.acls.apply_by_name(entry)
            if flags or cfg.itemize_unchanged:
                self._item(ndx, entry, flags)     # -ii: unchanged files are itemized too
            if cfg.partial_dir is not None and not cfg.dry_run \
                    and self.basis.get(ndx) == self._partial_path(entry.name):
                self._drop_stale_partial(self.basis.pop(ndx))
            self._succeeded(ndx, entry)
            return
        if cfg.append and st is not None and st.st_size >= entry.size:
            # --append: nothing to add to a file this long (not itemized, no
            # MSG_SUCCESS: generator.c skips it before either)
            if entry.hlink is not None and self.leader_ndx.get(entry.hlink) == ndx:
                self._leave_group(ndx, entry)
            return
        if st is None and cfg.alt_dests:
            alt = self._alt_lstat(entry, stat.S_IFREG)
            if alt is not None:
                self._request(ndx, entry, st=alt, new=False)
                return
        self._request(ndx, entry, st=st, new=st is None)

    def _up_to_date(self, entry, st, path: bytes | None = None) -> bool:
        cfg = self.cfg
        if cfg.ignore_times:
            return False
        if st.st_size != entry.size:
            return False
        if cfg.checksum_files:
            return self._local_sum(entry, path) == entry.sum
        if cfg.size_only:
            return True
        return not time_differs(st, entry, cfg.modify_window)

    def _local_sum(self, entry, path: bytes | None = None) -> bytes:
        h = self.cfg.file_checksum.file_hasher()
        if path is not None:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        else:
            dfd, base = self.tree.locate(entry.name)
            fd = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                h.update(chunk)
        finally:
            os.close(fd)
        return h.digest()

    def _request(self, ndx, entry, st=None, new=False, redo=False) -> None:
        cfg = self.cfg
        iflags = ITEM_TRANSFER
        if new:
            iflags |= ITEM_IS_NEW
        elif st is not None:
            if st.st_size != entry.size:
                iflags |= ITEM_REPORT_SIZE
            if cfg.times and time_differs(st, entry, cfg.modify_window):
                iflags |= ITEM_REPORT_TIME
            if cfg.checksum_files:
                iflags |= ITEM_REPORT_CHANGE
            iflags |= self._attr_flags(entry, st) & ~ITEM_REPORT_TIME
        if self.xattrs is not None and new:
            iflags |= self.xattrs.flags(entry, None)
        self.requested[ndx] = self.requested.get(ndx, 0) + 1
        basis_type = None
        if redo and ndx in self.backup_basis:
            # The redo rewrites the file over itself, as rsync does.
            self.backup_basis.discard(ndx)
            self.basis.pop(ndx, None)
        if cfg.inplace and cfg.backups is not None and not redo and not cfg.dry_run \
                and not new and ndx not in self.basis:
            # The file is about to be rewritten in place: back up a copy
            # first (a hard link would change with it), and let the delta
            # work from that copy (rsync's FNAMECMP_BACKUP).
            backup = cfg.backups.copy(entry.name)
            if not cfg.whole_file:
                self.basis[ndx] = backup
                self.backup_basis.add(ndx)
                basis_type = FNAMECMP_BACKUP
                iflags |= ITEM_BASIS_TYPE_FOLLOWS
        out = encode_item(self.ndx_out, ndx, iflags, basis_type, None)
        if self.xattrs is not None:
            out += self.xattrs.tail(entry, iflags)
        if self.copier is not None and not redo and not cfg.dry_run \
                and self._copied_locally(ndx, entry, st is None, bool(iflags & ITEM_IS_NEW)):
            self.wire.write(out)     # no sum head: a transfer without data
            return
        self.wire.write(out)
        if not cfg.dry_run:
            self._send_sums(entry, redo, self.basis.get(ndx, entry.name))

    def _copied_locally(self, ndx, entry, missing: bool, is_new: bool) -> bool:
        """Local copy offload: a file that would go whole (no basis used) is
        copied in the kernel here, if it can be; the sender is told first."""
        if ndx in self.basis or not (self.cfg.whole_file or missing):
            return False
        if not self.copier.try_copy(ndx, entry, is_new):
            return False
        self.offloaded.add(ndx)
        self.wire.flush()     # the sender drains the side channel as it reads
        try:
            self.copier.announce(ndx)
        except OSError:
            self.offloaded.discard(ndx)
            return False      # the file is in place; the stream copies it again
        return True

    def _send_sums(self, entry, redo: bool, basis_name: bytes) -> None:
        cfg = self.cfg
        digest_len = cfg.checksum.digest_len
        fd = -1
        size = 0
        if not cfg.whole_file or redo:
            try:
                if basis_name.startswith(b"/"):
                    fd = os.open(basis_name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                else:
                    dfd, base = self.tree.locate(basis_name)
                    fd = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                st = os.fstat(fd)
                if stat.S_ISREG(st.st_mode):
                    size = st.st_size
            except OSError:
                fd = -1
        if fd < 0 or size == 0 or (cfg.whole_file and not redo):
            if fd >= 0:
                os.close(fd)
            self.wire.write(encode_sum_head(SumHead(0, 0, 0, 0)))
            return
        try:
            head = sum_head_for(size, digest_len, cfg.block_size, redo=redo)
            self.wire.write(encode_sum_head(head))
            if cfg.append and not redo:
                return      # --append: the head tells the sender how much is kept
            seed = cfg.seed
            block_sum = cfg.checksum.block_sum
            s2 = head.s2length
            weak = native.weak_checksum
            pairs = []
            blen = head.blength
            count = head.count
            last = head.remainder or blen
            # Read many blocks per system call; a file that shrank since
            # the fstat reads as zeros, as before.
            per_read = max(1, SUMS_READ_SIZE // blen)
            for first in range(0, count, per_read):
                n = min(per_read, count - first)
                want = (n - 1) * blen + (last if first + n == count else blen)
                data = os.pread(fd, want, first * blen)
                if len(data) < want:
                    data = data.ljust(want, b"\0")
                with memoryview(data) as mv:
                    for off in range(0, want, blen):
                        block = mv[off:off + blen]
                        pairs.append((weak(block), block_sum(block, seed)[:s2]))
                if len(pairs) >= 4096:
                    self.wire.write(encode_block_sums(pairs))
                    pairs = []
            self.wire.write(encode_block_sums(pairs))
        finally:
            os.close(fd)

    # ---- the end ----------------------------------------------------------------------
    def _finish_hard_links(self, redo: set, late: bool = False) -> None:
        """Link each follower to its group's leader (hlink.c finish_hard_link).
        Sent as itemize records with the leader's name (ITEM_XNAME_FOLLOWS),
        so the client logs "name => leader" in rsync's order: groups in
        leader order, a group's followers last to first.  Followers of a
        leader still waiting for its redo are linked at the end (late)."""
        if not self.hlink_followers:
            return
        by_group = {}
        for ndx, entry in self.hlink_followers:
            by_group.setdefault(entry.hlink, []).append((ndx, entry))
        pending = []
        for group, lndx in sorted(self.leader_ndx.items(), key=lambda kv: kv[1]):
            members = by_group.get(group)
            if not members:
                continue
            if lndx in redo and not late:
                pending += members
                continue
            lname = self.flist[lndx].name
            for ndx, entry in reversed(members):
                self._link_one(ndx, entry, lname, itemize=not late)
        self.hlink_followers = pending

    def _link_one(self, ndx, entry, lname: bytes, itemize: bool) -> None:
        tree = self.tree
        try:
            dfd, base = tree.locate(entry.name)
            try:
                st = os.stat(base, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if not self.cfg.dry_run:
                ldfd, lbase = tree.locate(lname)
                lst = os.stat(lbase, dir_fd=ldfd, follow_symlinks=False)
                if st is not None and st.st_ino == lst.st_ino and st.st_dev == lst.st_dev:
                    self._succeeded(ndx, entry)
                    return
                if st is not None and stat.S_ISDIR(st.st_mode) and not self._remove_in_way(entry, st):
                    return
                tmp = temp_name(base)
                os.link(lbase, tmp, src_dir_fd=ldfd, dst_dir_fd=dfd, follow_symlinks=False)
                os.rename(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError as e:
            self._fail(f"rsync: [generator] link \"{_show(tree.path(entry.name))}\" => "
                       f"{_show(lname)} failed: {e.strerror} ({e.errno})")
            return
        iflags = ITEM_LOCAL_CHANGE | ITEM_XNAME_FOLLOWS | (ITEM_IS_NEW if st is None else 0)
        if itemize:
            self.wire.write(self.ndx_out.encode(ndx) + encode_shortint(iflags) + encode_vstring(lname))
        else:
            self.report.item(entry, iflags, lname)
        self._succeeded(ndx, entry)

    def _succeeded(self, ndx: int, entry) -> None:
        """--remove-source-files: this entry is in place (never a directory)."""
        if self.success is not None:
            self.success(ndx, entry.name)

    def _drop_stale_partial(self, path: bytes) -> None:
        """A partial-dir file for a file that turned out up to date is of
        no more use (generator.c): remove it, and its directory if empty."""
        try:
            os.unlink(path)
        except OSError:
            return
        if not os.path.isabs(self.cfg.partial_dir):
            try:
                os.rmdir(os.path.dirname(path))
            except OSError:
                pass

    def _touch_up_dirs(self) -> None:
        if self.cfg.dry_run:
            return
        tree = self.tree
        for ndx, entry in reversed(self.dirs):
            try:
                if entry.name == b".":
                    st = os.fstat(tree.root_fd)
                    if differs(entry, st, self.policy):
                        apply_fd(tree.root_fd, entry, self.policy, st.st_mode)
                    continue
                dfd, base = tree.locate(entry.name)
                st = os.stat(base, dir_fd=dfd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    continue
                what = differs(entry, st, self.policy)
                new_mode = entry.name in self.created_dirs
                if new_mode:
                    what |= 2
                if what:
                    apply_name(dfd, base, entry, self.policy,
                               None if new_mode else st, what)
            except OSError as e:
                self._fail(f"rsync: [generator] failed to set times on \"{_show(tree.path(entry.name))}\": "
                           f"{e.strerror} ({e.errno})")

    def _fail(self, text: str) -> None:
        self.failed |= IOERR_GENERAL
        self.log.error(text)


def _show(name: bytes) -> str:
    return show(name)


def _copy_file(src: bytes, dir_fd: int, tmp: bytes) -> None:
    """--copy-dest: a local copy into a new temp file (copy_file_range)."""
    sfd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        dfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      0o600, dir_fd=dir_fd)
        try:
            size = os.fstat(sfd).st_size
            done = 0
            while done < size:
                n = os.copy_file_range(sfd, dfd, size - done)
                if n == 0:
                    break
                done += n
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)
