"""Cache hints that let the disk work ahead of the transfer.

All three are hints only: nothing depends on them having run and every
error is ignored (the transfer then meets it again and reports it as
always).  The lookups run in C without the GIL (native/prefetch.c; Python
twins in _reference.py when the extension lacks them), and the two
lookup threads end by themselves once they find everything cached, so a
warm run pays for a few batches only.

``DestWarmer`` (receiving side): while the file list arrives, a thread
looks up the received names in the destination, so that their dentries
and inodes are cached when the generator checks them, and the
destination's disk reads run during the sender's scan instead of after
it.  Names are resolved as ``io/tree.py`` resolves them: beneath a
directory fd held on the destination root, one O_NOFOLLOW|O_DIRECTORY
open per parent component, an lstat (fstatat without following) for the
last; a name with an empty, "." or ".." component or a leading "/" is
skipped, so nothing outside the destination is ever looked at.  Once
the generator starts, the warmer takes no more names, looks up those it
has queued, and is joined when the receiving side ends (or told to stop
at once on an error).

``ScanAhead`` (sending side): the walk hands the directories it will
enter next to a thread that lists them and lstats their entries, so two
directories are read from the disk at a time.

``ReadAhead`` (sending side): the generator asks for files in list order;
after each request the next few regular files of the list get
POSIX_FADV_WILLNEED, so the disk reads many small files at once instead
of one synchronous read after another.  The file is opened for the
advice and that fd is the one the sender then reads (no second open).
The window (files and bytes) grows while the requests come one regular
file after the other (a fresh copy) and shrinks when they skip files (a
few changed files), so a run that needs few files reads few that it does
not need.
"""

from __future__ import annotations

import os
import threading
from collections import deque

