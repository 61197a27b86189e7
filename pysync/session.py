"""One rsync session over one duplex stream: handshake, filter list, file
list, the transfer roles, the end of run, and the exit code.

``run_client`` is the side the user started; ``run_server`` is the side
started as ``--server`` (by us over a socketpair, by ssh, or by a stock
rsync client).  The wire order is SPEC.md's; roles own one phase each.
"""

from __future__ import annotations

import os
import queue
import random
import sys
import threading
import time
from dataclasses import dataclass, field

from .errors import (PysyncError, ProtocolViolation, StreamError, SyntaxUsageError, UnsupportedError,
                     exit_text)
from .io.attrs import AttrPolicy
from .io.tree import DestTree
from .protocol.constants import (CF_AVOID_XATTR_OPTIM, CF_ID0_NAMES, CF_VARINT_FLIST_FLAGS, CHECKSUM_NAMES,
                                 COMPRESS_NAMES, IOERR_DEL_LIMIT,
                                 IOERR_GENERAL, IOERR_MASK, IOERR_VANISHED, MSG_DELETED,
                                 MSG_ERROR, MSG_ERROR_EXIT, MSG_ERROR_XFER, MSG_INFO,
                                 MSG_IO_ERROR, MSG_NO_SEND, MSG_SUCCESS, MSG_WARNING,
                                 PROTOCOL_VERSION,
                                 RERR_DEL_LIMIT, RERR_FILEIO, RERR_FILESELECT, RERR_PARTIAL,
                                 RERR_VANISHED)
from .protocol.filesfrom import decode_files_from_name, encode_files_from
from .protocol.filters import decode_filter_rule, encode_filter_list
from .protocol.flist import (EndOfList, FlistDecoder, FlistEncoder, FlistOptions, decode_id_list,
                             encode_end, encode_id_list)
from .protocol.flist_sort import sort_and_clean
from .protocol.handshake import (choose_as_client, choose_as_server, decode_name_list,
                                 decode_seed, decode_version, encode_name_list, encode_seed,
                                 encode_version, negotiate_version, server_compat_flags)
from .protocol.ints import decode_varint, encode_varint
from .protocol.mux import decode_success, encode_frame
from .protocol.checksums import get_checksum
from .report import Report
from .text import show
from .engine.filters import FilterList
from .engine.generator import Generator
from .engine.receiver import Receiver
from .engine.remove import SourceRemover, SuccessNotifier
from .engine.scan import Scanner
from .engine.sender import Sender
from .engine.wire import Wire
from .engine.idmap import IdMapper
from .engine.offload import LocalCopier, SourceTable
from .engine.xattrs import xattr_policy

__all__ = ["SessionConfig", "Log", "run_client_session", "run_server", "exit_code_for"]

_CHECKSUM_ALIASES = {"xxhash": "xxh64"}


class Log:
    """Errors and warnings to stderr, info to stdout (a server's info goes
    to the client once the connection is multiplexed, to stderr before:
    its stdout is the protocol stream)."""

    def __init__(self, am_server: bool, quiet: bool = False, err=None, out=None):
        self.am_server = am_server
        self.quiet = quiet
        self.err = err or sys.stderr
        self.out = out or (sys.stderr if am_server else sys.stdout)
        self._lock = threading.Lock()
        self.errors = 0
        self.logfile = None     # --log-file: every message goes there too (log.c rwrite)
        # A server's info lines go to the client (MSG_INFO), as rsync's do,
        # once the connection is multiplexed.
        self.remote = None

    def _write(self, stream, text):
        if self.logfile is not None:
            self.logfile.write(text)
        with self._lock:
            stream.write(text.rstrip("\n") + "\n")
            stream.flush()

    def error(self, text: str) -> None:
        self.errors += 1
        self._write(self.err, text)

    def warning(self, text: str) -> None:
        self._write(self.err, text)

    def info(self, text: str) -> None:
        if self.quiet or self.remote is not None:
            if self.logfile is not None:
                self.logfile.write(text)
            if not self.quiet:
                self.remote(text)
            return
        self._write(self.out, text)


