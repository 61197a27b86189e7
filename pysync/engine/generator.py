"""The generator role (generator.c recv_generator/generate_files): walk the
sorted file list against the destination, create directories, symlinks
and special files, decide which regular files need data (quick check),
send their requests with block sums of the basis, run the redo phase,
delete extraneous files, and fix directory attributes after their
contents.  It only writes to the wire; the receiver thread reports back
through a queue.

This module owns the phase loop, the per-entry dispatch, the quick check,
itemizing and the requests; the parts live beside it, as functions that
take the Generator: objects.py (directories, symlinks, devices, specials,
touch-up), hlinks.py (hard-link groups), altdest.py (--*-dest), basis.py
(partial-dir basis, block sums) and delete.py (the delete passes)."""

from __future__ import annotations

import errno
import os
import stat
import time

from ..text import show
from ..io.attrs import apply_name, differs, time_differs
from ..protocol.constants import (FNAMECMP_BACKUP, FNAMECMP_FUZZY, IOERR_GENERAL, ITEM_BASIS_TYPE_FOLLOWS,
                                  ITEM_IS_NEW, ITEM_LOCAL_CHANGE, ITEM_REPORT_ACL, ITEM_REPORT_ATIME,
                                  ITEM_REPORT_CHANGE, ITEM_REPORT_GROUP, ITEM_REPORT_OWNER,
                                  ITEM_REPORT_PERMS, ITEM_REPORT_SIZE, ITEM_REPORT_TIME,
                                  ITEM_TRANSFER, ITEM_XNAME_FOLLOWS, NDX_DEL_STATS, NDX_DONE,
                                  XMIT_NO_CONTENT_DIR, XMIT_TOP_DIR)
from ..protocol.ints import encode_shortint
from ..protocol.ndx import NdxEncoder
from ..protocol.stats import DeleteStats, encode_del_stats
from .hlinks import (finish_hard_links, follows_leader, leader_blocked, leave_group, member_basis,
                     pick_leader, queue_follower)
from .itemize import after_chown
from .objects import (gen_dir, gen_link, gen_special, make_parents, remove_in_way, time_item,
                      touch_up_dirs)
from .sender import encode_item

__all__ = ["Generator"]

FLUSH_INTERVAL = 0.05