__all__ = ["DestWarmer", "start_warmer", "ScanAhead", "ReadAhead", "read_ahead_for"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# The warmer starts its thread only once the list is longer than this (a
# list that arrives in one piece leaves nothing to overlap).
WARM_MIN_NAMES = 512
# Batches of names waiting for the thread; more are dropped (memory bound).
WARM_MAX_BATCHES = 64
# A lookup that found its inode cached takes ~1-3 us, one that waited for
# the disk ~10 us or more (amortised over a batch): after this many batches
# (of at least WARM_JUDGE_MIN names) below WARM_CACHED_S a name, the
# destination is taken to be cached and the warmer ends (a warm run pays
# for a few batches only).
WARM_CACHED_S = 5e-6
WARM_JUDGE_MIN = 256
WARM_CACHED_RUNS = 2


class DestWarmer:
    """Looks up received names in the destination on a thread of its own
    (see the module's doc).  ``feed`` never blocks; ``stop`` joins."""

    def __init__(self, root_fd: int):
        self._root_fd = root_fd
        self._pending: list = []          # names before the thread starts
        self._count = 0
        self._queue = None                # queue.Queue of batches, made with the thread
        self._flag = None                 # native.StopFlag, once started
        self._stopped = False
        self._finishing = False
        self._thread = None
        self.warmed = 0                   # names found (for tests)
        self.cached = False               # the thread found the destination cached
        self.dropped = 0                  # batches dropped when the queue was full

    def feed(self, entries) -> None:
        """Names of a decoded batch (entries with ``.name``; an end marker
        without one is skipped)."""
        if self._stopped or self._finishing or self.cached:
            return
        names = [e.name for e in entries if hasattr(e, "name")]
        self._count += len(names)
        if self._thread is None:
            self._pending += names
            if self._count <= WARM_MIN_NAMES:
                return
            names, self._pending = self._pending, []
            import queue              # only a list this long needs these
            from .. import native
            self._queue = queue.Queue(WARM_MAX_BATCHES)
            self._flag = native.StopFlag()
            t = threading.Thread(target=self._run, args=(native.warm_names,),
                                 name="dest-warmer", daemon=True)
            try:
                t.start()
            except RuntimeError:       # no thread to be had: no hint
                self.stop()
                return
            self._thread = t
        import queue
        try:
            self._queue.put_nowait(names)
        except queue.Full:
            self.dropped += 1

    def _run(self, warm_names) -> None:
        flag = self._flag
        cached = 0
        try:
            while not flag.is_set():
                names = self._queue.get()
                if names is None:
                    break
                n = len(names)
                names.append(b"")
                found, took = warm_names(self._root_fd, b"\0".join(names), flag)
                self.warmed += found
                if n >= WARM_JUDGE_MIN:
                    cached = cached + 1 if took < n * WARM_CACHED_S else 0
                    if cached >= WARM_CACHED_RUNS:
                        self.cached = True      # nothing to gain: take no more names
                        break
        except Exception:       # a hint: never the run's failure
            pass
        finally:
            os.close(self._root_fd)

    def finish(self) -> None:
        """No more names: the thread looks up those already queued, then
        ends (``stop`` still joins it)."""
        self._finishing = True
        if self._thread is None or self._stopped:
            return
        import queue
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            self._flag.set()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop looking up names and wait for the thread (a lookup stuck in
        the kernel is left to finish on its own: the thread is a daemon
        and closes its fds itself)."""
        if self._stopped:
            return
        self._stopped = True
        self._pending = []
        t = self._thread
        if t is None:
            os.close(self._root_fd)
            return
        self._flag.set()
        import queue
        while True:     # make room for the wake-up, whatever is queued
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        t.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def start_warmer(dest):
    """A DestWarmer for destination ``dest`` (the receiver's argument), or
    None when there is nothing to warm: no destination, or one that is not
    an existing directory (the list will create it or name one file)."""
    if not dest:
        return None
    path = dest.rstrip(b"/") or b"/"
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError:
        return None
    return DestWarmer(fd)


# ---- the sending side ---------------------------------------------------------------

# Directories waiting for the scan-ahead thread; the oldest are dropped.
SCAN_MAX_DIRS = 4096
# A directory listed in less than this (per entry, plus a fixed part) was
# cached; after SCAN_CACHED_RUNS of them in a row the thread ends.
SCAN_CACHED_S = 4e-6
SCAN_CACHED_FIXED_S = 50e-6
SCAN_CACHED_RUNS = 8


class ScanAhead:
    """Lists and lstats the directories the sender's walk enters next, on a
    thread of its own (native.warm_dir, without the GIL), so that the walk
    finds their entries cached and two directories are read from the disk
    at a time.  The walk hands over the subdirectories it has decided to
    enter (after its filters and -x) but the first, which it enters at
    once; they are taken last in, first out: the walk's depth-first order."""

    def __init__(self):
        self._stack: list = []
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = None
        self._flag = None
        self.listed = 0                   # directories listed (for tests)
        self.cached = False               # the thread found the source cached

    def push(self, paths) -> None:
        """Directories the walk enters after the one it enters now, in the
        order it enters them."""
        if self._stopped:
            return
        with self._cond:
            self._stack.extend(reversed(paths))
            if len(self._stack) > SCAN_MAX_DIRS:
                del self._stack[:len(self._stack) - SCAN_MAX_DIRS]
            if self._thread is None:
                from .. import native
                self._flag = native.StopFlag()
                t = threading.Thread(target=self._run, args=(native.warm_dir,),
                                     name="scan-ahead", daemon=True)
                try:
                    t.start()
                except RuntimeError:
                    self._stopped = True
                    return
                self._thread = t
            self._cond.notify()

    def _run(self, warm_dir) -> None:
        cond, stack, flag = self._cond, self._stack, self._flag
        cached = 0
        try:
            while True:
                with cond:
                    while not stack and not self._stopped:
                        cond.wait()
                    if self._stopped:
                        return
                    path = stack.pop()
                found, took = warm_dir(path, flag)
                self.listed += 1
                cached = cached + 1 if took < found * SCAN_CACHED_S + SCAN_CACHED_FIXED_S else 0
                if cached >= SCAN_CACHED_RUNS:
                    self.cached = True      # the source is cached: nothing to gain
                    with cond:
                        self._stopped = True
                        stack.clear()
                    return
        except Exception:       # a hint: never the run's failure
            pass

    def stop(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._stopped = True
            self._stack.clear()
            self._cond.notify()
        if self._thread is not None:
            self._flag.set()
            self._thread.join(timeout)


# The window of files advised ahead of the one requested: at most this many
# files and bytes, and only files up to FILE_MAX (larger ones are read
# sequentially, where the kernel's own read-ahead does this).
AHEAD_FILES = 64
AHEAD_BYTES = 8 << 20
AHEAD_FILE_MAX = 1 << 20
_WILLNEED = getattr(os, "POSIX_FADV_WILLNEED", None)


class ReadAhead:
    """Read-ahead of the regular files that follow each requested one in
    the sorted list (see the module's doc).  Holds the fds of the files in
    its window; ``close`` closes those never asked for."""

    def __init__(self, flist, open_flags: int):
        self.flist = flist
        self.flags = open_flags
        self.next = 0                 # the first list index not looked at yet
        self.window = 2               # files ahead, grows to AHEAD_FILES
        self.ahead: deque = deque()   # (ndx, size, fd) advised, not asked for yet
        self.bytes = 0
        self.last = -1                # the last requested ndx
        self.current = None           # (ndx, fd) of the last request, until taken
        self.advised = 0              # files advised (for tests)

    def requested(self, ndx: int) -> None:
        """The generator asked for ``ndx`` (phase 0): move the window past
        it; the fd opened for it, if it was advised, waits for ``take``."""
        self._drop_current()
        ahead = self.ahead
        if ndx <= self.last:
            return
        # Regular files passed over since the last request: none means the
        # run wants every file (grow), some means it wants few (shrink).
        skipped = 0
        mine = None
        while ahead and ahead[0][0] <= ndx:
            i, size, fd = ahead.popleft()
            self.bytes -= size
            if i == ndx:
                mine = fd
            else:
                skipped += 1
                os.close(fd)
        if skipped == 0 and self.next > ndx:
            self.window = min(self.window * 2, AHEAD_FILES)
        elif skipped:
            self.window = max(self.window >> skipped.bit_length(), 1)
        self.last = ndx
        flist = self.flist
        i = max(self.next, ndx + 1)
        n = len(flist)
        while i < n and len(ahead) < self.window and self.bytes < AHEAD_BYTES:
            e = flist[i]
            if e.is_reg and not e.cleared and 0 < e.size <= AHEAD_FILE_MAX:
                fd = self._advise(e)
                if fd is not None:
                    ahead.append((i, e.size, fd))
                    self.bytes += e.size
            i += 1
        self.next = i
        if mine is not None:
            self.current = (ndx, mine)

    def take(self, ndx: int):
        """The fd opened for ``ndx`` by the last ``requested`` (the caller
        owns it now), or None: open the file yourself."""
        cur = self.current
        if cur is None or cur[0] != ndx:
            return None
        self.current = None
        return cur[1]

    def _drop_current(self) -> None:
        if self.current is not None:
            os.close(self.current[1])
            self.current = None

    def _advise(self, e):
        try:
            fd = os.open(e.src, self.flags)
        except OSError:
            return None
        try:
            os.posix_fadvise(fd, 0, e.size, _WILLNEED)
        except OSError:
            os.close(fd)
            return None
        self.advised += 1
        return fd

    def close(self) -> None:
        self._drop_current()
        while self.ahead:
            os.close(self.ahead.popleft()[2])
        self.bytes = 0


def read_ahead_for(cfg, flist):
    """A ReadAhead for this sender, or None when it would read what the
    run does not (a dry run) or must not cache (--drop-cache)."""
    if _WILLNEED is None or cfg.dry_run or cfg.drop_cache:
        return None
    return ReadAhead(flist, cfg.source_open_flags)
