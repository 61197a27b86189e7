#!/usr/bin/env python3
"""A differential fuzzer: pysync against stock rsync on generated cases.

Each case is drawn from a seed: a source tree, an existing destination
tree (missing, empty, identical, or the source with mutations: older or
newer times, new content, other modes, owners and xattrs, type changes,
extra entries, read-only directories), sometimes a reference tree for
``--link-dest``/``--compare-dest``/``--copy-dest``, an option set and a
role (local, or over ``-e interop/fake_rsh.py`` with pysync or rsync on
either end, as tests/helpers/roles.py spells them).  The case is built
twice, once for stock rsync on both ends and once for the pysync role, and
the two runs are compared on:

- the exit code (a run past its timeout is a hang, reported with the
  Python stacks that ``PYTHONFAULTHANDLER=1`` prints on ``SIGABRT``);
- the stdout lines (the ``-i``/``-v`` output without the summary, sorted,
  since a remote role interleaves the two ends' messages);
- the destination tree (and the backup dir, and the source with
  ``--remove-source-files``): names, types, sizes and contents, modes,
  owners, mtimes (a time set by the run itself counts as "now"),
  symlink targets, device numbers, hard-link groups and link counts,
  xattrs (ACLs included, as their ``system.posix_acl_*`` values);
- temp files (``.name.XXXXXX``) left in the destination.

The stock rsync run gets ``--no-i-r`` (pysync sends the whole list first,
as rsync does without incremental recursion).  Differences that are known
and explained are in ``ALLOWED`` with a reason each; an allowed entry
matches a single difference line under named options, never a whole case.

Usage::

    python3 interop/fuzz.py --seed 1 --cases 200          # a run
    python3 interop/fuzz.py --seed 1 --case 17 -v         # one case, its commands
    python3 interop/fuzz.py --seed 1 --case 17 --shrink   # reduce it to a minimal case
    python3 interop/fuzz.py --seed 1 --case 17 --keep /tmp/c17   # keep the trees

``--role R`` fixes the role, ``--small`` leaves out files of a few MiB,
``--timeout`` is per transfer (default 60 s).  Run serially: one transfer
at a time.  tests/test_fuzz_smoke.py runs 25 fixed cases in the suite.
"""

from __future__ import annotations

import argparse
import copy
import fcntl
import hashlib
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from helpers.roles import ROLES, lines, sources_command  # noqa: E402
from pysync.text import show  # noqa: E402

BASE = 1_600_000_000
#: Exit status of ``timeout`` when the command ran out of time.
TIMED_OUT = 124
#: A temp file of rsync's form: ``.name.XXXXXX``.
TEMP_RE = re.compile(rb"^\..+\.[A-Za-z0-9]{6}$")

NAMES = [b"a", b"b", b"c.txt", b"d.log", b"sub", b"deep", b"with space", b"new\nline",
         b"hi\xe9bit", b".hidden", b"x~", b"-dash", b"z", b"\xff\xfe"]
EXTRA_NAMES = [b"extra", b"old.txt", b"gone dir", b"zz\xe0"]
FILE_MODES = [0o644, 0o600, 0o755, 0o444, 0o640, 0o4755, 0o2750]
DIR_MODES = [0o755, 0o700, 0o775, 0o2755, 0o1777]
OWNERS = [(1234, 1234), (65534, 65534), (1, 1), (0, 1234)]
PATTERNS = ["*.txt", "a", "sub/", "/b", "**/z", "with space", "*.log", "deep/***", ".*", "x~"]
MIB = 1 << 20


# --------------------------------------------------------------------------
# Case generation
# --------------------------------------------------------------------------

def _mtime(rng) -> int:
    ns = rng.choice([0, 0, 0, rng.randrange(1, 10**9)])
    return (BASE + rng.randrange(0, 100_000)) * 10**9 + ns


def _data(rng, small: bool) -> dict:
    r = rng.random()
    if r < 0.1:
        size = 0
    elif r < 0.7 or small:
        size = rng.randrange(1, 5000)
    elif r < 0.85:
        size = rng.randrange(20_000, 300_000)
    else:
        size = rng.randrange(1 * MIB, 3 * MIB)
    sparse = size > 100_000 and rng.random() < 0.4
    return {"seed": rng.randrange(1 << 30), "size": size, "sparse": sparse, "edits": []}


def _acl(rng) -> bytes:
    """A Linux POSIX ACL xattr value with a named user and a mask."""
    entries = [(1, 6, 0xFFFFFFFF), (2, rng.choice([4, 6]), 1234), (4, 4, 0xFFFFFFFF),
               (0x10, 6, 0xFFFFFFFF), (0x20, rng.choice([0, 4]), 0xFFFFFFFF)]
    out = (2).to_bytes(4, "little")
    for tag, perm, ident in entries:
        out += tag.to_bytes(2, "little") + perm.to_bytes(2, "little") + ident.to_bytes(4, "little")
    return out