@dataclass
class SessionConfig:
    protocol: int = PROTOCOL_VERSION
    am_server: bool = False
    am_sender: bool = False
    checksum: object = None
    file_checksum: object = None
    seed: int = 0
    compress: str | None = None
    compress_level: int | None = None
    flist_opts: FlistOptions = field(default_factory=FlistOptions)
    dry_run: bool = False
    whole_file: bool = False
    block_size: int = 0
    delete: bool = False
    delete_mode: str | None = None
    delete_excluded: bool = False
    max_delete: int | None = None
    force: bool = False
    recursive: bool = False
    times: bool = False
    ignore_times: bool = False
    size_only: bool = False
    modify_window: int = 0
    checksum_files: bool = False
    hard_links: bool = False
    filters: object = None
    fsync: bool = False
    preallocate: bool = False
    direct_io: bool = False
    drop_cache: bool = False
    update: bool = False
    ignore_existing: bool = False
    existing: bool = False
    max_size: int | None = None
    min_size: int | None = None
    backups: object = None          # io.backup.Backups on the receiving side
    alt_dests: list = field(default_factory=list)   # (kind, absolute dir bytes)
    partial: bool = False
    partial_dir: bytes | None = None
    inplace: bool = False           # write into the destination file itself
    append: int = 0                 # 1 --append, 2 --append-verify (implies inplace)
    delay_updates: bool = False
    remove_source_files: bool = False
    local_server: bool = False      # the two processes of one local copy
    one_file_system: bool = False
    links: bool = False
    devices: bool = False
    specials: bool = False
    relative: bool = False
    implied_dirs: bool = True
    xfer_dirs: bool = False
    itemize_unchanged: bool = False   # -ii / --log-format=%i%I: unchanged items are sent too
    list_only: bool = False         # a client listing a remote source: no transfer
    xattrs: int = 0                 # -X level
    acls: bool = False              # -A
    xattr_optim: bool = False       # rsync's hard-link xattr shortcut (no CF_AVOID_XATTR_OPTIM)


def exit_code_for(io_error: int, code: int = 0) -> int:
    """rsync's mapping of leftover I/O error bits to an exit code."""
    if code:
        return code
    if io_error & IOERR_GENERAL:
        return RERR_PARTIAL
    if io_error & IOERR_VANISHED:
        return RERR_VANISHED
    if io_error & IOERR_DEL_LIMIT:
        return RERR_DEL_LIMIT
    return 0


