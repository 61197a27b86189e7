"""The sending role after the file list (sender.c send_files, main.c
read_final_goodbye): answer the generator's requests with the file's
tokens and whole-file checksum, echo itemize records, then the end-of-run
NDX_DONE exchange (SPEC.md "End of run")."""

from __future__ import annotations

import errno
import os
import stat

from ..text import show
from ..errors import ProtocolViolation
from ..protocol.buffer import NeedMore
from ..io.prefetch import read_ahead_for
from ..io.xattrs import read_value
from ..protocol.constants import (FNAMECMP_FNAME, IOERR_GENERAL, IOERR_VANISHED, ITEM_BASIS_TYPE_FOLLOWS,
                                  ITEM_LOCAL_CHANGE, ITEM_REPORT_XATTR,
                                  ITEM_TRANSFER, ITEM_XNAME_FOLLOWS, MSG_IO_ERROR,
                                  MSG_NO_SEND, NDX_DEL_STATS, NDX_DONE)
from ..protocol.ints import decode_shortint, decode_vstring, encode_int32, encode_shortint, encode_vstring
from ..protocol.ndx import NdxDecoder, NdxEncoder
from ..protocol.stats import decode_del_stats, encode_del_stats, encode_stats
from ..protocol.sums import (DEFAULT_MAX_ALLOC, BlockSums, SumHead, decode_block_sums_into, decode_sum_head,
                             encode_sum_head)
from ..protocol.tokens import TokenEncoder
from ..protocol.xattrs import decode_request, encode_values
from .smallfile import SMALL_FILE_MAX, send_small_whole

__all__ = ["Sender", "read_item", "xattr_request_follows"]

SUMS_PER_READ = 8192


def _decode_item(buf, ndx_dec: NdxDecoder):
    """One whole item record in one decode (one wake-up of the wire, not
    four); the ndx decoder's state is put back on NeedMore."""
    prev = ndx_dec.prev_positive, ndx_dec.prev_negative
    try:
        ndx = ndx_dec.decode(buf)
        if ndx == NDX_DEL_STATS:
            return ndx, decode_del_stats(buf), None, None
        if ndx < 0:
            return ndx, 0, None, None
        iflags = decode_shortint(buf)
        basis = buf.byte() if iflags & ITEM_BASIS_TYPE_FOLLOWS else None
        xname = decode_vstring(buf, 4096) if iflags & ITEM_XNAME_FOLLOWS else None
        return ndx, iflags, basis, xname
    except NeedMore:
        ndx_dec.prev_positive, ndx_dec.prev_negative = prev
        raise


def read_item(wire, ndx_dec: NdxDecoder, on_del_stats):
    """One ndx + iflags (+ basis type, + xname) record; NDX_DEL_STATS is
    consumed inline.  Returns (ndx, iflags, basis_type, xname)."""
    while True:
        ndx, iflags, basis, xname = wire.read(_decode_item, ndx_dec)
        if ndx == NDX_DEL_STATS:
            on_del_stats(iflags)
            continue
        if ndx == NDX_DONE:
            return ndx, 0, None, None
        if ndx < 0:
            raise ProtocolViolation(f"Invalid file index: {ndx}", 2)
        return ndx, iflags, basis, xname


def encode_item(enc: NdxEncoder, ndx: int, iflags: int, basis, xname) -> bytes:
    out = enc.encode(ndx) + encode_shortint(iflags)
    if iflags & ITEM_BASIS_TYPE_FOLLOWS:
        out += bytes([basis or 0])
    if iflags & ITEM_XNAME_FOLLOWS:
        out += encode_vstring(xname or b"")
    return out


def xattr_request_follows(cfg, iflags: int) -> bool:
    """Does an xattr request (generator -> sender) or answer (sender ->
    receiver) follow this itemize record?  (sender.c write_ndx_and_attrs)"""
    if not cfg.xattrs or not iflags & ITEM_REPORT_XATTR or cfg.dry_run:
        return False
    both = ITEM_XNAME_FOLLOWS | ITEM_LOCAL_CHANGE
    return not (cfg.xattr_optim and iflags & both == both)


