"""-d/--dirs: directories are transferred without recursing (their names,
not their contents), and --delete works with -d (it deletes only in the
directories whose contents were sent: "." of "src/").  pysync against stock
rsync on the same trees, locally and over the fake remote shell in every
role: same tree, same itemized lines, same exit code.  --old-dirs (-r
and a rule leaving out what is below the top directories) too."""

import os
import subprocess

import pytest

from helpers.trees import compare_trees
from test_backup_options import FAKE_RSH, PYSYNC, T_NEW, T_OLD, fix_dirs, lines, put


def make_src(root):
    for rel in ("f", "sub/g", "sub/deep/h", "new/n", "skip.o"):
        put(root, rel, rel.encode() + b"\n", T_NEW)
    (root / "empty").mkdir()
    os.symlink("f", root / "lnk")
    fix_dirs(root, T_OLD)


def make_dst(root):
    put(root, "extra", b"not in the source\n", T_OLD)
    put(root, "sub/keep", b"below a non-content dir\n", T_OLD)
    put(root, "olddir/x/y", b"a whole tree to delete\n", T_OLD)
    put(root, "f", b"old f\n", T_OLD)
    fix_dirs(root, T_OLD)


CASES = {
    "dirs": (["-dti"], "src/"),
    "dirs-noslash": (["-dti"], "src"),
    "dirs-links": (["-dlpti"], "src/"),
    "delete": (["-dti", "--delete"], "src/"),
    "delete-after": (["-dti", "--delete-after"], "src/"),
    "delete-noslash": (["-dti", "--delete"], "src"),
    "delete-exclude": (["-dti", "--delete", "--exclude=*.o"], "src/"),
    "verbose": (["-dtv", "--delete"], "src/"),
    "dirs-and-r": (["-rdti", "--delete"], "src/"),
    "no-dirs-delete": (["-t", "--no-dirs", "--delete"], "src/"),
    "delete-without-d": (["-t", "--delete"], "src/"),
    # --old-dirs: -r with the client's rule "- /*/*", sent with its others
    "old-dirs": (["-ti", "--old-dirs"], "src/"),
    "old-d-delete": (["-ti", "--old-d", "--delete"], "src/"),
    "old-dirs-noslash": (["-ti", "--old-dirs"], "src"),
}
ROLES = ["local", "push-pysync2rsync", "push-rsync2pysync", "pull-pysync2rsync", "pull-rsync2pysync"]


def _cmd(tool, role, opts, srcarg, dst):
    if role == "local":
        client, remote, src, dest = tool, [], srcarg, f"{dst}/"
    else:
        if tool == "rsync":
            client, server = "rsync", "rsync"
        else:
            client, server = role.split("-")[1].split("2")
        remote = ["-e", FAKE_RSH, f"--rsync-path={server}"]
        push = role.startswith("push")
        src = srcarg if push else f"localhost:{srcarg}"
        dest = f"localhost:{dst}/" if push else f"{dst}/"
    return (PYSYNC if client == "pysync" else ["rsync"]) + opts + remote + [src, dest]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_dirs_matches_rsync(tmp_path, case, role):
    opts, srcarg = CASES[case]
    make_src(tmp_path / "src")
    srcarg = str(tmp_path / srcarg) + ("/" if srcarg.endswith("/") else "")
    results = {}
    for tool in ("rsync", "pysync"):
        dst = tmp_path / f"t-{tool}" / "dst"
        make_dst(dst)
        r = subprocess.run(_cmd(tool, role, opts, srcarg, dst), capture_output=True,
                           timeout=120, cwd=tmp_path)
        os.utime(dst, (T_OLD, T_OLD))
        results[tool] = (r, dst)
    (rr, rdst), (pr, pdst) = results["rsync"], results["pysync"]
    assert pr.returncode == rr.returncode, (pr.stderr.decode(), rr.stderr.decode())
    assert compare_trees(pdst, rdst) == []
    if "--delete" in " ".join(opts):
        # "*deleting" lines (generator) vs the items (sender or receiver)
        # come from two processes, also in rsync: their interleaving races
        assert sorted(lines(pr.stdout)) == sorted(lines(rr.stdout))
    else:
        assert lines(pr.stdout) == lines(rr.stdout)
    if case.startswith("delete") and case != "delete-without-d" and srcarg.endswith("/"):
        assert not (pdst / "extra").exists() and not (pdst / "olddir").exists()
        assert (pdst / "sub" / "keep").exists()           # sub/ was not a content dir
        assert not (pdst / "sub" / "g").exists()          # and was not recursed into
    if case in ("no-dirs-delete", "delete-without-d"):
        assert pr.returncode == 1
        assert b"--delete does not work without --recursive (-r) or --dirs (-d)." in pr.stderr
