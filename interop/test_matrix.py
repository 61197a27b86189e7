"""The interop matrix: every role × every option set, judged against rsync↔rsync.

Roles (harness.ROLES), named client2server:

====================  ==========================================================
push-pysync2rsync     ``pysync -e FAKE --rsync-path=rsync SRC/ host:DST/``
pull-pysync2rsync     ``pysync -e FAKE --rsync-path=rsync host:SRC/ DST/``
push-rsync2pysync     ``rsync -e FAKE --rsync-path=pysync SRC/ host:DST/``
pull-rsync2pysync     ``rsync -e FAKE --rsync-path=pysync host:SRC/ DST/``
push-pysync2pysync    ``pysync -e FAKE --rsync-path=pysync SRC/ host:DST/``
pull-pysync2pysync    ``pysync -e FAKE --rsync-path=pysync host:SRC/ DST/``
local-pysync          ``pysync SRC/ DST/``
====================  ==========================================================

Each cell runs the operation in its role and the same operation with stock
rsync at both ends (same direction and transport; local for local-pysync)
into a second destination seeded identically, then requires:

* equal exit codes;
* ``compare_trees(pysync_dest, rsync_dest) == []`` (content, modes, owners,
  nanosecond mtimes including directories and symlinks, hard-link groups);
* delta cells (destination seeded with an older version): pysync's
  ``Literal data`` ≤ rsync's × 1.05 + 4096, and when the delta algorithm is in
  use (``--no-W``, or a remote transfer without ``-W``) that it really was:
  literal data ≪ the 3 MB file;
* dry runs: the destination is unchanged;
* where stock rsync is one end, its ``--debug=NSTR`` output names the same
  checksum and compression algorithms as in the rsync↔rsync run (and the one
  forced by ``--checksum-choice``/``--compress-choice``).

Cell ids are ``<role>-<options>``, e.g. ``push-pysync2rsync--az``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

import harness
from harness import ROLES, Role, compare_trees, snapshot

#: Options added to every run, both sides: the stats give "Literal data".
COMMON = ["--stats"]


@dataclass(frozen=True)
class OptSet:
    """One column of the matrix: options, the destination's initial state."""

    opts: tuple[str, ...]
    seed: str = "fresh"           # key of harness.SEEDS
    id_prefix: str = ""

    @property
    def id(self) -> str:
        return self.id_prefix + "".join(self.opts)

    @property
    def delta_seeded(self) -> bool:
        return self.seed in ("old", "extras", "blocked")

    @property
    def dry_run(self) -> bool:
        return "-an" in self.opts or "-n" in self.opts or "--dry-run" in self.opts

    def forced(self, what: str) -> str | None:
        """The algorithm named by --checksum-choice / --compress-choice, if any."""
        key = {"checksum": "--checksum-choice=", "compress": "--compress-choice="}[what]
        for o in self.opts:
            if o.startswith(key):
                return o[len(key):]
        return None


OPTSETS = [
    OptSet(("-a",)),
    OptSet(("-aH",)),
    OptSet(("-a", "--delete"), "extras"),
    OptSet(("-a", "-c"), "samestat"),
    OptSet(("-az",), "old"),
    OptSet(("-a", "--compress-choice=zlib"), "old"),
    OptSet(("-a", "--compress-choice=zlibx"), "old"),
    *(OptSet(("-a", f"--checksum-choice={c}"), "old")
      for c in ("xxh128", "xxh3", "xxh64", "md5", "md4")),
    OptSet(("-a", "-W"), "old"),
    OptSet(("-a", "--no-W"), "old"),
    OptSet(("-an",), "old"),
    OptSet(("-a", "--protocol=31"), "old"),
    # Delta updates with the default whole-file choice (delta when remote),
    # and with -H where one name of the pair exists already.
    OptSet(("-a",), "old", "delta-"),
    OptSet(("-aH",), "old", "delta-"),
    # Same size and mtime, different content: the quick check must skip it.
    OptSet(("-a",), "samestat", "quickcheck-"),
    # A file may not replace a non-empty directory without --delete: rsync
    # reports it and exits with 23; pysync must agree.
    OptSet(("-a",), "blocked", "nonempty-dir2file-"),
]

