#!/usr/bin/env python3
"""Capture real rsync byte streams as test vectors.

Usage (from the repository root)::

    python3 protocol/capture.py [--out protocol/vectors] [--only NAME ...]

For every scenario below this builds a small deterministic tree (fixed
contents, modes, nanosecond mtimes and, when run as root, owner 0:0) in a
temporary directory, runs the stock ``rsync`` client against a stock
``rsync --server`` through ``interop/fake_rsh.py`` with ``FAKE_RSH_RECORD``
set, and keeps what the fake remote shell recorded:

* ``c2s.bin`` - every byte the client wrote to the server,
* ``s2c.bin`` - every byte the server wrote to the client,
* ``argv.txt`` - the server command line,
* ``meta.json`` - the client command, rsync's version, the roles, the
  options and negotiated names a decoder needs, the checksum seed, the
  source tree (with sha256 of every file), rsync's own file-list order
  (from ``--list-only``), and the basis files of delta transfers.
* ``basis/`` - the old destination files the generator summed (only for
  scenarios that update existing files), so a test can rebuild the new
  file from literals plus matched blocks.

All paths given to rsync are relative to the temporary directory, so the
server command line in ``argv.txt`` does not depend on where it ran. The
checksum seed, the stats timings and the frame boundaries still differ from
one capture to the next; tests decode vectors rather than compare them to a
fresh capture.

Every scenario uses ``--no-inc-recursive``: pysync never does incremental
recursion, so the file list always travels as one block.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pysync.protocol.buffer import ReadBuffer  # noqa: E402
from pysync.protocol.constants import CF_VARINT_FLIST_FLAGS  # noqa: E402
from pysync.protocol.handshake import (decode_name_list, decode_seed,  # noqa: E402
                                       decode_version)
from pysync.protocol.ints import decode_varint  # noqa: E402

RSYNC = "/usr/bin/rsync"
FAKE_RSH = REPO / "interop" / "fake_rsh.py"
#: Wall-clock limit for one rsync run; a hang is a failed capture.
RUN_TIMEOUT = 60
#: Base mtime of the trees: 2023-11-14T22:13:20 UTC.
T0 = 1_700_000_000


# --------------------------------------------------------------------------
# Deterministic contents
# --------------------------------------------------------------------------

def noise(label: str, size: int) -> bytes:
    """``size`` pseudo-random bytes (all 256 values occur) named by ``label``."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{label}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def text(label: str, lines: int) -> bytes:
    """Compressible, line-oriented text."""
    words = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
    out = []
    for i in range(lines):
        h = hashlib.sha256(f"{label}:{i}".encode()).digest()
        out.append(f"{i:05d} " + " ".join(words[b % 8] for b in h[:9]) + "\n")
    return "".join(out).encode()


def edit(data: bytes, edits) -> bytes:
    """Apply ``(offset, delete_count, insert_bytes)`` edits, last offset first."""
    b = bytearray(data)
    for off, dele, ins in sorted(edits, reverse=True):
        b[off:off + dele] = ins
    return bytes(b)


# --------------------------------------------------------------------------
# Trees
# --------------------------------------------------------------------------

@dataclass
class Node:
    """One tree entry. ``kind`` is 'dir', 'file' or 'link'."""
    name: str
    kind: str
    data: bytes = b""          # file contents or link target
    mode: int = 0o644
    mtime: int = T0
    nsec: int = 0


def d(name, mode=0o755, mtime=T0, nsec=0):
    return Node(name, "dir", b"", mode, mtime, nsec)


def f(name, data, mode=0o644, mtime=T0, nsec=0):
    return Node(name, "file", data, mode, mtime, nsec)


def ln(name, target, mtime=T0, nsec=0):
    return Node(name, "link", target.encode(), 0o777, mtime, nsec)