class _Session:
    """State shared by the roles of one side of a connection."""

    def __init__(self, opts, wire: Wire, am_server: bool, am_sender: bool, report: Report, log: Log):
        self.opts = opts
        self.wire = wire
        self.am_server = am_server
        self.am_sender = am_sender
        self.report = report
        self.log = log
        self.io_error = 0            # bits from the peer (flist end, MSG_IO_ERROR) and our own
        self.xfer_error = False      # MSG_ERROR_XFER seen
        self.remote_exit = None      # code from MSG_ERROR_EXIT
        self.no_send = None          # callback for MSG_NO_SEND
        self.offload = None          # local copy: the side channel (engine/offload.py)
        self.on_success = None       # callback for MSG_SUCCESS (a sender removing files)
        self.cfg = SessionConfig()

    # ---- messages from the peer (reader thread) ---------------------------------------
    def on_message(self, tag: int, payload: bytes) -> None:
        if tag in (MSG_INFO, MSG_ERROR, MSG_WARNING, MSG_ERROR_XFER):
            nl = payload.endswith(b"\n")
            text = show(payload[:-1] if nl else payload) + ("\n" if nl else "")
            if tag == MSG_ERROR_XFER:
                self.xfer_error = True
            self.report.log_line(text)
            if self.am_server:
                sys.stderr.write(text)
                sys.stderr.flush()
            elif tag == MSG_INFO:
                if not self.opts.quiet:
                    sys.stdout.write(text)
                    sys.stdout.flush()
            else:
                sys.stderr.write(text)
                sys.stderr.flush()
        elif tag == MSG_IO_ERROR:
            self.io_error |= int.from_bytes(payload, "little") & IOERR_MASK
        elif tag == MSG_SUCCESS:
            # Only a sender with --remove-source-files acts on it (as rsync,
            # whose successful_send does nothing without the option).
            if self.on_success is not None:
                self.on_success(*decode_success(payload))
        elif tag == MSG_NO_SEND:
            ndx = int.from_bytes(payload, "little", signed=True)
            if self.no_send:
                self.no_send(ndx)
        elif tag == MSG_ERROR_EXIT:
            self.remote_exit = int.from_bytes(payload, "little", signed=True) if payload else 0
        elif tag == MSG_DELETED:
            name = payload[:-1] + b"/" if payload.endswith(b"\0") else payload
            self.report.deleted(name)

    # ---- handshake --------------------------------------------------------------------
    def client_handshake(self) -> None:
        w, o = self.wire, self.opts
        ours = o.protocol or PROTOCOL_VERSION
        w.raw_write(encode_version(ours))
        theirs = w.raw_read(decode_version)
        self.cfg.protocol = _negotiate(ours, theirs)
        compat = w.raw_read(decode_varint)
        if not compat & CF_VARINT_FLIST_FLAGS:
            raise UnsupportedError("the remote rsync is too old (no varint file-list flags); "
                                   "pysync needs rsync 3.2 or later on the other side", 2)
        self._negotiate(compat, client=True)
        self.cfg.seed = w.raw_read(decode_seed)
        self._finish_config(compat)

    def server_handshake(self) -> None:
        w, o = self.wire, self.opts
        ours = o.protocol or PROTOCOL_VERSION
        w.raw_write(encode_version(ours))
        theirs = w.raw_read(decode_version)
        self.cfg.protocol = _negotiate(ours, theirs)
        letters = (o.capabilities or "").lstrip(".0123456789")
        compat = server_compat_flags(letters)
        if not compat & CF_VARINT_FLIST_FLAGS:
            raise UnsupportedError("the client rsync is too old (no 'v' capability); "
                                   "pysync needs rsync 3.2 or later on the other side", 2)
        w.raw_write(encode_varint(compat))
        self._negotiate(compat, client=False)
        seed = o.checksum_seed if o.checksum_seed is not None else random.randint(1, 0x7FFFFFFF)
        w.raw_write(encode_seed(seed))
        self.cfg.seed = seed if seed < 0x80000000 else seed - (1 << 32)
        self._finish_config(compat)

    def _negotiate(self, compat: int, client: bool) -> None:
        o, w = self.opts, self.wire
        send_cs = o.checksum_choice is None
        compress_on = o.compress or o.compress_choice is not None
        send_cz = compress_on and o.compress_choice is None
        cs_list = list(CHECKSUM_NAMES) + ([] if client else ["none"])
        cz_list = list(COMPRESS_NAMES) + ([] if client else ["none"])
        if send_cs:
            w.raw_write(encode_name_list(cs_list))
        if send_cz:
            w.raw_write(encode_name_list(cz_list))
        if send_cs:
            peer = [_CHECKSUM_ALIASES.get(n, n) for n in w.raw_read(decode_name_list)]
            name = (choose_as_client(cs_list, peer, "checksum") if client
                    else choose_as_server(peer, cs_list, "checksum"))
        else:
            name = _valid_checksum(o.checksum_choice.split(",")[0])
        self.cfg.checksum = get_checksum(name)
        fname = o.checksum_choice.split(",")[1] if o.checksum_choice and "," in o.checksum_choice else name
        self.cfg.file_checksum = get_checksum(_valid_checksum(fname))
        self.report.xfer_sum = (self.cfg.checksum.name, self.cfg.checksum.digest_len)
        self.report.file_sum = (self.cfg.file_checksum.name, self.cfg.file_checksum.digest_len)
        if send_cz:
            peer = w.raw_read(decode_name_list)
            cz = (choose_as_client(cz_list, peer, "compress") if client
                  else choose_as_server(peer, cz_list, "compress"))
        elif compress_on:
            cz = _valid_compress(o.compress_choice or "zlib")
        else:
            cz = None
        self.cfg.compress = None if cz in (None, "none") else cz

    def _finish_config(self, compat: int) -> None:
        o, c = self.opts, self.cfg
        c.am_server, c.am_sender = self.am_server, self.am_sender
        c.compress_level = o.compress_level
        c.dry_run = o.dry_run
        # upstream: generator.c itemize() -- "stdout_format_has_i > 1"
        c.itemize_unchanged = ("%I" in (o.log_format or "")) if self.am_server \
            else self.report.out_has_i > 1
        # --append needs the sum head even where -W is the default (rsync's
        # generator turns whole-file off for it).
        c.whole_file = (bool(o.whole_file) or c.checksum.name == "none") and not o.append
        c.block_size = o.block_size
        c.delete = o.delete
        c.delete_mode = o.delete_mode
        c.delete_excluded = o.delete_excluded
        c.max_delete = o.max_delete
        c.force = o.force
        c.recursive = o.recursive
        c.times = o.times
        c.ignore_times = o.ignore_times
        c.size_only = o.size_only
        c.modify_window = o.modify_window
        c.checksum_files = o.checksum
        c.hard_links = o.hard_links
        c.fsync = o.fsync
        c.preallocate, c.direct_io, c.drop_cache = o.preallocate, o.direct_io, o.drop_cache
        c.update, c.ignore_existing, c.existing = o.update, o.ignore_existing, o.existing
        c.max_size, c.min_size = o.max_size, o.min_size
        c.partial = o.partial
        c.partial_dir = os.fsencode(o.partial_dir) if o.partial_dir is not None else None
        c.inplace, c.append = o.inplace or bool(o.append), o.append
        c.delay_updates = o.delay_updates
        c.remove_source_files = o.remove_source_files
        c.one_file_system = o.one_file_system
        c.links, c.devices, c.specials = o.links, o.devices, o.specials
        c.relative, c.implied_dirs = bool(o.relative), o.implied_dirs
        c.xfer_dirs = o.xfer_dirs
        c.xattrs = o.xattrs
        c.acls = o.acls
        c.xattr_optim = c.protocol >= 31 and not compat & CF_AVOID_XATTR_OPTIM
        if getattr(o, "filter_list", None) is not None:
            c.filters = o.filter_list
            o.filter_list = None        # a session's dir-merge state is its own
        else:
            c.filters = FilterList.from_options(o.filters) if o.filters else None
        c.flist_opts = FlistOptions(
            uid=o.owner, gid=o.group, links=o.links, devices=o.devices, specials=o.specials,
            hard_links=o.hard_links, checksum_len=c.file_checksum.digest_len if o.checksum else 0,
            relative=o.relative, id0_names=bool(compat & CF_ID0_NAMES), numeric_ids=o.numeric_ids,
            xattrs=bool(o.xattrs), acls=o.acls)

    def xattr_policy(self):
        """Which xattr names this side reads and stores (io/xattrs.py)."""
        return xattr_policy(self.cfg, self.am_sender)

    # ---- filter list ------------------------------------------------------------------
    def add_filter_texts(self, texts) -> None:
        if self.cfg.filters is None:
            self.cfg.filters = FilterList()
        self.cfg.filters.add_texts(texts)

    def cvs_rules_before_send(self) -> None:
        """-C on a sending client: the CVS rules go to the receiver with
        the others (exclude.c send_filter_list)."""
        if self.opts.cvs_exclude and self.am_sender:
            self.add_filter_texts([b":C", b"-C"])

    def send_filters(self) -> None:
        rules = self.cfg.filters.wire_rules() if self.cfg.filters else []
        self.wire.write(encode_filter_list(rules))
        self.wire.flush()
        if self.opts.cvs_exclude and not self.am_sender:
            # A receiving client keeps its CVS rules to itself.
            self.add_filter_texts([b":C", b"-C"])

    def recv_filters(self) -> None:
        rules = []
        while True:
            r = self.wire.read(decode_filter_rule)
            if r is None:
                break
            rules.append(r)
            if len(rules) > 100_000:
                raise ProtocolViolation("too many filter rules from the peer", 2)
        if rules:
            fl = FilterList.from_wire(rules)
            if self.cfg.filters is None:
                self.cfg.filters = fl
            else:
                self.cfg.filters.extend(fl)
        if self.opts.cvs_exclude and self.am_sender:
            # A sending server adds the CVS rules itself; a receiving one
            # got them from the client (protocol >= 29).
            self.add_filter_texts([b":C", b"-C"])

    # ---- --files-from names on the wire --------------------------------------------------
    def forward_files_from(self, stream: bytes) -> None:
        """Send the --files-from names (already in wire form) to the sender."""
        for i in range(0, len(stream), 1 << 15):
            self.wire.write(stream[i:i + (1 << 15)])
        self.wire.flush()

    def recv_files_from(self, base: bytes) -> list:
        """The names the receiving side forwards, as scanner arguments
        below the source directory ``base``."""
        from .filesfrom import anchored_sources
        names = []
        while True:
            name = self.wire.read(decode_files_from_name)
            if name is None:
                break
            names.append(name)
        return anchored_sources(base, names, bool(self.opts.relative))

    # ---- sending side -----------------------------------------------------------------
    def run_sender(self, sources) -> int:
        cfg = self.cfg
        self.report.log_line("building file list")
        t0 = time.monotonic()
        scanner = Scanner(cfg, self.log, cfg.file_checksum if cfg.checksum_files else None,
                          cfg.filters)
        entries = scanner.scan(sources)
        stats = self.report.stats
        stats.flist_buildtime = max(1, int((time.monotonic() - t0) * 1000))
        t1 = time.monotonic()
        enc = FlistEncoder(cfg.flist_opts)
        # Ready before the list goes out: the peer may report at once.
        remover = self._source_remover() if cfg.remove_source_files else None
        before = self.wire.bytes_written
        for i in range(0, len(entries), 256):
            self.wire.write(enc.encode_batch(entries[i:i + 256]))
        self.wire.write(encode_end(scanner.io_error))
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
                self.wire.write(encode_id_list(idmap.user_names(users),
                                               idmap.user_name(0), fo.id0_names))
            if fo.gid or fo.acls:
                self.wire.write(encode_id_list(idmap.group_names(groups),
                                               idmap.group_name(0), fo.id0_names))
        # "done" before the list's last frame goes: the receiver's first
        # lines ("created directory") answer it and must come after.
        self.report.flist_done(receiving=False)
        self.wire.flush()
        stats.flist_size = self.wire.bytes_written - before
        stats.flist_xfertime = int((time.monotonic() - t1) * 1000)
        self.io_error |= scanner.io_error
        flist = sort_and_clean(entries)
        if remover is not None:
            remover.set_flist(flist)
        stats.count_flist(flist)
        if not flist and self.am_server:
            return exit_code_for(self.io_error)
        sender = Sender(self.wire, flist, cfg, self.log, self.report, stats)
        if self.offload is not None:
            sender.offload = SourceTable(self.offload)
            sender.offload.send(flist)
        sender.io_error = self.io_error
        sender.run()
        self.io_error |= sender.io_error
        if sender.del_stats is not None:
            stats.deleted = sender.del_stats
        return exit_code_for(self.io_error, RERR_PARTIAL if remover and remover.failed else 0)

    def _source_remover(self) -> SourceRemover:
        """--remove-source-files: act on the receiving side's MSG_SUCCESS.
        A server's lines go to the client as messages (posted: this runs on
        the reader thread)."""
        if self.am_server:
            wire = self.wire

            def post(tag):
                return lambda text: wire.post_msg(
                    encode_frame(tag, (text + "\n").encode("utf-8", "surrogateescape")))
            info, xfer_error = post(MSG_INFO), post(MSG_ERROR_XFER)
        else:
            info, xfer_error = self.log.info, self.log.error
        remover = SourceRemover(self.opts.verbose, info, xfer_error)
        self.on_success = remover.success
        return remover

    # ---- receiving side ---------------------------------------------------------------
    def recv_flist(self):
        self.report.log_line("receiving file list")
        dec = FlistDecoder(self.cfg.flist_opts, self.xattr_policy().storable)
        entries = []
        t0 = time.monotonic()
        before = self.wire.bytes_read
        done = False
        while not done:
            for item in self.wire.read(dec.decode_batch):
                if item.__class__ is EndOfList:
                    self.io_error |= item.io_error
                    done = True
                    break
                entries.append(item)
        fo = self.cfg.flist_opts
        uid_names = gid_names = {}
        if not fo.numeric_ids:
            if fo.uid or fo.acls:
                uid_names = self.wire.read(decode_id_list, fo.id0_names)
            if fo.gid or fo.acls:
                gid_names = self.wire.read(decode_id_list, fo.id0_names)
        self.acl_decoder = dec.acls
        self.report.stats.flist_xfertime = int((time.monotonic() - t0) * 1000)
        self.report.stats.flist_size = self.wire.bytes_read - before
        if not self.am_server and self.cfg.filters is not None:
            # A pulled list must respect our own rules (CVE-2022-29154):
            # a sender that offers an excluded name is not trusted.
            for e in entries:
                if e.name != b"." and self.cfg.filters.excluded(e.name, e.is_dir):
                    raise UnsupportedError(
                        f"ERROR: rejecting excluded file-list name: {show(e.name)}", 4)
        flist = sort_and_clean(entries)
        _check_parents(flist)
        self.report.flist_done(receiving=True)
        return flist, uid_names, gid_names

    def run_listing(self, flist, uid_names, gid_names) -> int:
        """A client listing a remote source (rsync's list_only receiver):
        print the list, then end the run like a transfer that needs nothing."""
        from .listing import listing_lines
        for line in listing_lines(flist, self.opts):
            self.log.info(line)
        self.cfg.list_only = True
        self.cfg.delete = False
        if not flist:
            return exit_code_for(self.io_error)
        return self.run_receiver(None, flist, uid_names, gid_names)

    def run_receiver(self, dest: bytes, flist, uid_names, gid_names) -> int:
        cfg, o = self.cfg, self.opts
        stats = self.report.stats
        stats.count_flist(flist)
        copier = None
        if self.offload is not None:
            copier = LocalCopier(self.offload)
            copier.receive_table()
        idmap = IdMapper()
        policy = AttrPolicy(perms=o.perms, owner=o.owner, group=o.group, times=o.times,
                            uid_map={} if o.numeric_ids else idmap.map_uids(uid_names),
                            gid_map={} if o.numeric_ids else idmap.map_gids(gid_names))
        policy.modify_window = o.modify_window
        if cfg.acls and not o.numeric_ids and getattr(self, "acl_decoder", None) is not None:
            self.acl_decoder.map_ids(idmap.map_uids(uid_names), idmap.map_gids(gid_names))
        if cfg.list_only:
            root, created = None, False
        else:
            root, created = get_local_name(flist, dest, self.log, cfg.dry_run, self.report)
        if root is not None:
            if o.backup:
                from .io.backup import Backups
                cfg.backups = Backups(root, None if o.backup_dir is None else os.fsencode(o.backup_dir),
                                      None if o.suffix is None else os.fsencode(o.suffix))
            # --link-dest & co: a relative DIR is relative to the destination.
            cfg.alt_dests = [(kind, os.path.join(root, os.fsencode(d))) for kind, d in o.alt_dests]
        if root is None:           # dry run into a directory that does not exist
            root_tree = None
        else:
            root_tree = DestTree(root)
        to_gen: queue.Queue = queue.Queue()
        requested: dict = {}
        tree = root_tree if root_tree is not None else _MissingTree(dest or b".")
        gen = Generator(self.wire, flist, tree, cfg, policy, self.log, self.report, stats,
                        to_gen, requested, lambda: self.io_error)
        if created:
            gen.created_dirs.add(b".")
        recv = Receiver(self.wire, flist, tree, cfg, policy, self.log, self.report, stats,
                        to_gen, requested)
        recv.basis = gen.basis
        if copier is not None and root_tree is not None:
            copier.bind(root_tree, policy, cfg, recv.write_mode)
            gen.copier = copier
        recv.offloaded = gen.offloaded
        recv.backup_basis = gen.backup_basis
        if cfg.remove_source_files and not cfg.dry_run:
            gen.success = recv.success = SuccessNotifier(self.wire, tree, cfg.local_server)

        def no_send(ndx):
            if requested.get(ndx, 0) > 0:
                requested[ndx] -= 1
        self.no_send = no_send
        errors = []

        def fail(e):
            # First error wins.  Keep draining the peer's data (discarded)
            # so neither side blocks, tell the peer why we stop, and
            # half-close: the peer reads our last frame, then EOF.
            if not errors:
                errors.append(e)
            if copier is not None:
                copier.cancel()
            self.wire.drain_messages(0)
            if isinstance(e, PysyncError):
                self.wire.send_error_exit(e.code)
            self.wire.shutdown_write()

        def gen_main():
            try:
                gen.run()
            except BaseException as e:
                fail(e)
        self.wire.flush_on_wait = False
        t = threading.Thread(target=gen_main, name="generator", daemon=True)
        t.start()
        try:
            recv.run()
        except BaseException as e:
            to_gen.put(("abort", e))
            fail(e)
        t.join()
        if root_tree is not None:
            root_tree.close()
        if errors:
            raise errors[0]
        self.io_error |= recv.io_error | gen.failed
        if recv.del_stats is not None:
            stats.deleted = recv.del_stats
        elif cfg.delete:
            stats.deleted = gen.del_stats
        if recv.remote_stats is not None:
            rs = recv.remote_stats
            stats.total_size = rs.total_size
        if gen.skipped_deletes:
            self.log.warning(f"Deletions stopped due to --max-delete limit "
                             f"({gen.skipped_deletes} skipped)")
            self.io_error |= IOERR_DEL_LIMIT
        return exit_code_for(self.io_error | (IOERR_GENERAL if self.xfer_error else 0))


