"""The receiver role (receiver.c recv_files/receive_data): read the sender's
token stream for each requested file, rebuild it from literals and basis
blocks into a temp file, verify the whole-file checksum, apply attributes
and rename into place.  A checksum mismatch in phase 0 goes back to the
generator for the redo phase; the second one is an error."""

from __future__ import annotations

import os
import stat

from ..text import show
from ..errors import FileIOError, ProtocolViolation
from ..io.attrs import OwnerError, apply_fd
from ..io.replace import TempFile
from ..io.writemode import WriteMode
from ..record import replace
from ..protocol.buffer import NeedMore
from ..protocol.constants import (IOERR_GENERAL, ITEM_BASIS_TYPE_FOLLOWS, ITEM_IS_NEW, ITEM_TRANSFER,
                                  NDX_DONE)
from ..protocol.ndx import NdxDecoder
from ..protocol.stats import decode_stats
from ..protocol.sums import decode_sum_head
from ..protocol.tokens import END, TokenDecoder
from .smallfile import SMALL_FILE_MAX, read_head_and_data, receive_small, small_path_ok
from .sender import read_item

__all__ = ["Receiver"]



class _NullSink:
    """Swallows a file's data when its temp file could not be made, so the
    stream stays in step."""

    def write(self, data):
        pass

    def finish(self):
        return 0

    def abort(self):
        pass


class _Basis:
    """An open basis file: positional reads, closed once."""

    __slots__ = ("fd", "reader")

    def __init__(self, fd: int, drop_cache: bool):
        self.fd = fd
        if drop_cache:
            from ..io.cache import SourceReader
            self.reader = SourceReader(fd, drop_cache)
        else:
            self.reader = None

    def pread(self, length: int, offset: int) -> bytes:
        if self.reader is not None:
            return bytes(self.reader.pread(length, offset))
        return os.pread(self.fd, length, offset)

    def pread_into(self, view, offset: int) -> int:
        """Read into ``view`` (a writable buffer) at ``offset``; bytes read
        (fewer only at the end of the file)."""
        if self.reader is not None:
            data = self.reader.pread(len(view), offset)
            view[:len(data)] = data
            return len(data)
        return os.preadv(self.fd, (view,), offset)

    def close(self) -> None:
        if self.fd >= 0:
            if self.reader is not None:
                self.reader.close()
            os.close(self.fd)
            self.fd = -1


