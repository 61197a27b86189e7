"""rsync's remaining command-line options (-M, --stderr, --outbuf,
--old-args, -8, -4/-6, --blocking-io, --no-motd, --early-input, --debug),
each run by pysync and by stock rsync on the same input: same tree, same
output lines, same exit code; locally and over the fake remote shell in
both directions.  Limits on a run are in test_run_limits.py."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers.cliopts import REMOTE_ROLES, T_NEW, assert_same, both, make_dst, make_src
from helpers.roles import FAKE_RSH, PYSYNC, command, put
from helpers.trees import compare_trees


# ---- -M / --remote-option -------------------------------------------------------------

@pytest.mark.parametrize("role", REMOTE_ROLES)
@pytest.mark.parametrize("secluded", [[], ["-s"]])
def test_remote_option_reaches_the_server_only(tmp_path, role, secluded):
    # --max-size limits the receiving side: a push's server skips big.bin
    # and d/inner.txt; a pull's server (the sender) ignores it.  With -s
    # the words travel in the connection with the other arguments.
    assert_same(both(tmp_path, role, ["-ai", *secluded, "-M--max-size=1k"]))


def test_remote_option_in_a_local_copy(tmp_path):
    """rsync 3.2.7's own local -M mangles the destination argument (a
    directory with a garbage name appears), so the local copy is checked
    against what rsync does with the same option over a remote shell."""
    src = tmp_path / "src"
    make_src(src)
    dst_p, dst_r = tmp_path / "p", tmp_path / "r"
    for d in (dst_p, dst_r):
        d.mkdir()
        make_dst(d)
    p = subprocess.run(PYSYNC + ["-ai", "-M--max-size=1k", f"{src}/", f"{dst_p}/"], capture_output=True)
    r = subprocess.run(["rsync", "-ai", "-M--max-size=1k", "-e", FAKE_RSH, f"{src}/", f"localhost:{dst_r}/"],
                       capture_output=True)
    assert p.returncode == r.returncode == 0, p.stderr
    assert compare_trees(dst_p, dst_r) == []
    assert not (dst_p / "big.bin").exists()


@pytest.mark.parametrize("role", REMOTE_ROLES + ["local"])
def test_remote_option_the_server_refuses(tmp_path, role):
    out = both(tmp_path, role, ["-r", "-M--frobnicate"])
    (rr, _), (pr, _) = out["rsync"], out["pysync"]
    assert pr.returncode == rr.returncode == 12
    for r in (pr, rr):
        assert b"on remote machine: --frobnicate: unknown option" in r.stderr


def test_remote_option_must_start_with_a_dash(tmp_path):
    for tool in (PYSYNC, ["rsync"]):
        r = subprocess.run(tool + ["-r", "-Mfoo", f"{tmp_path}/", f"{tmp_path}/x/"], capture_output=True)
        assert r.returncode == 1
        assert b"Remote option must start with a dash: foo" in r.stderr


# ---- --stderr ------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["local", "push-pysync2rsync", "push-rsync2pysync", "pull-pysync2rsync"])
@pytest.mark.parametrize("mode", ["errors", "all", "client"])
def test_stderr_modes(tmp_path, role, mode):
    out = both(tmp_path, role, ["-av", "--delete", f"--stderr={mode}"])
    assert_same(out, stderr=True)
    pr = out["pysync"][0]
    assert (pr.stdout == b"") == (mode == "all")


@pytest.mark.parametrize("server", ["rsync", "pysync"])
@pytest.mark.parametrize("mode", ["errors", "all", "client", None])
def test_stderr_mode_decides_where_a_servers_error_goes(tmp_path, server, mode):
    """A pull naming a missing file: the server's link_stat error reaches
    the client's --log-file only when it travels in the connection
    (--stderr=client); otherwise the server writes it to its own stderr."""
    src = tmp_path / "src"
    make_src(src)
    res = {}
    for client in ("rsync", "pysync"):
        if client == "pysync" and server == "pysync":
            continue
        log = tmp_path / f"{client}.log"
        dst = tmp_path / client
        argv = (PYSYNC if client == "pysync" else ["rsync"]) + ["-av", f"--log-file={log}"]
        argv += [f"--stderr={mode}"] if mode else []
        argv += ["-e", FAKE_RSH, f"--rsync-path={server}", f"localhost:{src}/",
                 f"localhost:{tmp_path}/missing", f"{dst}/"]
        r = subprocess.run(argv, capture_output=True, timeout=60)
        res[client] = (r, b"link_stat" in log.read_bytes(), b"link_stat" in r.stderr)
        assert compare_trees(dst, src) == []
    ref = subprocess.run(["rsync", "-av", f"--log-file={tmp_path}/ref.log"] + ([f"--stderr={mode}"] if mode else [])
                         + ["-e", FAKE_RSH, "--rsync-path=rsync", f"localhost:{src}/",
                            f"localhost:{tmp_path}/missing", f"{tmp_path}/ref/"], capture_output=True)
    expect = (ref.returncode, b"link_stat" in (tmp_path / "ref.log").read_bytes(), True)
    assert expect[1] == (mode == "client")
    for client, (r, in_log, in_err) in res.items():
        assert (r.returncode, in_log, in_err) == expect, (client, r.stderr)


def test_stderr_bad_mode_and_quiet(tmp_path):
    for tool in (PYSYNC, ["rsync"]):
        r = subprocess.run(tool + ["--stderr=x", f"{tmp_path}/", f"{tmp_path}/d"], capture_output=True)
        assert r.returncode == 1
        assert b'--stderr mode "x" is not one of errors, all, or client' in r.stderr
        v = subprocess.run(tool + ["--stderr=a", "--version"], capture_output=True)
        assert v.returncode == 0 and v.stdout == b"" and b"version" in v.stderr


@pytest.mark.parametrize("role", ["push-pysync2rsync", "push-rsync2pysync"])
def test_quiet_with_stderr_client(tmp_path, role):
    """-q is not sent with --stderr=client: the client drops the info."""
    out = both(tmp_path, role, ["-aq", "--delete", "--stderr=client"])
    assert_same(out, stderr=True)
    assert out["pysync"][0].stdout == b""


# ---- --outbuf -----------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["N", "L", "B", "line", "x", ""])
def test_outbuf(tmp_path, mode):
    out = both(tmp_path, "local", ["-av", f"--outbuf={mode}"])
    assert_same(out, stderr=True)
    if mode[:1].upper() not in ("N", "L", "B"):
        assert out["pysync"][0].returncode == 1
        assert b"Invalid --outbuf setting -- specify N, L, or B." in out["pysync"][0].stderr


def test_outbuf_applies_to_stdout():
    code = ("import sys; from pysync.options import parse_args; from pysync.output import setup_stdout;"
            "setup_stdout(parse_args(['--outbuf=%s', 'a', 'b'])); s = sys.stdout;"
            "print(s.line_buffering, s.write_through, file=sys.stderr)")
    got = {m: subprocess.run([sys.executable, "-c", code % m], capture_output=True, text=True).stderr.split()
           for m in "NLB"}
    assert got == {"N": ["False", "True"], "L": ["True", "False"], "B": ["False", "False"]}


# ---- --old-args -------------------------------------------------------------------------

RECORD = "{py} -c \"import sys; open({out!r}, 'a').write(repr(sys.argv[2:]) + chr(10)); sys.exit(1)\""


@pytest.mark.parametrize("opts,env", [
    ([], None), (["--old-args"], None), (["--old-args", "--old-args"], None), (["--old-args", "--no-old-args"], None),
    ([], "1"), ([], "2"), ([], "0"), (["-s"], "1"),
    (["-M--x=a b*", "--backup-dir=b k*", "--old-args"], None),
    (["-M--x=a b*", "--backup-dir=b k*", "--old-args", "--old-args"], None),
])
@pytest.mark.parametrize("pull", [True, False])
def test_old_args_remote_command(tmp_path, opts, env, pull):
    """The remote command line, as the remote shell gets it, for names
    with spaces and wildcards."""
    environ = dict(os.environ)
    environ.pop("RSYNC_OLD_ARGS", None)
    if env is not None:
        environ["RSYNC_OLD_ARGS"] = env
    got = {}
    for name, tool in (("pysync", PYSYNC), ("rsync", ["rsync"])):
        rec = tmp_path / f"{name}.argv"
        rsh = RECORD.format(py=sys.executable, out=str(rec))
        paths = ["h:/r/a b*", "h:/x y", f"{tmp_path}/d/"] if pull else [f"{tmp_path}/", "h:/r/a b*"]
        subprocess.run(tool + ["-a", *opts, "-e", rsh, *paths], capture_output=True, env=environ, timeout=30)
        got[name] = rec.read_text() if rec.exists() else None
    def norm(text):         # capability letters differ on purpose (see test_options.py)
        import re
        return re.sub(r"e\.\w+", "e.", text) if text else text
    assert norm(got["pysync"]) == norm(got["rsync"])


def test_old_args_conflicts_with_secluded_args(tmp_path):
    for tool in (PYSYNC, ["rsync"]):
        r = subprocess.run(tool + ["--old-args", "-s", "-e", FAKE_RSH, f"{tmp_path}/", "h:/x/"], capture_output=True)
        assert r.returncode == 1
        assert b"--secluded-args conflicts with --old-args." in r.stderr


@pytest.mark.parametrize("role", ["pull-pysync2rsync", "pull-rsync2pysync"])
def test_old_args_lets_the_remote_shell_expand(tmp_path, role):
    src = tmp_path / "src"
    for n in ("a1.txt", "a2.txt", "b.txt"):
        put(src, n, n.encode(), T_NEW)
    out = {}
    for tool in ("rsync", "pysync"):
        dst = tmp_path / tool
        dst.mkdir()
        argv = command(tool, role, ["-a", "--old-args"], src, dst)
        argv[-2] = f"localhost:{src}/a*"            # expanded by the remote shell
        out[tool] = (subprocess.run(argv, capture_output=True, timeout=60), dst)
    assert_same(out, dir_times=False)     # the destination is no transfer root here
    assert sorted(os.listdir(out["pysync"][1])) == ["a1.txt", "a2.txt"]


# ---- -8 --------------------------------------------------------------------------------

def _extra_high_bit(dst):
    with open(os.path.join(os.fsencode(dst), b"gone\xe9"), "wb") as f:
        f.write(b"q")


@pytest.mark.parametrize("role", ["local", "pull-pysync2rsync", "push-pysync2rsync", "push-rsync2pysync"])
@pytest.mark.parametrize("eight", [[], ["-8"], ["--8-bit-output", "--no-8"]])
def test_eight_bit_output(tmp_path, role, eight):
    """Item names and the receiver's "deleting" lines (which a server
    sends to the client)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in (b"caf\xe9.txt", b"ok\xc3\xa9.txt", b"tab\tx", b"ctl\x01y", b"lit\\#101"):
        with open(os.path.join(os.fsencode(src), name), "wb") as f:
            f.write(b"x")
    env = dict(os.environ, LC_ALL="C.UTF-8")
    out = both(tmp_path, role, ["-rv", "--delete", *eight], src=src, dst_setup=_extra_high_bit, env=env)
    (rr, _), (pr, _) = out["rsync"], out["pysync"]
    assert pr.returncode == rr.returncode == 0
    names = lambda b: sorted(ln for ln in b.split(b"\n")
                             if ln.startswith((b"caf", b"ok", b"tab", b"ctl", b"lit", b"deleting")))
    assert names(pr.stdout) == names(rr.stdout)
    assert (b"caf\xe9.txt" in pr.stdout) == (eight == ["-8"])


