"""--compare-dest, --copy-dest and --link-dest (engine/altdest.py) in the
cases interop/fuzz.py found, pysync against stock rsync on the same
trees, locally and over the fake remote shell: same tree (link counts
included), same itemized lines, same exit code."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from helpers.roles import fix_dirs, lines, put, sources_command
from helpers.trees import compare_trees

OLD = 1_600_000_000
KINDS = ["compare", "copy", "link"]
ROLES = ["local", "push-rsync2pysync", "pull-pysync2rsync"]


def _run_both(tmp_path, role, kind, build, opts=("-ai",)):
    got, dsts = {}, []
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        build(top / "src", top / "dst", top / "ref")
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, [*opts, f"--{kind}-dest={top}/ref"] + extra,
                                           [f"{top}/src/"], top / "dst"),
                           capture_output=True, timeout=60)
        dst = top / "dst"
        links = {n: os.lstat(dst / n).st_nlink for n in sorted(os.listdir(dst))}
        got[tool] = (r.returncode, sorted(lines(r.stdout)), links)
        dsts.append(dst)
    return got, dsts


def _others(src, dst, ref):
    dst.mkdir(parents=True)
    for root in (src, ref):
        root.mkdir(parents=True, exist_ok=True)
        os.symlink("t", root / "same")
        os.mkfifo(root / "fifo")
        if os.geteuid() == 0:
            os.mknod(root / "null", stat.S_IFCHR | 0o644, os.makedev(1, 3))
    os.symlink("t2", src / "other")
    os.symlink("elsewhere", ref / "other")
    for root in (src, ref):
        for n in os.listdir(root):
            os.utime(root / n, (OLD, OLD), follow_symlinks=False)
    fix_dirs(src, OLD)
    fix_dirs(ref, OLD)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ROLES)
def test_symlinks_and_specials_as_rsync(tmp_path, role, kind):
    """A symlink, fifo or device missing here is looked for in DIR
    (generator.c try_dests_non): an identical one is compared (not made),
    hard-linked, or copied without a line; one with another target is
    made and itemized against it ("cLc.t......").  pysync made them all
    as new ("cL+++++++++")."""
    got, dsts = _run_both(tmp_path, role, kind, _others)
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0
    assert "same" not in " ".join(got["pysync"][1])
    assert compare_trees(*dsts) == []


def _existing(src, dst, ref):
    for root in (src, dst, ref):
        put(root, "same", b"identical everywhere\n", OLD)
    put(src, "changed", b"the new data\n", OLD)
    put(ref, "changed", b"the new data\n", OLD)
    put(dst, "changed", b"old data here\n", OLD - 100)
    for root in (src, dst, ref):
        fix_dirs(root, OLD)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ROLES)
def test_existing_files_identical_in_dir_as_rsync(tmp_path, role, kind):
    """A file that exists here, and whose copy in DIR is identical to the
    source's, is removed with --compare-dest and replaced by a hard link
    to the copy with --link-dest (try_dests_reg, find_exact_for_existing);
    --copy-dest leaves it to the usual update.  pysync kept (or rewrote)
    it."""
    got, dsts = _run_both(tmp_path, role, kind, _existing)
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0
    names = got["pysync"][2]
    assert {"compare": {}, "link": {"same": 2, "changed": 2},
            "copy": {"same": 1, "changed": 1}}[kind] == names
    assert compare_trees(*dsts) == []


def _group(refs, here=()):
    """A hard-link group a, b, c (c is the member that gets the data);
    ``refs`` are its members with an identical copy in DIR, ``here`` the
    ones that already exist, identical, in the destination."""
    def build(src, dst, ref):
        for root in (src, dst, ref):
            root.mkdir(parents=True, exist_ok=True)
        put(src, "a", b"one inode, three names\n", OLD)
        os.link(src / "a", src / "b")
        os.link(src / "a", src / "c")
        for n in refs:
            put(ref, n, b"one inode, three names\n", OLD)
        for n in here:
            put(dst, n, b"one inode, three names\n", OLD)
        for root in (src, dst, ref):
            fix_dirs(root, OLD)
    return build


@pytest.mark.parametrize("case", ["leader", "all", "first", "first-here"])
@pytest.mark.parametrize("role", ROLES)
def test_hlink_group_compared_as_rsync(tmp_path, role, case):
    """-H --compare-dest: a group whose member that gets the data is
    identical in DIR is left out; rsync links nothing to it and exits 0
    (the members before it wait for it in vain), and a member that is
    already here and identical in DIR is removed.  pysync linked the
    others to the missing file and exited 23 (interop/fuzz.py seed 4
    case 112).  A match for an earlier member only changes nothing."""
    refs, here = {"leader": ("c",), "all": ("a", "b", "c"), "first": ("a",),
                  "first-here": ("a", "c")}[case], ("a",) if case == "first-here" else ()
    got, dsts = _run_both(tmp_path, role, "compare", _group(refs, here), ("-aiH",))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0
    assert got["pysync"][2] == ({"a": 3, "b": 3, "c": 3} if case == "first" else {})
    assert compare_trees(*dsts) == []


def _group_modes(refs, modes):
    """As _group, with the DIR copies of ``modes`` given another mode."""
    base = _group(refs)

    def build(src, dst, ref):
        base(src, dst, ref)
        for n in modes:
            os.chmod(ref / n, 0o600)
    return build


@pytest.mark.parametrize("case", ["first", "all", "second-mode", "first-second-mode"])
@pytest.mark.parametrize("kind", ["link", "copy"])
@pytest.mark.parametrize("role", ROLES)
def test_hlink_group_from_dir_as_rsync(tmp_path, role, kind, case):
    """-H --link-dest/--copy-dest: the first member missing here whose
    copy in DIR has the same data is linked or copied from it and leads
    the group (the others are linked to it); a follower after it is
    itemized against its own copy in DIR ("hf" with the attributes that
    differ, nothing with --link-dest when that copy is the same inode).
    pysync transferred the last member and linked the others to it as
    new ones."""
    refs, modes = {"first": (("a",), ()), "all": (("a", "b", "c"), ()),
                   "second-mode": (("b",), ("b",)),
                   "first-second-mode": (("a", "b"), ("b",))}[case]
    build = _group(refs) if not modes else _group_modes(refs, modes)
    if case == "all":
        def build(src, dst, ref, _b=_group(())):
            _b(src, dst, ref)
            for n in ("a", "b", "c"):
                (ref / n).unlink(missing_ok=True)
            put(ref, "a", b"one inode, three names\n", OLD)
            os.link(ref / "a", ref / "b")
            os.link(ref / "a", ref / "c")
            fix_dirs(ref, OLD)
    got, dsts = _run_both(tmp_path, role, kind, build, ("-aiH",))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0
    assert compare_trees(*dsts) == []


def _copied(src, dst, ref):
    dst.mkdir(parents=True)
    for root in (src, ref):
        put(root, "same", b"identical in DIR\n", OLD)
        put(root, "a/empty", b"", OLD)
        fix_dirs(root, OLD)


@pytest.mark.parametrize("opts", [("-rlgi",), ("-rpoi",), ("-rlgii",), ("-rti",), ("-rtii",),
                                  ("-rloDic",)])
@pytest.mark.parametrize("role", ROLES)
def test_copy_dest_identical_itemized_as_rsync(tmp_path, role, opts):
    """--copy-dest, a file identical in DIR: copied here and itemized as a
    local change (try_dests_reg's copy): "cf..T......" without -t (its time
    is now's), nothing with -t but for -ii ("cf          ").  pysync printed
    nothing (interop/fuzz.py seed 3 case 392, seed 4 case 743, seed 5
    case 877)."""
    got, dsts = _run_both(tmp_path, role, "copy", _copied, opts)
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0
    assert any(ln.startswith("cf") for ln in got["pysync"][1]) == \
        ("t" not in opts[0] or "ii" in opts[0])
    assert compare_trees(*dsts, times="t" in opts[0], dir_times=False) == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ROLES)
def test_identical_in_dir_with_ii_as_rsync(tmp_path, role, kind):
    """-ii: a file identical in DIR is itemized compared (".f          "),
    linked ("hf          ") or copied ("cf          "), and a new
    directory matching its copy there as "cd          " (try_dests_non)."""
    got, dsts = _run_both(tmp_path, role, kind, _copied, ("-rtii",))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0
    assert "cd          a/" in got["pysync"][1]
    assert compare_trees(*dsts, dir_times=False) == []


def _alt_xattrs(src, dst, ref):
    dst.mkdir(parents=True)
    for root, stamp in ((src, OLD + 100), (ref, OLD)):
        put(root, "same-x", b"new data here\n" if root == src else b"old data\n", stamp)
        os.setxattr(root / "same-x", "user.k", b"one value")
        put(root, "other-x", b"new data here\n" if root == src else b"old data\n", stamp)
        os.setxattr(root / "other-x", "user.k", b"src" if root == src else b"ref")
        for n in ("same-x", "other-x"):
            os.utime(root / n, (stamp, stamp))
        fix_dirs(root, OLD)


@pytest.mark.parametrize("opts", [("-rlgi", "-X"), ("-ai", "-X", "-A")])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ROLES)
def test_xattrs_itemized_against_dir_basis_as_rsync(tmp_path, role, kind, opts):
    """A file sent with its copy in DIR as the basis has its xattrs (and
    ACL) itemized against that copy's, as rsync's itemize(fnamecmp) does:
    no "x" when they are the same.  pysync compared with the missing file
    (interop/fuzz.py seed 13 case 335 with --small)."""
    got, dsts = _run_both(tmp_path, role, kind, _alt_xattrs, opts)
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0
    assert any(ln.endswith("x other-x") for ln in got["pysync"][1])
    assert not any(ln.endswith("x same-x") for ln in got["pysync"][1])
    assert compare_trees(*dsts, times="-ai" in opts, dir_times=False) == []
    for n in ("same-x", "other-x"):
        assert [os.getxattr(d / n, "user.k") for d in dsts] == [b"one value" if n == "same-x" else b"src"] * 2


def _dry_missing(src, dst, ref):
    for root in (src, ref):
        put(root, "same", b"identical in DIR\n", OLD)
        put(root, "sub/same too", b"identical as well\n", OLD)
    put(src, "changed", b"new data\n", OLD + 5)
    put(ref, "changed", b"old data\n", OLD)
    put(src, "only here", b"new\n", OLD)
    fix_dirs(src, OLD)
    fix_dirs(ref, OLD)


@pytest.mark.parametrize("opts", [["-ani"], ["-aniX"]])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ROLES)
def test_dry_run_into_missing_dest_looks_in_dir(tmp_path, role, kind, opts):
    """-n into a destination that does not exist yet still compares with
    DIR: what is identical there is not listed (nor the root), the rest
    is.  pysync left DIR out and listed everything (interop/fuzz.py seed
    13 case 273 with --small)."""
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        _dry_missing(top / "src", top / "dst", top / "ref")
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, opts + [f"--{kind}-dest={top}/ref"] + extra,
                                           [f"{top}/src/"], top / "dst"),
                           capture_output=True, timeout=60)
        out = [ln.replace(str(top), "{TOP}") for ln in lines(r.stdout)]
        got[tool] = (r.returncode, sorted(out), os.path.exists(top / "dst"))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0 and not got["pysync"][2]
    assert not any(ln.endswith(" same") for ln in got["pysync"][1])


def _dir_xattrs(src, dst, ref):
    dst.mkdir(parents=True)
    for root in (src, ref):
        for n in ("same-x", "other-x"):
            (root / n).mkdir(parents=True)
            put(root, f"{n}/f", b"in it\n", OLD)
        os.setxattr(root / "same-x", "user.k", b"one value")
        os.setxattr(root / "other-x", "user.k", b"src" if root == src else b"ref")
        fix_dirs(root, OLD)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ROLES)
def test_new_dir_xattrs_against_dir_as_rsync(tmp_path, role, kind):
    """-X, a directory made here whose copy in DIR exists: itemized
    against that copy's xattrs (no line when they are the same) and given
    them (generator.c copies them from it), then the sender's.  pysync
    compared with the new, bare directory ("cd........x")."""
    got, dsts = _run_both(tmp_path, role, kind, _dir_xattrs, ("-aiX",))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0
    assert not any("same-x" in ln for ln in got["pysync"][1])
    for n, want in (("same-x", b"one value"), ("other-x", b"src")):
        assert [os.getxattr(d / n, "user.k") for d in dsts] == [want, want]
    assert compare_trees(*dsts) == []
