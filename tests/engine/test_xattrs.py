"""-X/--xattrs end to end: pysync and stock rsync run on the same trees, in
every role (local; pysync client -> rsync server and rsync client -> pysync
server, push and pull over the fake remote shell), and must leave the same
xattrs, print the same itemized lines and exit with the same code.  Values
both short and longer than rsync's 32-byte digest threshold, so the
abbreviated-value request path runs, and a second run that changes nothing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.trees import compare_trees

REPO = Path(__file__).resolve().parents[2]
FAKE_RSH = f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}"
PYSYNC = [sys.executable, "-m", "pysync"]
T_OLD, T_NEW = 1_600_000_000, 1_700_000_000
AM_ROOT = os.geteuid() == 0
LONG_A = b"A" * 100 + b"-long value, sent as a digest first"
LONG_B = b"B" * 100 + b"-long value, sent as a digest first"   # same length as LONG_A


def _user_xattrs_work(d: Path) -> bool:
    p = d / ".probe"
    p.write_bytes(b"")
    try:
        os.setxattr(p, "user.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        p.unlink()


@pytest.fixture(autouse=True)
def _need_xattrs(tmp_path):
    if not _user_xattrs_work(tmp_path):
        pytest.skip(f"{tmp_path} does not support user xattrs")


def put(root: Path, rel: str, data: bytes, mtime: int, xattrs: dict) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.chmod(p, 0o644)
    for k, v in xattrs.items():
        os.setxattr(p, k, v)
    os.utime(p, (mtime, mtime))


def fix_dirs(root: Path, mtime: int) -> None:
    for d, _, _ in sorted(os.walk(root), reverse=True):
        os.utime(d, (mtime, mtime))


def make_src(root: Path) -> None:
    put(root, "same.txt", b"unchanged\n", T_OLD, {"user.short": b"s", "user.long": LONG_A})
    put(root, "short-changed.txt", b"same data\n", T_OLD, {"user.k": b"new"})
    put(root, "long-changed.txt", b"same data\n", T_OLD, {"user.long": LONG_B, "user.x": b"1"})
    # Two files with the same set: one set on the wire, one value request.
    put(root, "twin1.txt", b"twin 1\n", T_OLD, {"user.long": LONG_B})
    put(root, "twin2.txt", b"twin 2\n", T_OLD, {"user.long": LONG_B})
    put(root, "removed-here.txt", b"same data\n", T_OLD, {})
    put(root, "data-and-xattr.txt", b"new content, longer than before\n", T_NEW,
        {"user.long": LONG_B})
    put(root, "new.txt", b"only in the source\n", T_NEW, {"user.n": b"v", "user.long": LONG_A})
    put(root, "d/inner.txt", b"inner\n", T_OLD, {})
    os.setxattr(root / "d", "user.dir", LONG_A)
    if AM_ROOT:
        put(root, "trusted.txt", b"root only\n", T_OLD, {"trusted.t": b"T", "user.u": b"U"})
    fix_dirs(root, T_OLD)


def make_dst(root: Path) -> None:
    put(root, "same.txt", b"unchanged\n", T_OLD, {"user.short": b"s", "user.long": LONG_A})
    put(root, "short-changed.txt", b"same data\n", T_OLD, {"user.k": b"old"})
    put(root, "long-changed.txt", b"same data\n", T_OLD, {"user.long": LONG_A, "user.x": b"1"})
    put(root, "twin1.txt", b"twin 1\n", T_OLD, {"user.long": LONG_A})
    put(root, "twin2.txt", b"twin 2\n", T_OLD, {})
    put(root, "removed-here.txt", b"same data\n", T_OLD, {"user.gone": b"x" * 40})
    put(root, "data-and-xattr.txt", b"old content\n", T_OLD, {"user.long": LONG_A})
    put(root, "d/inner.txt", b"inner\n", T_OLD, {})
    fix_dirs(root, T_OLD)


def xattr_map(root: Path) -> dict:
    out = {}
    for d, dirs, files in os.walk(root):
        for n in [d] + [os.path.join(d, f) for f in files]:
            names = sorted(k for k in os.listxattr(n, follow_symlinks=False)
                           if k.startswith(("user.", "trusted.")))
            out[os.path.relpath(n, root)] = [(k, os.getxattr(n, k, follow_symlinks=False))
                                             for k in names]
    return out


ROLES = ["local", "push-pysync2rsync", "push-rsync2pysync", "pull-pysync2rsync",
         "pull-rsync2pysync"]


def run_tool(tool: str, role: str, opts, src: Path, dst: Path):
    """The same command with rsync everywhere, or with pysync in the role's place."""
    if role == "local":
        cmd = (PYSYNC if tool == "pysync" else ["rsync"]) + opts + [f"{src}/", f"{dst}/"]
        return subprocess.run(cmd, capture_output=True, timeout=120)
    client, server = ["rsync"], "rsync"
    if tool == "pysync":
        if role.endswith("rsync2pysync"):
            server = "pysync"
        else:
            client = PYSYNC
    remote = ["-e", FAKE_RSH, f"--rsync-path={server}"]
    if role.startswith("push"):
        cmd = client + opts + remote + [f"{src}/", f"localhost:{dst}/"]
    else:
        cmd = client + opts + remote + [f"localhost:{src}/", f"{dst}/"]
    return subprocess.run(cmd, capture_output=True, timeout=120)