# ---- -4 / -6, --blocking-io, --no-motd, --early-input, --debug -----------------------------------

@pytest.mark.parametrize("opt", ["-4", "-6", "--ipv4", "--ipv6", None])
def test_address_family_goes_to_ssh(tmp_path, opt):
    """rsync adds -4/-6 to the remote shell's arguments when it is ssh."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    ssh = bindir / "ssh"
    ssh.write_text(f"#!/bin/sh\necho \"$@\" >> \"{tmp_path}/$REC\"\nexec {FAKE_RSH} \"$@\"\n")
    ssh.chmod(0o755)
    src = tmp_path / "src"
    make_src(src)
    for tool, rec in ((PYSYNC, "p"), (["rsync"], "r")):
        dst = tmp_path / f"dst-{rec}"
        r = subprocess.run(tool + ["-a", *([opt] if opt else []), "-e", str(ssh), f"{src}/", f"localhost:{dst}/"],
                           capture_output=True, env=dict(os.environ, REC=rec), timeout=60)
        assert r.returncode == 0, r.stderr
        assert compare_trees(dst, src) == []
    first = lambda n: (tmp_path / n).read_text().split(" rsync ")[0]
    assert first("p") == first("r")


@pytest.mark.parametrize("role", ["local", "push-pysync2rsync", "pull-rsync2pysync"])
@pytest.mark.parametrize("opts", [["--blocking-io"], ["--no-blocking-io"], ["--no-motd"], ["--early-input=/dev/null"],
                                  ["--debug=none"], ["--debug=FLIST0,all0"]])
def test_options_without_effect_here(tmp_path, role, opts):
    """Options for the daemon protocol or for descriptors pysync always
    blocks on: accepted, and the transfer is rsync's."""
    assert_same(both(tmp_path, role, ["-ai", *opts]), stderr=True)


