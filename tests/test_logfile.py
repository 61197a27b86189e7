"""--log-file, --log-file-format and --out-format (pysync issue #7): the
formatter's escapes on their own, then pysync and stock rsync run on the
same trees -- locally and over -e in both roles -- with the same options:
same log lines after the "date time [pid] " prefix, same --out-format
stdout, same exit code, same resulting tree."""

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.trees import compare_trees
from pysync.logfile import LogFile
from pysync.logformat import ITEM_DELETED, LogFormat, LogItem, big_num, sum_as_hex
from pysync.protocol.constants import ITEM_IS_NEW, ITEM_REPORT_TIME, ITEM_TRANSFER

REPO = Path(__file__).resolve().parents[1]
FAKE_RSH = f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}"
PYSYNC = [sys.executable, "-m", "pysync"]
T_OLD, T_NEW = 1_600_000_000, 1_700_000_000


# ---- the formatter --------------------------------------------------------------------

def test_big_num_forms():
    assert [big_num(100055, h) for h in (0, 1, 2, 3)] == ["100055", "100,055", "100.06K", "97.71K"]
    assert big_num(999, 2) == "999" and big_num(5 << 30, 3) == "5.00G"


def test_widths_unknown_escapes_and_percent():
    item = LogItem(b"dir", stat.S_IFDIR | 0o755, ITEM_IS_NEW, "recv", size=4096)
    f = LogFormat("[%-8n][%8l][%'l][%''l][%%n][%h %a %P %u %z][%m][%L][%5L]%")
    assert f.render(item) == "[dir/    ][    4096][4,096][4.10K][%dir/][%h %a %P %u %z][][][         ]%"
    assert f.has("n") and f.has("L") and not f.has("h") and not f.has("z")


def test_itemize_and_deletion_codes():
    f = LogFormat("%i %n%L")
    new = LogItem(b"a", stat.S_IFREG | 0o644, ITEM_TRANSFER | ITEM_IS_NEW, "send")
    assert f.render(new) == "<f+++++++++ a"
    new.local = True
    assert f.render(new) == ">f+++++++++ a"
    link = LogItem(b"l", stat.S_IFLNK | 0o777, ITEM_REPORT_TIME, "recv", link=b"a")
    assert f.render(link) == ".L..t...... l -> a"
    gone = LogItem(b"old", stat.S_IFDIR, ITEM_DELETED, "del.", given_name=True)
    assert f.render(gone) == "*deleting   old/"


def test_checksum_byte_order():
    digest = bytes(range(16))
    assert sum_as_hex("xxh128", digest) == digest[::-1].hex()
    assert sum_as_hex("md5", digest) == digest.hex()
    assert sum_as_hex("none", digest) is None


def test_log_line_prefix(tmp_path):
    fd = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    lf = LogFile(fd, None, clock=lambda: T_OLD, pid=4242)
    lf.write("building file list\n")
    lf.close()
    import time
    stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(T_OLD))
    assert (tmp_path / "log").read_text() == f"{stamp} [4242] building file list\n"


# ---- end to end, against rsync ---------------------------------------------------------

def put(root: Path, rel: str, data: bytes, mtime: int, mode: int = 0o644):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.chmod(p, mode)
    os.utime(p, (mtime, mtime))


def fix_dirs(root: Path, mtime: int):
    for d, _, _ in sorted(os.walk(root), reverse=True):
        os.utime(d, (mtime, mtime), follow_symlinks=False)


def make_src(root: Path):
    put(root, "same.txt", b"unchanged\n", T_OLD)
    put(root, "changed.txt", b"new content, longer\n", T_NEW)
    put(root, "perms.txt", b"perms only\n", T_OLD, 0o600)
    put(root, "big.bin", os.urandom(200_000), T_NEW)
    put(root, "d/inner.txt", b"inner new\n", T_NEW)
    put(root, "newdir/f.txt", b"in a new dir\n", T_NEW, 0o640)
    os.symlink("same.txt", root / "link")
    os.utime(root / "link", (T_OLD, T_OLD), follow_symlinks=False)
    fix_dirs(root, T_OLD)


def make_dst(root: Path):
    put(root, "same.txt", b"unchanged\n", T_OLD)
    put(root, "changed.txt", b"old content\n", T_OLD)
    put(root, "perms.txt", b"perms only\n", T_OLD, 0o644)
    put(root, "big.bin", b"old big" * 1000, T_OLD)
    put(root, "d/inner.txt", b"inner old\n", T_OLD)
    put(root, "extra.txt", b"not in the source\n", T_OLD)
    put(root, "gone/deep.txt", b"a deleted directory\n", T_OLD)
    fix_dirs(root, T_OLD)


ROLES = ["local", "push-pysync2rsync", "push-rsync2pysync", "pull-pysync2rsync"]