def build(root: Path, nodes) -> None:
    """Create ``nodes`` under ``root`` (which must not exist yet).

    Owners are set to 0:0 when we are root, modes explicitly (the umask does
    not matter) and mtimes last, deepest directory first, because creating
    an entry changes its directory's mtime.
    """
    root.mkdir()
    as_root = os.geteuid() == 0
    for n in nodes:
        p = root / n.name if n.name != "." else root
        if n.kind == "dir":
            p.mkdir(exist_ok=True)
        elif n.kind == "file":
            p.write_bytes(n.data)
        else:
            os.symlink(n.data, p)
        if as_root:
            os.lchown(p, 0, 0)
        if n.kind != "link":
            os.chmod(p, n.mode)
    order = sorted(nodes, key=lambda n: (n.kind == "dir", -n.name.count("/"), n.name == "."))
    for n in order:
        p = root / n.name if n.name != "." else root
        ns = n.mtime * 1_000_000_000 + n.nsec
        os.utime(p, ns=(ns, ns), follow_symlinks=False)


def describe(root: Path) -> list:
    """The tree as JSON-able entries (lstat values, sha256 of files)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [None] + sorted(dirnames + filenames):
            if name is None:
                if Path(dirpath) != root:
                    continue
                p = Path(dirpath)
            else:
                p = Path(dirpath) / name
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            e = {"name": rel, "mode": st.st_mode, "size": st.st_size,
                 "mtime": st.st_mtime_ns // 1_000_000_000, "nsec": st.st_mtime_ns % 1_000_000_000,
                 "uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISDIR(st.st_mode):
                e["type"] = "dir"
            elif stat.S_ISLNK(st.st_mode):
                e["type"] = "link"
                e["target"] = os.readlink(p)
            else:
                e["type"] = "file"
                e["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
            out.append(e)
    return sorted(out, key=lambda e: e["name"])


def rsync_order(root: Path, filters=()) -> list:
    """rsync's own sorted file-list order for ``root/``, via --list-only."""
    r = subprocess.run([RSYNC, "-rl", "--list-only", "--no-inc-recursive", *filters, f"{root}/"],
                       capture_output=True, check=True, timeout=RUN_TIMEOUT)
    names = []
    for line in r.stdout.decode("utf-8", "surrogateescape").splitlines():
        perms, _size, _date, _time, name = line.split(None, 4)
        if perms.startswith("l"):
            name = name.rsplit(" -> ", 1)[0]
        names.append(name)
    return names


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------

A_TXT = b"hello world\n"
B_BIN = noise("b.bin", 5000)
BIG = noise("big.bin", 40000)
DELTA_OLD = noise("delta", 8000)
# Changed block 1, 50 bytes inserted in block 4, 20 bytes cut from block 8,
# 300 bytes appended: most blocks still match, at shifted offsets.
DELTA_NEW = edit(DELTA_OLD, [(1000, 10, b"0123456789"), (3000, 0, noise("ins", 50)),
                             (6000, 20, b"")]) + noise("tail", 300)
TEXT_OLD = text("text", 120)
TEXT_NEW = edit(TEXT_OLD, [(700, 0, b"** a line added by the update **\n"),
                           (4000, 40, b"")])
NEW_TEXT = text("new", 60)


def basic_tree(big: bool) -> list:
    """The awkward-order tree of the push and pull vectors."""
    nodes = [
        d(".", 0o755, T0 + 100, 123456789),
        f("Z", b"upper case sorts first\n", 0o644, T0, 500000000),
        f("a.txt", A_TXT, 0o644, T0, 500000000),  # same mtime: XMIT_SAME_TIME
        f("empty", b"", 0o600, T0 + 1, 0),         # no nsec: no XMIT_MOD_NSEC
        ln("link", "a.txt", T0 + 2, 7),
        f("sub.txt", b"sorts before sub/ in rsync order\n", 0o644, T0 + 3, 1),
        f("sub0", b"#!/bin/sh\necho sub0\n", 0o755, T0 + 3, 1),
        f("with space.txt", b"a name with a space\n", 0o644, T0 + 4, 999999999),
        d("sub", 0o750, T0 + 50, 250000000),
        f("sub/b.bin", B_BIN, 0o644, T0 + 5, 42),
    ]
    if big:
        nodes.append(f("sub/big.bin", BIG, 0o640, T0 + 6, 3))  # > 32 KiB: two literal records
    return nodes


