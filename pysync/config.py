"""A session's configuration (SessionConfig) and the handshake that settles
it: the version and compat-flag exchange, the checksum and compression
choice, the seed, and the copy of the options the roles read."""

from __future__ import annotations

import os

from .record import field, record
from .errors import ProtocolViolation, SyntaxUsageError, UnsupportedError
from .protocol.constants import (CF_AVOID_XATTR_OPTIM, CF_ID0_NAMES, CF_VARINT_FLIST_FLAGS, CHECKSUM_NAMES,
                                 COMPRESS_NAMES, PROTOCOL_VERSION)
from .protocol.flist import FlistOptions
from .protocol.handshake import (choose_as_client, choose_as_server, decode_name_list,
                                 decode_seed, decode_version, encode_name_list, encode_seed,
                                 encode_version, negotiate_version, server_compat_flags)
from .protocol.ints import decode_varint, encode_varint
from .protocol.checksums import get_checksum

__all__ = ["SessionConfig", "client_handshake", "server_handshake"]

_CHECKSUM_ALIASES = {"xxhash": "xxh64"}


@record
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
    ignore_errors: bool = False     # delete even after I/O errors
    ignore_missing_args: bool = False  # the sender skips a missing source argument
    delete_missing_args: bool = False  # ... sends it as mode 0; the receiver deletes it
    copy_links: bool = False        # -L: the sender follows every symlink
    copy_dirlinks: bool = False     # -k: ... those to directories
    keep_dirlinks: bool = False     # -K: the receiver's symlinks to directories count as them
    fuzzy: int = 0                  # -y / -yy: engine/fuzzy.py
    copy_unsafe_links: bool = False  # ... those pointing out of the transfer
    safe_links: bool = False        # the receiver skips links out of the transfer
    munge_links: bool = False       # --munge-links: this side's own (scan.py, receiving.py)
    chmod: list = field(default_factory=list)   # --chmod items, applied by the client's side
    sparse: bool = False            # -S: zero blocks of new files become holes
    # How the sender opens a listed file: never through a symlink, unless
    # -L, -k or --copy-unsafe-links listed one as what it points to.
    source_open_flags: int = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
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
    temp_dir_fd: int | None = None  # -T: the directory temp files are made in
    inplace: bool = False           # write into the destination file itself
    append: int = 0                 # 1 --append, 2 --append-verify (implies inplace)
    delay_updates: bool = False
    remove_source_files: bool = False
    local_server: bool = False      # the two processes of one local copy
    one_file_system: bool = False
    links: bool = False
    devices: bool = False
    specials: bool = False
    am_root: int = 0                # options.c am_root: 1 root, 2 --super, -1 --fake-super
    atimes: bool = False            # -U: access times listed and set
    executability: bool = False     # -E without -p: the execute bits follow the sender
    copy_devices: bool = False      # the sender reads devices as regular files
    write_devices: bool = False     # the receiver writes into existing devices
    relative: bool = False
    implied_dirs: bool = True
    xfer_dirs: bool = False
    itemize_unchanged: bool = False   # -ii / --log-format=%i%I: unchanged items are sent too
    list_only: bool = False         # a client listing a remote source: no transfer
    xattrs: int = 0                 # -X level
    acls: bool = False              # -A
    xattr_optim: bool = False       # rsync's hard-link xattr shortcut (no CF_AVOID_XATTR_OPTIM)


def client_handshake(sess) -> None:
    w, o = sess.wire, sess.opts
    ours = o.protocol or PROTOCOL_VERSION
    w.raw_write(encode_version(ours))
    theirs = w.raw_read(decode_version)
    sess.cfg.protocol = _negotiate_version(ours, theirs)
    compat = w.raw_read(decode_varint)
    if not compat & CF_VARINT_FLIST_FLAGS:
        raise UnsupportedError("the remote rsync is too old (no varint file-list flags); "
                               "pysync needs rsync 3.2 or later on the other side", 2)
    _negotiate_algorithms(sess, compat, client=True)
    sess.cfg.seed = w.raw_read(decode_seed)
    _finish_config(sess, compat)


def server_handshake(sess) -> None:
    w, o = sess.wire, sess.opts
    ours = o.protocol or PROTOCOL_VERSION
    w.raw_write(encode_version(ours))
    theirs = w.raw_read(decode_version)
    sess.cfg.protocol = _negotiate_version(ours, theirs)
    letters = (o.capabilities or "").lstrip(".0123456789")
    compat = server_compat_flags(letters)
    if not compat & CF_VARINT_FLIST_FLAGS:
        raise UnsupportedError("the client rsync is too old (no 'v' capability); "
                               "pysync needs rsync 3.2 or later on the other side", 2)
    w.raw_write(encode_varint(compat))
    _negotiate_algorithms(sess, compat, client=False)
    seed = o.checksum_seed
    if seed is None:
        # 1 .. 2**31-1, as rsync's; from os.urandom, so a server does not
        # load random.py (and its four extension modules) for one number.
        seed = int.from_bytes(os.urandom(4), "little") % 0x7FFFFFFF + 1
    w.raw_write(encode_seed(seed))
    sess.cfg.seed = seed if seed < 0x80000000 else seed - (1 << 32)
    _finish_config(sess, compat)


