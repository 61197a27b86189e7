"""--fake-super, run by pysync and by stock rsync on the same trees: a backup
into a fake-super side (ownership, set-id bits, devices, specials and
symlinks kept in the user.rsync.%stat xattr, placeholders as plain files)
and the restore from it (the %stat folded back in), locally and in every
remote role; the same trees, xattrs included, the same itemized output
and exit codes.  Also -X beside it (the %stat name stays internal), the
-XX conflict, and the real use case: an unprivileged account doing the
backup and serving the restore."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers.roles import PYSYNC, REPO, ROLES, command, lines
from helpers.trees import is_root, snapshot

XSTAT = "user.rsync.%stat"
T1, T2 = 1_600_000_000, 1_700_000_000
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

pytestmark = pytest.mark.skipif(not is_root(), reason="the source tree needs root (owners, devices)")


def _user_xattrs(where: str) -> bool:
    probe = Path(tempfile.mkdtemp(dir=where)) / "probe"
    try:
        probe.write_bytes(b"")
        os.setxattr(probe, "user.probe", b"1")
        return True
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
        raise
    finally:
        shutil.rmtree(probe.parent)


@pytest.fixture(autouse=True)
def _needs_user_xattrs(tmp_path):
    if not _user_xattrs(str(tmp_path)):
        pytest.skip("this file system has no user xattrs (--fake-super stores into them)")


def make_src(root: Path) -> None:
    (root / "d").mkdir(parents=True)
    f = root / "owned.txt"
    f.write_bytes(b"owned by 123:456, setuid\n")
    os.chown(f, 123, 456)
    os.chmod(f, 0o4755)                 # after chown, which drops set-id bits
    g = root / "plain.txt"
    g.write_bytes(b"root's, as a root receiver would leave it\n")
    os.chmod(g, 0o644)
    os.chown(root / "d", 123, 456)
    os.chmod(root / "d", 0o2750)
    (root / "d" / "inner").write_bytes(b"inner\n")
    os.chmod(root / "d" / "inner", 0o400)
    os.setxattr(f, "user.note", b"kept with -X")
    os.setxattr(g, "trusted.note", b"a root-only namespace")
    os.symlink("owned.txt", root / "link")
    os.lchown(root / "link", 123, 456)
    os.mkfifo(root / "fifo", 0o640)
    os.mknod(root / "null", stat.S_IFCHR | 0o620, os.makedev(1, 3))
    os.mknod(root / "loop", stat.S_IFBLK | 0o660, os.makedev(7, 9))
    os.chown(root / "loop", 0, 6)
    for name, mode in (("null", 0o620), ("loop", 0o660), ("fifo", 0o640)):
        os.chmod(root / name, mode)         # whatever the umask
    for p in [*root.rglob("*"), root]:
        if not p.is_symlink():
            os.utime(p, (T1, T1))
    os.utime(root / "link", (T1, T1), follow_symlinks=False)


def tree(root: Path) -> dict:
    """trees.snapshot plus every xattr of every object."""
    snap = snapshot(root)
    for name, entry in snap.items():
        p = os.path.join(root, name)
        entry.pop("inode")
        names = sorted(os.listxattr(p, follow_symlinks=False))
        entry["xattrs"] = {n: os.getxattr(p, n, follow_symlinks=False) for n in names}
    return snap


def no_xattrs(snap: dict) -> dict:
    return {n: {k: v for k, v in e.items() if k != "xattrs"} for n, e in snap.items()}


def with_fake(cmd: list, side: str) -> list:
    """The command with --fake-super on the client or (through
    --rsync-path, as a user gives it) on the server."""
    if side == "client":
        n = len(PYSYNC) if cmd[:len(PYSYNC)] == PYSYNC else 1
        return cmd[:n] + ["--fake-super"] + cmd[n:]
    return [a + " --fake-super" if a.startswith("--rsync-path=") else a for a in cmd]


def run(tool, role, opts, src, dst, fake_side):
    cmd = command(tool, role, opts, src, dst)
    if fake_side:
        cmd = with_fake(cmd, fake_side)
    return subprocess.run(cmd, capture_output=True, timeout=120)


def items(out: bytes) -> list:
    return [ln for ln in lines(out) if not ln.startswith("created directory")]


def receiver_side(role: str) -> str:
    return "server" if role.startswith("push") else "client"


def sender_side(role: str) -> str:
    return "client" if role.startswith("push") or role == "local" else "server"


def both(tmp_path, role, opts, src_of, fake_side, name):
    """Run stock rsync and pysync; -> (rsync tree, pysync tree) after
    checking their outputs and exit codes are the same."""
    res = {}
    for tool in ("rsync", "pysync"):
        dst = tmp_path / tool / name
        dst.parent.mkdir(exist_ok=True)
        r = run(tool, role, opts, src_of(tool), dst, fake_side)
        res[tool] = (r, dst)
    (rr, rdst), (pr, pdst) = res["rsync"], res["pysync"]
    assert pr.returncode == rr.returncode == 0, (pr.stderr, rr.stderr)
    assert items(pr.stdout) == items(rr.stdout), (pr.stdout, rr.stdout, pr.stderr)
    assert tree(pdst) == tree(rdst)
    return rdst, pdst


@pytest.mark.parametrize("role", ROLES)
def test_backup_then_restore(tmp_path, role):
    src = tmp_path / "src"
    make_src(src)
    opts = ["-aiH"]
    # The backup: the receiving side has --fake-super.
    rdst, pdst = both(tmp_path, role, opts, lambda tool: src, receiver_side(role), "backup")
    x = tree(pdst)
    assert x["null"]["type"] == "file" and x["null"]["xattrs"][XSTAT] == b"20620 1,3 0:0"
    assert x["loop"]["xattrs"][XSTAT] == b"60660 7,9 0:6"
    assert x["owned.txt"]["xattrs"][XSTAT] == b"104755 0,0 123:456"
    assert x["d"]["xattrs"][XSTAT] == b"42750 0,0 123:456"
    assert x["d/inner"]["mode"] == 0o600 and x["d/inner"]["xattrs"][XSTAT] == b"100400 0,0 0:456"
    assert x["link"]["type"] == "file" and x["link"]["xattrs"][XSTAT] == b"120777 0,0 123:456"
    assert XSTAT not in x["plain.txt"]["xattrs"]
    # Again after changes: only what changed is itemized, into the xattr.
    os.chown(src / "plain.txt", 7, 8)
    os.chmod(src / "d" / "inner", 0o440)
    os.utime(src / "d", (T1, T1))
    both(tmp_path, role, opts, lambda tool: src, receiver_side(role), "backup")
    # The restore: the sending side has --fake-super, the receiver is real
    # (locally both halves have it: a copy between two backups).
    rback, pback = both(tmp_path, role, opts, lambda tool: tmp_path / tool / "backup",
                        sender_side(role), "restore")
    if role != "local":
        assert no_xattrs(tree(pback)) == no_xattrs(tree(src))


@pytest.mark.parametrize("role", ["local", "push-pysync2rsync", "push-rsync2pysync",
                                  "pull-rsync2pysync"])
def test_xattrs_beside_fake_super(tmp_path, role):
    """With -X the %stat name is rsync's own: never listed, never removed,
    and the user's xattrs go with the files both ways."""
    src = tmp_path / "src"
    make_src(src)
    opts = ["-aiX"]
    _, kept = both(tmp_path, role, opts, lambda tool: src, receiver_side(role), "backup")
    # A name outside user.* is kept disguised as user.rsync.NAME.
    assert tree(kept)["plain.txt"]["xattrs"] == {"user.rsync.trusted.note": b"a root-only namespace"}
    rback, pback = both(tmp_path, role, opts, lambda tool: tmp_path / tool / "backup",
                        sender_side(role), "restore")
    if role != "local":
        back = tree(pback)
        assert back["owned.txt"]["xattrs"] == {"user.note": b"kept with -X"}
        assert back == tree(src)


