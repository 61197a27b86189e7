"""The generator role (generator.c recv_generator/generate_files): walk the
sorted file list against the destination, create directories, symlinks
and special files, decide which regular files need data (quick check),
send their requests with block sums of the basis, run the redo phase,
delete extraneous files, and fix directory attributes after their
contents.  It only writes to the wire; the receiver thread reports back
through a queue."""

from __future__ import annotations

import errno
import os
import stat

from .. import native
from ..io.attrs import apply_fd, apply_name, differs, time_differs
from ..io.replace import temp_name
from ..protocol.constants import (IOERR_GENERAL, ITEM_IS_NEW, ITEM_LOCAL_CHANGE,
                                  ITEM_REPORT_CHANGE, ITEM_REPORT_GROUP, ITEM_REPORT_OWNER,
                                  ITEM_REPORT_PERMS, ITEM_REPORT_SIZE, ITEM_REPORT_TIME,
                                  ITEM_TRANSFER, MSG_DELETED, NDX_DEL_STATS, NDX_DONE,
                                  XMIT_NO_CONTENT_DIR)
from ..protocol.ints import encode_shortint
from ..protocol.ndx import NdxEncoder
from ..protocol.stats import DeleteStats, encode_del_stats
from ..protocol.sums import SumHead, encode_block_sums, encode_sum_head, sum_head_for
from .delete import delete_extraneous, remove_tree