@dataclass
class Scenario:
    name: str
    what: str
    pull: bool                     # the client receives (server is the sender)
    opts: list
    src: list
    dst: list | None = None        # None: empty destination directory
    compress_explicit: bool = False
    deleted: list = field(default_factory=list)
    filters: list = field(default_factory=list)   # filter options, also given to --list-only
    excluded: list = field(default_factory=list)  # source names the filters keep out
    kept: list = field(default_factory=list)      # destination extras the filters protect


SCENARIOS = [
    Scenario("push", "push of a small awkward-order tree into an empty directory",
             False, ["-a", "--no-inc-recursive"], basic_tree(big=True)),
    Scenario("pull", "pull of the same tree (without big.bin) into an empty directory",
             True, ["-a", "--no-inc-recursive"], basic_tree(big=False)),
    Scenario("delta", "push updating an 8000-byte file with a few changed blocks (--no-W)",
             False, ["-a", "--no-inc-recursive", "--no-W"],
             [d(".", 0o755, T0 + 100), f("data.bin", DELTA_NEW, 0o644, T0 + 10, 5),
              f("same.txt", b"unchanged\n", 0o644, T0, 0)],
             [d(".", 0o755, T0 + 100), f("data.bin", DELTA_OLD, 0o644, T0, 0),
              f("same.txt", b"unchanged\n", 0o644, T0, 0)]),
    Scenario("zstd", "push with -z (negotiates zstd): one delta update and two new files",
             False, ["-az", "--no-inc-recursive", "--no-W"],
             [d(".", 0o755, T0 + 100), f("data.bin", noise("zdata", 3000), 0o644, T0 + 9, 9),
              f("new.txt", NEW_TEXT, 0o644, T0 + 9, 9),
              f("text.txt", TEXT_NEW, 0o644, T0 + 10, 10)],
             [d(".", 0o755, T0 + 100), f("text.txt", TEXT_OLD, 0o644, T0, 0)]),
    Scenario("zlib", "pull with --compress-choice=zlib (history trick): one delta update, "
             "one new file",
             True, ["-a", "--no-inc-recursive", "--no-W", "--compress-choice=zlib"],
             [d(".", 0o755, T0 + 100), f("new.txt", NEW_TEXT, 0o644, T0 + 9, 9),
              f("text.txt", TEXT_NEW, 0o644, T0 + 10, 10)],
             [d(".", 0o755, T0 + 100), f("text.txt", TEXT_OLD, 0o644, T0, 0)],
             compress_explicit=True),
    Scenario("delete", "push with --delete: a filter list, MSG_DELETED, no NDX_DEL_STATS "
             "(3.2.7 sends it only with --stats)",
             False, ["-a", "--no-inc-recursive", "--delete"],
             [d(".", 0o755, T0 + 100), f("keep.txt", b"keep\n", 0o644, T0, 0),
              d("sub", 0o755, T0 + 100), f("sub/keep2.txt", b"keep too\n", 0o644, T0, 0),
              f("sub/new.txt", b"new\n", 0o644, T0 + 1, 0)],
             [d(".", 0o755, T0 + 100), f("keep.txt", b"keep\n", 0o644, T0, 0),
              f("gone.txt", b"extra\n", 0o644, T0, 0),
              d("olddir", 0o755, T0), f("olddir/x", b"x\n", 0o644, T0, 0),
              d("sub", 0o755, T0 + 100), f("sub/keep2.txt", b"keep too\n", 0o644, T0, 0),
              ln("sub/gone-link", "nowhere", T0)],
             deleted=["gone.txt", "olddir", "olddir/x", "sub/gone-link"]),
    Scenario("delete_stats", "the delete push with --stats: rsync 3.2.7 sends NDX_DEL_STATS "
             "only when its generator prints stats",
             False, ["-a", "--no-inc-recursive", "--delete", "--stats"],
             [d(".", 0o755, T0 + 100), f("keep.txt", b"keep\n", 0o644, T0, 0),
              d("sub", 0o755, T0 + 100), f("sub/keep2.txt", b"keep too\n", 0o644, T0, 0),
              f("sub/new.txt", b"new\n", 0o644, T0 + 1, 0)],
             [d(".", 0o755, T0 + 100), f("keep.txt", b"keep\n", 0o644, T0, 0),
              f("gone.txt", b"extra\n", 0o644, T0, 0),
              d("olddir", 0o755, T0), f("olddir/x", b"x\n", 0o644, T0, 0),
              d("sub", 0o755, T0 + 100), f("sub/keep2.txt", b"keep too\n", 0o644, T0, 0),
              ln("sub/gone-link", "nowhere", T0)],
             deleted=["gone.txt", "olddir", "olddir/x", "sub/gone-link"]),
    Scenario("delete_pull", "pull with --delete --stats: the client generator sends "
             "NDX_DEL_STATS, the server sender echoes it",
             True, ["-a", "--no-inc-recursive", "--delete", "--stats"],
             [d(".", 0o755, T0 + 100), f("keep.txt", b"keep\n", 0o644, T0, 0),
              f("new.txt", b"new\n", 0o644, T0 + 1, 0)],
             [d(".", 0o755, T0 + 100), f("keep.txt", b"keep\n", 0o644, T0, 0),
              f("gone.txt", b"extra\n", 0o644, T0, 0), ln("gone-link", "nowhere", T0)],
             deleted=["gone.txt", "gone-link"]),
    Scenario("filter", "pull with --delete and --exclude=*.tmp: one filter rule on the wire, "
             "an excluded source file, a protected destination file",
             True, ["-a", "--no-inc-recursive", "--delete"],
             [d(".", 0o755, T0 + 100), f("keep.txt", b"keep\n", 0o644, T0, 0),
              f("new.txt", b"new\n", 0o644, T0 + 1, 0), f("skip.tmp", b"not sent\n", 0o644, T0, 0)],
             [d(".", 0o755, T0 + 100), f("keep.txt", b"keep\n", 0o644, T0, 0),
              f("gone.txt", b"extra\n", 0o644, T0, 0), f("mine.tmp", b"protected\n", 0o644, T0, 0)],
             deleted=["gone.txt"], filters=["--exclude=*.tmp"], excluded=["skip.tmp"],
             kept=["mine.tmp"]),
    Scenario("checksum", "push with -c: file-list checksums; one file differs only in content",
             False, ["-ac", "--no-inc-recursive"],
             [d(".", 0o755, T0 + 100), f("differ.txt", b"new content!\n", 0o644, T0, 0),
              f("new.txt", b"brand new\n", 0o644, T0 + 1, 0),
              f("same.txt", b"same content\n", 0o644, T0, 0)],
             [d(".", 0o755, T0 + 100), f("differ.txt", b"old content!\n", 0o644, T0, 0),
              f("same.txt", b"same content\n", 0o644, T0, 0)]),
]


