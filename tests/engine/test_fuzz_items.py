"""Findings of interop/fuzz.py about itemized lines and the update rules,
each a small tree run by pysync and by stock rsync (--no-i-r, the mode
pysync's list is always in), locally and over a remote shell in both
directions: same exit code, same sorted -i lines, same resulting tree.

-H: which member of a hard-link group gets the data, and how its other
members are itemized, when a run is dry (-n), a member is skipped
(--ignore-existing, --existing, -u) or a missing member has a basis to
start from (a --*-dest copy, a --partial-dir file, a -y similar file):
rsync's hlink.c hard_link_check and generator.c handle_skipped_hlink and
recv_generator."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers.roles import lines, sources_command
from tests.helpers.trees import compare_trees

OLD = 1_500_000_000
ROLES = ["local", "push-rsync2pysync", "pull-pysync2rsync"]


def _file(root, name, data, mtime, mode=0o644):
    p = root / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.chmod(p, mode)
    os.utime(p, (mtime, mtime))


def _group(root, names, data, mtime, mode=0o644):
    """A file and hard links to it under the other names."""
    _file(root, names[0], data, mtime, mode)
    for n in names[1:]:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        os.link(root / names[0], root / n)


def _dirs(root, mtime=OLD):
    for d, _, _ in sorted(os.walk(root), reverse=True):
        os.utime(d, (mtime, mtime))


# Each scenario: (src, dst) -> None.  The source group is a, b (or x, y, z).

def linked_same(src, dst):
    """Both sides hold the group, identical and linked (seed 5 case 764)."""
    for root in (src, dst):
        _group(root, ["a", "b"], b"data\n", OLD)


def linked_other_mode(src, dst):
    """Linked on both sides, another mode here (seed 4 case 33, 5 case 926)."""
    _group(src, ["a", "b"], b"data\n", OLD)
    _group(dst, ["a", "b"], b"data\n", OLD, 0o600)


def linked_old_data(src, dst):
    """Linked on both sides, older data here: the leader is sent."""
    _group(src, ["a", "b"], b"new data\n", OLD + 100)
    _group(dst, ["a", "b"], b"data\n", OLD)


def unlinked_copy(src, dst):
    """The follower here is a separate copy with the same data."""
    _group(src, ["a", "b"], b"data\n", OLD)
    _file(dst, "a", b"data\n", OLD)
    _file(dst, "b", b"data\n", OLD)


def only_last_here(src, dst):
    """Only the last member is here (seed 5 case 155): skipped by
    --ignore-existing, it leaves the group to the one before it."""
    _group(src, ["a/b", "n"], b"data\n", OLD)
    _file(dst, "n", b"data\n", OLD)


def first_newer_here(src, dst):
    """The first member is here and newer (seed 5 case 686): -u skips it
    and the next member leads."""
    _group(src, ["a", "b"], b"data\n", OLD)
    _file(dst, "a", b"other\n", OLD + 100)


def follower_newer_here(src, dst):
    """The leader is older here and sent; a follower is newer here: it is
    linked to the leader all the same (hard_link_check comes before -u)."""
    _group(src, ["a", "b"], b"data\n", OLD)
    _file(dst, "a", b"other\n", OLD - 100)
    _file(dst, "b", b"other two\n", OLD + 100)


def mixed_three(src, dst):
    """x newer here (skipped by -u), y older (leads), z newer (linked)."""
    _group(src, ["x", "y", "z"], b"data\n", OLD)
    _file(dst, "x", b"newer\n", OLD + 50)
    _file(dst, "y", b"old\n", OLD - 50)
    _file(dst, "z", b"newer\n", OLD + 50)


def first_only_here(src, dst):
    """x here with other data, y and z missing."""
    _group(src, ["x", "y", "z"], b"data\n", OLD)
    _file(dst, "x", b"old\n", OLD - 5)


def copy_in_dir(src, dst):
    """Only the first member has a copy in a --*-dest DIR, with other
    data: it leads, built from that copy (seed 13 case 260's kind)."""
    _group(src, ["a", "b"], b"data data data\n" * 50, OLD)
    ref = src.parent / "ref"
    _file(ref, "a", b"other data data\n" * 50, OLD - 10)
    _dirs(ref)


def similar_here(src, dst):
    """A similar file here for -y: the first member leads with it as its
    basis (seed 13 case 260)."""
    _group(src, ["a", "b"], b"data data data\n" * 50, OLD)
    _file(dst, "a.old", b"data data data\n" * 49, OLD - 10)


def partial_here(src, dst):
    """A --partial-dir file of the first member: it leads."""
    _group(src, ["a", "b"], b"data data data\n" * 50, OLD)
    _file(dst, ".part/a", b"data data data\n" * 20, OLD - 10)


CASES = [
    (linked_same, ["-aHin"]),
    (linked_other_mode, ["-aHin"]),
    (linked_old_data, ["-aHin"]),
    (unlinked_copy, ["-aHin"]),
    (only_last_here, ["-aHi", "--ignore-existing"]),
    (only_last_here, ["-aHin", "--ignore-existing"]),
    (first_newer_here, ["-aHiu"]),
    (first_newer_here, ["-aHiun"]),
    (follower_newer_here, ["-aHiu"]),
    (mixed_three, ["-aHiu"]),
    (mixed_three, ["-aHi", "--ignore-existing"]),
    (first_only_here, ["-aHi", "--ignore-existing"]),
    (first_only_here, ["-aHi", "--existing"]),
    (copy_in_dir, ["-aHi", "--copy-dest=../ref"]),
    (copy_in_dir, ["-aHi", "--link-dest=../ref"]),
    (copy_in_dir, ["-aHi", "--compare-dest=../ref"]),
    (similar_here, ["-aHiy"]),
    (similar_here, ["-aHiy", "--no-W"]),
    (similar_here, ["-aHiyn"]),
    (partial_here, ["-aHi", "--partial-dir=.part"]),
]


def _run_both(tmp_path, role, scenario, opts):
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        src.mkdir(parents=True)
        dst.mkdir(parents=True)
        scenario(src, dst)
        _dirs(src)
        _dirs(dst)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, opts + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=120)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), r.stderr, dst)
    return got


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("scenario,opts", CASES,
                         ids=[f"{s.__name__}{''.join(o)}" for s, o in CASES])
