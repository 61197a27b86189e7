#!/usr/bin/env python3
"""Run pysync under cProfile, every process and thread of it.

    python3 bench/profile_pysync.py OUTDIR -- PYSYNC-ARGS...
    python3 bench/profile_pysync.py --report OUTDIR [--top N]

The first form runs ``pysync.cli.main(PYSYNC-ARGS)`` with a profiler on the
main thread, on every ``threading.Thread`` (wrapped ``run``), and in the
forked local child (``LocalChild``'s server function). Each process writes
``OUTDIR/<role>-<pid>-<thread>.prof``. To profile the far side of an ``-e``
transfer, make the remote command this script too:

    python3 bench/profile_pysync.py /tmp/p -- -a -e "python3 interop/fake_rsh.py" \\
        --rsync-path="python3 bench/profile_pysync.py /tmp/p --" SRC localhost:DST/

The second form prints, per process, the top functions by cumulative and
by own time over all of its threads merged (threads overlap in time, so
cumulative figures of different threads add up beyond the wall time).
"""

from __future__ import annotations

import cProfile
import glob
import os
import pstats
import sys
import threading

_profilers: list = []   # (name, Profile) of this process, not yet dumped
_outdir = ""
_role = "client"


def _dump(name: str, prof: cProfile.Profile) -> None:
    try:
        prof.disable()
    except Exception:
        pass
    prof.dump_stats(os.path.join(_outdir, f"{_role}-{os.getpid()}-{name}.prof"))


def _dump_all() -> None:
    for name, prof in list(_profilers):
        _dump(name, prof)
    _profilers.clear()


def _install() -> None:
    orig_run = threading.Thread.run

    def run(self):
        prof = cProfile.Profile()
        entry = (self.name.replace("/", "_"), prof)
        _profilers.append(entry)
        prof.enable()
        try:
            orig_run(self)
        finally:
            prof.disable()
            if entry in _profilers:
                _profilers.remove(entry)
                _dump(*entry)
    threading.Thread.run = run

    def after_fork_child():
        global _role
        _profilers.clear()
        _role = "child"
    os.register_at_fork(after_in_child=after_fork_child)

    from pysync.transport import local
    orig_init = local.LocalChild.__init__

    def init(self, server_main, **kw):
        def profiled(stream):
            prof = cProfile.Profile()
            _profilers.append(("main", prof))
            prof.enable()
            try:
                return server_main(stream)
            finally:
                prof.disable()
                _dump_all()  # the child leaves by os._exit
        orig_init(self, profiled, **kw)
    local.LocalChild.__init__ = init


def profile_main(outdir: str, args: list) -> int:
    global _outdir, _role
    _outdir = outdir
    os.makedirs(outdir, exist_ok=True)
    _role = "server" if "--server" in args else "client"
    _install()
    from pysync.cli import main
    prof = cProfile.Profile()
    _profilers.append(("main", prof))
    prof.enable()
    try:
        code = main(args)
    finally:
        prof.disable()
        _dump_all()
    return code


def report(outdir: str, top: int) -> None:
    groups: dict = {}
    for path in sorted(glob.glob(os.path.join(outdir, "*.prof"))):
        role, pid, _rest = os.path.basename(path).split("-", 2)
        groups.setdefault((role, pid), []).append(path)
    for (role, pid), paths in groups.items():
        st = pstats.Stats(*paths, stream=sys.stdout)
        st.strip_dirs()
        print(f"==== {role} pid {pid} ({len(paths)} thread profile(s)), total {st.total_tt:.3f} s")
        for key in ("cumulative", "tottime"):
            print(f"---- by {key}")
            st.sort_stats(key).print_stats(top)


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv and argv[0] == "--report":
        n = 25
        if "--top" in argv:
            n = int(argv[argv.index("--top") + 1])
        report(argv[1], n)
        sys.exit(0)
    if len(argv) < 2 or argv[1] != "--":
        sys.exit(__doc__)
    sys.exit(profile_main(argv[0], argv[2:]))
