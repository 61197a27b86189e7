"""Hard-link groups on the receiving side (hlink.c): one member of each
group, its leader, gets the data; the others, its followers, are linked to
it once it is in place (finish_hard_link), in rsync's order.  A leader
that is skipped (--append) hands the group to a new one.  The Generator
keeps the state (leader_ndx, group_members, hlink_followers); these
functions decide and link."""

from __future__ import annotations

import os
import stat

from ..io.replace import temp_name
from ..protocol.constants import (ITEM_IS_NEW, ITEM_LOCAL_CHANGE, ITEM_REPORT_SIZE, ITEM_REPORT_XATTR,
                                  ITEM_XNAME_FOLLOWS, SIGNIFICANT_ITEM_FLAGS)
from ..protocol.ints import encode_shortint, encode_vstring
from ..text import show
from .objects import remove_in_way, time_item

__all__ = ["pick_leader", "leave_group", "follows_leader", "queue_follower", "member_basis",
           "finish_hard_links"]


def pick_leader(gen, members: list) -> int:
    """The member of a hard-link group that gets the data: the last one,
    unless one is already there as a regular file, or is missing here
    but has a basis to start from; then the first such one (so --inplace
    updates the file that exists).  rsync's generator lets a missing
    member wait for a later one only when it found nothing to build it
    from (recv_generator's F_HLINK_NOT_LAST, after the --*-dest,
    --partial-dir and -y lookups)."""
    for m in members[:-1]:
        entry = gen.flist[m]
        try:
            if stat.S_ISREG(gen.tree.lstat(entry.name).st_mode):
                return m
        except OSError:
            pass
        if _has_basis(gen, entry):
            return m
    return members[-1]


def _has_basis(gen, entry) -> bool:
    cfg = gen.cfg
    if cfg.alt_dests and _leads_from_dir(gen, entry):
        return True
    if cfg.partial_dir is not None:
        from .basis import partial_path
        try:
            if stat.S_ISREG(os.lstat(partial_path(gen, entry.name)).st_mode):
                return True
        except OSError:
            pass
    if cfg.fuzzy and getattr(gen.tree, "dir_fd", None) is not None:
        finder = gen.fuzzy or getattr(gen, "hlink_fuzzy", None)
        if finder is None:      # -W: no basis is used, but rsync looks all the same
            from .fuzzy import FuzzyFinder
            finder = gen.hlink_fuzzy = FuzzyFinder(gen.tree, [d for _, d in cfg.alt_dests],
                                                   cfg.fuzzy)
        return finder.find(entry) is not None
    return False


def _leads_from_dir(gen, entry) -> bool:
    """A member missing here with a regular file in a --*-dest DIR
    (try_dests_reg): that copy is linked, copied or the basis of its
    delta, and the member leads; only an identical copy with
    --compare-dest leaves the group to a later member."""
    from .altdest import alt_copies     # (--*-dest's module, loaded with the option)
    found = None
    for kind, path, ast in alt_copies(gen, entry):
        if not stat.S_ISREG(ast.st_mode):
            continue
        found = kind
        if gen._up_to_date(entry, ast, path) and not gen._attr_flags(entry, ast, path, probe=True):
            return kind != "compare"
    return found is not None


def leave_group(gen, ndx: int, entry) -> None:
    """A member skipped by --existing, --ignore-existing, -u or --append
    (rsync's handle_skipped_hlink): it is neither linked nor linked to.
    A skipped leader hands the group to a new one; one the walk has
    passed already is generated now."""
    group = entry.hlink
    members = [m for m in gen.group_members.get(group, ()) if m != ndx]
    gen.group_members[group] = members
    if gen.leader_ndx.get(group) != ndx:
        return
    if not members:
        gen.leader_ndx.pop(group, None)
        return
    new = gen.leader_ndx[group] = pick_leader(gen, members)
    if new < ndx:
        gen.hlink_followers = [(n, e) for n, e in gen.hlink_followers if n != new]
        gen._generate(new, gen.flist[new])


def leader_blocked(gen, ndx: int, entry) -> None:
    """A leader that could not make way for its file (a directory that
    stays): rsync never finishes it, so the group's data goes to another
    member, and this one is linked to it at the end like a follower (which
    tries, and fails, to make way again)."""
    group = entry.hlink
    members = [m for m in gen.group_members.get(group, ()) if m != ndx]
    if gen.leader_ndx.get(group) != ndx or not members:
        return
    new = gen.leader_ndx[group] = pick_leader(gen, members)
    gen.hlink_followers.append((ndx, entry))
    if new < ndx:
        gen.hlink_followers = [(n, e) for n, e in gen.hlink_followers if n != new]
        gen._generate(new, gen.flist[new])


