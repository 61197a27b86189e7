"""The command line and bad input: --version, --help, unknown options, missing
sources, unwritable destinations, a full file system.

Exit codes are compared with the system rsync run on the same input (rsync's
own codes are the expectation, see /work/shared/notes/reliability.md §3.6);
after a failure the destination must hold no temp file (``.NAME.XXXXXX``)
and an existing file must keep its old content (§3.1, §3.3).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.trees import compare_trees, is_root, make_basic, snapshot

RSYNC = "/usr/bin/rsync" if os.path.exists("/usr/bin/rsync") else shutil.which("rsync")
needs_rsync = pytest.mark.skipif(RSYNC is None, reason="system rsync not installed")

_SCRIPT = Path(sys.executable).with_name("pysync")
if _SCRIPT.exists():
    PYSYNC = [str(_SCRIPT)]
elif shutil.which("pysync"):
    PYSYNC = [shutil.which("pysync")]
else:
    PYSYNC = [sys.executable, "-m", "pysync"]

TIMEOUT = 120
#: rsync's temp-file names: "." + basename + "." + 6 random characters.
TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9]{6}$")


def run(tool: str, args, cwd=None, prefix=()) -> subprocess.CompletedProcess:
    exe = PYSYNC if tool == "pysync" else [RSYNC]
    proc = subprocess.run([*prefix, *exe, *map(str, args)], cwd=cwd,
                          capture_output=True, timeout=TIMEOUT)
    proc.stdout = proc.stdout.decode("utf-8", "surrogateescape")
    proc.stderr = proc.stderr.decode("utf-8", "surrogateescape")
    return proc


def show(tool: str, proc: subprocess.CompletedProcess) -> str:
    return (f"{tool}: $ {' '.join(map(str, proc.args))}\nexit {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}")


def temp_files(root: Path) -> list[str]:
    """Names under *root* that look like leftover temp files."""
    found = []
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            if TEMP_NAME.match(name):
                found.append(os.path.join(dirpath, name))
    return found


def no_traceback(proc) -> None:
    assert "Traceback" not in proc.stderr, f"pysync crashed:\n{proc.stderr}"


# --------------------------------------------------------------------------
# --version, --help and the option parser
# --------------------------------------------------------------------------

def test_version():
    from pysync import __version__
    proc = run("pysync", ["--version"])
    assert proc.returncode == 0, show("pysync", proc)
    first = proc.stdout.splitlines()[0]
    assert re.fullmatch(rf"pysync\s+version {re.escape(__version__)}\s+protocol version 32", first), first
    assert proc.stderr == ""


def test_version_short_flag():
    assert run("pysync", ["-V"]).stdout == run("pysync", ["--version"]).stdout


@functools.lru_cache(maxsize=None)
def help_options() -> list[tuple[str | None, str | None, bool]]:
    """(short, long, takes_value) for every option line of ``pysync --help``."""
    proc = run("pysync", ["--help"])
    assert proc.returncode == 0, show("pysync", proc)
    opts = []
    for line in proc.stdout.splitlines():
        m = re.match(r"^\s*(?:(-[^-\s]),?)?\s*(?:(--[a-z0-9][a-z0-9-]*)(=\S+)?)?\s{2,}\S", line)
        if m and (m.group(1) or m.group(2)):
            opts.append((m.group(1), m.group(2), bool(m.group(3))))
    return opts


def test_help_lists_options():
    proc = run("pysync", ["--help"])
    assert proc.returncode == 0, show("pysync", proc)
    assert "Usage:" in proc.stdout
    longs = {lo for _s, lo, _v in help_options()}
    # The options the README promises (Foundation) are all listed.
    for name in ("--verbose", "--quiet", "--archive", "--recursive", "--links", "--perms",
                 "--times", "--group", "--owner", "--devices", "--specials", "--hard-links",
                 "--numeric-ids", "--dry-run", "--whole-file", "--checksum", "--ignore-times",
                 "--size-only", "--modify-window", "--one-file-system", "--block-size",
                 "--compress", "--compress-choice", "--compress-level", "--checksum-choice",
                 "--checksum-seed", "--delete", "--delete-excluded", "--max-delete", "--force",
                 "--exclude", "--include", "--filter", "--itemize-changes", "--stats", "--fsync",
                 "--rsh", "--rsync-path", "--protocol", "--version", "--help"):
        assert name in longs, f"{name} missing from --help"


#: A valid value for each option that takes one (anything else gets "1").
SAMPLE_VALUES = {
    "--compress-choice": "zlib", "--checksum-choice": "md5", "--exclude": "*.o",
    "--include": "*.c", "--filter": "- *.tmp", "--rsh": "ssh", "--rsync-path": "rsync",
    "--block-size": "2048", "--protocol": "31", "--modify-window": "2",
    "-e": "ssh", "-f": "- *.tmp", "-B": "2048", "-@": "2", "--info": "progress2",
    "--zc": "zlib", "--cc": "md5", "--usermap": "1:0", "--groupmap": "1:0", "--chown": "root:root",
    "--chmod": "u+x", "--max-alloc": "2g", "--stderr": "all", "--outbuf": "L", "-M": "--foo",
    "--remote-option": "--foo", "--stop-at": "23:59", "--debug": "flist2",
}


def _option_forms(pattern_file: Path):
    forms = []
    for short, long, takes_value in help_options():
        for opt in (short, long):
            if opt is None:
                continue
            if takes_value:
                value = SAMPLE_VALUES.get(opt, "1")
                if opt.endswith("-from"):       # --exclude-from=FILE and the like
                    value = str(pattern_file)
                forms.append((opt, [opt, value]))
                if opt.startswith("--"):
                    forms.append((opt + "=", [f"{opt}={value}"]))
            else:
                forms.append((opt, [opt]))
    return forms


def test_every_help_option_is_accepted_by_the_parser(tmp_path):
    from pysync.options import parse_args
    from pysync.record import values
    patterns = tmp_path / "patterns"
    patterns.write_text("*.o\n")
    forms = _option_forms(patterns)
    assert len(forms) >= 50, f"--help parsing found too few options: {forms}"
    default = values(parse_args(["src", "dst"]))
    failures = []
    for label, argv in forms:
        try:
            parsed = values(parse_args([*argv, "src", "dst"]))
        except Exception as e:  # noqa: BLE001 - report every refused option at once
            failures.append(f"{argv}: {type(e).__name__}: {e}")
            continue
        if parsed == default:
            failures.append(f"{argv}: accepted but changed nothing")
        elif parsed["args"] != ["src", "dst"]:
            failures.append(f"{argv}: swallowed the arguments: {parsed['args']}")
    assert failures == [], "options from --help the parser mishandles:\n" + "\n".join(failures)


@needs_rsync
def test_every_help_option_exists_in_rsync():
    """pysync invents no option names beyond its documented write-path
    options: every other long option it lists is rsync's too."""
    from pysync.server_cmd import PYSYNC_ONLY
    rsync_help = run("rsync", ["--help"]).stdout
    rsync_longs = set(re.findall(r"(--[a-z0-9][a-z0-9-]*)", rsync_help))
    ours = {lo for _s, lo, _v in help_options() if lo}
    own = {"--" + name.replace("_", "-") for name in PYSYNC_ONLY}
    assert ours - rsync_longs == own
    assert all("(pysync)" in line for line in run("pysync", ["--help"]).stdout.splitlines()
               if any(o in line for o in own))


