"""The receiving side of a session: receive and check the file list, list
it (a client listing a remote source), or set up the destination and run
the generator (a thread) and the receiver over it, then fold their outcome
into the exit code."""

from __future__ import annotations

import os
import threading
from _queue import SimpleQueue     # queue.SimpleQueue, without queue.py and heapq
import time

from .errors import PysyncError, UnsupportedError, exit_code_for
from .io.attrs import AttrPolicy, NewPerms
from .io.prefetch import start_warmer
from .io.tree import DestTree
from .protocol.constants import IOERR_DEL_LIMIT, IOERR_GENERAL, MUNGE_PREFIX
from .protocol.flist import EndOfList, FlistDecoder, decode_id_list
from .protocol.flist_sort import sort_and_clean
from .text import show
from .destination import MissingTree, check_parents, get_local_name
from .engine.generator import Generator
from .engine.receiver import Receiver
from .engine.remove import SuccessNotifier
from .engine.idmap import IdMapper

__all__ = ["recv_flist", "run_listing", "run_receiver"]


def recv_flist(sess, dest: bytes | None = None):
    """The file list; ``dest``: the destination, whose names are looked up
    while the list arrives (io/prefetch.py; run_receiver stops that)."""
    warmer = None if dest is None or sess.cfg.list_only else start_warmer(dest)
    sess.warmer = warmer
    try:
        out = _recv_flist(sess, warmer)
    except BaseException:
        _stop_warmer(sess)
        raise
    if warmer is not None and not warmer.running:
        _stop_warmer(sess)      # a short list: nothing was started
    return out


def _stop_warmer(sess) -> None:
    warmer = getattr(sess, "warmer", None)
    if warmer is not None:
        sess.warmer = None
        warmer.stop()


def _recv_flist(sess, warmer):
    sess.report.log_line("receiving file list")
    sess.report.flist_start(receiving=True)
    counting = sess.report.counting_flist()
    dec = FlistDecoder(sess.cfg.flist_opts, sess.xattr_policy().storable)
    entries = []
    t0 = time.monotonic()
    before = sess.wire.bytes_read
    done = False
    while not done:
        batch = sess.wire.read(dec.decode_batch)
        if warmer is not None:
            warmer.feed(batch)
        # A batch is entries, the last of them maybe the list's end.
        if batch[-1].__class__ is EndOfList:
            end = batch.pop()
            if not sess.cfg.ignore_errors:
                sess.io_error |= end.io_error
            done = True
        before_batch = len(entries)
        entries += batch
        if counting:
            for n in range(before_batch - before_batch % 100 + 100, len(entries) + 1, 100):
                sess.report.flist_count(n)
    fo = sess.cfg.flist_opts
    uid_names = gid_names = {}
    if not fo.numeric_ids:
        if fo.uid or fo.acls:
            uid_names = sess.wire.read(decode_id_list, fo.id0_names)
        if fo.gid or fo.acls:
            gid_names = sess.wire.read(decode_id_list, fo.id0_names)
    sess.acl_decoder = dec.acls
    sess.report.stats.flist_xfertime = int((time.monotonic() - t0) * 1000)
    sess.report.stats.flist_size = sess.wire.bytes_read - before
    if not sess.am_server:
        # --trust-sender also trusts the sender with our own rules.
        _check_names(entries, None if sess.opts.trust_sender else sess.cfg.filters, sess.implied)
    if sess.cfg.munge_links:
        # --munge-links (this side's own option): no received symlink
        # resolves; a sender with the option takes the prefix off again
        for e in entries:
            if e.link is not None:
                e.link = MUNGE_PREFIX + e.link
    if sess.cfg.chmod:
        from .engine.chmod import tweak_mode
        for e in entries:
            if e.mode and not e.is_link:
                e.mode = tweak_mode(e.mode, sess.cfg.chmod)
    flist = sort_and_clean(entries, consume=True)     # entries is empty from here
    check_parents(flist)
    if sess.opts.prune_empty_dirs:
        from .engine.prune import prune_empty_dirs
        prune_empty_dirs(flist, sess.cfg.filters)
    sess.report.flist_done(receiving=True, count=len(flist))
    return flist, uid_names, gid_names


