"""Tests for interop/fake_rsh.py, the stand-in for ssh in ``rsync -e``.

The script is exercised the way rsync uses it (a child process with ssh-like
arguments) and, for its argument parsing, imported as a module.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers.trees import compare_trees, is_root, make_awkward_names  # noqa: E402

FAKE_RSH = Path(__file__).resolve().parent.parent / "interop" / "fake_rsh.py"
RSYNC = shutil.which("rsync")
needs_rsync = pytest.mark.skipif(RSYNC is None, reason="system rsync not installed")

#: rsync's -e value: quoted so that rsync's own splitting keeps each path whole.
RSH = f'"{sys.executable}" "{FAKE_RSH}"'
#: Wall-clock limit for each child; a deadlock fails the test instead of hanging.
TIMEOUT = 120
#: A directory name that needs escaping for the remote shell: space, both
#: quotes, a dollar that would expand, a backslash.
AWKWARD_DIR = "d st'q\"$HOME\\x"


def _load_module():
    """Import fake_rsh.py by path (interop/ is not a package)."""
    spec = importlib.util.spec_from_file_location("fake_rsh", FAKE_RSH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fake_rsh = _load_module()


def run_fake(*args: str, env: dict[str, str] | None = None, stdin: bytes = b""):
    """Run fake_rsh.py directly with *args*; return the CompletedProcess."""
    return subprocess.run([sys.executable, str(FAKE_RSH), *args], input=stdin,
                          capture_output=True, timeout=TIMEOUT,
                          env={**os.environ, **(env or {})})


def run_rsync(cwd: Path, *args: str, env: dict[str, str] | None = None):
    """Run the system rsync through the fake remote shell, in *cwd*."""
    return subprocess.run([RSYNC, "-e", RSH, *args], cwd=cwd, capture_output=True,
                          timeout=TIMEOUT, env={**os.environ, **(env or {})})


def assert_ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")


# --------------------------------------------------------------------------
# The script on its own
# --------------------------------------------------------------------------

@pytest.mark.parametrize("argv,host,command", [
    (["host", "rsync", "--server"], "host", ["rsync", "--server"]),
    (["-l", "user", "h", "cmd"], "h", ["cmd"]),
    (["-luser", "h", "cmd"], "h", ["cmd"]),
    (["-4vp", "22", "-o", "A=b", "-x", "h", "c", "-l", "x"], "h", ["c", "-l", "x"]),
    (["-p22", "--", "h", "-c"], "h", ["-c"]),
])
def test_split_command(argv: list[str], host: str, command: list[str]) -> None:
    assert fake_rsh.split_command(argv) == (host, command)


@pytest.mark.parametrize("argv", [[], ["-l", "user"], ["host"]])
def test_split_command_rejects(argv: list[str]) -> None:
    with pytest.raises(ValueError):
        fake_rsh.split_command(argv)


@pytest.mark.parametrize("command,mapping,expected", [
    ("rsync --server .", "rsync=pysync", "pysync --server ."),
    ("rsync --server .", "rsync=python3 -m pysync", "python3 -m pysync --server ."),
    ("rsync", "rsync=pysync", "pysync"),
    ("rsyncx --server", "rsync=pysync", "rsyncx --server"),
    ("rsync --server", None, "rsync --server"),
])
def test_apply_map(command: str, mapping: str | None, expected: str) -> None:
    assert fake_rsh.apply_map(command, mapping) == expected


def test_words_are_reparsed_by_a_shell() -> None:
    proc = run_fake("-l", "me", "localhost", "printf", "'<%s>'", r"a\ b", r"\$HOME", "c")
    assert proc.stdout == b"<a b><$HOME><c>"


@pytest.mark.parametrize("record", [False, True])
def test_exit_status_and_stdio(tmp_path: Path, record: bool) -> None:
    env = {"FAKE_RSH_RECORD": str(tmp_path / "rec")} if record else {}
    proc = run_fake("h", "cat; echo err >&2; exit 7", env=env, stdin=b"ping")
    assert (proc.returncode, proc.stdout, proc.stderr) == (7, b"ping", b"err\n")
    if record:
        assert (tmp_path / "rec/c2s.bin").read_bytes() == b"ping"
        assert (tmp_path / "rec/s2c.bin").read_bytes() == b"ping"
        assert (tmp_path / "rec/argv.txt").read_text() == "cat; echo err >&2; exit 7\n"


def test_killed_command_reports_128_plus_signal(tmp_path: Path) -> None:
    proc = run_fake("h", "kill -TERM $$", env={"FAKE_RSH_RECORD": str(tmp_path)})
    assert proc.returncode == 128 + 15


def test_missing_command_is_an_error() -> None:
    proc = run_fake("-l", "user", "host")
    assert proc.returncode == 255
    assert b"no remote command" in proc.stderr


def test_map_replaces_first_word() -> None:
    proc = run_fake("h", "greet", "world", env={"FAKE_RSH_MAP": "greet=echo hello"})
    assert proc.stdout == b"hello world\n"


# --------------------------------------------------------------------------
# With the real rsync client
# --------------------------------------------------------------------------

@needs_rsync
def test_push_awkward_names(tmp_path: Path) -> None:
    make_awkward_names(tmp_path / "src")
    assert_ok(run_rsync(tmp_path, "-a", "src/", f"localhost:{AWKWARD_DIR}/"))
    assert compare_trees(tmp_path / "src", tmp_path / AWKWARD_DIR, owners=is_root()) == []


@needs_rsync
def test_pull_awkward_names(tmp_path: Path) -> None:
    make_awkward_names(tmp_path / AWKWARD_DIR)
    assert_ok(run_rsync(tmp_path, "-a", f"localhost:{AWKWARD_DIR}/", "dst/"))
    assert compare_trees(tmp_path / AWKWARD_DIR, tmp_path / "dst", owners=is_root()) == []


def _protocol_version(stream: bytes) -> int:
    """The int32 little-endian version each side sends first."""
    return struct.unpack("<i", stream[:4])[0]


@needs_rsync
def test_record_mode_captures_both_directions(tmp_path: Path) -> None:
    make_awkward_names(tmp_path / "src")
    rec = tmp_path / "rec"
    proc = run_rsync(tmp_path, "-a", "src/", "localhost:dst/",
                     env={"FAKE_RSH_RECORD": str(rec)})
    assert_ok(proc)
    assert compare_trees(tmp_path / "src", tmp_path / "dst", owners=is_root()) == []
    c2s, s2c = (rec / "c2s.bin").read_bytes(), (rec / "s2c.bin").read_bytes()
    assert len(c2s) > 4 and len(s2c) > 4
    assert 20 <= _protocol_version(c2s) <= 40
    assert 20 <= _protocol_version(s2c) <= 40
    assert (rec / "argv.txt").read_text().startswith("rsync --server ")


@needs_rsync
def test_map_selects_the_server_program(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src/f").write_bytes(b"x")
    args = ("-a", "--rsync-path=no-such-rsync", "src/", "localhost:dst/")
    assert run_rsync(tmp_path, *args).returncode != 0  # proves the name reaches the shell
    assert_ok(run_rsync(tmp_path, *args, env={"FAKE_RSH_MAP": f"no-such-rsync={RSYNC}"}))
    assert (tmp_path / "dst/f").read_bytes() == b"x"