def follows_leader(gen, ndx: int, entry) -> bool:
    """A member listed after its group's leader, which the walk has
    handled (sent or found up to date): rsync's hard_link_check links it
    before -u looks at its time, so a newer file there is replaced."""
    lndx = gen.leader_ndx.get(entry.hlink)
    return lndx is not None and lndx < ndx


def queue_follower(gen, ndx: int, entry, st) -> None:
    """A follower waits for its leader.  One listed before its leader
    first has what stands at its name removed when that is not a file,
    as rsync's generator does when it meets it (a directory that cannot
    go says so then, and again when the link is tried)."""
    if st is not None and not stat.S_ISREG(st.st_mode) and gen.leader_ndx[entry.hlink] > ndx:
        remove_in_way(gen, entry, st)
    gen.hlink_followers.append((ndx, entry))


def member_basis(gen, ndx: int, entry) -> None:
    """A hard-link leader with no file of its own: an existing member
    of its group makes a good basis (rsync does the same)."""
    for m in gen.group_members[entry.hlink]:
        if m == ndx:
            continue
        try:
            mst = gen.tree.lstat(gen.flist[m].name)
        except OSError:
            continue
        if stat.S_ISREG(mst.st_mode) and mst.st_size:
            gen.basis[ndx] = gen.flist[m].name
            break


def finish_hard_links(gen, redo: set, late: bool = False) -> None:
    """Link each follower to its group's leader (hlink.c finish_hard_link).
    Sent as itemize records with the leader's name (ITEM_XNAME_FOLLOWS),
    so the client logs "name => leader" in rsync's order: groups in
    leader order; in a group the followers after the leader in list
    order, then those before it from last to first (rsync chains each
    member after the one before it, and the ones before the leader wait
    for it in reverse).  Followers of a leader still waiting for its redo
    are linked at the end (late)."""
    if not gen.hlink_followers:
        return
    by_group = {}
    for ndx, entry in gen.hlink_followers:
        by_group.setdefault(entry.hlink, []).append((ndx, entry))
    pending = []
    for group, lndx in sorted(gen.leader_ndx.items(), key=lambda kv: kv[1]):
        members = by_group.get(group)
        if not members:
            continue
        if group in gen.hlink_compared:
            _compared_followers(gen, members)
            continue
        if lndx in redo and not late:
            pending += members
            continue
        lname = gen.flist[lndx].name
        after = [m for m in members if m[0] > lndx]
        before = [m for m in members if m[0] < lndx]
        for ndx, entry in after + before[::-1]:
            _link_one(gen, ndx, entry, lname, itemize=not late, before_leader=ndx < lndx,
                      leader_sent=lndx in gen.hlink_sent)
    gen.hlink_followers = pending


def _compared_followers(gen, members) -> None:
    """The leader matched its --compare-dest copy and is not in the
    destination: rsync links nothing to it (the members before it wait
    for a leader that never finishes), silently and without an error.  A
    follower that is here already still gets its own look in DIR, as
    rsync's generator gave it (an identical copy there removes it)."""
    from .altdest import try_alt_dests
    for ndx, entry in members:
        try:
            st = gen.tree.lstat(entry.name)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            try_alt_dests(gen, ndx, entry, st)


