"""Findings of interop/fuzz.py (seeds 20-22) about a non-directory in the
way of a directory, pysync against stock rsync on the same trees, locally
and over the fake remote shell: --ignore-existing keeps a symlink where
the source has a directory, and what is below it fails as rsync's does
(the stat of a name below a symlink is "nothing there", a directory there
cannot be made and its contents are skipped)."""

from __future__ import annotations

import os
import re
import stat
import subprocess

import pytest

from helpers.roles import fix_dirs, lines, put, sources_command

OLD = 1_500_000_000
ROLES3 = ["local", "push-rsync2pysync", "pull-pysync2rsync"]


def _state(root):
    """Name -> (type, mode, size, symlink target, mtime); a symlink's time
    is left out (rsync 3.2.7 sets the directory's time on a symlink it
    kept in the directory's place: see interop/fuzz.py's ALLOWED)."""
    out = {}
    for d, ds, fs in os.walk(root):
        for n in ds + fs:
            p = os.path.join(d, n)
            st = os.lstat(p)
            link = stat.S_ISLNK(st.st_mode)
            out[os.path.relpath(p, root)] = (
                stat.S_IFMT(st.st_mode), None if link else stat.S_IMODE(st.st_mode),
                st.st_size, os.readlink(p) if link else None, None if link else st.st_mtime_ns)
    return out


def _errors(err: bytes, top) -> list:
    """The error lines about entries, with the run's directory made neutral."""
    text = err.decode("utf-8", "replace").replace(str(top), "TOP")
    text = re.sub(r"\.\d+\" failed", '.PID" failed', text)     # mknod's temp name
    return sorted(ln for ln in text.splitlines()
                  if re.search(r"mkdir|symlink|mknod|stat|Skipping any contents|failed to set up"
                               r"|cannot reach", ln))


def _tree(src, dst):
    """The source has directory d with a file, a subdirectory with a file and
    a device; the destination has a symlink d to a file of its own."""
    put(src, "d/f", b"data", OLD)
    put(src, "d/sub/g", b"more", OLD)
    os.mknod(src / "d" / "dev", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    os.mkfifo(src / "d" / "fifo")
    os.symlink("nowhere", src / "d" / "link")
    put(dst, "target", b"kept", OLD)
    os.symlink("target", dst / "d")


@pytest.mark.parametrize("opts", [["--ignore-existing", "-rti"],
                                  ["--ignore-existing", "-rlti"], ["--ignore-existing", "-rtin"],
                                  ["--ignore-existing", "-rlDti"],
                                  ["--ignore-existing", "--existing", "-rli"]])
@pytest.mark.parametrize("role", ROLES3)
def test_ignore_existing_keeps_what_is_in_a_directorys_way_as_rsync(tmp_path, role, opts):
    """interop/fuzz.py seed 22 case 133, seed 20 case 14 and seed 23 case
    135 (--small): the symlink stays, d/sub cannot be made ("mkdir ...
    failed", its contents skipped), d/f, d/link, d/fifo and d/dev fail or
    are skipped as rsync's are."""
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst = top / "src", top / "dst"
        src.mkdir(parents=True)
        dst.mkdir(parents=True)
        _tree(src, dst)
        fix_dirs(src, OLD)
        fix_dirs(dst, OLD)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, opts + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), _state(dst),
                     _errors(r.stderr, top))
    assert got["pysync"] == got["rsync"]
    assert os.path.islink(tmp_path / "pysync" / "dst" / "d")


def _state_xattrs(root):
    """_state without times (no -t: the run's own) and with the xattrs."""
    out = _state(root)
    for rel in list(out):
        p = os.path.join(root, rel)
        out[rel] = out[rel][:4] + (sorted((n, os.getxattr(p, n)) for n in os.listxattr(p)),)
    return out


