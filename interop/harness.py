"""The interop harness: peers, roles, trees and oracles for ``test_matrix.py``.

Every cell of the matrix runs one operation twice: once with pysync in the
role under test, once with stock ``rsync`` on both ends (same transport, same
direction, same options) into a separate destination.  The two results must
agree: same exit code, ``compare_trees(pysync_dest, rsync_dest) == []``, and
for delta cells a comparable amount of literal data.  Comparing against
rsync↔rsync instead of against the source keeps the cells honest about
everything rsync itself does not copy (``-a`` without ``-H``, dry runs,
deletions, type changes without ``--delete``...).

Transports (protocol.md §9, style.md §4): a remote end is reached through
``interop/fake_rsh.py`` as ``-e``, which drops the host and runs the remote
command locally through ``/bin/sh`` like sshd would; ``--rsync-path`` picks
the server program (``rsync`` or ``pysync``).

Every child runs in its own session under a wall-clock limit and the whole
process group is killed on expiry: a deadlock is a failure, never a hang.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.trees import compare_trees, snapshot  # noqa: E402,F401

#: The stock peer (3.2.7, protocol 32 on this machine); PYSYNC_INTEROP_RSYNC
#: names another build (put the same first on PATH: the roles' remote side
#: runs "rsync" by name).
RSYNC = os.environ.get("PYSYNC_INTEROP_RSYNC") or shutil.which("rsync", path="/usr/bin") or shutil.which("rsync")
#: pysync's console script (installed editable).
PYSYNC = shutil.which("pysync")
#: The fake remote shell, as rsync's -e value (quoted: rsync splits it itself).
FAKE_RSH = HERE / "fake_rsh.py"
RSH = f'"{sys.executable}" "{FAKE_RSH}"'
#: Host part of remote paths; fake_rsh ignores it.
HOST = "fakehost"
#: Wall-clock limit for every child process, in seconds.
TIMEOUT = 60


# --------------------------------------------------------------------------
# Running children
# --------------------------------------------------------------------------

class Deadlock(AssertionError):
    """A child did not finish within TIMEOUT (and was killed)."""


@dataclass
class Run:
    """One finished child: argv, exit code and decoded output."""

    argv: list[str]
    rc: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        """Command line, exit code and output, for assertion messages."""
        cmd = " ".join(_shell_quote(a) for a in self.argv)
        return (f"$ {cmd}\nexit {self.rc}\n--- stdout ---\n{self.stdout.rstrip()}"
                f"\n--- stderr ---\n{self.stderr.rstrip()}\n")


def _shell_quote(word: str) -> str:
    return word if re.fullmatch(r"[\w@%+=:,./-]+", word) else "'" + word.replace("'", "'\\''") + "'"


def run(argv: list[str], *, cwd: Optional[Path] = None,
        env: Optional[dict[str, str]] = None, timeout: float = TIMEOUT) -> Run:
    """Run *argv* to completion under *timeout*; kill its process group on expiry.

    The child gets its own session so that the remote-shell chain (fake_rsh,
    /bin/sh, the server) is killed together with it.  stdin is /dev/null.
    """
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        result = Run(argv, proc.returncode, out.decode(errors="replace"),
                     err.decode(errors="replace"))
        raise Deadlock(f"timed out after {timeout}s (deadlock?), killed\n" + result.describe())
    # The client may exit while a server it spawned lingers; reap the group.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return Run(argv, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


# --------------------------------------------------------------------------
# Roles
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Role:
    """Who is client, who is server, and which way the data flows.

    ``client``/``server`` are ``"pysync"`` or ``"rsync"``; ``server`` is
    ``None`` for a local transfer (pysync forks its own second process).
    """

    id: str
    direction: str          # "push", "pull" or "local"
    client: str
    server: Optional[str]

    @property
    def stock_client(self) -> bool:
        return self.client == "rsync"

    @property
    def stock_server(self) -> bool:
        return self.server == "rsync"

    @property
    def remote(self) -> bool:
        return self.server is not None


ROLES = [
    Role("push-pysync2rsync", "push", "pysync", "rsync"),
    Role("pull-pysync2rsync", "pull", "pysync", "rsync"),
    Role("push-rsync2pysync", "push", "rsync", "pysync"),
    Role("pull-rsync2pysync", "pull", "rsync", "pysync"),
    Role("push-pysync2pysync", "push", "pysync", "pysync"),
    Role("pull-pysync2pysync", "pull", "pysync", "pysync"),
    Role("local-pysync", "local", "pysync", None),
]

#: Stock rsync's --debug=NSTR output: "Client negotiated checksum: xxh128",
#: "Client checksum: md5" (chosen by option), "Server negotiated compress:
#: zstd (level 3)", ... (the server only prints at level 3); and PROTO's
#: "(Client) Protocol versions: remote=32, negotiated=31".
NSTR_CLIENT = "--debug=NSTR,PROTO"
NSTR_SERVER = "--debug=NSTR3,PROTO"
_NSTR_RE = re.compile(r"^(Client|Server) (?:negotiated )?(checksum|compress): (\S+)", re.M)
_PROTO_RE = re.compile(r"^\((Client|Server)\) Protocol versions: remote=\d+, negotiated=(\d+)", re.M)


def _program(name: str) -> str:
    return {"rsync": RSYNC, "pysync": PYSYNC}[name]


def command(role: Role, opts: list[str], src: str, dst: str, *,
            reference: bool = False, nstr: bool = True) -> list[str]:
    """The client command line for *role* (or rsync↔rsync when *reference*).

    *src* is the source directory (a trailing slash is added: copy its
    content), *dst* the destination directory.  With *nstr*, stock rsync
    ends are asked to print the negotiated algorithms.
    """
    client = "rsync" if reference else role.client
    server = "rsync" if reference else role.server
    argv = [_program(client), *opts]
    if nstr and client == "rsync":
        argv.append(NSTR_CLIENT)
    src = src.rstrip("/") + "/"
    dst = dst.rstrip("/") + "/"
    if role.direction == "local":
        return [*argv, src, dst]
    rsync_path = server
    if nstr and server == "rsync":
        rsync_path = f"rsync {NSTR_SERVER}"
    argv += ["-e", RSH, f"--rsync-path={rsync_path}"]
    if role.direction == "push":
        return [*argv, src, f"{HOST}:{dst}"]
    return [*argv, f"{HOST}:{src}", dst]


def negotiated(text: str, side: str) -> dict[str, str]:
    """What *side* ("Client"/"Server") printed under --debug=NSTR,PROTO.

    Keys: "checksum", "compress" (only when compressing), "protocol".
    """
    out = {what: name for who, what, name in _NSTR_RE.findall(text) if who == side}
    out.update(("protocol", v) for who, v in _PROTO_RE.findall(text) if who == side)
    return out


def stock_side(role: Role) -> Optional[str]:
    """Which stock rsync end of *role* prints negotiation lines, if any."""
    if role.stock_client:
        return "Client"
    if role.stock_server:
        return "Server"
    return None


# --------------------------------------------------------------------------
# --stats
# --------------------------------------------------------------------------

_STAT_RE = re.compile(r"^(Literal data|Matched data|Total file size): ([\d,]+) bytes", re.M)


def stats(text: str) -> dict[str, int]:
    """The byte counters of a --stats block (``{"Literal data": N, ...}``)."""
    return {k: int(v.replace(",", "")) for k, v in _STAT_RE.findall(text)}


# --------------------------------------------------------------------------
# Trees
# --------------------------------------------------------------------------

#: Default mtime (with a nanosecond fraction) and the "older version" mtime.
MTIME = 1_700_000_000_250_000_000
OLD_MTIME = 1_600_000_000_750_000_000

BIG = "big/three mb.bin"
BIG_SIZE = 3 * (1 << 20) + 777
GROW_OLD, GROW_ADD = 200_000, 20_000
SHRINK_OLD, SHRINK_NEW = 400_000, 150_000


def _data(seed: int, size: int) -> bytes:
    """Deterministic pseudo-random bytes: half of them are >= 0x80."""
    return random.Random(seed).randbytes(size)


def _big_old() -> bytes:
    """The older version of BIG: same size, 24 scattered 64-byte patches."""
    data = bytearray(_data(100, BIG_SIZE))
    rnd = random.Random(7)
    for i in range(24):
        at = (i * BIG_SIZE) // 24 + rnd.randrange(0, BIG_SIZE // 48)
        data[at:at + 64] = _data(1000 + i, 64)
    return bytes(data)


def _mkdirs(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _file(root: Path, name: str, data: bytes, mode: int = 0o644, mtime: int = MTIME) -> None:
    path = root / name
    _mkdirs(path.parent)
    path.write_bytes(data)
    os.chmod(path, mode)
    os.utime(path, ns=(mtime, mtime))


def _link(root: Path, name: str, target: str, mtime: int = MTIME) -> None:
    path = root / name
    _mkdirs(path.parent)
    os.symlink(target, path)
    os.utime(path, ns=(mtime, mtime), follow_symlinks=False)


def _finish_dirs(root: Path, mtime: int = MTIME) -> None:
    """Fix every directory's mode and mtime, deepest first."""
    for dirpath, _dirs, _files in os.walk(root, topdown=False):
        os.chmod(dirpath, 0o755)
        os.utime(dirpath, ns=(mtime, mtime))