def test_fake_super_conflicts_with_XX(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    out = {}
    for tool in ("rsync", "pysync"):
        cmd = (PYSYNC if tool == "pysync" else ["rsync"]) + ["-aXX", "--fake-super",
                                                              f"{src}/", f"{tmp_path / tool}/"]
        r = subprocess.run(cmd, capture_output=True, timeout=60)
        # The line names the program (as every pysync message does).
        out[tool] = (r.returncode, r.stderr.decode().splitlines()[0].split(": ", 1)[1])
        assert not (tmp_path / tool).exists()
    assert out["pysync"] == out["rsync"] == (1, "--fake-super conflicts with -XX")


def test_acls_are_refused_not_diverted(tmp_path):
    """rsync would keep -A's ACLs in user.rsync.%aacl/%dacl; pysync does
    not (yet), so it says so instead of writing real ACLs."""
    src = tmp_path / "src"
    src.mkdir()
    r = subprocess.run(PYSYNC + ["-aA", "--fake-super", f"{src}/", f"{tmp_path / 'dst'}/"],
                       capture_output=True, timeout=60)
    assert r.returncode == 4
    assert b"--fake-super with -A (--acls) is not supported" in r.stderr
    assert not (tmp_path / "dst").exists()


def test_corrupt_stat_xattr(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"x")
    os.setxattr(src / "f", XSTAT, b"not a stat")
    res = {}
    for tool in ("rsync", "pysync"):
        cmd = (PYSYNC if tool == "pysync" else ["rsync"]) + ["-a", "--fake-super",
                                                              f"{src}/", f"{tmp_path / tool}/"]
        r = subprocess.run(cmd, capture_output=True, timeout=60)
        res[tool] = (r.returncode, [ln for ln in r.stderr.decode().splitlines()
                                    if ln.startswith("Corrupt")])
    assert res["pysync"] == res["rsync"]
    assert res["pysync"][0] == 11 and res["pysync"][1]


# ---- an unprivileged account: the use case ------------------------------------------

def _nobody_python(work: Path):
    """(interpreter, PYTHONPATH) with which uid 65534 can run pysync, or
    None: this interpreter may live where that account cannot read (a
    version manager under /root); then the system one, with copies of the
    packages pysync needs that it lacks."""
    if shutil.which("setpriv") is None:
        return None
    # pysync.config no longer imports xxhash (it loads with the first sum):
    # the probe asks for it by name.
    probe = "import pysync.config, xxhash"
    base = [str(REPO)]
    for exe in (sys.executable, "/usr/bin/python3"):
        for extra in ([], ["xxhash"]):
            path = list(base)
            if extra:
                site = work / "site"
                for mod in extra:
                    spec = __import__(mod).__file__
                    shutil.copytree(os.path.dirname(spec), site / mod, dirs_exist_ok=True)
                path.append(str(site))
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
            r = subprocess.run(NOBODY + [exe, "-c", probe], env=env, capture_output=True,
                               cwd="/")
            if r.returncode == 0:
                return exe, os.pathsep.join(path)
    return None


def test_unprivileged_backup_and_restore(tmp_path):
    work = Path(tempfile.mkdtemp(prefix="pysync-fakesuper-", dir="/tmp"))
    try:
        os.chmod(work, 0o755)
        found = _nobody_python(work)
        if found is None:
            pytest.skip("uid 65534 cannot run pysync here (no setpriv or no readable Python)")
        exe, pypath = found
        env = dict(os.environ, PYTHONPATH=pypath)
        src = work / "src"
        make_src(src)
        for p in [src, *src.rglob("*")]:      # readable by the backup account
            if not p.is_symlink() and not p.is_char_device() and not p.is_block_device():
                os.chmod(p, os.stat(p).st_mode | 0o5)
        for p in [src, src / "d"]:
            os.utime(p, (T1, T1))
        store = work / "store"
        store.mkdir()
        os.chown(store, 65534, 65534)
        py = [exe, "-m", "pysync"]
        out = {}
        for tool, client in (("rsync", ["rsync"]), ("pysync", py)):
            r = subprocess.run(NOBODY + client + ["-ai", "--fake-super", f"{src}/",
                                                  f"{store / tool}/"],
                               capture_output=True, env=env, timeout=120, cwd="/")
            out[tool] = (r.returncode, items(r.stdout), r.stderr)
        assert out["pysync"][:2] == out["rsync"][:2], out
        kept = tree(store / "pysync")
        assert kept == tree(store / "rsync")
        assert kept["owned.txt"]["uid"] == 65534
        assert kept["owned.txt"]["xattrs"][XSTAT] == b"104755 0,0 123:456"
        # Names and maps apply as for root (uidlist.c: am_root is -1, not 0).
        mapped = {}
        for tool, client in (("rsync", ["rsync"]), ("pysync", py)):
            r = subprocess.run(NOBODY + client + ["-ai", "--fake-super", "--usermap=123:777,root:daemon",
                                                  "--groupmap=456:888", f"{src}/",
                                                  f"{store / (tool + '-mapped')}/"],
                               capture_output=True, env=env, timeout=120, cwd="/")
            assert r.returncode == 0, r.stderr
            mapped[tool] = tree(store / (tool + "-mapped"))
        assert mapped["pysync"] == mapped["rsync"]
        assert mapped["pysync"]["d"]["xattrs"][XSTAT] == b"42755 0,0 777:888"
        # The restore, as root, from a server run by the unprivileged account.
        (work / "back").mkdir()
        rsh = f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}"
        back = {}
        for tool, client, server in (("rsync", ["rsync"], "rsync"),
                                     ("pysync", PYSYNC, " ".join(py))):
            path = " ".join(NOBODY) + f" {server} --fake-super"
            r = subprocess.run(client + ["-ai", "-e", rsh, f"--rsync-path={path}",
                                         f"localhost:{store / tool}/", f"{work / 'back' / tool}/"],
                               capture_output=True, env=env, timeout=120)
            back[tool] = (r.returncode, items(r.stdout), r.stderr)
        assert back["pysync"][:2] == back["rsync"][:2], back
        restored = tree(work / "back" / "pysync")
        assert restored == tree(work / "back" / "rsync")
        assert no_xattrs(restored) == no_xattrs(tree(src))
    finally:
        shutil.rmtree(work, ignore_errors=True)
