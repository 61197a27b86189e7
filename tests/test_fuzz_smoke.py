"""A short, fixed run of interop/fuzz.py (the differential fuzzer against
stock rsync) so the suite keeps it working: 25 generated cases (no files
of a few MiB) must match stock rsync, and the comparison must notice a
difference when there is one.  Longer runs: see the docstring of
interop/fuzz.py (``python3 interop/fuzz.py --seed N --cases 500``)."""

from __future__ import annotations

import copy
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SEED = 7
CASES = 25


def _fuzz():
    spec = importlib.util.spec_from_file_location("pysync_fuzz", REPO / "interop" / "fuzz.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("pysync_fuzz", mod)
    spec.loader.exec_module(mod)
    return mod


pytestmark = pytest.mark.skipif(shutil.which("rsync") is None, reason="needs stock rsync")


def test_fixed_cases_match_rsync():
    fuzz = _fuzz()
    failures = []
    for i in range(CASES):
        case = fuzz.gen_case(SEED, i, small=True)
        diffs, _ = fuzz.run_case(case, timeout=30)
        if diffs:
            failures.append(f"case {SEED}:{i} {case['role']} {' '.join(case['opts'])}: "
                            + "; ".join(diffs[:5]))
    assert failures == []


def test_cases_are_reproducible():
    fuzz = _fuzz()
    assert fuzz.gen_case(SEED, 3, small=True) == fuzz.gen_case(SEED, 3, small=True)
    assert fuzz.gen_case(SEED, 3, small=True) != fuzz.gen_case(SEED, 4, small=True)


def test_compare_sees_differences(tmp_path):
    """One real run of stock rsync, and copies of its result that differ
    in one respect each: every one is reported."""
    fuzz = _fuzz()
    case = fuzz.gen_case(SEED, 0, small=True)
    case["opts"] = ["-a", "-i"]
    a = fuzz.run_one(case, "rsync", tmp_path / "a", 30)
    assert fuzz.compare(case, a, copy.deepcopy(a)) == []
    name = next(n for n, e in a["dst"].items() if e["type"] == "-")
    changes = {
        "exit code": lambda b: b.update(rc=23),
        "output only pysync": lambda b: b["lines"].append(">f+++++++++ extra"),
        "content": lambda b: b["dst"][name].update(sha="0" * 16),
        "mode": lambda b: b["dst"][name].update(mode="0o600"),
        "only with rsync": lambda b: b["dst"].pop(name),
        "temp file": lambda b: b["temps"].append(b"/x/.f.AbC123"),
        "HANG": lambda b: b.update(rc=fuzz.TIMED_OUT),
    }
    for what, change in changes.items():
        b = copy.deepcopy(a)
        change(b)
        diffs = fuzz.compare(case, a, b)
        assert diffs and any(what in d or (what == "content" and "sha" in d) for d in diffs), \
            (what, diffs)
