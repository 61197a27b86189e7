#!/usr/bin/env python3
"""pysync and rsync side by side on the same generated data, in the same run.

    python3 bench/run.py [--quick] [--only NAME[,NAME...]] [--repeat N]
                         [--workdir DIR] [--keep] [--no-drop-caches]
                         [--json FILE] [--rss-interval SECONDS] [--venv DIR]

Workloads (full size; ``--quick`` scales them down for a smoke run):

  copy-1g     a 1 GiB file, local copy, ``-a``
  small       20,000 files of 1-16 KiB in 200 directories, local copy, ``-a``
  noop-1g     re-sync of the 1 GiB file onto an identical destination
  noop-small  re-sync of the small-file tree onto an identical destination
  delta       a 256 MiB file with 64 scattered 4 KiB changes, pushed over
              ``-e fake_rsh`` (``--no-W`` when pysync accepts it); the
              destination is re-seeded from the old version before each run
  delta-z     the same with ``-z``

Every run passes ``--stats`` (to read "Literal data"). For each workload the
two tools run alternately (the order flips each repetition) under the same
conditions: before every timed run the destination is prepared, then
``sync; echo 3 > /proc/sys/vm/drop_caches`` (when we may write it) and a
1 s pause. Reported: the median wall time of N runs, MB/s (source bytes /
median time, MB = 10^6 bytes), literal bytes, and the peak RSS of the tool's
whole process tree (see ``TreeSampler``).

Which pysync runs: by default the ``pysync`` script beside this Python
(else ``python -m pysync``), importing pysync as this environment does
(PYTHONPATH, an editable install). ``--venv DIR`` instead creates (or
reuses) a virtualenv at DIR, installs this checkout into it as a user's
``pip install`` does (not editable: the wheel is built, native extension
included, from a copy of the checkout), and times DIR/bin/pysync with
PYTHONPATH cleared: a venv does not run the base interpreter's
site-packages .pth files, so this is pysync as installed on a plain
machine. The header names the pysync that ran and whether a venv was used.

Nothing here is a test and nothing asserts on time; it prints a table and
exits 0 unless a tool failed or produced a wrong result.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FAKE_RSH = os.path.join(REPO, "interop", "fake_rsh.py")
RSYNC = "/usr/bin/rsync"
DROP_CACHES = "/proc/sys/vm/drop_caches"
TIME = "/usr/bin/time"

MiB = 1 << 20
GiB = 1 << 30


# ---------------------------------------------------------------- tools

def pysync_argv0() -> list:
    """The pysync entry point without a pyenv shim in front (the shim is a
    bash script that costs ~80 ms per start; that is not pysync's time)."""
    script = os.path.join(os.path.dirname(sys.executable), "pysync")
    if os.access(script, os.X_OK):
        return [script]
    found = shutil.which("pysync")
    if found and "/shims/" not in found:
        return [found]
    return [sys.executable, "-m", "pysync"]


PYSYNC = pysync_argv0()

#: The environment of every timed run (both tools). See Bench.bytecode().
TOOL_ENV = dict(os.environ)
TOOLS = {"rsync": [RSYNC], "pysync": PYSYNC}


#: The files of the checkout a pip install builds from.
INSTALL_FILES = ("pyproject.toml", "setup.py", "README.md", "scripts/pysync")
INSTALL_DIRS = ("pysync", "native")


def _install_tree_files():
    for name in INSTALL_FILES:
        if os.path.isfile(os.path.join(REPO, name)):
            yield name
    for top in INSTALL_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(REPO, top)):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for f in sorted(filenames):
                if f.endswith((".so", ".pyc", ".o")):
                    continue      # build products: the install builds its own
                yield os.path.relpath(os.path.join(dirpath, f), REPO)