def _link_one(gen, ndx, entry, lname: bytes, itemize: bool, before_leader: bool = False,
              leader_sent: bool = False) -> None:
    tree = gen.tree
    try:
        try:
            dfd, base = tree.locate(entry.name)
            st = os.stat(base, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            st = None       # (a dry run into a destination that is not there: no tree)
        changed = 0
        if st is not None:
            # A follower that is not yet the leader's inode is itemized
            # against what it was (hlink.c maybe_hard_link -> itemize).
            changed = gen._attr_flags(entry, st, probe=True)
            if st.st_size != entry.size:    # whatever it is (itemize compares st_size)
                changed |= ITEM_REPORT_SIZE
        lst = _leader_stat(gen, lname)
        if st is not None and lst is not None and (st.st_ino, st.st_dev) == (lst.st_ino, lst.st_dev):
            # Already the leader's inode (in a dry run, the one it has
            # before the run): itemized, with no name after it, only when
            # an attribute still differs (maybe_hard_link).
            if itemize and changed & SIGNIFICANT_ITEM_FLAGS:
                _send_item(gen, ndx, entry, ITEM_LOCAL_CHANGE | ITEM_XNAME_FOLLOWS | changed, b"")
            gen._succeeded(ndx, entry)
            return
        if st is not None and stat.S_ISDIR(st.st_mode) and not remove_in_way(gen, entry, st):
            return          # (a dry run says what a real one would)
        if not gen.cfg.dry_run:
            ldfd, lbase = tree.locate(lname)
            if st is not None and gen.cfg.backups is not None and not stat.S_ISDIR(st.st_mode):
                gen.cfg.backups.keep(entry.name)     # -b: what the link replaces (maybe_hard_link)
            tmp = temp_name(base)
            os.link(lbase, tmp, src_dir_fd=ldfd, dst_dir_fd=dfd, follow_symlinks=False)
            os.rename(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd)
            if st is not None and gen.xattrs is not None:
                # rsync reads the follower's xattrs once it is linked: the
                # leader's, not those of the inode it replaced.
                changed = (changed & ~ITEM_REPORT_XATTR) | gen.xattrs.flags(entry, lst, probe=True)
    except OSError as e:
        gen._fail(f"rsync: [generator] link \"{show(tree.path(entry.name))}\" => "
                  f"{show(lname)} failed: {e.strerror} ({e.errno})")
        return
    # A follower listed before its leader had what was there and not a
    # file (a directory, a symlink) removed when rsync's generator met it:
    # new; one after the leader is compared with it.
    new = st is None or before_leader and not stat.S_ISREG(st.st_mode)
    # Its copy in DIR counts only when the leader was done at once: one
    # whose data came has its followers wait, and they are new (rsync's
    # finish_hard_link, not hard_link_check).
    if st is None and not before_leader and gen.cfg.alt_dests and not gen.cfg.dry_run \
            and not leader_sent:
        alt = _follower_in_dir(gen, entry, lname)
        if alt is True:
            gen._succeeded(ndx, entry)      # the leader is its DIR copy: no line
            return
        if alt is not None:
            new, changed = False, alt
    iflags = time_item(gen, entry, ITEM_LOCAL_CHANGE | ITEM_XNAME_FOLLOWS |
                       (ITEM_IS_NEW if new else changed), lname)
    if itemize:
        _send_item(gen, ndx, entry, iflags, lname)
    else:
        gen.report.item(entry, iflags, lname)
    gen._succeeded(ndx, entry)


def _leader_stat(gen, lname: bytes):
    """The leader's lstat; in a dry run None when it is not there (rsync
    then compares the follower with a zeroed stat: never the same), or
    the --link-dest copy a real run would have linked there."""
    if gen.cfg.dry_run and lname in gen.dry_linked:
        return gen.dry_linked[lname]
    try:
        ldfd, lbase = gen.tree.locate(lname)
        return os.stat(lbase, dir_fd=ldfd, follow_symlinks=False)
    except FileNotFoundError:
        if gen.cfg.dry_run:
            return None
        raise


def _follower_in_dir(gen, entry, lname: bytes):
    """A follower after its leader, missing here, is itemized against its copy in DIR
    (hlink.c hard_link_check): with --link-dest, True when that copy is
    the inode it was just linked to (nothing to show); otherwise the
    attribute flags against a copy with the same size and mtime, or None
    (new)."""
    tree = gen.tree
    try:
        ldfd, lbase = tree.locate(lname)
        lst = os.stat(lbase, dir_fd=ldfd, follow_symlinks=False)
    except OSError:
        return None
    from .altdest import alt_copies
    found = None
    for kind, path, ast in alt_copies(gen, entry):
        if kind == "link":
            if (ast.st_dev, ast.st_ino) == (lst.st_dev, lst.st_ino):
                return True
            continue
        if not stat.S_ISREG(ast.st_mode) or not gen._up_to_date(entry, ast, path):
            continue
        found = gen._attr_flags(entry, ast, path, probe=True)
        if not found:
            break
    return found


def _send_item(gen, ndx, entry, iflags: int, xname: bytes) -> None:
    """The follower's itemize record, with the xattr request that follows
    it when the record reports xattrs (the sender reads one then)."""
    tail = gen.xattrs.tail(entry, iflags) if gen.xattrs is not None else b""
    gen.wire.write(gen.ndx_out.encode(ndx) + encode_shortint(iflags) + encode_vstring(xname) + tail)
