"""Permissions a run without -p gives, and what -y, --append and
--copy-dest take from a basis, in the cases interop/fuzz.py found:
pysync against stock rsync on the same trees, locally and over the fake
remote shell (pysync as the receiving server, and as the receiving
client), comparing the exit code, the sorted -i lines, the tree (modes
with their set-id bits) and the POSIX ACL xattrs."""

from __future__ import annotations

import os
import stat
import struct
import subprocess

import pytest

from helpers.roles import fix_dirs, lines, put, sources_command
from helpers.trees import compare_trees, is_root

OLD = 1_600_000_000
ROLES = ["local", "push-rsync2pysync", "pull-pysync2rsync"]
ACLS = ("system.posix_acl_access", "system.posix_acl_default")


def _acls(root):
    """The ACL and user xattrs in a tree."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            try:
                names = [a for a in os.listxattr(p, follow_symlinks=False) if a.startswith("user.")]
            except OSError:
                names = []
            for a in names + list(ACLS):
                try:
                    out[(os.path.relpath(p, root), a)] = os.getxattr(p, a, follow_symlinks=False)
                except OSError:
                    pass
    return out


def _run_both(tmp_path, role, opts, build, times=True):
    got, dsts = {}, []
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        build(top / "src", top / "dst", top / "ref")
        extra = ["--no-i-r"] if tool == "rsync" else []
        argv = [o.replace("{REF}", str(top / "ref")) for o in opts]
        r = subprocess.run(sources_command(tool, role, argv + extra, [f"{top}/src/"], top / "dst"),
                           capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), _acls(top / "dst"))
        dsts.append(top / "dst")
    assert got["pysync"] == got["rsync"]
    assert compare_trees(*dsts, times=times, dir_times=False, owners=False) == []
    return got["rsync"]


# ---- -y: a new file's permissions come from its fuzzy basis ---------------------

def _fuzzy(src, dst, ref, src_mode=0o4755, basis_mode=0o600):
    data = bytes(range(256)) * 40
    put(src, "report-v2.txt", data, OLD + 50, src_mode)
    put(dst, "report-v1.txt", data[:5000] + b"old tail", OLD, basis_mode)
    ref.mkdir(parents=True)
    fix_dirs(src, OLD)
    fix_dirs(dst, OLD)


@pytest.mark.parametrize("opts", [["-rt", "-y", "-i"], ["-rt", "-y", "-i", "-W"],
                                  ["-rt", "-y", "-i", "--inplace"]])
@pytest.mark.parametrize("role", ROLES)
def test_fuzzy_basis_gives_its_permissions(tmp_path, role, opts):
    """Without -p rsync's receiver keeps the permissions of the regular
    file it rebuilt the data from: for a new file with a fuzzy basis,
    the basis's (0600 here), not the source's less the umask (0755)."""
    rc, out, _ = _run_both(tmp_path, role, opts, _fuzzy)
    assert rc == 0 and [ln[1:] for ln in out] == ["f+++++++++ report-v2.txt"]
    assert stat.S_IMODE(os.stat(tmp_path / "pysync/dst/report-v2.txt").st_mode) == 0o600


def _alt_basis(src, dst, ref):
    data = bytes(range(256)) * 40
    put(src, "f", data, OLD + 50, 0o644)
    put(ref, "f", data[:6000] + b"other", OLD, 0o640)
    dst.mkdir(parents=True)
    fix_dirs(src, OLD)
    fix_dirs(ref, OLD)


@pytest.mark.parametrize("role", ROLES)
def test_copy_dest_basis_gives_its_permissions(tmp_path, role):
    """The same for a --copy-dest file with other data: the delta's basis."""
    _run_both(tmp_path, role, ["-rt", "-i", "--copy-dest={REF}"], _alt_basis)
    assert stat.S_IMODE(os.stat(tmp_path / "pysync/dst/f").st_mode) == 0o640


# ---- a device or special file keeps the permissions of what it replaces ----------

