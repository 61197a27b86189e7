"""-L/--copy-links, -k/--copy-dirlinks, --copy-unsafe-links and
--safe-links, compared with stock rsync in every role: the tree left
behind (links kept as links, or replaced by what they point to), the
-v lines and the exit code (a dangling link that must be followed is an
error: 23)."""

from __future__ import annotations

import os

import pytest

from pysync.engine.symlinks import unsafe_symlink
from tests.helpers.roles import lines, role_cases, run

OPTS = [["-L"], ["-k"], ["--copy-unsafe-links"], ["--copy-unsafe-links", "-k"], ["--safe-links"],
        ["--copy-unsafe-links", "--safe-links"], ["-kL"], []]


def _tree(top):
    out = top / "out"
    (out / "od").mkdir(parents=True)
    (out / "of").write_bytes(b"outside\n")
    (out / "od" / "x").write_bytes(b"inside outside\n")
    src = top / "src"
    (src / "d" / "e").mkdir(parents=True)
    (src / "d" / "f").write_bytes(b"file\n")
    for name, target in [("dl", "d"), ("fl", "d/f"), ("up", "../out/of"), ("upd", "../out/od"),
                         ("dang", "nowhere"), ("d/e/back", "../f"), ("d/e/far", "../../../out/of"),
                         ("abs", str(out / "of")), ("mid", "d/../../out/of")]:
        os.symlink(target, src / name)
    return src


def _snapshot(root, top):
    """Every path: ("L", target) for a link, ("d",) or ("f", bytes)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("L", os.readlink(p).replace(str(top), "TOP"))
            elif os.path.isdir(p):
                out[rel] = ("d",)
            else:
                out[rel] = ("f", open(p, "rb").read())
    return out


@pytest.mark.parametrize("role,opts", role_cases(OPTS, remote_every=2))
def test_symlink_options_as_rsync(tmp_path, role, opts):
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src = _tree(top)
        dst = top / "dst"
        dst.mkdir()
        r = run(tool, role, ["-av"] + opts, src, dst)
        # (pysync ends "building file list ... " on a line of its own
        # after a message, as rsync without incremental recursion does)
        shown = sorted(ln.replace(str(top), "TOP") for ln in lines(r.stdout) if ln != "done")
        got[tool] = (r.returncode, _snapshot(dst, top), shown)
    assert got["pysync"][:2] == got["rsync"][:2]
    assert got["pysync"][2] == got["rsync"][2]
    snap = got["pysync"][1]
    if "-L" in opts or "-kL" in opts:
        assert snap["fl"] == ("f", b"file\n") and "dang" not in snap and got["pysync"][0] == 23
    if "--safe-links" in opts and "--copy-unsafe-links" not in opts:
        assert "up" not in snap and "abs" not in snap and snap["d/e/back"] == ("L", "../f")


def test_unsafe_symlink_rules():
    # (target, link name) -> unsafe?
    cases = {
        (b"f", b"l"): False, (b"../f", b"d/l"): False, (b"../f", b"l"): True,
        (b"/etc/passwd", b"l"): True, (b"", b"l"): True, (b"a/../b", b"l"): True,
        (b"../../x", b"a/b/l"): False, (b"../../../x", b"a/b/l"): True,
        (b"..//..//x", b"a/b/l"): False, (b"a/..", b"l"): True, (b"..", b"d/l"): False,
        (b"..", b"l"): True, (b"./f", b"l"): False, (b"d/./../x", b"l"): True,
        (b"../x", b"./d/l"): False, (b"../x", b"../d/l"): False,
    }
    for (target, name), want in cases.items():
        assert unsafe_symlink(target, name) is want, (target, name)


@pytest.mark.parametrize("opt", ["-L", "--copy-unsafe-links", "-k"])
@pytest.mark.parametrize("role", ["local", "pull-rsync2pysync", "push-pysync2rsync"])
def test_excluded_dangling_link_is_no_error_as_rsync(tmp_path, role, opt):
    """A dangling symlink that a copy-links option would follow is no
    error when the filter rules exclude its name (flist.c checks them
    before reporting).  Found by interop/fuzz.py: pysync's sender said
    'symlink has no referent' and exited 23."""
    import subprocess
    import os
    from helpers.roles import lines, sources_command
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        src.mkdir(parents=True)
        dst.mkdir()
        (src / "f").write_bytes(b"f")
        os.symlink("../../nowhere", src / "gone")
        for d in (src, dst):    # (their times as made differ by chance: '.d..t...... ./')
            os.utime(d, (1_600_000_000, 1_600_000_000))
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-ai", opt, "--exclude=gone"] + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), sorted(lines(r.stderr)),
                     sorted(os.listdir(dst)))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0
