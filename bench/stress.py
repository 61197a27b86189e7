#!/usr/bin/env python3
"""Stress runs for the full-duplex engine: a 4 GiB file and a 100,000-file
tree, pushed over a remote shell (pysync client -> pysync server) and
pulled, each under a hard time limit (a deadlock shows up as a timeout),
with the peak RSS of every process of the run.  rsync does the same runs
for comparison.  Usage: python3 bench/stress.py [--files N] [--gib G] [--dir D]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FAKE_RSH = f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}"


def make_many(root: Path, n: int) -> None:
    per_dir = 500
    for i in range(n):
        d = root / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:06d}").write_bytes(b"x" * (i % 2048))


def make_big(path: Path, gib: int) -> None:
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(gib << 10):
            f.write(chunk)


# Each run goes through a fresh wrapper process: wait4() there reports the
# largest RSS of that run's own process tree (getrusage(RUSAGE_CHILDREN) in
# this process would keep the maximum over all earlier runs).
WRAPPER = ("import os, sys, subprocess\n"
           "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
           "_, status, ru = os.wait4(p.pid, 0)\n"
           "print(ru.ru_maxrss)\n"
           "sys.exit(os.waitstatus_to_exitcode(status))\n")


def run(cmd, limit):
    """(seconds, exit code, peak RSS in MiB of the largest process of the run)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True,
                           text=True, timeout=limit)
        code = p.returncode
        peak = int(p.stdout.split()[-1]) if p.stdout.split() else 0
    except subprocess.TimeoutExpired:
        code, peak = "TIMEOUT (deadlock?)", 0
    return time.monotonic() - t0, code, peak / 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--gib", type=int, default=4)
    ap.add_argument("--dir", default="/var/tmp/pysync-stress")
    ap.add_argument("--limit", type=int, default=1800)
    a = ap.parse_args()
    base = Path(a.dir)
    shutil.rmtree(base, ignore_errors=True)
    (base / "many").mkdir(parents=True)
    (base / "big").mkdir()
    make_many(base / "many", a.files)
    make_big(base / "big" / "file", a.gib)
    rows = []
    for label, src in (("many files", base / "many"), ("big file", base / "big")):
        for tool, client, server in (("pysync", [sys.executable, "-m", "pysync"], "pysync"),
                                     ("rsync", ["rsync"], "rsync")):
            dst = base / f"dst-{tool}"
            shutil.rmtree(dst, ignore_errors=True)
            cmd = client + ["-a", "-e", FAKE_RSH, f"--rsync-path={server}", f"{src}/", f"localhost:{dst}/"]
            secs, code, rss = run(cmd, a.limit)
            rows.append((label, tool, f"{secs:.1f}", code, f"{rss:.0f}"))
            shutil.rmtree(dst, ignore_errors=True)
    print(f"{'workload':<12} {'tool':<7} {'seconds':>8} {'exit':>6} {'peak RSS MiB':>13}")
    for r in rows:
        print(f"{r[0]:<12} {r[1]:<7} {r[2]:>8} {str(r[3]):>6} {r[4]:>13}")
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