def make_source(root: Path) -> None:
    """The matrix's source tree ("new" version).

    A few directories, names with spaces, a symlink to a file and one to a
    directory, a hard-link pair, binary files full of bytes >= 0x80, a 0-byte
    file, a ~3 MB file, files that grew and shrank relative to the older
    version (see make_old), and one entry of each kind that changes type.
    """
    _mkdirs(root)
    _file(root, "empty", b"")
    _file(root, "hello world.txt", b"hello, interop matrix\n" * 40)
    _file(root, "bin/high bytes.bin", bytes(range(0x80, 0x100)) * 64, mode=0o600)
    _file(root, "bin/random.bin", _data(1, 70_001), mode=0o755)
    _file(root, BIG, _data(100, BIG_SIZE))
    grow = _data(2, GROW_OLD + GROW_ADD)
    _file(root, "logs/grow.log", grow)                           # appended data
    _file(root, "logs/shrink.bin", _data(3, SHRINK_OLD)[:SHRINK_NEW])  # truncated
    _file(root, "hl/pair-a", _data(4, 9_000))
    os.link(root / "hl/pair-a", root / "hl/pair-b")
    _link(root, "link to hello", "hello world.txt")
    _link(root, "dirlink", "bin")
    _file(root, "sub dir/deeper/leaf.txt", b"leaf\n")
    _mkdirs(root / "sub dir/empty dir")
    _file(root, "file2dir/inside.txt", b"was a file in the old version\n")  # file -> dir
    _file(root, "dir2file", b"was a directory in the old version\n")      # dir -> file
    _finish_dirs(root)


