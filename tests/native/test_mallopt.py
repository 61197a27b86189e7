"""mallopt at start-up (cli._tune_malloc) and buffer addresses (io/buffers.py)
through the compiled module: they agree with their ctypes twins, and the
command line no longer needs ctypes."""
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


def test_cli_tunes_malloc_without_ctypes():
    code = ("import sys; from pysync.cli import _tune_malloc; _tune_malloc(); "
            "print('ctypes' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == ("True" if native.BACKEND != "native" else "False")


def test_buffer_address_agrees_with_ctypes():
    import mmap
    for buf in (mmap.mmap(-1, 3 * mmap.PAGESIZE), bytearray(1000)):
        assert native.buffer_address(buf) == reference.buffer_address(buf)
    assert native.buffer_address(mmap.mmap(-1, mmap.PAGESIZE)) % mmap.PAGESIZE == 0
