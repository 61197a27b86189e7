"""mallopt (the command line's processes tune malloc when the data path
loads pysync.native) and buffer addresses (io/buffers.py) through the
compiled module: they agree with their ctypes twins, and the command line
needs no ctypes."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pysync._reference as reference
import pysync.native as native

REPO = Path(__file__).resolve().parents[2]
M_TOP_PAD = -2


def test_compiled_wrapper_is_used_when_built():
    if native.BACKEND != "native":
        pytest.skip("PYSYNC_NATIVE=ref")
    assert native.mallopt is not reference.mallopt
    assert native.mallopt(M_TOP_PAD, 64 << 20) == 1


def test_ctypes_twin():
    assert reference.mallopt(M_TOP_PAD, 64 << 20) == 1


# Records the allocator calls the module's import makes (the reference
# backend, whose mallopt the probe can replace before the import binds it).
PROBE = """\
import pysync._reference as ref
calls = []
ref.mallopt = lambda param, value: calls.append((param, value)) or 1
import pysync.cli as cli
cli.TUNE_MALLOC = {flag}
import pysync.native
print(sorted(calls))
"""


@pytest.mark.parametrize("flag", [True, False])
def test_the_command_line_tunes_malloc_when_the_data_path_loads(flag):
    env = dict(os.environ, PYTHONPATH=str(REPO), PYSYNC_NATIVE="ref")
    out = subprocess.run([sys.executable, "-c", PROBE.format(flag=flag)], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == (str(sorted([(-3, 64 << 20), (-1, 256 << 20), (-2, 64 << 20)])) if flag else "[]")


def test_tuning_needs_no_ctypes():
    code = ("import sys; import pysync.cli as cli; cli.TUNE_MALLOC = True; import pysync.native; "
            "print('ctypes' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == ("True" if native.BACKEND != "native" else "False")


def test_main_sets_the_flag_and_a_no_op_loads_no_compiled_module(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"x")
    code = ("import sys; from pysync import cli; sys.argv[1:] = sys.argv[1:]; "
            "cli.main(['-a', '--dry-run', sys.argv[1], sys.argv[2]]); "
            "print(cli.TUNE_MALLOC, 'pysync.native' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code, f"{tmp_path}/src/", f"{tmp_path}/dst/"], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert out.split()[-2:] == ["True", "False"]


def test_buffer_address_agrees_with_ctypes():
    import mmap
    for buf in (mmap.mmap(-1, 3 * mmap.PAGESIZE), bytearray(1000)):
        assert native.buffer_address(buf) == reference.buffer_address(buf)
    assert native.buffer_address(mmap.mmap(-1, mmap.PAGESIZE)) % mmap.PAGESIZE == 0
