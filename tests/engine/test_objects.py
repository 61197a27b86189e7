"""What stands in the way of an entry of another type (engine/objects.py
remove_in_way), pysync against stock rsync on the same trees, locally and
over the fake remote shell: same tree, same stdout and stderr lines, same
exit code.  Cases found by interop/fuzz.py."""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers.roles import ROLES, fix_dirs, lines, put, sources_command
from helpers.trees import compare_trees

OLD = 1_600_000_000


def _run_both(tmp_path, role, opts, build):
    got, dsts = {}, []
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        build(src, dst)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, opts + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), sorted(lines(r.stderr)))
        dsts.append(dst)
    return got, dsts


def _dir_in_the_way(src, dst):
    put(src, "deep", b"a file where the receiver has a directory\n", OLD)
    put(dst, "deep/inner", b"keeps the directory non-empty\n", OLD)
    fix_dirs(src, OLD)
    fix_dirs(dst, OLD)


@pytest.mark.parametrize("role", ROLES)
def test_non_empty_dir_in_the_way_as_rsync(tmp_path, role):
    """Without --delete/--force a non-empty directory stays: rsync says
    "cannot delete non-empty directory" as information (stdout) and "could
    not make way for new regular file" as the error (stderr), exit 23."""
    got, dsts = _run_both(tmp_path, role, ["-rti"], _dir_in_the_way)
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 23
    assert "cannot delete non-empty directory: deep" in got["pysync"][1]
    assert "could not make way for new regular file: deep" in got["pysync"][2]
    assert compare_trees(*dsts) == []


def _untimed(src, dst):
    put(src, "f", b"new, longer content\n", OLD)
    put(dst, "f", b"old\n", OLD)
    put(src, "same-size", b"new!\n", OLD)
    put(dst, "same-size", b"old!\n", OLD + 50)
    os.symlink("f", src / "l")
    os.symlink("elsewhere", dst / "l")
    put(src, "h1", b"linked\n", OLD)
    os.link(src / "h1", src / "h2")
    put(dst, "h1", b"linked\n", OLD)
    put(dst, "h2", b"linked\n", OLD)
    fix_dirs(src, OLD)
    fix_dirs(dst, OLD)


@pytest.mark.parametrize("role", ROLES)
def test_untimed_updates_report_T_as_rsync(tmp_path, role):
    """Without -t a file that is sent again, a symlink that is replaced and
    a hard link that is relinked get the time of now: rsync itemizes a "T"
    for each (">f.sT......", "cLc.T......", "hf..T......")."""
    got, dsts = _run_both(tmp_path, role, ["-rlpHi"], _untimed)
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0
    assert {"f.sT...... f", "f..T...... same-size", "Lc.T...... l -> f",
            "f..T...... h2 => h1"} <= {ln[1:] for ln in got["pysync"][1]}
    assert compare_trees(*dsts, times=False) == []


def _dirs_in_compare_dest(top):
    def build(src, dst):
        ref = src.parent / "ref"
        for root in (src, ref):
            (root / "same").mkdir(parents=True)
            (root / "group").mkdir()
        os.chown(ref / "group", 0, 1234)
        fix_dirs(src, OLD)
        fix_dirs(ref, OLD)
    return build


@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_new_dirs_against_compare_dest_as_rsync(tmp_path, role):
    """A directory the run creates is compared with its --compare-dest
    copy: not itemized when that copy's attributes are the same (the
    destination root included), "cd.....g..." when its group differs."""
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        _dirs_in_compare_dest(top)(top / "src", top / "dst")
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-ai", f"--compare-dest={top}/ref"] + extra,
                                           [f"{top}/src/"], top / "dst"),
                           capture_output=True, timeout=60)
        out = lines(r.stdout.replace(str(top).encode(), b"TOP"))
        got[tool] = (r.returncode, sorted(out), sorted(lines(r.stderr)))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0
    assert [ln for ln in got["pysync"][1] if not ln.startswith("created")] == ["cd.....g... group/"]


def _odd_names(src, dst):
    src.mkdir(parents=True)
    dst.mkdir()
    os.mkfifo(os.path.join(os.fsencode(src), b"fifo\xff\nname"))
    put(src, "f", b"x\n", OLD)
    fix_dirs(src, OLD)


@pytest.mark.parametrize("role", ROLES)
def test_server_messages_escaped_once(tmp_path, role):
    """A name in a server's message ("skipping non-regular file" from a
    receiving server) reaches the client raw and is escaped there once, as
    rsync does: "fifo\\#377\\#012name", not "fifo\\#134#377...".  Found by
    interop/fuzz.py."""
    got, dsts = _run_both(tmp_path, role, ["-rti"], _odd_names)
    assert got["pysync"] == got["rsync"]
    assert 'skipping non-regular file "fifo\\#377\\#012name"' in got["pysync"][1]


@pytest.mark.parametrize("opts", [["-rtin"], ["-rtin", "--delete"], ["-rtin", "--force"]],
                         ids=["plain", "delete", "force"])
@pytest.mark.parametrize("role", ROLES)
def test_dir_in_the_way_dry_run_as_rsync(tmp_path, role, opts):
    """-n says what the real run would: a non-empty directory in the way
    of a file stays with rsync's error (exit 23), and with --delete or
    --force its contents are listed as deleted.  Found by interop/fuzz.py:
    pysync's dry run said nothing and exited 0."""
    got, dsts = _run_both(tmp_path, role, opts, _dir_in_the_way)
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == (23 if opts == ["-rtin"] else 0)
    assert compare_trees(*dsts) == []


def _backup_dir_odd_name(src, dst):
    src.mkdir(parents=True)
    put(src, "f", b"x\n", OLD)
    odd = os.path.join(os.fsencode(dst), b"gone\xe0")
    os.makedirs(odd)
    with open(os.path.join(odd, b"inner"), "wb") as f:
        f.write(b"kept as a backup\n")
    fix_dirs(src, OLD)
    fix_dirs(dst, OLD)


@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_deletion_messages_escaped_once(tmp_path, role):
    """The same for the deletion's messages ('cannot delete non-empty
    directory' of a directory whose files were backed up beside them)."""
    got, dsts = _run_both(tmp_path, role, ["-rti", "-b", "--delete"], _backup_dir_odd_name)
    assert got["pysync"] == got["rsync"]
    assert "cannot delete non-empty directory: gone\\#340" in got["pysync"][1]