def _check_names(entries, filters, implied) -> None:
    """A pulled list must respect our own rules and hold only the names we
    asked for (CVE-2022-29154); an implied parent the sender flags as a
    content directory is downgraded.  upstream: flist.c recv_file_entry()"""
    if filters is None and not implied:
        return
    for e in entries:
        if e.name == b"." or e.name == b"/.":
            if implied:
                implied.downgrade(e)
            continue
        if filters is not None and filters.excluded(e.name, e.is_dir):
            raise UnsupportedError(
                f"ERROR: rejecting excluded file-list name: {show(e.name)}", 4)
        if implied:
            if not implied.allowed(e.name, e.is_dir):
                raise UnsupportedError(
                    f"ERROR: rejecting unrequested file-list name: {show(e.name)}", 4)
            implied.downgrade(e)


def run_listing(sess, flist, uid_names, gid_names) -> int:
    """A client listing a remote source (rsync's list_only receiver):
    print the list, then end the run like a transfer that needs nothing."""
    from .listing import listing_lines
    for line in listing_lines(flist, sess.opts):
        sess.log.info(line)
    sess.cfg.list_only = True
    sess.cfg.delete = False
    if not flist:
        return exit_code_for(sess.io_error)
    return run_receiver(sess, None, flist, uid_names, gid_names)


def _name_maps(sess, flist, uid_names, gid_names, uid_map, gid_map):
    """--usermap/--groupmap (and --chown): their rules first, for every id
    of the list; id 0 is "root" when the sender does not name it."""
    from .engine.idmap import mapped_ids, parse_name_map
    o, fo = sess.opts, sess.cfg.flist_opts
    out = []
    for text, users, names, base in ((o.usermap, True, uid_names, uid_map),
                                     (o.groupmap, False, gid_names, gid_map)):
        if not text:
            out.append(base)
            continue
        rules = parse_name_map(text, users, sess.log)
        names = dict(names)
        if 0 not in names and not fo.id0_names and not o.numeric_ids:
            names[0] = b"root"
        ids = {e.uid if users else e.gid for e in flist}
        out.append(mapped_ids(ids, names, rules, base))
    return out[0], out[1]


def _open_temp_dir(tdir: str, root) -> int:
    """-T DIR, checked as rsync's do_recv does (relative to the destination
    directory; to the current one in a dry run into a missing one)."""
    import stat as _stat
    from .errors import FileIOError, SyntaxUsageError
    path = os.path.join(root if root is not None else b".", os.fsencode(tdir))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SyntaxUsageError(f"The temp-dir does not exist: {tdir}") from None
    except OSError as e:
        raise FileIOError(f"Failed to stat temp-dir {tdir}: {e.strerror}") from None
    if not _stat.S_ISDIR(st.st_mode):
        raise SyntaxUsageError(f"The temp-dir is not a directory: {tdir}")
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def run_receiver(sess, dest: bytes, flist, uid_names, gid_names) -> int:
    try:
        return _run_receiver(sess, dest, flist, uid_names, gid_names)
    finally:
        _stop_warmer(sess)


