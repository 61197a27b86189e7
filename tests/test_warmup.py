"""pysync/warmup.py: the files a run will import, read ahead from a helper
thread at start-up (a cold page cache).  It must name the files the
import system really reads, never hold up or outlive the process, and be
stopped before a fork."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pysync import warmup

REPO = Path(__file__).resolve().parents[1]


def test_files_names_what_a_local_no_op_imports(tmp_path):
    # Which files the two processes of a local copy and its no-op re-sync
    # import (their module objects' __cached__, or __file__ for extensions).
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_bytes(b"x" * 5000)
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os, sys\n"
        "out = sys.argv[1]\n"
        "def dump(tag):\n"
        "    with open(out, 'a') as f:\n"
        "        for m in list(sys.modules.values()):\n"
        "            p = getattr(m, '__cached__', None) or getattr(m, '__file__', None)\n"
        "            if p: f.write(tag + ' ' + m.__name__ + ' ' + p + '\\n')\n"
        "_exit = os._exit\n"
        "def child_exit(code):\n"
        "    dump('child'); _exit(code)\n"
        "os._exit = child_exit\n"
        "from pysync.cli import main\n"
        "code = main(sys.argv[2:])\n"
        "dump('parent')\n"
        "from pysync import warmup\n"
        "with open(out, 'a') as f:\n"
        "    f.writelines(f'wanted - {p}\\n' for p in warmup.files())\n"
        "sys.exit(code)\n")
    out = tmp_path / "mods.txt"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for _ in range(2):
        r = subprocess.run([sys.executable, str(probe), str(out), "-a", f"{src}/", f"{dst}/"],
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    loaded, wanted = {}, set()
    for line in out.read_text().splitlines():
        tag, name, path = line.split(" ", 2)
        if tag == "wanted":
            wanted.add(path)        # as the probe's own interpreter sees them
        else:
            loaded[name] = path
    assert "pysync.receiving" in loaded and "pysync.sending" in loaded
    missed = []
    for name, path in loaded.items():
        ours = name == "pysync" or name.startswith("pysync.")
        if not ours and name not in ("threading", "queue", "heapq", "struct", "_socket", "select",
                                     "_heapq", "_queue", "grp", "collections", "functools"):
            continue
        # the bytecode when it is there, else the source it is compiled from
        source = path.replace("__pycache__/", "").rsplit(".", 2)[0] + ".py" \
            if path.endswith(".pyc") else path
        if os.path.exists(path) and path in wanted or source in wanted:
            continue
        missed.append(name)
    assert missed == []
    # and never what no local run loads
    assert not [p for p in wanted if "/transport/ssh" in p or p.endswith(("/api.py", "api." +
                                                                           sys.implementation.cache_tag + ".pyc"))]


def test_with_a_module_cache_that_file_and_the_compiled_modules(tmp_path):
    # pysync/modcache.py serves the modules: no .pyc or source is read ahead
    cache = tmp_path / "_startup.modcache"
    cache.write_bytes(b"x")
    names = warmup.files(str(REPO / "pysync"), cache=str(cache))
    assert str(cache) in names
    assert not [p for p in names if p.endswith((".py", ".pyc"))]
    assert [p for p in names if "_native" in p] or not list((REPO / "pysync").glob("_native*"))
    assert [p for p in names if "/lib-dynload/" in p]


def test_every_listed_file_exists_in_this_install():
    names = warmup.files(str(REPO / "pysync"))
    assert len(names) > 50
    assert [p for p in names if not os.path.exists(p)] == []


def test_stopped_before_a_fork_and_at_exit():
    # In a fresh interpreter: start, fork at once, and report from both
    # sides whether the helper is still busy.
    code = (
        "import os, sys\n"
        "from pysync import warmup\n"
        "warmup.start()\n"
        "pid = os.fork()\n"
        "busy = warmup._busy.locked()\n"
        "if pid == 0:\n"
        "    print('child', busy, warmup._stopping, flush=True); os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print('parent', busy, warmup._stopping, flush=True)\n")
    r = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(REPO)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split("\n")[:2]) == ["child False True", "parent False True"]


@pytest.mark.parametrize("args", [["--version"], ["--no-such-option"]])
def test_the_command_ends_as_before(args):
    """The program with the helper running: output and exit code as
    without it (a run that ends at once leaves no thread behind)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with_helper = subprocess.run([sys.executable, "-m", "pysync"] + args, env=env,
                                 capture_output=True, text=True, timeout=60)
    without = subprocess.run([sys.executable, "-c", "import sys; from pysync.cli import main; "
                              "sys.exit(main(sys.argv[1:]))"] + args, env=env,
                             capture_output=True, text=True, timeout=60)
    assert (with_helper.returncode, with_helper.stdout, with_helper.stderr) == \
        (without.returncode, without.stdout, without.stderr)


def test_a_warm_cache_is_recognised(tmp_path):
    """A file just read is resident; one whose pages were dropped is not
    (the helper then reads ahead); no file, no claim."""
    f = tmp_path / "f"
    f.write_bytes(os.urandom(1 << 16))
    f.read_bytes()
    assert warmup._resident(str(f))
    fd = os.open(f, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    if warmup._resident(str(f)):
        pytest.skip("this file system keeps the pages (or reads without waiting)")
    assert not warmup._resident(str(tmp_path / "missing"))
