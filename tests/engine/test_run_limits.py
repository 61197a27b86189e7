"""Options that limit a run (--stop-after / --stop-at, --max-alloc,
--copy-as) and --skip-compress, each run by pysync and by stock rsync on
the same input: same tree, same messages, same exit code; locally and
over the fake remote shell."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from helpers.cliopts import T_NEW, T_OLD, assert_same, both, make_src
from helpers.roles import PYSYNC, ROLES, command, fix_dirs, put
from helpers.trees import compare_trees


# ---- --stop-after / --stop-at -----------------------------------------------------------

STOP_AT = ["2099-01-01", "99-1-1", "2099-1-1T12:30", "12:00", "T12:00", ":30", "1-1", "2020-01-01",
           "25:00", "12:60", "2099-13-01", "abc", "", "2099-02-30", "12:", "2099/06/01", "t1:2",
           "1-2-3-4", "5"]
STOP_AFTER = ["0", "-1", "abc", "5", "1x", "", "99999999999999999999"]


@pytest.mark.parametrize("opt,value", [("--stop-at", v) for v in STOP_AT]
                         + [("--stop-after", v) for v in STOP_AFTER] + [("--time-limit", "0")])
def test_stop_time_syntax(tmp_path, opt, value):
    got = []
    for tool in (PYSYNC, ["rsync"]):
        r = subprocess.run(tool + ["-n", f"{opt}={value}", f"{tmp_path}/", f"{tmp_path}/d/"],
                           capture_output=True, text=True)
        first = r.stderr.splitlines()[0].split(": ", 1)[-1] if r.returncode else ""
        got.append((r.returncode, first))
    assert got[0] == got[1]


def test_stop_at_ends_the_run_with_code_30(tmp_path):
    """Every role at once (so they share the wait for the next minute):
    a transfer slowed by --bwlimit, stopped by --stop-at."""
    src = tmp_path / "src"
    put(src, "big", os.urandom(30_000_000), T_NEW)
    when = time.time() + 75
    opts = ["-a", "--bwlimit=300", "--stop-at=" + time.strftime("%H:%M", time.localtime(when))]
    procs = {}
    for role in ROLES:
        for tool in ("rsync", "pysync"):
            if tool == "rsync" and role not in ("local", "push-pysync2rsync", "pull-pysync2rsync"):
                continue        # stock rsync on both sides: once per direction is enough
            dst = tmp_path / f"{tool}-{role}"
            dst.mkdir()
            procs[tool, role] = (subprocess.Popen(command(tool, role, opts, src, dst),
                                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE), dst)
    for (tool, role), (p, dst) in procs.items():
        out, err = p.communicate(timeout=300)
        # (a stock rsync client that pulls sometimes ends with 12 under
        # load, whoever the server is: its receiver and generator race to
        # exit, and a server ending with 30 sends no MSG_ERROR_EXIT; the
        # code meant is 30)
        rsync_pulls = role.startswith("pull") and (tool == "rsync" or role.endswith("rsync2pysync"))
        expected = (30, 12) if rsync_pulls else (30,)
        assert p.returncode in expected, (tool, role, err)
        assert b"stopping at requested limit" in err, (tool, role, err)
        assert os.listdir(dst) == [], (tool, role)     # no file, no temp file left


# ---- --skip-compress ------------------------------------------------------------------

def _stats(out: bytes) -> dict:
    keep = {}
    for line in out.decode().splitlines():
        k, sep, v = line.partition(": ")
        if sep and k in ("Literal data", "Matched data", "Total bytes sent", "Total bytes received"):
            keep[k] = int(v.split()[0].replace(",", ""))
    return keep


@pytest.mark.parametrize("zc", ["zlib", "zlibx", "zstd"])
@pytest.mark.parametrize("role", ["push-pysync2rsync", "pull-rsync2pysync", "push-rsync2pysync"])
def test_skip_compress_as_3_2_7(tmp_path, zc, role):
    """rsync 3.2.7 keeps one level for a whole run (its per-file choice is
    compiled out), so neither --skip-compress nor the default suffix list
    changes the compressed stream: the counts with and without the option
    are the same, for each tool, and pysync's match rsync's."""
    src = tmp_path / "src"
    text = b" ".join(b"alpha beta gamma delta"[i % 17:i % 17 + 5] for i in range(60_000))
    for name in ("a.gz", "b.txt", "c.jpg", "d.dat"):
        put(src, name, text, T_NEW)
    fix_dirs(src, T_OLD)
    stats = {}
    for skip in ([], ["--skip-compress=gz/txt/dat"], ["--skip-compress=*"]):
        out = both(tmp_path / (skip[0].replace("/", "_") if skip else "none"), role,
                   ["-a", "-z", f"--zc={zc}", "--stats"] + skip, src=src, dst_setup=None)
        assert_same(out, stdout=False)
        for tool in ("rsync", "pysync"):
            stats.setdefault(tool, []).append(_stats(out[tool][0].stdout))
    assert stats["rsync"][0] == stats["rsync"][1] == stats["rsync"][2]
    for run in stats["pysync"][1:]:
        # (a 4-byte keep-alive frame may or may not fall into a run)
        assert all(abs(run[k] - stats["pysync"][0][k]) <= 8 for k in run), stats["pysync"]
        assert run["Literal data"] == stats["pysync"][0]["Literal data"]
    r, p = stats["rsync"][0], stats["pysync"][0]
    assert p["Literal data"] == r["Literal data"]
    # The compressed data is the same; the file list and handshake differ
    # by a few bytes (pysync sends no incremental-recursion lists).
    key = "Total bytes sent" if role.startswith("push") else "Total bytes received"
    assert abs(p[key] - r[key]) < 200, (p, r)
    assert p[key] < len(text)          # compressed indeed


# ---- --max-alloc ----------------------------------------------------------------------

def _big_delta_pair(tmp_path):
    src = tmp_path / "src"
    data = os.urandom(40_000_000)
    put(src, "s.bin", data, T_NEW)

    def dst_setup(dst):
        put(dst, "s.bin", data[:100] + b"x" + data[101:], T_OLD)
    return src, dst_setup


@pytest.mark.parametrize("role", ["local", "push-pysync2rsync", "pull-rsync2pysync"])
def test_max_alloc_caps_the_senders_sum_list(tmp_path, role):
    """-B700 on a 40 MB basis: 57,143 block sums, more than 1 MiB of them."""
    src, dst_setup = _big_delta_pair(tmp_path)
    out = both(tmp_path, role, ["-a", "--no-W", "-B700", "--max-alloc=1M"], src=src, dst_setup=dst_setup)
    (rr, rdst), (pr, pdst) = out["rsync"], out["pysync"]
    assert b"[sender] exceeded --max-alloc=1048576 setting" in pr.stderr
    assert b"[sender] exceeded --max-alloc=1048576 setting" in rr.stderr
    # (stock rsync's pull client sometimes ends with 10, losing the race
    # with its server's exit; the sender's code is 22.)
    assert pr.returncode == 22
    if role != "pull-rsync2pysync":
        assert rr.returncode == 22
    assert compare_trees(pdst, rdst, dir_times=False) == []


@pytest.mark.parametrize("value,code", [("0", 0), ("2g", 0), ("1k", 1), ("x", 1), ("1.5M", 0)])
def test_max_alloc_values(tmp_path, value, code):
    src, dst_setup = _big_delta_pair(tmp_path)
    out = both(tmp_path, "push-pysync2rsync", ["-a", "--no-W", "-B700", f"--max-alloc={value}"],
               src=src, dst_setup=dst_setup)
    assert_same(out, stderr=code != 0, dir_times=False)
    assert out["pysync"][0].returncode == code


def test_max_alloc_from_the_environment(tmp_path):
    env = dict(os.environ, RSYNC_MAX_ALLOC="1M")
    src, dst_setup = _big_delta_pair(tmp_path)
    out = both(tmp_path, "pull-rsync2pysync", ["-a", "--no-W", "-B700"], src=src, dst_setup=dst_setup, env=env)
    assert b"[sender] exceeded --max-alloc=1048576 setting" in out["pysync"][0].stderr


# ---- --copy-as ---------------------------------------------------------------------------

NOBODY = 65534


@pytest.fixture
def world_dir():
    """A directory the other user can reach (pytest's tmp_path is 0700)."""
    import shutil
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="pysync-copyas-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="--copy-as switches ids: needs root")
@pytest.mark.parametrize("role", ["local", "pull-pysync2rsync", "push-pysync2rsync"])
@pytest.mark.parametrize("spec,owned", [("nobody", True), ("nobody", False), ("nobody:nogroup", True),
                                        ("nosuch", True), ("nobody:nosuch", True), ("65534", True)])
def test_copy_as(world_dir, role, spec, owned):
    """The side that runs the client (and a local copy's other half) reads
    and writes as the user: a destination only root may write is refused
    where the client receives; what it creates belongs to the user."""
    tmp_path = world_dir
    src = tmp_path / "src"
    make_src(src)
    out = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        top.mkdir()
        if owned:
            os.chown(top, NOBODY, NOBODY)
        dst = top / "dst"
        r = subprocess.run(command(tool, role, ["-rtv", f"--copy-as={spec}"], src, dst),
                           capture_output=True, timeout=60)
        out[tool] = (r, dst)
    (rr, rdst), (pr, pdst) = out["rsync"], out["pysync"]
    assert pr.returncode == rr.returncode, (pr.stderr, rr.stderr)
    def first(b):       # the first message, the tool's own directory name aside
        line = b.decode().splitlines()[0] if b else ""
        return line.replace("pysync: ", "rsync: ", 1).replace("/pysync/", "/TOOL/").replace("/rsync/", "/TOOL/")
    assert first(pr.stderr) == first(rr.stderr)
    if rr.returncode == 0:
        assert compare_trees(pdst, rdst) == []
        assert os.stat(pdst / "small.txt").st_uid == os.stat(rdst / "small.txt").st_uid
