"""Temp file names (io/replace.py): ".<name>.<6 letters or digits>", a new
suffix every time, and a forked child (a local copy's receiver) that does
not walk its parent's sequence."""
import os
import re

from pysync.io import replace
from pysync.io.replace import temp_name

SHAPE = re.compile(rb"^\.base\.[A-Za-z0-9]{6}$")


def test_shape_and_no_repeats():
    names = [temp_name(b"base") for _ in range(50_000)]
    assert all(SHAPE.match(n) for n in names)
    assert len(set(names)) == len(names)
    # every letter and digit turns up: the suffix is spread, not a counter
    assert set(b"".join(n[-6:] for n in names)) == set(replace._ALNUM)


def test_long_names_keep_the_temp_name_short():
    n = temp_name(b"x" * 300)
    assert len(n) == 1 + 240 + 1 + 6


def test_a_forked_child_draws_other_names():
    temp_name(b"base")                  # the parent's sequence has started
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(w, b"\n".join(temp_name(b"base") for _ in range(20)))
        finally:
            os._exit(0)
    os.close(w)
    child = b""
    while chunk := os.read(r, 4096):
        child += chunk
    os.close(r)
    os.waitpid(pid, 0)
    ours = [temp_name(b"base") for _ in range(20)]
    assert len(child.split(b"\n")) == 20
    assert not set(child.split(b"\n")) & set(ours)