def lines(out: bytes):
    return [ln for ln in out.decode("utf-8", "replace").splitlines()
            if ln.strip() and not ln.startswith(("sent ", "total size", "created directory"))]


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
    src, res = both(tmp_path, role, ["-aiX"])
    (rr, rdst), (pr, pdst) = res["rsync"], res["pysync"]
    assert pr.returncode == rr.returncode == 0, pr.stderr.decode() + rr.stderr.decode()
    assert xattr_map(pdst) == xattr_map(rdst)
    assert xattr_map(pdst) == xattr_map(src)
    assert compare_trees(pdst, rdst) == []
    assert lines(pr.stdout) == lines(rr.stdout)
    assert any(ln.startswith(".f") and ln.endswith("x long-changed.txt")
               for ln in lines(pr.stdout)), pr.stdout
    # Nothing left to do: a second run prints nothing and changes nothing.
    for tool in ("rsync", "pysync"):
        r = run_tool(tool, role, ["-aiX"], src, res[tool][1])
        assert r.returncode == 0, r.stderr.decode()
        assert lines(r.stdout) == [], (tool, r.stdout)
    assert xattr_map(pdst) == xattr_map(src)


@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_fresh_copy_matches_rsync(tmp_path, role):
    src, res = both(tmp_path, role, ["-aiX"], prepare_dst=False)
    (rr, rdst), (pr, pdst) = res["rsync"], res["pysync"]
    assert pr.returncode == rr.returncode == 0, pr.stderr.decode()
    assert xattr_map(pdst) == xattr_map(rdst) == xattr_map(src)
    assert lines(pr.stdout) == lines(rr.stdout)


@pytest.mark.parametrize("role", ["local", "pull-rsync2pysync"])
def test_dry_run_reports_without_changing(tmp_path, role):
    src, res = both(tmp_path, role, ["-aiXn"])
    (rr, rdst), (pr, pdst) = res["rsync"], res["pysync"]
    assert pr.returncode == rr.returncode == 0, pr.stderr.decode()
    assert lines(pr.stdout) == lines(rr.stdout)
    assert xattr_map(pdst) == xattr_map(rdst)
    assert xattr_map(pdst)["long-changed.txt"] == [("user.long", LONG_A), ("user.x", b"1")]


def test_without_x_xattrs_are_left_alone(tmp_path):
    src, res = both(tmp_path, "local", ["-ai"])
    (rr, rdst), (pr, pdst) = res["rsync"], res["pysync"]
    assert pr.returncode == rr.returncode == 0
    assert xattr_map(pdst) == xattr_map(rdst)
    assert lines(pr.stdout) == lines(rr.stdout)


