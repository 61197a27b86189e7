"""--remove-source-files on the sending side (sender.c successful_send).

The receiving side sends MSG_SUCCESS with a file's index once the file is
safely in place (or was already up to date); the sender then removes the
source file -- never a directory -- but only if it still has the size and
mtime it was listed with (with -L, those of what a symlink points to: the
symlink itself is what goes), and, in a local copy, only if it is not the very
file the receiver holds (source and destination the same).  Messages are
rsync's: "sender removed NAME" at -vv, an error (exit 23) for a changed
file, "sender file already removed" when it is gone.

The reader thread only notes each message; the removal runs on the
sender's thread once its reading reaches the message, as rsync handles it
where it reads it.  It only touches the file system and the log, never the
wire directly (a server's lines are posted, see Wire.post_msg).
"""

from __future__ import annotations

import errno
import os
import threading
from collections import deque

from ..errors import ProtocolViolation
from ..protocol.mux import encode_success
from ..text import show

__all__ = ["SourceRemover", "SuccessNotifier"]


class SourceRemover:
    """Installed before the file list goes out.  A MSG_SUCCESS is acted on
    where it stands in the data stream, as rsync's single-threaded sender
    does when its reading gets there: the reader thread notes the stream
    position (``position()``), and the sender removes the file once it has
    consumed the data before it (``catch_up``), so a request read before
    the message is served from a source that is still there (a file
    listed twice through -L, say)."""

    def __init__(self, verbose: int, info, xfer_error, follow: bool = False,
                 position=None, consumed=None, follow_dirs: bool = False):
        self.flist = None
        self.verbose = verbose
        self.info = info                  # (text) -> None: rsync's FINFO
        self.xfer_error = xfer_error      # (text) -> None: FERROR_XFER (exit 23)
        self.follow = follow              # -L: a listed symlink is checked by its referent
        self.follow_dirs = follow_dirs    # -L/-k/--copy-unsafe-links: the scan went through them
        self.position = position or (lambda: 0)     # reader thread: data received so far
        self.consumed = consumed or (lambda: 0)     # sender: data consumed so far
        self.failed = False
        self._pending: deque = deque()
        self._lock = threading.Lock()

    def set_flist(self, flist) -> None:
        """The sorted list the indices refer to."""
        with self._lock:
            self.flist = flist

    def success(self, ndx: int, dest_dev_ino=None) -> None:
        with self._lock:
            self._pending.append((self.position(), ndx, dest_dev_ino))

    def catch_up(self, everything: bool = False) -> None:
        """Remove the files whose MSG_SUCCESS the sender has read up to (or,
        at the end, all of them)."""
        with self._lock:
            if self.flist is None or not self._pending:
                return
            upto = self.consumed()
            while self._pending and (everything or self._pending[0][0] <= upto):
                _, ndx, dev_ino = self._pending.popleft()
                self._remove(ndx, dev_ino)

    def _remove(self, ndx: int, dest_dev_ino) -> None:
        if ndx < 0 or ndx >= len(self.flist) or self.flist[ndx].cleared:
            raise ProtocolViolation(f"Invalid file index: {ndx} (0 - {len(self.flist) - 1}) "
                                    "[sender]", 2)
        entry = self.flist[ndx]
        if entry.is_dir:
            return                        # only non-directories are ever removed
        name = show(entry.name)
        dfd = -1
        try:
            op = "re-lstat"
            dfd, base = _open_parent(entry, self.follow_dirs)
            st = os.stat(base, dir_fd=dfd, follow_symlinks=self.follow)
            if dest_dev_ino is not None and (st.st_dev, st.st_ino) == dest_dev_ino:
                self._error(f"ERROR: Skipping sender remove of destination file: {name}")
                return
            sec, nsec = divmod(st.st_mtime_ns, 1_000_000_000)
            if st.st_size != entry.size or sec != entry.mtime or (entry.nsec and nsec != entry.nsec):
                self._error(f"ERROR: Skipping sender remove for changed file: {name}")
                return
            op = "remove"
            os.unlink(base, dir_fd=dfd)
        except OSError as e:
            if e.errno == errno.ENOENT:
                self.info(f"sender file already removed: {name}")
            else:
                self._error(f"rsync: [sender] sender failed to {op} {name}: "
                            f"{e.strerror} ({e.errno})")
            return
        finally:
            if dfd >= 0:
                os.close(dfd)
        if self.verbose >= 2:
            self.info(f"sender removed {name}")

    def _error(self, text: str) -> None:
        self.failed = True
        self.xfer_error(text)


def _open_parent(entry, follow: bool = False):
    """(directory fd, base name) of a source file.  The part of the path the
    user gave is followed as given; the directories below it, which the scan
    walked, are entered without following symlinks, so a directory swapped
    for a symlink since the listing cannot send the unlink elsewhere --
    unless the scan itself followed symlinks to directories (``follow``:
    -L, -k, --copy-unsafe-links), whose files are listed through them."""
    src, name = entry.src, entry.name
    if src == name:
        root, rel = b".", name
    elif src.endswith(b"/" + name):
        root, rel = src[:-len(name) - 1] or b"/", name
    else:
        root, rel = os.path.dirname(src) or b".", os.path.basename(src)
    parts = rel.split(b"/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for comp in parts[:-1]:
            nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
                          | (0 if follow else os.O_NOFOLLOW), dir_fd=fd)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


class SuccessNotifier:
    """The receiving side's half (io.c send_msg_success): MSG_SUCCESS for a
    file that is now in place or was already up to date.  In a local copy
    the message also carries the dev/ino of that destination file, so the
    sender will not remove it should it be the source itself."""

    def __init__(self, wire, tree, local_server: bool):
        self.wire = wire
        self.tree = tree
        self.local_server = local_server

    def __call__(self, ndx: int, name: bytes) -> None:
        dev_ino = None
        if self.local_server:
            dev_ino = (0, 0)
            try:
                dfd, base = self.tree.locate(name)
                st = os.stat(base, dir_fd=dfd)          # rsync's stat(): follows a link
                dev_ino = (st.st_dev, st.st_ino)
            except OSError:
                pass
        # Posted: the receiver thread must not wait for the generator's writes.
        self.wire.post_msg(encode_success(ndx, dev_ino), try_now=True)
