"""pysync/modcache.py: the bytecode of a run's modules in one file.

Each test works on its own copy of the package (the cache file lives in
the package's __pycache__), runs the command line as a user does, and
checks the ``.pyc`` rules: written by a run that imported what the file
lacks, served only while each module's source is unchanged, ignored when
damaged or made by another interpreter or optimization level, never
written when the interpreter writes no bytecode.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Runs the command line the way scripts/pysync does, then reports (on
# fd 3) which modules the cache served in this process.
PROBE = """\
import os, sys
from pysync import modcache
modcache.install()
from pysync.cli import main
code = main(sys.argv[1:])
f = modcache._finder
served = sorted(n for n, m in sys.modules.items()
                if isinstance(getattr(m, "__loader__", None), modcache._Finder))
with open(os.environ["PROBE_OUT"], "w") as out:
    out.write(" ".join(served))
modcache.save()
sys.exit(code)
"""


@pytest.fixture
def pkg(tmp_path):
    """A private copy of the package, without bytecode, and a tree to copy."""
    root = tmp_path / "install"
    shutil.copytree(REPO / "pysync", root / "pysync",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "probe.py").write_text(PROBE)
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_bytes(b"content\n" * 1000)
    (src / "g").write_bytes(b"other")
    return root


def environ(root: Path) -> dict:
    # bytecode where an installed package keeps it (not the suite's prefix)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    env["PYTHONPATH"] = str(root)
    return env


def run(root: Path, tmp: Path, *flags, env_extra=None) -> list:
    env = environ(root)
    env["PROBE_OUT"] = str(tmp / "served.txt")
    env.update(env_extra or {})
    dst = tmp / "dst"
    r = subprocess.run([sys.executable, *flags, str(root / "probe.py"), "-a", f"{tmp}/src/", f"{dst}/"],
                       env=env, capture_output=True, text=True, timeout=120, cwd=tmp)
    assert r.returncode == 0, r.stderr
    assert (dst / "d" / "f").read_bytes() == (tmp / "src" / "d" / "f").read_bytes()
    return (tmp / "served.txt").read_text().split()


def cache_file(root: Path) -> Path:
    [p] = (root / "pysync" / "__pycache__").glob("_startup.*.modcache")
    return p


def test_written_by_the_first_run_and_serves_the_next(pkg, tmp_path):
    assert run(pkg, tmp_path) == []
    cache = cache_file(pkg)
    served = run(pkg, tmp_path)
    # both processes of a local copy: the sender's parent and the receiving child
    for name in ("pysync.cli", "pysync.session", "pysync.protocol.flist", "pysync.sending"):
        assert name in served
    assert "pysync.modcache" not in served      # loaded before the cache is installed
    size = cache.stat().st_size
    run(pkg, tmp_path)
    assert cache.stat().st_size == size        # nothing new: not rewritten


def test_a_changed_source_is_never_served_stale(pkg, tmp_path):
    run(pkg, tmp_path)
    run(pkg, tmp_path)
    text = pkg / "pysync" / "text.py"
    text.write_text(text.read_text() + "\nEDITED_MARKER = 1\n")
    served = run(pkg, tmp_path)
    assert "pysync.text" not in served and "pysync.cli" in served
    check = subprocess.run(
        [sys.executable, "-c", "from pysync import modcache; modcache.install(); import pysync.text as t; "
         "print(t.EDITED_MARKER, type(t.__loader__).__name__)"],
        env=environ(pkg), capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert check.stdout.split() == ["1", "_Finder"], check.stderr     # rewritten with the new code


def test_a_damaged_file_is_ignored_and_replaced(pkg, tmp_path):
    run(pkg, tmp_path)
    cache = cache_file(pkg)
    data = bytearray(cache.read_bytes())
    cache.write_bytes(b"garbage" + bytes(data[7:]))
    assert run(pkg, tmp_path) == []
    assert "pysync.cli" in run(pkg, tmp_path)
    # a damaged entry: that module is compiled from its source instead
    index = subprocess.run(
        [sys.executable, "-c", "from pysync import modcache; e = modcache._read_index(modcache.cache_path())[1]"
         "['pysync.text']; print(e[5], e[6])"], env=environ(pkg), capture_output=True, text=True, cwd=tmp_path)
    offset, length = map(int, index.stdout.split())
    data = bytearray(cache.read_bytes())
    data[offset:offset + length] = b"\xff" * length
    cache.write_bytes(bytes(data))
    served = run(pkg, tmp_path)         # (it checks the copy is right)
    assert "pysync.text" in served and "pysync.cli" in served


def test_each_optimization_level_has_its_own(pkg, tmp_path):
    run(pkg, tmp_path)
    plain = cache_file(pkg)
    size = plain.stat().st_size
    assert run(pkg, tmp_path, "-O") == []
    assert "pysync.cli" in run(pkg, tmp_path, "-O")
    assert (pkg / "pysync" / "__pycache__" / plain.name.replace(".modcache", ".opt-1.modcache")).exists()
    assert plain.stat().st_size == size and "pysync.cli" in run(pkg, tmp_path)


def test_nothing_written_when_the_interpreter_writes_no_bytecode(pkg, tmp_path):
    run(pkg, tmp_path, env_extra={"PYTHONDONTWRITEBYTECODE": "1"})
    run(pkg, tmp_path, "-B")
    assert not (pkg / "pysync" / "__pycache__").exists() or \
        list((pkg / "pysync" / "__pycache__").glob("*.modcache")) == []


def test_a_run_where_the_file_cannot_be_written_still_succeeds(pkg, tmp_path):
    # (a __pycache__ that is not a directory: root can write anywhere else)
    (pkg / "pysync" / "__pycache__").write_bytes(b"")
    assert run(pkg, tmp_path) == []
    assert run(pkg, tmp_path) == []