def _replaced(src, dst, ref):
    src.mkdir(parents=True)
    dst.mkdir(parents=True)
    ref.mkdir(parents=True)
    for n, mode in (("p-over-file", 0o644), ("p-over-fifo", 0o640), ("p-over-dir", 0o644),
                    ("p-over-link", 0o600), ("p-new", 0o755)):
        os.mkfifo(src / n, mode)
        os.chmod(src / n, mode)
    put(dst, "p-over-file", b"x", OLD, 0o600)
    os.mkfifo(dst / "p-over-fifo")
    os.chmod(dst / "p-over-fifo", 0o606)
    (dst / "p-over-dir").mkdir()
    os.chmod(dst / "p-over-dir", 0o700)
    os.symlink("nowhere", dst / "p-over-link")
    if is_root():
        os.mknod(src / "c-over-link", stat.S_IFCHR | 0o640, os.makedev(1, 3))
        os.chmod(src / "c-over-link", 0o640)
        os.symlink("z/sub", dst / "c-over-link")
        os.mknod(src / "c-over-setuid", stat.S_IFCHR | 0o644, os.makedev(1, 5))
        put(dst, "c-over-setuid", b"", OLD, 0o4750)
        os.mknod(src / "c-other-rdev", stat.S_IFCHR | 0o644, os.makedev(1, 7))
        os.mknod(dst / "c-other-rdev", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        os.chmod(dst / "c-other-rdev", 0o600)
    for root in (src, dst):
        for n in os.listdir(root):
            os.utime(root / n, (OLD, OLD), follow_symlinks=False)
    fix_dirs(src, OLD)
    fix_dirs(dst, OLD)


@pytest.mark.parametrize("role", ROLES)
def test_special_keeps_replaced_permissions(tmp_path, role):
    """generator.c: without -p a device or special file made where
    something else stood (not a directory) takes that thing's permission
    bits, a symlink's 0777 included."""
    _run_both(tmp_path, role, ["-rltD", "-i", "--force"], _replaced)
    dst = tmp_path / "pysync/dst"
    assert stat.S_IMODE(os.lstat(dst / "p-over-file").st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(dst / "p-over-dir").st_mode) == 0o644
    if is_root():
        assert stat.S_IMODE(os.lstat(dst / "c-over-link").st_mode) == 0o777


# ---- a directory's default ACL decides a new object's permissions ---------------

def _acl(*entries):
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in entries)


#: user::rw-, user:1234:r--, group::r--, mask::rw-, other::---
DEFAULT_ACL = _acl((1, 6, 0xFFFFFFFF), (2, 4, 1234), (4, 4, 0xFFFFFFFF), (0x10, 6, 0xFFFFFFFF),
                   (0x20, 0, 0xFFFFFFFF))


def _default_acl(src, dst, ref):
    put(src, "shared/new.txt", b"data\n" * 50, OLD, 0o644)
    put(src, "shared/run.sh", b"#!/bin/sh\n", OLD, 0o755)
    (src / "shared/sub").mkdir()
    os.chmod(src / "shared/sub", 0o755)
    os.mkfifo(src / "shared/pipe", 0o644)
    os.chmod(src / "shared/pipe", 0o644)
    (dst / "shared").mkdir(parents=True)
    os.setxattr(dst / "shared", "system.posix_acl_default", DEFAULT_ACL)
    ref.mkdir(parents=True)
    os.utime(src / "shared/pipe", (OLD, OLD))
    fix_dirs(src, OLD)
    fix_dirs(dst, OLD)


@pytest.mark.parametrize("opts", [["-rltD", "-i"], ["-rltD", "-i", "-W"]])
@pytest.mark.parametrize("role", ROLES)
def test_default_acl_gives_new_permissions(tmp_path, role, opts):
    """acls.c default_perms_for_dir: without -p a new file, directory or
    fifo in a directory with a default ACL gets the source's bits within
    that ACL's owner/mask/other (0660 here), not less the umask (with or
    without -A), and so its inherited access ACL's mask and other."""
    try:
        os.setxattr(tmp_path, "system.posix_acl_default", DEFAULT_ACL)
        os.removexattr(tmp_path, "system.posix_acl_default")
    except OSError:
        pytest.skip("no POSIX ACLs on this file system")
    _run_both(tmp_path, role, opts, _default_acl)
    dst = tmp_path / "pysync/dst/shared"
    assert stat.S_IMODE(os.stat(dst / "new.txt").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(dst / "run.sh").st_mode) == 0o640


# ---- a new directory in a set-gid directory stays set-gid ----------------------

def _setgid(src, dst, ref):
    (src / "a/z/deeper").mkdir(parents=True)
    put(src, "a/z/f", b"f\n", OLD, 0o644)
    (dst / "a").mkdir(parents=True)
    os.chmod(dst / "a", 0o2755)
    ref.mkdir(parents=True)
    fix_dirs(src, OLD)
    fix_dirs(dst, OLD)


@pytest.mark.parametrize("opts", [["-rlt", "-i"], ["-rlpt", "-i"]])
@pytest.mark.parametrize("role", ROLES)
def test_new_dir_keeps_inherited_setgid(tmp_path, role, opts):
    """rsync.c set_file_attrs: without -p a directory this run made keeps
    the set-gid bit the kernel gave it from its parent (with -p it gets
    the source's mode exactly)."""
    _run_both(tmp_path, role, opts, _setgid)
    mode = stat.S_IMODE(os.stat(tmp_path / "pysync/dst/a/z").st_mode)
    assert mode == (0o755 if "-rlpt" in opts else 0o2755)


# ---- --append: a -y or --*-dest basis at least as long skips the file -----------

def _append_basis(src, dst, ref):
    data = bytes(range(256)) * 20
    put(src, "notes-2.txt", data, OLD + 50)
    put(dst, "notes-1.txt", data * 3, OLD)         # the fuzzy basis: longer
    put(src, "same-size", data, OLD + 50)
    put(ref, "same-size", data[::-1], OLD)         # the --copy-dest basis: as long
    put(src, "short-basis", data, OLD + 50)
    put(ref, "short-basis", b"", OLD)              # empty: no basis, sent whole
    fix_dirs(src, OLD)
    fix_dirs(dst, OLD)
    fix_dirs(ref, OLD)