def checkout_digest() -> str:
    """What the installed copy was built from (names and contents)."""
    h = hashlib.sha256()
    for rel in _install_tree_files():
        h.update(rel.encode() + b"\0")
        with open(os.path.join(REPO, rel), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def setup_venv(venv: str) -> tuple:
    """A virtualenv at ``venv`` with this checkout pip-installed into it
    (created, or reused when it was built from the same files); returns
    (argv of its pysync, how it was set up)."""
    py = os.path.join(venv, "bin", "python")
    marker = os.path.join(venv, "pysync-checkout.sha256")
    digest = checkout_digest()
    created = not os.access(py, os.X_OK)
    if created:
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", venv], check=True)
    try:
        with open(marker) as f:
            current = f.read().strip() == digest
    except OSError:
        current = False
    if current:
        how = "reused (installed from the same checkout files)"
    else:
        # pip builds in the source tree: build from a copy, so the checkout
        # gets no build/ or egg-info, and the install is what a user's is.
        src = os.path.join(venv, "pysync-src")
        shutil.rmtree(src, ignore_errors=True)
        for rel in _install_tree_files():
            os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
            shutil.copy2(os.path.join(REPO, rel), os.path.join(src, rel))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        pip = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        if not created:
            subprocess.run(pip + ["--force-reinstall", "--no-deps", src], check=True, env=env)
        subprocess.run(pip + [src], check=True, env=env)
        with open(marker, "w") as f:
            f.write(digest + "\n")
        how = ("created" if created else "reused") + ", pip install of this checkout"
    return [os.path.join(venv, "bin", "pysync")], how


def use_venv(venv: str) -> str:
    """Time the venv's pysync: its script, and an environment without this
    one's PYTHONPATH (which would import the checkout instead) or bytecode
    settings (the install compiled its own __pycache__)."""
    global PYSYNC
    argv, how = setup_venv(venv)
    PYSYNC = TOOLS["pysync"] = argv
    for var in ("PYTHONPATH", "PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE", "PYTHONHOME"):
        TOOL_ENV.pop(var, None)
    return how


def pysync_location() -> str:
    """Where the timed pysync imports its package from (its interpreter
    is the script's #! line, or the argv's own Python)."""
    interp = PYSYNC[0]
    if PYSYNC[1:2] != ["-m"]:
        with open(PYSYNC[0], "rb") as f:
            first = f.readline()
        if first.startswith(b"#!"):
            interp = first[2:].decode().split()[0]
    r = subprocess.run([interp, "-c", "import pysync; print(pysync.__file__)"], capture_output=True,
                       text=True, env=TOOL_ENV, cwd="/")     # not this directory's pysync/
    return os.path.dirname(r.stdout.strip()) if r.returncode == 0 else "(unknown: " + r.stderr.strip()[-200:] + ")"


def pysync_accepts(option: str) -> bool:
    """Whether pysync's option parser takes ``option`` (unknown ones exit 1)."""
    return subprocess.run(PYSYNC + [option, "--version"], capture_output=True, env=TOOL_ENV).returncode == 0


# ---------------------------------------------------------------- data

def write_random(path: str, size: int, seed: int) -> None:
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(rnd.randbytes(n))
            left -= n


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def tree_summary(root: str):
    """(files, bytes) under root."""
    files = size = 0
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            files += 1
            size += os.lstat(os.path.join(dirpath, n)).st_size
    return files, size


def trees_equal(a: str, b: str) -> str | None:
    """None when every regular file under a exists under b with equal
    content, size and mtime (and b has no extra files); else a reason."""
    seen = 0
    for dirpath, _dirs, names in os.walk(a):
        rel = os.path.relpath(dirpath, a)
        for n in names:
            pa, pb = os.path.join(dirpath, n), os.path.join(b, rel, n)
            try:
                sa, sb = os.lstat(pa), os.lstat(pb)
            except FileNotFoundError:
                return f"missing {os.path.join(rel, n)}"
            if sa.st_size != sb.st_size or int(sa.st_mtime) != int(sb.st_mtime):
                return f"size/mtime differ: {os.path.join(rel, n)}"
            with open(pa, "rb") as fa, open(pb, "rb") as fb:
                while True:
                    x, y = fa.read(4 * MiB), fb.read(4 * MiB)
                    if x != y:
                        return f"content differs: {os.path.join(rel, n)}"
                    if not x:
                        break
            seen += 1
    if tree_summary(b)[0] != seen:
        return "destination has extra files"
    return None


@dataclass
class Sizes:
    big: int = 1 * GiB
    small_files: int = 20_000
    small_dirs: int = 200
    small_min: int = 1024
    small_max: int = 16 * 1024
    delta_size: int = 256 * MiB
    delta_changes: int = 64
    delta_change_len: int = 4096


QUICK = Sizes(big=64 * MiB, small_files=2_000, small_dirs=20, delta_size=32 * MiB, delta_changes=16)


class Data:
    """Generates each data set once, on first use, deterministically."""

    def __init__(self, root: str, sizes: Sizes):
        self.root, self.sizes = root, sizes
        self._done: set = set()

    def path(self, *p) -> str:
        return os.path.join(self.root, *p)

    def big(self) -> str:
        src = self.path("big-src")
        if "big" not in self._done:
            os.makedirs(src, exist_ok=True)
            write_random(os.path.join(src, "big.bin"), self.sizes.big, seed=1)
            os.utime(os.path.join(src, "big.bin"), (1_600_000_000, 1_600_000_000))
            self._done.add("big")
        return src

    def small(self) -> str:
        src = self.path("small-src")
        if "small" not in self._done:
            s = self.sizes
            rnd = random.Random(2)
            per_dir = s.small_files // s.small_dirs
            for d in range(s.small_dirs):
                dp = os.path.join(src, f"d{d:03d}")
                os.makedirs(dp, exist_ok=True)
                for i in range(per_dir):
                    fp = os.path.join(dp, f"f{i:04d}.dat")
                    with open(fp, "wb") as f:
                        f.write(rnd.randbytes(rnd.randint(s.small_min, s.small_max)))
                    t = 1_600_000_000 + d * 1000 + i
                    os.utime(fp, (t, t))
            self._done.add("small")
        return src

    def delta(self):
        """(src dir holding the new version, path of the old version, digest of new)."""
        src = self.path("delta-src")
        old = self.path("delta-old.bin")
        if "delta" not in self._done:
            s = self.sizes
            os.makedirs(src, exist_ok=True)
            write_random(old, s.delta_size, seed=3)
            os.utime(old, (1_500_000_000, 1_500_000_000))
            new = os.path.join(src, "delta.bin")
            shutil.copyfile(old, new)
            rnd = random.Random(4)
            # one change at a random offset inside each of 64 equal slices:
            # scattered, never overlapping, not aligned to any block size
            slice_len = s.delta_size // s.delta_changes
            with open(new, "r+b") as f:
                for k in range(s.delta_changes):
                    off = k * slice_len + rnd.randrange(slice_len - s.delta_change_len)
                    f.seek(off)
                    f.write(rnd.randbytes(s.delta_change_len))
            os.utime(new, (1_600_000_000, 1_600_000_000))
            self._new_digest = file_digest(new)
            self._done.add("delta")
        return src, old, self._new_digest


# ---------------------------------------------------------------- RSS sampling

class TreeSampler(threading.Thread):
    """Peak RSS of a process tree, by polling /proc every ``interval`` s.

    Each poll lists /proc, learns the parent of every pid not seen before
    (/proc/PID/stat), takes the descendants of the root pid and reads
    /proc/PID/status of each. The kernel keeps VmHWM (peak RSS) per address
    space: a fork starts from the child's real RSS (shared copy-on-write
    pages count in both processes, as in ``time -f %M``) and an exec starts
    a fresh one. So a process image is keyed by (pid, Name), and only the
    last image of each pid counts: a child seen between fork and exec is a
    transient copy of its parent, and fake_rsh -> sh -> server is one pid.
    Images that are harness (the root, which is /usr/bin/time; the fake
    remote shell; sh) are dropped. The tool's peak is the sum of VmHWM over
    its processes (each process's own peak; an upper bound on the tree's
    simultaneous RSS); ``concurrent`` is the largest sum of VmRSS seen in
    one poll (a lower bound). Growth after a process's last poll, and a
    process that lives less than one interval, are missed; /usr/bin/time
    reports the exact peak of the largest single process as a check."""

    HARNESS_NAMES = {"sh", "dash", "bash", "time"}

    def __init__(self, root_pid: int, interval: float):
        super().__init__(daemon=True)
        self.root, self.interval = root_pid, interval
        self.parent: dict = {}
        self.hwm: dict = {}        # (pid, name) -> peak VmHWM in KiB
        self.last: dict = {}       # pid -> its last (pid, name) key
        self.harness: dict = {}    # (pid, name) -> bool
        self.concurrent = 0
        self.polls = 0
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def run(self) -> None:
        start = time.monotonic()
        while True:
            self.poll()
            # 2 ms for the first half second (short-lived processes of
            # no-op runs), then the configured interval
            step = min(self.interval, 0.002) if time.monotonic() - start < 0.5 else self.interval
            if self._halt.wait(step):
                return

    def poll(self) -> None:
        self.polls += 1
        try:
            pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        except OSError:
            return
        for pid in pids:
            if pid not in self.parent:
                try:
                    with open(f"/proc/{pid}/stat", "rb") as f:
                        stat = f.read()
                    self.parent[pid] = int(stat[stat.rindex(b")") + 2:].split()[1])
                except (OSError, ValueError, IndexError):
                    self.parent[pid] = -1
        tree, changed = {self.root}, True
        while changed:
            changed = False
            for pid in pids:
                if pid not in tree and self.parent.get(pid) in tree:
                    tree.add(pid)
                    changed = True
        total = 0
        for pid in tree:
            try:
                with open(f"/proc/{pid}/status", "rb") as f:
                    status = f.read().decode("ascii", "replace")
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            name = fields.get("Name", "").strip()
            if fields.get("State", "").strip().startswith("Z"):
                continue  # a zombie has no memory left to report
            hwm = int(fields.get("VmHWM", "0 kB").split()[0])
            rss = int(fields.get("VmRSS", "0 kB").split()[0])
            key = (pid, name)
            if key not in self.harness:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read()
                except OSError:
                    cmd = b""
                head = b" ".join(cmd.split(b"\0")[:2])  # interpreter and script
                self.harness[key] = pid == self.root or name in self.HARNESS_NAMES \
                    or b"fake_rsh" in head
            self.last[pid] = key
            if not self.harness[key]:
                self.hwm[key] = max(self.hwm.get(key, 0), hwm)
                total += rss
        self.concurrent = max(self.concurrent, total)

    def result(self) -> dict:
        counted = {pid: key for pid, key in self.last.items() if not self.harness[key]}
        return {"sum_hwm_kib": sum(self.hwm[k] for k in counted.values()),
                "concurrent_kib": self.concurrent,
                "processes": sorted(f"{k[1]}:{self.hwm[k]}" for k in counted.values()),
                "polls": self.polls}


# ---------------------------------------------------------------- running

def drop_caches(enabled: bool) -> bool:
    os.sync()
    if not enabled:
        return False
    try:
        with open(DROP_CACHES, "w") as f:
            f.write("3\n")
    except OSError:
        return False
    time.sleep(1.0)
    return True


@dataclass
class Run:
    tool: str
    seconds: float
    code: int
    literal: int | None
    rss_kib: int
    concurrent_kib: int
    time_maxrss_kib: int  # largest single process, exact (time -f %M)
    processes: list
    dropped: bool
    ok: bool
    note: str = ""
    load1: float = 0.0   # 1-min load average just before the run


def run_once(argv: list, log_base: str, interval: float, dropped: bool, tool: str,
             local: bool) -> Run:
    """One timed run of argv under /usr/bin/time (a small C process, so the
    tool's ru_maxrss is not inflated by this Python runner's memory, which a
    fork-then-exec child would inherit into its rusage). Its %M is the peak
    of the largest single process the tool waited for; for a local run that
    is a tool process, so it is a floor for the sampled sum. Over -e it may
    be the fake remote shell's Python, so it is only recorded."""
    out = open(log_base + ".out", "wb")
    err = open(log_base + ".err", "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen([TIME, "-f", "%M", "-o", log_base + ".maxrss"] + argv,
                            stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=TOOL_ENV)
    sampler = TreeSampler(proc.pid, interval)
    sampler.start()
    _pid, status, _ru = os.wait4(proc.pid, 0)
    t1 = time.perf_counter()
    proc.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop()
    out.close()
    err.close()
    with open(log_base + ".out", "r", errors="replace") as f:
        text = f.read()
    m = re.search(r"Literal data:\s*([\d,]+)", text)
    lit = int(m.group(1).replace(",", "")) if m else None
    try:
        with open(log_base + ".maxrss") as f:
            maxrss = int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        maxrss = 0
    r = sampler.result()
    return Run(tool, t1 - t0, proc.returncode, lit, max(r["sum_hwm_kib"], maxrss if local else 0), r["concurrent_kib"], maxrss,
               r["processes"], dropped, proc.returncode == 0)


@dataclass
class Workload:
    name: str
    title: str
    time_target: float
    check_literal: bool = False
    rss_target: float = 2.0
    runs: dict = field(default_factory=lambda: {"rsync": [], "pysync": []})
    size: int = 0


class Bench:
    def __init__(self, args):
        self.args = args
        self.sizes = QUICK if args.quick else Sizes()
        os.makedirs(args.workdir, exist_ok=True)
        self.work = args.workdir
        self.data = Data(os.path.join(self.work, "data"), self.sizes)
        self.logs = os.path.join(self.work, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.no_w = pysync_accepts("--no-W") or pysync_accepts("--no-whole-file")
        self.notes: list = []
        if not self.no_w:
            self.notes.append("pysync does not accept --no-W yet: the delta runs omit it for both "
                              "tools (a remote transfer uses the delta algorithm by default in both)")
        self.dropped_any = False
        self.drop_failed = False
        self.bytecode()

    def bytecode(self) -> None:
        """Let pysync start from cached bytecode, as an installed package does.

        With PYTHONDONTWRITEBYTECODE set (as in some CI shells) and no
        __pycache__ in an editable checkout, every pysync start compiles its
        modules from source (~70 ms per process here). Unless --as-is-env,
        the tools run without that variable and with PYTHONPYCACHEPREFIX in
        the work dir (the checkout is not written to), warmed by one untimed
        local and one -e -z run of pysync."""
        if self.args.as_is_env:
            self.notes.append("environment as is: PYTHONDONTWRITEBYTECODE="
                              + os.environ.get("PYTHONDONTWRITEBYTECODE", "(unset)"))
            return
        TOOL_ENV.pop("PYTHONDONTWRITEBYTECODE", None)
        if not self.args.venv:      # an installed package has its own __pycache__
            TOOL_ENV["PYTHONPYCACHEPREFIX"] = os.path.join(self.work, "pycache")
        warm = os.path.join(self.work, "warm")
        os.makedirs(os.path.join(warm, "src"), exist_ok=True)
        with open(os.path.join(warm, "src", "f"), "wb") as f:
            f.write(random.Random(5).randbytes(100_000))
        rsh = f"{sys.executable} {FAKE_RSH}"
        for argv in (PYSYNC + ["-a", warm + "/src/", warm + "/d1/"],
                     PYSYNC + ["-a", "-z", "-e", rsh, "--rsync-path=" + " ".join(PYSYNC),
                               warm + "/src/", "localhost:" + warm + "/d2/"]):
            subprocess.run(argv, env=TOOL_ENV, stdout=subprocess.DEVNULL, check=True)
        self.notes.append("bytecode: PYTHONDONTWRITEBYTECODE removed and " + (
            "the venv's own __pycache__ (written by pip install)" if self.args.venv else
            "PYTHONPYCACHEPREFIX=" + TOOL_ENV["PYTHONPYCACHEPREFIX"]) + " (warmed) for both tools")

    # each workload: (prepare(dest) before every run, argv(tool, dest), verify(dest, first))
    def spec(self, name: str):
        s = self.sizes
        rsh = ["-e", f"{sys.executable} {FAKE_RSH}"]
        if name in ("copy-1g", "noop-1g"):
            src = self.data.big()
            size = s.big
            if name == "copy-1g":
                return size, self._fresh, lambda t, d: TOOLS[t] + ["-a", "--stats", src + "/", d + "/"], \
                    self._verify_tree(src)
            dest = self._synced_copy(src, "noop-1g-dst")
            return size, lambda d: None, lambda t, d: TOOLS[t] + ["-a", "--stats", src + "/", dest + "/"], \
                self._verify_fixed(src, dest)
        if name in ("small", "noop-small"):
            src = self.data.small()
            size = tree_summary(src)[1]
            if name == "small":
                return size, self._fresh, lambda t, d: TOOLS[t] + ["-a", "--stats", src + "/", d + "/"], \
                    self._verify_tree(src)
            dest = self._synced_copy(src, "noop-small-dst")
            return size, lambda d: None, lambda t, d: TOOLS[t] + ["-a", "--stats", src + "/", dest + "/"], \
                self._verify_fixed(src, dest)
        if name in ("delta", "delta-z"):
            src, old, digest = self.data.delta()
            size = s.delta_size
            extra = ["-z"] if name == "delta-z" else []
            nw = ["--no-W"] if self.no_w else []

            def prepare(d):
                self._fresh(d)
                dst = os.path.join(d, "delta.bin")
                shutil.copyfile(old, dst)
                st = os.stat(old)
                os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))

            def argv(t, d):
                return TOOLS[t] + ["-a"] + nw + extra + ["--stats"] + rsh + \
                    ["--rsync-path=" + " ".join(TOOLS[t]), os.path.join(src, "delta.bin"),
                     "localhost:" + d + "/"]

            def verify(d, first):
                got = file_digest(os.path.join(d, "delta.bin"))
                return None if got == digest else "destination differs from the new version"
            return size, prepare, argv, verify
        raise SystemExit(f"unknown workload {name!r}")

    def _fresh(self, d):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)

    def _synced_copy(self, src, name):
        dest = os.path.join(self.work, name)
        if not os.path.isdir(dest):
            # an identical destination, made once by stock rsync (untimed)
            subprocess.run([RSYNC, "-a", src + "/", dest + "/"], check=True)
        return dest

    def _verify_tree(self, src):
        def verify(d, first):
            if first:  # full content comparison once per tool
                return trees_equal(src, d)
            return None if tree_summary(d) == tree_summary(src) else "file count/size differs"
        return verify

    def _verify_fixed(self, src, dest):
        def verify(d, first):
            return trees_equal(src, dest) if first else None
        return verify

    def run_workload(self, wl: Workload) -> None:
        size, prepare, argv, verify = self.spec(wl.name)
        wl.size = size
        dest = os.path.join(self.work, "dst")
        order = ["rsync", "pysync"]
        for rep in range(self.args.repeat):
            for tool in (order if rep % 2 == 0 else order[::-1]):
                prepare(dest)
                dropped = drop_caches(not self.args.no_drop_caches)
                if dropped:
                    self.dropped_any = True
                elif not self.args.no_drop_caches:
                    self.drop_failed = True
                cmd = argv(tool, dest)
                base = os.path.join(self.logs, f"{wl.name}.{tool}.{rep}")
                load1 = os.getloadavg()[0]
                r = run_once(cmd, base, self.args.rss_interval, dropped, tool, not wl.name.startswith("delta"))
                if r.ok:
                    why = verify(dest, rep < 2)
                    if why:
                        r.ok, r.note = False, why
                else:
                    with open(base + ".err", errors="replace") as f:
                        r.note = f"exit {r.code}: " + f.read().strip()[-300:]
                r.load1 = load1
                wl.runs[tool].append(r)
                print(f"  {wl.name:<10} {tool:<6} run {rep + 1}: {r.seconds:8.3f} s  "
                      f"literal {fmt_int(r.literal):>13}  rss {r.rss_kib / 1024:7.1f} MiB"
                      f"{'' if r.ok else '  FAILED: ' + r.note}", flush=True)
                if rep == 0:
                    print(f"             argv: {' '.join(cmd)}", flush=True)