def _attrs(rng, entry: dict) -> None:
    if rng.random() < 0.2:
        xa = {b"user.k": rng.randbytes(rng.randrange(1, 20))}
        if rng.random() < 0.3:
            xa[b"user.long"] = rng.randbytes(400)
        if rng.random() < 0.3:
            xa[b"system.posix_acl_access"] = _acl(rng)
        if entry["kind"] == "dir" and rng.random() < 0.3:
            xa[b"system.posix_acl_default"] = _acl(rng)
        entry["xattrs"] = xa
    if rng.random() < 0.15:
        entry["owner"] = rng.choice(OWNERS)


def _new_entry(rng, kind: str, spec: dict, name: bytes, small: bool) -> dict:
    e: dict = {"kind": kind, "mtime": _mtime(rng)}
    if kind == "file":
        e["mode"] = rng.choice(FILE_MODES) if rng.random() < 0.4 else 0o644
        e["data"] = _data(rng, small)
    elif kind == "dir":
        e["mode"] = rng.choice(DIR_MODES) if rng.random() < 0.3 else 0o755
    elif kind == "symlink":
        files = [n for n, x in spec.items() if n and x["kind"] in ("file", "dir")]
        depth = name.count(b"/")
        choices = [b"/etc/hostname", b"/nonexistent/abs", b"dangling", b"../outside",
                   b"../" * (depth + 1) + b"escape"]
        if files:
            t = rng.choice(files)
            choices += [b"../" * depth + t] * 3
        e["target"] = rng.choice(choices)
    elif kind == "hlink":
        e["to"] = rng.choice([n for n, x in spec.items() if x["kind"] == "file"])
    elif kind in ("chr", "blk"):
        e["mode"] = 0o640
        e["rdev"] = (1, 3) if kind == "chr" else (7, rng.randrange(0, 4))
    elif kind == "fifo":
        e["mode"] = 0o644
    if kind in ("file", "dir"):
        _attrs(rng, e)
    return e


def gen_tree(rng, small: bool) -> dict:
    spec: dict = {}
    dirs = [b""]
    for _ in range(rng.randrange(1, 15)):
        parent = rng.choice(dirs)
        name = (parent + b"/" if parent else b"") + rng.choice(NAMES)
        if name in spec:
            continue
        kinds = ["file"] * 10 + ["dir"] * 3 + ["symlink"] * 3 + ["fifo", "chr", "blk"]
        if any(e["kind"] == "file" for e in spec.values()):
            kinds += ["hlink"] * 3
        kind = rng.choice(kinds)
        if kind == "dir" and name.count(b"/") >= 3:
            kind = "file"
        spec[name] = _new_entry(rng, kind, spec, name, small)
        if kind == "dir":
            dirs.append(name)
    spec[b""] = {"kind": "dir", "mode": 0o755, "mtime": _mtime(rng)}
    return spec


def _drop(spec: dict, name: bytes) -> None:
    """Remove *name* and everything under it; hard links to a removed file
    become copies of it."""
    gone = {n for n in spec if n == name or n.startswith(name + b"/")}
    for n in gone:
        spec.pop(n)
    for n, e in spec.items():
        if e["kind"] == "hlink" and e["to"] in gone:
            spec[n] = {"kind": "file", "mtime": e.get("mtime", BASE * 10**9), "mode": 0o644,
                       "data": {"seed": 7, "size": 10, "sparse": False, "edits": []}}


def mutate(rng, src: dict, small: bool) -> dict:
    """The source with random changes: a destination that is out of date."""
    dst = copy.deepcopy(src)
    for name in sorted(dst, reverse=True):
        if name not in dst or not name:
            continue
        e = dst[name]
        r = rng.random()
        if r < 0.12:
            _drop(dst, name)
        elif r < 0.22:
            _drop(dst, name)
            kind = rng.choice(["file", "dir", "symlink"])
            if kind == e["kind"]:
                kind = "symlink" if kind != "symlink" else "file"
            dst[name] = _new_entry(rng, kind, dst, name, small)
            if kind == "dir" and rng.random() < 0.6:
                dst[name + b"/inner"] = _new_entry(rng, "file", dst, name + b"/inner", True)
        elif r < 0.32 and "mtime" in e:
            e["mtime"] += rng.choice([-1, 1]) * 5000 * 10**9
        elif r < 0.45 and e["kind"] == "file":
            d = e["data"]
            if rng.random() < 0.5 and d["size"]:
                off = rng.randrange(d["size"])
                d["edits"].append((off, rng.randrange(1, 3000), rng.randrange(1 << 30)))
            else:
                d["size"] = max(0, d["size"] + rng.randrange(-3000, 3000))
            if rng.random() < 0.6:
                e["mtime"] -= 5000 * 10**9
        elif r < 0.5 and "mode" in e:
            e["mode"] = rng.choice(FILE_MODES if e["kind"] == "file" else DIR_MODES)
        elif r < 0.56 and e["kind"] in ("file", "dir"):
            e.pop("xattrs", None)
            e.pop("owner", None)
            _attrs(rng, e)
        elif r < 0.6 and e["kind"] == "hlink":
            target = dst.get(e["to"])
            if target and target["kind"] == "file":
                dst[name] = copy.deepcopy(target)
        elif r < 0.64 and e["kind"] == "dir":
            e["mode"] = 0o555
    for _ in range(rng.randrange(0, 4)):
        parents = [n for n, e in dst.items() if e["kind"] == "dir"]
        parent = rng.choice(parents)
        name = (parent + b"/" if parent else b"") + rng.choice(EXTRA_NAMES + NAMES[:4])
        if name not in dst:
            kind = rng.choice(["file", "file", "dir", "symlink"])
            dst[name] = _new_entry(rng, kind, dst, name, small)
            if kind == "dir":
                dst[name + b"/in"] = _new_entry(rng, "file", dst, name + b"/in", True)
    return dst


