"""Interrupting a transfer part-way, for the --partial tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def kill_mid_file(cmd, dst: Path, name: str, at_bytes: int = 20 << 20,
                  timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``cmd`` in its own process group and SIGTERM the group once the
    temp file of ``name`` in ``dst`` has grown past ``at_bytes``."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tmp = [n for n in os.listdir(dst) if n.startswith(f".{name}.")]
        try:
            if tmp and os.path.getsize(dst / tmp[0]) > at_bytes:
                break
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGTERM)
    _, err = p.communicate(timeout=timeout)
    return subprocess.CompletedProcess(cmd, p.returncode, None, err)
