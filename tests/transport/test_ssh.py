"""SshChannel against a real sshd on 127.0.0.1 (interop/sshd.py).

Each test runs the transport directly -- a remote ``echo``/``cat``/
``sleep`` -- in this process, with $HOME pointing at a throw-away world
(client keys, ~/.ssh/config, known_hosts).  End-to-end transfers through
the CLI are in interop/test_ssh.py.
"""

from __future__ import annotations

import hashlib
import os
import pty
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "interop"))
import sshd as sshd_mod  # noqa: E402

from pysync.errors import PysyncError  # noqa: E402

_reason = sshd_mod.skip_reason()
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = sshd_mod.SshWorld(tmp_path_factory.mktemp("sshworld"))
    w.main = w.server("main")
    yield w
    w.close()


@pytest.fixture
def setup(world):
    """Reset config and known_hosts to 'alias srv reaches the main server'."""
    world.write_config(world.host_block("srv", world.main))
    world.write_known_hosts(world.main.known_hosts_entry())
    return world


def channel(world, command, host="srv", **kw):
    from pysync.transport.ssh import SshChannel
    kw.setdefault("home", str(world.home))
    kw.setdefault("system_config", None)
    kw.setdefault("stderr", _Err())
    return SshChannel(host, command=command, **kw)


class _Err:
    def __init__(self):
        self.parts = []

    def write(self, s):
        self.parts.append(s)

    def flush(self):
        pass

    @property
    def text(self):
        return "".join(self.parts)


def run(ch, data=b""):
    if data:
        ch.write(data)
    ch.close_write()
    out = bytearray()
    while True:
        chunk = ch.read(1 << 16)
        if not chunk:
            break
        out += chunk
    return bytes(out), ch.wait()


# -- basics --------------------------------------------------------------------

def test_echo_stderr_and_exit_status(setup):
    err = _Err()
    ch = channel(setup, "echo hello; echo oops >&2; exit 3", stderr=err)
    out, code = run(ch)
    assert out == b"hello\n" and code == 3
    assert err.text == "oops\n"


def test_cat_roundtrip_large(setup):
    """Full duplex: 24 MiB through a remote cat, written and read at the
    same time (more than the channel windows), byte for byte."""
    import threading
    data = os.urandom(1 << 20) * 24
    ch = channel(setup, "cat")
    got = bytearray()

    def reader():
        while True:
            c = ch.read(1 << 18)
            if not c:
                return
            got.extend(c)
    t = threading.Thread(target=reader)
    t.start()
    mv = memoryview(data)
    for off in range(0, len(mv), 100_000):          # odd sizes: packet boundaries move
        ch.write(mv[off:off + 100_000])
    ch.close_write()
    t.join(60)
    assert ch.wait() == 0
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("cipher,mac", [
    ("aes128-gcm@openssh.com", "hmac-sha2-256"),
    ("aes256-gcm@openssh.com", "hmac-sha2-256"),
    ("aes128-ctr", "hmac-sha2-256-etm@openssh.com"),
    ("aes256-ctr", "hmac-sha2-512"),
])
def test_every_cipher_of_the_fast_path(setup, monkeypatch, cipher, mac):
    """Our own packet encoder against sshd, for each cipher/MAC family."""
    from pysync.transport import sshconnect
    monkeypatch.setattr(sshconnect, "CIPHERS", (cipher,))
    monkeypatch.setattr(sshconnect, "MACS", (mac,))
    data = os.urandom(3 << 20) + b"odd tail"
    ch = channel(setup, "sha256sum")
    assert ch.transport.local_cipher == cipher
    out, code = run(ch, data)
    assert code == 0 and out.split()[0].decode() == hashlib.sha256(data).hexdigest()


def test_rekey_during_fast_sends(setup, monkeypatch):
    """Key re-exchange every 1 MiB while batches are in flight."""
    from pysync.transport import sshstream
    monkeypatch.setattr(sshstream._Packetizer, "REKEY_BYTES", 1 << 20)
    data = os.urandom(1 << 20) * 12
    ch = channel(setup, "sha256sum")
    mv = memoryview(data)
    for off in range(0, len(mv), 300_000):
        ch.write(mv[off:off + 300_000])
    out, code = run(ch)
    assert code == 0 and out.split()[0].decode() == hashlib.sha256(data).hexdigest()