CELLS = [pytest.param(role, optset, id=f"{role.id}-{optset.id}")
         for role in ROLES for optset in OPTSETS]


def check(ok: bool, message: str) -> None:
    """Fail the cell with *message* (command lines and outputs, no introspection noise)."""
    if not ok:
        pytest.fail(message, pytrace=False)


def _fmt_diffs(diffs: list[str], limit: int = 40) -> str:
    more = f"\n  ... and {len(diffs) - limit} more" if len(diffs) > limit else ""
    return "\n  ".join(diffs[:limit]) + more


def _compare(dst: Path, ref_dst: Path, **kw) -> list[str]:
    """compare_trees, also when a destination does not exist (or is not a dir)."""
    if not dst.is_dir() or not ref_dst.is_dir():
        if dst.exists() == ref_dst.exists() and dst.is_dir() == ref_dst.is_dir():
            return []
        return [f"destination: pysync exists={dst.exists()} dir={dst.is_dir()}, "
                f"rsync exists={ref_dst.exists()} dir={ref_dst.is_dir()}"]
    return compare_trees(dst, ref_dst, **{"symlink_times": True, **kw})


def _context(got: harness.Run, ref: harness.Run) -> str:
    return f"\n=== pysync cell ===\n{got.describe()}\n=== rsync<->rsync ===\n{ref.describe()}"


@pytest.mark.parametrize("role,optset", CELLS)
def test_cell(role: Role, optset: OptSet, source: Path, workdir: Path, cell_dir: Path) -> None:
    opts = [*optset.opts, *COMMON]
    dst, ref_dst = cell_dir / "pysync-dest", cell_dir / "rsync-dest"
    harness.seed(optset.seed, dst, workdir)
    harness.seed(optset.seed, ref_dst, workdir)
    before = snapshot(dst) if dst.exists() else None

    got = harness.run(harness.command(role, opts, str(source), str(dst)))
    ref = harness.run(harness.command(role, opts, str(source), str(ref_dst), reference=True))
    ctx = _context(got, ref)

    check(got.rc == ref.rc, f"exit code {got.rc}, rsync<->rsync gave {ref.rc}{ctx}")
    diffs = _compare(dst, ref_dst)
    check(diffs == [], f"trees differ (a = pysync, b = rsync):\n  {_fmt_diffs(diffs)}{ctx}")

    if optset.dry_run and before is not None:
        changed = compare_trees(before, dst, symlink_times=True)
        check(changed == [], f"dry run changed the destination:\n  {_fmt_diffs(changed)}{ctx}")

    if optset.delta_seeded and not optset.dry_run:
        _check_literal(role, optset, got, ref, ctx)

    side = harness.stock_side(role)
    if side is not None:
        _check_negotiation(side, optset, got, ref, ctx)


def _check_literal(role: Role, optset: OptSet, got: harness.Run, ref: harness.Run,
                   ctx: str) -> None:
    """pysync sends no more literal data than rsync (+5 % + 4 KiB); delta happened."""
    gs, rs = harness.stats(got.stdout), harness.stats(ref.stdout)
    check("Literal data" in rs, f"no --stats in the rsync<->rsync output{ctx}")
    check("Literal data" in gs, f"no 'Literal data' in the client's --stats output{ctx}")
    lit, ref_lit = gs["Literal data"], rs["Literal data"]
    check(lit <= ref_lit * 1.05 + 4096,
          f"literal data {lit} > rsync's {ref_lit} × 1.05 + 4096{ctx}")
    delta = "--no-W" in optset.opts or (role.remote and "-W" not in optset.opts)
    if delta:
        check(ref_lit < harness.BIG_SIZE // 10,
              f"rsync<->rsync itself sent {ref_lit} literal bytes: the seed is wrong{ctx}")
        check(lit < harness.BIG_SIZE // 10,
              f"no delta transfer: literal data {lit} (file is {harness.BIG_SIZE}){ctx}")


