"""The entries the generator makes itself, with no data to move
(generator.c recv_generator): directories, symlinks, devices and special
files, created or brought up to date and itemized; the removal of what
stands where an entry must go; the missing parents of -R
--no-implied-dirs; and the directories' attributes, fixed after their
contents (touch_up_dirs)."""

from __future__ import annotations

import errno
import os
import stat

from ..io.attrs import OwnerError, apply_fd, apply_name, differs, time_differs, wanted_mode
from ..io.replace import temp_name
from ..protocol.constants import (ITEM_IS_NEW, ITEM_LOCAL_CHANGE, ITEM_MATCHED, ITEM_REPORT_ACL,
                                  ITEM_REPORT_CHANGE, ITEM_REPORT_TIME,
                                  ITEM_TRANSFER, ITEM_XNAME_FOLLOWS)
from ..report import progress_names
from ..text import show
from .symlinks import unsafe_symlink

__all__ = ["time_item", "remove_in_way", "gen_dir", "make_parents", "gen_link", "gen_special",
           "touch_up_dirs"]


def time_item(gen, entry, iflags: int, xname: bytes | None = None) -> int:
    """``iflags`` with rsync's "T" where it applies: an existing entry whose
    time is not kept (no -t, or -O/-J for its type) that is transferred or
    changed here gets the time of now, and the record says so, unless it
    was already on its leader's inode (an empty name after it)."""
    fmt = stat.S_IFMT(entry.mode)
    policy = gen.policy
    keep = policy.dir_times if fmt == stat.S_IFDIR else \
        policy.link_times if fmt == stat.S_IFLNK else policy.times
    if not keep and iflags & (ITEM_TRANSFER | ITEM_LOCAL_CHANGE) \
            and not iflags & (ITEM_IS_NEW | ITEM_MATCHED) \
            and (not iflags & ITEM_XNAME_FOLLOWS or xname):
        iflags |= ITEM_REPORT_TIME
    return iflags


def _kind_name(mode: int) -> str:
    """The entry's kind as rsync's "could not make way for new ..." names it."""
    if stat.S_ISREG(mode):
        return "regular file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    return "special file"


def remove_in_way(gen, entry, st) -> bool:
    """Remove what stands where ``entry`` must go (a different type).  A
    dry run changes nothing but says and returns what a real one would
    (a non-empty directory without --delete/--force stays, with its
    error; with them, its contents are listed as deleted)."""
    dry = gen.cfg.dry_run
    if stat.S_ISDIR(st.st_mode):
        if not (gen.cfg.delete or gen.cfg.force):
            err = None
            if dry:
                if os.listdir(gen.tree.dir_fd(entry.name)):
                    err = OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY))
            else:
                dfd, base = gen.tree.locate(entry.name)
                try:
                    os.rmdir(base, dir_fd=dfd)
                except OSError as e:
                    err = e
            if err is not None:
                name = show(entry.name)
                if err.errno == errno.ENOTEMPTY:
                    gen.log.info(f"cannot delete non-empty directory: {name}")
                else:
                    gen._fail(f"rsync: [generator] delete_file: rmdir({name}) failed: "
                              f"{err.strerror} ({err.errno})")
                gen._fail(f"could not make way for new {_kind_name(entry.mode)}: {name}")
                return False
        else:
            # rsync reports the contents it removes, not the directory.
            from .delete import make_room   # --delete / --force only
            if not make_room(gen, entry.name):
                gen._fail(f"could not make way for new {_kind_name(entry.mode)}: "
                          f"{show(entry.name)}")
                return False
        gen.tree.forget(entry.name)
    elif dry:
        pass
    elif gen.cfg.backups is not None:
        gen.cfg.backups.keep(entry.name, move=True)
    else:
        dfd, base = gen.tree.locate(entry.name)
        os.unlink(base, dir_fd=dfd)
    return True


