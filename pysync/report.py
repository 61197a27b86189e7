"""What the user sees: -v names, -i itemize lines, "deleting", the
summary and --stats, in rsync's words and number formats.  The output
streams are injected so tests and the API can capture them."""

from __future__ import annotations

import stat
import sys
import threading
import time

from .protocol.constants import ITEM_IS_NEW, ITEM_LOCAL_CHANGE, ITEM_TRANSFER, SIGNIFICANT_ITEM_FLAGS
from .logformat import ITEM_DELETED, LogFormat, LogItem, itemize_code, sum_as_hex
from .protocol.stats import TransferStats
from .text import show

__all__ = ["Report", "Stats", "itemize_string", "comma"]


class Stats:
    """Counters for --stats and the summary line."""

    def __init__(self):
        self.num_files = 0
        self.num_reg = self.num_dir = self.num_link = self.num_dev = self.num_special = 0
        self.created = {"reg": 0, "dir": 0, "link": 0, "dev": 0, "special": 0}
        self.files_transferred = 0
        self.total_size = 0
        self.transferred_size = 0
        self.literal_data = 0
        self.matched_data = 0
        self.offloaded = 0       # local copies: bytes copied in the kernel, not sent
        self.flist_size = 0
        self.flist_buildtime = 0
        self.flist_xfertime = 0
        self.total_read = 0
        self.total_written = 0
        self.deleted = None

    def count_flist(self, entries, sending: bool = False) -> None:
        # A mode-0 entry (--delete-missing-args) is a file to the sender
        # and a special to the receiver, as in flist.c's two counts.
        # (One pass over every entry: the type bits compared here, the
        # counts summed locally.)
        files = reg = dirs = links = devs = specials = size = 0
        for e in entries:
            if e.cleared:
                continue
            files += 1
            mode = e.mode
            fmt = mode & 0o170000
            if fmt == 0o100000 or (sending and not mode):
                reg += 1
                size += e.size
            elif fmt == 0o040000:
                dirs += 1
            elif fmt == 0o120000:
                links += 1
                size += e.size
            elif fmt == 0o020000 or fmt == 0o060000:
                devs += 1
            else:
                specials += 1
        self.num_files += files
        self.num_reg += reg
        self.num_dir += dirs
        self.num_link += links
        self.num_dev += devs
        self.num_special += specials
        self.total_size += size

    def wire_stats(self) -> TransferStats:
        return TransferStats(self.total_read, self.total_written, self.total_size,
                             self.flist_buildtime, self.flist_xfertime)


_DELETING = LogFormat("deleting %n")
# --stats "Number of created files" by kind, keyed by the mode's type bits.
_CREATED_KIND = {stat.S_IFREG: "reg", stat.S_IFDIR: "dir", stat.S_IFLNK: "link",
                 stat.S_IFCHR: "dev", stat.S_IFBLK: "dev"}


def comma(n: int) -> str:
    return f"{n:,}"


def itemize_string(entry, iflags: int, sending: bool) -> str:
    """rsync's 11-character %i code (log.c) for the API's records."""
    return itemize_code(iflags, entry.mode, "send" if sending else "recv", False)


def _name(entry) -> str:
    n = entry.name.decode("utf-8", "surrogateescape")
    if entry.is_dir:
        n = "./" if n == "." else n + "/"
    return n


