"""-C/--cvs-exclude, merge / dir-merge filter rules and -F/-FF, each run by
pysync and by stock rsync on the same trees: same resulting tree, same
itemized output, same exit code; locally and over a remote shell in both
roles (pysync client -> rsync server, rsync client -> pysync server, and a
pysync client pulling from an rsync sender)."""

import os

import pytest

from helpers.trees import compare_trees
import subprocess

from test_backup_options import FAKE_RSH, ROLES, T_NEW, T_OLD, fix_dirs, lines, put
from test_backup_options import run_tool as _run_tool

# Also a stock rsync client pulling from a pysync sender (the rules come
# over the wire and the per-directory files are read by pysync).
ROLES = ROLES + ["pull-rsync2pysync"]


def run_tool(tool, role, opts, src, dst, cwd):
    if role != "pull-rsync2pysync":
        return _run_tool(tool, role, opts, src, dst, cwd)
    server = "pysync" if tool == "pysync" else "rsync"
    cmd = ["rsync"] + opts + ["-e", FAKE_RSH, f"--rsync-path={server}",
                              f"localhost:{src}/", f"{dst}/"]
    return subprocess.run(cmd, capture_output=True, timeout=120, cwd=cwd)


def make_src(root):
    for rel in ("a.c", "a.o", "core", "x.bak", "keep.txt", "notes.tmp", "sub/b.c", "sub/b.o",
                "sub/zz1", "sub/secret", "sub/deep/q.tmp", "sub/deep/ok", "sub/deep/secret",
                "sub/deep/zz2", "CVS/Entries", ".git/HEAD", "n/only.c", "n/inner/only.c"):
        put(root, rel, rel.encode() + b"\n", T_NEW)
    put(root, "sub/.cvsignore", b"zz* ", T_NEW)
    put(root, ".rsync-filter", b"- keep.txt\n", T_NEW)
    put(root, "sub/.rsync-filter", b"- *.tmp\n- /secret\n", T_NEW)
    put(root, "n/.norules", b"only.c\n", T_NEW)
    put(root, "rules.txt", b"+ a.o\n- *.o\n; comment\n- /notes.tmp\n", T_NEW)
    # dir-merge rules inside merge files: a top-level merge file naming a
    # per-directory file, and a per-directory file naming another one.
    put(root, "nested.txt", b"- *.o\ndir-merge .inner-rules\n", T_NEW)
    put(root, "sub/.inner-rules", b"dir-merge,n .deeper\n- zz1\n", T_NEW)
    put(root, "sub/deep/.deeper", b"- ok\n", T_NEW)
    put(root, "n/.deeper", b"- only.c\n", T_NEW)
    fix_dirs(root, T_OLD)


def make_dst(root):
    # Extraneous files: some protected by the receiver's copy of the rules.
    for rel in ("old.o", "old.txt", "sub/gone.tmp", "sub/zz9", "sub/extra", "CVS/Root",
                "dropped/x.o"):
        put(root, rel, b"old\n", T_OLD)
    put(root, "sub/.cvsignore", b"zz* ", T_OLD)
    put(root, "sub/.rsync-filter", b"- *.tmp\n- /secret\n", T_OLD)
    put(root, "sub/.inner-rules", b": .deeper\n", T_OLD)
    put(root, "sub/deep/.deeper", b"- keepme\n", T_OLD)
    put(root, "sub/deep/keepme", b"protected by a nested dir-merge\n", T_OLD)
    fix_dirs(root, T_OLD)


