"""The option table: popt-style parsing, and the server command line we
send compared with the one stock rsync sends for the same options
(captured live with a remote shell that records its argv)."""

import re
import shlex
import subprocess
import sys

import pytest

from pysync.options import parse_args
from pysync.server_cmd import server_args
from pysync.protocol.constants import CLIENT_CAPABILITIES


def test_bundles_values_and_negations():
    o = parse_args(["-avvzB4096", "--no-W", "-e", "ssh -p 2", "--exclude=*.o", "a", "b", "--delete"])
    assert (o.verbose, o.compress, o.block_size, o.whole_file, o.rsh) == (2, True, 4096, False, "ssh -p 2")
    assert o.recursive and o.links and o.perms and o.times and o.group and o.owner
    assert o.devices and o.specials and o.delete
    assert o.filters == ["- *.o"] and o.args == ["a", "b"]
    assert parse_args(["-a", "--no-D"]).devices is False
    assert parse_args(["--no-whole-file"]).whole_file is False


@pytest.mark.parametrize("argv", [["--frobnicate"], ["-Q"], ["--no-rsh"], ["--delete=x"], ["-B"],
                                  ["--link-dest=/a", "--copy-dest=/b"], ["--link-dest=/a"] * 21,
                                  ["--chmod=g=u"], ["-S", "--direct-io"]])
def test_bad_options_are_syntax_errors(argv):
    from pysync.errors import SyntaxUsageError
    with pytest.raises(SyntaxUsageError):
        parse_args(argv)


RECORDER = f"{sys.executable} -c \"import sys; open(sys.argv[1] + '/argv', 'w').write(' '.join(sys.argv[2:])); sys.exit(1)\""

CASES = [
    ["-a"], ["-av"], ["-az"], ["-ac"], ["-aH"], ["-a", "--delete"], ["-an"], ["-aW"],
    ["-ai"], ["-aii"], ["-a", "--out-format=%n"], ["-av", "--out-format=%n"], ["-a", "--log-format=%o"],
    ["-aii", "--out-format=%i"], ["-a", "--log-file=/dev/null", "--log-file-format=%f"],
    ["-a", "--bwlimit=1.5k"], ["-a", "--bwlimit=1mb"], ["-a", "--bwlimit=0"],
    ["-ai", "-B4096", "--timeout=5", "--bwlimit=10"],
    ["-a", "-M--foo"], ["-a", "-M--bar=a b*", "--remote-option=-x"], ["-a", "--old-args", "-M--bar=a b*"],
    ["-a", "--old-args", "--old-args", "--backup-dir=b k*", "-M--x=y z"], ["-a", "--old-args", "--backup-dir=b k*"],
    ["-a", "--stderr=all"], ["-a", "--stderr=c"], ["-aq", "--stderr=client"], ["-aq", "--stderr=errors"],
    ["-av", "--msgs2stderr", "-i"], ["-a", "--no-msgs2stderr", "--stderr=e"], ["-a", "--outbuf=L"],
    ["-a", "--stop-after=5"], ["-a", "--stop-at=2099-01-01T00:00"], ["-az", "--skip-compress=gz/jpg"],
    ["-a", "--skip-compress=a b*"], ["-a", "--max-alloc=2g"], ["-a", "--max-alloc=1g"], ["-a", "--max-alloc=0"],
    ["-a", "--max-alloc=1.5M", "--skip-compress=x", "-M--y"], ["-a8"], ["-a", "--blocking-io"], ["-a4"], ["-a6"],
    ["-a", "--no-motd"], ["-a", "--copy-as=root"], ["-a", "--early-input=/dev/null"], ["-a", "--debug=flist2"],
    ["-av", "--debug=all,none"], ["-a", "--no-8", "--no-blocking-io", "--no-old-args"],
    ["-aX"], ["-aXX"], ["-aA"], ["-aAX"], ["-rA"], ["-aHAX", "--no-X"],
    ["-a", "--numeric-ids"], ["-a", "--compress-choice=zstd"], ["-a", "--checksum-choice=md5"],
    ["-a", "-B4096"], ["-a", "--delete-after"], ["-a", "--size-only"], ["-ax"], ["-aI"],
    ["-au"], ["-a", "--ignore-existing"], ["-a", "--existing"], ["-a", "--max-size=10k"],
    ["-a", "--min-size=1k"], ["-ab"], ["-a", "--backup-dir=bk"], ["-ab", "--suffix=.old"],
    ["-a", "--link-dest=../prev"], ["-a", "--compare-dest=/x"], ["-a", "--copy-dest=/y"],
    ["-a", "--link-dest=/a", "--link-dest=/b"], ["-a", "--partial"], ["-a", "--partial-dir=.p"],
    ["-a", "--inplace"], ["-a", "--inplace", "--partial"], ["-a", "--append"],
    ["-a", "--append-verify"], ["-a", "--append", "--fsync"], ["-ab", "--inplace"],
    ["-a", "--delay-updates"], ["-a", "--delay-updates", "--partial-dir=.p"],
    ["-a", "--remove-source-files"], ["-av", "--remove-source-files", "--delay-updates"],
    ["-aR"], ["-aR", "--no-implied-dirs"], ["-a", "--files-from=/dev/null"],
    ["-ar", "--files-from=/dev/null", "--no-relative"], ["-aC"], ["-aF"], ["-aFF", "--delete"],
    ["-avC", "--filter=merge /dev/null"], ["-d"], ["-d", "--delete"], ["-ad"], ["-rd", "--delete"],
    ["--old-dirs"], ["-t", "--old-d", "--delete"],
    ["-lt", "--files-from=/dev/null", "--delete"], ["-a", "--files-from=:/l"],
    ["-a", "--files-from=host:/l", "--from0", "--no-relative"], ["-r", "--list-only"],
    ["--list-only", "--no-dirs"], ["-a", "--trust-sender"],
    ["-aO"], ["-aJ"], ["-aOJ"], ["-a", "--omit-dir-times", "--no-O"], ["-abO"], ["-ab", "--no-O"],
    ["-aO", "--backup-dir=bk"], ["-aP"], ["-avP"], ["-a", "-P", "--no-partial"],
    ["-a", "--delete", "--ignore-errors"], ["-a", "--ignore-errors", "--partial", "--numeric-ids"],
    ["-aL"], ["-ak"], ["-akL"], ["-a", "--copy-unsafe-links"], ["-a", "--safe-links"], ["-a", "--munge-links"], ["-a", "--no-munge-links"],
    ["-aL", "--safe-links", "--copy-unsafe-links", "--ignore-errors", "--numeric-ids"],
    ["-am"], ["-amOJ"], ["-am", "--delete"], ["-a", "--mkpath"], ["-a", "--mkpath", "--preallocate"],
    ["-a", "--chmod=Du+x", "--chmod=Fgo-w"],
    ["-a", "--usermap=1:2,*:root", "--groupmap=0-9:x"], ["-a", "--chown=a:b"], ["-r", "--chown=:g"],
    ["-a", "--backup-dir=b k/*x", "--suffix=~ $(x)"], ["-a", "--partial-dir=p d;[a]"],
    ["-a", "--link-dest=../a b", "--link-dest=x?"], ["-a", "--files-from=host:/l i\\st"], ["-aS"], ["-aS", "--inplace"], ["-aSx", "--inplace", "-W"],
    ["-a", "--ignore-missing-args"], ["-a", "--delete-missing-args"], ["-a", "--max-delete=0"],
    ["-a", "--max-delete=3", "--ignore-missing-args", "--delete-missing-args"],
    ["-a", "--delete", "--suffix=.x", "--backup-dir=b", "--checksum-choice=md5", "-z", "--zl=3"],
    ["-a", "--delete-excluded", "--force", "--max-size=1k", "--min-size=1", "--stats", "--size-only"],
    ["-a", "--del", "--delete-excluded", "--partial", "--modify-window=2", "--checksum-seed=5",
     "--temp-dir=t", "--fsync", "--link-dest=l", "--numeric-ids", "--ignore-errors", "--safe-links"],
    ["-a", "--compress-choice=zstd", "--compress-level=4", "-B1024", "--timeout=9", "--bwlimit=5",
     "--existing", "--usermap=0:1", "--inplace", "--mkpath", "--preallocate", "--remove-source-files"],
    ["-aU"], ["-aUU"], ["-rU"], ["-aU", "--open-noatime"], ["-a", "--open-noatime"], ["-aUU", "--no-open-noatime"],
    ["-a", "--no-U"], ["-aUU", "--no-atimes"], ["-rE"], ["-aE"], ["-rtE", "--no-p"], ["-a", "--no-crtimes"],
    ["-a", "--super"], ["-a", "--no-super"], ["-a", "--super", "--no-super"], ["-a", "--fake-super", "--super"],
    ["-a", "--copy-devices"], ["-a", "--write-devices"], ["-r", "--write-devices", "--copy-devices", "-U"],
    ["-aK"], ["-aKmO"], ["-ay"], ["-ayy", "--link-dest=x"], ["-ay", "--no-fuzzy"], ["-aKmOJy"], ["-rK", "--delete"], ["-a", "-T", "/t d"], ["-a", "--temp-dir=../t", "--existing", "--link-dest=x"],
]