class _MissingTree:
    """A stand-in destination for a dry run into a directory that does not
    exist yet: every lookup finds nothing."""

    def __init__(self, root: bytes):
        self.root = root
        self.root_fd = -1

    def lstat(self, name):
        raise FileNotFoundError(name)

    def locate(self, name):
        raise FileNotFoundError(name)

    def path(self, name):
        return os.path.join(self.root, name)

    def forget(self, name):
        pass


def acl_ids(entries) -> tuple:
    """(user ids, group ids) named in the entries' ACLs."""
    users, groups = set(), set()
    for e in entries:
        for acl in (e.acl, e.def_acl):
            for i, _p, is_user in (acl.names if acl is not None else ()):
                (users if is_user else groups).add(i)
    return users, groups


def _negotiate(ours: int, theirs: int) -> int:
    from .protocol.buffer import ProtocolError
    try:
        return negotiate_version(ours, theirs)
    except ProtocolError as e:
        raise ProtocolViolation(str(e), e.code) from None


def _valid_checksum(name: str) -> str:
    name = _CHECKSUM_ALIASES.get(name, name)
    if name not in CHECKSUM_NAMES + ("none", "sha1"):
        raise SyntaxUsageError(f"unknown checksum name: {name}")
    return name


def _valid_compress(name: str) -> str:
    if name not in COMPRESS_NAMES + ("none",):
        raise SyntaxUsageError(f"unknown compress name: {name}")
    return name