def gen_options(rng) -> list:
    o: list = []
    if rng.random() < 0.55:
        o.append("-a")
    else:
        pieces = "".join(p for p in "rlptgoD" if rng.random() < 0.6)
        if pieces:
            o.append("-" + pieces)
    maybe = lambda p, *opts: o.extend(opts) if rng.random() < p else None  # noqa: E731
    maybe(0.3, "-H")
    maybe(0.25, "-X")
    maybe(0.1, "-A")
    if rng.random() < 0.3:
        o.append(rng.choice(["--delete", "--delete-before", "--delete-during",
                             "--delete-after", "--delete-delay"]))
        maybe(0.2, "--delete-excluded")
        maybe(0.1, f"--max-delete={rng.randrange(0, 3)}")
        maybe(0.1, "--force")
    for _ in range(rng.choice([0, 0, 0, 1, 2, 3])):
        pat = rng.choice(PATTERNS)
        o.append(rng.choice([f"--exclude={pat}", f"--include={pat}", f"--filter=- {pat}",
                             f"--filter=+ {pat}", f"--filter=P {pat}", f"--filter=R {pat}",
                             f"--filter=H {pat}", f"--filter=S {pat}", f"--filter=-! {pat}"]))
    r = rng.random()
    if r < 0.1:
        o.append("-c")
    elif r < 0.16:
        o.append("-I")
    elif r < 0.22:
        o.append("--size-only")
    maybe(0.1, "-u")
    maybe(0.06, "--existing")
    maybe(0.06, "--ignore-existing")
    r = rng.random()
    if r < 0.15:
        o.append("-W")
    elif r < 0.2:
        o.append("--no-W")
    if rng.random() < 0.15:
        o.append(rng.choice(["--inplace", "--append", "--append-verify"]))
    if rng.random() < 0.15:
        o.append(rng.choice(["--partial", "--partial-dir=.part"]))
    maybe(0.08, "--delay-updates")
    if rng.random() < 0.15:
        o.append("-b")
        maybe(0.5, "--backup-dir={TOP}/bak")
        maybe(0.3, "--suffix=.bak")
    if rng.random() < 0.12:
        o.append(rng.choice(["--link-dest", "--compare-dest", "--copy-dest"]) + "={TOP}/ref")
    maybe(0.08, "-R")
    maybe(0.05, "-x")
    if rng.random() < 0.2:
        o.append(rng.choice(["-L", "-k", "-K", "--copy-unsafe-links", "--safe-links"]))
    maybe(0.1, "--numeric-ids")
    if rng.random() < 0.1:
        o.append("--chmod=" + rng.choice(["D755,F644", "u+w,go-w", "F600", "a+rX", "Dg+s",
                                          "ugo=rwX"]))
    if rng.random() < 0.15:
        o.append("-z")
        maybe(0.5, "--compress-choice=" + rng.choice(["zstd", "zlib", "zlibx"]))
    if rng.random() < 0.1:
        o.append("--checksum-choice=" + rng.choice(["md5", "md4", "xxh128", "xxh3", "xxh64"]))
    maybe(0.08, "-n")
    if rng.random() < 0.08:
        o.append(rng.choice(["--max-size=", "--min-size="]) + rng.choice(["100", "10K", "1M"]))
    maybe(0.08, "-y")
    maybe(0.05, "-m")
    maybe(0.05, "--remove-source-files")
    maybe(0.1, "--protocol=31")
    maybe(0.05, "-O")
    maybe(0.03, "-J")
    if rng.random() < 0.9:
        o.append("-i")
    maybe(0.15, "-v")
    rng.shuffle(o)
    return o


def gen_case(seed: int, index: int, role: str | None = None, small: bool = False) -> dict:
    rng = random.Random(f"{seed}-{index}")
    src = gen_tree(rng, small)
    r = rng.random()
    if r < 0.15:
        dst = None
    elif r < 0.25:
        dst = {b"": {"kind": "dir", "mode": 0o755, "mtime": _mtime(rng)}}
    elif r < 0.4:
        dst = copy.deepcopy(src)
    else:
        dst = mutate(rng, src, small)
    opts = gen_options(rng)
    ref = mutate(rng, src, small) if any("{TOP}/ref" in x for x in opts) else None
    weights = [4, 1.5, 1.5, 1.5, 1.5]
    return {"seed": seed, "index": index, "src": src, "dst": dst, "ref": ref, "opts": opts,
            "role": role or rng.choices(ROLES, weights)[0]}


# --------------------------------------------------------------------------
# Building trees
# --------------------------------------------------------------------------

def _write_data(path: bytes, d: dict) -> None:
    r = random.Random(d["seed"])
    size = d["size"]
    with open(path, "wb") as f:
        if d["sparse"]:
            f.truncate(size)
            for _ in range(3):
                off = r.randrange(size) & ~4095
                f.seek(off)
                f.write(r.randbytes(min(8192, size - off)))
        else:
            f.write(r.randbytes(size))
        for off, length, seed in d["edits"]:
            off = min(off, size)
            f.seek(off)
            f.write(random.Random(seed).randbytes(min(length, size - off)))
        f.truncate(size)