def test_hlink_group_items_as_rsync(tmp_path, role, scenario, opts):
    got = _run_both(tmp_path, role, scenario, opts)
    rs, py = got["rsync"], got["pysync"]
    assert rs[0] == 0, rs[2]
    assert py[:2] == rs[:2], py[2]
    assert compare_trees(rs[3], py[3]) == []


def _xattrs(path):
    return {k: os.getxattr(path, k, follow_symlinks=False) for k in sorted(os.listxattr(path))}


def _xattr_tree(root, mtime, value):
    _file(root, "a", b"data\n", mtime)
    (root / "sub").mkdir(exist_ok=True)
    for name in ("a", "sub"):
        os.setxattr(root / name, "user.k", b"short")
        os.setxattr(root / name, "user.long", value * 100)
    os.utime(root / "sub", (mtime, mtime))


@pytest.mark.parametrize("kind", ["copy", "compare", "link"])
@pytest.mark.parametrize("same", [True, False], ids=["same-xattrs", "other-xattrs"])
@pytest.mark.parametrize("role", ROLES)
def test_new_entry_itemized_against_dest_dir_xattrs_as_rsync(tmp_path, role, same, kind):
    """A file and a directory missing here whose --*-dest copy differs in
    time only: the 'x' column compares the sender's xattrs with that
    copy's (generator.c itemizes fnamecmp), and the new entries get the
    sender's set, long values included.  pysync compared them with the
    missing entry here: '>f..t.....x' (interop/fuzz.py seed 5 case 656)."""
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.pysync.probe", b"1")
    except OSError as e:
        pytest.skip(f"no user xattrs on {tmp_path}: {e}")
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst, ref = (tmp_path / tool / n for n in ("src", "dst", "ref"))
        dst.mkdir(parents=True)
        _xattr_tree(src, OLD + 100, b"L")
        _xattr_tree(ref, OLD, b"L" if same else b"M")
        for root in (src, dst, ref):
            os.utime(root, (OLD, OLD))
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-aXi", f"--{kind}-dest={ref}"] + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=120)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), _xattrs(dst / "a"), _xattrs(dst / "sub"))
        assert compare_trees(src, dst) == [], tool
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][2] == got["pysync"][3] == {"user.k": b"short", "user.long": b"L" * 100}


