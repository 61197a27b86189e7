"""The sending side of a session: scan the sources, send the file list and
the id lists, then run the Sender over it; with --remove-source-files, the
remover that acts on the receiving side's MSG_SUCCESS."""

from __future__ import annotations

import time

from .errors import exit_code_for
from .protocol.constants import MSG_ERROR_XFER, MSG_INFO, RERR_PARTIAL
from .protocol.flist import FlistEncoder, encode_end, encode_id_list
from .protocol.flist_sort import sort_and_clean
from .protocol.mux import encode_frame
from .engine.idmap import IdMapper
from .engine.remove import SourceRemover
from .engine.scan import Scanner
from .engine.sender import Sender
from .io.prefetch import ScanAhead

__all__ = ["run_sender", "acl_ids"]


def run_sender(sess, sources) -> int:
    cfg = sess.cfg
    sess.report.log_line("building file list")
    sess.report.flist_start(receiving=False)
    t0 = time.monotonic()
    scanner = Scanner(cfg, sess.log, cfg.file_checksum if cfg.checksum_files else None,
                      cfg.filters)
    scanner.verbose = sess.opts.verbose
    if sess.report.counting_flist():
        scanner.counter = sess.report.flist_count
    # Ready before the list goes out: the peer may report at once.
    remover = _source_remover(sess) if cfg.remove_source_files else None
    before = sess.wire.bytes_written
    # The list goes out while it is built (rsync's sender writes each entry
    # as it makes it): the receiver decodes while we still walk.
    enc = FlistEncoder(cfg.flist_opts)
    scanner.emit = lambda batch: sess.wire.write(enc.encode_batch(batch))
    if cfg.recursive:
        scanner.ahead = ScanAhead()     # the walk's next directories, read early
    try:
        entries = scanner.scan(sources)
    finally:
        if scanner.ahead is not None:
            scanner.ahead.stop()
    stats = sess.report.stats
    stats.flist_buildtime = max(1, int((time.monotonic() - t0) * 1000))
    t1 = time.monotonic()
    # --ignore-errors: the list's end says nothing went wrong (flist.c).
    sess.wire.write(encode_end(0 if cfg.ignore_errors else scanner.io_error))
    fo = cfg.flist_opts
    if not fo.numeric_ids and (fo.uid or fo.gid or fo.acls):
        # With -A both lists go, with the ids named in ACLs (uidlist.c).
        idmap = IdMapper()
        users = {e.uid for e in entries} if fo.uid else set()
        groups = {e.gid for e in entries} if fo.gid else set()
        if fo.acls:
            acl_users, acl_groups = acl_ids(entries)
            users |= acl_users
            groups |= acl_groups
        if fo.uid or fo.acls:
            sess.wire.write(encode_id_list(idmap.user_names(users),
                                           idmap.user_name(0), fo.id0_names))
        if fo.gid or fo.acls:
            sess.wire.write(encode_id_list(idmap.group_names(groups),
                                           idmap.group_name(0), fo.id0_names))
    # "done" before the list's last frame goes: the receiver's first
    # lines ("created directory") answer it and must come after.
    sess.report.flist_done(receiving=False, count=len(entries))
    sess.wire.flush()
    stats.flist_size = sess.wire.bytes_written - before
    stats.flist_xfertime = int((time.monotonic() - t1) * 1000)
    sess.io_error |= scanner.io_error
    flist = sort_and_clean(entries, consume=True)     # entries (the scanner's) is empty now
    if remover is not None:
        remover.set_flist(flist)
    stats.count_flist(flist, sending=True)
    if not flist and sess.am_server:
        return exit_code_for(sess.io_error, RERR_PARTIAL if scanner.xfer_failed else 0)
    sender = Sender(sess.wire, flist, cfg, sess.log, sess.report, stats)
    if sess.opts.max_alloc is not None:         # 0: no limit
        sender.max_alloc = sess.opts.max_alloc or 1 << 62
    if sess.offload is not None:
        from .engine.offload import SourceTable  # local copies only
        sender.offload = SourceTable(sess.offload)
        sender.offload.send(flist)
    sender.io_error = sess.io_error
    if remover is not None:
        sender.after_read = remover.catch_up
    try:
        sender.run()
        if remover is not None:
            remover.catch_up(everything=True)
    finally:
        if sender.ahead is not None:
            sender.ahead.close()
    sess.io_error |= sender.io_error
    if sender.del_stats is not None:
        stats.deleted = sender.del_stats
    failed = (remover is not None and remover.failed) or scanner.xfer_failed
    return exit_code_for(sess.io_error, RERR_PARTIAL if failed else 0)


def _source_remover(sess) -> SourceRemover:
    """--remove-source-files: act on the receiving side's MSG_SUCCESS.
    A server's lines go to the client as messages (posted, as the reader
    thread's are)."""
    if sess.am_server:
        wire = sess.wire

        def post(tag):
            return lambda text: wire.post_msg(
                encode_frame(tag, (text + "\n").encode("utf-8", "surrogateescape")))
        info, xfer_error = post(MSG_INFO), post(MSG_ERROR_XFER)
    else:
        info, xfer_error = sess.log.info, sess.log.error
    wire, cfg = sess.wire, sess.cfg
    remover = SourceRemover(sess.opts.verbose, info, xfer_error, cfg.copy_links,
                            lambda: wire.data_received, lambda: wire.data_read,
                            cfg.copy_links or cfg.copy_dirlinks or cfg.copy_unsafe_links)
    sess.on_success = remover.success
    return remover


def acl_ids(entries) -> tuple:
    """(user ids, group ids) named in the entries' ACLs."""
    users, groups = set(), set()
    for e in entries:
        for acl in (e.acl, e.def_acl):
            for i, _p, is_user in (acl.names if acl is not None else ()):
                (users if is_user else groups).add(i)
    return users, groups
