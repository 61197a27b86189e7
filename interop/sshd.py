"""A real OpenSSH server on 127.0.0.1 for tests and benchmarks.

``SshWorld(base)`` builds a throw-away world under ``base``:

- one or more ``Sshd`` instances (``/usr/sbin/sshd -D -e -f <generated
  config>``) on free ports, each with freshly generated host keys (ed25519,
  ecdsa, rsa) and one shared ``authorized_keys`` file for root;
- a client ``$HOME`` (``world.home``) with ``.ssh/id_ed25519`` (no
  passphrase, authorized), ``.ssh/config`` and ``.ssh/known_hosts`` that the
  test writes with the helpers below.

Nothing here touches the real ``~/.ssh`` or ``/etc/ssh``.  sshd needs
``/run/sshd`` (its privilege-separation directory); it is created if
missing.  ``skip_reason()`` says why the world cannot be built (no sshd, not
root), so tests can skip with a clear message.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["SSHD", "skip_reason", "keygen", "free_port", "Sshd", "SshWorld"]

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
SSH_KEYGEN = shutil.which("ssh-keygen")


def skip_reason() -> str | None:
    if SSHD is None:
        return "OpenSSH server (sshd) is not installed (CI installs openssh-server)"
    if SSH_KEYGEN is None:
        return "ssh-keygen is not installed"
    if os.geteuid() != 0:
        return "starting sshd and logging in as root needs root"
    try:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    except OSError as e:
        return f"cannot create /run/sshd: {e}"
    return None


def keygen(path: Path, kind: str = "ed25519", passphrase: str = "", comment: str = "test") -> Path:
    """Generate a key pair at ``path`` / ``path.pub`` (OpenSSH format)."""
    path = Path(path)
    for p in (path, path.with_name(path.name + ".pub")):
        if p.exists():
            p.unlink()
    argv = [SSH_KEYGEN, "-q", "-t", kind, "-N", passphrase, "-C", comment, "-f", str(path)]
    if kind == "rsa":
        argv[4:4] = ["-b", "2048"]
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def pubkey_text(path: Path) -> str:
    return Path(str(path) + ".pub").read_text().split("\n")[0].strip()


class Sshd:
    """One sshd on 127.0.0.1:<port>, started by ``start()``."""

    def __init__(self, workdir: Path, authorized_keys: Path, extra: str = "",
                 host_key_types=("ed25519", "ecdsa", "rsa"), ipv6: bool | None = None):
        self.ipv6 = ipv6_loopback() if ipv6 is None else ipv6
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.authorized_keys = Path(authorized_keys)
        self.extra = extra
        self.host_keys = {}
        for kind in host_key_types:
            self.host_keys[kind] = keygen(self.dir / f"ssh_host_{kind}_key", kind, comment="host")
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log_path = self.dir / "sshd.log"

    # -- host keys, as a client's known_hosts would list them
    def host_key_lines(self, kinds=None) -> list[str]:
        kinds = kinds or list(self.host_keys)
        return [pubkey_text(self.host_keys[k]).rsplit(" ", 1)[0] for k in kinds]

    def known_hosts_entry(self, kinds=None, name: str | None = None) -> str:
        name = name or (f"[127.0.0.1]:{self.port}" if self.port != 22 else "127.0.0.1")
        return "".join(f"{name} {line}\n" for line in self.host_key_lines(kinds))

    def regenerate_host_keys(self) -> None:
        """New host keys (for 'the key changed' tests); restart to apply."""
        for kind in list(self.host_keys):
            self.host_keys[kind] = keygen(self.dir / f"ssh_host_{kind}_key", kind, comment="host")

    def config_text(self) -> str:
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            *(["ListenAddress [::1]"] if self.ipv6 else []),
            *(f"HostKey {p}" for p in self.host_keys.values()),
            "PidFile none",
            "UsePAM no",
            "PermitRootLogin yes",
            "StrictModes no",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "AllowTcpForwarding yes",
            "X11Forwarding no",
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "MaxAuthTries 20",
            "MaxStartups 100",
            "LogLevel VERBOSE",
            "AcceptEnv LANG LC_*",
        ]
        return "\n".join(lines) + "\n" + self.extra + "\n"

    def start(self, timeout: float = 15.0) -> int:
        if self.port == 0:
            self.port = free_port()
        cfg = self.dir / "sshd_config"
        cfg.write_text(self.config_text())
        check = subprocess.run([SSHD, "-t", "-f", str(cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"sshd rejects its config: {check.stderr.strip()}")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.proc.returncode}: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(8).startswith(b"SSH-"):
                        return self.port
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not come up on port {self.port}: {self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


class Relay:
    """A TCP relay on 127.0.0.1 to ``target`` that a test can freeze: the
    connections stay open but no byte moves any more -- a peer that died
    without closing (cable pulled, host frozen).  With ``target=None`` it
    accepts and never says anything (a server that hangs before its banner)."""

    def __init__(self, target: tuple | None):
        import threading
        self.target = target
        self.frozen = threading.Event()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.socks: list = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading
        while not self._closed:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            self.socks.append(c)
            if self.target is None:
                continue
            try:
                u = socket.create_connection(self.target)
            except OSError:
                c.close()
                continue
            self.socks.append(u)
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if self.frozen.is_set():
                return          # swallow; keep both sockets open
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            try:
                dst.sendall(data)
            except OSError:
                return

    def freeze(self) -> None:
        self.frozen.set()

    def close(self) -> None:
        self._closed = True
        for s in [self.listener] + self.socks:
            try:
                s.close()
            except OSError:
                pass


class SshWorld:
    """Servers plus a client $HOME, all under ``base``."""

    def __init__(self, base: Path):
        self.base = Path(base)
        self.home = self.base / "home"
        self.ssh_dir = self.home / ".ssh"
        self.ssh_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.ssh_dir, 0o700)
        self.authorized_keys = self.base / "authorized_keys"
        self.authorized_keys.write_text("")
        self.client_key = keygen(self.ssh_dir / "id_ed25519", "ed25519", comment="client")
        self.authorize(self.client_key)
        self.servers: list[Sshd] = []

    def authorize(self, key_path: Path) -> None:
        with open(self.authorized_keys, "a") as f:
            f.write(pubkey_text(key_path) + "\n")

    def server(self, name: str = "sshd", extra: str = "", **kw) -> Sshd:
        srv = Sshd(self.base / name, self.authorized_keys, extra, **kw)
        srv.start()
        self.servers.append(srv)
        return srv

    def write_config(self, text: str) -> Path:
        path = self.ssh_dir / "config"
        path.write_text(text)
        return path

    def write_known_hosts(self, text: str) -> Path:
        path = self.ssh_dir / "known_hosts"
        path.write_text(text)
        return path

    def host_block(self, alias: str, srv: Sshd, identity: Path | None = None, extra: str = "") -> str:
        """A ``Host`` block that reaches ``srv`` as root with the client key."""
        identity = identity or self.client_key
        body = [f"Host {alias}", "    HostName 127.0.0.1", f"    Port {srv.port}", "    User root",
                f"    IdentityFile {identity}", "    IdentitiesOnly yes"]
        body += ["    " + line.strip() for line in extra.strip().splitlines() if line.strip()]
        return "\n".join(body) + "\n"

    def env(self, **extra) -> dict:
        """Environment for a client child: this $HOME, no agent unless given."""
        env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID")}
        env["HOME"] = str(self.home)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def close(self) -> None:
        for srv in self.servers:
            srv.stop()
        self.servers.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------
# Driving the pysync client over the paramiko transport
# ---------------------------------------------------------------------------

HERE = Path(__file__).resolve().parent
CLIENT_FILES = (HERE.parent / "pysync" / "cli.py", HERE.parent / "pysync" / "client.py")


def cli_has_ssh() -> bool:
    """True once the CLI picks the paramiko transport for host:path itself."""
    for path in CLIENT_FILES:
        try:
            if "SshChannel" in path.read_text():
                return True
        except OSError:
            pass
    return False


def client_argv(args: list) -> list:
    """The command line that runs ``pysync ARGS`` over the paramiko transport:
    the real CLI when it is wired to ssh.py, else this module's ``--drive``
    shim (the CLI with its ``-e`` transport swapped for SshChannel)."""
    if cli_has_ssh():
        return [sys.executable, "-m", "pysync", *args]
    return [sys.executable, str(Path(__file__).resolve()), "--drive", *args]


def drive(argv: list) -> int:
    """Run pysync's CLI with SshChannel standing in for RshChild, as cli.py
    will once it is wired: ``--contimeout=N`` and ``--timeout=N`` apply."""
    sys.path.insert(0, str(HERE.parent))
    from pysync import cli
    from pysync.options import parse_args
    from pysync.transport import rsh, ssh

    contimeout = None
    rest = []
    for a in argv:
        if a.startswith("--contimeout="):
            contimeout = float(a.split("=", 1)[1])
        else:
            rest.append(a)
    try:
        io_timeout = parse_args(rest).timeout or None
    except Exception:
        io_timeout = None

    def make(rsh_cmd, user, host, command):
        return ssh.SshChannel(host, user, None, " ".join(command), connect_timeout=contimeout,
                              io_timeout=io_timeout)
    rsh.RshChild = make
    return cli.main(rest)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--drive":
    sys.exit(drive(sys.argv[2:]))

if __name__ == "__main__":  # manual use: python interop/sshd.py /tmp/world
    reason = skip_reason()
    if reason:
        sys.exit(reason)
    world = SshWorld(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/sshworld"))
    srv = world.server()
    world.write_config(world.host_block("testhost", srv))
    world.write_known_hosts(srv.known_hosts_entry())
    print(f"sshd on 127.0.0.1:{srv.port}; HOME={world.home}; try: HOME={world.home} "
          f"ssh -F {world.ssh_dir / 'config'} -o UserKnownHostsFile={world.ssh_dir / 'known_hosts'} "
          f"testhost true", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        srv.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        world.close()