def test_rsync_server_handshake(setup):
    """A stock rsync --server answers our version greeting."""
    ch = channel(setup, "rsync --server --sender -e.LsfxCIvu . /etc/hostname")
    ch.write(b"\x20\x00\x00\x00")           # protocol 32
    greeting = ch.read(4)
    assert int.from_bytes(greeting, "little") >= 30
    ch.abort()
    assert isinstance(ch.wait(), int)


# -- host keys -----------------------------------------------------------------

def test_unknown_host_refused(setup):
    setup.write_known_hosts("")
    marker = setup.base / "ran-unknown"
    with pytest.raises(PysyncError) as ei:
        channel(setup, f"touch {marker}")
    e = ei.value
    assert e.code == 255
    msg = str(e)
    assert "not a known host" in msg and "accept-new" in msg and "ssh-keyscan" in msg
    assert f"-p {setup.main.port} 127.0.0.1" in msg
    assert "\n" not in msg
    assert not marker.exists()
    assert (setup.ssh_dir / "known_hosts").read_text() == ""


def test_accept_new_adds_then_checks(setup):
    setup.write_known_hosts("")
    setup.write_config(setup.host_block("srv", setup.main, extra="StrictHostKeyChecking accept-new"))
    err = _Err()
    out, code = run(channel(setup, "echo ok", stderr=err))
    assert (out, code) == (b"ok\n", 0)
    assert "Permanently added" in err.text
    text = (setup.ssh_dir / "known_hosts").read_text()
    assert text.count("\n") == 1 and f"[127.0.0.1]:{setup.main.port}" in text
    out, code = run(channel(setup, "echo again"))
    assert (out, code) == (b"again\n", 0)
    assert (setup.ssh_dir / "known_hosts").read_text() == text


def test_changed_host_key_refused_with_file_and_line(setup, tmp_path):
    other = sshd_mod.keygen(tmp_path / "other", "ed25519")
    fake = sshd_mod.pubkey_text(other).rsplit(" ", 1)[0]
    kh_text = (f"# first line is a comment\nexample.org {fake}\n"
               f"[127.0.0.1]:{setup.main.port} {fake}\n")
    setup.write_known_hosts(kh_text)
    marker = setup.base / "ran-changed"
    with pytest.raises(PysyncError) as ei:
        channel(setup, f"touch {marker}")
    msg = str(ei.value)
    assert ei.value.code == 255
    assert "CHANGED" in msg and f"{setup.ssh_dir / 'known_hosts'}:3" in msg
    assert "ssh-keygen -R" in msg
    assert not marker.exists()
    assert (setup.ssh_dir / "known_hosts").read_text() == kh_text


def test_hashed_entry_and_rsa_only_known(setup):
    """A hashed [host]:port line that records only the RSA key: the server
    must be asked for its RSA key (not its preferred ed25519 one)."""
    from pysync.transport.knownhosts import hash_hostname
    line = setup.main.host_key_lines(["rsa"])[0]
    setup.write_known_hosts(f"{hash_hostname(f'[127.0.0.1]:{setup.main.port}')} {line}\n")
    ch = channel(setup, "echo hashed")
    assert ch.transport.get_remote_server_key().get_name() == "ssh-rsa"
    assert run(ch) == (b"hashed\n", 0)


def test_host_key_alias(setup):
    setup.write_known_hosts(setup.main.known_hosts_entry(name="myalias"))
    setup.write_config(setup.host_block("srv", setup.main, extra="HostKeyAlias myalias"))
    assert run(channel(setup, "echo alias")) == (b"alias\n", 0)


def test_ipv6_literal(setup):
    if not setup.main.ipv6:
        pytest.skip("no IPv6 loopback")
    setup.write_known_hosts(setup.main.known_hosts_entry(name=f"[::1]:{setup.main.port}"))
    setup.write_config(f"Host ::1\n  Port {setup.main.port}\n  User root\n"
                       f"  IdentityFile {setup.client_key}\n")
    assert run(channel(setup, "echo v6", host="::1")) == (b"v6\n", 0)