@pytest.mark.parametrize("opts", [["-ai", "--append-verify", "-c"], ["-ai", "--append-verify"]],
                         ids=["checksum", "plain"])
@pytest.mark.parametrize("role", ROLES)
def test_redo_line_as_rsync(tmp_path, role, opts):
    """--append-verify onto a shorter file that is not the source's start:
    the whole-file check fails, the file is sent again, and the second
    line has no 'c' with -c (rsync's redo phase turns --checksum off);
    pysync printed '>fc.t......' (interop/fuzz.py seed 4 case 562)."""
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        _file(src, "d.log", bytes(range(256)) * 400, OLD + 100)
        _file(dst, "d.log", b"not the start" * 3000, OLD)
        _dirs(src)
        _dirs(dst)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, opts + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=120)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), r.stderr.count(b"failed verification"))
        assert compare_trees(src, dst) == [], tool
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][2] == 1 and len(got["pysync"][1]) == 2


@pytest.mark.parametrize("window", ["0", "1", "2", "-1"])
@pytest.mark.parametrize("role", ROLES)
def test_update_with_modify_window_as_rsync(tmp_path, role, window):
    """-u --modify-window=N: a file here is kept when the source's time
    minus its own (in seconds) is below N (generator.c), so with N > 0 a
    file as old as the source's, or up to N-1 s older, is kept too; with
    -1 only one newer by 2 s or more.  Files here: other data, the
    source's time plus -3 to +3 s."""
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        for delta in range(-3, 4):
            _file(src, f"f{delta}", b"data\n", OLD)
            _file(dst, f"f{delta}", b"other data\n", OLD + delta)
        _dirs(src)
        _dirs(dst)
        extra = ["--no-i-r"] if tool == "rsync" else []
        opts = ["-aiu", f"--modify-window={window}"]
        r = subprocess.run(sources_command(tool, role, opts + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=120)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), dst)
    assert got["pysync"][:2] == got["rsync"][:2]
    assert compare_trees(got["rsync"][2], got["pysync"][2]) == []


def _fuzz_module():
    import importlib.util
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("pysync_fuzz_items", repo / "interop" / "fuzz.py")
    fuzz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz)
    return fuzz


def test_fuzz_allows_update_backing_up_other_type(tmp_path):
    """interop/fuzz.py seed 14 case 51: -u -b and a newer symlink where
    the source has a file: rsync 3.2.7 keeps it, pysync (as later rsync)
    replaces it and so backs it up; the backup is allowed with the rest."""
    fuzz = _fuzz_module()
    case = fuzz.gen_case(14, 51, small=True)
    diffs, runs = fuzz.run_case(case, timeout=60, keep=tmp_path)
    assert any(k.startswith(b"z") for k in runs["pysync"]["bak"]) and diffs == []
    assert fuzz._backup_suffix(["-b"]) == b"~" and fuzz._backup_suffix(["-a"]) is None
    assert fuzz._backup_suffix(["--backup-dir=x"]) == b""


