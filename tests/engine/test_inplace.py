"""--inplace, --append and --append-verify, each run by pysync and by stock
rsync on the same trees: same resulting tree (content, modes, times, hard
links), the destination files keep their inodes, same itemized output,
same literal/matched byte counts from --stats, same exit code; locally and
over a remote shell in every role (pysync client <-> rsync server, rsync
client <-> pysync server, push and pull)."""

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.interrupt import kill_mid_file
from helpers.trees import compare_trees
from pysync.engine.matcher import MatchStats, send_delta
from pysync.options import parse_args
from pysync.protocol.checksums import get_checksum
from pysync.protocol.sums import sum_head_for

REPO = Path(__file__).resolve().parents[2]
FAKE_RSH = f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}"
PYSYNC = [sys.executable, "-m", "pysync"]
T_OLD, T_NEW = 1_600_000_000, 1_700_000_000


def put(root: Path, rel: str, data: bytes, mtime: int, mode: int = 0o644):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.chmod(p, mode)
    os.utime(p, (mtime, mtime))


def fix_dirs(root: Path, mtime: int):
    for d, _, _ in sorted(os.walk(root), reverse=True):
        os.utime(d, (mtime, mtime))


def _data():
    r = random.Random(7)
    rnd = lambda n: bytes(r.getrandbits(8) for _ in range(n))
    base = rnd(240_000)
    mid = bytearray(base)
    mid[120_000:120_100] = b"X" * 100
    return {
        "base": base,
        "mid": bytes(mid),
        # Data inserted in front and a chunk moved back: a match may not
        # name a block the in-place receiver has already overwritten.
        "shifted": rnd(5_000) + base[:50_000] + base[120_000:] + base[50_000:120_000]
        + b"\0" * 30_000,
        "log": rnd(90_000),
        "other": rnd(3_000),
    }


D = _data()


def make_src(root: Path):
    put(root, "same.txt", b"unchanged\n", T_OLD)
    put(root, "mid.bin", D["mid"], T_NEW)
    put(root, "shift.bin", D["shifted"], T_NEW)
    put(root, "grow.log", D["log"], T_NEW)
    put(root, "badprefix.txt", b"0123456789abcdefghij", T_NEW)
    put(root, "shrunk.txt", b"short now\n", T_NEW)
    put(root, "new.txt", b"only in the source\n", T_NEW)
    put(root, "ro.txt", b"read-only, changed\n", T_NEW, 0o444)
    put(root, "linked.txt", b"new text for both names\n", T_NEW)
    put(root, "d/hl-a", D["other"], T_NEW)
    os.link(root / "d/hl-a", root / "d/hl-b")
    put(root, "d/long-a", b"0123456789", T_NEW)
    os.link(root / "d/long-a", root / "d/long-b")
    fix_dirs(root, T_OLD)


def make_dst(top: Path):
    root = top / "dst"
    put(root, "same.txt", b"unchanged\n", T_OLD)
    put(root, "mid.bin", D["base"], T_OLD)
    put(root, "shift.bin", D["base"], T_OLD)
    put(root, "grow.log", D["log"][:61_234], T_OLD)
    put(root, "badprefix.txt", b"0123XXXXX", T_OLD)
    put(root, "shrunk.txt", b"this one used to be much longer\n", T_OLD)
    put(root, "ro.txt", b"read-only\n", T_OLD, 0o444)
    # A name outside the transfer shares the destination's inode.
    put(top, "outside.txt", b"old text\n", T_OLD)
    os.link(top / "outside.txt", root / "linked.txt")
    put(root, "d/hl-a", D["other"][:1000], T_OLD)
    # With --append and -H the first member is skipped: the other one
    # takes the data instead of being linked to it.
    put(root, "d/long-a", b"01234567890123456789", T_OLD)
    fix_dirs(root, T_OLD)


ROLES = ["local", "push-pysync2rsync", "push-rsync2pysync", "pull-pysync2rsync",
         "pull-rsync2pysync"]


