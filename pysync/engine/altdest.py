"""--compare-dest, --copy-dest and --link-dest for the generator
(generator.c try_dests_reg and friends): a file missing in the
destination is looked for in each DIR in turn; an identical copy is
compared, copied or hard-linked, one with other attributes is copied and
fixed, a changed one becomes the basis of the delta; a new directory or
other entry is itemized against its copy there."""

from __future__ import annotations

import os
import stat

from ..io.attrs import apply_fd
from ..io.replace import temp_name
from ..protocol.constants import ITEM_LOCAL_CHANGE, ITEM_XNAME_FOLLOWS
from .objects import time_item
from .sender import encode_item

__all__ = ["alt_copies", "alt_find", "alt_lstat", "try_alt_dests", "try_alt_other"]


def alt_copies(gen, entry):
    """(kind, path, lstat) of what stands at ``entry``'s name in each
    --*-dest DIR, in the order given (DIRs without it are passed over)."""
    for kind, d in gen.cfg.alt_dests:
        path = os.path.join(d, entry.name)
        try:
            yield kind, path, os.lstat(path)
        except OSError:
            continue


def alt_lstat(gen, entry, want_type: int):
    """The first --*-dest copy of ``entry`` of the given type, for
    itemizing against it (rsync compares a new entry with it)."""
    found = alt_find(gen, entry, want_type)
    return found[1] if found is not None else None


def alt_find(gen, entry, want_type: int):
    """(path, lstat) of that copy, or None: its xattrs and ACLs are what
    a file sent with it as the basis is itemized against."""
    for _kind, path, ast in alt_copies(gen, entry):
        if stat.S_IFMT(ast.st_mode) == want_type:
            return path, ast
    return None


#: try_alt_other's answers besides a stat: nothing more to do here (an
#: unchanged copy compared, or hard-linked), or make the entry unitemized.
ALT_DONE, ALT_QUIET = "done", "quiet"


def try_alt_other(gen, entry, fmt: int):
    """--*-dest for a symlink, device or special file missing in the
    destination (generator.c try_dests_non): the copy in a DIR with the
    same target (or device number) and attributes is compared (ALT_DONE),
    hard-linked (ALT_DONE) or made here without itemizing (ALT_QUIET);
    otherwise the first copy of the same type is returned as the stat the
    new entry is itemized against ("cLc.t......"), or None."""
    best, level = None, 0
    for kind, path, ast in alt_copies(gen, entry):
        if stat.S_IFMT(ast.st_mode) != fmt:
            continue
        if level < 1:
            best, level = (kind, path, ast), 1
        if fmt == stat.S_IFLNK:
            try:
                same = os.readlink(path) == entry.link
            except OSError:
                same = False
        else:
            same = not entry.is_device or ast.st_rdev == os.makedev(*entry.rdev)
        if not same:
            continue
        if level < 2:
            best, level = (kind, path, ast), 2
        if not gen._attr_flags(entry, ast, path, probe=True):
            best, level = (kind, path, ast), 3
            break
    if best is None:
        return None
    kind, path, ast = best
    if level < 3:
        return ast
    if kind == "compare":
        return ALT_DONE
    if kind == "link":
        if gen.cfg.dry_run:
            return ALT_DONE
        dfd, base = gen.tree.locate(entry.name)
        try:
            os.link(path, base, dst_dir_fd=dfd, follow_symlinks=False)
            return ALT_DONE
        except OSError:
            pass            # made here instead, as rsync does when it cannot link
    return ALT_QUIET


