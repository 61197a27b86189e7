"""End to end over a real sshd on 127.0.0.1: ``pysync -a src/ host:dst/``
with paramiko and the user's ssh setup (a throw-away $HOME), against the
stock ``rsync --server`` on the other side.

The client is the real ``pysync`` command once the CLI is wired to
transport/ssh.py; until then ``sshd.client_argv`` runs the same CLI with
SshChannel standing in for the ``-e`` transport (``sshd.py --drive``).
Every child runs in its own session without a terminal (as from cron),
under a wall-clock limit.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import sys
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import harness
import sshd

_reason = sshd.skip_reason() or (None if harness.RSYNC else "system rsync is not installed")
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = sshd.SshWorld(tmp_path_factory.mktemp("sshe2e"))
    w.main = w.server("main")
    yield w
    w.close()


@pytest.fixture
def ssh(world):
    world.write_config(world.host_block("srv", world.main))
    world.write_known_hosts(world.main.known_hosts_entry())
    return world


def pysync(world, *args, env=None, timeout=120):
    return harness.run(sshd.client_argv([*args]), env=world.env(**(env or {})), timeout=timeout)


def make_tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").write_bytes(b"")
    (root / "small.txt").write_text("hello over ssh\n")
    (root / "sub" / "big.bin").write_bytes(os.urandom(3 << 20) + b"tail")
    (root / "sub" / "deeper" / "name with spaces & 'quotes'").write_text("q")
    (root / "sub" / "ünïcødé").write_text("u")
    (root / "exec.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "exec.sh", 0o750)
    os.symlink("small.txt", root / "link")
    for p in [root / "sub" / "big.bin", root / "small.txt"]:
        os.utime(p, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    fix_dir_times(root)


def fix_dir_times(root: Path) -> None:
    # Old directory times: stock rsync leaves a directory's time alone when
    # it is in the same second as the source's (a fresh tree and a fresh
    # destination), which would make the comparison flaky.
    for d in sorted((p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()), reverse=True):
        os.utime(d, ns=(1_500_000_000_987_654_321, 1_500_000_000_987_654_321))
    os.utime(root, ns=(1_500_000_000_987_654_321, 1_500_000_000_987_654_321))


def same(a: Path, b: Path) -> list:
    return harness.compare_trees(a, b, hardlinks=False)


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    return src


# -- transfers -----------------------------------------------------------------

def test_push_and_pull(ssh, tree, tmp_path):
    dst = tmp_path / "pushed"
    r = pysync(ssh, "-a", f"{tree}/", f"srv:{dst}/")
    assert r.rc == 0, r.describe()
    assert same(tree, dst) == []
    back = tmp_path / "pulled"
    r = pysync(ssh, "-a", f"srv:{dst}/", f"{back}/")
    assert r.rc == 0, r.describe()
    assert same(tree, back) == []


def test_delta_update_both_ways(ssh, tree, tmp_path):
    dst = tmp_path / "d"
    assert pysync(ssh, "-a", f"{tree}/", f"srv:{dst}/").rc == 0
    big = tree / "sub" / "big.bin"
    data = bytearray(big.read_bytes())
    data[1_000_000:1_000_010] = b"0123456789"
    big.write_bytes(bytes(data))
    fix_dir_times(tree)
    r = pysync(ssh, "-a", "--stats", f"{tree}/", f"srv:{dst}/")
    assert r.rc == 0, r.describe()
    assert same(tree, dst) == []
    lit = harness.stats(r.stdout).get("Literal data")
    assert lit is not None and lit < 1 << 20, r.stdout       # a delta, not the whole file


def test_user_at_host_and_several_sources(ssh, tree, tmp_path):
    dst = tmp_path / "multi"
    r = pysync(ssh, "-a", f"root@srv:{tree}/small.txt", f"root@srv:{tree}/sub", f"{dst}/")
    assert r.rc == 0, r.describe()
    assert (dst / "small.txt").read_text() == "hello over ssh\n"
    assert same(tree / "sub", dst / "sub") == []


def test_ipv6_bracket_spec(ssh, tree, tmp_path):
    if not ssh.main.ipv6:
        pytest.skip("no IPv6 loopback")
    ssh.write_config(f"Host ::1\n  Port {ssh.main.port}\n  IdentityFile {ssh.client_key}\n")
    ssh.write_known_hosts(ssh.main.known_hosts_entry(name=f"[::1]:{ssh.main.port}"))
    dst = tmp_path / "v6"
    r = pysync(ssh, "-a", f"{tree}/", f"root@[::1]:{dst}/")
    assert r.rc == 0, r.describe()
    assert same(tree, dst) == []


def test_home_directory_spec(ssh, tmp_path):
    name = f"pysync-ssh-test-{uuid.uuid4().hex[:12]}"
    f = tmp_path / name
    f.write_text("home\n")
    remote_home = Path(os.path.expanduser("~root"))
    try:
        r = pysync(ssh, "-a", str(f), "srv:")
        assert r.rc == 0, r.describe()
        assert (remote_home / name).read_text() == "home\n"
    finally:
        if (remote_home / name).exists():
            (remote_home / name).unlink()


def test_proxyjump(ssh, tree, tmp_path):
    jump = ssh.server("jump")
    try:
        ssh.write_config(ssh.host_block("bastion", jump) +
                         ssh.host_block("srv", ssh.main, extra="ProxyJump bastion"))
        ssh.write_known_hosts(ssh.main.known_hosts_entry() + jump.known_hosts_entry())
        dst = tmp_path / "jumped"
        r = pysync(ssh, "-a", f"{tree}/", f"srv:{dst}/")
        assert r.rc == 0, r.describe()
        assert same(tree, dst) == []
    finally:
        jump.stop()


def test_agent(ssh, tree, tmp_path):
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        key = sshd.keygen(tmp_path / "agentonly", "rsa")
        ssh.authorize(key)
        subprocess.run(["ssh-add", "-q", str(key)], env={**os.environ, "SSH_AUTH_SOCK": str(sock)},
                       check=True, stderr=subprocess.DEVNULL)
        key.unlink()
        ssh.write_config(f"Host srv\n  HostName 127.0.0.1\n  Port {ssh.main.port}\n  User root\n"
                         f"  IdentityFile {tmp_path / 'absent'}\n")
        dst = tmp_path / "agent-dst"
        r = pysync(ssh, "-a", f"{tree}/", f"srv:{dst}/", env={"SSH_AUTH_SOCK": str(sock)})
        assert r.rc == 0, r.describe()
        assert same(tree, dst) == []
    finally:
        agent.terminate()
        agent.wait(5)


# -- refusals ------------------------------------------------------------------

def test_unknown_host_refused(ssh, tree, tmp_path):
    ssh.write_known_hosts("")
    dst = tmp_path / "never"
    r = pysync(ssh, "-a", f"{tree}/", f"srv:{dst}/")
    assert r.rc == 255, r.describe()
    assert "accept-new" in r.stderr and "ssh-keyscan" in r.stderr
    assert not dst.exists()
    assert (ssh.ssh_dir / "known_hosts").read_text() == ""


def test_changed_host_key_refused(ssh, tree, tmp_path):
    other = sshd.keygen(tmp_path / "impostor", "ed25519")
    line = sshd.pubkey_text(other).rsplit(" ", 1)[0]
    text = f"[127.0.0.1]:{ssh.main.port} {line}\n"
    ssh.write_known_hosts(text)
    dst = tmp_path / "never"
    r = pysync(ssh, "-a", f"{tree}/", f"srv:{dst}/")
    assert r.rc == 255, r.describe()
    assert "CHANGED" in r.stderr and f"{ssh.ssh_dir / 'known_hosts'}:1" in r.stderr
    assert not dst.exists()
    assert (ssh.ssh_dir / "known_hosts").read_text() == text


def test_remote_without_rsync_explained(ssh, tree, tmp_path):
    r = pysync(ssh, "-a", "--rsync-path=/nonexistent", f"{tree}/", f"srv:{tmp_path}/x/")
    assert r.rc == 127, r.describe()
    lines = [ln for ln in r.stderr.splitlines() if "/nonexistent" in ln]
    assert len(lines) == 1, r.describe()
    assert "not found" in lines[0] and "--rsync-path" in lines[0]


def test_io_timeout_on_stalled_remote(ssh, tree, tmp_path):
    t0 = time.monotonic()
    r = pysync(ssh, "-a", "--timeout=2", "--rsync-path=sleep 60; rsync", f"{tree}/",
               f"srv:{tmp_path}/t/", timeout=60)
    assert r.rc == 30, r.describe()
    assert time.monotonic() - t0 < 2 + 10


def test_contimeout_on_silent_server(ssh, tree, tmp_path):
    relay = sshd.Relay(None)
    try:
        ssh.write_config(f"Host srv\n  HostName 127.0.0.1\n  Port {relay.port}\n")
        t0 = time.monotonic()
        r = pysync(ssh, "-a", "--contimeout=2", f"{tree}/", f"srv:{tmp_path}/t/", timeout=60)
        assert r.rc == 35, r.describe()
        assert time.monotonic() - t0 < 2 + 10
    finally:
        relay.close()


def _encrypted(ssh, tmp_path):
    key = sshd.keygen(tmp_path / "locked", "ecdsa", passphrase="open sesame")
    ssh.authorize(key)
    ssh.write_config(ssh.host_block("srv", ssh.main, identity=key))
    return key


def test_encrypted_key_no_terminal_fails_fast(ssh, tree, tmp_path):
    key = _encrypted(ssh, tmp_path)
    t0 = time.monotonic()
    r = pysync(ssh, "-a", f"{tree}/", f"srv:{tmp_path}/enc/", timeout=60)
    assert r.rc == 255, r.describe()
    assert f"{key} is encrypted and there is no terminal" in r.stderr
    assert time.monotonic() - t0 < 20


def test_encrypted_key_on_terminal(ssh, tree, tmp_path):
    _encrypted(ssh, tmp_path)
    dst = tmp_path / "enc"
    argv = sshd.client_argv(["-a", f"{tree}/", f"srv:{dst}/"])
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(argv[0], argv, ssh.env())
        finally:
            os._exit(127)
    out, answered = b"", False
    deadline = time.monotonic() + 90
    status = None
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            out += data
            if not answered and b"Enter passphrase" in out:
                os.write(fd, b"open sesame\n")
                answered = True
            if not data:
                break
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            break
    if status is None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(pid, 0)
    assert answered, out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, out.decode(errors="replace")
    assert same(tree, dst) == []
    assert b"open sesame" not in out


def test_openssh_client_sees_the_same_server(ssh, tree, tmp_path):
    """Sanity for the benchmark: stock rsync over OpenSSH with these keys."""
    if shutil.which("ssh") is None:
        pytest.skip("no OpenSSH client")
    cfg = ssh.ssh_dir / "config"
    rsh = f"ssh -F {cfg} -o UserKnownHostsFile={ssh.ssh_dir / 'known_hosts'} -o BatchMode=yes"
    dst = tmp_path / "openssh"
    r = harness.run([harness.RSYNC, "-a", "-e", rsh, f"{tree}/", f"srv:{dst}/"], env=ssh.env())
    assert r.rc == 0, r.describe()
    assert same(tree, dst) == []


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_stock_rsync_over_openssh_runs_pysync_as_remote(ssh, tree, tmp_path, direction):
    """rsync (OpenSSH) with --rsync-path naming pysync on the far side."""
    if shutil.which("ssh") is None:
        pytest.skip("no OpenSSH client")
    cfg = ssh.ssh_dir / "config"
    rsh = f"ssh -F {cfg} -o UserKnownHostsFile={ssh.ssh_dir / 'known_hosts'} -o BatchMode=yes"
    remote = f"--rsync-path={sys.executable} -m pysync"
    if direction == "push":
        dst = tmp_path / "pushed"
        cmd = [harness.RSYNC, "-a", "-e", rsh, remote, f"{tree}/", f"srv:{dst}/"]
    else:
        dst = tmp_path / "pulled"
        cmd = [harness.RSYNC, "-a", "-e", rsh, remote, f"srv:{tree}/", f"{dst}/"]
    r = harness.run(cmd, env=ssh.env())
    assert r.rc == 0, r.describe()
    assert same(tree, dst) == []


def test_listing_and_files_from_over_ssh(ssh, tree, tmp_path):
    """``pysync srv:src/`` lists what stock rsync over OpenSSH lists, and a
    pull with --files-from forwards the names to the remote sender."""
    if shutil.which("ssh") is None:
        pytest.skip("no OpenSSH client")
    cfg = ssh.ssh_dir / "config"
    rsh = f"ssh -F {cfg} -o UserKnownHostsFile={ssh.ssh_dir / 'known_hosts'} -o BatchMode=yes"
    ours = pysync(ssh, "-r", f"srv:{tree}/")
    theirs = harness.run([harness.RSYNC, "-r", "-e", rsh, f"srv:{tree}/"], env=ssh.env())
    assert ours.rc == theirs.rc == 0, ours.describe()
    assert ours.stdout == theirs.stdout and "sub/big.bin" in ours.stdout
    (tmp_path / "list").write_text("small.txt\nsub/deeper\n")
    dst = tmp_path / "picked"
    r = pysync(ssh, "-a", f"--files-from={tmp_path / 'list'}", f"srv:{tree}/", f"{dst}/")
    assert r.rc == 0, r.describe()
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*")) == \
        ["small.txt", "sub", "sub/deeper"]
