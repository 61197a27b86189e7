"""Implied includes of a pull (engine/implied.py, rsync's CVE-2022-29154 fix).

* The rules pysync derives from each requested path are the rules stock
  rsync derives: rsync prints them with --debug=FILTER3
  ("add_implied_include(...)"), on a dry-run pull through the fake
  remote shell.
* Legitimate pulls of every argument form (basename, trailing slash, "."
  and the empty path, -R with and without "/./", wildcards, brackets,
  backslashes, several sources, -d, no -r, a forwarded --files-from list,
  --trust-sender) give the same tree, itemized output and exit code as
  stock rsync: pysync client -> rsync server against rsync -> rsync, and
  rsync client -> pysync server.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.trees import compare_trees
from pysync.engine.implied import ImpliedRules
from pysync.protocol.constants import XMIT_NO_CONTENT_DIR, XMIT_TOP_DIR

REPO = Path(__file__).resolve().parents[2]
FAKE_RSH = f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}"
PYSYNC = [sys.executable, "-m", "pysync"]
T = 1_600_000_000


def make_src(root: Path) -> None:
    files = {
        "f": b"f\n", "wanted.txt": b"w\n", "other.txt": b"o\n",
        "sub/g": b"g\n", "sub/deep/h": b"h\n", "sub/deep/more/i": b"i\n",
        "a[1]/q": b"q\n", "back\\slash.txt": b"b\n", "sp ace/s": b"s\n",
        "star*/t": b"t\n", "dot.d/./x": b"x\n",
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, (T, T))
    for d, _, _ in sorted(os.walk(root), reverse=True):
        os.utime(d, (T, T))


# (options, remote paths relative to SRC; "" = SRC itself with no slash)
PULLS = {
    "slash": (["-a"], ["/"]),
    "noslash": (["-a"], [""]),
    "file": (["-a"], ["/wanted.txt"]),
    "two-args": (["-a"], ["/sub/", "/f"]),
    "dot": (["-a"], ["/."]),
    "dotslash": (["-a"], ["/./"]),
    "dot-inside": (["-a"], ["/sub/./deep"]),
    "wild": (["-a"], ["/s*"]),
    "wild-file": (["-a"], ["/*.txt"]),
    "brackets": (["-a"], ["/a[1]"]),
    "backslash": (["-a"], ["/back\\slash.txt"]),
    "space": (["-a"], ["/sp ace"]),
    "star-name": (["-a"], ["/star*"]),
    "R": (["-aR"], ["/sub/deep"]),
    "R-dot": (["-aR"], ["/./sub/deep/more"]),
    "R-dot-root": (["-aR"], ["/./"]),
    "R-two": (["-aR"], ["/./sub/deep", "/./f"]),
    "R-wild": (["-aR"], ["/./sub/d*"]),
    "R-no-implied": (["-aR", "--no-implied-dirs"], ["/./sub/deep/h"]),
    "R-delete": (["-aR", "--delete"], ["/./sub/deep"]),
    "d": (["-d", "-t"], ["/"]),
    "d-sub": (["-dt"], ["/sub"]),
    "no-r": (["-lt"], ["/f", "/sub/g"]),
    "no-r-dir": (["-lt"], ["/sub"]),
    "trailing-slashes": (["-a"], ["/sub//"]),
    "double-slash": (["-aR"], ["/./sub//deep"]),
    "trust": (["-a", "--trust-sender"], ["/sub/"]),
    "delete": (["-a", "--delete"], ["/sub/"]),
}


def _remote(src: Path, paths):
    return [f"localhost:{src}{p}" for p in paths]


def _run(client, server, opts, args, cwd):
    cmd = client + opts + ["-i", "-e", FAKE_RSH, f"--rsync-path={server}"] + args
    return subprocess.run(cmd, capture_output=True, timeout=120, cwd=cwd)


def _lines(out: bytes):
    return [ln for ln in out.decode("utf-8", "replace").splitlines()
            if ln.strip() and not ln.startswith(("sent ", "total size", "receiving "))]


def _rsync_rules(tmp_path: Path, opts, args) -> list:
    """The implied includes stock rsync adds for a pull (its debug lines)."""
    r = subprocess.run(["rsync", "-n", *opts, "--debug=FILTER3", "-e", FAKE_RSH, *args,
                        str(tmp_path / "nowhere") + "/"], capture_output=True, timeout=120)
    text = (r.stdout + r.stderr).decode("utf-8", "replace")
    return re.findall(r"^\[Receiver\] add_implied_include\((.*)\)$", text, re.M)


def _our_rules(opts, paths) -> list:
    from pysync.options import parse_args
    o = parse_args([*opts, "x", "y"])
    rules = ImpliedRules(bool(o.relative), o.recursive, o.xfer_dirs)
    for p in paths:
        rules.add(p.encode() or b".")
    return [r.pattern.decode() + ("/" if r.parent else "") for r in rules.rules]


RULE_CASES = dict(PULLS)
RULE_CASES.update({
    "R-abs": (["-aR"], ["/sub/deep/h"]),
    "bracket-glob": (["-a"], ["/a[0-9]"]),
    "R-bracket": (["-aR"], ["/./sub/x[1]/y"]),
    "wild-backslash": (["-a"], ["/x\\y*"]),
    "R-wild-backslash": (["-aR"], ["/./a\\b/c*"]),
    "backslash-bracket": (["-a"], ["/x\\]y"]),
    "wild-escaped": (["-a"], ["/x\\*y[a]"]),
    "R-dotdot-parts": (["-aR"], ["/./a/./b/../c"]),
})


@pytest.mark.parametrize("case", sorted(RULE_CASES))
def test_rules_match_rsync(tmp_path, case):
    opts, paths = RULE_CASES[case]
    src = tmp_path / "src"
    src.mkdir()
    args = _remote(src, paths)
    want = _rsync_rules(tmp_path, [o for o in opts if o != "--trust-sender"], args)
    assert want, "stock rsync printed no implied includes"
    got = _our_rules([o for o in opts if o != "--trust-sender"], [a.split(":", 1)[1] for a in args])
    assert got == want


def test_trust_sender_and_remote_list_add_no_rules():
    from pysync.client import implied_rules
    from pysync.options import parse_args
    assert implied_rules(parse_args(["-a", "--trust-sender", "h:x", "y"]), ["x"], None) is None
    o = parse_args(["-a", "--files-from=h:/l", "h:x", "y"])
    assert implied_rules(o, ["x"], None) is None
    o = parse_args(["-a", "--files-from=/l", "h:x", "y"])
    rules = implied_rules(o, ["x"], b"sub/g\0f\0\0")
    assert [r.pattern for r in rules.rules] == [b"/sub/g", b"/sub", b"/sub/g/*", b"/f", b"/f/*"]
    assert rules.allowed(b"sub", True) and not rules.allowed(b"sub", False)
    assert rules.allowed(b"sub/g", False) and not rules.allowed(b"x", False)
    assert not rules.allowed(b"x", True)


class _E:
    def __init__(self, name, xflags, is_dir=True):
        self.name, self.xflags, self.is_dir = name, xflags, is_dir


def test_implied_parent_is_downgraded():
    rules = ImpliedRules(True, True, True)
    rules.add(b"/src/./sub/dir")
    both = XMIT_TOP_DIR | XMIT_NO_CONTENT_DIR
    for xf in (0, XMIT_TOP_DIR, XMIT_NO_CONTENT_DIR):
        e = _E(b"sub", xf)
        rules.downgrade(e)
        assert e.xflags == both
    e = _E(b"sub/dir", XMIT_TOP_DIR)        # requested: stays a content dir
    rules.downgrade(e)
    assert e.xflags == XMIT_TOP_DIR
    e = _E(b".", XMIT_TOP_DIR)              # no "/**" rule: "." is a parent only
    rules.downgrade(e)
    assert e.xflags == both
    rules.add(b"/src/./")
    e = _E(b".", XMIT_TOP_DIR)
    rules.downgrade(e)
    assert e.xflags == XMIT_TOP_DIR


@pytest.mark.parametrize("direction", ["pysync-client", "pysync-server"])
@pytest.mark.parametrize("case", sorted(PULLS))
def test_legit_pull_matches_rsync(tmp_path, case, direction):
    opts, paths = PULLS[case]
    src = tmp_path / "src"
    make_src(src)
    results = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        dst = top / "dst"
        dst.mkdir(parents=True)
        (dst / "sub").mkdir()
        (dst / "sub" / "extra").write_bytes(b"extra\n")
        os.utime(dst / "sub" / "extra", (T, T))
        client, server = ["rsync"], "rsync"
        if tool == "pysync":
            client, server = (PYSYNC, "rsync") if direction == "pysync-client" else (["rsync"], "pysync")
        results[tool] = (_run(client, server, opts, _remote(src, paths) + [f"{dst}/"], top), dst)
    (rr, rdst), (pr, pdst) = results["rsync"], results["pysync"]
    assert pr.returncode == rr.returncode, (pr.stderr.decode(), rr.stderr.decode())
    assert rr.returncode == 0, rr.stderr.decode()
    assert compare_trees(pdst, rdst, dir_times=False) == []
    assert _lines(pr.stdout) == _lines(rr.stdout)
    assert _lines(pr.stderr) == _lines(rr.stderr)


@pytest.mark.parametrize("direction", ["pysync-client", "pysync-server"])
@pytest.mark.parametrize("relative", [True, False])
def test_forwarded_files_from_matches_rsync(tmp_path, direction, relative):
    """A local --files-from list forwarded to the remote sender: its names
    are the requests (blank lines and CRLF included)."""
    src = tmp_path / "src"
    make_src(src)
    lst = tmp_path / "list"
    lst.write_bytes(b"sub/deep/h\r\n\nwanted.txt\nsub/deep/more\na[1]/q\n")
    opts = ["-a", f"--files-from={lst}"] + ([] if relative else ["--no-relative"])
    results = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        dst = top / "dst"
        dst.mkdir(parents=True)
        client, server = ["rsync"], "rsync"
        if tool == "pysync":
            client, server = (PYSYNC, "rsync") if direction == "pysync-client" else (["rsync"], "pysync")
        results[tool] = (_run(client, server, opts, [f"localhost:{src}/", f"{dst}/"], top), dst)
    (rr, rdst), (pr, pdst) = results["rsync"], results["pysync"]
    assert pr.returncode == rr.returncode == 0, (pr.stderr.decode(), rr.stderr.decode())
    assert compare_trees(pdst, rdst, dir_times=False) == []
    assert _lines(pr.stdout) == _lines(rr.stdout)


@pytest.mark.parametrize("direction", ["pysync-client", "pysync-server"])
@pytest.mark.parametrize("opts,path", [(["-a"], "~"), (["-a"], "~/x"), (["-aR"], "~/x"),
                                       (["-a", "--trust-sender"], "~")])
def test_leading_tilde_matches_rsync(tmp_path, direction, opts, path):
    """A checked pull quotes a leading "~" when its base name is the
    request, so the remote shell cannot expand it into other names: the
    literal "~" of the remote working directory is sent, as by rsync."""
    home = tmp_path / "home"
    (home / "x").mkdir(parents=True)
    (home / "x" / "in-home").write_bytes(b"h\n")
    os.utime(home / "x" / "in-home", (T, T))
    results = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        (top / "~" / "x").mkdir(parents=True)
        (top / "~" / "x" / "literal").write_bytes(b"l\n")
        os.utime(top / "~" / "x" / "literal", (T, T))
        dst = tmp_path / f"dst-{tool}"
        dst.mkdir()
        client, server = ["rsync"], "rsync"
        if tool == "pysync":
            client, server = (PYSYNC, "rsync") if direction == "pysync-client" else (["rsync"], "pysync")
        cmd = client + opts + ["-i", "-e", FAKE_RSH, f"--rsync-path={server}",
                               f"localhost:{path}", f"{dst}/"]
        env = dict(os.environ, HOME=str(home))
        results[tool] = (subprocess.run(cmd, capture_output=True, timeout=120, cwd=top, env=env), dst)
    (rr, rdst), (pr, pdst) = results["rsync"], results["pysync"]
    assert pr.returncode == rr.returncode == 0, (pr.stderr.decode(), rr.stderr.decode())
    assert compare_trees(pdst, rdst, dir_times=False) == []
    assert sorted(_lines(pr.stdout)) == sorted(_lines(rr.stdout))