@pytest.mark.parametrize("size", [0, 5])
@pytest.mark.parametrize("role", ROLES3)
def test_link_dest_basis_gives_long_xattr_values_as_rsync(tmp_path, role, size):
    """interop/fuzz.py seed 22 case 151: a file sent with its --link-dest
    copy as the basis (an older time, so not linked) takes the xattr
    values the sender abbreviated from that copy, an empty one too."""
    got = {}
    long = bytes(range(200))
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst, ref = top / "src", top / "dst", top / "ref"
        for d in (src, dst, ref):
            d.mkdir(parents=True)
        put(src, "f", b"x" * size, OLD)
        put(ref, "f", b"x" * size, OLD - 5000)
        for p in (src / "f", ref / "f"):
            os.setxattr(p, "user.long", long)
            os.setxattr(p, "user.k", b"short")
        for d in (src, dst, ref):
            fix_dirs(d, OLD)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-rloX", "-i", f"--link-dest={ref}"] + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), _state_xattrs(dst))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0


@pytest.mark.parametrize("opts", [["--link-dest=REF"], ["--link-dest=REF", "--inplace"], []])
@pytest.mark.parametrize("role", ROLES3)
def test_hard_link_leader_blocked_by_a_directory_as_rsync(tmp_path, role, opts):
    """interop/fuzz.py seed 22 case 103: the member of a hard-link group
    that would get the data (it has a --link-dest copy) has a non-empty
    directory in its way; the other member gets the data, and the blocked
    one fails twice (not "link ... => a failed" with nothing made)."""
    got = {}
    data = bytes(range(256)) * 20
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst, ref = top / "src", top / "dst", top / "ref"
        for d in (src, dst, ref):
            d.mkdir(parents=True)
        put(src, "x~", data, OLD)
        os.link(src / "x~", src / "a")
        put(ref, "a", data, OLD)
        put(dst, "a/b", b"in the way", OLD)
        for d in (src, dst, ref):
            fix_dirs(d, OLD)
        extra = ["--no-i-r"] if tool == "rsync" else []
        run_opts = [o.replace("REF", str(ref)) for o in opts] + ["-rlptD", "-H", "-i"] + extra
        r = subprocess.run(sources_command(tool, role, run_opts, [f"{src}/"], dst),
                           capture_output=True, timeout=60)
        errs = sorted(ln for ln in r.stderr.decode().splitlines()
                      if "make way" in ln or "non-empty" in ln or "link" in ln)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), _state(dst), errs)
    assert got["pysync"] == got["rsync"]
    assert (tmp_path / "pysync" / "dst" / "x~").read_bytes() == data


@pytest.mark.parametrize("full", [True, False])
@pytest.mark.parametrize("opts", [["-n"], ["-n", "--delete"], []])
@pytest.mark.parametrize("role", ROLES3)
def test_follower_blocked_by_a_directory_in_a_dry_run_as_rsync(tmp_path, role, opts, full):
    """interop/fuzz.py seed 20 case 81 (--small): a follower of a hard-link
    group (its leader is the member here already) has a directory in its
    way; a dry run says what a real run does ("cannot delete non-empty
    directory", "could not make way", exit 23), not that it links it."""
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst = top / "src", top / "dst"
        for d in (src, dst):
            d.mkdir(parents=True)
        put(src, "f", b"new data", OLD)
        os.link(src / "f", src / "e")
        put(dst, "e", b"old", OLD)
        (dst / "f").mkdir()
        if full:
            put(dst, "f/sub/g", b"in the way", OLD)
        for d in (src, dst):
            fix_dirs(d, OLD)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, opts + ["-rlt", "-H", "-i"] + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=60)
        errs = sorted(ln for ln in r.stderr.decode().splitlines() if "way" in ln or "non-empty" in ln)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), _state(dst), errs)
    assert got["pysync"] == got["rsync"]


@pytest.mark.parametrize("opts", [[], ["-n"], ["--delete-after"]])
@pytest.mark.parametrize("where", ["missing", "new-subdir"])
@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_io_error_warning_in_a_directory_the_run_makes_as_rsync(tmp_path, role, where, opts):
    """interop/fuzz.py seed 21 case 190 and seed 22 case 253 (--small):
    with --delete and an I/O error on the sender (-L and a dangling
    symlink), "IO error encountered -- skipping file deletion" is said at
    the first directory, one the run creates too (the destination itself
    or a new subdirectory)."""
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst = top / "src", top / "dst"
        src.mkdir(parents=True)
        put(src, "d/f", b"data", OLD)
        os.symlink("../nowhere", src / "b")
        if where == "new-subdir":
            dst.mkdir()
            fix_dirs(dst, OLD)
        fix_dirs(src, OLD)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, opts + ["-L", "-rt", "--delete", "-i"] + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=60)
        out = r.stdout.replace(bytes(top), b"TOP")
        got[tool] = (r.returncode, sorted(lines(out)), _state(dst) if dst.exists() else None)
    assert got["pysync"] == got["rsync"]