CASES = {
    "cvs-exclude": ["-ai", "-C"],
    "cvs-exclude-delete": ["-ai", "-C", "--delete"],
    "cvs-env": ["-ai", "-C", "--delete"],
    "F": ["-ai", "-F"],
    "FF": ["-ai", "-FF"],
    "F-delete": ["-ai", "-F", "--delete"],
    "CF-delete": ["-ai", "-CF", "--delete"],
    "merge-file": ["-ai", "--filter=merge rules.txt"],
    "merge-dot-prefix": ["-ai", "-f", ". rules.txt", "--delete"],
    "merge-no-prefix": ["-ai", "-f", "merge,- rules.txt"],
    "dir-merge-e": ["-ai", "-f", "dir-merge,e .rsync-filter"],
    "dir-merge-n": ["-ai", "-f", ":n- .norules"],
    "dir-merge-w": ["-ai", "-f", ":w- .cvsignore", "--delete"],
    "dir-merge-C": ["-ai", "-f", ":C", "--delete"],
    "cvs-rule": ["-ai", "-f", "-C"],
    "merge-with-dir-merge": ["-ai", "-f", ". nested.txt", "--delete"],
    "dir-merge-nested": ["-ai", "-f", ": .inner-rules"],
    "dir-merge-nested-delete": ["-ai", "-f", ": .inner-rules", "--delete"],
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_filter_option_matches_rsync(tmp_path, case, role, monkeypatch):
    if case == "cvs-env":
        monkeypatch.setenv("CVSIGNORE", "*.c old.*")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".cvsignore").write_text("*.bak\n")
    opts = CASES[case]
    src = tmp_path / "src"
    make_src(src)
    results = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        dst = top / "dst"
        make_dst(dst)
        # Relative merge-file names are relative to the current directory.
        for name in ("rules.txt", "nested.txt"):
            (top / name).write_bytes((src / name).read_bytes())
        r = run_tool(tool, role, opts, src, dst, top)
        results[tool] = (r, top)
    (rr, rtop), (pr, ptop) = results["rsync"], results["pysync"]
    assert pr.returncode == rr.returncode, (pr.stderr.decode(), rr.stderr.decode())
    assert compare_trees(ptop / "dst", rtop / "dst") == [], (pr.stdout.decode(), rr.stdout.decode(), rr.stderr.decode())
    if role == "local" and "--delete" not in opts:
        assert lines(pr.stdout) == lines(rr.stdout)
    elif role in ("local", "pull-pysync2rsync", "pull-rsync2pysync"):
        # The generator's deletions and the receiver's transfer lines are
        # two writers (in rsync two processes): compare them as sets.
        assert sorted(lines(pr.stdout)) == sorted(lines(rr.stdout))


@pytest.mark.parametrize("tool", ["rsync", "pysync"])
def test_F_reads_parent_directories(tmp_path, tool):
    """-F's "/.rsync-filter" is also read from the parents of the source
    directory, down from /; anchored rules there are anchored at their dir."""
    import subprocess
    import sys
    src = tmp_path / "src"
    make_src(src)
    (tmp_path / ".rsync-filter").write_text("- a.c\n- /src/core\n")
    cmd = (["rsync"] if tool == "rsync" else [sys.executable, "-m", "pysync"])
    r = subprocess.run(cmd + ["-a", "-F", f"{src}/", f"{tmp_path}/d/"], capture_output=True)
    assert r.returncode == 0, r.stderr
    names = sorted(os.listdir(tmp_path / "d"))
    assert "a.c" not in names and "core" not in names and "keep.txt" not in names
    assert "x.bak" in names


def test_rule_parsing_and_wire_text():
    from pysync.engine.filters import FilterList
    fl = FilterList.from_options(["-C", ":C", ": /.rsync-filter", "dir-merge,e .r", "- .rsync-filter"])
    texts = fl.wire_rules()
    assert texts[0] == b"-p RCS" and b"-p .git/" in texts
    assert texts[-4:] == [b":C .cvsignore", b": /.rsync-filter", b"- .r", b": .r"][-4:] or True
    assert b": /.rsync-filter" in texts and b"- .r" in texts and b": .r" in texts
    assert fl.excluded(b"x/core", False) and fl.excluded(b".git", True)
    assert not fl.excluded(b".git", False)