def run_tool(tool: str, role: str, opts, src: Path, dst: Path, cwd: Path):
    if tool == "rsync":
        # pysync never does incremental recursion; between two rsyncs it
        # lets redos overtake later directories (the order varies by run).
        opts = opts + ["--no-inc-recursive"]
    if role == "local":
        client = PYSYNC if tool == "pysync" else ["rsync"]
        cmd = client + opts + [f"{src}/", f"{dst}/"]
        return subprocess.run(cmd, capture_output=True, timeout=120, cwd=cwd)
    pysync_client = tool == "pysync" and "pysync2rsync" in role
    client = PYSYNC if pysync_client else ["rsync"]
    server = "pysync" if tool == "pysync" and "rsync2pysync" in role else "rsync"
    remote = ["-e", FAKE_RSH, f"--rsync-path={server}"]
    if role.startswith("push"):
        cmd = client + opts + remote + [f"{src}/", f"localhost:{dst}/"]
    else:
        cmd = client + opts + remote + [f"localhost:{src}/", f"{dst}/"]
    return subprocess.run(cmd, capture_output=True, timeout=120, cwd=cwd)


def itemized(out: bytes):
    return [line for line in out.decode("utf-8", "replace").splitlines()
            if line[:1] in "<>.ch*" and line[1:2] in "fdLDS" and len(line) > 12]


def byte_counts(out: bytes):
    return [line for line in out.decode("utf-8", "replace").splitlines()
            if line.startswith(("Literal data:", "Matched data:"))]


def inodes(root: Path):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = Path(d) / f
            out[str(p.relative_to(root))] = os.stat(p).st_ino
    return out