@needs_rsync
@pytest.mark.parametrize("bad", ["--frobnicate", "-Q", "--frobnicate=3", "--no-frobnicate", "--no-Q"])
def test_unknown_option(tmp_path, bad):
    (tmp_path / "src").mkdir()
    args = [bad, f"{tmp_path}/src/", f"{tmp_path}/dst/"]
    pp, rp = run("pysync", args), run("rsync", args)
    assert pp.returncode == rp.returncode == 1, show("pysync", pp) + show("rsync", rp)
    no_traceback(pp)
    assert pp.stdout == ""
    lines = pp.stderr.splitlines()
    name = bad.split("=")[0]
    naming = [line for line in lines if name in line]
    assert len(naming) == 1, f"expected one line naming {name!r}:\n{pp.stderr}"
    # Any other line is rsync's standard trailer (rsync prints one too).
    others = [line for line in lines if name not in line]
    assert all(re.match(r"rsync error: syntax or usage error \(code 1\)", o) for o in others), pp.stderr
    assert not (tmp_path / "dst").exists()


# --------------------------------------------------------------------------
# Missing source
# --------------------------------------------------------------------------

@needs_rsync
def test_missing_source_other_sources_still_copied(tmp_path):
    src = tmp_path / "src"
    make_basic(src)
    srcs = [src / "missing", src / "text.txt", src / "dir", src / "no-such-dir/"]
    results = {}
    for tool in ("pysync", "rsync"):
        work = tmp_path / tool
        work.mkdir()
        results[tool] = run(tool, [*map(str, ["-a", *srcs]), "dst/"], cwd=work)
    pp, rp = results["pysync"], results["rsync"]
    assert pp.returncode == rp.returncode == 23, show("pysync", pp) + show("rsync", rp)
    no_traceback(pp)
    for name in ("missing", "no-such-dir"):
        assert re.search(rf'link_stat ".*{name}" failed: No such file or directory', pp.stderr), pp.stderr
    snap_p, snap_r = snapshot(tmp_path / "pysync" / "dst"), snapshot(tmp_path / "rsync" / "dst")
    del snap_p["."], snap_r["."]        # dst itself is made now, not copied
    assert compare_trees(snap_p, snap_r, symlink_times=True) == []
    assert sorted(os.listdir(tmp_path / "pysync" / "dst")) == ["dir", "text.txt"]


# --------------------------------------------------------------------------
# Unwritable destinations
# --------------------------------------------------------------------------