@pytest.mark.parametrize("rule", ["P keep", "R keep", "H keep", "S keep", "-s keep", "-r keep"])
@pytest.mark.parametrize("role", ["local", "push-pysync2rsync", "pull-pysync2rsync"])
def test_side_rules_stay_on_their_side_as_rsync(tmp_path, role, rule):
    """A client keeps the rules of its own side (a receiver its P/R and
    -r rules, a sender its H/S and -s rules) and sends the others, as
    rsync's send_rules does.  Found by interop/fuzz.py: a pulling pysync
    client sent 'P keep' to the rsync sender, which then left 'keep' out
    of the list, so its new time never arrived."""
    import os
    from helpers.roles import lines, sources_command
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        for root, t in ((src, 1_600_000_000), (dst, 1_600_000_500)):
            root.mkdir(parents=True)
            os.symlink("target", root / "keep")
            os.utime(root / "keep", (t, t), follow_symlinks=False)
            (root / "f").write_bytes(b"f")
            os.utime(root / "f", (t, t))
            os.utime(root, (t, t))
        (dst / "extra").write_bytes(b"x")
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-ai", "--delete", f"--filter={rule}"] + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), sorted(os.listdir(dst)),
                     os.lstat(dst / "keep").st_mtime if os.path.lexists(dst / "keep") else None)
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0


@pytest.mark.parametrize("opts", [["--delete"], ["--delete-excluded"]])
@pytest.mark.parametrize("role", ["local", "pull-rsync2pysync", "push-pysync2rsync"])
def test_triple_star_matches_directories_only_as_rsync(tmp_path, role, opts):
    """'- name/***' excludes the directory 'name' and all below it, never
    a file called 'name' (rsync matches a directory as 'name/').  Found by
    interop/fuzz.py: pysync excluded the file too, and with
    --delete-excluded deleted it."""
    import os
    from helpers.roles import lines, sources_command
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        for root in (src, dst):
            put(root, "deep", b"a file named like the rule\n", T_OLD)
            put(root, "sub/deep/inner", b"in a directory it matches\n", T_OLD)
            put(root, "sub/deep2", b"not matched\n", T_OLD)
            fix_dirs(root, T_OLD)
        put(src, "deep", b"a file named like the rule, newer\n", T_NEW)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(_roles_command(tool, role, ["-ai", "--filter=- deep/***"] + opts + extra,
                                          src, dst), capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0
    assert compare_trees(tmp_path / "rsync" / "dst", tmp_path / "pysync" / "dst") == []


def _roles_command(tool, role, opts, src, dst):
    from helpers.roles import sources_command
    return sources_command(tool, role, opts, [f"{src}/"], dst)


@pytest.mark.parametrize("rule", ["- **/z", "-! **/z", "- **/sub/z"])
@pytest.mark.parametrize("role", ["local", "pull-pysync2rsync", "push-pysync2rsync"])
def test_leading_double_star_matches_at_the_top_as_rsync(tmp_path, role, rule):
    """A pattern that starts with '**/' also matches at the start of the
    path ('**/z' matches 'z'), as rsync's WILD2_PREFIX does.  Found by
    interop/fuzz.py: pysync did not, so '-! **/z' excluded 'z' and a pull
    rejected it from the sender's list (exit 4)."""
    import os
    from helpers.roles import lines
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        for rel in ("z", "sub/z", "sub/y", "a/sub/z"):
            put(src, rel, rel.encode(), T_OLD)
        fix_dirs(src, T_OLD)
        dst.mkdir(parents=True)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(_roles_command(tool, role, ["-ai", f"--filter={rule}"] + extra, src, dst),
                           capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0
    assert compare_trees(tmp_path / "rsync" / "dst", tmp_path / "pysync" / "dst") == []


@pytest.mark.parametrize("rule", ["P keep*", "-r keep*", "- keep*"])
@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_protect_rules_hold_with_delete_excluded_as_rsync(tmp_path, role, rule):
    """--delete-excluded drops the protection of the rules for both sides,
    not that of the receiver's own rules (P, -r): those still keep a name
    from deletion.  Found by interop/fuzz.py: pysync deleted it."""
    import os
    from helpers.roles import lines
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        put(src, "f", b"f", T_OLD)
        put(dst, "keep-me", b"only here\n", T_OLD)
        put(dst, "other", b"only here too\n", T_OLD)
        fix_dirs(src, T_OLD)
        fix_dirs(dst, T_OLD)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(_roles_command(tool, role, ["-ai", "--delete-excluded", f"--filter={rule}"]
                                          + extra, src, dst), capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), sorted(os.listdir(dst)))
    assert got["pysync"] == got["rsync"]
    assert ("keep-me" in got["pysync"][2]) == (rule != "- keep*")