def _run_receiver(sess, dest: bytes, flist, uid_names, gid_names) -> int:
    cfg, o = sess.cfg, sess.opts
    stats = sess.report.stats
    stats.count_flist(flist)
    copier = None
    if sess.offload is not None:
        from .engine.offload import LocalCopier  # local copies only
        copier = LocalCopier(sess.offload)
        copier.receive_table()
    idmap = IdMapper()
    uid_map = {} if o.numeric_ids else idmap.map_uids(uid_names, o.am_root < 0)
    gid_map = {} if o.numeric_ids else idmap.map_gids(gid_names)
    if o.usermap or o.groupmap:
        uid_map, gid_map = _name_maps(sess, flist, uid_names, gid_names, uid_map, gid_map)
    policy = AttrPolicy(perms=o.perms, owner=o.owner, group=o.group, times=o.times,
                        uid_map=uid_map, gid_map=gid_map,
                        omit_dir_times=bool(o.omit_dir_times), omit_link_times=o.omit_link_times,
                        am_root=o.am_root, atimes=bool(o.atimes), executability=o.executability)
    policy.modify_window = o.modify_window
    if cfg.acls and not o.numeric_ids and getattr(sess, "acl_decoder", None) is not None:
        sess.acl_decoder.map_ids(idmap.map_uids(uid_names), idmap.map_gids(gid_names))
    if cfg.list_only:
        root, created = None, False
    else:
        root, created = get_local_name(flist, dest, sess.log, cfg.dry_run, sess.report,
                                       mkpath=o.mkpath)
    if root is not None:
        if o.backup:
            from .io.backup import Backups
            cfg.backups = Backups(root, None if o.backup_dir is None else os.fsencode(o.backup_dir),
                                  None if o.suffix is None else os.fsencode(o.suffix),
                                  o.delete_excluded, o.owner, o.group, o.times)
    # --link-dest & co: a relative DIR is relative to the destination (by
    # name when a dry run has not made it).
    if root is not None:
        cfg.alt_dests = [(kind, os.path.join(root, os.fsencode(d))) for kind, d in o.alt_dests]
    else:
        base = os.fsencode(dest or b".")
        cfg.alt_dests = [(kind, os.path.normpath(os.path.join(base, os.fsencode(d))))
                         for kind, d in o.alt_dests]
    if o.temp_dir is not None and not cfg.list_only:
        cfg.temp_dir_fd = _open_temp_dir(o.temp_dir, root)
    if root is None:           # dry run into a directory that does not exist
        root_tree = None
    else:
        root_tree = DestTree(root, keep_dirlinks=cfg.keep_dirlinks)
        if not o.perms:
            policy.new_perms = NewPerms(root_tree, policy.umask)   # a default ACL's say
    to_gen = SimpleQueue()          # (what, value) from the receiver to the generator
    # Outstanding requests per ndx, written by the generator and taken back
    # by the receiver: a byte per entry (a dict held every ndx requested).
    requested = bytearray(len(flist))
    tree = root_tree if root_tree is not None else MissingTree(dest or b".")
    gen = Generator(sess.wire, flist, tree, cfg, policy, sess.log, sess.report, stats,
                    to_gen, requested, lambda: sess.io_error)
    if created:
        gen.created_dirs.add(b".")
    recv = Receiver(sess.wire, flist, tree, cfg, policy, sess.log, sess.report, stats,
                    to_gen, requested)
    recv.basis = gen.basis
    if copier is not None and root_tree is not None:
        copier.bind(root_tree, policy, cfg, recv.write_mode)
        gen.copier = copier
    recv.offloaded = gen.offloaded
    recv.backup_basis = gen.backup_basis
    if cfg.remove_source_files and not cfg.dry_run:
        gen.success = recv.success = SuccessNotifier(sess.wire, tree, cfg.local_server)

    def no_send(ndx):
        if 0 <= ndx < len(requested) and requested[ndx]:
            requested[ndx] -= 1
    sess.no_send = no_send
    errors = []

    def fail(e):
        # First error wins.  Keep draining the peer's data (discarded)
        # so neither side blocks, tell the peer why we stop, and
        # half-close: the peer reads our last frame, then EOF.
        if not errors:
            errors.append(e)
        if copier is not None:
            copier.cancel()
        sess.wire.drain_messages(0)
        if isinstance(e, PysyncError):
            sess.wire.send_error_exit(e.code)
        sess.wire.shutdown_write()

    def gen_main():
        try:
            gen.run()
        except BaseException as e:
            fail(e)
    sess.wire.flush_on_wait = False
    t = threading.Thread(target=gen_main, name="generator", daemon=True)
    if getattr(sess, "warmer", None) is not None:
        # No more names; the generator's own lookups take over once the
        # names already queued are looked up (run_receiver joins it).
        sess.warmer.finish()
    try:
        # Started inside the try: a signal that lands while start() waits
        # for the thread must still reach the join below, or the process
        # could end while the generator holds a temp file (an offloaded
        # copy) that its cleanup would have removed.
        t.start()
        recv.run()
    except BaseException as e:
        to_gen.put(("abort", e))
        fail(e)
    if t.ident is not None:
        t.join()
    if root_tree is not None:
        root_tree.close()
    if cfg.temp_dir_fd is not None:
        os.close(cfg.temp_dir_fd)
        cfg.temp_dir_fd = None
    if errors:
        raise errors[0]
    sess.io_error |= recv.io_error | gen.failed
    if recv.del_stats is not None:
        stats.deleted = recv.del_stats
    else:       # our own generator's deletions (--delete, replaced types, missing args)
        stats.deleted = gen.del_stats
    if recv.remote_stats is not None:
        rs = recv.remote_stats
        stats.total_size = rs.total_size
    if gen.skipped_deletes:
        sess.log.warning(f"Deletions stopped due to --max-delete limit "
                         f"({gen.skipped_deletes} skipped)")
        sess.io_error |= IOERR_DEL_LIMIT
    return exit_code_for(sess.io_error | (IOERR_GENERAL if sess.xfer_error else 0))