@pytest.mark.parametrize("opts", [["-b"], ["-b", "-W"], ["--backup-dir=bak"]])
@pytest.mark.parametrize("role", ROLES3)
def test_inplace_backup_keeps_the_xattrs_as_rsync(tmp_path, role, opts):
    """interop/fuzz.py seed 20 case 88: with --inplace -X the backup is a
    copy of the file, and it takes the file's xattrs as rsync's does.
    (Over a remote shell with --backup-dir rsync 3.2.7's first try at the
    file fails its verification and is redone: not compared.)"""
    if role != "local" and "--backup-dir=bak" in opts:
        pytest.skip("rsync 3.2.7 redoes the file there (failed verification)")
    got = {}
    data = bytes(range(256)) * 40
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst = top / "src", top / "dst"
        for d in (src, dst):
            d.mkdir(parents=True)
        put(src, "f", data, OLD)
        put(dst, "f", data[:7000], OLD - 100)
        os.setxattr(src / "f", "user.k", b"new")
        os.setxattr(dst / "f", "user.k", b"old")
        os.setxattr(dst / "f", "user.long", b"L" * 100)
        for d in (src, dst):
            fix_dirs(d, OLD)
        extra = ["--no-i-r"] if tool == "rsync" else []
        run_opts = [o.replace("=bak", f"={dst}/bak") for o in opts]
        r = subprocess.run(sources_command(tool, role, run_opts + ["--inplace", "-aX", "-i"] + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=60)
        state = _state_xattrs(dst)
        state.pop("bak", None)      # (its time is the run's)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), state)
    assert got["pysync"] == got["rsync"]
    assert ("user.long", b"L" * 100) in got["pysync"][2]["bak/f" if "--backup-dir=bak" in opts
                                                         else "f~"][4]


@pytest.mark.parametrize("kind", ["copy", "link", "compare"])
@pytest.mark.parametrize("role", ROLES3)
def test_follower_of_a_sent_leader_is_new_despite_its_dir_copy_as_rsync(tmp_path, role, kind):
    """interop/fuzz.py seed 23 case 149 (--small): the leader of a
    hard-link group is sent (its DIR copy has another time), so its
    follower waits for it and is itemized as new ("hf+++++++++"), even
    though the follower's own copy in DIR is identical."""
    got = {}
    data = bytes(range(256)) * 9
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, ref = top / "src", top / "ref"
        for d in (src, ref):
            d.mkdir(parents=True)
        put(src, "sub", data, OLD)
        os.link(src / "sub", src / "x~")
        put(ref, "sub", data, OLD - 5000)
        put(ref, "x~", data, OLD)
        for d in (src, ref):
            fix_dirs(d, OLD)
        dst = top / "dst"
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-H", "-a", "-i", f"--{kind}-dest={ref}"] + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=60)
        out = r.stdout.replace(bytes(top), b"TOP")
        got[tool] = (r.returncode, sorted(lines(out)), _state(dst))
    assert got["pysync"] == got["rsync"]


@pytest.mark.parametrize("opts", [["-n"], []])
@pytest.mark.parametrize("role", ROLES3)
def test_linked_group_relinked_to_its_link_dest_copy_as_rsync(tmp_path, role, opts):
    """interop/fuzz.py seed 28 case 192: a hard-link group already linked
    here, its leader identical to its --link-dest copy: the leader is
    relinked to that copy, so the follower is linked again ("x~ => deep"
    with -v), in a dry run too."""
    got = {}
    data = bytes(range(256)) * 9
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst, ref = top / "src", top / "dst", top / "ref"
        for d in (src, dst, ref):
            d.mkdir(parents=True)
        for d in (src, dst):
            put(d, "deep", data, OLD)
            os.link(d / "deep", d / "x~")
        put(ref, "deep", data, OLD)
        for d in (src, dst, ref):
            fix_dirs(d, OLD)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, opts + ["-v", "-a", "-H", f"--link-dest={ref}"]
                                           + extra, [f"{src}/"], dst), capture_output=True, timeout=60)
        links = {n: os.lstat(p).st_nlink for n, p in (("deep", dst / "deep"), ("x~", dst / "x~"),
                                                       ("ref", ref / "deep"))}
        got[tool] = (r.returncode, sorted(lines(r.stdout)), _state(dst), links)
    assert got["pysync"] == got["rsync"]
    assert "x~ => deep" in got["pysync"][1]