def _check_parents(flist) -> None:
    """Every entry's parent must be a directory of the list (or the root):
    a hostile sender cannot make us write through a name that is a
    symlink or file in the same list."""
    dirs = {e.name for e in flist if e.is_dir and not e.cleared}
    for e in flist:
        if e.cleared or b"/" not in e.name:
            continue
        parent = e.name.rsplit(b"/", 1)[0]
        if parent not in dirs:
            # rsync allows implied parents of the top-level arguments; ours
            # only come from the list itself.
            names = {x.name for x in flist if not x.cleared}
            if parent in names:
                raise ProtocolViolation(
                    f"ABORTING due to invalid path from sender: {show(e.name)}", 2)


def get_local_name(flist, dest: bytes, log, dry_run: bool, report):
    """rsync main.c get_local_name(): where the received list lands.
    Returns (the directory the names are relative to, or None for a dry
    run into a directory that would be created; whether we created it)."""
    import stat as _stat
    live = [e for e in flist if not e.cleared]
    count = len(live)
    trailing = dest.endswith(b"/")
    path = dest.rstrip(b"/") or b"/"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise PysyncError(f"rsync: [Receiver] stat \"{_show(path)}\" failed: {e.strerror} ({e.errno})",
                          RERR_FILEIO) from None
    if st is not None and _stat.S_ISDIR(st.st_mode):
        return path, False
    if st is not None:
        if count > 1:
            raise PysyncError("ERROR: destination must be a directory when copying more than 1 file",
                              RERR_FILESELECT)
        if count == 1 and live[0].is_dir:
            raise PysyncError("ERROR: cannot overwrite non-directory with a directory", RERR_FILESELECT)
    if count == 1 and not live[0].is_dir and (st is not None or not trailing):
        # One file onto a name: the list's single name becomes that name.
        live[0].name = os.path.basename(path)
        return os.path.dirname(path) or b".", False
    if dry_run:
        report.created_dir(dest.rstrip(b'/') or dest)
        return None, True
    try:
        os.mkdir(path, 0o777)
    except OSError as e:
        raise PysyncError(f"rsync: [Receiver] mkdir \"{_show(os.path.abspath(path))}\" failed: "
                          f"{e.strerror} ({e.errno})", RERR_FILEIO) from None
    report.created_dir(dest.rstrip(b'/') or dest)
    return path, True