# Everything a non-daemon rsync expands, but the time of day and the pid.
FULL = "%i|%n|%f|%l|%L|%b|%c|%o|%B|%M|%U|%G|%m|%C|%-14n|%9l|%'b|%''l|%h %a %u %P %%|%-4o."

CASES = {
    "default": ["-a", "--delete"],
    "formats": ["-a", "--delete", f"--log-file-format={FULL}", f"--out-format={FULL}"],
    "checksum": ["-ac", "--log-file-format=%i %n %C %l", "--out-format=%n %C"],
    "verbose-stats": ["-av", "--stats", "--delete"],
    "itemize-all": ["-aii", "--log-file-format=%o %n %l"],
    "dry-run": ["-an", "--delete", "--out-format=%o:%n"],
    "no-item-lines": ["-a", "--delete", "--log-file-format="],
    "missing-source": ["-a", "MISSING"],
    # A destination that does not exist yet: "created directory" only with -v / %i.
    "fresh-plain": ["-a", "--out-format=%n"],
    "fresh-itemize": ["-a", "--out-format=%i %n"],
}

PREFIX = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(\d+)\] (.*)$")
# Lines whose numbers are byte counts of the connection (pysync's wire
# differs in bytes from rsync's) or timings: compared with the digits masked.
COUNTS = ("sent ", "total size", "Total bytes", "File list", "Literal data", "Matched data")
SKIP_STDOUT = ("building file list", "receiving file list", "sending incremental",
               "receiving incremental")


def norm(line: str) -> str:
    if line.startswith(COUNTS):
        return re.sub(r"[\d,.]+", "N", line)
    if line.startswith(("rsync error:", "rsync warning:")):
        return line.split(" at ")[0]           # "at main.c(1347) [sender=3.2.7]"
    return line


def log_lines(path: Path, top: Path | None = None):
    """The log's lines without the prefix; the tool's own directory (in
    "created directory ...") masked."""
    out = []
    for raw in path.read_text().splitlines():
        m = PREFIX.match(raw)
        assert m, f"no date/pid prefix: {raw!r}"
        line = norm(m.group(3))
        if top is not None:
            line = line.replace(str(top), "TOP")
        if line == "done" and out and out[-1] in ("building file list", "receiving file list"):
            # -v without incremental recursion (pysync never recurses
            # incrementally; rsync does unless --no-i-r) logs the end of
            # the file list too.  Checked on its own below.
            continue
        out.append(line)
    return out


def stdout_lines(out: bytes, top: Path | None = None):
    return [norm(x).replace(str(top), "TOP") if top else norm(x)
            for x in out.decode("utf-8", "replace").splitlines()
            if x.strip() and not x.startswith(SKIP_STDOUT)]


def run(tool: str, role: str, opts, src: Path, dst: Path, log: Path):
    opts = [f"--log-file={log}"] + [str(src.parent / "MISSING") if o == "MISSING" else o
                                    for o in opts]
    srcs = [o for o in opts if o.endswith("MISSING")]
    opts = [o for o in opts if not o.endswith("MISSING")]
    if role == "local":
        cmd = (PYSYNC if tool == "pysync" else ["rsync"]) + opts + [f"{src}/"] + srcs + [f"{dst}/"]
    else:
        if tool == "rsync":
            client, server = ["rsync"], "rsync"
        elif role.endswith("rsync2pysync"):
            client, server = ["rsync"], "pysync"
        else:
            client, server = PYSYNC, "rsync"
        remote = ["-e", FAKE_RSH, f"--rsync-path={server}"]
        if role.startswith("push"):
            cmd = client + opts + remote + [f"{src}/"] + srcs + [f"localhost:{dst}/"]
        else:
            cmd = client + opts + remote + [f"localhost:{src}/"] + [f"localhost:{s}" for s in srcs] \
                + [f"{dst}/"]
    env = dict(os.environ, PATH=f"{REPO / '.bin'}:{os.environ['PATH']}", PYTHONPATH=str(REPO))
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         cwd=dst.parent)
    out, err = p.communicate(timeout=120)
    return p.pid, p.returncode, out, err


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_log_matches_rsync(tmp_path, case, role):
    src = tmp_path / "src"
    make_src(src)
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        dst = top / "dst"
        if case.startswith("fresh"):
            top.mkdir()
        else:
            make_dst(dst)
        log = top / "transfer.log"
        pid, code, out, err = run(tool, role, CASES[case], src, dst, log)
        got[tool] = (pid, code, out, err, dst, log)
    rpid, rcode, rout, rerr, rdst, rlog = got["rsync"]
    ppid, pcode, pout, perr, pdst, plog = got["pysync"]
    assert pcode == rcode, perr.decode()
    assert compare_trees(pdst, rdst) == []
    assert log_lines(plog, pdst.parent) == log_lines(rlog, rdst.parent)
    assert stdout_lines(pout, pdst.parent) == stdout_lines(rout, rdst.parent)
    if role in ("local", "push-pysync2rsync", "pull-pysync2rsync"):
        # The log is the client's: our process id, today's date.
        pids = {PREFIX.match(x).group(2) for x in plog.read_text().splitlines()}
        assert pids == {str(ppid)}