_DIFF_TO_ITEM = ((1, ITEM_REPORT_TIME), (2, ITEM_REPORT_PERMS), (4, ITEM_REPORT_OWNER),
                 (8, ITEM_REPORT_GROUP), (16, ITEM_REPORT_ATIME))


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
        self.hlink_compared = set()      # groups whose leader --compare-dest left out
        self.hlink_sent = set()          # hard-link members whose data was asked for
        self.dry_linked = {}             # -n: name -> lstat of the --link-dest copy it would be
        self.del_stats = DeleteStats()
        self.failed = 0
        self.missing_dirs = set()        # dry run: dirs we would have created
        self.skip_dir = None             # a directory that could not be made: not its contents
        self.below_nondir = False        # the last stat met a non-directory above the name
        self.created_dirs = set()
        self.skipped_deletes = 0
        # As rsync: one member of each hard-link group (see hlinks.pick_leader)
        # gets the data; the others are linked to it once it is done.
        self.leader_ndx = {}
        self.group_members = {}
        if cfg.hard_links:
            for ndx, e in enumerate(flist):
                if e.hlink is not None and not e.cleared and e.is_reg:
                    self.leader_ndx[e.hlink] = ndx
                    self.group_members.setdefault(e.hlink, []).append(ndx)
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
        # An option's own modules (-X, -A, --link-dest & co.) load when it is
        # given, not in every receiver's start-up.
        self.xattrs = self.acls = None
        if cfg.xattrs:
            from .xattrs import GenXattrs
            self.xattrs = GenXattrs(cfg, tree)
        if cfg.acls:
            from .acls import Acls
            self.acls = Acls(cfg, tree, self._fail)
        policy.owner_refused = self._owner_refused
        # -y: a similar file as the basis of a new one (with -W too: its
        # permissions are the new file's without -p, as in rsync).
        self.fuzzy = None
        self.fuzzy_basis = {}            # ndx -> (FNAMECMP_FUZZY + place, base name)
        if cfg.fuzzy:
            from .fuzzy import FuzzyFinder
            self.fuzzy = FuzzyFinder(tree, [d for _, d in cfg.alt_dests], cfg.fuzzy)
        for group, members in self.group_members.items():
            self.leader_ndx[group] = pick_leader(self, members)

    # ---- phase 0 ---------------------------------------------------------------------
    def run(self) -> None:
        wire = self.wire
        mode = self.cfg.delete_mode
        if self.cfg.delete and mode == "before":
            from .delete import delete_pass     # the --delete family loads its module
            delete_pass(self)
        last_flush = time.monotonic()
        monotonic = time.monotonic
        list_only = self.cfg.list_only
        no_implied = self.cfg.relative and not self.cfg.implied_dirs
        generate = self._generate
        plain = self._plain_quick_check()
        dir_fd = getattr(self.tree, "dir_fd", None)     # a DestTree (plain: no dry run)
        plain = plain and dir_fd is not None
        os_stat = os.stat
        policy = self.policy
        window = self.cfg.modify_window
        for ndx, entry in enumerate(self.flist):
            if entry.cleared or list_only:
                continue
            if self.skip_dir is not None:
                if entry.name.startswith(self.skip_dir):
                    continue
                self.skip_dir = None
            now = monotonic()
            if now - last_flush > FLUSH_INTERVAL:
                # Keep the sender busy: requests should not wait for a full
                # buffer while we are slow (checksumming a large basis).
                wire.flush()
                last_flush = now
            if plain and entry.mode & 0o170000 == 0o100000:
                # The common case of a re-sync: a regular file that is up to
                # date, attributes and all, needs only its MSG_SUCCESS (as
                # _gen_file ends for it); anything else takes the full path
                # with the lstat made here.
                try:
                    name = entry.name
                    i = name.rfind(b"/")      # tree.lstat, without its steps
                    try:
                        st = os_stat(name[i + 1:], dir_fd=dir_fd(name[:i] if i >= 0 else b""),
                                     follow_symlinks=False)
                    except FileNotFoundError:
                        st = None
                    if (st is not None and st.st_mode & 0o170000 == 0o100000
                            and st.st_size == entry.size
                            and abs(st.st_mtime_ns // 1_000_000_000 - entry.mtime) <= window
                            and not differs(entry, st, policy)):
                        if self.success is not None:
                            self.success(ndx, entry.name)
                        continue
                    self.below_nondir = False
                    self._gen_entry(ndx, entry, st)
                except NotADirectoryError:
                    generate(ndx, entry)     # below a non-directory: as rsync says
                except OSError as e:
                    self._setup_failed(entry, e)
                continue
            if (no_implied and entry.is_dir
                    and entry.xflags & XMIT_TOP_DIR and entry.xflags & XMIT_NO_CONTENT_DIR):
                # --no-implied-dirs: the sender's implied directories are
                # neither created nor updated (missing ones come from
                # _make_parents, with default permissions).
                entry.cleared = True
                continue
            try:
                if no_implied and b"/" in entry.name:
                    make_parents(self, entry.name)
                generate(ndx, entry)
            except OSError as e:
                self._setup_failed(entry, e)
        wire.write(self.ndx_out.encode(NDX_DONE))
        wire.flush()
        # Wait until the receiver has seen the end of phase 0, then redo.
        redo = []
        self._wait_for(lambda what, v: what == "done", redo)
        delay = self.cfg.delay_updates
        if not delay:
            finish_hard_links(self, set(redo))
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
            finish_hard_links(self, set())
        wire.write(self.ndx_out.encode(NDX_DONE))   # the delay-updates phase
        if self.cfg.delete and mode in ("after", "delay"):
            # --delete-after/-delay: once the receiver has seen the sender's
            # last file; the delete stats and the "deletions done" DONE
            # follow the deletions (rsync's late delete-done message).
            wire.flush()
            self._wait_for(lambda what, v: what == "done" and v == 3, None)
            from .delete import delete_pass
            delete_pass(self)
        if self.cfg.delete or self.cfg.force:     # as generator.c: delete_mode || force_delete
            wire.write(self.ndx_out.encode(NDX_DEL_STATS) + encode_del_stats(self.del_stats))
        wire.write(self.ndx_out.encode(NDX_DONE))   # "deletions done" (protocol >= 31)
        wire.flush()
        self._wait_for(lambda what, v: what == "end", None)
        finish_hard_links(self, set(), late=True)
        touch_up_dirs(self)
        wire.write(self.ndx_out.encode(NDX_DONE))   # the final goodbye
        wire.flush()

    def _backup_xattrs(self, name: bytes, backup: bytes) -> None:
        """-X: a backup copied for --inplace takes the file's xattrs (as
        rsync copies them onto the backup it wrote)."""
        from .xattrs import target_of
        fd = os.open(backup, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            self.xattrs.copy(target_of(self.tree, name), fd)
        finally:
            os.close(fd)

    def _setup_failed(self, entry, e: OSError) -> None:
        self._fail(f"rsync: [generator] failed to set up \"{show(self.tree.path(entry.name))}\": "
                   f"{e.strerror} ({e.errno})")

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
    def _plain_quick_check(self) -> bool:
        """Whether a regular file's fate is the quick check and nothing
        else: no option that skips, finds another basis, compares sums or
        more attributes, or itemizes unchanged files (run's fast path)."""
        c = self.cfg
        return not (c.dry_run or c.existing or c.ignore_existing or c.update or c.ignore_times
                    or c.checksum_files or c.size_only or c.itemize_unchanged or c.hard_links
                    or c.alt_dests or c.max_size is not None or c.min_size is not None
                    or c.partial_dir is not None or c.modify_window < 0
                    or self.policy.modify_window != c.modify_window
                    or self.fuzzy is not None or self.acls is not None or self.xattrs is not None
                    or (c.relative and not c.implied_dirs) or self.policy.fake)

    def _generate(self, ndx: int, entry) -> None:
        name = entry.name
        self.below_nondir = False
        if self.cfg.dry_run and (name.rsplit(b"/", 1)[0] if b"/" in name else b"") \
                in self.missing_dirs:
            st = None
        else:
            try:
                st = self.tree.stat_entry(name, entry.is_dir)
            except FileNotFoundError:
                st = None
            except NotADirectoryError:
                # Below a non-directory in the way: nothing there, though not
                # missing for --existing (rsync's stat fails alike, and
                # making the entry then fails).
                st = None
                self.below_nondir = True
            if st is not None and self.policy.fake:
                from ..io.fakesuper import fold_in_tree
                st = fold_in_tree(self.tree, name, st)
        self._gen_entry(ndx, entry, st)

    def _gen_entry(self, ndx: int, entry, st) -> None:
        """One entry against ``st``, what is at its name now (None: nothing)."""
        if not entry.mode:
            from .delete import delete_missing
            delete_missing(self, entry, st)     # --delete-missing-args
            return
        if self._skipped(ndx, entry, st):
            return
        if not entry.is_dir and not entry.is_reg and not self._preserved(entry):
            self._skip_nonregular(entry)
            return
        if entry.is_dir:
            gen_dir(self, ndx, entry, st)
        elif entry.is_reg:
            if entry.hlink is not None and self.leader_ndx.get(entry.hlink) != ndx:
                queue_follower(self, ndx, entry, st)
                return
            self._gen_file(ndx, entry, st)
        elif entry.is_link:
            gen_link(self, ndx, entry, st)
        else:
            gen_special(self, ndx, entry, st)

    def _preserved(self, entry) -> bool:
        c = self.cfg
        if entry.is_link:
            return c.links
        if entry.is_device:
            return c.devices and c.am_root != 0    # generator.c: devices need am_root
        return c.specials

    def _skip_nonregular(self, entry) -> None:
        """rsync's generator line for a type that is not preserved (-l,
        --devices, --specials); a server's log sends it to the client."""
        self.log.info(f"skipping non-regular file \"{show(entry.name)}\"")

    def _skipped(self, ndx: int, entry, st) -> bool:
        """--existing, --ignore-existing, -u, --max-size/--min-size
        (generator.c recv_generator's early exits)."""
        cfg = self.cfg
        if entry.name == b".":
            # Only --existing, in a dry run into a destination not there.
            return bool(cfg.existing and st is None)
        if cfg.existing and st is None and not self.below_nondir:
            if entry.is_dir:
                self.missing_dirs.add(entry.name)   # and nothing below it
            return self._skip_member(ndx, entry)
        # A directory is skipped only when what is there is not one (its
        # contents are still visited, below whatever is in the way).
        if cfg.ignore_existing and st is not None \
                and not (entry.is_dir and stat.S_ISDIR(st.st_mode)):
            return self._skip_member(ndx, entry)
        if entry.is_reg:
            if cfg.max_size is not None and entry.size > cfg.max_size:
                return True
            if cfg.min_size is not None and entry.size < cfg.min_size:
                return True
            # -u: newer here, in whole seconds against the window as it is
            # (so N > 0 keeps a file up to N-1 s older; -1 one 2 s newer).
            if cfg.update and st is not None and stat.S_ISREG(st.st_mode) \
                    and entry.mtime - st.st_mtime_ns // 1_000_000_000 < cfg.modify_window \
                    and not follows_leader(self, ndx, entry):
                return self._skip_member(ndx, entry)
        return False

    def _skip_member(self, ndx: int, entry) -> bool:
        """A skipped member of a hard-link group leaves it (hlinks.leave_group)."""
        if entry.hlink is not None and entry.hlink in self.group_members:
            leave_group(self, ndx, entry)
        return True

    def _item(self, ndx: int, entry, iflags: int) -> None:
        """An itemize record for a change that moves no data; the sender
        echoes it so the client can log it in order."""
        iflags = time_item(self, entry, iflags)
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

    def _gen_file(self, ndx, entry, st) -> None:
        cfg = self.cfg
        if st is None and self.below_nondir:
            self._fail(f"rsync: [generator] recv_generator: failed to stat "
                       f"\"{show(os.path.abspath(self.tree.path(entry.name)))}\": "
                       f"{os.strerror(errno.ENOTDIR)} ({errno.ENOTDIR})")
            return
        if st is not None and not stat.S_ISREG(st.st_mode):
            if cfg.write_devices and (stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode)):
                from ..io.inplace import DeviceStat    # written into, as a file
                st = DeviceStat.at(*self.tree.locate(entry.name), st)
            else:
                if not remove_in_way(self, entry, st):
                    if entry.hlink is not None:
                        leader_blocked(self, ndx, entry)
                    return
                st = None
        if st is None and entry.hlink is not None and entry.hlink in self.group_members:
            member_basis(self, ndx, entry)
        if cfg.alt_dests and (st is None or cfg.alt_dests[0][0] != "copy"):
            from .altdest import try_alt_dests  # --link-dest & co. load their module
            if try_alt_dests(self, ndx, entry, st):
                self._succeeded(ndx, entry)
                return
        if cfg.partial_dir is not None and ndx not in self.basis:
            from .basis import partial_path     # --partial-dir
            ppath = partial_path(self, entry.name)
            try:
                if stat.S_ISREG(os.lstat(ppath).st_mode):
                    self.basis[ndx] = ppath
            except OSError:
                pass
        if st is None and self.fuzzy is not None and ndx not in self.basis and not cfg.dry_run:
            found = self.fuzzy.find(entry)
            if found is not None:
                path, place, base = found
                self.basis[ndx] = path
                self.fuzzy_basis[ndx] = (FNAMECMP_FUZZY + place, base)
        if st is not None and self._up_to_date(entry, st):
            flags = self._attr_flags(entry, st)
            if self.acls is not None:
                flags = self.acls.perms_follow(flags)
            if flags and not cfg.dry_run:
                dfd, base = self.tree.locate(entry.name)
                apply_name(dfd, base, entry, self.policy, st, differs(entry, st, self.policy))
                if flags & ITEM_REPORT_ACL and self.acls is not None:
                    self.acls.apply_by_name(entry)
                flags = after_chown(self.policy, entry, st, flags)    # (rsync itemizes after)
            if flags or cfg.itemize_unchanged:
                self._item(ndx, entry, flags)     # -ii: unchanged files are itemized too
            if cfg.partial_dir is not None and not cfg.dry_run:
                from .basis import drop_stale_partial, partial_path
                if self.basis.get(ndx) == partial_path(self, entry.name):
                    drop_stale_partial(self, self.basis.pop(ndx))
            self._succeeded(ndx, entry)
            return
        if cfg.append:
            from .basis import append_length    # a -y or --*-dest basis counts too
        if cfg.append and append_length(self, ndx, entry, st) >= entry.size:
            # --append: nothing to add to a file (or basis) this long (not
            # itemized, no MSG_SUCCESS: generator.c skips it before either)
            if entry.hlink is not None and self.leader_ndx.get(entry.hlink) == ndx:
                leave_group(self, ndx, entry)
            return
        if st is None and cfg.alt_dests:
            from .altdest import alt_find
            alt = alt_find(self, entry, stat.S_IFREG)
            if alt is not None:
                self._request(ndx, entry, st=alt[1], new=False, path=alt[0])
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

    def _request(self, ndx, entry, st=None, new=False, redo=False, path=None) -> None:
        cfg = self.cfg
        iflags = ITEM_TRANSFER
        if new:
            iflags |= ITEM_IS_NEW
        elif st is not None:
            if st.st_size != entry.size:
                iflags |= ITEM_REPORT_SIZE
            if cfg.times and time_differs(st, entry, cfg.modify_window):
                iflags |= ITEM_REPORT_TIME
            if cfg.checksum_files and not redo:     # (the redo phase turns -c off)
                iflags |= ITEM_REPORT_CHANGE
            iflags |= self._attr_flags(entry, st, path) & ~ITEM_REPORT_TIME   # path: a DIR copy
        if self.xattrs is not None and new:
            iflags |= self.xattrs.flags(entry, None)
        self.requested[ndx] += 1
        if entry.hlink is not None:
            self.hlink_sent.add(ndx)     # its followers wait for it (hlinks.finish_hard_links)
        basis_type = xname = None
        if self.fuzzy is not None:
            self.fuzzy.taken.add(entry.name)     # never the basis of another file
            fz = self.fuzzy_basis.pop(ndx, None)
            if fz is not None and not redo:
                basis_type, xname = fz
                iflags |= ITEM_BASIS_TYPE_FOLLOWS | ITEM_XNAME_FOLLOWS
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
            if self.xattrs is not None:
                self._backup_xattrs(entry.name, backup)
            if not cfg.whole_file:
                self.basis[ndx] = backup
                self.backup_basis.add(ndx)
                basis_type = FNAMECMP_BACKUP
                iflags |= ITEM_BASIS_TYPE_FOLLOWS
        iflags = time_item(self, entry, iflags, xname)
        out = encode_item(self.ndx_out, ndx, iflags, basis_type, xname)
        if self.xattrs is not None:
            out += self.xattrs.tail(entry, iflags)
        if self.copier is not None and not redo and not cfg.dry_run \
                and self._copied_locally(ndx, entry, st is None, bool(iflags & ITEM_IS_NEW)):
            self.wire.write(out)     # no sum head: a transfer without data
            return
        self.wire.write(out)
        if not cfg.dry_run:
            from .basis import send_sums       # loads with the first file asked for
            send_sums(self, entry, redo, self.basis.get(ndx, entry.name))

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

    # ---- shared with the parts in hlinks, altdest, basis, objects, delete -----------------
    def _succeeded(self, ndx: int, entry) -> None:
        """--remove-source-files: this entry is in place (never a directory)."""
        if self.success is not None:
            self.success(ndx, entry.name)

    def _fail(self, text: str) -> None:
        self.failed |= IOERR_GENERAL
        self.log.error(text)

    def _owner_refused(self, entry, op: str, e: OSError) -> None:
        self._fail(f"rsync: [generator] {op} \"{show(os.path.abspath(self.tree.path(entry.name)))}\" "
                   f"failed: {e.strerror} ({e.errno})")