def fmt_int(v) -> str:
    return "-" if v is None else f"{v:,}"


WORKLOADS = [
    Workload("copy-1g", "1 GiB file, local copy", 1.0),
    Workload("small", "20,000 small files, local copy", 1.5),
    Workload("noop-1g", "no-op re-sync, 1 GiB file", 1.2),
    Workload("noop-small", "no-op re-sync, 20,000 files", 1.2),
    Workload("delta", "256 MiB, 64 x 4 KiB changes, -e", 1.2, check_literal=True),
    Workload("delta-z", "same, -z", 1.2, check_literal=True),
]


def summarize(wl: Workload) -> dict:
    row = {"workload": wl.name, "size": wl.size, "time_target": wl.time_target}
    for tool in ("rsync", "pysync"):
        runs = wl.runs[tool]
        good = [r for r in runs if r.ok]
        times = [r.seconds for r in good]
        row[tool] = {
            "runs": [r.__dict__ for r in runs],
            "median_s": statistics.median(times) if times else None,
            "min_s": min(times) if times else None,
            "max_s": max(times) if times else None,
            "literal": max((r.literal for r in good if r.literal is not None), default=None),
            "rss_kib": max((r.rss_kib for r in good), default=None),
            "failed": len(runs) - len(good),
        }
    a, b = row["rsync"], row["pysync"]
    row["ratio"] = b["median_s"] / a["median_s"] if a["median_s"] and b["median_s"] else None
    row["ratio_min"] = b["min_s"] / a["min_s"] if a["min_s"] and b["min_s"] else None
    row["load1"] = [r.load1 for t in ("rsync", "pysync") for r in wl.runs[t]]
    row["rss_ratio"] = b["rss_kib"] / a["rss_kib"] if a["rss_kib"] and b["rss_kib"] else None
    met = []
    ok_all = True
    if row["ratio"] is None:
        met.append("time: n/a (failed)")
        ok_all = False
    else:
        good = row["ratio"] <= wl.time_target
        ok_all &= good
        met.append(f"time<={wl.time_target:g} {'yes' if good else 'NO'}")
    if wl.check_literal:
        if a["literal"] is None or b["literal"] is None:
            met.append("literal n/a")
            ok_all = False
        else:
            good = b["literal"] <= a["literal"]
            ok_all &= good
            met.append(f"literal {'yes' if good else 'NO'}")
    if row["rss_ratio"] is None:
        ok_all = False
        met.append("rss n/a")
    else:
        good = row["rss_ratio"] <= wl.rss_target
        ok_all &= good
        met.append(f"rss<={wl.rss_target:g}x {'yes' if good else 'NO'}")
    row["targets"] = ", ".join(met)
    row["all_met"] = ok_all
    return row