__all__ = ["Generator"]

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
        self._leaders = {}
        self.created_dirs = set()
        self.skipped_deletes = 0
        # The first member of each hard-link group in sorted order is the one
        # transferred; the others are linked to it at the end.
        self.leader_ndx = {}
        if cfg.hard_links:
            for ndx, e in enumerate(flist):
                if e.hlink is not None and not e.cleared and e.is_reg:
                    self.leader_ndx.setdefault(e.hlink, ndx)

    # ---- phase 0 ---------------------------------------------------------------------
    def run(self) -> None:
        wire = self.wire
        mode = self.cfg.delete_mode
        if self.cfg.delete and mode == "before":
            self._delete_pass()
        for ndx, entry in enumerate(self.flist):
            if entry.cleared:
                continue
            try:
                self._generate(ndx, entry)
            except OSError as e:
                self._fail(f"rsync: [generator] failed to set up \"{_show(self.tree.path(entry.name))}\": "
                           f"{e.strerror} ({e.errno})")
        wire.write(self.ndx_out.encode(NDX_DONE))
        wire.flush()
        # Wait until the receiver has seen the end of phase 0, then redo.
        redo = []
        self._wait_for(lambda what, v: what == "done", redo)
        for ndx in redo:
            self._request(ndx, self.flist[ndx], redo=True)
        wire.write(self.ndx_out.encode(NDX_DONE))   # end of the redo phase
        wire.write(self.ndx_out.encode(NDX_DONE))   # the (empty) delay-updates phase
        if self.cfg.delete:
            wire.write(self.ndx_out.encode(NDX_DEL_STATS) + encode_del_stats(self.del_stats))
        wire.write(self.ndx_out.encode(NDX_DONE))   # early "deletions done" (protocol >= 31)
        wire.flush()
        self._wait_for(lambda what, v: what == "end", None)
        if self.cfg.delete and mode in ("after", "delay"):
            self._delete_pass()
        self._finish_hard_links()
        self._touch_up_dirs()
        wire.write(self.ndx_out.encode(NDX_DONE))   # the final goodbye
        wire.flush()

    def _wait_for(self, pred, redo) -> None:
        while True:
            what, value = self.queue.get()
            if what == "redo" and redo is not None:
                redo.append(value)
            elif what == "finished":
                self._leaders[value] = True
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

    def _item(self, ndx: int, entry, iflags: int) -> None:
        """An itemize record for a change that moves no data; the sender
        echoes it so the client can log it in order."""
        self.wire.write(self.ndx_out.encode(ndx) + encode_shortint(iflags))
        # Logged when the sender's echo comes back, in list order (rsync
        # does the same from protocol 29 on).

    def _attr_flags(self, entry, st) -> int:
        d = differs(entry, st, self.policy, entry.is_link)
        flags = 0
        for bit, item in _DIFF_TO_ITEM:
            if d & bit:
                flags |= item
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
                remove_tree(self.tree, entry.name, self.note_deleted)
            self.tree.forget(entry.name)
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
                pass
            elif self.cfg.dry_run:
                self.missing_dirs.add(entry.name)
            else:
                dfd, base = self.tree.locate(entry.name)
                os.mkdir(base, 0o700, dir_fd=dfd)
                self.created_dirs.add(entry.name)
            self._item(ndx, entry, ITEM_LOCAL_CHANGE | ITEM_IS_NEW)
        else:
            flags = self._attr_flags(entry, st)
            if flags:
                self._item(ndx, entry, flags)
            if self.cfg.delete and self.cfg.delete_mode in (None, "during") and self._content_dir(entry):
                self._delete_in(entry)
        self.dirs.append((ndx, entry))

    def _content_dir(self, entry) -> bool:
        return self.cfg.recursive and not entry.xflags & XMIT_NO_CONTENT_DIR

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
            self.report.deleted(shown)

    def _gen_link(self, ndx, entry, st) -> None:
        tree = self.tree
        if st is not None and stat.S_ISLNK(st.st_mode):
            dfd, base = tree.locate(entry.name)
            if os.readlink(base, dir_fd=dfd) == entry.link:
                flags = self._attr_flags(entry, st)
                if flags and not self.cfg.dry_run:
                    apply_name(dfd, base, entry, self.policy, st, differs(entry, st, self.policy, True))
                if flags:
                    self._item(ndx, entry, flags)
                return
        is_new = st is None
        if st is not None and stat.S_ISDIR(st.st_mode):
            if not self._remove_in_way(entry, st):
                return
        if not self.cfg.dry_run:
            dfd, base = tree.locate(entry.name)
            tmp = temp_name(base)
            os.symlink(entry.link, tmp, dir_fd=dfd)
            try:
                apply_name(dfd, tmp, entry, self.policy, None)
                os.rename(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd)
            except BaseException:
                os.unlink(tmp, dir_fd=dfd)
                raise
        self._item(ndx, entry, ITEM_LOCAL_CHANGE | (ITEM_IS_NEW if is_new else ITEM_REPORT_CHANGE))

    def _gen_special(self, ndx, entry, st) -> None:
        tree = self.tree
        want_dev = os.makedev(*entry.rdev) if entry.is_device else 0
        if st is not None and stat.S_IFMT(st.st_mode) == stat.S_IFMT(entry.mode) and \
                (not entry.is_device or st.st_rdev == want_dev):
            flags = self._attr_flags(entry, st)
            if flags:
                if not self.cfg.dry_run:
                    dfd, base = tree.locate(entry.name)
                    apply_name(dfd, base, entry, self.policy, st, differs(entry, st, self.policy))
                self._item(ndx, entry, flags)
            return
        is_new = st is None
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
                os.rename(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd)
            except BaseException:
                os.unlink(tmp, dir_fd=dfd)
                raise
        self._item(ndx, entry, ITEM_LOCAL_CHANGE | (ITEM_IS_NEW if is_new else ITEM_REPORT_CHANGE))

    def _gen_file(self, ndx, entry, st) -> None:
        cfg = self.cfg
        if st is not None and not stat.S_ISREG(st.st_mode):
            if not self._remove_in_way(entry, st):
                return
            st = None
        if st is not None and self._up_to_date(entry, st):
            flags = self._attr_flags(entry, st)
            if flags:
                if not cfg.dry_run:
                    dfd, base = self.tree.locate(entry.name)
                    apply_name(dfd, base, entry, self.policy, st, differs(entry, st, self.policy))
                self._item(ndx, entry, flags)
            return
        self._request(ndx, entry, st=st, new=st is None)

    def _up_to_date(self, entry, st) -> bool:
        cfg = self.cfg
        if cfg.ignore_times:
            return False
        if st.st_size != entry.size:
            return False
        if cfg.checksum_files:
            return self._local_sum(entry) == entry.sum
        if cfg.size_only:
            return True
        return not time_differs(st, entry, cfg.modify_window)

    def _local_sum(self, entry) -> bytes:
        h = self.cfg.file_checksum.file_hasher()
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
        self.requested[ndx] = self.requested.get(ndx, 0) + 1
        out = self.ndx_out.encode(ndx) + encode_shortint(iflags)
        self.wire.write(out)
        if not cfg.dry_run:
            self._send_sums(entry, redo)

    def _send_sums(self, entry, redo: bool) -> None:
        cfg = self.cfg
        digest_len = cfg.checksum.digest_len
        fd = -1
        size = 0
        if not cfg.whole_file or redo:
            try:
                dfd, base = self.tree.locate(entry.name)
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
            seed = cfg.seed
            block_sum = cfg.checksum.block_sum
            s2 = head.s2length
            weak = native.weak_checksum
            pairs = []
            blen = head.blength
            for i in range(head.count):
                data = os.pread(fd, blen, i * blen)
                want = head.remainder if (i == head.count - 1 and head.remainder) else blen
                if len(data) < want:
                    data = data.ljust(want, b"\0")
                pairs.append((weak(data), block_sum(data, seed)[:s2]))
                if len(pairs) >= 4096:
                    self.wire.write(encode_block_sums(pairs))
                    pairs = []
            self.wire.write(encode_block_sums(pairs))
        finally:
            os.close(fd)

    # ---- the end ----------------------------------------------------------------------
    def _finish_hard_links(self) -> None:
        if not self.hlink_followers or self.cfg.dry_run:
            return
        leader_name = {}
        for ndx, e in enumerate(self.flist):
            if e.hlink is not None and not e.cleared and e.hlink not in leader_name:
                leader_name[e.hlink] = e.name
        tree = self.tree
        for ndx, entry in self.hlink_followers:
            lname = leader_name.get(entry.hlink)
            if lname is None or lname == entry.name:
                continue
            try:
                ldfd, lbase = tree.locate(lname)
                lst = os.stat(lbase, dir_fd=ldfd, follow_symlinks=False)
                dfd, base = tree.locate(entry.name)
                try:
                    st = os.stat(base, dir_fd=dfd, follow_symlinks=False)
                    if st.st_ino == lst.st_ino and st.st_dev == lst.st_dev:
                        continue
                    if stat.S_ISDIR(st.st_mode) and not self._remove_in_way(entry, st):
                        continue
                except FileNotFoundError:
                    pass
                tmp = temp_name(base)
                os.link(lbase, tmp, src_dir_fd=ldfd, dst_dir_fd=dfd, follow_symlinks=False)
                os.rename(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd)
                self.report.hardlink(entry, lname)
            except OSError as e:
                self._fail(f"rsync: [generator] link \"{_show(tree.path(entry.name))}\" => "
                           f"{_show(lname)} failed: {e.strerror} ({e.errno})")

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
    return name.decode("utf-8", "backslashreplace")