def test_fuzz_allows_update_dry_run_over_dir(tmp_path):
    """interop/fuzz.py seed 15 case 64: -u -n --delete-after and a newer
    directory where the source has a file: pysync (as later rsync) lists
    its contents as deleted and the file as new; rsync 3.2.7 skips it."""
    fuzz = _fuzz_module()
    case = fuzz.gen_case(15, 64, small=True)
    diffs, runs = fuzz.run_case(case, timeout=60, keep=tmp_path)
    assert any(ln.startswith("*deleting") for ln in runs["pysync"]["lines"]) and diffs == []


def test_fuzz_allows_update_keeping_full_dir(tmp_path):
    """interop/fuzz.py seed 4 case 81: -u and a newer non-empty directory
    where the source has a file.  rsync 3.2.7 skips it with exit 0 (its
    generator compares the times whatever the types, against its own
    manual; fixed upstream in 3.4.4); pysync, as later rsync, tries to
    replace it and exits 23.  The fuzzer allows exactly those lines: the
    same runs with one more error of pysync's still differ."""
    import copy
    fuzz = _fuzz_module()
    case = fuzz.gen_case(4, 81, small=False)
    diffs, runs = fuzz.run_case(case, timeout=60, keep=tmp_path)
    a, b = runs["rsync"], runs["pysync"]
    assert (a["rc"], b["rc"]) == (0, 23) and diffs == []
    b2 = copy.deepcopy(b)
    b2["stderr"] += b"rsync: [generator] something else failed\n"
    assert fuzz.compare(case, a, b2) == ["exit code rsync=0 pysync=23"]
    case2 = dict(case, opts=[o for o in case["opts"] if o != "-u"])
    assert "exit code rsync=0 pysync=23" in fuzz.compare(case2, a, b)


@pytest.mark.parametrize("where", ["absolute", "relative"])
@pytest.mark.parametrize("kind", ["compare", "link", "copy"])
@pytest.mark.parametrize("role", ROLES)
def test_dry_run_into_missing_dest_with_dest_dir_as_rsync(tmp_path, role, kind, where):
    """-n into a destination that does not exist yet, with --*-dest: the
    entries are still compared with their copies in DIR (a relative DIR
    taken by name from the destination's), so identical ones are not
    listed and a changed one is itemized against its copy ('>f.st'); pysync
    listed everything as new (interop/fuzz.py seed 13 case 273)."""
    got = {}
    for tool in ("rsync", "pysync"):
        src, ref, dst = (tmp_path / tool / n for n in ("src", "ref", "dst"))
        for root in (src, ref):
            _file(root, "same", b"same\n", OLD)
            _file(root, "d/x", b"x\n", OLD)
        _file(src, "changed", b"new data\n", OLD + 5)
        _file(ref, "changed", b"old\n", OLD)
        _file(src, "new", b"new\n", OLD)
        _dirs(src)
        _dirs(ref)
        arg = str(ref) if where == "absolute" else "../ref"
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-ain", f"--{kind}-dest={arg}"] + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=120)
        got[tool] = (r.returncode, sorted(ln for ln in lines(r.stdout)
                                          if not ln.startswith("created directory")), dst.exists())
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0 and len(got["pysync"][1]) == 2 and not got["pysync"][2]


