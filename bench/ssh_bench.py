#!/usr/bin/env python3
"""Push throughput over a real sshd on 127.0.0.1: pysync with its built-in
paramiko transport against stock rsync over OpenSSH, in the same run.

    python3 bench/ssh_bench.py [--size MiB] [--rounds N] [--workdir DIR]
                               [--keep] [--no-reference] [--json FILE]

One file of ``--size`` MiB (default 1024) of random bytes is pushed with
``-a`` into a fresh remote directory, alternately by

  rsync         ``rsync -a -e 'ssh -F <test config>' src/ srv:dst/``
  pysync        ``pysync -a src/ srv:dst/``  (paramiko, no ssh binary)
  pysync -e ssh ``pysync -a -e 'ssh ...' src/ srv:dst/``  (same engine over
                OpenSSH: tells the transport's share from the engine's)
  +malloc       pysync (paramiko) with glibc told to keep freed memory
                (MALLOC_MMAP_THRESHOLD_ etc.): what the engine's 1 MiB
                transient buffers cost in page faults

and the bare transports move the same bytes into ``cat > /dev/null``
(``ssh srv cat`` vs ``SshChannel``).  The order rotates each round.  For
each: the best and median wall time, MB/s, and the CPU seconds of the
client's process tree and of the server side (sshd's reaped children).

The sshd, host keys, client keys, ~/.ssh/config and known_hosts are
generated (interop/sshd.py); nothing touches the real ~/.ssh.  Nothing
asserts on time: it prints a table and the ratio pysync / rsync.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "interop"))
sys.path.insert(0, str(ROOT))

import sshd  # noqa: E402


# glibc: serve big transient buffers from the heap and keep it, instead of an
# mmap/munmap (and a page fault per 4 KiB) for every 1 MiB buffer.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20),
              "MALLOC_TOP_PAD_": str(64 << 20)}


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _reaped_cpu(pid: int) -> float:
    """CPU seconds of the reaped children of ``pid`` (sshd's sessions)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def make_file(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size == size:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = 8 << 20
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(chunk, left)
            f.write(os.urandom(n))
            left -= n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024, help="MiB to push (default 1024)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--no-reference", action="store_true", help="skip pysync -e ssh and the bare transports")
    ap.add_argument("--no-malloc-row", action="store_true",
                    help="skip the row that runs pysync with glibc's malloc kept from returning memory")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    reason = sshd.skip_reason()
    if reason:
        print(f"ssh_bench: cannot run: {reason}", file=sys.stderr)
        return 2
    if not shutil.which("rsync") or not shutil.which("ssh"):
        print("ssh_bench: needs rsync and the OpenSSH client for the reference", file=sys.stderr)
        return 2
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ssh-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    size = args.size << 20
    src = work / "src"
    make_file(src / "big", size)
    world = sshd.SshWorld(work / "world")
    srv = world.server("sshd")
    world.write_config(world.host_block("srv", srv))
    world.write_known_hosts(srv.known_hosts_entry())
    env = world.env()
    rsh = (f"ssh -F {world.ssh_dir / 'config'} -o UserKnownHostsFile={world.ssh_dir / 'known_hosts'} "
           f"-o BatchMode=yes")
    dst = work / "dst"

    def transfer(argv, extra_env=None):
        def go():
            shutil.rmtree(dst, ignore_errors=True)
            subprocess.run(["sync"])
            p = subprocess.run(argv, env={**env, **(extra_env or {})}, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True)
            if p.returncode != 0:
                raise SystemExit(f"failed ({p.returncode}): {' '.join(argv)}\n{p.stderr}")
            if (dst / "big").stat().st_size != size:
                raise SystemExit(f"wrong result from {' '.join(argv)}")
        return go

    cat_script = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from pysync.transport.ssh import SshChannel\n"
        "ch = SshChannel('srv', command='cat > /dev/null')\n"
        f"f = open({str(src / 'big')!r}, 'rb', buffering=0)\n"
        "while True:\n"
        "    b = f.read(1 << 20)\n"
        "    if not b: break\n"
        "    ch.write(b)\n"
        "ch.close_write()\n"
        "while ch.read(65536): pass\n"
        "sys.exit(ch.wait())\n")

    def bare(argv, stdin_file=None):
        def go():
            with open(stdin_file, "rb") if stdin_file else open(os.devnull, "rb") as fin:
                p = subprocess.run(argv, env=env, stdin=fin, capture_output=True, text=True)
            if p.returncode != 0:
                raise SystemExit(f"failed ({p.returncode}): {' '.join(argv)}\n{p.stderr}")
        return go

    cases = {
        "rsync (OpenSSH)": transfer(["rsync", "-a", "-e", rsh, f"{src}/", f"srv:{dst}/"]),
        "pysync (paramiko)": transfer(sshd.client_argv(["-a", f"{src}/", f"srv:{dst}/"])),
    }
    if not args.no_malloc_row:
        cases["pysync (paramiko) +malloc"] = transfer(
            sshd.client_argv(["-a", f"{src}/", f"srv:{dst}/"]), MALLOC_ENV)
    if not args.no_reference:
        cases["pysync -e ssh (OpenSSH)"] = transfer(
            [sys.executable, "-m", "pysync", "-a", "-e", rsh, f"{src}/", f"srv:{dst}/"])
        cases["bare: ssh cat"] = bare(rsh.split() + ["srv", "cat > /dev/null"], src / "big")
        cases["bare: SshChannel cat"] = bare([sys.executable, "-c", cat_script])

    sshd_pid = srv.proc.pid
    results = {name: {"wall": [], "client_cpu": [], "server_cpu": []} for name in cases}
    names = list(cases)
    try:
        for rnd in range(args.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for name in order:
                time.sleep(0.5)
                c0, s0, t0 = _children_cpu(), _reaped_cpu(sshd_pid), time.perf_counter()
                cases[name]()
                t1 = time.perf_counter()
                time.sleep(0.2)             # let sshd reap its session
                results[name]["wall"].append(t1 - t0)
                results[name]["client_cpu"].append(_children_cpu() - c0)
                results[name]["server_cpu"].append(_reaped_cpu(sshd_pid) - s0)
                print(f"round {rnd + 1}: {name:26s} {t1 - t0:7.2f} s", flush=True)
    finally:
        world.close()
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.rmtree(dst, ignore_errors=True)

    print()
    print(f"push of {args.size} MiB over sshd on 127.0.0.1, {args.rounds} rounds, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'':26s} {'best s':>8s} {'median s':>9s} {'MB/s':>7s} {'client CPU s':>13s} {'server CPU s':>13s}")
    summary = {}
    for name, r in results.items():
        best, med = min(r["wall"]), statistics.median(r["wall"])
        summary[name] = {"best": best, "median": med, "mbps": size / best / 1e6,
                         "client_cpu": statistics.median(r["client_cpu"]),
                         "server_cpu": statistics.median(r["server_cpu"]), "runs": r["wall"]}
        print(f"{name:26s} {best:8.2f} {med:9.2f} {size / best / 1e6:7.0f} "
              f"{summary[name]['client_cpu']:13.2f} {summary[name]['server_cpu']:13.2f}")
    a, b = summary["pysync (paramiko)"], summary["rsync (OpenSSH)"]
    ratio_best, ratio_med = a["best"] / b["best"], a["median"] / b["median"]
    print(f"\nratio pysync (paramiko) / rsync (OpenSSH): best {ratio_best:.2f}, median {ratio_med:.2f} "
          f"(target <= 1.3)")
    if "pysync (paramiko) +malloc" in summary:
        m = summary["pysync (paramiko) +malloc"]
        print(f"ratio with glibc malloc tuned ({' '.join(f'{k}={v}' for k, v in MALLOC_ENV.items())}): "
              f"best {m['best'] / b['best']:.2f}, median {m['median'] / b['median']:.2f}")
    if "pysync -e ssh (OpenSSH)" in summary:
        c = summary["pysync -e ssh (OpenSSH)"]
        print(f"ratio pysync (paramiko) / pysync -e ssh: best {a['best'] / c['best']:.2f} "
              f"(the transport's own share)")
        d, e = summary["bare: SshChannel cat"], summary["bare: ssh cat"]
        print(f"bare transport ratio SshChannel / OpenSSH: best {d['best'] / e['best']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"size_mib": args.size, "rounds": args.rounds, "results": summary,
                                         "ratio_best": ratio_best, "ratio_median": ratio_med}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
