"""Deletion findings of interop/fuzz.py, pysync against stock rsync on the
same trees, locally and over the fake remote shell: what --max-delete
counts inside a directory being deleted (each entry, then the directory,
a subdirectory that kept something included), the directory removed to
make room for an entry of another type (its contents are counted and
limited, it is not), and -b beside files in such a directory."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from helpers.roles import lines, sources_command

OLD = 1_500_000_000
ROLES3 = ["local", "push-rsync2pysync", "pull-pysync2rsync"]


def _state(root):
    """Name -> (type, mode, size, symlink target, file mtime) under root;
    directory times are left out (a deletion inside one sets it to now)."""
    out = {}
    for d, ds, fs in os.walk(root):
        for n in ds + fs:
            p = os.path.join(d, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size,
                        os.readlink(p) if stat.S_ISLNK(st.st_mode) else None,
                        None if stat.S_ISDIR(st.st_mode) else st.st_mtime_ns)
    return out


def _write(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (OLD, OLD))


def _both(tmp_path, role, opts, build):
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        src.mkdir(parents=True)
        dst.mkdir(parents=True)
        build(src, dst)
        for root in (src, dst):     # (their times as built would differ by chance)
            os.utime(root, (OLD, OLD))
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, opts + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), _state(dst))
    assert got["pysync"] == got["rsync"]
    return got["pysync"]


def _nested(src, dst):
    """An extraneous directory with a subdirectory: d/s/p, d/s/q, d/f."""
    _write(dst / "d" / "s" / "p")
    _write(dst / "d" / "s" / "q")
    _write(dst / "d" / "f")


@pytest.mark.parametrize("opts", [["--max-delete=1"], ["--max-delete=2"], ["--max-delete=0"],
                                  ["--filter=P p"], ["--filter=P p", "-n"],
                                  ["--filter=P p", "--max-delete=2"], ["--delete-delay"]])
@pytest.mark.parametrize("role", ROLES3)
def test_limit_and_kept_entries_in_a_deleted_directory_as_rsync(tmp_path, role, opts):
    """A subdirectory that kept something is still tried after its contents:
    at the limit it is one more skipped, else "cannot delete non-empty
    directory" twice, and a dry run reports it deleted (interop/fuzz.py
    seed 6 cases 150 and 274, seed 5 case 299)."""
    rc, out, _ = _both(tmp_path, role, ["-ri", "--delete"] + opts, _nested)
    assert "cannot delete non-empty directory: d" in out or "--delete-delay" in opts


def _dir_in_way(src, dst):
    """A directory here where the source has a symlink (and a file)."""
    os.symlink("dangling", src / "x")
    os.utime(src / "x", (OLD, OLD), follow_symlinks=False)
    _write(src / "y", b"new data\n")
    _write(dst / "x" / "c" / "in")
    _write(dst / "x" / "b")
    _write(dst / "y" / "a")


@pytest.mark.parametrize("opts", [["--max-delete=1"], ["--max-delete=2"], ["--max-delete=4"],
                                  ["-b"], ["-b", "--max-delete=3"], ["-n", "--max-delete=1"]])
@pytest.mark.parametrize("role", ROLES3)
def test_directory_in_the_way_under_limit_and_backup_as_rsync(tmp_path, role, opts):
    """Making room counts and limits the directory's contents, not the
    directory; what stays (at the limit, or -b's backups made beside the
    files) ends in "cannot delete non-empty directory" and "could not make
    way", exit 23 (interop/fuzz.py seed 6 case 59, seed 11 case 49)."""
    _both(tmp_path, role, ["-rlti", "--delete"] + opts, _dir_in_way)


@pytest.mark.parametrize("change", ["delete", "replace", "delete-during"])
@pytest.mark.parametrize("role", ROLES3)
def test_backup_dir_takes_the_directorys_new_mode_as_rsync(tmp_path, role, change):
    """A directory whose mode changes takes it before anything in it is
    deleted or replaced, so the --backup-dir directory made for the old
    file copies the new mode (interop/fuzz.py seed 5 case 90)."""
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst, bak = top / "src", top / "dst", top / "bak"
        _write(dst / "a" / "sub" / "f", b"old\n")
        _write(src / "a" / "sub" / "g", b"keep\n")
        _write(dst / "a" / "sub" / "g", b"keep\n")
        if change == "replace":
            _write(src / "a" / "sub" / "f", b"new data\n")
        os.chmod(dst / "a", 0o700)
        os.chmod(src / "a", 0o1777)
        os.chmod(dst / "a" / "sub", 0o750)
        os.chmod(src / "a" / "sub", 0o2775)
        for root in (src, dst):     # directory times as built would differ by chance
            for d in (root / "a" / "sub", root / "a", root):
                os.utime(d, (OLD, OLD))
        mode = "--delete-during" if change == "delete-during" else "--delete-after"
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-ai", "--delete", mode, "-b",
                                                        f"--backup-dir={bak}"] + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), _state(dst), _state(bak))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][3]["a"][1] == 0o1777