def build(root: Path, spec: dict | None) -> None:
    """Make the tree *spec* at *root* (nothing when *spec* is None)."""
    if spec is None:
        return
    top = os.fsencode(root)
    path = lambda n: os.path.join(top, n) if n else top  # noqa: E731
    names = sorted(spec)
    for n in names:
        e = spec[n]
        p = path(n)
        kind = e["kind"]
        if kind == "dir":
            os.makedirs(p, exist_ok=True)
        elif kind == "file":
            _write_data(p, e["data"])
        elif kind == "symlink":
            os.symlink(e["target"], p)
        elif kind == "fifo":
            os.mkfifo(p, e["mode"])
        elif kind in ("chr", "blk"):
            os.mknod(p, (stat.S_IFCHR if kind == "chr" else stat.S_IFBLK) | e["mode"],
                     os.makedev(*e["rdev"]))
    for n in names:
        e = spec[n]
        if e["kind"] == "hlink":
            target = spec.get(e["to"])
            if target is None or target["kind"] != "file":
                _write_data(path(n), {"seed": 7, "size": 10, "sparse": False, "edits": []})
                os.utime(path(n), ns=(e["mtime"], e["mtime"]))
            else:
                os.link(path(e["to"]), path(n))
    for n in sorted(names, reverse=True):   # children before their directory
        e = spec[n]
        p = path(n)
        if e["kind"] == "hlink":
            continue
        for key, value in e.get("xattrs", {}).items():
            try:
                os.setxattr(p, key, value)
            except OSError:
                pass
        if "owner" in e:
            os.lchown(p, *e["owner"])
        if e["kind"] != "symlink":
            os.chmod(p, e["mode"])
        os.utime(p, ns=(e["mtime"], e["mtime"]), follow_symlinks=False)


# --------------------------------------------------------------------------
# Snapshots
# --------------------------------------------------------------------------