def gen_dir(gen, ndx, entry, st) -> None:
    if st is not None and not stat.S_ISDIR(st.st_mode):
        if not remove_in_way(gen, entry, st):
            return
        st = None
    if entry.name == b"." and b"." in gen.created_dirs:
        st = None           # the destination root we just created
    if st is None:
        if entry.name == b".":
            if gen.acls is not None and b"." in gen.created_dirs:
                gen.acls.apply_by_name(entry)      # the root we just created
        elif gen.cfg.dry_run:
            gen.missing_dirs.add(entry.name)
        elif not _make_dir(gen, ndx, entry):
            return
        else:
            gen.created_dirs.add(entry.name)
            if gen.acls is not None:
                gen.acls.apply_by_name(entry)
        if gen.cfg.delete and gen.cfg.delete_mode in (None, "during") and not gen.cfg.dry_run:
            from .delete import content_dir, io_error_stops
            if content_dir(entry):
                io_error_stops(gen)     # nothing to delete in it, but the warning
        alt = None
        if gen.cfg.alt_dests:
            from .altdest import alt_find  # the option's module loads with it
            alt = alt_find(gen, entry, stat.S_IFDIR)
        if alt is not None:
            # Made here after the --*-dest copy: itemized as a local change
            # when an attribute (xattrs too) differs from it, not at all
            # otherwise (the root too, when the run created it).
            flags = gen._attr_flags(entry, alt[1], alt[0])
            if gen.xattrs is not None and entry.name in gen.created_dirs and not gen.cfg.dry_run:
                gen.xattrs.copy(alt[0], gen.tree.dir_fd(entry.name))   # as its copy's
            if flags:
                gen._item(ndx, entry, ITEM_LOCAL_CHANGE | flags)
            elif gen.cfg.itemize_unchanged:    # -ii: "cd          " (try_dests_non)
                gen._item(ndx, entry, ITEM_LOCAL_CHANGE | ITEM_MATCHED)
        else:
            gen._item(ndx, entry, ITEM_LOCAL_CHANGE | ITEM_IS_NEW)
    else:
        flags = gen._attr_flags(entry, st)
        if flags & ITEM_REPORT_ACL and gen.acls is not None:
            gen.acls.apply_by_name(entry)
        if flags or gen.cfg.itemize_unchanged:
            gen._item(ndx, entry, flags)
        if not gen.cfg.dry_run:
            _early_perms(gen, entry, st)
        if gen.cfg.delete and gen.cfg.delete_mode in (None, "during"):
            from .delete import content_dir, delete_in
            if content_dir(entry):
                delete_in(gen, entry)
    gen.dirs.append((ndx, entry))


def _make_dir(gen, ndx, entry) -> bool:
    """mkdir for a new directory; when that fails (a non-directory in the
    way above it), rsync's itemized line, its two error lines, and none of
    the directory's contents (recv_generator's skip_dir)."""
    try:
        dfd, base = gen.tree.locate(entry.name)
        os.mkdir(base, 0o700, dir_fd=dfd)
        return True
    except OSError as e:
        gen._item(ndx, entry, ITEM_LOCAL_CHANGE | ITEM_IS_NEW)
        gen._fail(f"rsync: [generator] recv_generator: mkdir \"{show(os.path.abspath(gen.tree.path(entry.name)))}\" "
                  f"failed: {e.strerror} ({e.errno})")
        gen.log.error("*** Skipping any contents from this failed directory ***")
        gen.skip_dir = entry.name + b"/"
        return False


def _early_perms(gen, entry, st) -> None:
    """An existing directory takes its permissions before anything in it
    changes, and its owner and group with -o/-g, as recv_generator's
    set_file_attrs: a --backup-dir directory made for a file deleted or
    replaced in it copies them.  Without root a mode lacking u+rwx has it
    added until touch_up_dirs, which also sets the times."""
    policy = gen.policy
    diff = 0 if policy.fake else differs(entry, st, policy) & (2 | 4 | 8)
    if not diff:
        return
    if entry.name == b".":
        where = {"path": gen.tree.root_fd}     # the root by its fd, never the cwd
    else:
        dfd, base = gen.tree.locate(entry.name)
        where = {"path": base, "dir_fd": dfd}
    if diff & (4 | 8):
        uid = policy.uid_map.get(entry.uid, entry.uid) if diff & 4 else -1
        gid = policy.gid_map.get(entry.gid, entry.gid) if diff & 8 else -1
        try:
            os.chown(uid=uid, gid=gid, follow_symlinks="dir_fd" not in where, **where)
        except OSError:
            pass            # touch_up_dirs tries again, and says why it fails
    if diff & 2:
        mode = wanted_mode(entry, policy, st.st_mode)
        if gen.cfg.am_root <= 0:
            mode |= stat.S_IRWXU
        try:
            os.chmod(mode=mode, **where)
        except OSError:
            pass


