"""The receiving side of --inplace and --append (receiver.c recv_files
with inplace): the destination itself is written through io/inplace.py,
matched blocks at their own offset are left alone, and a file that fails
its checksum keeps what arrived until the redo phase rewrites it."""

from __future__ import annotations

import os
import stat

from ..errors import FileIOError
from ..protocol.flist import FileEntry
from ..io.attrs import apply_fd
from ..io.inplace import InPlaceFile
from ..text import show

__all__ = ["receive_in_place", "copy_prefix", "hash_prefix", "as_logged"]

_CHUNK = 1 << 20


def receive_in_place(recv, ndx, entry, iflags, head, phase) -> None:
    """--inplace / --append (receiver.c recv_files with inplace): the
    destination itself is written; see io/inplace.py."""
    name = entry.name
    tree = recv.tree
    try:
        dir_fd, base = tree.locate(name)
    except OSError as e:
        recv._fail(f"rsync: [receiver] cannot reach directory of \"{_show(tree.path(name))}\": "
                   f"{e.strerror} ({e.errno})")
        recv.discard_data(head, ndx, entry)
        return
    basis = recv._open_basis(ndx, name, dir_fd, base) if head.count else None
    basis_name = recv.basis.get(ndx, name)
    # The basis is the file's own old data (or the --backup copy of it).
    updating = basis_name == name or ndx in recv.backup_basis
    existing_mode = recv.old_mode(iflags, dir_fd, base, ndx)
    cfg = recv.cfg
    try:
        out = InPlaceFile(dir_fd, base, updating, fsync=cfg.fsync, preallocate=cfg.preallocate,
                          drop_cache=cfg.drop_cache, size=entry.size)
    except OSError as e:
        if basis is not None:
            basis.close()
        recv._fail(f"rsync: [receiver] open \"{_show(tree.path(name))}\" failed: "
                   f"{e.strerror} ({e.errno})")
        recv.discard_data(head, ndx, entry)
        return
    if out.device:
        existing_mode = os.fstat(out.fd).st_mode    # --write-devices: the node's own
    done = False
    try:
        append = cfg.append if phase == 0 else 0
        if append and not updating and basis is not None:
            copy_prefix(basis, out.fd, head.file_length)
        ok = recv._read_tokens(head, basis, out, ndx, entry.size, name,
                               kept=head.file_length if append else 0, verify=append > 1)
        out.finish()
        # As a file received into a temp file (receiver._install): its
        # xattrs and ACLs, then the other attributes; also when it failed
        # verification (rsync's finish_transfer sets all but the time).
        if recv.xattrs is not None:
            from .xattrs import basis_path
            recv.xattrs.apply_fd(out.fd, entry, basis_path(tree, name, recv.basis.get(ndx)))
        if recv.acls is not None:
            recv.acls.apply_fd(out.fd, entry)
        if not ok:
            # The file keeps what arrived, with its attributes but not
            # the sender's time (so a later run looks at it again);
            # the redo phase rewrites it.
            import copy  # --inplace/--append with a partial file only
            untimed = copy.copy(recv.policy)
            untimed.times = False
            apply_fd(out.fd, entry, untimed, existing_mode)
            if phase == 0:
                recv._redo_warning(f"WARNING: {_show(name)} failed verification -- "
                                   "update retained (will try again).")
                recv.to_gen.put(("redo", ndx))
            else:
                recv._fail(f"ERROR: {_show(name)} failed verification -- update retained.")
            return
        apply_fd(out.fd, entry, recv.policy, existing_mode)
        done = True
    except FileIOError:
        raise
    except OSError as e:
        raise FileIOError(f"rsync: [receiver] write failed on \"{_show(tree.path(name))}\": "
                          f"{e.strerror} ({e.errno})") from None
    finally:
        out.close()
        if basis is not None:
            basis.close()
    if done and recv.success is not None:
        recv.success(ndx, name)      # --remove-source-files: the sender may remove it


def as_logged(tree, entry):
    """The entry as the receiver logs it: with --write-devices, a file
    written into a device node shows as a device (rsync's receiver gives
    the entry the device type while it writes)."""
    try:
        dfd, base = tree.locate(entry.name)
        mode = os.stat(base, dir_fd=dfd, follow_symlinks=False).st_mode
    except OSError:
        return entry
    if not (stat.S_ISBLK(mode) or stat.S_ISCHR(mode)):
        return entry
    return FileEntry(entry.name, stat.S_IFBLK | stat.S_IMODE(entry.mode), entry.size,
                     entry.mtime, entry.nsec, entry.uid, entry.gid)


def copy_prefix(basis, fd: int, length: int) -> None:
    """--append onto a basis of another name (-y, --*-dest): the data the
    sender counts as already here is the basis's, so it is copied in.
    rsync 3.2.7 leaves zeros there instead (its receiver seeks past them
    in the new file), which --append-verify's checksum of the basis does
    not notice; interop/fuzz.py allows that difference."""
    done = 0
    while done < length:
        data = basis.pread(min(_CHUNK, length - done), done)
        if not data:
            break
        os.pwrite(fd, data, done)
        done += len(data)


def hash_prefix(basis, length: int, hasher) -> None:
    """--append-verify: the kept bytes count in the whole-file checksum."""
    off = 0
    while off < length:
        data = basis.pread(min(_CHUNK, length - off), off)
        if not data:
            break
        hasher.update(data)
        off += len(data)


def _show(name: bytes) -> str:
    return show(name)