def _show(b: bytes) -> str:
    return show(b)


def run_server(opts, stream) -> int:
    """``pysync --server ...`` on ``stream``: opts.args = [".", paths...]."""
    log = Log(am_server=True)
    report = Report(opts, am_server=True, sending=opts.sender)
    sess = _Session(opts, None, am_server=True, am_sender=opts.sender, report=report, log=log)
    if not opts.sender:
        sess.offload = getattr(stream, "side", None)
    wire = Wire(stream, on_message=sess.on_message, timeout=opts.timeout, bwlimit=opts.bwlimit,
                role="sender" if opts.sender else "receiver")
    sess.wire = wire
    sess.cfg.local_server = opts.local_server
    if opts.verbose or opts.log_format:
        report.remote_info = lambda text: wire.send_msg(MSG_INFO, (text + "\n").encode("utf-8", "surrogateescape"))
    args = [a.encode() if isinstance(a, str) else a for a in opts.args]
    if args and args[0] == b".":
        args = args[1:]
    code = 0
    ff_data = None
    if opts.files_from is not None and opts.files_from != "-":
        # A list on this side (the client's --files-from=host:path), read
        # before the handshake as rsync reads it while parsing options.
        from .filesfrom import read_list
        try:
            ff_data = read_list(opts.files_from)
        except PysyncError as e:
            log.error(str(e))
            log.error(f"rsync error: {exit_text(e.code)} (code {e.code}) at pysync [server]")
            return e.code
    try:
        sess.server_handshake()
        wire.start_mux(local_server=opts.local_server)
        log.remote = lambda text: wire.send_msg(
            MSG_INFO, (text.rstrip("\n") + "\n").encode("utf-8", "surrogateescape"))
        if opts.sender:
            sess.recv_filters()
            base = args[0] if args else b"."
            if opts.files_from == "-":
                sources = sess.recv_files_from(base)
            elif ff_data is not None:
                from .filesfrom import anchored_sources, local_names
                sources = anchored_sources(base, local_names(ff_data, opts.from0),
                                           bool(opts.relative))
            else:
                sources = args or [b"."]
            code = sess.run_sender(sources)
        else:
            if opts.delete:
                sess.recv_filters()
            if ff_data is not None:
                # The sending client asked for our list: forward it.
                sess.forward_files_from(encode_files_from(ff_data, opts.from0))
            flist, un, gn = sess.recv_flist()
            dest = args[0] if args else b"."
            code = sess.run_receiver(dest, flist, un, gn)
        wire.flush()
    except PysyncError as e:
        log.error(str(e))
        code = e.code
        _send_error_exit(wire, code)
    finally:
        wire.close()
    return code