@pytest.mark.parametrize("opts", [["-n"], []])
@pytest.mark.parametrize("role", ROLES3)
def test_existing_into_a_missing_destination_as_rsync(tmp_path, role, opts):
    """interop/fuzz.py seed 29 case 34: --existing into a destination that
    is not there: a real run creates it ("cd+++++++++ ./") and nothing in
    it; a dry run, where it stays missing, itemizes nothing."""
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst = top / "src", top / "dst"
        put(src, "d/f", b"data", OLD)
        put(src, "g", b"more", OLD)
        fix_dirs(src, OLD)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, opts + ["-ai", "--existing"] + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=60)
        out = r.stdout.replace(bytes(top), b"TOP")
        got[tool] = (r.returncode, sorted(lines(out)), sorted(os.listdir(dst)) if dst.exists() else None)
    assert got["pysync"] == got["rsync"]


@pytest.mark.parametrize("mode", [0o775, 0o2755])
@pytest.mark.parametrize("role", ROLES3)
def test_backup_dir_parent_takes_the_new_owner_as_rsync(tmp_path, role, mode):
    """interop/fuzz.py seed 29 case 82: an existing directory whose group
    changes (-a as root) has it before a file in it is replaced, so the
    --backup-dir directory made for that file's backup copies the new one
    (rsync's set_file_attrs on the directory comes first)."""
    if os.geteuid() != 0:
        pytest.skip("changing a group needs root")
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst, bak = top / "src", top / "dst", top / "bak"
        put(src, "d/f", b"new data", OLD)
        put(dst, "d/f", b"old", OLD - 100)
        os.chmod(src / "d", mode)
        os.chmod(dst / "d", mode)
        os.chown(dst / "d", 0, 1234)
        fix_dirs(src, OLD)
        fix_dirs(dst, OLD)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-ai", f"--backup-dir={bak}"] + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=60)
        bst, dst_st = os.lstat(bak / "d"), os.lstat(dst / "d")
        got[tool] = (r.returncode, sorted(lines(r.stdout)), _state(dst),
                     (bst.st_uid, bst.st_gid, stat.S_IMODE(bst.st_mode)),
                     (dst_st.st_uid, dst_st.st_gid, stat.S_IMODE(dst_st.st_mode)))
    assert got["pysync"] == got["rsync"]


@pytest.mark.parametrize("role", ROLES3)
def test_destination_root_takes_its_attributes_not_the_cwd(tmp_path, role):
    """The destination root whose mode and group change (-a as root) gets
    them on itself: the early attribute pass once addressed "." relative
    to the working directory, which it changed instead."""
    if os.geteuid() != 0:
        pytest.skip("changing a group needs root")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    os.chmod(cwd, 0o755)
    before = os.lstat(cwd)
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst = top / "src", top / "dst"
        put(src, "f", b"data", OLD)
        dst.mkdir(parents=True)
        os.chmod(src, 0o750)
        os.chown(dst, 0, 1234)
        fix_dirs(src, OLD)
        fix_dirs(dst, OLD)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-ai"] + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=60, cwd=cwd)
        st = os.lstat(dst)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), _state(dst),
                     (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)))
    assert got["pysync"] == got["rsync"]
    after = os.lstat(cwd)
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid, before.st_mode)
