"""A broken or hostile peer gets an error, never a write outside the destination.

Each scenario of ``evil_peer.py`` is run as the remote "rsync" behind the
fake remote shell, with the real pysync client on the other end:

* pull (``localhost:/src/ DST/``): the evil peer is the server *sender*,
  pysync's receiver + generator face it;
* push (``SRC/ localhost:/dst/``): the evil peer is the server *receiver +
  generator*, pysync's sender faces it.

Every run must end with: rsync's exit code, a clear one-line message and the
``rsync error: ... (code N)`` line, no Python traceback, nothing created,
changed or removed outside the destination (the parent, a sibling
directory and the source are snapshotted before and after), the old
destination files intact, and no ``.name.XXXXXX`` temp file left. Every
child runs under a 30 s wall clock: a hang is a failure.

The same scenarios are also run with the stock ``rsync`` as the client
(``test_stock_rsync``) to pin the expected codes to rsync's behaviour; where
the installed rsync predates a fix (3.2.7 vs the 3.5.0 described in
reliability.md §2) the accepted stock codes say so.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EVIL = HERE / "evil_peer.py"
FAKE_RSH = REPO / "interop" / "fake_rsh.py"
RSH = f"{sys.executable} {FAKE_RSH}"
TIMEOUT = 30

PYSYNC = [shutil.which("pysync")] if shutil.which("pysync") else [sys.executable, "-m", "pysync"]
RSYNC = shutil.which("rsync")

OLD = b"OLD CONTENT\n"
SAME = b"same\n"                          # 5 bytes, mtime = evil_peer.MTIME_NEW
MTIME_NEW = 1_700_000_000
NEW = b"new content from the evil peer\n" * 4
SRC_CONTENT = b"source file content\n"
PWNED = b"pwned\n"
TEMP_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{6}$")


@dataclass
class Case:
    name: str
    direction: str                 # "pull" (pysync receives) or "push" (pysync sends)
    codes: tuple                   # exit codes accepted from pysync (first = rsync's)
    message: str | None = None     # regex one stderr line must match
    opts: tuple = ()               # extra client options
    stock: tuple | None = None     # codes accepted from stock rsync (None: same as codes)
    stock_skip: str | None = None  # reason not to run stock rsync
    intact: tuple = ("f", "same")  # destination files that must keep their old content
    updated: bool = False          # success case: DST/f gets the new content
    remote: str = "/src/"          # the remote path of a pull
    scenario: str | None = None    # the evil peer's scenario (None: the case's name)
    dst_extra: tuple = ()          # files made in DST before the run
    absent: tuple = ()             # DST paths that must not exist after the run
    present: tuple = ()            # DST paths that must exist after the run
    kept: tuple = ()               # DST paths pysync must keep (stock rsync 3.2.7 may not)
    files_from: bytes | None = None  # a local --files-from list the client forwards
    trusted: bool = False          # --trust-sender: the sender's data lands, "pwned" included


C = Case
CASES = [
    # sanity: the harness speaks the protocol correctly
    C("ok", "pull", (0,), updated=True, intact=("same",)),
    C("push_ok", "push", (0,)),
    C("dup_names", "pull", (0,), updated=True, intact=("same",)),
    C("hlink_without_H", "pull", (0,), updated=True, intact=("same",)),
    # handshake
    C("garbage", "pull", (2,), r"protocol version mismatch -- is your shell clean\?"),
    C("push_garbage", "push", (2,), r"protocol version mismatch -- is your shell clean\?"),
    C("bad_version", "pull", (2,), r"protocol version mismatch -- is your shell clean\?"),
    C("handshake_cut", "pull", (12,), r"connection unexpectedly closed"),
    # multiplexing
    C("mux_bad_tag", "pull", (12,), r"unexpected tag 50"),
    C("push_mux_bad_tag", "push", (12,), r"unexpected tag 50"),
    C("mux_truncated", "pull", (12,), r"connection unexpectedly closed"),
    # file-list names
    C("name_dotdot", "pull", (4,), r"ABORTING due to unsafe pathname from sender: \.\./evil"),
    C("name_absolute", "pull", (4,), r"ABORTING due to unsafe pathname from sender: /"),
    C("name_dotdot_inner", "pull", (4,),
      r"ABORTING due to unsafe pathname from sender: a/\.\./\.\./evil"),
    # rsync's generator refuses a file under a non-directory parent with
    # RERR_PROTOCOL (generator.c "ABORTING due to invalid path from sender").
    C("symlink_escape", "pull", (2,), r"ABORTING due to invalid path from sender: link"),
    C("symlink_escape_rel", "pull", (2,), r"ABORTING due to invalid path from sender: sub/up"),
    C("excluded_name", "pull", (4,), r"rejecting excluded file-list name: secret",
      opts=("--exclude=secret",)),
    # names the client did not ask for (rsync >= 3.2.5, CVE-2022-29154)
    C("unrequested_name", "pull", (4,), r"^ERROR: rejecting unrequested file-list name: evil\.txt$",
      remote="/src/wanted.txt", absent=("wanted.txt", "evil.txt")),
    C("unrequested_trusted", "pull", (0,), opts=("--trust-sender",), scenario="unrequested_name",
      remote="/src/wanted.txt", present=("wanted.txt", "evil.txt")),
    C("excluded_trusted", "pull", (0,), opts=("--exclude=secret", "--trust-sender"),
      scenario="excluded_name", present=("secret",), trusted=True, updated=True, intact=("same",)),
    C("unrequested_files_from", "pull", (4,),
      r"^ERROR: rejecting unrequested file-list name: evil\.txt$", files_from=b"wanted.txt\n",
      absent=("wanted.txt", "evil.txt")),
    C("unrequested_files_from_trusted", "pull", (0,), files_from=b"wanted.txt\n",
      opts=("--trust-sender",), scenario="unrequested_files_from",
      present=("wanted.txt", "evil.txt")),
    C("unrequested_relative", "pull", (4,),
      r"^ERROR: rejecting unrequested file-list name: sub/evil\.txt$", opts=("-R",),
      remote="/src/./sub/dir", absent=("sub",)),
    C("unrequested_relative_trusted", "pull", (0,), opts=("-R", "--trust-sender"),
      scenario="unrequested_relative", remote="/src/./sub/dir",
      present=("sub/evil.txt", "sub/dir/x")),
    # an implied parent flagged as a content dir is downgraded (rsync 3.5.0, CVE-2026-53789);
    # Debian's 3.2.7 still deletes DST/sub/keep here
    C("content_parent", "pull", (0,), opts=("-R", "--delete"), remote="/src/./sub/dir",
      dst_extra=("sub/keep",), kept=("sub/keep",), present=("sub/dir/x",)),
    # file-list fields
    C("dot_not_dir", "pull", (2,), r"rejecting non-directory transfer-root entry",
      stock=(2, 23)),      # 3.5.0: 2 (CVE-2026-70459); 3.2.7: "could not make way", 23
    C("bad_mode", "pull", (2,), r"invalid file mode 0170644"),
    C("varint_overflow", "pull", (12,), r"Overflow in read_varint\(\)"),
    C("varlong_overflow", "pull", (12,), r"Overflow in read_varlong\(\)"),
    C("name_too_long", "pull", (22,), r"overflow: xflags=0x40 l1=0 l2=5000"),
    C("name_len_huge", "pull", (22,), r"overflow: xflags=0x\w+ l1=0 l2=2147483647"),
    # rsync silently clamps l1; reliability.md §2.3 asks pysync to reject (22, or 2)
    C("name_l1_overflow", "pull", (22, 2), r"overflow: xflags=0x20 l1=200", stock=(23, 22, 2)),
    C("size_negative", "pull", (4,), r"Offset underflow: file-length is negative"),
    C("hlink_out_of_range", "pull", (2,), r"hard-link reference out of range", opts=("-H",)),
    C("hlink_self", "pull", (2,), r"hard-link reference out of range", opts=("-H",)),
    # transfer records
    C("ndx_out_of_range", "pull", (2,), r"(Invalid file index|File-list index):? 7\b"),
    C("ndx_huge", "pull", (2,), r"(Invalid file index|File-list index):? 2147483632\b"),
    C("ndx_dir", "pull", (2,), r"(unrequested transfer|non-regular file).* 0\b"),
    # rsync 3.2.7 writes the unrequested data into 'same' (exit 0); we do better
    C("ndx_unrequested", "pull", (2,), r"unrequested transfer", stock=(0, 2), intact=("same",)),
    # token streams
    C("block_index_beyond", "pull", (2,), r"Invalid block index 6\b"),
    C("block_index_huge", "pull", (2,), r"Invalid block index 2147483646\b"),
    # 3.4.3+ (and Debian's 3.2.7 backport): "invalid uncompressed token length", 2;
    # 3.5.0 accepts long records again and would read until EOF (12)
    C("literal_huge", "pull", (2,), r"(token length|literal|longer than|exceeds|beyond).*",
      stock=(2, 12)),
    # reliability.md §2.4 #21: no output larger than announced; stock rsync
    # accepts it (exit 0)
    # More data than the list announced, with a matching checksum: what a
    # file that grew between listing and sending looks like.  rsync keeps
    # it and so does pysync (a hostile sender can write any content it
    # likes into the files it sends anyway); only DST/f is touched.
    C("literal_beyond_size", "pull", (0,), intact=("same",), stock=(0, 2, 23)),
    C("stream_cut", "pull", (12,), r"connection unexpectedly closed"),
    C("stream_cut_big", "pull", (12,), r"connection unexpectedly closed"),
    C("digest_mismatch", "pull", (23,), r"ERROR: f failed verification -- update discarded\."),
    # push: hostile sum heads and requests (rsync io.c read_sum_head)
    C("sum_s2length", "push", (2,), r"Invalid checksum length 32"),
    C("sum_s2length_negative", "push", (2,), r"Invalid checksum length -1"),
    C("sum_count_negative", "push", (2,), r"Invalid checksum count -1"),
    C("sum_blength_huge", "push", (2,), r"Invalid block length 131073"),
    C("sum_blength_negative", "push", (2,), r"Invalid block length -700"),
    C("sum_blength_zero", "push", (2,), r"Invalid zero block length",
      stock_skip="rsync < 3.5.0 hangs on count>0, blength=0 (CVE-2026-53792)"),
    C("sum_remainder", "push", (2,), r"Invalid remainder length 701"),
    # rsync: new_array() of count sum_bufs over --max-alloc -> RERR_MALLOC
    C("sum_count_huge", "push", (22,), r"exceeded --max-alloc"),
    C("sum_count_alloc", "push", (22,), r"exceeded --max-alloc"),
    # valid but big (12 MB of sums in one request): must not deadlock
    C("sum_many_blocks", "push", (0,)),
    C("req_ndx_out_of_range", "push", (2,), r"(Invalid file index|File-list index):? 9\b"),
    C("req_dir", "push", (2,), r"non-regular file.* 0\b"),
    # -X / -A data
    C("xattr_system_name", "pull", (0,), updated=True, intact=("same",), opts=("-X",)),
    C("xattr_bad_index", "pull", (12,), r"xa index 7 out of range", opts=("-X",)),
    C("xattr_name_no_nul", "pull", (11,), r"Invalid xattr name received", opts=("-X",)),
    C("acl_perms_range", "pull", (12,), r"recv_acl_access: value out of range", opts=("-A",)),
]
BY_NAME = {c.name: c for c in CASES}


# --------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------

@dataclass
class Layout:
    root: Path       # parent of everything that must not change
    work: Path
    dst: Path
    src: Path
    outside: Path
    log: Path


def make_layout(tmp_path: Path) -> Layout:
    work = tmp_path / "work"
    dst, src, outside = work / "dst", work / "src", work / "outside"
    for d in (dst, src, outside, tmp_path / "logs"):
        d.mkdir(parents=True)
    (dst / "f").write_bytes(OLD)
    os.utime(dst / "f", (978_307_200, 978_307_200))         # 2001-01-01
    (dst / "same").write_bytes(SAME)
    os.chmod(dst / "same", 0o644)
    os.utime(dst / "same", (MTIME_NEW, MTIME_NEW))
    (outside / "sentinel").write_bytes(b"sentinel\n")
    (src / "f").write_bytes(SRC_CONTENT)
    (src / "sub").mkdir()
    (src / "sub" / "g").write_bytes(b"g\n")
    return Layout(tmp_path, work, dst, src, outside, tmp_path / "logs" / "evil.log")


def snapshot(root: Path, exclude: set) -> dict:
    """(type, mode, size, mtime_ns, inode, link target / content hash) of every
    path under ``root`` except the excluded subtrees."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = [d for d in dirnames
                       if os.path.normpath(os.path.join(rel_dir, d)) not in exclude]
        for name in [*dirnames, *filenames, "."]:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if rel in exclude:
                continue
            p = os.path.join(root, rel)
            st = os.lstat(p)
            extra = None
            if stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(Path(p).read_bytes()).hexdigest()
            mtime = None if stat.S_ISDIR(st.st_mode) and rel == "." else st.st_mtime_ns
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                        st.st_size if not stat.S_ISDIR(st.st_mode) else None,
                        mtime, st.st_ino, extra)
    return out