# -- authentication ------------------------------------------------------------

def test_unauthorized_key_fails_fast_without_terminal(setup, tmp_path):
    stranger = sshd_mod.keygen(tmp_path / "stranger", "ed25519")
    setup.write_config(setup.host_block("srv", setup.main, identity=stranger))
    t0 = time.monotonic()
    with pytest.raises(PysyncError) as ei:
        channel(setup, "true")
    assert time.monotonic() - t0 < 15
    assert ei.value.code == 255
    assert "Permission denied" in str(ei.value) and str(stranger) in str(ei.value)


def test_missing_identity_file_named(setup, tmp_path):
    setup.write_config(setup.host_block("srv", setup.main, identity=tmp_path / "nope"))
    with pytest.raises(PysyncError) as ei:
        channel(setup, "true")
    assert "no such identity" in str(ei.value)


def test_default_identity_without_config(setup):
    """No IdentityFile: ssh's default list (~/.ssh/id_ed25519 among them)."""
    setup.write_config(f"Host srv\n  HostName 127.0.0.1\n  Port {setup.main.port}\n  User root\n")
    assert run(channel(setup, "echo default")) == (b"default\n", 0)


@pytest.fixture
def agent(tmp_path):
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.05)
    yield sock
    proc.terminate()
    proc.wait(5)


def test_agent_auth(setup, agent, tmp_path, monkeypatch):
    key = sshd_mod.keygen(tmp_path / "agentkey", "ecdsa")
    setup.authorize(key)
    subprocess.run(["ssh-add", "-q", str(key)], env={**os.environ, "SSH_AUTH_SOCK": str(agent)},
                   check=True, stderr=subprocess.DEVNULL)
    os.unlink(key)                              # only the agent has it now
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent))
    setup.write_config(f"Host srv\n  HostName 127.0.0.1\n  Port {setup.main.port}\n  User root\n"
                       f"  IdentityFile {tmp_path / 'none'}\n")
    assert run(channel(setup, "echo agent")) == (b"agent\n", 0)
    # IdentitiesOnly: agent keys that are not listed are not offered
    setup.write_config(setup.host_block("srv", setup.main, identity=tmp_path / "none"))
    with pytest.raises(PysyncError):
        channel(setup, "true")
    # IdentityAgent points at the socket without the environment variable
    monkeypatch.delenv("SSH_AUTH_SOCK")
    setup.write_config(f"Host srv\n  HostName 127.0.0.1\n  Port {setup.main.port}\n  User root\n"
                       f"  IdentityFile {tmp_path / 'none'}\n  IdentityAgent {agent}\n")
    assert run(channel(setup, "echo agent2")) == (b"agent2\n", 0)


CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from pysync.transport.ssh import SshChannel
    from pysync.errors import PysyncError
    try:
        ch = SshChannel({host!r}, command="echo unlocked", home={home!r}, system_config=None)
    except PysyncError as e:
        print("ERROR", e.code, e, flush=True)
        sys.exit(e.code)
    ch.close_write()
    out = b""
    while True:
        c = ch.read(100)
        if not c:
            break
        out += c
    print("OUT", out.decode().strip(), ch.wait(), flush=True)