@pytest.mark.parametrize("opts", [["-rt", "-i", "-y", "--append"],
                                  ["-rt", "-i", "-y", "--append-verify"],
                                  ["-rt", "-i", "-y", "--append", "--copy-dest={REF}"],
                                  ["-rt", "-i", "--append-verify", "--compare-dest={REF}"]])
@pytest.mark.parametrize("role", ROLES)
def test_append_skips_for_a_long_basis(tmp_path, role, opts):
    """generator.c compares --append's length with the basis it found: a
    missing file whose -y or --*-dest basis is at least as long is skipped
    without a line, as if it were there already (rsync 3.2.7 and later
    alike).  pysync sent it whole."""
    _run_both(tmp_path, role, opts, _append_basis)
    names = set(os.listdir(tmp_path / "pysync/dst"))
    assert "notes-2.txt" not in names if "-y" in opts else "notes-2.txt" in names
    assert ("same-size" in names) == ("--copy-dest={REF}" not in opts and
                                      "--compare-dest={REF}" not in opts)
    assert "short-basis" in names


def _verify_fails(src, dst, ref):
    data = bytes(range(256)) * 18
    p = put(src, "z.txt", data, OLD + 50)
    os.setxattr(p, "user.k", b"value")
    os.setxattr(p, "system.posix_acl_access", _acl((1, 6, 0xFFFFFFFF), (2, 6, 1234), (4, 4, 0xFFFFFFFF),
                                                   (0x10, 6, 0xFFFFFFFF), (0x20, 4, 0xFFFFFFFF)))
    os.utime(p, (OLD + 50, OLD + 50))
    put(dst, "y.txt", data[:3000][::-1], OLD, 0o444)     # a shorter fuzzy basis, not a prefix
    ref.mkdir(parents=True)
    fix_dirs(src, OLD)
    fix_dirs(dst, OLD)


@pytest.mark.parametrize("opts", [["-a", "-i", "-y", "-X", "--append-verify"],
                                  ["-a", "-i", "-y", "-X", "-A", "--append-verify"]])
@pytest.mark.parametrize("role", ROLES)
def test_append_verify_retained_has_xattrs(tmp_path, role, opts):
    """--append-verify onto a -y basis fails verification; the file kept
    for the redo has the sender's xattrs and ACL already (rsync's
    finish_transfer sets all but the time), so the redo's line shows no
    "x" or "a".  pysync left them for the redo to report."""
    rc, out, _ = _run_both(tmp_path, role, opts, _verify_fails)
    assert rc == 0 and [ln[1:] for ln in out] == ["f+++++++++ z.txt", "f..t...... z.txt"]


def _prefix_basis(src, dst, ref):
    data = bytes(range(256)) * 18
    put(src, "log-2.txt", data, OLD + 50)
    put(dst, "log-1.txt", data[:3000], OLD)         # -y: a prefix of the new file
    put(src, "part", data, OLD + 50)
    put(ref, "part", data[:2000], OLD)              # --copy-dest: a prefix too
    fix_dirs(src, OLD)
    fix_dirs(dst, OLD)
    fix_dirs(ref, OLD)


@pytest.mark.parametrize("opts", [["-rt", "-i", "-y", "--append"],
                                  ["-rt", "-i", "--append-verify", "--copy-dest={REF}"]])
@pytest.mark.parametrize("role", ROLES)
def test_append_onto_a_prefix_basis(tmp_path, role, opts):
    """--append onto a basis of another name that is a prefix of the file
    (-y, --copy-dest): pysync copies the basis's bytes in and ends with the
    file; rsync 3.2.7 leaves zeros in their place (the one difference
    interop/fuzz.py allows here).  Same lines, exit code and other
    attributes."""
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        _prefix_basis(top / "src", top / "dst", top / "ref")
        extra = ["--no-i-r"] if tool == "rsync" else []
        argv = [o.replace("{REF}", str(top / "ref")) for o in opts]
        r = subprocess.run(sources_command(tool, role, argv + extra, [f"{top}/src/"], top / "dst"),
                           capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)))
    assert got["pysync"] == got["rsync"]
    for n in ("log-2.txt" if "-y" in opts else "part",):
        mine = (tmp_path / "pysync/dst" / n).read_bytes()
        assert mine == (tmp_path / "pysync/src" / n).read_bytes()
        theirs_path = tmp_path / "rsync/dst" / n
        theirs, st = theirs_path.read_bytes(), os.stat(theirs_path)
        assert len(theirs) == len(mine) and theirs != mine
        theirs_path.write_bytes(mine)              # the rest compared as it was
        os.utime(theirs_path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert compare_trees(tmp_path / "rsync/dst", tmp_path / "pysync/dst", dir_times=False,
                         owners=False) == []