def mbps(size, s):
    return f"{size / s / 1e6:.1f}" if s else "-"


def table(rows) -> str:
    head = ["workload", "rsync s", "pysync s", "ratio", "rsync MB/s", "pysync MB/s",
            "rsync literal B", "pysync literal B", "rsync RSS MiB", "pysync RSS MiB", "RSS ratio",
            "targets met", "best-of ratio", "load"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        a, b = r["rsync"], r["pysync"]

        def s(x):
            return "-" if x is None else f"{x:.3f}"

        def mib(x):
            return "-" if x is None else f"{x / 1024:.1f}"
        lines.append("| " + " | ".join([
            r["workload"], s(a["median_s"]), s(b["median_s"]),
            "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
            mbps(r["size"], a["median_s"]), mbps(r["size"], b["median_s"]),
            fmt_int(a["literal"]), fmt_int(b["literal"]),
            mib(a["rss_kib"]), mib(b["rss_kib"]),
            "-" if r["rss_ratio"] is None else f"{r['rss_ratio']:.2f}",
            r["targets"],
            "-" if r["ratio_min"] is None else f"{r['ratio_min']:.2f}",
            f"{min(r['load1']):.1f}-{max(r['load1']):.1f}"]) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="scaled-down sizes (smoke run)")
    p.add_argument("--only", action="append", default=[],
                   help="run only these workloads (comma-separated or repeated): "
                        + ", ".join(w.name for w in WORKLOADS))
    p.add_argument("--repeat", type=int, default=3, help="runs per tool and workload (median; default 3)")
    p.add_argument("--workdir", default=None,
                   help="where data is generated (default: a fresh dir under /var/tmp/pysync-bench)")
    p.add_argument("--keep", action="store_true", help="do not delete the work dir afterwards")
    p.add_argument("--no-drop-caches", action="store_true", help="never drop the page cache")
    p.add_argument("--rss-interval", type=float, default=0.01, help="/proc polling interval (s; default 0.01)")
    p.add_argument("--json", help="write all raw figures to this file")
    p.add_argument("--as-is-env", action="store_true",
                   help="run the tools in this environment unchanged (no bytecode cache set-up)")
    p.add_argument("--venv", metavar="DIR",
                   help="time a pysync pip-installed from this checkout into a virtualenv at DIR "
                        "(created, or reused if built from the same files)")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    names = [n for o in args.only for n in o.split(",") if n]
    known = {w.name for w in WORKLOADS}
    for n in names:
        if n not in known:
            p.error(f"unknown workload {n!r}; choose from {', '.join(sorted(known))}")
    selected = [w for w in WORKLOADS if not names or w.name in names]
    if args.workdir is None:
        os.makedirs("/var/tmp/pysync-bench", exist_ok=True)
        args.workdir = os.path.join("/var/tmp/pysync-bench", f"run-{os.getpid()}")
        created = True
    else:
        created = not os.path.exists(args.workdir)

    venv_how = use_venv(os.path.abspath(args.venv)) if args.venv else None
    rsync_version = subprocess.run([RSYNC, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    pysync_version = subprocess.run(PYSYNC + ["--version"], capture_output=True, text=True,
                                    env=TOOL_ENV).stdout.strip()
    pysync_package = pysync_location()
    venv_line = (f"venv {os.path.abspath(args.venv)} ({venv_how})" if args.venv else
                 "no venv (this environment's Python, PYTHONPATH and site-packages .pth files)")
    print(f"rsync:  {RSYNC}  ({rsync_version})")
    print(f"pysync: {' '.join(PYSYNC)}  ({pysync_version})")
    print(f"pysync package: {pysync_package}; {venv_line}")
    print(f"work dir: {args.workdir}; {'quick' if args.quick else 'full'} sizes; "
          f"{args.repeat} run(s) per tool; load average at start: {os.getloadavg()}")
    bench = Bench(args)
    for n in bench.notes:
        print("note:", n)
    rows = []
    started = time.time()
    try:
        for wl in selected:
            print(f"== {wl.name}: {wl.title}", flush=True)
            bench.run_workload(wl)
            rows.append(summarize(wl))
    finally:
        if not args.keep and created:
            shutil.rmtree(args.workdir, ignore_errors=True)
    print()
    print(table(rows))
    cache = ("dropped before every run (sync; echo 3 > drop_caches; 1 s pause)" if bench.dropped_any and
             not bench.drop_failed else "NOT dropped (" + ("disabled" if args.no_drop_caches else
                                                            "no permission") + "); sync before every run")
    print(f"\npage cache: {cache}")
    print(f"load average at end: {os.getloadavg()}; elapsed {time.time() - started:.0f} s")
    failed = any(r[t]["failed"] for r in rows for t in ("rsync", "pysync"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "machine": platform.uname()._asdict(),
                       "rsync": rsync_version, "pysync": pysync_version, "pysync_argv": PYSYNC,
                       "pysync_package": pysync_package, "venv": args.venv and os.path.abspath(args.venv),
                       "venv_setup": venv_how, "quick": args.quick,
                       "repeat": args.repeat, "page_cache": cache, "notes": bench.notes,
                       "rows": rows}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
