"""What the user sees: -v names, -i itemize lines, "deleting", the
summary and --stats, in rsync's words and number formats.  The output
streams are injected so tests and the API can capture them."""

from __future__ import annotations

import stat
import sys
import threading
import time

from .protocol.constants import (ITEM_IS_NEW, ITEM_LOCAL_CHANGE, ITEM_REPORT_ACL, ITEM_REPORT_ATIME,
                                 ITEM_REPORT_XATTR,
                                 ITEM_REPORT_CHANGE, ITEM_REPORT_GROUP, ITEM_REPORT_OWNER,
                                 ITEM_REPORT_PERMS, ITEM_REPORT_SIZE, ITEM_REPORT_TIME,
                                 ITEM_TRANSFER, ITEM_XNAME_FOLLOWS, SIGNIFICANT_ITEM_FLAGS)
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
        self.flist_size = 0
        self.flist_buildtime = 0
        self.flist_xfertime = 0
        self.total_read = 0
        self.total_written = 0
        self.deleted = None

    def count_flist(self, entries) -> None:
        for e in entries:
            if e.cleared:
                continue
            self.num_files += 1
            if e.is_reg:
                self.num_reg += 1
                self.total_size += e.size
            elif e.is_dir:
                self.num_dir += 1
            elif e.is_link:
                self.num_link += 1
                self.total_size += e.size
            elif e.is_device:
                self.num_dev += 1
            else:
                self.num_special += 1

    def wire_stats(self) -> TransferStats:
        return TransferStats(self.total_read, self.total_written, self.total_size,
                             self.flist_buildtime, self.flist_xfertime)


def comma(n: int) -> str:
    return f"{n:,}"


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "f"
    if stat.S_ISDIR(mode):
        return "d"
    if stat.S_ISLNK(mode):
        return "L"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "D"
    return "S"


