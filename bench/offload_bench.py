#!/usr/bin/env python3
"""Local copy offload: one large file copied locally by rsync, pysync (with
offload: copy_file_range on ext4, FICLONE on xfs/btrfs) and pysync with
offload turned off (every byte over the socketpair), side by side.

    python bench/offload_bench.py [--dir DIR] [--size-mib 1024] [--runs 3]
                                  [--flags "-a"]

Each run copies SRC/big (made once, random data) into a fresh DIR/dst-*
(removed between runs), with the source evicted from the page cache first
(POSIX_FADV_DONTNEED; the cache is never dropped globally: the machine may
be shared).  The tools alternate within a round, in a shuffled order.
Reported per tool: median wall seconds (min-max), the ratio to rsync, and
the destination's resident bytes right after the run (fincore/mincore).
The load average before and after is printed: note it with the figures.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from pysync.io.cache import resident_bytes  # noqa: E402

MiB = 1 << 20
# pysync with offload_allowed() patched to say no: the plain streamed path.
NO_OFFLOAD = ("import sys, runpy; import pysync.engine.offload as o; "
              "o.offload_allowed = lambda opts: False; "
              "sys.argv = ['pysync'] + sys.argv[1:]; runpy.run_module('pysync', run_name='__main__')")


def tools(flags):
    py = [sys.executable]
    return {
        "rsync": ["rsync"] + flags,
        "pysync": py + ["-m", "pysync"] + flags,
        "pysync-no-offload": py + ["-c", NO_OFFLOAD] + flags,
    }


def evict(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def resident(path: str) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return resident_bytes(fd)
    finally:
        os.close(fd)


def make_source(src: str, size: int) -> str:
    os.makedirs(src, exist_ok=True)
    path = os.path.join(src, "big")
    if not os.path.exists(path) or os.path.getsize(path) != size:
        with open(path, "wb") as f:
            left = size
            block = os.urandom(8 * MiB)
            while left:
                n = min(left, len(block))
                f.write(block[:n])
                left -= n
                block = block[1:] + block[:1]     # not one repeated block (dedup)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/tmp/pysync-offload-bench")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--flags", default="-a")
    a = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=REPO)
    src = os.path.join(a.dir, "src")
    big = make_source(src, a.size_mib * MiB)
    cmds = tools(a.flags.split())
    times = {t: [] for t in cmds}
    cached = {t: [] for t in cmds}
    print(f"load average before: {os.getloadavg()}")
    for _ in range(a.runs):
        order = list(cmds)
        random.shuffle(order)
        for tool in order:
            dst = os.path.join(a.dir, f"dst-{tool}")
            shutil.rmtree(dst, ignore_errors=True)
            evict(big)
            t0 = time.monotonic()
            r = subprocess.run(cmds[tool] + [src + "/", dst + "/"], env=env,
                               capture_output=True)
            times[tool].append(time.monotonic() - t0)
            if r.returncode != 0:
                print(f"{tool} failed ({r.returncode}): {r.stderr.decode().strip()}")
                return 1
            cached[tool].append(resident(os.path.join(dst, "big")))
            shutil.rmtree(dst)
    print(f"load average after:  {os.getloadavg()}")
    base = statistics.median(times["rsync"])
    print(f"{a.size_mib} MiB local copy, {a.flags}, {a.runs} runs, dir {a.dir}")
    for tool in cmds:
        med = statistics.median(times[tool])
        print(f"  {tool:18} {med:7.2f} s ({min(times[tool]):.2f}-{max(times[tool]):.2f})"
              f"  x{med / base:5.2f} of rsync"
              f"  dst cached after: {statistics.median(cached[tool]) / MiB:7.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