# --------------------------------------------------------------------------
# Decoding what meta.json needs
# --------------------------------------------------------------------------

def parse_server_argv(argv: str) -> dict:
    """The options a decoder needs, read from the server command line."""
    words = argv.split()
    assert words[:2] == ["rsync", "--server"], words
    sender = "--sender" in words
    cluster = next(w for w in words[2:] if w.startswith("-") and not w.startswith("--"))
    flags, _, caps = cluster[1:].partition("e")
    return {
        "server_is_sender": sender,
        "flag_cluster": cluster,
        "capabilities": caps,
        "links": "l" in flags,
        "preserve_uid": "o" in flags,
        "preserve_gid": "g" in flags,
        "devices": "D" in flags,
        "specials": "D" in flags,
        "hard_links": "H" in flags,
        "always_checksum": "c" in flags,
        "recursive": "r" in flags,
        "times": "t" in flags,
        "perms": "p" in flags,
        "dry_run": "n" in flags,
        "whole_file": "W" in flags,
        "z_flag": "z" in flags,
        "numeric_ids": "--numeric-ids" in words,
        "delete": any(w.startswith("--delete") for w in words),
        "long_options": [w for w in words[2:] if w.startswith("--") and w != "--sender"],
    }


def decode_handshake(c2s: bytes, s2c: bytes, checksum_list: bool, compress_list: bool) -> dict:
    """The raw (not yet multiplexed) start of both directions."""
    cb, sb = ReadBuffer(c2s), ReadBuffer(s2c)
    out = {"client_version": decode_version(cb), "server_version": decode_version(sb)}
    out["protocol"] = min(out["client_version"], out["server_version"])
    out["compat_flags"] = decode_varint(sb)
    negotiate = bool(out["compat_flags"] & CF_VARINT_FLIST_FLAGS)
    out["checksum_list_sent"] = negotiate and checksum_list
    out["compress_list_sent"] = negotiate and compress_list
    if out["checksum_list_sent"]:
        out["client_checksums"] = decode_name_list(cb)
        out["server_checksums"] = decode_name_list(sb)
    if out["compress_list_sent"]:
        out["client_compressions"] = decode_name_list(cb)
        out["server_compressions"] = decode_name_list(sb)
    out["seed"] = decode_seed(sb)
    out["c2s_handshake_len"] = len(c2s) - len(cb)
    out["s2c_handshake_len"] = len(s2c) - len(sb)
    return out


