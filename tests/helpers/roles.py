"""Run one transfer as pysync or as stock rsync in one of the roles, so a
test can give both the same trees and compare what they leave behind.

Roles: ``local``; ``push-pysync2rsync`` (pysync client sending to an rsync
server), ``push-rsync2pysync`` (rsync client sending to a pysync server),
``pull-pysync2rsync`` (pysync client receiving from an rsync server) and
``pull-rsync2pysync`` (rsync client receiving from a pysync server).  The
remote side runs through interop/fake_rsh.py with ``--rsync-path``.  The
"rsync" run of every role is stock rsync on both sides.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FAKE_RSH = f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}"
PYSYNC = [sys.executable, "-m", "pysync"]

ROLES = ["local", "push-pysync2rsync", "push-rsync2pysync", "pull-pysync2rsync",
         "pull-rsync2pysync"]


def command(tool: str, role: str, opts, src, dst) -> list:
    """The argv of one run; ``src``/``dst`` are directories (their contents
    are transferred)."""
    return sources_command(tool, role, opts, [f"{src}/"], dst)


def sources_command(tool: str, role: str, opts, srcs, dst) -> list:
    """The argv of one run from the source arguments ``srcs`` (as given:
    a remote role prefixes each with the host) into directory ``dst``."""
    if role == "local":
        return (PYSYNC if tool == "pysync" else ["rsync"]) + list(opts) + list(srcs) + [f"{dst}/"]
    if tool == "rsync":
        client, server = ["rsync"], "rsync"
    elif role.endswith("rsync2pysync"):
        client, server = ["rsync"], "pysync"
    else:
        client, server = PYSYNC, "rsync"
    remote = ["-e", FAKE_RSH, f"--rsync-path={server}"]
    if role.startswith("push"):
        return client + list(opts) + remote + list(srcs) + [f"localhost:{dst}/"]
    return client + list(opts) + remote + [f"localhost:{s}" for s in srcs] + [f"{dst}/"]


def run(tool: str, role: str, opts, src, dst, cwd=None, timeout=120):
    return subprocess.run(command(tool, role, opts, src, dst), capture_output=True,
                          timeout=timeout, cwd=cwd)


def popen(tool: str, role: str, opts, src, dst, cwd=None):
    """Started in a session of its own, so the whole run can be signalled."""
    return subprocess.Popen(command(tool, role, opts, src, dst), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=cwd, start_new_session=True)


_NOISE = ("sent ", "total size", "building file", "receiving file", "sending incremental",
          "receiving incremental", "rsync error:", "opening connection", "delta-transmission",
          "total: matches=")


def lines(out: bytes) -> list:
    """The lines of an output that both tools print the same way (without
    the summary, the banner lines and the final "rsync error:" line, whose
    location part names the program)."""
    keep = []
    for line in out.decode("utf-8", "replace").splitlines():
        if not line.strip() or line.startswith(_NOISE):
            continue
        keep.append(line)
    return keep


def put(root: Path, rel: str, data: bytes, mtime: int, mode: int = 0o644) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.chmod(p, mode)
    os.utime(p, (mtime, mtime))
    return p


def fix_dirs(root: Path, mtime: int) -> None:
    for d, _, _ in sorted(os.walk(root), reverse=True):
        os.utime(d, (mtime, mtime))


def role_cases(option_sets, remote_every: int = 3):
    """(role, opts) pairs for pytest: every option set locally, and every
    ``remote_every``-th one (the first included) in each remote role as
    well, so the remote roles see each feature without the suite paying
    for every combination through a remote shell."""
    import pytest
    out = []
    for i, opts in enumerate(option_sets):
        label = "_".join(opts) or "plain"
        for role in ROLES:
            if role == "local" or i % remote_every == 0:
                out.append(pytest.param(role, opts, id=f"{label}-{role}"))
    return out