def _describe(path: bytes, since_ns: int) -> dict:
    st = os.lstat(path)
    fmt = stat.S_IFMT(st.st_mode)
    e = {"type": stat.filemode(st.st_mode)[0], "mode": oct(stat.S_IMODE(st.st_mode)),
         "owner": (st.st_uid, st.st_gid),
         "mtime": "now" if st.st_mtime_ns >= since_ns else st.st_mtime_ns,
         "ino": (st.st_dev, st.st_ino)}
    if fmt == stat.S_IFREG:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(MIB):
                h.update(chunk)
        e["size"], e["sha"], e["nlink"] = st.st_size, h.hexdigest()[:16], st.st_nlink
    elif fmt == stat.S_IFLNK:
        e["target"] = os.readlink(path)
    elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
        e["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    if fmt in (stat.S_IFREG, stat.S_IFDIR):
        e["xattrs"] = {k: os.getxattr(path, k, follow_symlinks=False)
                       for k in sorted(os.listxattr(path, follow_symlinks=False))
                       if not k.startswith("security.")}
    if fmt != stat.S_IFDIR:
        e["nlink"] = st.st_nlink
    return e


def snapshot(root: Path, since_ns: int) -> dict:
    """name -> description, with hard links as groups of names."""
    top = os.fsencode(root)
    if not os.path.lexists(top):
        return {}
    snap = {b".": _describe(top, since_ns)}
    pending = [b""] if os.path.isdir(top) and not os.path.islink(top) else []
    while pending:
        rel = pending.pop()
        for name in sorted(os.listdir(os.path.join(top, rel) if rel else top)):
            r = os.path.join(rel, name) if rel else name
            snap[r] = _describe(os.path.join(top, r), since_ns)
            if snap[r]["type"] == "d":
                pending.append(r)
    groups: dict = {}
    for n, e in snap.items():
        if e["type"] != "d":
            groups.setdefault(e["ino"], []).append(n)
    for n, e in snap.items():
        ino = e.pop("ino")
        if e["type"] != "d" and len(groups[ino]) > 1:
            e["linked"] = sorted(groups[ino])
    return snap


def diff_snapshots(label: str, a: dict, b: dict) -> list:
    out = []
    for n in sorted(a.keys() | b.keys()):
        ea, eb = a.get(n), b.get(n)
        if ea is None or eb is None:
            which = "rsync" if eb is None else "pysync"
            kind = (ea or eb)["type"]
            out.append(f"{label} {n!r}: only with {which} ({kind})")
            continue
        for key in sorted(ea.keys() | eb.keys()):
            if ea.get(key) != eb.get(key):
                out.append(f"{label} {n!r}: {key} rsync={ea.get(key)!r} pysync={eb.get(key)!r}")
    return out


# --------------------------------------------------------------------------
# Running and comparing
# --------------------------------------------------------------------------

def _update_kept_other_type(case: dict, a: dict, b: dict) -> set:
    """-u and a destination entry of another type that is newer: rsync
    3.2.7 skips the file (generator.c compares the times whatever the
    types); later rsync ("Fix the 'update skips a file of a different
    type' case", NEWS) and pysync replace it.  Allowed: the lines about
    such a name, when rsync left a non-file there and pysync a file (or,
    in a dry run, where the source has a file), its itemized line (a
    hard-link follower's too), its directory's time being now in pysync's
    run (the replacement touched it, and -O or no -t leaves it so), with
    --delete what pysync removed under it, with -b the backup of what
    pysync replaced, and with --remove-source-files the source file pysync
    sent and removed."""
    if not any(o in ("-u", "--update") for o in case["opts"]):
        return set()
    out = set()
    suffix = _backup_suffix(case["opts"])
    dry = _has_opt(case["opts"], "n", "--dry-run")
    for n, eb in b["dst"].items():
        ea = a["dst"].get(n)
        if ea is None or ea["type"] == "-":
            continue
        if eb["type"] == "-":
            out.update(d for d in diff_snapshots("dst", {n: ea}, {n: eb}))
            parent = n.rsplit(b"/", 1)[0] if b"/" in n else b"."
            pa, pb = a["dst"].get(parent), b["dst"].get(parent)
            if pa is not None and pb is not None and pb.get("mtime") == "now":
                out.update(d for d in diff_snapshots("dst", {parent: pa}, {parent: pb})
                           if ": mtime " in d)
        elif not (dry and _newer_than_source_file(case, n, ea)):
            continue
        out.add(f"output only pysync: {'>f+++++++++ ' + show(n)!r}")
        out.add(f"output only pysync: {'<f+++++++++ ' + show(n)!r}")
        follower = "hf+++++++++ " + show(n) + " => "
        out.update(f"output only pysync: {ln!r}" for ln in b["lines"] if ln.startswith(follower))
        out |= _update_kept_group(case, a, b, n)
        for m, em in a["dst"].items():
            if m.startswith(n + b"/"):
                gone = show(m) + ("/" if em["type"] == "d" else "")
                out.add(f"output only pysync: {'*deleting   ' + gone!r}")
                if m not in b["dst"]:
                    out.add(f"dst {m!r}: only with rsync ({em['type']})")
        if suffix is not None:
            for label in ("dst", "bak"):
                out.add(f"{label} {n + suffix!r}: only with pysync ({ea['type']})")
        if "--remove-source-files" in case["opts"] and n in (a.get("src") or {}):
            out.add(f"src {n!r}: only with rsync ({a['src'][n]['type']})")     # pysync sent it
    return out | _update_kept_full_dir(case, a, b)


def _update_kept_group(case: dict, a: dict, b: dict, n: bytes) -> set:
    """-H and such a name in a hard-link group: rsync 3.2.7, skipping it,
    hands the group's data to another member (">f... M", not linked to
    it); pysync links that member to the file it made ("hf... M => N").
    Allowed: those lines of the other members, and their link lines."""
    src = case["src"]
    e = src.get(n)
    if e is None or e["kind"] not in ("file", "hlink"):
        return set()
    target = e["to"] if e["kind"] == "hlink" else n
    members = {m for m, em in src.items() if em["kind"] == "hlink" and em["to"] == target}
    members = (members | {target}) - {n}
    out = set()
    for m in members:
        shown = show(m)
        out.update(f"output only rsync: {ln!r}" for ln in a["lines"]
                   if ln[:2] in (">f", "<f") and ln[12:] == shown)
        out.update(f"output only pysync: {ln!r}" for ln in b["lines"]
                   if ln.startswith("hf") and ln[12:].startswith(shown + " => "))
        if m in a["dst"] and m in b["dst"]:
            out.update(d for d in diff_snapshots("dst", {m: a["dst"][m]}, {m: b["dst"][m]})
                       if ": linked " in d or ": nlink " in d)
    return out


def _backup_suffix(opts: list) -> bytes | None:
    """The suffix of -b's backups (None: no backups)."""
    if not any(o in ("-b", "--backup") or o.startswith("--backup-dir=") for o in opts):
        return None
    for o in opts:
        if o.startswith("--suffix="):
            return os.fsencode(o[len("--suffix="):])
    return b"" if any(o.startswith("--backup-dir=") for o in opts) else b"~"


#: The end line of a run with errors, whatever program and place it names.
_PARTIAL_RE = re.compile(r"^rsync error: some files/attrs were not transferred ")


def _update_kept_full_dir(case: dict, a: dict, b: dict) -> set:
    """The same with a non-empty directory there (no --force): later
    rsync and pysync try to replace it, say 'cannot delete non-empty
    directory: NAME' and 'could not make way for new regular file: NAME',
    keep it and exit 23; rsync 3.2.7 skips it quietly with exit 0.
    Allowed: those lines, and the exit code when they are pysync's only
    errors."""
    names = {n for n, e in case["src"].items() if e["kind"] in ("file", "hlink")
             and a["dst"].get(n, {}).get("type") == "d" and b["dst"].get(n, {}).get("type") == "d"}
    if not names:
        return set()
    out = {f"output only pysync: {'cannot delete non-empty directory: ' + show(n)!r}" for n in names}
    errors = [ln for ln in b["stderr"].decode("utf-8", "replace").splitlines()
              if ln.strip() and not _PARTIAL_RE.match(ln)]
    made_way = {f"could not make way for new regular file: {show(n)}" for n in names}
    if errors and set(errors) <= made_way and a["rc"] == 0 and b["rc"] == 23:
        out.add("exit code rsync=0 pysync=23")
    return out


def _has_opt(opts: list, letter: str, long: str) -> bool:
    """Whether a short option (alone or in a cluster like -aHin) or its
    long form is given."""
    return any(o == long or o[:1] == "-" and o[1:2] != "-" and "=" not in o and letter in o[1:]
               for o in opts)


_HF_RE = re.compile(r"^hf(\S{9}|\s{9}) (.*)$")


def _dry_follower_unset_stat(case: dict, a: dict, b: dict) -> set:
    """-n -H and a follower listed before a leader that is new here, with
    a directory or symlink at the follower's name: rsync 3.2.7 compares it
    with the leader's stat, which a failed stat left as it was (the stack
    still holds the follower's own: later rsync clears it), so it prints
    'hf..tp..... NAME' without '=> LEADER'; pysync, as a real run of
    either, prints 'hf+++++++++ NAME => LEADER'.  Allowed: that pair."""
    if not (_has_opt(case["opts"], "n", "--dry-run") and _has_opt(case["opts"], "H", "--hard-links")):
        return set()
    out = set()
    theirs = {}
    for ln in a["lines"]:
        m = _HF_RE.match(ln)
        if m and " => " not in m.group(2):
            theirs[m.group(2)] = ln
    for ln in b["lines"]:
        m = _HF_RE.match(ln)
        if not m or m.group(1) != "+" * 9 or " => " not in m.group(2):
            continue
        name = m.group(2).split(" => ")[0]
        for n, e in a["dst"].items():
            if show(n) == name and e["type"] not in ("-", None) and name in theirs:
                out.add(f"output only pysync: {ln!r}")
                out.add(f"output only rsync: {theirs[name]!r}")
    return out


def _newer_than_source_file(case: dict, n: bytes, ea: dict) -> bool:
    """The source has a file at ``n`` (a hard link's is its target's) and
    the destination's entry is not older: what 3.2.7's -u skips."""
    e = case["src"].get(n)
    if e is not None and e["kind"] == "hlink":
        e = case["src"].get(e["to"])
    if e is None or e["kind"] != "file" or not isinstance(ea.get("mtime"), int):
        return False
    return ea["mtime"] // 10**9 >= e["mtime"] // 10**9


def _append_onto_other_basis(case: dict, a: dict, b: dict) -> set:
    """--append/--append-verify and a new file whose basis has another
    name (-y, --*-dest): the sender sends only what follows the basis's
    length, and rsync 3.2.7's receiver, writing a new file, seeks past
    that length and leaves zeros (--append-verify's checksum reads the
    basis, so it passes); pysync copies the basis's bytes in, so a basis
    that is a prefix of the file gives the file.  Allowed: the content
    line of a regular file the destination did not have."""
    opts = case["opts"]
    if not any(o in ("--append", "--append-verify") for o in opts):
        return set()
    if not any(o in ("-y", "--fuzzy") or o.split("=")[0].endswith("-dest") for o in opts):
        return set()
    before = case["dst"] or {}
    out = set()
    for n, eb in b["dst"].items():
        ea = a["dst"].get(n)
        if ea is None or eb["type"] != "-" or ea["type"] != "-" \
                or before.get(n, {}).get("kind") in ("file", "hlink"):
            continue
        if ea.get("size") == eb.get("size") and ea.get("sha") != eb.get("sha"):
            out.add(f"dst {n!r}: sha rsync={ea.get('sha')!r} pysync={eb.get('sha')!r}")
    return out


def _kept_link_retouched(case: dict, a: dict, b: dict) -> set:
    """--ignore-existing and a source directory where the destination has
    a symlink or a file: both keep it, but rsync 3.2.7's touch_up_dirs
    revisits every directory of the list by name, whatever the generator
    did with it, and sets the directory's time on what is there (its
    set_times does not follow links); pysync leaves what it skipped alone.
    Allowed: the mtime line of a symlink or file that was there before,
    where the source has a directory."""
    if "--ignore-existing" not in case["opts"]:
        return set()
    before = case["dst"] or {}
    out = set()
    for n, ea in a["dst"].items():
        eb = b["dst"].get(n)
        if eb is None or ea["type"] not in ("l", "-") or eb["type"] != ea["type"] \
                or before.get(n, {}).get("kind") not in ("symlink", "file") \
                or case["src"].get(n, {}).get("kind") != "dir":
            continue
        if ea.get("mtime") != eb.get("mtime"):
            out.add(f"dst {n!r}: mtime rsync={ea.get('mtime')!r} pysync={eb.get('mtime')!r}")
    return out


def _redo_sum_length_refused(case: dict, a: dict, b: dict) -> set:
    """An 8-byte transfer checksum (xxh64, xxh3) and a file redone after a
    failed verification, pysync sending to a stock receiver: rsync 3.2.7's
    generator asks for the redo with 16-byte sums, which its own sender
    refuses ("Invalid checksum length 16 [sender]", exit 2) before it
    logs the file; pysync's sender takes them (as protocol/sums.py's
    max_s2length says), logs the redo's itemized line, and rsync's
    receiver refuses them in turn (exit 2 as well).  Allowed: that one
    "<f" line, when both runs end so."""
    if case["role"] != "push-pysync2rsync" or a["rc"] != 2 or b["rc"] != 2:
        return set()
    if b"Invalid checksum length 16 [sender]" not in a["stderr"] \
            or b"Invalid checksum length 16 [receiver]" not in b["stderr"]:
        return set()
    return {f"output only pysync: {ln!r}" for ln in b["lines"]
            if ln.startswith("<f") and ln not in a["lines"]}


def _copy_dest_over_symlink_perms(case: dict, a: dict, b: dict) -> set:
    """--copy-dest without -p and a file copied from DIR where the
    destination had a symlink: rsync 3.2.7 gives the copy the symlink's
    permission bits (0777: the stat it sets attributes against is still
    the one of what it removed), so a world-writable file; pysync gives
    the new file's (the source's less the umask), as rsync does without
    --copy-dest.  Allowed: the mode line of such a file, rsync's 0777."""
    opts = case["opts"]
    if not any(o.startswith("--copy-dest=") for o in opts) \
            or _has_opt(opts, "p", "--perms") or _has_opt(opts, "a", "--archive") \
            and "--no-perms" not in opts and "--no-p" not in opts:
        return set()
    before = case["dst"] or {}
    out = set()
    for n, ea in a["dst"].items():
        eb = b["dst"].get(n)
        if eb is None or ea["type"] != "-" or eb["type"] != "-" or ea.get("mode") != "0o777" \
                or before.get(n, {}).get("kind") != "symlink":
            continue
        out.add(f"dst {n!r}: mode rsync={ea['mode']!r} pysync={eb['mode']!r}")
    return out


_RETAINED_RE = re.compile(r"^WARNING: (.*) failed verification -- update retained ")


def _inplace_backup_dir_redo(case: dict, a: dict, b: dict) -> set:
    """--inplace with --backup-dir over a remote shell, a stock receiver
    on both ends: rsync 3.2.7's first try at a file rebuilt from its
    backup copy fails its verification ("update retained (will try
    again)") and the redo logs the file a second time; the files come out
    right.  pysync, receiving, builds them right the first time.
    Allowed: the extra itemized lines of the files rsync warned about,
    when pysync's run warned of none."""
    opts = case["opts"]
    if case["role"] == "local" or "--inplace" not in opts \
            or not any(o.startswith("--backup-dir=") for o in opts):
        return set()
    if b"failed verification" in b["stderr"]:
        return set()
    warned = set()
    for ln in a["stderr"].decode("utf-8", "replace").splitlines():
        m = _RETAINED_RE.match(ln)
        if m:
            warned.add(m.group(1))
    return {f"output only rsync: {ln!r}" for ln in a["lines"]
            if ln[:2] in (">f", "<f") and ln[12:] in warned}


#: Known, explained differences: each a function of (case, rsync's run,
#: pysync's run) giving the difference lines it explains, never more than
#: the lines about the entries it is about.
ALLOWED = [_update_kept_other_type, _dry_follower_unset_stat, _append_onto_other_basis,
           _kept_link_retouched, _redo_sum_length_refused, _copy_dest_over_symlink_perms,
           _inplace_backup_dir_redo]


def _allowed_lines(case: dict, a: dict, b: dict) -> set:
    out: set = set()
    for rule in ALLOWED:
        out |= rule(case, a, b)
    return out


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{REPO / '.bin'}:{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONFAULTHANDLER"] = "1"
    return env


def argv(case: dict, tool: str, top: Path) -> list:
    opts = [o.replace("{TOP}", str(top)) for o in case["opts"]]
    role = case["role"]
    if tool == "rsync":
        opts.append("--no-i-r")
    src = f"{top}/src/./" if "-R" in opts else f"{top}/src/"
    return sources_command(tool, role, opts, [src], top / "dst")


def run_one(case: dict, tool: str, top: Path, timeout: float) -> dict:
    top.mkdir(parents=True)
    build(top / "src", case["src"])
    build(top / "dst", case["dst"])
    build(top / "ref", case["ref"])
    if any("{TOP}/bak" in o for o in case["opts"]):
        (top / "bak").mkdir()
    cmd = argv(case, tool, top)
    since = time.time_ns() - 2 * 10**9
    p = subprocess.Popen(["timeout", "-s", "ABRT", "-k", "10", str(timeout)] + cmd,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                         cwd=top, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        out, err = p.communicate()
    text = out.decode("utf-8", "replace").replace(str(top), "{TOP}")
    temps = [os.path.join(d, f) for d, ds, fs in os.walk(os.fsencode(top / "dst"))
             for f in fs + ds if TEMP_RE.match(f)]
    return {"cmd": cmd, "rc": p.returncode, "stdout": out, "stderr": err,
            "lines": sorted(lines(text.encode())),
            "dst": snapshot(top / "dst", since), "bak": snapshot(top / "bak", since),
            "src": snapshot(top / "src", since) if "--remove-source-files" in case["opts"]
            else {}, "temps": temps}


def compare(case: dict, a: dict, b: dict) -> list:
    """Differences between the rsync run *a* and the pysync run *b*."""
    if b["rc"] == TIMED_OUT:
        return [f"HANG: pysync timed out (rsync rc={a['rc']})"]
    out = []
    if a["rc"] != b["rc"]:
        out.append(f"exit code rsync={a['rc']} pysync={b['rc']}")
    if a["lines"] != b["lines"]:
        la, lb = a["lines"], b["lines"]
        for ln in la:
            if ln not in lb:
                out.append(f"output only rsync: {ln!r}")
        for ln in lb:
            if ln not in la:
                out.append(f"output only pysync: {ln!r}")
        if not out or not out[-1].startswith("output"):
            out.append("output: same lines, other multiplicity")
    for key in ("dst", "bak", "src"):
        out += diff_snapshots(key, a[key], b[key])
    for t in b["temps"]:
        if t not in a["temps"]:
            out.append(f"temp file left by pysync: {t!r}")
    allowed = _allowed_lines(case, a, b)
    return [d for d in out if d not in allowed]


#: Held while a case runs, so that other runs on the machine (a test
#: session: ``flock /tmp/pysync-fuzz.lock pytest ...``) can take turns.
LOCK = "/tmp/pysync-fuzz.lock"


def run_case(case: dict, timeout: float, keep: Path | None = None) -> tuple[list, dict]:
    base = Path(tempfile.mkdtemp(prefix="pysync-fuzz-")) if keep is None else keep
    lock = open(LOCK, "a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        a = run_one(case, "rsync", base / "rsync", timeout)
        b = run_one(case, "pysync", base / "pysync", timeout)
        return compare(case, a, b), {"rsync": a, "pysync": b}
    finally:
        lock.close()
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)


def shrink(case: dict, timeout: float) -> dict:
    """Greedy reduction: drop options, then source, destination and
    reference entries, one at a time, while the first difference (or, for
    a hang, any hang) stays."""
    first = run_case(case, timeout)[0]
    if not first:
        return case
    want = first[0]

    def still(c):
        diffs = run_case(c, timeout)[0]
        return want in diffs or (want.startswith("HANG") and diffs[:1] and
                                 diffs[0].startswith("HANG"))

    changed = True
    while changed:
        changed = False
        for o in list(case["opts"]):
            c = dict(case, opts=[x for x in case["opts"] if x != o])
            if still(c):
                case, changed = c, True
        for key in ("src", "dst", "ref"):
            if case[key] is None:
                continue
            for n in sorted(case[key], reverse=True):
                if not n or n not in case[key]:
                    continue
                t = copy.deepcopy(case[key])
                _drop(t, n)
                c = dict(case, **{key: t})
                if still(c):
                    case, changed = c, True
            if key != "src" and case[key] is not None and len(case[key]) <= 1:
                c = dict(case, **{key: None})
                if still(c):
                    case, changed = c, True
    return case


def describe(case: dict) -> str:
    def tree(spec):
        if spec is None:
            return "    (none)"
        rows = []
        for n in sorted(spec):
            e = {k: v for k, v in spec[n].items()}
            rows.append(f"    {n or b'.'!r}: {e}")
        return "\n".join(rows)
    return (f"case seed={case['seed']} index={case['index']} role={case['role']}\n"
            f"  opts: {' '.join(case['opts'])}\n  src:\n{tree(case['src'])}\n"
            f"  dst:\n{tree(case['dst'])}\n  ref:\n{tree(case['ref'])}")


def main(argv_: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=50)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--case", type=int, help="run this one case index only")
    ap.add_argument("--role", choices=ROLES)
    ap.add_argument("--small", action="store_true", help="no files of a few MiB")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--shrink", action="store_true")
    ap.add_argument("--keep", type=Path, help="keep the trees of a --case run here")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv_)
    indexes = [args.case] if args.case is not None else range(args.start, args.start + args.cases)
    failed = 0
    for i in indexes:
        case = gen_case(args.seed, i, args.role, args.small)
        if args.shrink:
            case = shrink(case, args.timeout)
        t0 = time.monotonic()
        try:
            diffs, runs = run_case(case, args.timeout,
                                   args.keep if args.case is not None else None)
        except Exception as e:   # a bug of the fuzzer: say which case, go on
            print(f"[{args.seed}:{i}] FUZZER ERROR {type(e).__name__}: {e}", flush=True)
            failed += 1
            continue
        took = time.monotonic() - t0
        status = "ok" if not diffs else "DIFF"
        print(f"[{args.seed}:{i}] {status} {took:.1f}s {case['role']} {' '.join(case['opts'])}",
              flush=True)
        if diffs or args.verbose:
            failed += bool(diffs)
            for d in diffs[:40]:
                print("   ", d)
            if args.verbose or args.shrink:
                print(describe(case))
            for tool in ("rsync", "pysync"):
                r = runs[tool]
                print(f"  {tool}: rc={r['rc']} {' '.join(map(str, r['cmd']))}")
                err = r["stderr"].decode("utf-8", "replace")
                if err.strip():
                    print("   stderr:", err[-6000:].replace("\n", "\n    "))
                if args.verbose:
                    print("   stdout:", r["stdout"].decode("utf-8", "replace")
                          .replace("\n", "\n    "))
    print(f"{failed} of {len(indexes)} cases differ")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