def make_parents(gen, name: bytes) -> None:
    """-R --no-implied-dirs: missing parents of a name are created with
    default permissions (rsync's make_path)."""
    if gen.cfg.dry_run or getattr(gen.tree, "root_fd", -1) < 0:
        return
    parent = name.rsplit(b"/", 1)[0]
    try:
        st = gen.tree.lstat(parent)
        if stat.S_ISDIR(st.st_mode):
            return
    except OSError:
        pass
    os.makedirs(gen.tree.path(parent), exist_ok=True)


def gen_link(gen, ndx, entry, st) -> None:
    tree = gen.tree
    if gen.cfg.safe_links and unsafe_symlink(entry.link, entry.name):
        # --safe-links: not made, not itemized; named with info "name".
        o = gen.report.opts
        if o.verbose or progress_names(o):
            gen.log.info(f"ignoring unsafe symlink \"{show(entry.name)}\" -> \"{show(entry.link)}\"")
        return
    if st is not None and stat.S_ISLNK(st.st_mode):
        dfd, base = tree.locate(entry.name)
        if _read_link(gen, dfd, base) == entry.link:
            flags = gen._attr_flags(entry, st)
            if flags and not gen.cfg.dry_run:
                apply_name(dfd, base, entry, gen.policy, st, differs(entry, st, gen.policy, True))
            if flags or gen.cfg.itemize_unchanged:
                gen._item(ndx, entry, flags)
            gen._succeeded(ndx, entry)
            return
    # A link where there was none (or something else) is new; a link
    # with another target is a change.
    is_new = st is None or not stat.S_ISLNK(st.st_mode)
    change = ITEM_IS_NEW if is_new else ITEM_REPORT_CHANGE
    alt = _alt_other(gen, entry, st, stat.S_IFLNK)
    if alt == "done":
        return
    if alt is not None and alt != "quiet":
        change = ITEM_REPORT_CHANGE | gen._attr_flags(entry, alt)
    if not is_new and gen.policy.link_times and time_differs(st, entry, gen.cfg.modify_window):
        change |= ITEM_REPORT_TIME
    if st is not None and stat.S_ISDIR(st.st_mode):
        if not remove_in_way(gen, entry, st):
            return
    if not gen.cfg.dry_run:
        try:
            dfd, base = tree.locate(entry.name)
        except NotADirectoryError as e:     # below a non-directory in the way
            gen._fail(f"rsync: [generator] symlink \"{show(os.path.abspath(tree.path(entry.name)))}\" "
                      f"-> \"{show(entry.link)}\" failed: {e.strerror} ({e.errno})")
            return
        tmp = temp_name(base)
        if gen.policy.fake:
            from ..io.fakesuper import write_placeholder
            write_placeholder(dfd, tmp, entry.link)   # --fake-super: a file
        else:
            os.symlink(entry.link, tmp, dir_fd=dfd)
        try:
            apply_name(dfd, tmp, entry, gen.policy, None)
            _backup_before_replace(gen, entry.name, st)
            os.rename(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            os.unlink(tmp, dir_fd=dfd)
            raise
    if alt != "quiet":
        gen._item(ndx, entry, ITEM_LOCAL_CHANGE | change)
    gen._succeeded(ndx, entry)


def gen_special(gen, ndx, entry, st) -> None:
    tree = gen.tree
    want_dev = os.makedev(*entry.rdev) if entry.is_device else 0
    if st is not None and stat.S_IFMT(st.st_mode) == stat.S_IFMT(entry.mode) and \
            (not entry.is_device or st.st_rdev == want_dev):
        flags = gen._attr_flags(entry, st)
        if gen.acls is not None:
            flags = gen.acls.perms_follow(flags)
        if flags and not gen.cfg.dry_run:
            dfd, base = tree.locate(entry.name)
            apply_name(dfd, base, entry, gen.policy, st, differs(entry, st, gen.policy))
            if flags & ITEM_REPORT_ACL and gen.acls is not None:
                gen.acls.apply_by_name(entry)
        if flags or gen.cfg.itemize_unchanged:
            gen._item(ndx, entry, flags)
        gen._succeeded(ndx, entry)
        return
    is_new = st is None or stat.S_IFMT(st.st_mode) != stat.S_IFMT(entry.mode)
    change = ITEM_IS_NEW if is_new else ITEM_REPORT_CHANGE
    alt = _alt_other(gen, entry, st, stat.S_IFMT(entry.mode))
    if alt == "done":
        return
    if alt is not None and alt != "quiet":
        change = ITEM_REPORT_CHANGE | gen._attr_flags(entry, alt)
    if st is not None and stat.S_ISDIR(st.st_mode):
        if not remove_in_way(gen, entry, st):
            return
    if not gen.cfg.dry_run:
        try:
            dfd, base = tree.locate(entry.name)
        except NotADirectoryError as e:     # below a non-directory in the way
            # rsync names the temp name it tried (.NAME.PID)
            head, _, tail = os.path.abspath(tree.path(entry.name)).rpartition(b"/")
            gen._fail(f"rsync: [generator] mknod \"{show(head)}/.{show(tail)}.{os.getpid()}\" "
                      f"failed: {e.strerror} ({e.errno})")
            return
        tmp = temp_name(base)
        try:
            if gen.policy.fake:
                from ..io.fakesuper import write_placeholder
                write_placeholder(dfd, tmp)     # --fake-super: an empty file
            else:
                os.mknod(tmp, stat.S_IFMT(entry.mode) | 0o600, want_dev, dir_fd=dfd)
        except PermissionError as e:
            gen._fail(f"rsync: [generator] mknod \"{show(tree.path(entry.name))}\" failed: "
                      f"{e.strerror} ({e.errno})")
            return
        try:
            # Without -p a device or special file keeps the permissions of
            # what it replaces, whatever that was (generator.c dest_mode).
            kept = st if st is not None and not stat.S_ISDIR(st.st_mode) else None
            apply_name(dfd, tmp, entry, gen.policy, kept)
            if gen.acls is not None:
                gen.acls.apply_by_name(entry, os.path.join(os.path.dirname(entry.name), tmp))
            _backup_before_replace(gen, entry.name, st)
            os.rename(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            os.unlink(tmp, dir_fd=dfd)
            raise
    if alt != "quiet":
        gen._item(ndx, entry, ITEM_LOCAL_CHANGE | change)
    gen._succeeded(ndx, entry)


def _alt_other(gen, entry, st, fmt: int):
    """--*-dest for a symlink, device or special file this run creates
    (altdest.try_alt_other); None without those options."""
    if st is not None or not gen.cfg.alt_dests:
        return None
    from .altdest import try_alt_other  # the option's module loads with it
    return try_alt_other(gen, entry, fmt)


def _read_link(gen, dfd, base: bytes) -> bytes:
    if gen.policy.fake:
        from ..io.fakesuper import read_link
        return read_link(dfd, base, sending=False)
    return os.readlink(base, dir_fd=dfd)


def _backup_before_replace(gen, name: bytes, st) -> None:
    if gen.cfg.backups is not None and st is not None and not stat.S_ISDIR(st.st_mode):
        gen.cfg.backups.keep(name, move=False)


def touch_up_dirs(gen) -> None:
    if gen.cfg.dry_run:
        return
    tree = gen.tree
    for ndx, entry in reversed(gen.dirs):
        try:
            if entry.name == b".":
                st = os.fstat(tree.root_fd)
                if differs(entry, st, gen.policy):
                    try:
                        apply_fd(tree.root_fd, entry, gen.policy, st.st_mode)
                    except OwnerError:
                        # rsync 3.2.7 leaves the root's owner without a
                        # word and sets the rest (seen with CAP_CHOWN gone).
                        import copy
                        unowned = copy.copy(gen.policy)
                        unowned.owner = False
                        apply_fd(tree.root_fd, entry, unowned, st.st_mode)
                continue
            dfd, base = tree.locate(entry.name)
            st = os.stat(base, dir_fd=dfd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode) and gen.cfg.keep_dirlinks:
                # -K: the directory behind the symlink, through its fd.
                fd = tree.dir_fd(entry.name)
                st = os.fstat(fd)
                if differs(entry, st, gen.policy):
                    apply_fd(fd, entry, gen.policy, st.st_mode)
                continue
            if not stat.S_ISDIR(st.st_mode):
                continue
            what = differs(entry, st, gen.policy)
            new_mode = entry.name in gen.created_dirs
            if new_mode:
                what |= 2
            if what:
                apply_name(dfd, base, entry, gen.policy,
                           None if new_mode else st, what)
        except OSError as e:
            gen._fail(f"rsync: [generator] failed to set times on \"{show(tree.path(entry.name))}\": "
                      f"{e.strerror} ({e.errno})")