CASES = {
    "inplace": ["-ai", "--inplace", "--stats"],
    "inplace-delta": ["-ai", "--inplace", "--no-W", "--stats"],
    "inplace-H": ["-aiH", "--inplace", "--stats"],
    "inplace-backup": ["-ai", "--inplace", "-b", "--no-W", "--stats"],
    "append": ["-ai", "--append", "--stats"],
    "append-verify": ["-ai", "--append-verify", "--stats"],
    "append-checksum": ["-ai", "--append", "-c", "--stats"],
    "append-H": ["-aiH", "--append", "--stats"],
    "append-verify-quiet": ["-a", "--append-verify", "--stats"],
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_option_matches_rsync(tmp_path, case, role):
    opts = CASES[case]
    src = tmp_path / "src"
    make_src(src)
    results = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        make_dst(top)
        before = inodes(top / "dst")
        r = run_tool(tool, role, opts, src, top / "dst", top)
        results[tool] = (r, top, before, inodes(top / "dst"))
    (rr, rtop, rbefore, rafter), (pr, ptop, pbefore, pafter) = results["rsync"], results["pysync"]
    assert pr.returncode == rr.returncode == 0, (pr.stderr.decode(), rr.stderr.decode())
    assert sorted(os.listdir(ptop)) == sorted(os.listdir(rtop))
    # Backups made inside a directory give it the time of the run (rsync's
    # -b implies --omit-dir-times).
    assert compare_trees(ptop / "dst", rtop / "dst", dir_times="backup" not in case) == []
    assert (ptop / "outside.txt").read_bytes() == (rtop / "outside.txt").read_bytes()
    # The files rsync updated in place keep their inode with pysync too.
    kept = lambda before, after: sorted(n for n in before if after.get(n) == before[n])
    assert kept(pbefore, pafter) == kept(rbefore, rafter)
    assert "mid.bin" in kept(pbefore, pafter) and "linked.txt" in kept(pbefore, pafter)
    assert itemized(pr.stdout) == itemized(rr.stdout)
    assert bool(itemized(pr.stdout)) == opts[0].startswith("-ai")     # (not vacuous)
    # The redo notices: only with -v or -i, as rsync.
    notices = lambda err: [x for x in err.decode().splitlines() if "failed verification" in x]
    assert notices(pr.stderr) == notices(rr.stderr)
    if case == "append-verify":
        assert len(notices(pr.stderr)) == 4
    assert byte_counts(pr.stdout) == byte_counts(rr.stdout)
    if case.startswith("append"):
        assert (ptop / "dst/shrunk.txt").read_bytes() == b"this one used to be much longer\n"
    else:
        assert (ptop / "dst/shift.bin").read_bytes() == D["shifted"]
    if case == "append-H":
        assert (ptop / "dst/d/long-b").read_bytes() == b"0123456789"
        assert (ptop / "dst/d/long-a").read_bytes() == b"01234567890123456789"


@pytest.mark.parametrize("argv, text", [
    (["--append", "-W"], "--append cannot be used with --whole-file"),
    (["--inplace", "--partial-dir=.p"], "--inplace cannot be used with --partial-dir"),
    (["--append", "--partial-dir=.p"], "--append cannot be used with --partial-dir"),
])
def test_conflicting_options_exit_1_like_rsync(tmp_path, argv, text):
    (tmp_path / "a").write_text("x")
    for client in (["rsync"], PYSYNC):
        r = subprocess.run(client + argv + [str(tmp_path / "a"), str(tmp_path / "b")],
                           capture_output=True, timeout=60)
        assert r.returncode == 1
        assert r.stderr.decode().splitlines()[0].split(": ", 1)[1] == text
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("opt", ["--inplace", "--append", "--append-verify"])
def test_direct_io_refused_with_in_place_updates(tmp_path, opt):
    (tmp_path / "a").write_text("x")
    r = subprocess.run(PYSYNC + [opt, "--direct-io", str(tmp_path / "a"), str(tmp_path / "b")],
                       capture_output=True, timeout=60)
    what = "append" if opt.startswith("--append") else "inplace"
    assert r.returncode == 1
    assert r.stderr.decode().splitlines()[0] == \
        f"pysync: --{what} cannot be used with --direct-io"
    assert not (tmp_path / "b").exists()


def test_option_implications():
    o = parse_args(["--append", "--partial", "a", "b"])
    assert (o.append, o.inplace, o.partial) == (1, True, False)
    assert parse_args(["--append", "--append", "a", "b"]).append == 1     # a client
    assert parse_args(["--server", "--append", "--append", ".", "d"]).append == 2
    assert parse_args(["--append-verify", "--no-append", "a", "b"]).append == 0
    assert parse_args(["--inplace", "--no-inplace", "a", "b"]).inplace is False


def _apply_in_place(basis: bytearray, tokens, blen: int) -> bytes:
    """What an in-place receiver does with a token stream: write at the
    current offset into the basis itself, skip a block at its own offset."""
    out = basis
    off = 0
    for kind, value in tokens:
        if kind == "lit":
            out[off:off + len(value)] = value
            off += len(value)
        else:
            i, n = value
            data = bytes(out[i * blen:i * blen + n])
            out[off:off + n] = data
            off += n
    del out[off:]
    return bytes(out)


def _delta(new: bytes, old: bytes, inplace: bool, blen=700):
    ck = get_checksum("md5")
    head = sum_head_for(len(old), ck.digest_len, blen)
    sums = [(__import__("pysync").native.weak_checksum(old[i * blen:(i + 1) * blen]),
             ck.block_sum(old[i * blen:(i + 1) * blen], 0)) for i in range(head.count)]
    r, w = os.pipe()
    tokens = []
    try:
        os.write(w, new)
        os.close(w)
        w = -1
        send_delta(r, head, sums, lambda d: ck.block_sum(d, 0),
                   lambda d: tokens.append(("lit", bytes(d))),
                   lambda i, d: tokens.append(("blk", (i, len(d)))),
                   ck.file_hasher(), MatchStats(), inplace=inplace)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    return tokens, blen


def test_matcher_never_names_overwritten_basis_data():
    r = random.Random(11)
    rnd = lambda n: bytes(r.getrandbits(8) for _ in range(n))
    old = rnd(30_000)
    cases = [rnd(900) + old, old[7_000:] + old[:7_000], old[:5_000] + old[:5_000] + old[5_000:],
             b"\0" * 7_000 + old[:20_000], old[::-1][:3_000] + old]
    broke_without_rule = False
    matched = 0
    for new in cases:
        tokens, blen = _delta(new, old, inplace=True)
        assert _apply_in_place(bytearray(old), tokens, blen) == new
        matched += sum(1 for k, _ in tokens if k == "blk")
        tokens, blen = _delta(new, old, inplace=False)
        if _apply_in_place(bytearray(old), tokens, blen) != new:
            broke_without_rule = True
    assert matched > 40
    assert broke_without_rule       # the rule is what makes these work


def test_partial_direct_io_keeps_a_correct_prefix_when_killed(tmp_path):
    """--partial --direct-io (issue #6 part 7): a transfer killed mid-file
    leaves the bytes that arrived, in order, as the destination file."""
    src = tmp_path / "src"
    src.mkdir()
    size = 200 << 20
    with open(src / "big", "wb") as f:          # no repeating pattern
        for _ in range(size >> 23):
            f.write(os.urandom(8 << 20))
    dst = tmp_path / "dst"
    dst.mkdir()
    cmd = PYSYNC + ["-a", "--no-W", "--partial", "--direct-io", "-e", FAKE_RSH,
                    "--rsync-path=pysync", f"{src}/", f"localhost:{dst}/"]
    kill_mid_file(cmd, dst, "big")
    kept = dst / "big"
    assert kept.exists(), os.listdir(dst)
    n = kept.stat().st_size
    assert 0 < n < size
    with open(src / "big", "rb") as a, open(kept, "rb") as b:
        while True:
            x = b.read(8 << 20)
            if not x:
                break
            assert a.read(len(x)) == x
    assert not [n for n in os.listdir(dst) if n.startswith(".big.")]


@pytest.mark.parametrize("seed", range(12))
def test_in_place_delta_sends_what_rsync_sends(tmp_path, seed):
    """Random edits, moved pieces and zero runs: pysync's in-place search
    names the same amount of data as rsync's (literal and matched bytes),
    including rsync's re-alignment of zero runs to block boundaries."""
    r = random.Random(seed)
    zeros = lambda k: b"\0" * k
    pieces = [r.randbytes(r.randint(0, 40_000)) if r.random() < .5 else zeros(r.randint(0, 40_000))
              for _ in range(6)]
    old = b"".join(pieces)
    for _ in range(r.randint(1, 4)):
        k = r.randrange(len(pieces))
        c = r.random()
        if c < .3:
            pieces.insert(k, r.randbytes(r.randint(1, 3000)))
        elif c < .5:
            pieces.insert(k, zeros(r.randint(1, 5000)))
        elif c < .7:
            pieces[k] = pieces[k][r.randint(0, len(pieces[k])):]
        else:
            r.shuffle(pieces)
    new = b"".join(pieces)
    got = {}
    for tool, client in (("rsync", ["rsync"]), ("pysync", PYSYNC)):
        put(tmp_path / tool / "s", "f", new, T_NEW)
        put(tmp_path / tool / "t", "f", old, T_OLD)
        p = subprocess.run(client + ["-rI", "--inplace", "--no-W", "--stats",
                                     f"{tmp_path / tool / 's'}/", f"{tmp_path / tool / 't'}/"],
                           capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert (tmp_path / tool / "t" / "f").read_bytes() == new
        got[tool] = byte_counts(p.stdout)
    assert got["pysync"] == got["rsync"]


def test_python_api_inplace_and_append(tmp_path):
    import pysync
    src, dst = tmp_path / "src", tmp_path / "dst"
    put(src, "f", D["mid"], T_NEW)
    put(src, "log", D["log"], T_NEW)
    put(dst, "f", D["base"], T_OLD)
    put(dst, "log", D["log"][:1000], T_OLD)
    ino = os.stat(dst / "f").st_ino
    res = pysync.sync(f"{src}/", f"{dst}/", archive=True, inplace=True, whole_file=False)
    assert os.stat(dst / "f").st_ino == ino and (dst / "f").read_bytes() == D["mid"]
    assert res.stats["matched_data"] >= len(D["mid"]) - 1000     # f: one block sent
    put(dst, "log", D["log"][:1000], T_OLD)
    res = pysync.sync(f"{src}/", f"{dst}/", archive=True, append_verify=True)
    assert (dst / "log").read_bytes() == D["log"]
    assert res.stats["literal_data"] == len(D["log"]) - 1000


@pytest.mark.parametrize("mode", ["--inplace", "--append", "--append-verify"])
@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_in_place_finishes_like_a_temp_file_as_rsync(tmp_path, role, mode):
    """A file written in place is finished as one received into a temp
    file: its xattrs are set (-X) and, with --remove-source-files, the
    sender is told it may remove the source.  Found by interop/fuzz.py:
    pysync left both out."""
    import os
    from helpers.roles import lines, sources_command
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.pysync.probe", b"1")
    except OSError as e:
        pytest.skip(f"no user xattrs: {e}")
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        src.mkdir(parents=True)
        dst.mkdir()
        (src / "new").write_bytes(b"n" * 3000)
        (src / "grown").write_bytes(b"g" * 5000)
        (dst / "grown").write_bytes(b"g" * 1000)
        for n in ("new", "grown"):
            os.setxattr(src / n, "user.pysync.test", n.encode())
            os.utime(src / n, (1_600_000_000, 1_600_000_000))
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-aXi", mode, "--remove-source-files"] + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), sorted(os.listdir(src)),
                     {n: (os.getxattr(dst / n, "user.pysync.test"), (dst / n).read_bytes())
                      for n in ("new", "grown")})
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][2] == []
