"""How the ``pysync`` program ends (cli.command): the exit status of the
run, all output written, atexit handlers run, and a process that still has
a non-daemon thread running ends the interpreter's usual way (joining it).
command() skips the interpreter's teardown with os._exit; these are the
things that teardown would otherwise have done."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _env():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("RSYNC_RSH", None)
    return env


def _run(args, **kw):
    return subprocess.run([sys.executable] + args, env=_env(), capture_output=True, text=True,
                          timeout=120, **kw)


def test_output_and_status_of_a_run(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(300):
        (src / f"f{i:03}").write_bytes(b"x" * i)
    # stdout is a pipe (block-buffered): every line must still arrive
    r = _run(["-m", "pysync", "-av", "--stats", f"{src}/", f"{tmp_path / 'dst'}/"])
    assert r.returncode == 0, r.stderr
    assert "f299\n" in r.stdout and r.stdout.rstrip().splitlines()[-1].startswith("total size is")
    r = _run(["-m", "pysync", "-a", f"{tmp_path / 'missing'}/", f"{tmp_path / 'dst'}/"])
    assert r.returncode == 23
    assert r.stderr.rstrip().splitlines()[-1].startswith("rsync error: some files/attrs were not transferred")
    r = _run(["-m", "pysync"])
    assert r.returncode == 1 and "rsync error: syntax or usage error (code 1)" in r.stderr


SCRIPT = """\
import atexit, sys, threading, time
from pysync.cli import command
mark = sys.argv[1]
atexit.register(lambda: open(mark + ".atexit", "w").write("ran"))
if sys.argv[2] == "thread":
    def late():
        time.sleep(0.5)
        open(mark + ".thread", "w").write("done")
    threading.Thread(target=late).start()
sys.argv = ["pysync"] + sys.argv[3:]
command()
"""


def test_atexit_handlers_run(tmp_path):
    script = tmp_path / "s.py"
    script.write_text(SCRIPT)
    mark = tmp_path / "m"
    r = _run([str(script), str(mark), "-", "-a", f"{tmp_path / 'missing'}/", f"{tmp_path / 'd'}/"])
    assert r.returncode == 23, r.stderr
    assert (tmp_path / "m.atexit").read_text() == "ran"


def test_a_running_thread_is_joined(tmp_path):
    script = tmp_path / "s.py"
    script.write_text(SCRIPT)
    mark = tmp_path / "m"
    r = _run([str(script), str(mark), "thread", "--version"])
    assert r.returncode == 0 and r.stdout.startswith("pysync  version")
    assert (tmp_path / "m.thread").read_text() == "done"
    assert (tmp_path / "m.atexit").read_text() == "ran"