def make_old(root: Path) -> None:
    """An older version of make_source's tree, as a destination to update.

    The 3 MB file has scattered changes (same size), grow.log is shorter,
    shrink.bin longer, file2dir is a file, dir2file an (empty) directory,
    a few files are missing, and everything differs in mtime.
    """
    _mkdirs(root)
    _file(root, "empty", b"", mtime=OLD_MTIME)
    _file(root, "hello world.txt", b"hello, interop matrix\n" * 40, mtime=OLD_MTIME)
    _file(root, "bin/random.bin", _data(1, 70_001), mode=0o644, mtime=OLD_MTIME)
    _file(root, BIG, _big_old(), mtime=OLD_MTIME)
    _file(root, "logs/grow.log", _data(2, GROW_OLD), mtime=OLD_MTIME)
    _file(root, "logs/shrink.bin", _data(3, SHRINK_OLD), mtime=OLD_MTIME)
    _file(root, "hl/pair-a", _data(4, 9_000), mtime=OLD_MTIME)
    _file(root, "file2dir", b"a file that becomes a directory\n", mtime=OLD_MTIME)
    _mkdirs(root / "dir2file")
    _finish_dirs(root, OLD_MTIME)


def make_extras(root: Path) -> None:
    """The older version plus entries the source lacks (for --delete)."""
    make_old(root)
    _file(root, "extra file", b"delete me\n")
    _file(root, "extra dir/nested/deep.bin", _data(9, 3000))
    _file(root, "sub dir/extra inside.txt", b"delete me too\n")
    _link(root, "extra link", "hello world.txt")
    _mkdirs(root / "bin/extra empty dir")
    _file(root, "dir2file/stale.txt", b"only --delete may remove this directory\n")
    _finish_dirs(root, OLD_MTIME)


def make_blocked(root: Path) -> None:
    """The older version where dir2file is a non-empty directory.

    Without --delete (or --force) rsync cannot replace it by the file: it
    reports "cannot delete non-empty directory" and exits with 23.
    """
    make_old(root)
    _file(root, "dir2file/stale.txt", b"blocks the dir -> file change\n")
    _finish_dirs(root, OLD_MTIME)


def make_samestat(root: Path) -> None:
    """A copy of the source where some content differs but size and mtime do not.

    Only ``-c`` notices: without it rsync's quick check skips these files.
    """
    make_source(root)
    for name in ("hello world.txt", "bin/random.bin"):
        path = root / name
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        os.utime(path, ns=(MTIME, MTIME))
    _finish_dirs(root)


#: Destination seeds: None = the destination does not exist yet.
SEEDS = {
    "fresh": None,
    "old": make_old,
    "extras": make_extras,
    "samestat": make_samestat,
    "blocked": make_blocked,
}


def seed(kind: str, dest: Path, cache: Path) -> None:
    """Create *dest* as seed *kind* (copied from a per-session cache with cp -a)."""
    builder = SEEDS[kind]
    if builder is None:
        return
    master = cache / f"seed-{kind}"
    if not master.exists():
        tmp = cache / f"seed-{kind}.tmp"
        builder(tmp)
        tmp.rename(master)
    r = run(["cp", "-a", str(master), str(dest)])
    assert r.rc == 0, r.describe()
