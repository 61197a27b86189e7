"""What each kind of pysync process imports (the start-up cost).

A local copy, a remote-shell client and the ``--server`` it starts must not
load what only some runs need: the SSH transport, compression codecs,
hashlib (md5/sha only), logging, dataclasses and inspect, the script API,
sockets where the stream is a pipe, the other role's engine.  Each process
here runs pysync's command line under a probe that records the modules it
added to ``sys.modules``; modules the interpreter loaded before pysync
started (site, this environment's .pth files) are not counted against it.
The copies themselves must succeed: the probe changes nothing else.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FAKE_RSH = f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}"

PROBE = """\
import os, sys
out, argv = sys.argv[1], sys.argv[2:]
before = set(sys.modules)
forks = []
os.register_at_fork(before=lambda: forks.append(set(sys.modules)))
_exit = os._exit

def child_exit(code):          # a local copy's child ends with os._exit
    with open(out + ".child", "a") as f:
        f.write(" ".join(sorted(set(sys.modules) - forks[-1])) + "\\n")
    _exit(code)
os._exit = child_exit
from pysync.cli import main
code = main(argv)
with open(out, "a") as f:
    f.write(" ".join(sorted(set(sys.modules) - before)) + "\\n")
if forks:
    with open(out + ".fork", "a") as f:
        f.write(" ".join(sorted(forks[-1] - before)) + "\\n")
        f.write(" ".join(sorted(set(sys.modules) - forks[-1])) + "\\n")