def _sum_head(buf, digest_len: int, max_alloc: int):
    return decode_sum_head(buf, digest_len, max_alloc=max_alloc)


class Sender:
    def __init__(self, wire, flist, cfg, log, report, stats):
        self.wire = wire
        self.flist = flist          # sorted entries
        self.cfg = cfg              # SessionConfig
        self.log = log
        self.report = report
        self.stats = stats
        self.ndx_in = NdxDecoder()
        self.ndx_out = NdxEncoder()
        self.tokens = TokenEncoder(cfg.compress, cfg.compress_level)
        self.io_error = 0
        self.del_stats = None
        self.offload = None         # local copy: engine.offload.SourceTable
        self._redo = False
        self.ahead = read_ahead_for(cfg, flist)     # read-ahead of the files asked for next
        self.max_alloc = DEFAULT_MAX_ALLOC   # --max-alloc: the cap on a peer's sum list
        self.after_read = None      # --remove-source-files: () -> None after each request read

    def _on_del_stats(self, d) -> None:
        self.del_stats = d
        if self.cfg.am_server:
            self.wire.write(self.ndx_out.encode(NDX_DEL_STATS) + encode_del_stats(d))

    def run(self) -> None:
        wire = self.wire
        phase = 0
        digest_len = self.cfg.checksum.digest_len
        start_io_error = self.io_error
        while True:
            ndx, iflags, basis, xname = read_item(wire, self.ndx_in, self._on_del_stats)
            if self.after_read is not None:
                self.after_read()
            if ndx == NDX_DONE:
                phase += 1
                if phase > 2:
                    break
                wire.write(self.ndx_out.encode(NDX_DONE))
                wire.flush()
                continue
            if ndx >= len(self.flist) or self.flist[ndx].cleared:
                raise ProtocolViolation(f"Invalid file index: {ndx} (0 - {len(self.flist) - 1})", 2)
            entry = self.flist[ndx]
            xvalues = b""
            if xattr_request_follows(self.cfg, iflags):
                xvalues = self._xattr_values(entry, wire.read(decode_request))
            if not iflags & ITEM_TRANSFER:
                wire.write(encode_item(self.ndx_out, ndx, iflags, basis, xname) + xvalues)
                self.report.item(entry, iflags, xname)
                continue
            if phase == 2:
                raise ProtocolViolation("got transfer request in phase 2", 2)
            if not entry.is_reg:
                raise ProtocolViolation(f"transfer request for a non-regular file: {ndx}", 2)
            if phase == 0 and self.ahead is not None:
                self.ahead.requested(ndx)
            took = self.offload.copied(ndx) if self.offload is not None else None
            if took is not None:
                self._copied_by_receiver(ndx, entry, iflags, basis, xname, took)
                continue
            if self.cfg.dry_run:
                wire.write(encode_item(self.ndx_out, ndx, iflags, basis, xname))
                self.report.item(entry, iflags, xname)
                self.stats.files_transferred += 1
                self.stats.transferred_size += entry.size
                continue
            mark = (wire.data_written, wire.data_read)     # %b / %c count from here
            head = wire.read(_sum_head, digest_len, self.max_alloc)
            self._redo = phase > 0
            sums = self._read_sums(head)
            digest = self._send_file(ndx, entry, iflags, basis, xname, head, sums, phase, xvalues)
            if digest is not None:
                self.report.item_done(entry, iflags, xname, wire.data_written - mark[0],
                                      wire.data_read - mark[1], digest)
        wire.write(self.ndx_out.encode(NDX_DONE))
        if self.io_error != start_io_error:
            wire.send_msg(MSG_IO_ERROR, encode_int32(self.io_error))
        if self.cfg.am_server:
            self.stats.total_read = wire.bytes_read
            self.stats.total_written = wire.bytes_written
            wire.write(encode_stats(self.stats.wire_stats()))
        wire.flush()
        self._final_goodbye()

    def _read_sums(self, head) -> BlockSums:
        """The block sums after a head, read a slice at a time so no single
        read has to hold the whole list."""
        sums = BlockSums(head.s2length)
        if self.cfg.append and not self._redo:
            return sums         # --append: the head only says how much is kept
        left = head.count
        while left:
            n = min(left, SUMS_PER_READ)
            self.wire.read(decode_block_sums_into, SumHead(n, head.blength, head.s2length, 0), sums)
            left -= n
        return sums

    def _final_goodbye(self) -> None:
        wire = self.wire
        ndx, *_ = read_item(wire, self.ndx_in, self._on_del_stats)
        if self.after_read is not None:
            self.after_read()
        if ndx == NDX_DONE and self.cfg.protocol >= 31:
            wire.write(self.ndx_out.encode(NDX_DONE))
            wire.flush()
            ndx, *_ = read_item(wire, self.ndx_in, self._on_del_stats)
        if ndx != NDX_DONE:
            raise ProtocolViolation(f"Invalid packet at end of run ({ndx})", 2)

    def _xattr_values(self, entry, nums: list) -> bytes:
        """The full values of the long xattrs the generator asked for,
        re-read from the file (xattrs.c send_xattr_request)."""
        if not nums:
            return encode_values(())
        by_num = {it.num: it for it in entry.xattrs or ()}
        out = []
        for num in sorted(set(nums)):
            it = by_num.get(num)
            if it is None:
                raise ProtocolViolation(f"[sender] could not find xattr #{num} for {_show(entry.name)}", 2)
            if not it.abbreviated:
                raise ProtocolViolation(f"[sender] internal abbrev error on {_show(entry.name)} "
                                        f"({_show(it.name)}, len={it.datum_len})!", 2)
            value = read_value(entry.src, it.name)
            if value is None:
                self.io_error |= IOERR_GENERAL
                self.log.error(f"failed to re-read xattr {_show(it.name)} for {_show(entry.src)}")
                value = b""
            out.append((num, value))
        return encode_values(out)

    def _send_file(self, ndx, entry, iflags, basis, xname, head, sums, phase, xvalues=b""):
        """Send one file (after the xattr values the generator asked for);
        its whole-file checksum, or None if it could not be read."""
        wire = self.wire
        # Opened already when the read-ahead advised it (io/prefetch.py).
        fd = self.ahead.take(ndx) if self.ahead is not None and phase == 0 else None
        if fd is None:
            try:
                fd = open_source(entry.src, self.cfg.source_open_flags)
            except OSError as e:
                self._open_failed(ndx, entry, e)
                return
        try:
            st = os.fstat(fd)
            size = st.st_size
            if not stat.S_ISREG(st.st_mode):
                if not (self.cfg.copy_devices and (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode))):
                    self._open_failed(ndx, entry, OSError(errno.EINVAL, "not a regular file"))
                    return
                if not size:       # --copy-devices: the size is the end offset
                    size = os.lseek(fd, 0, os.SEEK_END)
                    os.lseek(fd, 0, os.SEEK_SET)
            append = self.cfg.append if phase == 0 else 0
            if append and size < entry.size:
                # Shrunk since the file list: appending would corrupt it.
                self.log.warning(f"skipped diminished file: \"{_show(os.path.abspath(entry.src))}\"")
                self.wire.send_msg(MSG_NO_SEND, encode_int32(ndx))
                return
            self.report.item(entry, iflags, xname)
            first = encode_item(self.ndx_out, ndx, iflags, basis, xname) + xvalues \
                + encode_sum_head(head)
            if not (append or head.count or self.cfg.drop_cache) and size <= SMALL_FILE_MAX:
                return send_small_whole(self, fd, size, ndx, entry, first)
            # The delta search and its readers load with the first file sent.
            from .matcher import MatchStats, send_append, send_delta, send_whole
            wire.write(first)
            enc = self.tokens
            wire.write(enc.begin_file())
            hasher = self.cfg.checksum.file_hasher()
            mstats = MatchStats()

            report = self.report
            total = len(self.flist)
            done = [0]
            report.progress(ndx, total, 0, entry.size, False, entry.name)

            def emit_literal(data):
                wire.write_iov(enc.literal_iov(data))
                done[0] += len(data)
                report.progress(ndx, total, done[0], entry.size, False, entry.name)

            def emit_block(i, data):
                wire.write(enc.block(i, data))
                done[0] += len(data)
                report.progress(ndx, total, done[0], entry.size, False, entry.name)

            def emit_blocks(first, n, data):
                wire.write(enc.blocks(first, n, data, head.blength))
                done[0] += len(data)
                report.progress(ndx, total, done[0], entry.size, False, entry.name)

            if append:
                send_append(fd, head.file_length, append > 1, emit_literal, hasher, mstats,
                            self.cfg.drop_cache)
            elif head.count == 0:
                send_whole(fd, emit_literal, hasher, mstats, self.cfg.drop_cache)
            else:
                strong = self.cfg.checksum.seeded(self.cfg.seed)
                # --inplace over the file itself (not a backup copy): the
                # receiver overwrites its basis as it goes.
                updating = self.cfg.inplace and basis in (None, FNAMECMP_FNAME)
                send_delta(fd, head, sums, strong, emit_literal,
                           emit_block, hasher, mstats, self.cfg.drop_cache, updating,
                           emit_blocks)
            wire.write(enc.end())
            digest = hasher.digest()
            wire.write(digest)
            report.progress(ndx, total, done[0], entry.size, True, entry.name)
            self.stats.literal_data += mstats.literal
            self.stats.matched_data += mstats.matched
            self.stats.files_transferred += 1
            self.stats.transferred_size += entry.size
            return digest
        finally:
            os.close(fd)

    def _copied_by_receiver(self, ndx, entry, iflags, basis, xname, took: float) -> None:
        """A local copy's receiver copied this file in the kernel and asked
        for it without data (engine/offload.py): counted and logged as
        sent, echoed as rsync echoes a transfer without data (-n)."""
        self.wire.write(encode_item(self.ndx_out, ndx, iflags, basis, xname))
        report, total = self.report, len(self.flist)
        report.item(entry, iflags, xname)
        report.progress(ndx, total, 0, entry.size, False, entry.name)
        report.progress(ndx, total, entry.size, entry.size, True, entry.name, elapsed=took)
        # Logged as a moved file; %b/%c are the bytes that crossed the
        # socket for it: none.
        report.item_done(entry, iflags, xname, 0, 0, None)
        self.stats.files_transferred += 1
        self.stats.transferred_size += entry.size
        self.stats.offloaded += entry.size

    def _open_failed(self, ndx, entry, e: OSError) -> None:
        if e.errno == errno.ENOENT:
            self.io_error |= IOERR_VANISHED
            self.log.warning(f"file has vanished: \"{_show(os.path.abspath(entry.src))}\"")
        else:
            self.io_error |= IOERR_GENERAL
            self.log.error(f"rsync: [sender] send_files failed to open \"{_show(os.path.abspath(entry.src))}\": "
                           f"{e.strerror} ({e.errno})")
        self.wire.send_msg(MSG_NO_SEND, encode_int32(ndx))


def open_source(path: bytes, flags: int) -> int:
    """Open a file to send.  With --open-noatime's O_NOATIME, a file we do
    not own (EPERM) is opened again without it, as rsync does."""
    try:
        return os.open(path, flags)
    except PermissionError:
        if not flags & _O_NOATIME:
            raise
        return os.open(path, flags & ~_O_NOATIME)


_O_NOATIME = getattr(os, "O_NOATIME", 0)


def _show(name: bytes) -> str:
    return show(name)