def _send_error_exit(wire, code: int) -> None:
    if wire is not None:
        wire.send_error_exit(code)


def run_client_session(opts, stream, sources, dest, am_sender: bool, report: Report, log: Log,
                       ff_forward: bytes | None = None, ff_base: bytes | None = None,
                       local: bool = False):
    """The client's side of one connection (``local``: to the child of a
    local copy).  Returns (code, session).
    ``ff_forward``: --files-from names (wire form) for the remote sender;
    ``ff_base``: read the names from the remote receiver instead, as
    arguments below this source directory."""
    sess = _Session(opts, None, am_server=False, am_sender=am_sender, report=report, log=log)
    sess.cfg.local_server = local
    if am_sender:
        sess.offload = getattr(stream, "side", None)
    wire = Wire(stream, on_message=sess.on_message, timeout=opts.timeout, bwlimit=opts.bwlimit,
                role="sender" if am_sender else "receiver")
    sess.wire = wire
    code = 0
    try:
        sess.client_handshake()
        wire.start_mux(local_server=local)
        if am_sender:
            sess.cvs_rules_before_send()
            if opts.delete:
                sess.send_filters()
            if ff_base is not None:
                sources = sess.recv_files_from(ff_base)
            code = sess.run_sender(sources)
        else:
            sess.send_filters()
            if ff_forward is not None:
                sess.forward_files_from(ff_forward)
            flist, un, gn = sess.recv_flist()
            if dest is None:
                code = sess.run_listing(flist, un, gn)
            elif flist:
                code = sess.run_receiver(dest, flist, un, gn)
            else:
                code = exit_code_for(sess.io_error)
        wire.flush()
    except PysyncError as e:
        if sess.remote_exit is None and isinstance(e, StreamError):
            # The peer may have said why it went away: wait for its message.
            wire.drain_messages(2.0)
        if sess.remote_exit is None:
            # A transport that already explained the failure in one line (a
            # missing remote rsync) needs no second, vaguer one.
            if not getattr(stream, "explained", None):
                log.error(str(e))
            _send_error_exit(wire, e.code)
            code = e.code
        else:
            code = sess.remote_exit or e.code
    finally:
        wire.close()
    sess.sent = wire.bytes_written
    sess.received = wire.bytes_read
    return code, sess
