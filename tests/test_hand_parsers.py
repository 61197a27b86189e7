"""Parsers written by hand so that a run loads no ``re`` (start-up): each
must agree with the regular expression it replaced, on every string of a
small alphabet that reaches its corner cases."""
import itertools
import re

import pytest

from pysync.client import parse_remote
from pysync.logformat import LogFormat

# The forms the hand-written code replaced, as they were.
_BRACKETED = re.compile(r"^(?:([^@/:]+)@)?\[([^\]/]+)\]:(.*)$", re.S)
_ESCAPE = re.compile(r"%('*)(-?)(\d*)('*)(.?)", re.S)


def _strings(alphabet: str, longest: int):
    for n in range(longest + 1):
        for t in itertools.product(alphabet, repeat=n):
            yield "".join(t)


def _remote_by_regex(arg: str):
    if arg.startswith("/") or arg.startswith("./"):
        return None
    m = _BRACKETED.match(arg)
    if m:
        return m.group(1), m.group(2), m.group(3)
    colon, slash = arg.find(":"), arg.find("/")
    if colon <= 0 or (0 <= slash < colon):
        return None
    user, _, host = arg[:colon].rpartition("@")
    return user or None, host, arg[colon + 1:]


def test_parse_remote_agrees_with_the_regex():
    checked = 0
    for arg in _strings("a@[]:/\n", 7):
        if ":" in arg and arg[arg.find(":") + 1:].startswith(":") and not _BRACKETED.match(arg):
            continue        # host::module: an error either way (tested elsewhere)
        assert parse_remote(arg) == _remote_by_regex(arg), arg
        checked += 1
    assert checked > 100_000


def _parts_by_regex(fmt: str) -> list:
    parts, lit, pos = [], [], 0
    while True:
        m = _ESCAPE.search(fmt, pos)
        if m is None or not m.group(5):
            lit.append(fmt[pos:])
            break
        lit.append(fmt[pos:m.start()])
        if m.group(5) not in "nfLlbciotBMUGpmC":
            lit.append(fmt[m.start():m.start(5)])
            pos = m.start(5)
            continue
        parts.append("".join(lit))
        lit = []
        parts.append((len(m.group(1)) + len(m.group(4)), m.group(2) + m.group(3), m.group(5)))
        pos = m.end()
    parts.append("".join(lit))
    return parts


@pytest.mark.parametrize("alphabet", ["%'-1n x", "%-0\u0663lL\n'"])
def test_log_format_escapes_agree_with_the_regex(alphabet):
    for fmt in _strings(alphabet, 6):
        assert LogFormat(fmt).parts == _parts_by_regex(fmt), fmt