@pytest.mark.parametrize("role", ["local", "pull-pysync2rsync"])
def test_verbose_log_matches_rsync_without_incremental_recursion(tmp_path, role):
    src = tmp_path / "src"
    make_src(src)
    got = {}
    for tool in ("rsync", "pysync"):
        dst = tmp_path / tool / "dst"
        make_dst(dst)
        log = tmp_path / tool / "t.log"
        opts = ["-av", "--delete"] + (["--no-inc-recursive"] if tool == "rsync" else [])
        _, code, out, err = run(tool, role, opts, src, dst, log)
        got[tool] = (code, [PREFIX.match(x).group(3) for x in log.read_text().splitlines()])
    assert got["pysync"][0] == got["rsync"][0] == 0
    assert [norm(x) for x in got["pysync"][1]] == [norm(x) for x in got["rsync"][1]]
    assert got["pysync"][1][1] == "done"


@pytest.mark.parametrize("role", ["local", "pull-pysync2rsync"])
def test_unopenable_log_file_is_ignored_as_rsync_does(tmp_path, role):
    src = tmp_path / "src"
    make_src(src)
    got = {}
    for tool in ("rsync", "pysync"):
        dst = tmp_path / tool / "dst"
        dst.mkdir(parents=True)
        _, code, out, err = run(tool, role, ["-a"], src, dst, tmp_path / "no" / "such.log")
        got[tool] = (code, stdout_lines(out), err.decode().splitlines(), dst)
    assert got["pysync"][0] == got["rsync"][0] == 0
    assert got["pysync"][1] == got["rsync"][1] == ['Ignoring "log file" setting.']
    assert got["pysync"][2] == got["rsync"][2] == [
        f"rsync: [client] failed to open log-file {tmp_path}/no/such.log: No such file or directory (2)"]
    assert compare_trees(got["pysync"][3], got["rsync"][3]) == []


def test_log_file_is_appended_and_mode_0644(tmp_path):
    src = tmp_path / "src"
    make_src(src)
    log = tmp_path / "t.log"
    log.write_text("kept\n")
    old = os.umask(0)
    try:
        dst = tmp_path / "dst"
        dst.mkdir()
        run("pysync", "local", ["-a"], src, dst, log)
        log2 = tmp_path / "new.log"
        run("pysync", "local", ["-a"], src, dst, log2)
    finally:
        os.umask(old)
    assert log.read_text().startswith("kept\n") and "building file list" in log.read_text()
    assert stat.S_IMODE(os.stat(log2).st_mode) == 0o644


def test_pid_and_time_escapes(tmp_path):
    """%p is the logging process (the client, as rsync's local client logs),
    %t the time of the line."""
    src = tmp_path / "src"
    make_src(src)
    dst = tmp_path / "dst"
    dst.mkdir()
    pid, code, out, _ = run("pysync", "local", ["-a", "--out-format=%p|%t|%n"], src, dst,
                            tmp_path / "t.log")
    assert code == 0
    rows = [x.split("|") for x in out.decode().splitlines() if "|" in x]
    assert rows and {r[0] for r in rows} == {str(pid)}
    assert all(re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d", r[1]) for r in rows)
    assert sorted(r[2] for r in rows) == sorted(
        ["./", "big.bin", "changed.txt", "d/", "d/inner.txt", "link", "newdir/", "newdir/f.txt",
         "perms.txt", "same.txt"])


def test_deleted_flag_is_outside_the_wire_flags():
    """A deletion's %i is "*deleting"; no flag that travels on the wire (16
    bits, e.g. ITEM_BASIS_TYPE_FOLLOWS of an --inplace backup basis) may
    be mistaken for it."""
    import stat as st
    from pysync.logformat import itemize_code
    from pysync.protocol.constants import ITEM_BASIS_TYPE_FOLLOWS, ITEM_DELETED, ITEM_TRANSFER
    assert ITEM_DELETED >= 1 << 16
    code = itemize_code(ITEM_TRANSFER | ITEM_BASIS_TYPE_FOLLOWS | 0xC, st.S_IFREG | 0o644, "recv", False)
    assert code == ">f.st......"
    assert itemize_code(ITEM_DELETED, st.S_IFREG, "del.", False) == "*deleting  "
