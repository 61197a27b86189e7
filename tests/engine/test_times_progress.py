"""-O/--omit-dir-times, -J/--omit-link-times (and -b implying -O), the
times of symlinks, and what --progress / -P print, each compared with
stock rsync on the same trees in every role."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.helpers.roles import PYSYNC, ROLES, lines, put, role_cases, run

OLD, NEW = 1_500_000_000, 1_600_000_000


def _tree(root):
    put(root, "f", b"data\n", OLD)
    put(root, "d/g", b"more\n", OLD)
    os.symlink("f", root / "l")
    os.utime(root / "l", (OLD, OLD), follow_symlinks=False)
    os.utime(root / "d", (OLD, OLD))
    os.utime(root, (OLD, OLD))


def _times(root):
    return {n: os.lstat(root / n).st_mtime_ns // 10**9 for n in (".", "d", "l", "f")}


@pytest.mark.parametrize("role,opts", role_cases(
    [["-ai"], ["-aiOJ"], ["-aib"], ["-aiO"], ["-aiJ"], ["-aiO", "--no-O"], ["-aiJ", "--omit-dir-times"]]))
def test_omitted_times_as_rsync(tmp_path, role, opts):
    results = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        src.mkdir(parents=True)
        _tree(src)
        shutil.copytree(src, dst, symlinks=True)
        for n in ("d", "l", "."):
            os.utime(dst / n, (OLD, OLD), follow_symlinks=False)
        # The sender's directory, link and root get new times.
        for n in ("d", "l", "."):
            os.utime(src / n, (NEW, NEW), follow_symlinks=False)
        r = run(tool, role, opts, src, dst)
        assert r.returncode == 0, r.stderr
        results[tool] = (sorted(lines(r.stdout)), _times(dst))
    assert results["pysync"] == results["rsync"]
    # The test is not vacuous: with plain -a the new times arrive.
    if opts == ["-ai"]:
        assert results["pysync"][1]["d"] == results["pysync"][1]["l"] == NEW


@pytest.mark.parametrize("role", ROLES)
def test_new_tree_with_omitted_times(tmp_path, role):
    """A new directory or link under -O/-J keeps the time of its making."""
    out = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        src.mkdir(parents=True)
        _tree(src)
        dst.mkdir()
        r = run(tool, role, ["-aOJ"], src, dst)
        assert r.returncode == 0, r.stderr
        t = _times(dst)
        out[tool] = (t["f"], t["d"] != OLD, t["l"] != OLD)
    assert out["pysync"] == out["rsync"] == (OLD, True, True)


_RATE = re.compile(r"^\s*([\d,]+)\s+(\d+)%\s+[\d.]+[kMG]B/s\s+\d+:\d\d:\d\d(.*)$")


def _progress_lines(out: bytes, drop_flist: bool) -> list:
    """Each line as it stays on a terminal (the last \\r segment), with the
    rate and time columns taken out; the file-list count lines dropped
    when the other tool lists incrementally."""
    keep = []
    for line in lines(out):
        if drop_flist and ("to consider" in line or "files..." in line):
            continue
        for part in line.split("\r"):
            m = _RATE.match(part)
            if m is None:
                if part.strip():
                    keep.append(part)
            elif "xfr#" in part:           # a file's final line
                keep.append(f"{m.group(1)} {m.group(2)}%{m.group(3)}")
    return keep


@pytest.mark.parametrize("role,opts", role_cases(
    [["-a", "--progress"], ["-aP"], ["-avP"], ["-aiP"], ["-a", "--progress", "--out-format=%n"],
     ["-a", "--progress", "--delete"]]))
def test_progress_names_as_rsync(tmp_path, role, opts):
    out = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        src.mkdir(parents=True)
        _tree(src)
        dst.mkdir()
        put(dst, "stale", b"x", OLD)
        r = run(tool, role, opts, src, dst, cwd=tmp_path / tool)
        assert r.returncode == 0, r.stderr
        out[tool] = _progress_lines(r.stdout, True)
    if role != "local":
        # Incremental recursion changes rsync's order of lines, not the lines.
        out = {k: sorted(v) for k, v in out.items()}
    assert out["pysync"] == out["rsync"]
    assert any(line == "f" or line.endswith(" f") for line in out["pysync"])


def test_progress_file_list_count_as_rsync(tmp_path):
    """The file-list lines of --progress (rsync without incremental
    recursion, as pysync lists): a running count every 100 entries, then
    "N files to consider"; -v alone says "done"; a single file, nothing."""
    src = tmp_path / "src"
    for i in range(250):
        put(src, f"d/f{i}", b"%d\n" % i, OLD)
    for opts in (["-a", "--progress"], ["-av"], ["-avP"], ["-aq", "--progress"]):
        got = {}
        for tool in ("rsync", "pysync"):
            dst = tmp_path / f"dst-{tool}"
            shutil.rmtree(dst, ignore_errors=True)
            cmd = (["rsync", "--no-i-r"] if tool == "rsync" else PYSYNC) + opts + [f"{src}/", f"{dst}/"]
            r = subprocess.run(cmd, capture_output=True, timeout=60)
            assert r.returncode == 0, r.stderr
            text = r.stdout.decode()
            head = text.split("created directory")[0]
            got[tool] = head
        assert got["pysync"] == got["rsync"], opts
    single = {}
    for tool in ("rsync", "pysync"):
        cmd = (["rsync", "--no-i-r"] if tool == "rsync" else PYSYNC) + ["-v", str(src / "d" / "f1"),
                                                                      str(tmp_path / f"one-{tool}")]
        r = subprocess.run(cmd, capture_output=True, timeout=60)
        single[tool] = r.stdout.decode().splitlines()[0]
    assert single["pysync"] == single["rsync"] == "f1"