class Receiver:
    def __init__(self, wire, flist, tree, cfg, policy, log, report, stats, to_generator,
                 requested):
        self.wire = wire
        self.flist = flist
        self.tree = tree
        self.cfg = cfg
        self.policy = policy
        self.log = log
        self.report = report
        self.stats = stats
        self.to_gen = to_generator       # a SimpleQueue of (what, value)
        self.requested = requested       # [ndx]: number of outstanding requests
        self.last_sum = None             # the sender's checksum of the last file (%C)
        self.basis = {}                  # ndx -> basis name the generator chose
        self.offloaded = set()           # ndx the generator copied (engine/offload.py)
        self.backup_basis = set()        # ndx whose basis is the --inplace backup copy
        self.write_mode = WriteMode(direct_io=cfg.direct_io, drop_cache=cfg.drop_cache,
                                    preallocate=cfg.preallocate, fsync=cfg.fsync,
                                    sparse=cfg.sparse and not cfg.inplace, warn=log.warning)
        # Large files in the plain buffered mode: a writer thread does the
        # pwrites while this thread keeps receiving (io/writebehind.py).
        # Small ones stay inline (no thread per file).
        self.write_mode_large = self.write_mode
        if not (cfg.direct_io or cfg.drop_cache or cfg.fsync):
            self.write_mode_large = replace(self.write_mode, write_behind=True)
        self.ndx_in = NdxDecoder()
        self.tokens = TokenDecoder(cfg.compress)
        self.io_error = 0
        self.del_stats = None
        self.remote_stats = None
        self.success = None              # --remove-source-files: (ndx, name) -> MSG_SUCCESS
        # An option's own modules load when it is given (start-up).
        self.delayed = self.xattrs = self.acls = None
        if cfg.delay_updates and not cfg.dry_run:
            from .delay import DelayedUpdates
            self.delayed = DelayedUpdates(tree, cfg, log, self._fail)
        if cfg.xattrs:
            from .xattrs import RecvXattrs
            self.xattrs = RecvXattrs(cfg, tree, self._fail)
        if cfg.acls:
            from .acls import Acls
            self.acls = Acls(cfg, tree, self._fail)

    def _on_del_stats(self, d):
        self.del_stats = d

    def run(self) -> None:
        phase = 0
        wire = self.wire
        digest_len = self.cfg.checksum.digest_len
        small = small_path_ok(self.cfg)
        while True:
            ndx, iflags, basis, xname = read_item(wire, self.ndx_in, self._on_del_stats)
            if ndx == NDX_DONE:
                phase += 1
                if phase == 2 and self.delayed is not None:
                    self.delayed.success = self.success
                    self.delayed.finish()
                self.to_gen.put(("done", phase))
                if phase > 2:
                    break
                continue
            if ndx >= len(self.flist) or self.flist[ndx].cleared:
                raise ProtocolViolation(f"Invalid file index: {ndx} (0 - {len(self.flist) - 1})", 2)
            entry = self.flist[ndx]
            if self.xattrs is not None:
                self.xattrs.read_answer(wire, entry, iflags)
            if not iflags & ITEM_TRANSFER:
                self.report.item(entry, iflags, xname)
                if self.xattrs is not None and self.xattrs.wants_apply(iflags):
                    self.xattrs.apply_by_name(entry)
                continue
            if not entry.is_reg or not self.requested[ndx]:
                raise ProtocolViolation(f"ERROR: got an unrequested transfer for index {ndx}", 2)
            self.requested[ndx] -= 1
            self.stats.files_transferred += 1        # --stats (receiver.c counts here too)
            self.stats.transferred_size += entry.size
            if ndx in self.offloaded:        # copied by the generator: no data
                self.offloaded.discard(ndx)
                self.report.item(entry, iflags, xname)
                continue
            if self.cfg.dry_run:
                self.report.item(entry, iflags, xname)
                continue
            mark = wire.data_read               # %b counts from here (rsync's receiver)
            if small and entry.size <= SMALL_FILE_MAX:
                head, data, theirs = wire.read(read_head_and_data, digest_len, SMALL_FILE_MAX)
            else:
                head = wire.read(decode_sum_head, digest_len)
                data = None
            shown = entry
            if self.cfg.write_devices:
                from .inplace import as_logged   # a device written into logs as one
                shown = as_logged(self.tree, entry)
            self.report.item(shown, iflags, xname)
            self.last_sum = None
            if data is not None:
                receive_small(self, ndx, entry, iflags, phase, data, theirs)
            else:
                self._receive_file(ndx, entry, iflags, head, phase)
            self.report.item_done(shown, iflags, xname, 0, wire.data_read - mark,
                                  self.last_sum)
        if not self.cfg.am_server:
            self.remote_stats = wire.read(decode_stats)
        # The sender's answer to our generator's last-but-one DONE.
        ndx, *_ = read_item(wire, self.ndx_in, self._on_del_stats)
        if ndx != NDX_DONE:
            raise ProtocolViolation(f"Invalid packet at end of run ({ndx})", 2)
        self.to_gen.put(("end", None))

    # ---- one file -------------------------------------------------------------------
    def _receive_file(self, ndx, entry, iflags, head, phase) -> None:
        if self.cfg.inplace:
            from .inplace import receive_in_place  # --inplace's module loads with it
            receive_in_place(self, ndx, entry, iflags, head, phase)
            return
        name = entry.name
        tree = self.tree
        basis = None
        tmp = None
        sink = _NullSink()
        try:
            dir_fd, base = tree.locate(name)
        except OSError as e:
            self._fail(f"rsync: [receiver] cannot reach directory of \"{_show(tree.path(name))}\": "
                       f"{e.strerror} ({e.errno})")
            dir_fd = None
        existing_mode = None
        if dir_fd is not None:
            if head.count:
                basis = self._open_basis(ndx, name, dir_fd, base)
            existing_mode = self.old_mode(iflags, dir_fd, base, ndx)
            tmp = self.make_temp(dir_fd, base, name, entry.mode)
            if tmp is not None:
                try:
                    # The write path: buffered, --direct-io, --drop-cache,
                    # --preallocate (pysync/io/sink.py).  Refusals end the run.
                    from ..io.sink import make_sink     # a run that writes no data never loads it
                    mode = self.write_mode_large if entry.size >= _WRITE_BEHIND_MIN \
                        else self.write_mode
                    sink = make_sink(tmp.fd, dir_fd, tmp.name, tree.path(name), entry.size, mode)
                except BaseException:
                    tmp.discard()
                    if basis is not None:
                        basis.close()
                    raise
        try:
            ok = self._read_tokens(head, basis, sink, ndx, entry.size, entry.name)
            if tmp is None:
                return
            if not ok:
                sink.abort()
                tmp.discard()
                self._verify_failed(ndx, name, phase)
                return
            sink.finish()          # all data out, exact size, fsync if asked
            self._install(ndx, name, entry, tmp, existing_mode)
        except FileIOError:
            sink.abort()
            if tmp is not None:
                tmp.discard()
            raise
        except OSError as e:
            sink.abort()
            if tmp is not None:
                tmp.discard()
            raise FileIOError(f"rsync: [receiver] write failed on \"{_show(tree.path(name))}\": "
                              f"{e.strerror} ({e.errno})") from None
        except BaseException:
            if tmp is not None and not self._keep_partial(tmp, sink, name):
                sink.abort()
                tmp.discard()
            raise
        finally:
            if basis is not None:
                basis.close()

    def make_temp(self, dir_fd: int, base: bytes, name: bytes, mode: int = 0o600):
        """The temp file for ``name``, or None (said) if it cannot be made.
        ``mode``: the entry's; the temp file has its owner bits (as
        receiver.c's mkstemp), readable and writable by us."""
        try:
            tmp = TempFile(dir_fd, base, (mode & 0o700) | 0o600, temp_dir_fd=self.cfg.temp_dir_fd)
            tmp.fsync = self.cfg.fsync
            return tmp
        except OSError as e:
            self._fail(f"rsync: [receiver] mkstemp \"{_show(self.tree.path(name))}\" failed: "
                       f"{e.strerror} ({e.errno})")
            return None

    def _verify_failed(self, ndx: int, name: bytes, phase: int) -> None:
        """A file whose checksum did not match (its temp file is gone):
        to the redo phase in phase 0, else an error."""
        if phase == 0:
            self._redo_warning(f"WARNING: {_show(name)} failed verification -- "
                               "update discarded (will try again).")
            self.to_gen.put(("redo", ndx))
        else:
            self._fail(f"ERROR: {_show(name)} failed verification -- update discarded.")

    def _install(self, ndx: int, name: bytes, entry, tmp, existing_mode) -> None:
        """A verified temp file with all its data: attributes, then into
        place (or parked for --delay-updates)."""
        if self.xattrs is not None:
            from .xattrs import basis_path
            self.xattrs.apply_fd(tmp.fd, entry,
                                 basis_path(self.tree, name, self.basis.get(ndx)))
        if self.acls is not None:
            self.acls.apply_fd(tmp.fd, entry)
        try:
            apply_fd(tmp.fd, entry, self.policy, existing_mode)
        except OwnerError as e:
            # rsync.c set_file_attrs: logged, the rest of the attributes
            # left, the file still put in place.
            where = os.path.join(os.path.dirname(name), tmp.name)
            self._fail(f"rsync: [receiver] {e.op} \"{_show(os.path.abspath(self.tree.path(where)))}\" failed: "
                       f"{e.strerror} ({e.errno})")
        if self.delayed is not None:
            # --delay-updates: into the partial dir (over any partial
            # file there), renamed into place at the end.
            self.delayed.park(ndx, name, tmp)
            return
        if self.cfg.backups is not None:
            try:
                self.cfg.backups.keep(name)
            except FileNotFoundError:
                pass
        tmp.commit()
        self._drop_partial(name)
        if self.success is not None:
            self.success(ndx, name)

    def old_mode(self, iflags: int, dir_fd: int, base: bytes, ndx: int | None = None):
        """The mode whose permissions a file received without -p keeps, or
        None: rsync's receiver takes them from the regular file it rebuilds
        the data from, so a -y or --*-dest basis (of ``ndx``) gives its
        own; otherwise the file being replaced.  A file the
        generator found missing (ITEM_IS_NEW) has none: no need to look again."""
        if ndx is not None and ndx in self.basis:
            from .fuzzy import basis_mode       # a basis of another name: its module
            found = basis_mode(self, ndx, iflags & ITEM_BASIS_TYPE_FOLLOWS)
            if found is not None:
                return found[0]
        if iflags & ITEM_IS_NEW:
            return None
        try:
            mode = os.stat(base, dir_fd=dir_fd, follow_symlinks=False).st_mode
        except OSError:
            return None
        return mode if stat.S_ISREG(mode) else None

    def discard_data(self, head, ndx: int, entry) -> None:
        """Read a file's data that has nowhere to go, to stay in step."""
        self._read_tokens(head, None, _NullSink(), ndx, entry.size, entry.name)

    def _open_basis(self, ndx, name, dir_fd, base):
        """The file the sender's block matches refer to, read with the
        cache rules of --drop-cache; None if it cannot be opened."""
        basis_name = self.basis.get(ndx, name)
        try:
            if basis_name.startswith(b"/"):      # --link-dest & co, --partial-dir
                fd = os.open(basis_name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            else:
                bdfd, bbase = (dir_fd, base) if basis_name == name else self.tree.locate(basis_name)
                fd = os.open(bbase, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=bdfd)
        except OSError:
            return None
        return _Basis(fd, self.cfg.drop_cache)

    def _keep_partial(self, tmp, sink, name: bytes) -> bool:
        """--partial: an interrupted file keeps what arrived, as the
        destination file (or in --partial-dir), to be the next run's basis."""
        cfg = self.cfg
        if not cfg.partial or cfg.dry_run or isinstance(sink, _NullSink):
            return False
        try:
            sink.finish()
            if os.fstat(tmp.fd).st_size == 0:
                return False
            if cfg.partial_dir is None:
                tmp.commit()
                return True
            parent, base = os.path.split(name)
            pdir = cfg.partial_dir if os.path.isabs(cfg.partial_dir) else \
                os.path.join(self.tree.root, parent, cfg.partial_dir)
            os.makedirs(pdir, exist_ok=True)
            fd, tmp.fd = tmp.fd, -1
            os.close(fd)
            os.rename(tmp.name, os.path.join(pdir, base), src_dir_fd=tmp.dir_fd)
            tmp.done = True
            return True
        except OSError:
            return False

    def _drop_partial(self, name: bytes) -> None:
        pdir = self.cfg.partial_dir
        if pdir is None:
            return
        parent, base = os.path.split(name)
        d = pdir if os.path.isabs(pdir) else os.path.join(self.tree.root, parent, pdir)
        try:
            os.unlink(os.path.join(d, base))
        except OSError:
            return
        if not os.path.isabs(pdir):
            try:
                os.rmdir(d)
            except OSError:
                pass

    def _read_tokens(self, head, basis, sink, ndx: int, size: int, name: bytes = b"",
                     kept: int = 0, verify: bool = False) -> bool:
        """The file's tokens into ``sink``; True if the whole-file checksum
        matches.  --append: the first ``kept`` bytes stay as they are (and
        are part of the checksum with ``verify``, --append-verify)."""
        wire = self.wire
        dec = self.tokens
        dec.begin_file()
        hasher = self.cfg.checksum.file_hasher()
        blen = head.blength
        count = head.count
        last_len = head.remainder or blen
        stats = self.stats
        report = self.report
        total = len(self.flist)
        done = 0
        if kept:
            if verify and basis is not None:
                from .inplace import hash_prefix
                hash_prefix(basis, kept, hasher)
            sink.seek(kept)
            done = kept
        report.progress(ndx, total, done, size, False, name)
        put_block = getattr(sink, "write_block", None) or (lambda data, _off: sink.write(data))
        if dec.codec is None:
            return self._read_plain_tokens(head, basis, sink, ndx, size, name, hasher, done,
                                           put_block)
        # A run token's blocks are taken together, read with one pread.
        most = max(1, _RUN_BYTES // blen) - 1 if blen else 0
        history = dec.codec == "zlib"
        into = _staging_sink(basis, sink)
        while True:
            tok = wire.read(dec.next_token)
            if tok is END:
                break
            if isinstance(tok, int):
                if tok < 0 or tok >= count:
                    raise ProtocolViolation(f"Invalid block index {tok} (count {count})", 2)
                last = tok + dec.take_run(most)
                if last >= count:
                    raise ProtocolViolation(f"Invalid block index {count} (count {count})", 2)
                if into is not None and not history:
                    length = _copy_run(basis, tok, last, blen, count, last_len, into, hasher)
                else:
                    data = _run_data(basis, tok, last, blen, count, last_len)
                    length = len(data)
                    if history:
                        with memoryview(data) as view:
                            for off in range(0, length, blen):
                                dec.see_block(view[off:off + blen])
                    hasher.update(data)
                    put_block(data, tok * blen)
                stats.matched_data += length
            else:
                length = len(tok)
                stats.literal_data += length
                hasher.update(tok)
                sink.write(tok)
            done += length
            report.progress(ndx, total, done, size, False, name)
        report.progress(ndx, total, done, size, True, name)
        theirs = self.last_sum = wire.read_bytes(self.cfg.checksum.digest_len)
        return hasher.digest() == theirs

    def _read_plain_tokens(self, head, basis, sink, ndx, size, name, hasher, done,
                           put_block) -> bool:
        """Uncompressed tokens, taken from the wire in batches; a run of
        consecutive matched blocks is read from the basis with one pread."""
        wire = self.wire
        dec = self.tokens
        blen = head.blength
        count = head.count
        last_len = head.remainder or blen
        stats = self.stats
        report = self.report
        total = len(self.flist)
        into = _staging_sink(basis, sink)
        ended = False
        while not ended:
            toks = wire.read(_next_tokens, dec)
            i = 0
            ntok = len(toks)
            while i < ntok:
                tok = toks[i]
                i += 1
                if tok is END:
                    ended = True
                    break
                if type(tok) is not int:
                    stats.literal_data += len(tok)
                    hasher.update(tok)
                    sink.write(tok)
                    done += len(tok)
                    continue
                if tok < 0 or tok >= count:
                    raise ProtocolViolation(f"Invalid block index {tok} (count {count})", 2)
                # Extend over the following tokens naming the next blocks.
                first = tok
                while i < ntok and toks[i] is not END and type(toks[i]) is int \
                        and toks[i] == tok + 1 and tok + 1 < count \
                        and (tok + 2 - first) * blen <= _RUN_BYTES:
                    tok += 1
                    i += 1
                if into is not None:
                    length = _copy_run(basis, first, tok, blen, count, last_len, into, hasher)
                else:
                    data = _run_data(basis, first, tok, blen, count, last_len)
                    length = len(data)
                    hasher.update(data)
                    put_block(data, first * blen)
                stats.matched_data += length
                done += length
            report.progress(ndx, total, done, size, False, name)
        report.progress(ndx, total, done, size, True, name)
        theirs = self.last_sum = wire.read_bytes(self.cfg.checksum.digest_len)
        return hasher.digest() == theirs

    def _redo_warning(self, text: str) -> None:
        """As rsync: a file going to the redo phase is only mentioned with
        -v or itemized output."""
        o = self.report.opts
        if o.verbose or o.itemize or "%i" in (o.log_format or ""):
            self.log.warning(text)

    def _fail(self, text: str) -> None:
        self.io_error |= IOERR_GENERAL
        self.log.error(text)


# Files from this size on are written by a write-behind thread.
_WRITE_BEHIND_MIN = 32 << 20
# A batch of tokens holds at most about this many literal bytes.
_BATCH_BYTES = 1 << 20
_BATCH_TOKENS = 8192
# One basis read covers a run of consecutive blocks up to this size.
_RUN_BYTES = 1 << 20


def _run_data(basis, first: int, last: int, blen: int, count: int, last_len: int):
    """Blocks ``first`` .. ``last`` of the basis, with one pread.  A basis
    that changed under us reads as zeros where it falls short (the
    whole-file check then sends the file to the redo phase)."""
    length = (last - first) * blen + (last_len if last == count - 1 else blen)
    data = basis.pread(length, first * blen) if basis is not None else b""
    if len(data) == length:
        return data
    return bytes(data).ljust(length, b"\0")


def _staging_sink(basis, sink):
    """The sink, if basis blocks can be read straight into its staging
    buffer (a sink that stages and writes sequentially, not the in-place
    writer, and a basis to read from); else None."""
    if basis is None or getattr(sink, "write_block", None) is not None:
        return None
    return sink if getattr(sink, "writable", None) is not None else None


def _copy_run(basis, first: int, last: int, blen: int, count: int, last_len: int,
              sink, hasher) -> int:
    """As ``_run_data`` + hash + write, but read straight into the sink's
    staging buffer (no copy in between); returns the run's length."""
    length = (last - first) * blen + (last_len if last == count - 1 else blen)
    off = first * blen
    left = length
    while left:
        with sink.writable() as view:
            k = min(len(view), left)
            with view[:k] as part:
                n = basis.pread_into(part, off)
                if n < k:
                    part[n:] = bytes(k - n)
                hasher.update(part)
        sink.advance(k)
        off += k
        left -= k
    return length


def _next_tokens(buf, dec) -> list:
    """As many uncompressed tokens as the buffer holds (at least one; up
    to END or a batch limit), for ``wire.read``.  Each token is committed
    as it is taken, so a short read rolls back to the last whole token."""
    out = []
    size = 0
    next_token = dec.next_token
    take_blocks = dec.take_blocks
    while True:
        # Block tokens come many in a row: take them together.
        blocks = take_blocks(buf, min(_BATCH_TOKENS - len(out), 1024))
        if blocks:
            buf.commit()
            out += blocks
            if len(out) >= _BATCH_TOKENS:
                return out
            continue
        try:
            tok = next_token(buf)
        except NeedMore:
            if not out:
                raise
            buf.rollback()
            return out
        buf.commit()
        out.append(tok)
        if tok is END:
            return out
        if type(tok) is not int:
            size += len(tok)
            if size >= _BATCH_BYTES:
                return out
        elif len(out) >= _BATCH_TOKENS:
            return out


def _show(name: bytes) -> str:
    return show(name)