sys.exit(code)
"""

# Never at start-up: each belongs to an option or a transport that loads it.
# A name matches itself and its submodules; "pysync.transport.ssh" also
# matches sshconfig, sshstream, ...
NEVER = ("paramiko", "zstandard", "pysync.transport.ssh", "hashlib", "_hashlib", "logging",
         "dataclasses", "inspect", "pysync.api", "pysync.logfile", "pysync.filesfrom", "pysync.io.backup",
         "ctypes", "random", "zlib", "pysync.protocol.compress",
         # an option's own modules: -A, --link-dest & co., --delay-updates, --inplace
         "pysync.engine.acls", "pysync.engine.altdest", "pysync.engine.delay",
         "pysync.engine.inplace", "pysync.io.inplace")
if os.environ.get("PYSYNC_NATIVE") == "ref":      # the pure-Python twins use ctypes
    NEVER = tuple(m for m in NEVER if m != "ctypes")
LOCAL = NEVER + ("subprocess", "signal", "pysync.transport.rsh", "socket", "selectors")
# A local copy forks its receiving child once both sides' common modules are
# in: what only one role needs loads after the fork, in that role's process
# (the two import in parallel, and neither holds the other's modules).
SENDING_ONLY = ("pysync.sending", "pysync.engine.scan")
RECEIVING_ONLY = ("pysync.receiving", "pysync.engine.generator", "pysync.engine.receiver",
                  "pysync.destination", "pysync.io.sink", "pysync.io.sinkbase", "pysync.io.directsink",
                  "pysync.io.replace", "pysync.io.writebehind",
                  "pysync.io.attrs", "pysync.io.offload")
BEFORE_FORK = LOCAL + SENDING_ONLY + RECEIVING_ONLY + ("pysync.engine.matcher", "zlib")
# ... and what both need is in before it, so neither imports it again.
BOTH_ROLES = ("pysync.engine.sender", "pysync.protocol.tokens", "pysync.protocol.flist_sort",
              "pysync.engine.idmap", "pysync.engine.remove", "pysync.engine.xattrs")
RSH_CLIENT = NEVER + ("socket", "_socket", "pysync.engine.offload", "pysync.io.offload")
SERVER = NEVER + ("socket", "_socket", "subprocess", "signal", "pysync.client", "pysync.transport.rsh",
                  "pysync.engine.offload", "pysync.io.offload")
SERVER_SENDER = SERVER + ("pysync.receiving", "pysync.engine.receiver", "pysync.engine.generator",
                          "pysync.io.sink", "pysync.io.sinkbase", "pysync.io.directsink")


def _tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha\n" * 100)
    (root / "sub" / "b.bin").write_bytes(os.urandom(50_000))


def _loaded(path: Path) -> list:
    lines = path.read_text().splitlines()
    assert lines, "the probe wrote nothing: pysync did not finish"
    return [set(line.split()) for line in lines]


def _offenders(modules: set, forbidden) -> list:
    return sorted(m for m in modules if any(
        m == f or m.startswith(f + ".") or (f == "pysync.transport.ssh" and m.startswith(f))
        for f in forbidden))


@pytest.fixture
def probe(tmp_path):
    p = tmp_path / "probe.py"
    p.write_text(PROBE)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("RSYNC_RSH", None)

    def run(out: Path, args: list) -> None:
        r = subprocess.run([sys.executable, str(p), str(out)] + args, env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    run.script = p
    return run


def _same_tree(a: Path, b: Path) -> None:
    names = sorted(str(p.relative_to(a)) for p in a.rglob("*"))
    assert names == sorted(str(p.relative_to(b)) for p in b.rglob("*"))
    for n in names:
        if (a / n).is_file():
            assert (a / n).read_bytes() == (b / n).read_bytes()


def test_local_copy_and_no_op(probe, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _tree(src)
    out = tmp_path / "local.txt"
    for _ in range(2):                      # a copy, then a no-op re-sync
        probe(out, ["-a", f"{src}/", f"{dst}/"])
    _same_tree(src, dst)
    for mods in _loaded(out):
        assert "pysync.session" in mods     # the probe saw pysync's own imports
        assert _offenders(mods, LOCAL) == []
    fork_lines = (tmp_path / "local.txt.fork").read_text().splitlines()
    child_lines = (tmp_path / "local.txt.child").read_text().splitlines()
    assert len(fork_lines) == 4 and len(child_lines) == 2       # two runs, one child each
    for pre, parent_after, child_after in zip(fork_lines[0::2], fork_lines[1::2], child_lines):
        pre, parent_after, child_after = set(pre.split()), set(parent_after.split()), set(child_after.split())
        assert "pysync.session" in pre and "pysync.sending" in parent_after
        assert "pysync.receiving" in child_after
        assert _offenders(pre, BEFORE_FORK) == []
        assert _offenders(parent_after | child_after, BOTH_ROLES) == []
        assert _offenders(parent_after, LOCAL + RECEIVING_ONLY) == []
        # (the sender's scan reads ACLs with -A through io.acls; a receiver
        # loads it with -A only)
        assert _offenders(child_after, LOCAL + SENDING_ONLY + ("pysync.io.acls",)) == []
    # the no-op moves no data: the compiled module (and the cffi backend)
    # never loads, in either process (a short file list is coded in Python)
    no_op = _loaded(out)[1] | set(child_lines[1].split())
    assert _offenders(no_op, ("pysync.native", "pysync._native", "_cffi_backend", "array")) == []


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_remote_shell_client_and_server(probe, tmp_path, direction):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _tree(src)
    client_out, server_out = tmp_path / "client.txt", tmp_path / "server.txt"
    server = f"--rsync-path={sys.executable} {probe.script} {server_out}"
    where = [f"{src}/", f"localhost:{dst}/"] if direction == "push" else [f"localhost:{src}/", f"{dst}/"]
    probe(client_out, ["-a", "-e", FAKE_RSH, server] + where)
    _same_tree(src, dst)
    (client,) = _loaded(client_out)
    (srv,) = _loaded(server_out)
    assert "pysync.session" in client and "pysync.session" in srv
    assert _offenders(client, RSH_CLIENT) == []
    assert _offenders(srv, SERVER if direction == "push" else SERVER_SENDER) == []


# A no-op re-sync (nothing to send) is start-up and nothing else: no process
# of it may load these.  re and enum (with shlex and the regex modules'
# helpers) cost ~5 ms a process from a warm cache and twice that from a cold
# disk; xxhash sums nothing when no file moves; the delta search and the
# write path (sink, staging buffers, write-behind, cache rules, with fcntl
# and mmap) load with the first file sent or received.
NO_OP_NEVER = ("re", "enum", "shlex", "xxhash", "copyreg",
               "pysync.engine.matcher", "pysync.io.sink", "pysync.io.sinkbase", "pysync.io.directsink",
               "pysync.io.buffers", "pysync.io.writebehind",
               "pysync.io.cache", "pysync.io.geometry", "mmap", "fcntl",
               # an option's own: filter rules, --bwlimit, --files-from
               "pysync.engine.filters", "pysync.engine.bwlimit", "pysync.protocol.filesfrom",
               # the destination warmer's batch queue (a long list only)
               "queue", "heapq",
               # the receiving side's --delete family and basis files (sums, --partial-dir)
               "pysync.engine.delete", "pysync.engine.basis")


@pytest.fixture
def bare_probe(probe, tmp_path):
    """The probe under ``python -S``: no site, so no .pth file (this
    sandbox's loads re, hashlib, random ...) hides an import pysync makes.
    The site-packages directories go on PYTHONPATH, which runs no .pth."""
    import site
    paths = [str(REPO)] + site.getsitepackages() + [site.getusersitepackages()]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    env.pop("RSYNC_RSH", None)

    def run(out: Path, args: list) -> None:
        r = subprocess.run([sys.executable, "-S", str(probe.script), str(out)] + args, env=env,
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    return run


def test_local_no_op_loads_no_regex_or_hash(bare_probe, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _tree(src)
    bare_probe(tmp_path / "copy.txt", ["-a", f"{src}/", f"{dst}/"])      # the copy itself
    out = tmp_path / "noop.txt"
    bare_probe(out, ["-a", "--stats", f"{src}/", f"{dst}/"])
    _same_tree(src, dst)
    (parent,) = _loaded(out)
    (child,) = _loaded(tmp_path / "noop.txt.child")
    assert "pysync.session" in parent and "pysync.receiving" in child
    for mods in (parent, child):
        assert _offenders(mods, NO_OP_NEVER) == []
