"""--files-from when the sender is remote (the names go on the wire after the
filter list) and with a list on the remote side (--files-from=host:path or
:path, read there; a remote receiver forwards it to a sending client).
Each run by pysync and by stock rsync on the same trees, over the fake
remote shell: same tree, same itemized lines, same exit code."""

import os
import subprocess

import pytest

from helpers.trees import compare_trees
from test_backup_options import FAKE_RSH, PYSYNC, T_NEW, T_OLD, fix_dirs, lines, put


def make_src(root):
    for rel in ("a/b/c/f", "a/b/g", "a/other", "x/y", "x/z/w", "top", "skip", "sp ace/f"):
        put(root, rel, rel.encode() + b"\n", T_NEW)
    os.symlink("top", root / "lnk")
    fix_dirs(root, T_OLD)


def make_dst(root):
    put(root, "x/extra", b"not in the source\n", T_OLD)
    put(root, "x/z/w", b"old\n", T_OLD)
    put(root, "keep", b"outside the list\n", T_OLD)
    fix_dirs(root, T_OLD)


NAMES = ["a/b/c/f", "x", "top", "a/other", "lnk", "sp ace/f"]
CASES = {
    "plain": (["-ai"], NAMES),
    "recursive": (["-ai", "-r"], NAMES),
    "from0": (["-ai", "--from0"], NAMES),
    "stdin": (["-ai"], NAMES),
    "no-relative": (["-ai", "--no-relative"], ["a/b/c/f", "top", "x/y"]),
    "missing": (["-ai"], ["top", "nothere"]),
    "comments": (["-ai"], ["# a comment", "top", "; another"]),
    "crlf": (["-ai"], ["top\r", "", "a/other\r"]),
    "delete-r": (["-ai", "-r", "--delete"], NAMES),
    "delete-dirs": (["-ai", "--delete"], NAMES),
    "verbose": (["-rtv"], NAMES),
}

# (how the list is given, client, server) for the pysync run; the reference
# run is always stock rsync on both sides with the same list.
ROLES = {
    "pull-pysync2rsync": ("forward", "pysync", "rsync"),
    "pull-pysync2pysync": ("forward", "pysync", "pysync"),
    "pull-rsync2pysync": ("forward", "rsync", "pysync"),
    "pull-remotelist-pysync2rsync": ("remote", "pysync", "rsync"),
    "pull-remotelist-rsync2pysync": ("remote", "rsync", "pysync"),
    "push-remotelist-pysync2rsync": ("remote", "pysync", "rsync"),
    "push-remotelist-rsync2pysync": ("remote", "rsync", "pysync"),
}


def _run(client, server, opts, ff, src, dst, push, stdin, cwd):
    cmd = (PYSYNC if client == "pysync" else ["rsync"]) + opts + [f"--files-from={ff}"]
    cmd += ["-e", FAKE_RSH, f"--rsync-path={server}"]
    cmd += [f"{src}/", f"localhost:{dst}/"] if push else [f"localhost:{src}/", f"{dst}/"]
    return subprocess.run(cmd, capture_output=True, timeout=120, input=stdin, cwd=cwd)


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_files_from_remote_matches_rsync(tmp_path, case, role):
    how, client, server = ROLES[role]
    opts, names = CASES[case]
    if case == "stdin" and how == "remote":
        pytest.skip("a remote list cannot be stdin (rsync refuses ':-', tested below)")
    src = tmp_path / "src"
    make_src(src)
    zero = "--from0" in opts
    sep = b"\0" if zero else b"\n"
    listfile = tmp_path / "list"
    listfile.write_bytes(sep.join(n.encode() for n in names) + sep)
    if how == "remote":
        ff = f"localhost:{listfile}" if role.startswith("push") else f":{listfile}"
    else:
        ff = "-" if case == "stdin" else str(listfile)
    stdin = listfile.read_bytes() if case == "stdin" else None
    results = {}
    for tool in ("rsync", "pysync"):
        dst = tmp_path / f"t-{tool}" / "dst"
        make_dst(dst)
        c, s = (client, server) if tool == "pysync" else ("rsync", "rsync")
        r = _run(c, s, opts, ff, src, dst, role.startswith("push"), stdin, tmp_path)
        os.utime(dst, (T_OLD, T_OLD))
        results[tool] = (r, dst)
    (rr, rdst), (pr, pdst) = results["rsync"], results["pysync"]
    assert pr.returncode == rr.returncode, (pr.stderr.decode(), rr.stderr.decode())
    assert compare_trees(pdst, rdst) == []
    if case.startswith("delete"):
        # "*deleting" lines come from the generator while the item lines of
        # a pull come as the sender's data arrives: their interleaving is a
        # race in rsync too (it differs between its own runs).
        assert sorted(lines(pr.stdout)) == sorted(lines(rr.stdout))
    else:
        assert lines(pr.stdout) == lines(rr.stdout)
    if case == "missing":
        assert pr.returncode == 23 and b"nothere" in pr.stderr


@pytest.mark.parametrize("args,text", [
    (["--files-from=localhost:/l", "src/", "dst/"], "--files-from cannot be remote when the transfer is local"),
    (["--files-from=otherhost:/l", "localhost:/src/", "dst/"],
     "--files-from hostname is not the same as the transfer hostname"),
    (["--files-from=:-", "localhost:/src/", "dst/"], "Invalid --files-from remote filename"),
    (["--files-from=/nonexistent/list", "localhost:/src/", "dst/"],
     "failed to open files-from file /nonexistent/list: No such file or directory"),
])
def test_bad_lists_are_refused_like_rsync(tmp_path, args, text):
    full = ["-a", "-e", FAKE_RSH] + args
    rr = subprocess.run(["rsync"] + full, capture_output=True, timeout=60, cwd=tmp_path)
    pr = subprocess.run(PYSYNC + full, capture_output=True, timeout=60, cwd=tmp_path)
    assert pr.returncode == rr.returncode == 1
    assert text.encode() in pr.stderr and text.encode() in rr.stderr
    assert not (tmp_path / "dst").exists()


@pytest.mark.parametrize("server", ["rsync", "pysync"])
def test_missing_remote_list_ends_the_run_like_rsync(tmp_path, server):
    """A list named on the remote side that is not there: the server says
    why and exits 1, the client sees the connection close (exit 12)."""
    (tmp_path / "src").mkdir()
    full = ["-a", "-e", FAKE_RSH, f"--rsync-path={server}", f"--files-from=:{tmp_path}/nolist",
            f"localhost:{tmp_path}/src/", f"{tmp_path}/dst/"]
    rr = subprocess.run(["rsync"] + full, capture_output=True, timeout=60)
    pr = subprocess.run(PYSYNC + full, capture_output=True, timeout=60)
    assert pr.returncode == rr.returncode == 12
    msg = f"failed to open files-from file {tmp_path}/nolist: No such file or directory".encode()
    assert msg in pr.stderr and msg in rr.stderr
