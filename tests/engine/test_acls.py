"""-A/--acls end to end: pysync and stock rsync on the same trees, in every
role (local; pysync client -> rsync server and rsync client -> pysync
server, push and pull over the fake remote shell): same ACLs (read as the
system.posix_acl_* xattrs, so no getfacl is needed), same itemized lines,
same exit code, and a second run that changes nothing."""

import os
import struct
from pathlib import Path

import pytest

from helpers.trees import compare_trees
from test_xattrs import LONG_A, LONG_B, ROLES, fix_dirs, lines, run_tool

T_OLD, T_NEW = 1_600_000_000, 1_700_000_000
U = 0xFFFFFFFF
ACC, DEF = "system.posix_acl_access", "system.posix_acl_default"


def acl(*entries) -> bytes:
    """Linux's xattr form: (tag, perms, id); tags 1 user_obj, 2 user, 4 group_obj,
    8 group, 0x10 mask, 0x20 other."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in entries)


NAMED = acl((1, 6, U), (2, 6, 1000), (4, 4, U), (8, 5, 1001), (0x10, 6, U), (0x20, 4, U))
NAMED2 = acl((1, 6, U), (2, 4, 1000), (4, 4, U), (0x10, 4, U), (0x20, 4, U))
DIRDEF = acl((1, 7, U), (2, 5, 1000), (4, 5, U), (0x10, 7, U), (0x20, 5, U))
DIRDEF2 = acl((1, 7, U), (2, 7, 1002), (4, 5, U), (0x10, 7, U), (0x20, 0, U))


def _acls_work(d: Path) -> bool:
    p = d / ".probe"
    p.write_bytes(b"")
    try:
        os.setxattr(p, ACC, NAMED)
        return True
    except OSError:
        return False
    finally:
        p.unlink()


@pytest.fixture(autouse=True)
def _need_acls(tmp_path):
    if not _acls_work(tmp_path):
        pytest.skip(f"{tmp_path} does not support POSIX ACLs")


def put(root: Path, rel: str, data: bytes, mtime: int, access: bytes | None = None) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.chmod(p, 0o644)
    if access:
        os.setxattr(p, ACC, access)
    os.utime(p, (mtime, mtime))


def mkdir(root: Path, rel: str, default: bytes | None = None) -> None:
    p = root / rel
    p.mkdir(parents=True, exist_ok=True)
    os.chmod(p, 0o755)
    if default:
        os.setxattr(p, DEF, default)


def make_src(root: Path) -> None:
    mkdir(root, "dacl", DIRDEF)
    mkdir(root, "dchanged", DIRDEF2)
    mkdir(root, "dplain")
    put(root, "same.txt", b"unchanged\n", T_OLD, NAMED)
    put(root, "added.txt", b"same data\n", T_OLD, NAMED)
    put(root, "removed.txt", b"same data\n", T_OLD)
    put(root, "changed.txt", b"same data\n", T_OLD, NAMED2)
    put(root, "data-and-acl.txt", b"new content, longer than before\n", T_NEW, NAMED)
    put(root, "new.txt", b"only in the source\n", T_NEW, NAMED2)
    put(root, "dacl/inner.txt", b"inner\n", T_OLD)
    put(root, "dplain/inherits-not.txt", b"new here\n", T_NEW)
    os.symlink("same.txt", root / "link")
    fix_dirs(root, T_OLD)


def make_dst(root: Path) -> None:
    mkdir(root, "dacl", DIRDEF)
    mkdir(root, "dchanged", DIRDEF)
    mkdir(root, "dplain", DIRDEF)       # files made in it inherit this: must not stay
    put(root, "same.txt", b"unchanged\n", T_OLD, NAMED)
    put(root, "added.txt", b"same data\n", T_OLD)
    put(root, "removed.txt", b"same data\n", T_OLD, NAMED)
    put(root, "changed.txt", b"same data\n", T_OLD, NAMED)
    put(root, "data-and-acl.txt", b"old content\n", T_OLD, NAMED2)
    put(root, "dacl/inner.txt", b"inner\n", T_OLD)
    fix_dirs(root, T_OLD)


def acl_map(root: Path) -> dict:
    out = {}
    for d, _dirs, files in os.walk(root):
        for n in [d] + [os.path.join(d, f) for f in files]:
            if os.path.islink(n):
                continue
            got = {}
            for k in (ACC, DEF):
                try:
                    got[k] = os.getxattr(n, k)
                except OSError:
                    pass
            out[os.path.relpath(n, root)] = (oct(os.stat(n).st_mode), got)
    return out


def both(tmp_path, role, opts, prepare_dst=True):
    src = tmp_path / "src"
    make_src(src)
    res = {}
    for tool in ("rsync", "pysync"):
        dst = tmp_path / tool
        if prepare_dst:
            make_dst(dst)
        res[tool] = (run_tool(tool, role, opts, src, dst), dst)
    return src, res


@pytest.mark.parametrize("role", ROLES)
def test_update_matches_rsync(tmp_path, role):
    src, res = both(tmp_path, role, ["-aiA"])
    (rr, rdst), (pr, pdst) = res["rsync"], res["pysync"]
    assert pr.returncode == rr.returncode == 0, pr.stderr.decode() + rr.stderr.decode()
    assert acl_map(pdst) == acl_map(rdst)
    assert acl_map(pdst) == acl_map(src)
    assert compare_trees(pdst, rdst) == []
    assert lines(pr.stdout) == lines(rr.stdout)
    assert ".f.......a. added.txt" in lines(pr.stdout), pr.stdout
    for tool in ("rsync", "pysync"):
        r = run_tool(tool, role, ["-aiA"], src, res[tool][1])
        assert r.returncode == 0, r.stderr.decode()
        assert lines(r.stdout) == [], (tool, r.stdout)
    assert acl_map(pdst) == acl_map(src)


@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_fresh_copy_with_xattrs_too(tmp_path, role):
    src = tmp_path / "src"
    make_src(src)
    os.setxattr(src / "same.txt", "user.long", LONG_A)
    os.utime(src / "same.txt", (T_OLD, T_OLD))
    os.setxattr(src, DEF, DIRDEF)       # on the root, which the run creates
    os.setxattr(src, "user.root", LONG_B)
    res = {}
    for tool in ("rsync", "pysync"):
        dst = tmp_path / tool
        res[tool] = (run_tool(tool, role, ["-aiAX"], src, dst), dst)
    (rr, rdst), (pr, pdst) = res["rsync"], res["pysync"]
    assert pr.returncode == rr.returncode == 0, pr.stderr.decode()
    assert acl_map(pdst) == acl_map(rdst) == acl_map(src)
    assert os.getxattr(pdst / "same.txt", "user.long") == LONG_A
    assert os.getxattr(pdst, "user.root") == LONG_B
    assert lines(pr.stdout) == lines(rr.stdout)


@pytest.mark.parametrize("role", ["local", "pull-rsync2pysync"])
def test_dry_run_reports_without_changing(tmp_path, role):
    src, res = both(tmp_path, role, ["-aiAn"])
    (rr, rdst), (pr, pdst) = res["rsync"], res["pysync"]
    assert pr.returncode == rr.returncode == 0, pr.stderr.decode()
    assert lines(pr.stdout) == lines(rr.stdout)
    assert acl_map(pdst) == acl_map(rdst)


def test_numeric_ids(tmp_path):
    src, res = both(tmp_path, "push-pysync2rsync", ["-aiA", "--numeric-ids"])
    (rr, rdst), (pr, pdst) = res["rsync"], res["pysync"]
    assert pr.returncode == rr.returncode == 0, pr.stderr.decode()
    assert acl_map(pdst) == acl_map(rdst)
    assert lines(pr.stdout) == lines(rr.stdout)


def test_a_implies_p_and_goes_to_the_server():
    from pysync.options import parse_args
    from pysync.server_cmd import server_args
    o = parse_args(["-rA", "a", "b"])
    assert o.perms and o.acls
    assert server_args(o, False, "")[1].startswith("-pAr")
    assert server_args(parse_args(["-aAX", "a", "b"]), False, "")[1].startswith("-logDtpAXr")