def temp_files(top: Path) -> list:
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            if TEMP_RE.match(n):
                found.append(os.path.join(dirpath, n))
    return found


def files_with(top: Path, content: bytes) -> list:
    found = []
    for dirpath, _dirnames, filenames in os.walk(top):
        for n in filenames:
            p = os.path.join(dirpath, n)
            if os.path.isfile(p) and not os.path.islink(p) and Path(p).read_bytes() == content:
                found.append(p)
    return found


@dataclass
class Result:
    code: int | None
    stdout: str
    stderr: str
    hung: bool
    argv: list


def run(argv: list, env: dict) -> Result:
    """Run a client in its own process group; on a hang kill that group."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    hung = False
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        hung = True
        _kill_group(proc.pid)
        out, err = proc.communicate()
    finally:
        _kill_group(proc.pid)     # the remote-shell child, if it outlived the client
    return Result(None if hung else proc.returncode, out.decode(errors="replace"),
                  err.decode(errors="replace"), hung, argv)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def client_argv(prog: list, case: Case, lay: Layout) -> list:
    argv = [*prog, "-a", *case.opts, "-e", RSH,
            f"--rsync-path={sys.executable} {EVIL} {case.scenario or case.name}"]
    if case.files_from is not None:
        argv.append(f"--files-from={lay.log.parent / 'list'}")
    if case.direction == "pull":
        return argv + [f"localhost:{case.remote}", f"{lay.dst}/"]
    return argv + [f"{lay.src}/", "localhost:/dst/"]


def run_case(prog: list, case: Case, tmp_path: Path):
    lay = make_layout(tmp_path)
    if case.files_from is not None:
        (lay.log.parent / "list").write_bytes(case.files_from)
    for rel in case.dst_extra:
        (lay.dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (lay.dst / rel).write_bytes(OLD)
    exclude = {"logs", os.path.join("work", "dst")}
    before = snapshot(lay.root, exclude)
    env = {**os.environ, "EVIL_OUTSIDE": str(lay.outside), "EVIL_LOG": str(lay.log),
           "EVIL_TIMEOUT": str(TIMEOUT + 15)}
    res = run(client_argv(prog, case, lay), env)
    after = snapshot(lay.root, exclude)
    return lay, res, before, after


def describe(res: Result, lay: Layout) -> str:
    log = lay.log.read_text(errors="replace") if lay.log.exists() else "(no evil_peer log)"
    return (f"\ncommand: {' '.join(res.argv)}\nexit: {'HANG (killed after %ds)' % TIMEOUT if res.hung else res.code}"
            f"\n--- stderr ---\n{res.stderr[-3000:]}\n--- evil_peer log (tail) ---\n{log[-2000:]}")


def expect(ok: bool, what: str, res: Result, lay: Layout) -> None:
    """Fail with a readable report (no assertion-rewriting dump)."""
    if not ok:
        pytest.fail(what + describe(res, lay), pytrace=False)


def check_common(case: Case, lay: Layout, res: Result, before: dict, after: dict) -> None:
    log = lay.log.read_text(errors="replace") if lay.log.exists() else ""
    expect("INTERNAL ERROR" not in log, "the evil peer itself failed (harness bug)", res, lay)
    expect(f"scenario {case.scenario or case.name}" in log, "the evil peer was not run", res, lay)
    expect(not res.hung, f"{case.name}: the client hung", res, lay)
    # Nothing outside the destination changed: parent, sibling, source.
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    expect(not changed, f"{case.name}: changed outside the destination: {changed}", res, lay)
    expect(sorted(os.listdir(lay.outside)) == ["sentinel"],
           f"{case.name}: written into the sibling directory", res, lay)
    tmps = temp_files(lay.work)
    expect(not tmps, f"{case.name}: temp files left behind: {tmps}", res, lay)
    there = [p for p in case.absent if os.path.lexists(lay.dst / p)]
    expect(not there, f"{case.name}: written into the destination: {there}", res, lay)
    missing = [p for p in case.present if not os.path.lexists(lay.dst / p)]
    expect(not missing, f"{case.name}: not written: {missing}", res, lay)


# --------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_pysync(name: str, tmp_path: Path) -> None:
    case = BY_NAME[name]
    lay, res, before, after = run_case(PYSYNC, case, tmp_path)
    check_common(case, lay, res, before, after)
    expect("Traceback" not in res.stderr and "Exception in thread" not in res.stderr,
           f"{name}: Python traceback on stderr", res, lay)
    expect(res.code in case.codes,
           f"{name}: exit code {res.code}, expected {' or '.join(map(str, case.codes))}", res, lay)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    if res.code:
        expect(case.message is None or any(re.search(case.message, ln) for ln in lines),
               f"{name}: no stderr line matches {case.message!r}", res, lay)
        expect(bool(re.search(rf"^rsync error: .*\(code {res.code}\)", res.stderr, re.M)),
               f"{name}: no 'rsync error: ... (code {res.code})' line", res, lay)
        expect(len(lines) <= 4, f"{name}: {len(lines)} lines on stderr, expected a short message",
               res, lay)
    else:
        expect(not lines, f"{name}: unexpected output on stderr", res, lay)
    # The destination: old files intact, nothing hostile written into it.
    if case.direction == "pull":
        for n in case.intact:
            want = {"f": OLD, "same": SAME}[n]
            expect((lay.dst / n).read_bytes() == want, f"{name}: DST/{n} was modified", res, lay)
        if case.updated:
            expect((lay.dst / "f").read_bytes() == NEW, f"{name}: DST/f was not updated", res, lay)
        gone = [p for p in case.kept if not (lay.dst / p).is_file()]
        expect(not gone, f"{name}: removed from the destination: {gone}", res, lay)
        pwned = [] if case.trusted else files_with(lay.work, PWNED)
        expect(not pwned, f"{name}: hostile data written to {pwned}", res, lay)
        if name == "xattr_system_name":
            names = os.listxattr(lay.dst / "f")
            expect("user.ok" in names and not any(n.startswith("system.") for n in names),
                   f"{name}: DST/f xattrs {names}: a system.* name from the peer was stored",
                   res, lay)


@pytest.mark.skipif(RSYNC is None, reason="no stock rsync installed")
@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_stock_rsync(name: str, tmp_path: Path) -> None:
    """The same scenario with stock rsync as the client: pins the expected
    exit codes to rsync's behaviour and validates the evil peer."""
    case = BY_NAME[name]
    if case.stock_skip:
        pytest.skip(case.stock_skip)
    lay, res, before, after = run_case([RSYNC], case, tmp_path)
    check_common(case, lay, res, before, after)
    want = case.stock if case.stock is not None else case.codes
    expect(res.code in want, f"{name}: stock rsync exit {res.code}, expected {want}", res, lay)