def test_debug_help_and_bad_words(tmp_path):
    p = subprocess.run(PYSYNC + ["--debug=help"], capture_output=True)
    r = subprocess.run(["rsync", "--debug=help"], capture_output=True)
    assert (p.returncode, p.stdout) == (r.returncode, r.stdout)
    for bad in ("foo", "flist2,nope3", "help2x"):
        p = subprocess.run(PYSYNC + [f"--debug={bad}", f"{tmp_path}/", f"{tmp_path}/d/"], capture_output=True)
        r = subprocess.run(["rsync", f"--debug={bad}", f"{tmp_path}/", f"{tmp_path}/d/"], capture_output=True)
        assert p.returncode == r.returncode == 1
        assert p.stderr.splitlines()[0] == r.stderr.splitlines()[0]


def test_address_family_for_the_built_in_ssh():
    """Without -e, -4 / -6 limit the built-in SSH client's addresses, as
    ssh -4 / -6 do: an IPv4 server is reached with -4; with -6 its IPv4
    address does not resolve (ssh: "Could not resolve hostname")."""
    import socket
    from pysync.errors import PysyncError
    from pysync.transport.sshconfig import HostConfig
    from pysync.transport.sshconnect import _Connector
    srv = socket.socket(socket.AF_INET)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    cfg = HostConfig(host="127.0.0.1", hostname="127.0.0.1", port=srv.getsockname()[1])
    conn = _Connector("/nonexistent", None, None, 5, sys.stderr)
    conn.family = socket.AF_INET
    conn._tcp(cfg, 5).close()
    conn.family = socket.AF_INET6
    with pytest.raises(PysyncError, match="Could not resolve hostname 127.0.0.1"):
        conn._tcp(cfg, 5)
    srv.close()