def _negotiate_algorithms(sess, compat: int, client: bool) -> None:
    o, w = sess.opts, sess.wire
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
    sess.cfg.checksum = get_checksum(name)
    fname = o.checksum_choice.split(",")[1] if o.checksum_choice and "," in o.checksum_choice else name
    sess.cfg.file_checksum = get_checksum(_valid_checksum(fname))
    sess.report.xfer_sum = (sess.cfg.checksum.name, sess.cfg.checksum.digest_len)
    sess.report.file_sum = (sess.cfg.file_checksum.name, sess.cfg.file_checksum.digest_len)
    if send_cz:
        peer = w.raw_read(decode_name_list)
        cz = (choose_as_client(cz_list, peer, "compress") if client
              else choose_as_server(peer, cz_list, "compress"))
    elif compress_on:
        cz = _valid_compress(o.compress_choice or "zlib")
    else:
        cz = None
    sess.cfg.compress = None if cz in (None, "none") else cz


def _finish_config(sess, compat: int) -> None:
    o, c = sess.opts, sess.cfg
    c.am_server, c.am_sender = sess.am_server, sess.am_sender
    c.compress_level = o.compress_level
    c.dry_run = o.dry_run
    # upstream: generator.c itemize() -- "stdout_format_has_i > 1"
    c.itemize_unchanged = ("%I" in (o.log_format or "")) if sess.am_server \
        else sess.report.out_has_i > 1
    # --append needs the sum head even where -W is the default (rsync's
    # generator turns whole-file off for it).
    c.whole_file = (bool(o.whole_file) or c.checksum.name == "none") and not o.append
    c.block_size = o.block_size
    c.delete = o.delete
    c.delete_mode = o.delete_mode
    c.delete_excluded = o.delete_excluded
    c.max_delete = o.max_delete
    c.force = o.force
    c.ignore_errors = o.ignore_errors
    c.ignore_missing_args = o.ignore_missing_args
    c.delete_missing_args = o.delete_missing_args
    c.copy_links, c.copy_dirlinks = o.copy_links, o.copy_dirlinks
    c.keep_dirlinks = o.keep_dirlinks
    c.fuzzy = o.fuzzy
    c.copy_unsafe_links, c.safe_links = o.copy_unsafe_links, o.safe_links
    c.munge_links = o.munge_links
    # --chmod is not passed on: the client's side applies it, to the list
    # it sends or the one it receives.
    c.chmod = [] if sess.am_server else o.chmod
    c.sparse = o.sparse
    if c.copy_links or c.copy_dirlinks or c.copy_unsafe_links:
        c.source_open_flags = os.O_RDONLY | os.O_CLOEXEC
    if o.open_noatime:
        c.source_open_flags |= getattr(os, "O_NOATIME", 0)   # engine/sender.py open_source
    c.copy_devices, c.write_devices = o.copy_devices, o.write_devices
    c.atimes = bool(o.atimes)
    c.executability = o.executability and not o.perms
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
    c.am_root = o.am_root
    c.relative, c.implied_dirs = bool(o.relative), o.implied_dirs
    c.xfer_dirs = o.xfer_dirs
    c.xattrs = o.xattrs
    c.acls = o.acls
    c.xattr_optim = c.protocol >= 31 and not compat & CF_AVOID_XATTR_OPTIM
    if getattr(o, "filter_list", None) is not None:
        c.filters = o.filter_list
        o.filter_list = None        # a session's dir-merge state is its own
    elif o.filters:
        from .engine.filters import FilterList     # with the first rule only
        c.filters = FilterList.from_options(o.filters)
    else:
        c.filters = None
    c.flist_opts = FlistOptions(
        uid=o.owner, gid=o.group, links=o.links, devices=o.devices, specials=o.specials,
        hard_links=o.hard_links, checksum_len=c.file_checksum.digest_len if o.checksum else 0,
        relative=o.relative, id0_names=bool(compat & CF_ID0_NAMES), numeric_ids=o.numeric_ids,
        xattrs=bool(o.xattrs), acls=o.acls, missing=o.delete_missing_args,
        atimes=bool(o.atimes))


def _negotiate_version(ours: int, theirs: int) -> int:
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