def client_choice(ours, theirs) -> str:
    return next(n for n in ours if n in theirs)


# --------------------------------------------------------------------------
# Running one scenario
# --------------------------------------------------------------------------

def rsync_version() -> str:
    r = subprocess.run([RSYNC, "--version"], capture_output=True, text=True, check=True)
    return r.stdout.splitlines()[0].strip()


def check_result(sc: Scenario, tmp: Path) -> None:
    """The transfer really happened: destination equals source, extras gone."""
    want = {e["name"]: e for e in describe(tmp / "src") if e["name"] not in sc.excluded}
    got = {e["name"]: e for e in describe(tmp / "dst")}
    for name in sc.kept:
        if got.pop(name, None) is None:
            raise RuntimeError(f"{sc.name}: protected {name} was deleted")
    if set(want) != set(got):
        raise RuntimeError(f"{sc.name}: destination names differ: {sorted(set(want) ^ set(got))}")
    for name, w in want.items():
        g = got[name]
        keys = ["type", "mode", "uid", "gid", "sha256", "target"]
        if w["type"] != "link":
            keys += ["mtime", "nsec"]
        for k in keys:
            if w.get(k) != g.get(k):
                raise RuntimeError(f"{sc.name}: {name}: {k} {g.get(k)!r} != {w.get(k)!r}")