def _check_negotiation(side: str, optset: OptSet, got: harness.Run, ref: harness.Run,
                       ctx: str) -> None:
    """The stock end's --debug=NSTR names the same algorithms as rsync<->rsync."""
    want = harness.negotiated(ref.stdout + ref.stderr, "Client")
    have = harness.negotiated(got.stdout + got.stderr, side)
    check("checksum" in want and "protocol" in want,
          f"rsync<->rsync printed no NSTR checksum / PROTO line{ctx}")
    if "--protocol=31" in optset.opts:
        check(want["protocol"] == "31", f"rsync<->rsync did not use protocol 31{ctx}")
    for what in ("checksum", "compress"):
        forced = optset.forced(what)
        if forced is not None:
            check(want.get(what) == forced, f"rsync<->rsync chose {want} for {forced}{ctx}")
    check(have == want,
          f"negotiated {have} on the stock {side.lower()} side, rsync<->rsync: {want}{ctx}")


# --------------------------------------------------------------------------
# Exit codes
# --------------------------------------------------------------------------

@pytest.mark.parametrize("role", [pytest.param(r, id=f"{r.id}-missing-source") for r in ROLES])
def test_missing_source(role: Role, source: Path, cell_dir: Path) -> None:
    """A source that does not exist: exit 23 (RERR_PARTIAL) on both, same result."""
    missing = cell_dir / "no such dir"
    dst, ref_dst = cell_dir / "pysync-dest", cell_dir / "rsync-dest"
    got = harness.run(harness.command(role, ["-a"], str(missing), str(dst), nstr=False))
    ref = harness.run(harness.command(role, ["-a"], str(missing), str(ref_dst),
                                      reference=True, nstr=False))
    ctx = _context(got, ref)
    check(ref.rc == 23, f"rsync<->rsync did not exit 23{ctx}")
    check(got.rc == ref.rc, f"exit code {got.rc}, rsync<->rsync gave {ref.rc}{ctx}")
    diffs = _compare(dst, ref_dst, times=False)  # a created dir's mtime is "now"
    check(diffs == [], f"destinations differ:\n  {_fmt_diffs(diffs)}{ctx}")
    check("no such dir" in got.stderr, f"the error does not name the missing path{ctx}")


REMOTE_ROLES = [r for r in ROLES if r.remote]


@pytest.mark.parametrize("role", [pytest.param(r, id=f"{r.id}-server-unknown-option")
                                  for r in REMOTE_ROLES])
def test_server_unknown_option(role: Role, source: Path, cell_dir: Path) -> None:
    """``--rsync-path='<server> --frobnicate'``: the server refuses to start.

    Compared with ``--rsync-path='rsync --frobnicate'`` under a stock client.
    """
    src, dst, ref_dst = str(source), str(cell_dir / "pysync-dest"), str(cell_dir / "rsync-dest")

    def with_server(argv: list[str], server: str) -> list[str]:
        return [f"--rsync-path={server} --frobnicate" if a.startswith("--rsync-path=") else a
                for a in argv]

    got = harness.run(with_server(harness.command(role, ["-a"], src, dst, nstr=False),
                                  role.server))
    ref = harness.run(with_server(harness.command(role, ["-a"], src, ref_dst, reference=True,
                                                  nstr=False), "rsync"))
    ctx = _context(got, ref)
    check(ref.rc != 0, f"rsync<->rsync accepted --frobnicate{ctx}")
    check(got.rc == ref.rc, f"exit code {got.rc}, rsync<->rsync gave {ref.rc}{ctx}")
    check("frobnicate" in got.stderr, f"the server's complaint did not reach stderr{ctx}")
    check(not Path(dst).exists(), f"a refused server still created the destination{ctx}")


def test_client_unknown_option(source: Path, cell_dir: Path) -> None:
    """An unknown option to the pysync client: exit 1 (RERR_SYNTAX) like rsync."""
    dst = cell_dir / "dest"
    got = harness.run([harness.PYSYNC, "-a", "--frobnicate", f"{source}/", str(dst)])
    ref = harness.run([harness.RSYNC, "-a", "--frobnicate", f"{source}/", str(dst)])
    ctx = _context(got, ref)
    check(ref.rc == 1, f"rsync did not exit 1{ctx}")
    check(got.rc == ref.rc, f"exit code {got.rc}, rsync gave {ref.rc}{ctx}")
    check("frobnicate" in got.stderr, f"the complaint does not name the option{ctx}")
    check(not dst.exists(), f"the destination was created{ctx}")