def try_alt_dests(gen, ndx, entry, existing=None) -> bool:
    """--compare-dest / --copy-dest / --link-dest for a file missing in
    the destination (generator.c try_dests_reg): a copy in DIR with the
    same data and attributes (xattrs and ACLs included) is compared,
    copied or hard-linked; one with the same data but other attributes
    is copied here and itemized as a local change; a changed one
    becomes the basis of the delta.  A file that ``existing`` (its
    lstat) says is there already is only looked at for an identical copy
    (not with --copy-dest): --compare-dest then removes it, --link-dest
    puts a hard link to the copy in its place."""
    cfg = gen.cfg
    candidate = None
    same_data = None
    for kind, path, ast in alt_copies(gen, entry):
        if not stat.S_ISREG(ast.st_mode):
            continue
        if candidate is None:          # an empty one too (its xattrs are read)
            candidate = path
        if not gen._up_to_date(entry, ast, path):
            continue
        if gen._attr_flags(entry, ast, path, probe=True):
            if same_data is None:
                same_data = path, ast
            continue
        if existing is not None:
            if kind == "copy" or kind == "link" and \
                    (existing.st_dev, existing.st_ino) == (ast.st_dev, ast.st_ino):
                return False
            if not cfg.dry_run:
                dfd, base = gen.tree.locate(entry.name)
                try:
                    os.unlink(base, dir_fd=dfd)
                except FileNotFoundError:
                    pass
        if kind == "compare":
            if entry.hlink is not None and gen.leader_ndx.get(entry.hlink) == ndx:
                gen.hlink_compared.add(entry.hlink)    # nothing here to link to
            elif cfg.itemize_unchanged:
                gen._item(ndx, entry, 0)               # -ii: ".f          "
            return True
        if not cfg.dry_run:
            if kind == "link":
                dfd, base = gen.tree.locate(entry.name)
                tmp = temp_name(base)
                os.link(path, tmp, dst_dir_fd=dfd, follow_symlinks=False)
                os.rename(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd)
            else:
                _copy_alt(gen, entry, path)
        elif kind == "link" and entry.hlink is not None:
            # What a real run would link here: its followers are compared
            # with that inode (hlinks._leader_stat).
            gen.dry_linked[entry.name] = ast
        if kind == "copy":
            # A local copy: itemized as one ("cf..T......" when its time is
            # not kept, as it is then now's), unchanged only with -ii.
            flags = time_item(gen, entry, ITEM_LOCAL_CHANGE)
            if flags != ITEM_LOCAL_CHANGE or cfg.itemize_unchanged:
                gen._item(ndx, entry, flags)
        elif cfg.itemize_unchanged and entry.hlink is None:
            _linked_item(gen, ndx, entry)
        return True
    if existing is not None:
        return False
    if same_data is not None:
        path, ast = same_data
        flags = gen._attr_flags(entry, ast, path)
        if not cfg.dry_run:
            _copy_alt(gen, entry, path)
        gen._item(ndx, entry, ITEM_LOCAL_CHANGE | flags)
        return True
    if candidate is not None:
        gen.basis[ndx] = candidate     # an absolute path: outside the tree
    return False


def _linked_item(gen, ndx, entry) -> None:
    """-ii: the line of a file hard-linked to its identical copy in DIR
    ("hf          ")."""
    iflags = ITEM_LOCAL_CHANGE | ITEM_XNAME_FOLLOWS       # an empty name: no "=> "
    tail = gen.xattrs.tail(entry, iflags) if gen.xattrs is not None else b""
    gen.wire.write(encode_item(gen.ndx_out, ndx, iflags, None, b"") + tail)


def _copy_alt(gen, entry, path: bytes) -> None:
    """A local copy of an --*-dest file, with its xattrs (the sender's
    come after, as for any itemized change), then the entry's attributes."""
    dfd, base = gen.tree.locate(entry.name)
    tmp = temp_name(base)
    _copy_file(path, dfd, tmp)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            if gen.xattrs is not None:
                gen.xattrs.copy(path, fd)
            if gen.acls is not None:
                gen.acls.apply_fd(fd, entry)
            apply_fd(fd, entry, gen.policy, None)
        finally:
            os.close(fd)
        os.rename(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        os.unlink(tmp, dir_fd=dfd)
        raise


def _copy_file(src: bytes, dir_fd: int, tmp: bytes) -> None:
    """--copy-dest: a local copy into a new temp file (copy_file_range)."""
    sfd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        dfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      0o600, dir_fd=dir_fd)
        try:
            size = os.fstat(sfd).st_size
            done = 0
            while done < size:
                n = os.copy_file_range(sfd, dfd, size - done)
                if n == 0:
                    break
                done += n
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)