def capture(sc: Scenario, out_dir: Path, version: str) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"pysync-capture-{sc.name}-") as t:
        tmp = Path(t)
        build(tmp / "src", sc.src)
        build(tmp / "dst", sc.dst or [d(".", 0o755, T0)])
        rec = tmp / "rec"
        rsh = f"python3 {FAKE_RSH}"
        if sc.pull:
            args = ["fakehost:src/", "dst/"]
        else:
            args = ["src/", "fakehost:dst/"]
        cmd = [RSYNC, *sc.opts, *sc.filters, "-e", rsh, *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RSYNC_")}
        env.update(FAKE_RSH_RECORD=str(rec), LC_ALL="C")
        env.pop("FAKE_RSH_MAP", None)
        source = [e for e in describe(tmp / "src") if e["name"] not in sc.excluded]
        dest_before = describe(tmp / "dst")
        order = rsync_order(tmp / "src", sc.filters)
        # Files the generator will sum: old versions that differ from the
        # source. Read now: the transfer replaces them.
        src_by_name = {e["name"]: e for e in source}
        old_files = {}
        for e in dest_before:
            s = src_by_name.get(e["name"])
            if e["type"] == "file" and s and s["type"] == "file" and s["sha256"] != e["sha256"]:
                old_files[e["name"]] = (tmp / "dst" / e["name"]).read_bytes()
        r = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, timeout=RUN_TIMEOUT)
        if r.returncode != 0:
            raise RuntimeError(f"{sc.name}: rsync exited {r.returncode}: {r.stderr.decode()}")
        check_result(sc, tmp)

        vdir = out_dir / sc.name
        if vdir.exists():
            shutil.rmtree(vdir)
        vdir.mkdir(parents=True)
        for name in ("c2s.bin", "s2c.bin", "argv.txt"):
            shutil.copyfile(rec / name, vdir / name)
        c2s = (vdir / "c2s.bin").read_bytes()
        s2c = (vdir / "s2c.bin").read_bytes()
        argv = (vdir / "argv.txt").read_text().strip()

        basis = {}
        for name, data in old_files.items():
            target = vdir / "basis" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            basis[name] = {"file": f"basis/{name}", "sha256": hashlib.sha256(data).hexdigest(),
                           "size": len(data)}

    opts = parse_server_argv(argv)
    explicit_cc = any(o.startswith(("--checksum-choice", "--cc")) for o in sc.opts)
    compressing = opts["z_flag"] or sc.compress_explicit
    hs = decode_handshake(c2s, s2c, not explicit_cc, compressing and not sc.compress_explicit)
    checksum = (client_choice(hs["client_checksums"], hs["server_checksums"])
                if hs["checksum_list_sent"] else None)
    if hs["compress_list_sent"]:
        compression = client_choice(hs["client_compressions"], hs["server_compressions"])
    elif sc.compress_explicit:
        compression = next(o.split("=", 1)[1] for o in sc.opts
                           if o.startswith("--compress-choice="))
    else:
        compression = None
    display = ["rsync", *sc.opts, *sc.filters, "-e", "python3 interop/fake_rsh.py", *(args)]
    meta = {
        "name": sc.name,
        "description": sc.what,
        "command": display,
        "command_note": "run in a temporary directory holding src/ and dst/; the real -e "
                        "value is the absolute path of interop/fake_rsh.py, "
                        "with FAKE_RSH_RECORD set",
        "rsync_version": version,
        "captured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "server_argv": argv,
        "roles": {
            "sender": "server" if sc.pull else "client",
            "receiver": "client" if sc.pull else "server",
            "client": "receiver" if sc.pull else "sender",
        },
        "protocol": hs["protocol"],
        "client_version": hs["client_version"],
        "server_version": hs["server_version"],
        "compat_flags": hs["compat_flags"],
        "options": opts,
        "negotiation": {k: hs[k] for k in hs if k.endswith(("_sent", "checksums", "compressions"))},
        "checksum": checksum or "md5",
        "compression": compression,
        "seed": hs["seed"],
        "handshake_len": {"c2s": hs["c2s_handshake_len"], "s2c": hs["s2c_handshake_len"]},
        "source": source,
        "destination_before": dest_before,
        "deleted": sc.deleted,
        "excluded": sc.excluded,
        "kept": sc.kept,
        "filter_options": sc.filters,
        "rsync_order": order,
        "basis": basis,
        "bytes": {"c2s": len(c2s), "s2c": len(s2c)},
    }
    (vdir / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(REPO / "protocol" / "vectors"))
    ap.add_argument("--only", nargs="*", help="scenario names (default: all)")
    ns = ap.parse_args(argv)
    out = Path(ns.out)
    version = rsync_version()
    for sc in SCENARIOS:
        if ns.only and sc.name not in ns.only:
            continue
        meta = capture(sc, out, version)
        print(f"{sc.name:12s} c2s {meta['bytes']['c2s']:6d}  s2c {meta['bytes']['s2c']:6d}  "
              f"checksum {meta['checksum']}  compression {meta['compression']}  "
              f"seed {meta['seed']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