""")


def child_code(world, host="srv"):
    return CHILD.format(root=str(Path(__file__).resolve().parents[2]), home=str(world.home), host=host)


def _encrypted_world(setup, tmp_path):
    key = sshd_mod.keygen(tmp_path / "locked", "ed25519", passphrase="s3cret pass")
    setup.authorize(key)
    setup.write_config(setup.host_block("srv", setup.main, identity=key))
    return key


def test_encrypted_key_without_terminal_fails_fast(setup, tmp_path):
    key = _encrypted_world(setup, tmp_path)
    code = child_code(setup)
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL, start_new_session=True, env=setup.env())
    assert time.monotonic() - t0 < 20
    assert p.returncode == 255, p.stdout + p.stderr
    assert f"{key} is encrypted and there is no terminal" in p.stdout
    assert "Enter passphrase" not in p.stdout + p.stderr


def _run_in_pty(argv, env, answers, timeout=60):
    """Run argv on a new pseudo-terminal (its controlling terminal); answer
    each prompt that contains a key of ``answers``; return (status, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    out = b""
    pending = dict(answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
            for prompt in list(pending):
                if prompt.encode() in out:
                    os.write(fd, pending.pop(prompt).encode() + b"\n")
        else:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), out.decode(errors="replace")
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_encrypted_key_with_terminal_asks(setup, tmp_path):
    _encrypted_world(setup, tmp_path)
    code = child_code(setup)
    status, out = _run_in_pty([sys.executable, "-c", code], setup.env(),
                              {"Enter passphrase for key": "s3cret pass"})
    assert status == 0, out
    assert "OUT unlocked 0" in out
    assert "s3cret" not in out                  # no echo


# -- proxies -------------------------------------------------------------------

def test_proxyjump_through_second_sshd(setup):
    jump = getattr(setup, "jump", None) or setup.server("jump")
    setup.jump = jump
    setup.write_config(setup.host_block("bastion", jump) +
                       setup.host_block("inner", setup.main, extra="ProxyJump bastion"))
    setup.write_known_hosts(setup.main.known_hosts_entry() + jump.known_hosts_entry())
    ch = channel(setup, "echo via-jump; echo $SSH_CONNECTION", host="inner")
    assert len(ch._conn.transports) == 2
    out, code = run(ch)
    assert code == 0 and out.startswith(b"via-jump\n")


def test_proxyjump_two_hops_inline(setup):
    jump = getattr(setup, "jump", None) or setup.server("jump")
    setup.jump = jump
    setup.write_config(setup.host_block("bastion", jump) +
                       setup.host_block("inner", setup.main, extra="ProxyJump bastion,bastion"))
    setup.write_known_hosts(setup.main.known_hosts_entry() + jump.known_hosts_entry())
    ch = channel(setup, "echo two-hops", host="inner")
    assert len(ch._conn.transports) == 3
    assert run(ch) == (b"two-hops\n", 0)


def test_proxyjump_hop_host_key_checked(setup):
    jump = getattr(setup, "jump", None) or setup.server("jump")
    setup.jump = jump
    setup.write_config(setup.host_block("bastion", jump) +
                       setup.host_block("inner", setup.main, extra="ProxyJump bastion"))
    setup.write_known_hosts(setup.main.known_hosts_entry())
    with pytest.raises(PysyncError) as ei:
        channel(setup, "true", host="inner")
    assert f"[127.0.0.1]:{jump.port} is not a known host" in str(ei.value)


def test_proxycommand(setup):
    relay = (f"{sys.executable} -c \"import socket,sys,threading;"
             f"s=socket.create_connection(('%h',%p));"
             f"threading.Thread(target=lambda:[s.sendall(b) for b in iter(lambda:sys.stdin.buffer.raw.read(65536),b'')]"
             f"+[s.shutdown(1)],daemon=True).start();"
             f"[sys.stdout.buffer.write(b) or sys.stdout.flush() for b in iter(lambda:s.recv(65536),b'')]\"")
    setup.write_config(setup.host_block("srv", setup.main, extra=f"ProxyCommand {relay}"))
    ch = channel(setup, "echo via-proxy-command")
    assert len(ch._conn.proxies) == 1
    assert run(ch) == (b"via-proxy-command\n", 0)


# -- failures and timeouts -----------------------------------------------------

def test_command_not_found_explained(setup):
    err = _Err()
    ch = channel(setup, "/nonexistent/rsync --server -vlogDtpre.iLsfxCIvu . /tmp/x", stderr=err)
    out, code = run(ch)
    assert code == 127 and out == b""
    lines = err.text.splitlines()
    assert len(lines) == 1, err.text
    assert "'/nonexistent/rsync' was not found" in lines[0] and "--rsync-path" in lines[0]


def test_plain_rsync_not_found_hint(setup):
    err = _Err()
    ch = channel(setup, "PATH=/nowhere rsync --server . /tmp/x", stderr=err)
    out, code = run(ch)
    assert code == 127
    assert "install rsync there" in err.text and len(err.text.splitlines()) == 1


def test_io_timeout_on_silent_peer(setup):
    ch = channel(setup, "sleep 60", io_timeout=2)
    t0 = time.monotonic()
    with pytest.raises(PysyncError) as ei:
        ch.read(4)
    elapsed = time.monotonic() - t0
    assert ei.value.code == 30 and 1.5 < elapsed < 6
    assert ch.wait() == 255


def test_io_timeout_on_frozen_connection(setup):
    """The network dies under a transfer: writes stop moving, nothing
    arrives; exit 30 instead of hanging."""
    import threading
    relay = sshd_mod.Relay(("127.0.0.1", setup.main.port))
    try:
        setup.write_known_hosts(setup.main.known_hosts_entry(name="frozen"))
        setup.write_config(f"Host srv\n  HostName 127.0.0.1\n  Port {relay.port}\n  User root\n"
                           f"  IdentityFile {setup.client_key}\n  HostKeyAlias frozen\n")
        ch = channel(setup, "cat > /dev/null", io_timeout=2)
        ch.write(b"x" * 100_000)
        relay.freeze()
        errors = []

        def writer():
            try:
                for _ in range(10_000):
                    ch.write(b"y" * (1 << 20))
            except (PysyncError, OSError) as e:
                errors.append(e)
        t = threading.Thread(target=writer, daemon=True)
        t0 = time.monotonic()
        t.start()
        with pytest.raises(PysyncError) as ei:
            ch.read(10)
        assert ei.value.code == 30
        t.join(10)
        assert not t.is_alive() and errors
        assert time.monotonic() - t0 < 10
        ch.wait()
    finally:
        relay.close()


def test_server_alive_interval_detects_dead_server(setup):
    relay = sshd_mod.Relay(("127.0.0.1", setup.main.port))
    try:
        setup.write_known_hosts(setup.main.known_hosts_entry(name="frozen"))
        setup.write_config(f"Host srv\n  HostName 127.0.0.1\n  Port {relay.port}\n  User root\n"
                           f"  IdentityFile {setup.client_key}\n  HostKeyAlias frozen\n"
                           f"  ServerAliveInterval 1\n  ServerAliveCountMax 2\n")
        ch = channel(setup, "sleep 60")
        relay.freeze()
        t0 = time.monotonic()
        with pytest.raises(PysyncError) as ei:
            ch.read(10)
        assert ei.value.code == 255 and "not responding" in str(ei.value)
        assert time.monotonic() - t0 < 10
        ch.wait()
    finally:
        relay.close()


def test_connect_timeout_silent_server(setup):
    relay = sshd_mod.Relay(None)            # accepts, never sends a banner
    try:
        setup.write_config(f"Host srv\n  HostName 127.0.0.1\n  Port {relay.port}\n")
        t0 = time.monotonic()
        with pytest.raises(PysyncError) as ei:
            channel(setup, "true", connect_timeout=2)
        assert ei.value.code == 35 and time.monotonic() - t0 < 8
        # ConnectTimeout from the config does the same
        setup.write_config(f"Host srv\n  HostName 127.0.0.1\n  Port {relay.port}\n  ConnectTimeout 1\n")
        with pytest.raises(PysyncError) as ei:
            channel(setup, "true")
        assert ei.value.code == 35
    finally:
        relay.close()


def test_connection_refused(setup):
    port = sshd_mod.free_port()
    setup.write_config(f"Host srv\n  HostName 127.0.0.1\n  Port {port}\n")
    with pytest.raises(PysyncError) as ei:
        channel(setup, "true")
    assert ei.value.code == 255 and "Connection refused" in str(ei.value)


def test_bad_config_line(setup):
    setup.write_config("Host srv\n  Port nonsense\n")
    with pytest.raises(PysyncError) as ei:
        channel(setup, "true")
    assert ei.value.code == 255 and "config:2" in str(ei.value)


def test_abort_unblocks_reader(setup):
    import threading
    ch = channel(setup, "sleep 60")
    got = []
    t = threading.Thread(target=lambda: got.append(ch.read(10)))
    t.start()
    time.sleep(0.3)
    ch.abort()
    t.join(5)
    assert got == [b""]
    assert ch.wait() == 255


# -- password and keyboard-interactive (a paramiko server: the test sshd
#    cannot know a password for root) --------------------------------------

class _FakeServer:
    """An SSH server in this process that accepts a password or a
    keyboard-interactive answer and 'runs' a command by echoing it."""

    def __init__(self, key_path, methods):
        import socket
        import threading
        import paramiko
        self.paramiko = paramiko
        self.key = paramiko.Ed25519Key.from_private_key_file(str(key_path))
        self.methods = methods
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.transports = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        import threading
        paramiko = self.paramiko
        methods = self.methods

        class Iface(paramiko.ServerInterface):
            def get_allowed_auths(self, username):
                return methods

            def check_auth_password(self, username, password):
                return paramiko.AUTH_SUCCESSFUL if password == "hunter2" else paramiko.AUTH_FAILED

            def check_auth_interactive(self, username, submethods):
                return paramiko.InteractiveQuery("", "", ("One-time code: ", False))

            def check_auth_interactive_response(self, responses):
                return paramiko.AUTH_SUCCESSFUL if list(responses) == ["424242"] else paramiko.AUTH_FAILED

            def check_channel_request(self, kind, chanid):
                return paramiko.OPEN_SUCCEEDED if kind == "session" else \
                    paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

            def check_channel_exec_request(self, channel, command):
                def answer():
                    time.sleep(0.1)
                    channel.sendall(command.split(b" ", 1)[1] + b"\n")
                    channel.send_exit_status(0)
                    channel.close()
                threading.Thread(target=answer, daemon=True).start()
                return True

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            t = paramiko.Transport(conn)
            t.add_server_key(self.key)
            self.transports.append(t)
            try:
                t.start_server(server=Iface())
            except Exception:
                continue

    def close(self):
        self.sock.close()
        for t in self.transports:
            t.close()


@pytest.fixture
def fake_server(world, tmp_path):
    servers = []

    def make(methods):
        key = sshd_mod.keygen(tmp_path / f"fakehost{len(servers)}", "ed25519")
        srv = _FakeServer(key, methods)
        servers.append(srv)
        line = sshd_mod.pubkey_text(key).rsplit(" ", 1)[0]
        world.write_known_hosts(f"[127.0.0.1]:{srv.port} {line}\n")
        world.write_config(f"Host fake\n  HostName 127.0.0.1\n  Port {srv.port}\n  User someone\n"
                           f"  IdentityFile {tmp_path / 'no-such-key'}\n")
        return srv
    yield make
    for s in servers:
        s.close()


def test_password_on_terminal(world, fake_server):
    fake_server("password")
    status, out = _run_in_pty([sys.executable, "-c", child_code(world, "fake")], world.env(),
                              {"someone@127.0.0.1's password:": "hunter2"})
    assert status == 0, out
    assert "OUT unlocked 0" in out and "hunter2" not in out


def test_keyboard_interactive_on_terminal(world, fake_server):
    fake_server("keyboard-interactive")
    status, out = _run_in_pty([sys.executable, "-c", child_code(world, "fake")], world.env(),
                              {"One-time code:": "424242"})
    assert status == 0, out
    assert "OUT unlocked 0" in out and "424242" not in out


def test_password_without_terminal_fails_fast(world, fake_server):
    fake_server("password,keyboard-interactive")
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", child_code(world, "fake")], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL, start_new_session=True, env=world.env())
    assert time.monotonic() - t0 < 20
    assert p.returncode == 255, p.stdout + p.stderr
    assert "Permission denied" in p.stdout and "no terminal" in p.stdout


def test_batch_mode_never_prompts(world, fake_server):
    fake_server("password")
    cfg = (world.ssh_dir / "config").read_text() + "  BatchMode yes\n"
    world.write_config(cfg)
    status, out = _run_in_pty([sys.executable, "-c", child_code(world, "fake")], world.env(),
                              {"password:": "hunter2"}, timeout=30)
    assert status == 255, out
    assert "password:" not in out and "BatchMode" in out
