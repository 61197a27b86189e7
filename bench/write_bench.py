#!/usr/bin/env python3
"""Write-path benchmark: 1 GiB through make_sink vs `dd oflag=direct bs=4M`.

    python bench/write_bench.py [--dir DIR] [--size-mib 1024] [--runs 5]
                                [--piece-kib 256] [--modes dd,direct,...]

Every run writes a fresh file in DIR (deleted between runs, so every write
allocates) and includes the final fsync (dd: conv=fsync; pysync:
WriteMode(fsync=True)).  Modes run interleaved, round by round, so drift of
the (virtual, noisy) disk hits them alike.  Reported per mode: median MB/s
(min-max), the peak and final growth of `Cached:` in /proc/meminfo sampled
every 10 ms, and the file's resident bytes afterwards (fincore).  The order
of the modes is shuffled per round; the throughput ratio to dd is also given
as the median of per-round ratios.

The page cache is never dropped globally (the machine may be shared); a
change of vmstat's drop_pagecache counter during a run is reported, as it
would make that run's cache figures meaningless.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pysync.io.cache import flush_pending_drops, resident_bytes  # noqa: E402
from pysync.io.sink import WriteMode, make_sink  # noqa: E402

MiB = 1 << 20

PY_MODES = {
    "direct": WriteMode(direct_io=True, fsync=True),
    "direct-inline": WriteMode(direct_io=True, write_behind=False, fsync=True),
    "direct+drop": WriteMode(direct_io=True, drop_cache=True, fsync=True),
    "drop_cache": WriteMode(drop_cache=True, fsync=True),
    "plain": WriteMode(fsync=True),
}


def meminfo(key: str) -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def drop_count() -> int:
    with open("/proc/vmstat") as f:
        for line in f:
            if line.startswith("drop_pagecache "):
                return int(line.split()[1])
    return -1


class Sampler:
    """Peak of Cached: while a run is going."""

    def __init__(self):
        self.base = meminfo("Cached")
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, meminfo("Cached"))

    def stop(self):
        self._stop.set()
        self._t.join()
        after = meminfo("Cached")
        self.peak = max(self.peak, after)
        return self.peak - self.base, after - self.base


def file_resident(path: str) -> int:
    if shutil.which("fincore"):
        r = subprocess.run(["fincore", "--bytes", "--raw", "--noheadings", "-o", "RES", path],
                           capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            return int(r.stdout.split()[0])
    fd = os.open(path, os.O_RDONLY)
    try:
        return resident_bytes(fd)
    finally:
        os.close(fd)


def run_dd(path: str, size: int) -> float:
    t = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=4M", f"count={size // (4 * MiB)}",
                    "oflag=direct", "conv=fsync", "status=none"], check=True)
    return time.perf_counter() - t


def run_sink(path: str, size: int, mode: WriteMode, source: memoryview, piece: int,
             feed: str = "write") -> float:
    d = os.open(os.path.dirname(path), os.O_RDONLY)
    fd = os.open(os.path.basename(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                 0o600, dir_fd=d)
    try:
        t = time.perf_counter()
        sink = make_sink(fd, d, os.path.basename(path).encode(), path.encode(), size, mode)
        n = len(source)
        pos = 0
        off = 0
        zero = os.open("/dev/zero", os.O_RDONLY) if feed == "readinto" else -1
        try:
            if feed == "readinto":
                # Like dd: read(/dev/zero) straight into the staging buffer.
                while pos < size:
                    view = sink.writable()
                    k = os.readv(zero, [view[:min(len(view), size - pos)]])
                    view.release()
                    sink.advance(k)
                    pos += k
            else:
                while pos < size:
                    k = min(piece, size - pos, n - off)
                    sink.write(source[off:off + k])
                    pos += k
                    off = (off + k) % n
            sink.finish()
        except BaseException:
            sink.abort()
            raise
        finally:
            if zero >= 0:
                os.close(zero)
        flush_pending_drops()
        return time.perf_counter() - t
    finally:
        os.close(fd)
        os.close(d)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default="/var/tmp/pysync-write-bench")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--piece-kib", type=int, default=256,
                    help="size of the pieces handed to Sink.write (default 256)")
    ap.add_argument("--feed", choices=("write", "readinto"), default="write",
                    help="write: Sink.write() of --piece-kib pieces copied from memory "
                         "(the receiver's shape); readinto: read /dev/zero straight into "
                         "Sink.writable() as dd does")
    ap.add_argument("--modes", default="dd,direct,direct-inline,drop_cache,plain")
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args(argv)

    size = args.size_mib * MiB
    modes = args.modes.split(",")
    for m in modes:
        if m != "dd" and m not in PY_MODES:
            ap.error(f"unknown mode {m}")
    os.makedirs(args.dir, exist_ok=True)
    source = memoryview(os.urandom(64 * MiB))
    path = os.path.join(args.dir, "bench.out")
    results = {m: [] for m in modes}
    for r in range(args.runs):
        order = list(modes)
        random.Random(r).shuffle(order)  # no mode always runs right after another
        for m in order:
            if os.path.exists(path):
                os.unlink(path)
            os.sync()
            time.sleep(0.5)
            drops = drop_count()
            sampler = Sampler()
            if m == "dd":
                secs = run_dd(path, size)
            else:
                secs = run_sink(path, size, PY_MODES[m], source, args.piece_kib * 1024, args.feed)
            peak, after = sampler.stop()
            res = file_resident(path)
            assert os.path.getsize(path) == size
            rec = {"mode": m, "run": r, "seconds": secs, "mbps": size / secs / 1e6,
                   "cached_peak": peak, "cached_after": after, "resident": res,
                   "foreign_drop_caches": drop_count() != drops}
            results[m].append(rec)
            print(f"run {r} {m:14s} {rec['mbps']:7.0f} MB/s  Cached peak {peak / MiB:+8.1f} MiB"
                  f"  after {after / MiB:+8.1f} MiB  resident {res / MiB:7.1f} MiB"
                  + ("  (drop_caches by someone else!)" if rec["foreign_drop_caches"] else ""),
                  flush=True)
    if os.path.exists(path):
        os.unlink(path)

    feed = (f"Sink.write() of {args.piece_kib} KiB pieces" if args.feed == "write"
            else "readv(/dev/zero) into Sink.writable()")
    print(f"\n{args.size_mib} MiB, {args.runs} runs, {feed}, incl. fsync; "
          f"loadavg {open('/proc/loadavg').read().split()[0]}")
    print(f"{'mode':14s} {'median MB/s':>11s} {'(min-max)':>13s} {'peak Cached Δ':>14s}"
          f" {'resident after':>15s}")
    med = {}
    for m in modes:
        rs = results[m]
        mb = [x["mbps"] for x in rs]
        med[m] = statistics.median(mb)
        print(f"{m:14s} {med[m]:11.0f} {f'({min(mb):.0f}-{max(mb):.0f})':>13s}"
              f" {statistics.median(x['cached_peak'] for x in rs) / MiB:+12.1f} Mi"
              f" {max(x['resident'] for x in rs) / MiB:13.1f} Mi")
    if "dd" in med:
        for m in modes:
            if m != "dd":
                # Rounds are interleaved: the median of per-round ratios is
                # less sensitive to the disk's drift than a ratio of medians.
                paired = statistics.median(a["mbps"] / b["mbps"]
                                           for a, b in zip(results[m], results["dd"]))
                print(f"{m} / dd O_DIRECT throughput: {med[m] / med['dd'] * 100:.0f}% "
                      f"(median of per-round ratios {paired * 100:.0f}%)")
    for m in modes:
        if m != "dd":
            worst = max(x["resident"] for x in results[m]) / size * 100
            print(f"{m}: file resident after run <= {worst:.2f}% of bytes written")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
