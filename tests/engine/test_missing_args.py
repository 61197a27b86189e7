"""--ignore-missing-args and --delete-missing-args.

--ignore-missing-args: a source argument that does not exist is left out
without an error; compared with stock rsync in every role.

--delete-missing-args: the sender lists a missing argument as an entry of
mode 0 and the receiver deletes what it has under that name.  Debian's
rsync 3.2.7 cannot be the reference for the whole run: its receiver
refuses mode 0 ("invalid file mode 00", exit 2, its backport of upstream's
mode check without the exception upstream later added for this option).
Its sender works, so the stock rsync sender feeds pysync's receiver here,
and every other role is held to the same result."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers.roles import ROLES, lines, role_cases, sources_command

OLD = 1_500_000_000


def _tree(root):
    return sorted(str(p.relative_to(root)) + ("/" if p.is_dir() else "") for p in root.rglob("*"))


def _setup(top):
    src, dst = top / "src", top / "dst"
    (src / "d").mkdir(parents=True)
    (src / "a").write_bytes(b"a\n")
    (src / "d" / "f").write_bytes(b"f\n")
    (dst / "full").mkdir(parents=True)
    (dst / "full" / "x").write_bytes(b"x\n")
    (dst / "edir").mkdir()
    (dst / "gone").write_bytes(b"gone\n")
    (dst / "keep").write_bytes(b"keep\n")
    return src, dst


@pytest.mark.parametrize("role,opts", role_cases(
    [["-ai", "--ignore-missing-args"], ["-a", "--ignore-missing-args", "--delete"],
     ["-av", "--ignore-missing-args"]], remote_every=1))
def test_ignore_missing_args_as_rsync(tmp_path, role, opts):
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = _setup(tmp_path / tool)
        srcs = [f"{src}/a", f"{src}/nothere", f"{src}/d", f"{src}/gone"]
        r = subprocess.run(sources_command(tool, role, opts, srcs, dst), capture_output=True, timeout=120)
        got[tool] = (r.returncode, _tree(dst), lines(r.stdout), r.stderr.decode())
    assert got["pysync"][:3] == got["rsync"][:3]
    assert got["pysync"][0] == 0 and got["pysync"][3] == ""
    assert "d/f" in got["pysync"][1]


@pytest.mark.parametrize("role", ["local", "push-pysync2rsync", "push-rsync2pysync",
                                  "pull-pysync2rsync", "pull-rsync2pysync"])
def test_without_the_option_a_missing_argument_fails(tmp_path, role):
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = _setup(tmp_path / tool)
        r = subprocess.run(sources_command(tool, role, ["-a"], [f"{src}/a", f"{src}/nothere"], dst),
                           capture_output=True, timeout=120)
        got[tool] = (r.returncode, _tree(dst))
    assert got["pysync"] == got["rsync"] == (23, got["rsync"][1])


# The roles whose receiver is pysync: the reference run is stock rsync's sender.
PYSYNC_RECEIVES = {"local": "pysync", "push-rsync2pysync": "rsync", "pull-pysync2rsync": "rsync"}


def _run_delete_missing(tmp_path, role, opts, name):
    src, dst = _setup(tmp_path / name)
    srcs = [f"{src}/a", f"{src}/gone", f"{src}/full", f"{src}/edir", f"{src}/nothere", f"{src}/keep"]
    r = subprocess.run(sources_command("pysync", role, opts, srcs, dst), capture_output=True, timeout=120)
    return r, dst


@pytest.mark.parametrize("opts,expect_tree,expect_out", [
    (["-ai", "--delete-missing-args"],
     ["a", "full/", "full/x"],
     [">f+++++++++ a", "*deleting   edir/", "cannot delete non-empty directory: full",
      "*deleting   gone", "*deleting   keep"]),
    (["-ai", "--delete-missing-args", "--force"],
     ["a"],
     [">f+++++++++ a", "*deleting   edir/", "*deleting   full/x", "*deleting   full/",
      "*deleting   gone", "*deleting   keep"]),
    (["-ai", "--delete-missing-args", "--max-delete=2"],
     ["a", "full/", "full/x", "keep"],
     [">f+++++++++ a", "*deleting   edir/", "cannot delete non-empty directory: full",
      "*deleting   gone"]),
    (["-ai", "--delete-missing-args", "-n"],
     ["edir/", "full/", "full/x", "gone", "keep"],
     [">f+++++++++ a", "*deleting   edir/", "cannot delete non-empty directory: full",
      "*deleting   gone", "*deleting   keep"]),
], ids=["plain", "force", "max-delete", "dry-run"])
@pytest.mark.parametrize("role", sorted(PYSYNC_RECEIVES))
def test_delete_missing_args_deletes_on_a_pysync_receiver(tmp_path, role, opts, expect_tree, expect_out):
    r, dst = _run_delete_missing(tmp_path, role, opts, "run")
    if "--max-delete=2" in opts:
        assert r.returncode == 25, r.stderr
        assert b"Deletions stopped due to --max-delete limit (1 skipped)" in r.stderr
    else:
        assert r.returncode == 0, r.stderr
    assert _tree(dst) == expect_tree
    if role.startswith("push"):     # the sending client itemizes the file it sent
        expect_out = [ln.replace(">f", "<f") for ln in expect_out]
    # Deletions are the generator's lines, the transferred file the
    # receiver's: their relative order depends on timing.
    assert sorted(lines(r.stdout)) == sorted(expect_out)


def test_delete_missing_args_counts_like_rsync(tmp_path):
    """--stats: the sender counts a missing argument as a file, the
    receiver as a special (flist.c's two counts), and the deletions are
    the receiving client's own."""
    r, _ = _run_delete_missing(tmp_path, "push-rsync2pysync", ["-a", "--stats", "--delete-missing-args"], "r")
    ours, _ = _run_delete_missing(tmp_path, "push-pysync2rsync", ["-a", "--stats", "--delete-missing-args"], "p")
    count = [ln for ln in lines(r.stdout) if ln.startswith("Number of files")]
    assert count == ["Number of files: 6 (reg: 6)"]
    assert [ln for ln in lines(ours.stdout) if ln.startswith("Number of files")] == count
    pull, _ = _run_delete_missing(tmp_path, "pull-pysync2rsync", ["-a", "--stats", "--delete-missing-args"], "q")
    assert [ln for ln in lines(pull.stdout) if ln.startswith(("Number of files", "Number of deleted"))] == [
        "Number of files: 6 (reg: 1, special: 5)", "Number of deleted files: 3 (reg: 2, dir: 1)"]


def test_pysync_sender_is_what_rsync_sends(tmp_path):
    """pysync's sender lists the missing arguments as stock rsync's does:
    Debian's 3.2.7 receiver rejects both the same way (or, once fixed,
    deletes the same)."""
    got = {}
    for tool, role in (("pysync", "push-pysync2rsync"), ("rsync", "push-pysync2rsync")):
        # "a" first: rsync's receiver checks the mode only when it differs
        # from the previous entry's.
        src, dst = _setup(tmp_path / tool)
        srcs = [f"{src}/a", f"{src}/gone"]
        r = subprocess.run(sources_command(tool, role, ["-a", "--delete-missing-args"], srcs, dst),
                           capture_output=True, timeout=120)
        err = r.stderr.decode()
        got[tool] = (r.returncode, _tree(dst), "invalid file mode 00 for gone" in err)
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 2 and got["pysync"][2] or got["pysync"][0] == 0 and "gone" not in got["pysync"][1]


def test_delete_missing_args_with_files_from(tmp_path):
    """--files-from (-R): the missing name keeps its directory, which
    is sent as an implied directory before it."""
    results = {}
    for role in ("local", "push-rsync2pysync"):
        top = tmp_path / role
        src, dst = _setup(top)
        (dst / "d").mkdir()
        (dst / "d" / "old").write_bytes(b"old\n")
        lst = top / "list"
        lst.write_bytes(b"a\nd/old\nd/f\n")
        opts = ["-ai", "--delete-missing-args", f"--files-from={lst}"]
        r = subprocess.run(sources_command("pysync", role, opts, [f"{src}"], dst),
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
        results[role] = (_tree(dst), sorted(ln.replace("<f", ">f") for ln in lines(r.stdout)))
    assert results["local"] == results["push-rsync2pysync"]
    tree, out = results["local"]
    assert "d/old" not in tree and "d/f" in tree
    assert "*deleting   d/old" in out


def test_mode_zero_is_refused_without_the_option():
    from pysync.protocol.buffer import ProtocolError, ReadBuffer
    from pysync.protocol.flist import FileEntry, FlistDecoder, FlistEncoder, FlistOptions
    # Mode 0 sent as such (after another mode), and as the first entry,
    # where it travels as "same mode as before" (the initial 0).
    enc = FlistEncoder(FlistOptions())
    for data in (enc.encode(FileEntry(b"a", 0o100644)) + enc.encode(FileEntry(b"gone", 0)),
                 FlistEncoder(FlistOptions()).encode(FileEntry(b"gone", 0))):
        with pytest.raises(ProtocolError, match="invalid file mode 00 for gone"):
            buf = ReadBuffer()
            buf.feed(data)
            dec = FlistDecoder(FlistOptions())
            while dec.decode(buf).name != b"gone":
                pass
        buf = ReadBuffer()
        buf.feed(data)
        dec = FlistDecoder(FlistOptions(missing=True))
        e = dec.decode(buf)
        e = e if e.name == b"gone" else dec.decode(buf)
        assert e.name == b"gone" and e.mode == 0