def itemize_string(entry, iflags: int, sending: bool) -> str:
    """rsync's 11-character %i code (log.c)."""
    if iflags & ITEM_TRANSFER:
        c0 = "<" if sending else ">"
    elif iflags & ITEM_LOCAL_CHANGE:
        c0 = "h" if iflags & ITEM_XNAME_FOLLOWS and stat.S_ISREG(entry.mode) else "c"
    else:
        c0 = "."
    c1 = _kind(entry.mode)
    if iflags & ITEM_IS_NEW:
        return c0 + c1 + "+" * 9
    rest = [
        "c" if iflags & ITEM_REPORT_CHANGE else ".",
        "s" if iflags & ITEM_REPORT_SIZE else ".",
        "t" if iflags & ITEM_REPORT_TIME else ".",
        "p" if iflags & ITEM_REPORT_PERMS else ".",
        "o" if iflags & ITEM_REPORT_OWNER else ".",
        "g" if iflags & ITEM_REPORT_GROUP else ".",
        "u" if iflags & ITEM_REPORT_ATIME else ".",
        "a" if iflags & ITEM_REPORT_ACL else ".",
        "x" if iflags & ITEM_REPORT_XATTR else ".",
    ]
    s = "".join(rest)
    if s == "." * 9:
        s = " " * 9
    return c0 + c1 + s


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
        self.stats = Stats()
        self.records = []          # (name, action, itemize) for the API
        self.remote_info = None    # a server sends its info lines to the client
        self._broken = False
        self.callback = None
        self._p_start = None
        self._p_last = 0.0
        self._p2_start = None
        self._p2_done = 0
        self._p2_line = False
        self._xfers = 0
        self._lock = threading.Lock()

    def _print(self, text: str) -> None:
        with self._lock:
            if self._broken:
                return
            try:
                self.out.write(text + "\n")
                self.out.flush()
            except BrokenPipeError:
                self._broken = True  # the reader went away; the transfer goes on

    def item(self, entry, iflags: int, xname: bytes | None = None) -> None:
        """One item of the transfer, logged where rsync logs it: on the
        sending side when the generator's record is echoed (push), on the
        receiving side when the echo or the data arrives (pull)."""
        sig = iflags & SIGNIFICANT_ITEM_FLAGS
        if iflags & ITEM_IS_NEW:
            self.stats.created[{"f": "reg", "d": "dir", "L": "link", "D": "dev"}.get(
                _kind(entry.mode), "special")] += 1
        code = itemize_string(entry, iflags, self.sending)
        # rsync's %L: " => name" only for a non-empty name (an already
        # linked member is itemized with an empty one, e.g. for its xattrs).
        hlink = bool(xname) and entry.is_reg and not iflags & ITEM_TRANSFER
        self.records.append((_name(entry).encode("utf-8", "surrogateescape"),
                             "hardlink" if hlink else "transfer" if iflags & ITEM_TRANSFER else "change", code,
                             entry.size if iflags & ITEM_TRANSFER else 0))
        if self.silent:
            return
        shown = self._shown(entry) + (f" => {show(xname)}" if hlink else "")
        if self.opts.itemize:
            if sig or self.opts.itemize > 1:
                self._print(f"{code} {shown}")
        elif self.opts.verbose or (self.opts.progress and iflags & ITEM_TRANSFER):
            # rsync's -v (log.c maybe_log_item without %i): transfers, local
            # creations/changes (dirs, links, devices) and changed dirs --
            # not files whose only change is an attribute.
            if iflags & ITEM_TRANSFER or (sig and (iflags & ITEM_LOCAL_CHANGE or entry.is_dir)):
                self._print(shown)

    def _shown(self, entry) -> str:
        n = show(entry.name)
        if entry.is_dir:
            n = "./" if n == "." else n + "/"
        if entry.is_link and entry.link is not None:
            n += " -> " + show(entry.link)
        return n

    def progress(self, ndx: int, total_files: int, done: int, size: int, final: bool,
                 name: bytes = b"") -> None:
        """rsync --progress: a line per file, rewritten in place while it
        moves and finished with the transfer count and files left.  An API
        caller's callback gets every step."""
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
        if not final and now - self._p_last < 0.5:
            return
        self._p_last = now
        elapsed = max(now - self._p_start, 1e-6)
        rate = done / elapsed
        pct = 100 if size == 0 else int(done * 100 / size)
        if final:
            self._xfers += 1
            secs = int(elapsed)
            tail = f" (xfr#{self._xfers}, to-chk={max(total_files - ndx - 1, 0)}/{total_files})"
            eol = "\n"
        else:
            secs = int((size - done) / rate) if rate > 0 else 0
            tail, eol = "", "\r"
        for unit, div in (("GB/s", 1 << 30), ("MB/s", 1 << 20), ("kB/s", 1 << 10)):
            if rate >= div or unit == "kB/s":
                shown = rate / div
                break
        line = (f"{comma(done):>15} {pct:3d}% {shown:7.2f}{unit} "
                f"{secs // 3600:4d}:{secs // 60 % 60:02d}:{secs % 60:02d}{tail}")
        with self._lock:
            if not self._broken:
                try:
                    self.out.write(line + eol)
                    self.out.flush()
                except BrokenPipeError:
                    self._broken = True

    def deleted(self, shown: bytes) -> None:
        self.records.append((shown, "delete", "*deleting", 0))
        if self.silent:
            return
        n = show(shown)
        if self.opts.itemize:
            self._print(f"*deleting   {n}")
        elif self.opts.verbose:
            self._print(f"deleting {n}")

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

    def flist_done(self, receiving: bool) -> None:
        """The "... file list ... done" line of -v (never incremental here)."""
        if self.opts.verbose and not self.silent:
            self._print("receiving file list ... done" if receiving else "building file list ... done")

    def info(self, text: str) -> None:
        if self.remote_info is not None:
            self.remote_info(text)
        elif not self.silent:
            self._print(text)

    def summary(self, sent: int, received: int, elapsed: float, deleted=None) -> None:
        if self.silent:
            return
        if self._p2_line:
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
            self._print(line)


def _breakdown(reg, dirs, links, devs, specials) -> str:
    parts = []
    for label, n in (("reg", reg), ("dir", dirs), ("link", links), ("dev", devs), ("special", specials)):
        if n:
            parts.append(f"{label}: {comma(n)}")
    return f" ({', '.join(parts)})" if parts else ""