@pytest.mark.parametrize("opts", [["-aHi"], ["-aHi", "--force"], ["-aHib"]], ids=["plain", "force", "backup"])
@pytest.mark.parametrize("kind", ["full-dir", "empty-dir", "symlink"])
@pytest.mark.parametrize("role", ROLES)
def test_follower_before_leader_in_the_way_as_rsync(tmp_path, role, kind, opts):
    """A follower listed before its leader, where a directory or a symlink
    is here: rsync's generator removes it when it meets the follower, and
    a non-empty directory that cannot go is reported then and again when
    the link is tried (twice 'cannot delete non-empty directory', exit
    23); pysync tried once (interop/fuzz.py seed 13 case 140)."""
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        _group(src, ["d.log", "z"], b"data\n", OLD)
        dst.mkdir(parents=True)
        if kind == "symlink":
            os.symlink("nowhere", dst / "d.log")
        else:
            (dst / "d.log").mkdir()
            if kind == "full-dir":
                _file(dst, "d.log/inner", b"x\n", OLD)
        _dirs(src)
        _dirs(dst)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, opts + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=120)
        err = sorted(ln for ln in r.stderr.decode().splitlines() if not ln.startswith("rsync error"))
        got[tool] = (r.returncode, lines(r.stdout).count("cannot delete non-empty directory: d.log"),
                     sorted(lines(r.stdout)), err, dst)
    assert got["pysync"][:4] == got["rsync"][:4]
    # (-b: the backup made in it leaves the directory's time "now", on both sides)
    assert compare_trees(got["rsync"][4], got["pysync"][4], dir_times=False) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="changes owners: needs root")
@pytest.mark.parametrize("opts", [["-ai"], ["-rlptgDi"], ["-rlgoDi"], ["-ain"]],
                         ids=["a", "no-o", "no-p", "dry"])
@pytest.mark.parametrize("role", ROLES)
def test_up_to_date_file_with_set_id_bits_changing_owner_as_rsync(tmp_path, role, opts):
    """Up-to-date files here with another owner and group: rsync itemizes
    them after changing those, and for one with a set-user-ID or
    set-group-ID bit after the stat it takes again (the chown cleared the
    bits): '.f...p.....' for 02750, 04755 and 06755, no line for 02640,
    '.f....og...' for 0755 (interop/fuzz.py seed 13 case 298)."""
    modes = {"sgid": 0o2750, "suid": 0o4755, "both": 0o6755, "sgid-nox": 0o2640, "plain": 0o755}
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        for name, mode in modes.items():
            _file(src, name, b"data\n", OLD, mode)
            _file(dst, name, b"data\n", OLD, mode)
            os.chown(dst / name, 1, 1)
            os.chmod(dst / name, mode)
        _dirs(src)
        _dirs(dst)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, opts + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=120)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), dst)
    assert got["pysync"][:2] == got["rsync"][:2]
    assert compare_trees(got["rsync"][2], got["pysync"][2]) == []


@pytest.mark.parametrize("kind", ["dir", "symlink"])
def test_fuzz_allows_dry_run_follower_unset_stat(tmp_path, kind):
    """-n -H, a follower before its new leader and a directory or symlink
    at its name: rsync 3.2.7 itemizes it against a stale stat buffer
    ('hf..tp..... deep', no leader); pysync says what a real run does.
    The fuzzer allows that pair of lines only."""
    fuzz = _fuzz_module()
    base = {"kind": "dir", "mode": 0o755, "mtime": OLD * 10**9}
    data = {"seed": 5, "size": 12, "sparse": False, "edits": []}
    other = {"kind": "symlink", "mtime": OLD * 10**9, "target": b"../elsewhere"} if kind == "symlink" \
        else dict(base)
    case = {"src": {b".": base, b"deep": {"kind": "file", "mtime": OLD * 10**9, "mode": 0o644,
                                           "data": data},
                    b"z": {"kind": "hlink", "mtime": OLD * 10**9, "to": b"deep"}},
            "dst": {b".": base, b"deep": other}, "ref": None,
            "opts": ["-aHin"], "role": "local"}
    diffs, runs = fuzz.run_case(case, timeout=60, keep=tmp_path / "n")
    assert any(ln.startswith("hf+++++++++ deep => z") for ln in runs["pysync"]["lines"])
    assert diffs == []
    real = dict(case, opts=["-aHi"])          # not a dry run: no allowance needed
    assert fuzz.run_case(real, timeout=60, keep=tmp_path / "real")[0] == []