@pytest.mark.skipif(not AM_ROOT, reason="trusted.* needs root")
def test_trusted_names_travel_as_root(tmp_path):
    src, res = both(tmp_path, "push-rsync2pysync", ["-aX"])
    assert dict(xattr_map(res["pysync"][1])["trusted.txt"])[("trusted.t")] == b"T"


def test_server_args_carry_x():
    from pysync.options import parse_args
    from pysync.server_cmd import server_args
    assert "X" in server_args(parse_args(["-aX", "a", "b"]), False, "LsfxCIvu")[1]
    assert server_args(parse_args(["-aXX", "a", "b"]), False, "")[1].startswith("-logDtpXXr")


FILTER_CASES = {
    # A name neither sent nor stored nor removed.
    "exclude-name": ["--filter=-x user.skip", "--filter=-x system.*"],
    # Names may be added and changed but none removed (a receiver-only rule).
    "no-deletes": ["--filter=-xr *"],
    # Only the user namespace, through a negated rule.
    "only-user": ["--filter=-x! user.*"],
}


def make_filter_trees(src: Path, dst: Path) -> None:
    put(src, "f.txt", b"data\n", T_OLD, {"user.skip": b"source", "user.keep": LONG_B,
                                         "user.new": b"n"})
    put(src, "g.txt", b"data\n", T_OLD, {"user.keep": b"k"})
    put(dst, "f.txt", b"data\n", T_OLD, {"user.skip": b"dest", "user.keep": LONG_A})
    put(dst, "g.txt", b"data\n", T_OLD, {"user.keep": b"k", "user.extra": b"e"})
    fix_dirs(src, T_OLD)
    fix_dirs(dst, T_OLD)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", sorted(FILTER_CASES))
def test_x_filter_rules_match_rsync(tmp_path, case, role):
    res = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / f"src-{tool}", tmp_path / tool
        make_filter_trees(src, dst)
        res[tool] = (run_tool(tool, role, ["-aiX"] + FILTER_CASES[case], src, dst), dst)
    (rr, rdst), (pr, pdst) = res["rsync"], res["pysync"]
    assert pr.returncode == rr.returncode == 0, pr.stderr.decode() + rr.stderr.decode()
    assert xattr_map(pdst) == xattr_map(rdst)
    assert lines(pr.stdout) == lines(rr.stdout)


def test_x_modifier_goes_over_the_wire_as_rsync_writes_it():
    from pysync.engine.filters import FilterList
    fl = FilterList.from_options(["-x! user.*", "-xr *", "+x user.a"])
    assert fl.wire_rules() == [b"-!x user.*", b"-xr *", b"+x user.a"]
    assert fl.xattr_excluded(b"trusted.t", "sender") and not fl.xattr_excluded(b"user.u", "sender")
    assert not fl.excluded(b"trusted.t", False)      # never a file-name rule


@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
@pytest.mark.parametrize("kind", ["link", "copy", "compare"])
def test_alt_dest_needs_same_xattrs(tmp_path, kind, role):
    """--*-dest: a file with the same data but other xattrs (or perms) is
    not linked or skipped but copied here and itemized 'cf' (try_dests_reg)."""
    src = tmp_path / "src"
    for n, v in (("same", b"s"), ("diff", b"new"), ("long", LONG_A), ("perm", b"p")):
        put(src, n, b"data", T_OLD, {"user.v": v})
    os.chmod(src / "perm", 0o600)
    res = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        prev, dst = top / "prev", top / "dst"
        for n, v in (("same", b"s"), ("diff", b"old"), ("long", LONG_B), ("perm", b"p")):
            put(prev, n, b"data", T_OLD, {"user.v": v})
        dst.mkdir()
        os.utime(dst, (T_OLD, T_OLD))
        r = run_tool(tool, role, ["-aiX", f"--{kind}-dest=../prev"], src, dst)
        linked = sorted(n for n in os.listdir(dst)
                        if os.stat(dst / n).st_ino == os.stat(prev / n).st_ino)
        res[tool] = (r.returncode, lines(r.stdout), xattr_map(dst), linked, r.stderr.decode())
    assert res["pysync"] == res["rsync"]
    assert "cf........x long" in res["pysync"][1]
