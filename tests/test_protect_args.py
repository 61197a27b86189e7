"""-s/--secluded-args (--protect-args): the long options and the paths go
on the wire, where no remote shell splits or expands them; the server
expands wildcards itself.  Compared with stock rsync: the bytes the
client sends first, the command line, and whole runs in every remote
role, with names that have spaces, quotes, a leading dash and wildcards."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers.roles import FAKE_RSH, PYSYNC, lines, put, sources_command

OLD = 1_500_000_000
REMOTE_ROLES = ["push-pysync2rsync", "push-rsync2pysync", "pull-pysync2rsync", "pull-rsync2pysync"]


def _tree(root):
    return sorted((str(p.relative_to(root)), p.read_bytes() if p.is_file() else None)
                  for p in root.rglob("*"))


def _src(top):
    src = top / "src dir"
    put(src, "with space/f 1", b"1\n", OLD)
    put(src, "it's.txt", b"2\n", OLD)
    put(src, "h.txt", b"3\n", OLD)
    put(src, "-dash", b"4\n", OLD)
    os.utime(src, (OLD, OLD))
    return src


@pytest.mark.parametrize("role", REMOTE_ROLES)
@pytest.mark.parametrize("opts", [["-ai", "-s"], ["-ai", "--protect-args", "--delete", "--backup-dir=b k"]])
def test_secluded_args_as_rsync(tmp_path, role, opts):
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src = _src(top)
        dst = top / "dest dir"
        srcs = [f"{src}/with space", f"{src}/*.txt", f"{src}/-dash"] if role.startswith("pull") \
            else [f"{src}/"]
        r = subprocess.run(sources_command(tool, role, opts, srcs, dst), capture_output=True, timeout=120)
        got[tool] = (r.returncode, _tree(dst), sorted(ln.replace(str(top), "TOP") for ln in lines(r.stdout)))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0 and got["pysync"][1]


@pytest.mark.parametrize("pull", [False, True])
@pytest.mark.parametrize("opts", [["-a", "-s"], ["-avz", "-s", "--delete", "--suffix=~ x", "--exclude=*.o"]])
def test_first_bytes_and_command_line_as_rsync(tmp_path, pull, opts):
    """What the client writes before the protocol, and the command line,
    recorded through the fake remote shell (the server is stock rsync)."""
    got = {}
    for tool in ("rsync", "pysync"):
        rec = tmp_path / f"rec-{tool}"
        rec.mkdir()
        top = tmp_path / tool
        src = _src(top)
        cmd = (["rsync"] if tool == "rsync" else PYSYNC) + opts + ["-e", FAKE_RSH]
        cmd += [f"localhost:{src}/with space", str(top / "d")] if pull \
            else [f"{src}/", f"localhost:{top}/d x"]
        env = dict(os.environ, FAKE_RSH_RECORD=str(rec))
        r = subprocess.run(cmd, capture_output=True, timeout=120, env=env)
        assert r.returncode == 0, r.stderr
        first = (rec / "c2s.bin").read_bytes()
        first = first[:first.index(b"\0\0") + 2]
        argv = (rec / "argv.txt").read_text().split()
        # The capability letters after "e." differ (pysync offers no
        # incremental recursion or symlink iconv): not what -s is about.
        argv = [a.split("e.")[0] if a.startswith("-s") else a for a in argv]
        got[tool] = (argv[1:], first.replace(str(top).encode(), b"TOP"))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][1].startswith(b"rsync\0")


def test_environment_turns_it_on(tmp_path):
    src = _src(tmp_path)
    rec = tmp_path / "rec"
    rec.mkdir()
    env = dict(os.environ, FAKE_RSH_RECORD=str(rec), RSYNC_PROTECT_ARGS="1")
    r = subprocess.run(PYSYNC + ["-a", "-e", FAKE_RSH, f"{src}/", f"localhost:{tmp_path}/d"],
                       capture_output=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert (rec / "c2s.bin").read_bytes().startswith(b"rsync\0")
    r = subprocess.run(PYSYNC + ["-a", "--no-s", "-e", FAKE_RSH, f"{src}/", f"localhost:{tmp_path}/e"],
                       capture_output=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert not (rec / "c2s.bin").read_bytes().startswith(b"rsync\0")


def test_server_refuses_an_endless_list():
    """A client that never ends its list: exit 12 with a message, no hang."""
    blob = b"rsync\0" + b"x" * ((1 << 20) + 10)
    r = subprocess.run(PYSYNC + ["--server", "-slogDtpre.iLsfxCIvu"], input=blob,
                       capture_output=True, timeout=60)
    assert r.returncode == 12
    assert b"too long" in r.stderr
    r = subprocess.run(PYSYNC + ["--server", "-slogDtpre.iLsfxCIvu"], input=b"rsync\0--del",
                       capture_output=True, timeout=60)
    assert r.returncode == 12
