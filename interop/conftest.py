"""Fixtures for the interop matrix, and the scoped known-failure ledger.

The ledger (``known_failures.toml``, optional) follows oc-rsync's rule
(style.md §5): no blanket entries.  Every entry names exactly one collected
cell id and gives a reason; it turns that cell into a *strict* xfail, so the
day the limitation is fixed the cell is reported as unexpectedly passing
(XPASS(strict) fails the run) and the entry must be removed.  An entry that
matches no collected cell is an error too, so stale entries cannot pile up::

    [[failure]]
    cell = "pull-rsync2pysync--az"
    reason = "zstd token stream: ... (issue #N)"
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402

LEDGER = HERE / "known_failures.toml"


def pytest_addoption(parser: pytest.Parser) -> None:
    # The matrix never relies on a pytest-level timeout plugin: every child
    # runs under harness.TIMEOUT and is killed on expiry.  The flag is
    # accepted so that the documented command line works either way.
    parser.addoption("--timeout-free", action="store_true", default=False,
                     help="interop: no pytest-level timeout (children are "
                          f"still killed after {harness.TIMEOUT}s each)")


def _load_ledger() -> dict[str, str]:
    if not LEDGER.exists():
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    with open(LEDGER, "rb") as f:
        data = tomllib.load(f)
    entries: dict[str, str] = {}
    for i, entry in enumerate(data.get("failure", [])):
        cell, reason = entry.get("cell", ""), str(entry.get("reason", "")).strip()
        if not cell or any(ch in cell for ch in "*?[") or not reason:
            raise pytest.UsageError(f"{LEDGER.name}: entry {i} needs an exact 'cell' "
                                    f"and a non-empty 'reason' (no wildcards): {entry!r}")
        entries[cell] = reason
    return entries


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ledger = _load_ledger()
    if not ledger:
        return
    cells = {}
    for item in items:
        if item.path.parent == HERE and "[" in item.name:
            cells[item.name[item.name.index("[") + 1:-1]] = item
    unknown = sorted(set(ledger) - set(cells))
    # Only complain when the whole matrix was collected (not under -k / ::id).
    if unknown and len(cells) > len(ledger) and not config.getoption("keyword"):
        raise pytest.UsageError(f"{LEDGER.name}: entries match no cell: {unknown}")
    for cell, reason in ledger.items():
        if cell in cells:
            cells[cell].add_marker(pytest.mark.xfail(reason=f"known failure: {reason}",
                                                     strict=True))


@pytest.fixture(scope="session")
def peers() -> None:
    """Skip (loudly) when a peer is missing; scripts/test.sh installs rsync."""
    if harness.RSYNC is None:
        pytest.skip("system rsync not installed (scripts/test.sh installs it)")
    if harness.PYSYNC is None:
        pytest.skip("pysync is not installed (pip install -e .)")


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Per-session scratch: the source tree and the destination seed masters."""
    return tmp_path_factory.mktemp("interop")


@pytest.fixture(scope="session")
def source(workdir: Path, peers: None):
    """The matrix's source tree, built once; every cell checks it is untouched."""
    src = workdir / "src"
    harness.make_source(src)
    snap = harness.snapshot(src)
    yield src
    assert harness.compare_trees(snap, src, symlink_times=True) == [], \
        "a transfer modified the source tree"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.cell_passed = report.passed  # type: ignore[attr-defined]


@pytest.fixture
def cell_dir(request: pytest.FixtureRequest, tmp_path: Path):
    """A per-cell directory, emptied when the cell passes (kept for post-mortems)."""
    yield tmp_path
    if getattr(request.node, "cell_passed", False):
        for child in tmp_path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink()