class Report:
    """Prints per-item lines on the client side only (a server is silent
    on stdout: its stdout is the protocol stream)."""

    def __init__(self, opts, out=None, err=None, am_server=False, sending=False):
        self.opts = opts
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.silent = am_server or opts.quiet
        self.sending = sending
        self.am_sender = sending   # %o "send"/"recv" (a local copy logs as a sender)
        self.local = False         # a local copy: %i shows ">" on the sending side
        self.xfer_sum = ("md5", 16)   # %C: the transfer checksum (name, length) ...
        self.file_sum = ("md5", 16)   # ... and -c's file checksum, set once negotiated
        self.logfile = None        # --log-file (pysync/logfile.py), client side only
        self.stats = Stats()
        # (name, action, itemize, size) for the API, made when asked for:
        # items are kept as (entry, iflags, hlink) until then, and only
        # when ``keep_records`` is set (the API): a command-line run keeps
        # no state per item (20,000 records were ~1.9 MiB per process).
        self.keep_records = False
        self._records = []
        self.remote_info = None    # a server sends its info lines to the client
        self._broken = False
        self.line_open = False     # stdout's last line is unfinished
        self.callback = None
        self._p_start = None
        self._p_last = 0.0
        self._p2_start = None
        self._p2_done = 0
        self._p2_line = False
        self._xfers = 0
        self._lock = threading.Lock()
        self._stdout_format(opts)

    def _stdout_format(self, opts) -> None:
        """rsync's choice of the stdout line format (options.c): --out-format,
        else "%i %n%L" for -i, else "%n%L" for -v; and whether lines are
        written before a file moves (no %b/%c/%C in the format)."""
        self.out_format = None
        self.out_has_i = 0
        self.log_before = True
        if opts.log_format is not None:
            self.out_format = LogFormat(opts.log_format)
            if self.out_format.has("i"):
                self.out_has_i = opts.itemize | 1
            self.log_before = not any(self.out_format.has(c) for c in "bcC")
        elif opts.itemize:
            self.out_format = LogFormat("%i %n%L")
            self.out_has_i = opts.itemize
        elif opts.verbose or opts.progress:
            # --progress alone also names each item, as -v does (rsync's
            # --progress raises info "name" to 1 when nothing else set it).
            self.out_format = LogFormat("%n%L")
        self.out_has_o_or_i = bool(self.out_has_i) or bool(self.out_format and self.out_format.has("o"))

    def _print(self, text: str) -> None:
        with self._lock:
            if self._broken:
                return
            if self.line_open:          # a file-list or progress line is unfinished
                text = "\n" + text
                self.line_open = False
            try:
                self.out.write(text + "\n")
                self.out.flush()
            except BrokenPipeError:
                self._broken = True  # the reader went away; the transfer goes on

    def log_line(self, text: str) -> None:
        """A message rsync also writes to --log-file (FINFO, FERROR, FLOG)."""
        if self.logfile is not None:
            self.logfile.write(text)

    def _log_item(self, entry, iflags: int, xname, to_stdout: bool, to_file: bool,
                  written: int = 0, read: int = 0, digest: bytes | None = None) -> None:
        """log.c log_item(): the stdout line and/or the log-file line."""
        lf = self.logfile
        to_stdout = to_stdout and self.out_format is not None and not self.silent
        to_file = to_file and lf is not None and not lf.empty
        if not (to_stdout or to_file):
            return
        o = self.opts
        sum_name, sum_len = self.file_sum if o.checksum else self.xfer_sum
        if o.checksum and entry.is_reg and getattr(entry, "sum", None):
            sum_hex = sum_as_hex(sum_name, entry.sum)
        else:
            sum_hex = sum_as_hex(sum_name, digest)
        hlink = xname if xname is not None and entry.is_reg and not iflags & ITEM_TRANSFER else None
        item = LogItem.of_entry(entry, iflags, "send" if self.am_sender else "recv",
                                hlink=hlink, written=written, read=read, sum_hex=sum_hex,
                                sum_len=sum_len, am_sender=self.am_sender,
                                local=self.local, owner=o.owner, group=o.group, times=o.times)
        if to_stdout:
            self._print(self.out_format.render(item))
        if to_file:
            lf.write(lf.format.render(item))

    def item(self, entry, iflags: int, xname: bytes | None = None) -> None:
        """One item of the transfer, logged where rsync logs it: on the
        sending side when the generator's record is echoed (push), on the
        receiving side when the echo or the data arrives (pull).  A file
        that moves is logged again, to --log-file and to a stdout format
        with %b/%c/%C, by ``item_done`` once it has moved."""
        sig = iflags & SIGNIFICANT_ITEM_FLAGS
        if iflags & ITEM_IS_NEW:
            self.stats.created[_CREATED_KIND.get(stat.S_IFMT(entry.mode), "special")] += 1
        # rsync's %L: " => name" only for a non-empty name (an already
        # linked member is itemized with an empty one, e.g. for its xattrs).
        hlink = bool(xname) and entry.is_reg and not iflags & ITEM_TRANSFER
        if self.keep_records:
            self._records.append((entry, iflags, hlink))
        if (self.out_format is None or self.silent) and self.logfile is None:
            return          # no line to write (most runs without -v/-i)
        if iflags & ITEM_TRANSFER:
            if self.opts.dry_run or self.log_before:
                self._log_item(entry, iflags, xname, True, False)
            return
        # upstream: log.c maybe_log_item()
        o = self.opts
        has_i = self.out_has_i
        see_item = has_i and (sig or xname or has_i > 1 or (o.verbose >= 2 and has_i))
        local_change = iflags & ITEM_LOCAL_CHANGE and sig
        if see_item or local_change or xname or (entry.is_dir and sig):
            lf = self.logfile
            to_file = bool(sig or (lf is not None and lf.has_i))
            self._log_item(entry, iflags, xname, True, to_file)

    @property
    def records(self) -> list:
        """(name, action, itemize code, size) of every item and deletion."""
        recs = self._records
        for i, rec in enumerate(recs):
            if len(rec) == 3:
                entry, iflags, hlink = rec
                recs[i] = (_name(entry).encode("utf-8", "surrogateescape"),
                           "hardlink" if hlink else "transfer" if iflags & ITEM_TRANSFER
                           else "change", itemize_string(entry, iflags, self.sending),
                           entry.size if iflags & ITEM_TRANSFER else 0)
        return recs

    def item_done(self, entry, iflags: int, xname, written: int, read: int,
                  digest: bytes | None) -> None:
        """A file has moved: the log-file line, and the stdout line of a
        format that shows its byte counts or checksum."""
        self._log_item(entry, iflags, xname, not self.log_before, True, written, read, digest)

    def _shown(self, entry) -> str:
        n = show(entry.name)
        if entry.is_dir:
            n = "./" if n == "." else n + "/"
        if entry.is_link and entry.link is not None:
            n += " -> " + show(entry.link)
        return n

    def progress(self, ndx: int, total_files: int, done: int, size: int, final: bool,
                 name: bytes = b"", elapsed: float | None = None) -> None:
        """rsync --progress: a line per file, rewritten in place while it
        moves and finished with the transfer count and files left.  An API
        caller's callback gets every step.  ``elapsed`` is the file's time
        when it was not measured here (a local copy the child made)."""
        if self.callback is not None:
            self.callback(name, done, size, final)
        if self.silent:
            return
        if getattr(self.opts, "progress2", False):
            self._progress2(ndx, total_files, done, size, final)
            return
        if not self.opts.progress:
            return
        now = time.monotonic()
        if done == 0 or self._p_start is None:
            self._p_start = now
            self._p_last = 0.0
        # As rsync: nothing before the first data has arrived, then at
        # most one update a second until the file's final line.
        if not final and (done == 0 or now - self._p_last < 1.0):
            return
        self._p_last = now
        elapsed = max(now - self._p_start if elapsed is None else elapsed, 1e-6)
        rate = done / elapsed
        pct = 100 if done == size else int(done * 100 / size)
        if final:
            self._xfers += 1
            remain = elapsed
            eol = f" (xfr#{self._xfers}, to-chk={max(total_files - ndx - 1, 0)}/{total_files})\n"
        else:
            remain = (size - done) / rate if rate > 0 else 0.0
            eol = "  "
        # As progress.c: rates in kB/s (1024), MB/s past 1024 kB/s, GB/s
        # past 1024 MB/s; each line starts with a carriage return.
        kb = rate / 1024
        unit = "kB/s"
        if kb > 1024 * 1024:
            kb, unit = kb / (1024 * 1024), "GB/s"
        elif kb > 1024:
            kb, unit = kb / 1024, "MB/s"
        if remain < 0 or remain > 9999 * 3600:
            rem = "  ??:??:??"
        else:
            secs = int(remain)
            rem = f"{secs // 3600:4d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        self._write_raw(f"\r{comma(done):>15} {pct:3d}% {kb:7.2f}{unit} {rem}{eol}")

    def deleted(self, shown: bytes, mode: int | None = None) -> None:
        """A deletion (log.c log_delete); ``shown`` ends with "/" for a
        directory.  The mode is the deleted file's when we deleted it, the
        bare type when the peer told us (MSG_DELETED), as in rsync."""
        if self.keep_records:
            self._records.append((shown, "delete", "*deleting", 0))
        name = shown[:-1] if shown.endswith(b"/") and len(shown) > 1 else shown
        if mode is None:
            mode = stat.S_IFDIR if shown.endswith(b"/") else stat.S_IFREG
        o = self.opts
        item = LogItem(name, mode, ITEM_DELETED, "del.", given_name=True,
                       sum_len=(self.file_sum if o.checksum else self.xfer_sum)[1],
                       am_sender=self.am_sender, local=self.local, owner=o.owner, group=o.group)
        if not self.silent and (self.opts.verbose or self.out_format is not None):
            fmt = self.out_format if self.out_has_o_or_i else _DELETING
            self._print(fmt.render(item))
        lf = self.logfile
        if lf is not None and not self.opts.dry_run:      # (an empty format still logs these)
            lf.write((lf.format if lf.has_o_or_i else _DELETING).render(item))

    def _progress2(self, ndx, total_files, done, size, final) -> None:
        """--info=progress2: one line for the whole transfer, rewritten in
        place: bytes so far, percent of the total size, rate, time."""
        now = time.monotonic()
        if self._p2_start is None:
            self._p2_start = now
        current = self._p2_done + done
        if final:
            self._p2_done += done
            self._xfers += 1
        elif now - self._p_last < 0.5:
            return
        self._p_last = now
        elapsed = max(now - self._p2_start, 1e-6)
        rate = current / elapsed
        total = max(self.stats.total_size, 1)
        pct = min(100, int(current * 100 / total))
        for unit, div in (("GB/s", 1 << 30), ("MB/s", 1 << 20), ("kB/s", 1 << 10)):
            if rate >= div or unit == "kB/s":
                shown = rate / div
                break
        secs = int(elapsed)
        line = (f"\r{comma(current):>15} {pct:3d}% {shown:7.2f}{unit} "
                f"{secs // 3600:4d}:{secs // 60 % 60:02d}:{secs % 60:02d} "
                f"(xfr#{self._xfers}, to-chk={max(total_files - ndx - 1, 0)}/{total_files})")
        with self._lock:
            if not self._broken:
                try:
                    self.out.write(line)
                    self.out.flush()
                    self._p2_line = True
                except BrokenPipeError:
                    self._broken = True

    def _flist_level(self) -> int:
        """rsync's info "flist" level on stdout: 1 with -v ("... done"), 2
        with --progress (a running count, then "N files to consider").
        Shown only when directories are sent, and never by a server."""
        o = self.opts
        if self.silent or not getattr(o, "xfer_dirs", True):
            return 0
        return 2 if o.progress else 1 if o.verbose else 0

    def flist_start(self, receiving: bool) -> None:
        """The start of the file-list line, before the list is built (once:
        a client shows it before the first peer message can arrive)."""
        if getattr(self, "_flist_started", False):
            return
        self._flist_started = True
        self._flist_shown = self._flist_level()
        if self._flist_shown:
            self._write_raw("receiving file list ... " if receiving else "building file list ... ")

    def counting_flist(self) -> bool:
        return getattr(self, "_flist_shown", 0) > 1

    def flist_count(self, count: int) -> None:
        """--progress: the running count while the list is built, every
        100 entries (the caller calls this for count % 100 == 0)."""
        if getattr(self, "_flist_shown", 0) > 1:
            # The first count starts a line of its own after "... file list ... ".
            first = not getattr(self, "_flist_counted", False)
            self._flist_counted = True
            self._write_raw(("\n" if first else "") + f" {count} files...\r")

    def flist_done(self, receiving: bool, count: int = 0) -> None:
        """The end of the file-list line (never incremental here)."""
        level = getattr(self, "_flist_shown", 0)
        if level:
            line = f"{count} file{' ' if count == 1 else 's '}to consider" if level > 1 else "done"
            self._write_raw(line + "\n")
            self.log_line(line)      # rsync logs it too (without incremental recursion)

    def _write_raw(self, text: str) -> None:
        """Output that may leave its line open (rsync's output_needs_newline):
        the next message, here or on stderr, starts on a line of its own."""
        with self._lock:
            if self._broken:
                return
            self.line_open = not text.endswith("\n")
            try:
                self.out.write(text)
                self.out.flush()
            except BrokenPipeError:
                self._broken = True

    def take_open_line(self) -> bool:
        """For a message about to go out: True (once) if it must first end
        an unfinished line."""
        with self._lock:
            was, self.line_open = self.line_open, False
            return was

    def _names_created(self) -> bool:
        """main.c: the "created ..." lines are said with info "name" (-v,
        or --progress alone) or an itemizing format."""
        o = self.opts
        return bool(o.verbose or self.out_has_i or progress_names(o))

    def created_dir(self, path: bytes) -> None:
        if self._names_created():
            self.info(f"created directory {show(path)}")

    def created_dirs(self, count: int, path: bytes) -> None:
        """--mkpath's line."""
        if self._names_created():
            self.info(f"created {count} director{'y' if count == 1 else 'ies'} for {show(path)}")

    def info(self, text: str) -> None:
        self.log_line(text)
        if self.remote_info is not None:
            self.remote_info(text)
        elif not self.silent:
            self._print(text)

    def summary(self, sent: int, received: int, elapsed: float, deleted=None) -> None:
        if self._p2_line and not self.silent:
            self._print("")      # end the progress2 line
        s = self.stats
        lines = []
        if self.opts.stats:
            c = s.created
            ncreated = sum(c.values())
            lines += [
                "",
                f"Number of files: {comma(s.num_files)}{_breakdown(s.num_reg, s.num_dir, s.num_link, s.num_dev, s.num_special)}",
                f"Number of created files: {comma(ncreated)}{_breakdown(c['reg'], c['dir'], c['link'], c['dev'], c['special'])}",
                f"Number of deleted files: {comma(deleted.total if deleted else 0)}"
                + (_breakdown(deleted.files, deleted.dirs, deleted.symlinks, deleted.devices, deleted.specials)
                   if deleted else ""),
                f"Number of regular files transferred: {comma(s.files_transferred)}",
                f"Total file size: {comma(s.total_size)} bytes",
                f"Total transferred file size: {comma(s.transferred_size)} bytes",
                f"Literal data: {comma(s.literal_data)} bytes",
                f"Matched data: {comma(s.matched_data)} bytes",
                f"File list size: {comma(s.flist_size)}",
                f"File list generation time: {s.flist_buildtime / 1000:.3f} seconds",
                f"File list transfer time: {s.flist_xfertime / 1000:.3f} seconds",
                f"Total bytes sent: {comma(sent)}",
                f"Total bytes received: {comma(received)}",
            ]
        if self.opts.verbose or self.opts.stats:
            rate = (sent + received) / elapsed if elapsed > 0 else 0.0
            speedup = s.total_size / (sent + received) if sent + received else 0.0
            lines += [
                "",
                f"sent {comma(sent)} bytes  received {comma(received)} bytes  {rate:,.2f} bytes/sec",
                f"total size is {comma(s.total_size)}  speedup is {speedup:,.2f}"
                + (" (DRY RUN)" if self.opts.dry_run else ""),
            ]
        for line in lines:
            if line:
                self.log_line(line)     # rsync logs its summary but not the blank lines
            if not self.silent:
                self._print(line)


def progress_names(opts) -> bool:
    """--progress raising rsync's info "name" to 1: when no -v, -i or
    --out-format set it (a local copy's child sees the format the client
    told it, "X", and the --progress it was given)."""
    if not opts.progress or opts.verbose or opts.itemize:
        return False
    return opts.log_format is None or (getattr(opts, "local_server", False) and opts.log_format == "X")


def _breakdown(reg, dirs, links, devs, specials) -> str:
    parts = []
    for label, n in (("reg", reg), ("dir", dirs), ("link", links), ("dev", devs), ("special", specials)):
        if n:
            parts.append(f"{label}: {comma(n)}")
    return f" ({', '.join(parts)})" if parts else ""