@pytest.mark.parametrize("opts", CASES, ids=lambda c: "_".join(c))
@pytest.mark.parametrize("pull", [False, True], ids=["push", "pull"])
def test_server_args_match_stock_rsync(tmp_path, opts, pull):
    rsh = RECORDER.replace("sys.argv[1]", repr(str(tmp_path)))
    remote = "host:/r/"
    cmd = ["rsync", *opts, "-e", rsh]
    cmd += [remote, str(tmp_path / "d")] if pull else [str(tmp_path) + "/", remote]
    subprocess.run(cmd, capture_output=True, timeout=30)
    text = (tmp_path / "argv").read_text()
    # text: rsync <server args...> . /r/ -- compared as the remote shell
    # gets it (an escaped space stays inside its word).
    theirs = text[:text.index(" . ")].split(" ", 1)[1]
    ours = " ".join(server_args(parse_args(opts), pull, CLIENT_CAPABILITIES))
    # Capability letters differ on purpose (we never offer inc-recurse 'i'
    # nor iconv 's'); everything else must be the same.
    def norm(args):
        return re.sub(r"(^|\s)(-[A-Za-z]*?)e\.\S*", r"\1\2", args)
    assert norm(ours) == norm(theirs)


@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "push-pysync2rsync",
                                  "pull-pysync2rsync"])
@pytest.mark.parametrize("opts", [["--delete-excluded"], ["--delete", "--delete-excluded"]],
                         ids=["alone", "with-delete"])
def test_delete_excluded_is_a_delete_mode(tmp_path, role, opts):
    """--delete-excluded implies --delete (options.c), and a server that is
    given only --delete-excluded (all rsync sends for both) deletes.
    Found by interop/fuzz.py: pysync deleted nothing with it alone, and as
    the receiving server of --delete --delete-excluded failed with exit 2
    ('Invalid file index')."""
    import os
    from helpers.roles import lines, sources_command
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        src.mkdir(parents=True)
        dst.mkdir()
        (dst / "extra").write_bytes(b"x")
        (src / "skip.o").write_bytes(b"o")
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-ri", "--exclude=*.o"] + opts + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), sorted(os.listdir(dst)))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"] == (0, ["*deleting   extra"], [])