#: Run as nobody, but able to read and traverse everything (the test tree is
#: under root's 0700 tmp dir and the interpreter under /root): CAP_DAC_READ_SEARCH
#: does not grant write access, so a 0555 directory stays unwritable.
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
          "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]


def nobody_prefix() -> list[str]:
    if not is_root():
        pytest.skip("needs root to switch to an unprivileged user")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) not installed")
    try:
        probe = subprocess.run([*NOBODY, *PYSYNC, "--version"], capture_output=True, timeout=60)
    except OSError as e:
        pytest.skip(f"cannot run setpriv: {e}")
    if probe.returncode != 0:
        pytest.skip(f"cannot run pysync as nobody: {probe.stderr.decode(errors='replace')}")
    return NOBODY


def _setup_unwritable(work: Path, case: str) -> str:
    """Prepare *work* for *case*; return the destination argument."""
    if case == "parent-missing":
        return "nope/deeper/dst/"
    if case == "parent-readonly":
        (work / "ro").mkdir(mode=0o555)
        os.chmod(work / "ro", 0o555)
        return "ro/dst/"
    if case == "dest-readonly":
        (work / "ro").mkdir()
        os.chmod(work / "ro", 0o555)
        return "ro/"
    if case == "subdir-readonly":
        # A destination nobody owns, with one root-owned 0555 subdirectory
        # holding a stale file: only that directory's files fail.
        dst = work / "dst"
        make_basic(dst)
        os.truncate(dst / "dir" / "small.bin", 10)
        os.utime(dst / "dir" / "small.bin", ns=(10**18, 10**18))
        for dirpath, dirs, files in os.walk(dst):
            for name in [dirpath] + [os.path.join(dirpath, n) for n in dirs + files]:
                os.lchown(name, 65534, 65534)
        os.chown(dst / "dir", 0, 0)
        os.chmod(dst / "dir", 0o555)
        return "dst/"
    raise ValueError(case)


@needs_rsync
@pytest.mark.parametrize("case", ["parent-missing", "parent-readonly", "dest-readonly",
                                  "subdir-readonly"])
def test_unwritable_destination(tmp_path, case):
    prefix = [] if case == "parent-missing" else nobody_prefix()
    src = tmp_path / "src"
    make_basic(src)
    results = {}
    for tool in ("pysync", "rsync"):
        work = tmp_path / tool
        work.mkdir()
        os.chmod(work, 0o755)
        if prefix:
            os.chown(work, 65534, 65534)
        dest = _setup_unwritable(work, case)
        results[tool] = run(tool, ["-a", f"{src}/", dest], cwd=work, prefix=prefix)
    pp, rp = results["pysync"], results["rsync"]
    assert rp.returncode != 0, "scenario broken: rsync succeeded\n" + show("rsync", rp)
    assert pp.returncode == rp.returncode, \
        f"exit code {pp.returncode}, rsync gives {rp.returncode}\n" + show("pysync", pp) + show("rsync", rp)
    no_traceback(pp)
    assert temp_files(tmp_path / "pysync") == []
    snap_p, snap_r = snapshot(tmp_path / "pysync"), snapshot(tmp_path / "rsync")
    del snap_p["."], snap_r["."]
    # Directory times of containers touched now may differ; the rest must not.
    assert compare_trees(snap_p, snap_r, dir_times=False, symlink_times=True) == []


# --------------------------------------------------------------------------
# ENOSPC: a 4 MiB tmpfs
# --------------------------------------------------------------------------

@pytest.fixture
def small_fs(tmp_path):
    """A 4 MiB tmpfs mounted at tmp_path/mnt, unmounted afterwards."""
    if not is_root():
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@needs_rsync
@pytest.mark.parametrize("extra", [[], ["--no-whole-file"]], ids=["whole", "delta"])
def test_enospc_keeps_old_file(tmp_path, small_fs, extra):
    src = tmp_path / "src"
    src.mkdir()
    (src / "big").write_bytes(os.urandom(8 << 20))
    old = b"old content\n" * ((1 << 20) // 12)
    for tool in ("pysync", "rsync"):
        d = small_fs / tool
        d.mkdir()
        (d / "big").write_bytes(old)
        os.utime(d / "big", (1_000_000_000, 1_000_000_000))
    results = {tool: run(tool, ["-a", *extra, f"{src}/", f"{small_fs / tool}/"])
               for tool in ("pysync", "rsync")}
    pp, rp = results["pysync"], results["rsync"]
    assert rp.returncode != 0, "scenario broken: rsync fit 8 MiB into 4 MiB\n" + show("rsync", rp)
    assert pp.returncode == rp.returncode, \
        f"exit code {pp.returncode}, rsync gives {rp.returncode}\n" + show("pysync", pp) + show("rsync", rp)
    assert "No space left on device" in pp.stderr, pp.stderr
    no_traceback(pp)
    for tool in ("pysync", "rsync"):
        assert (small_fs / tool / "big").read_bytes() == old, f"{tool} damaged the old file"
        assert temp_files(small_fs / tool) == [], f"{tool} left temp files"
