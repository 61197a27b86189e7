"""Connecting over SSH: ~/.ssh/config, ProxyJump and ProxyCommand, the
TCP connection, the SSH handshake with our preferred algorithms and the
strict host-key check against known_hosts.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import threading
import time

import paramiko

from . import knownhosts as kh
from .sshconfig import ConfigError, HostConfig, parse_jump, resolve
from .sshauth import Authenticator
from .sshdefs import (_ALGOS_FOR_TYPE, CIPHERS, CONNECT_TIMEOUT, DEFAULT_NEGOTIATION_TIMEOUT, MACS,
                      MAX_PACKET, WINDOW_SIZE, _describe, _fail)
from .sshprompt import _Prompter
from .sshstream import _Packetizer, _install_pipe

# ---------------------------------------------------------------------------
# proxies
# ---------------------------------------------------------------------------


class _ProxyCommand:
    """``ProxyCommand``: a shell command whose stdin/stdout is the
    connection, given to paramiko as one end of a socketpair."""

    def __init__(self, command: str):
        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(["/bin/sh", "-c", "exec " + command], stdin=theirs, stdout=theirs,
                                         close_fds=True, start_new_session=True)
        except OSError as e:
            ours.close()
            raise _fail(f"pysync: cannot run ProxyCommand '{command}': {e.strerror}") from None
        finally:
            theirs.close()
        self.sock = ours
        self.command = command

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            try:
                self.proc.terminate()
                self.proc.wait(2)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    self.proc.kill()
                    self.proc.wait()
                except OSError:
                    pass


# ---------------------------------------------------------------------------
# connecting
# ---------------------------------------------------------------------------

def _key_label(keytype: str) -> str:
    t = keytype.lower()
    for name, label in (("ed25519", "ED25519"), ("ecdsa", "ECDSA"), ("rsa", "RSA"), ("dss", "DSA")):
        if name in t:
            return label
    return keytype


class _Connector(Authenticator):
    """Builds authenticated paramiko transports, following ProxyJump and
    ProxyCommand, and remembers everything it opened for ``close()``."""

    def __init__(self, home, config_path, system_config, connect_timeout, stderr):
        self.home = home
        self.config_path = config_path
        self.system_config = system_config
        self.connect_timeout = connect_timeout
        self.stderr = stderr
        self.transports: list = []
        self.proxies: list = []
        self.agents: list = []
        self.prompter: _Prompter | None = None
        self.family = 0             # -4 / -6: socket.AF_INET / AF_INET6 only, as ssh -4 / -6

    def close(self) -> None:
        for t in reversed(self.transports):
            try:
                t.close()
            except Exception:
                pass
        for p in self.proxies:
            p.close()
        for a in self.agents:
            try:
                a.close()
            except Exception:
                pass
        if self.prompter is not None:
            self.prompter.close()

    def config(self, host, user=None, port=None) -> HostConfig:
        try:
            return resolve(host, user, port, home=self.home, config_path=self.config_path,
                           system_config=self.system_config)
        except ConfigError as e:
            raise _fail(f"pysync: bad ssh configuration: {e}") from None

    def _timeout(self, cfg: HostConfig):
        return self.connect_timeout if self.connect_timeout else cfg.connect_timeout

    def _warn(self, text: str) -> None:
        try:
            self.stderr.write(text + "\n")
            self.stderr.flush()
        except (OSError, ValueError):
            pass

    # -- the connection chain
    def connect(self, host, user=None, port=None, depth=0):
        """(authenticated transport, config) for ``host`` as typed.  The
        first ProxyJump hop is reached with its own settings (its own
        ProxyJump included); later hops and the target through the
        previous hop, as ``ssh -J`` does."""
        if depth > 8:
            raise _fail(f"pysync: ProxyJump chain through {host} is too long (a loop?)")
        cfg = self.config(host, user, port)
        timeout = self._timeout(cfg)
        if cfg.proxy_jump:
            hops = parse_jump(cfg.proxy_jump)
            u, h, p = hops[0]
            via, _ = self.connect(h, u, p, depth + 1)
            for u, h, p in hops[1:]:
                hop_cfg = self.config(h, u, p)
                sock = self._direct_tcpip(via, hop_cfg, timeout)
                via = self._ssh(sock, hop_cfg, timeout)
            sock = self._direct_tcpip(via, cfg, timeout)
        elif cfg.proxy_command:
            proxy = _ProxyCommand(cfg.proxy_command)
            self.proxies.append(proxy)
            sock = proxy.sock
        else:
            sock = self._tcp(cfg, timeout)
        return self._ssh(sock, cfg, timeout), cfg

    def _tcp(self, cfg: HostConfig, timeout):
        try:
            infos = socket.getaddrinfo(cfg.hostname, cfg.port, self.family, socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise _fail(f"pysync: ssh: Could not resolve hostname {cfg.hostname}: {e.strerror}") from None
        last = None
        deadline = None if timeout is None else time.monotonic() + timeout
        for family, kind, proto, _, addr in infos:
            s = socket.socket(family, kind, proto)
            try:
                left = None if deadline is None else max(0.01, deadline - time.monotonic())
                s.settimeout(left)
                s.connect(addr)
                s.settimeout(None)
                # we write whole batches; socket buffers stay autotuned
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return s
            except socket.timeout:
                s.close()
                raise _fail(f"pysync: ssh: connect to host {_describe(cfg)}: Connection timed out "
                            f"(after {timeout:g} s)", CONNECT_TIMEOUT) from None
            except OSError as e:
                s.close()
                last = e
        if last is not None and last.errno == errno.ETIMEDOUT:
            raise _fail(f"pysync: ssh: connect to host {_describe(cfg)}: Connection timed out",
                        CONNECT_TIMEOUT)
        why = last.strerror if last is not None and last.strerror else str(last)
        raise _fail(f"pysync: ssh: connect to host {_describe(cfg)}: {why}")

    def _direct_tcpip(self, via, cfg: HostConfig, timeout):
        try:
            ch = via.open_channel("direct-tcpip", (cfg.hostname, cfg.port), ("127.0.0.1", 0),
                                  window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET,
                                  timeout=timeout or DEFAULT_NEGOTIATION_TIMEOUT)
        except paramiko.ChannelException as e:
            raise _fail(f"pysync: ssh: jump host could not connect to {_describe(cfg)}: "
                        f"{e.text or 'refused'}") from None
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise _fail(f"pysync: ssh: jump host could not connect to {_describe(cfg)}: {e}") from None
        _install_pipe(ch)
        return ch

    def _ssh(self, sock, cfg: HostConfig, timeout):
        known = kh.KnownHosts(cfg.user_known_hosts_files + cfg.global_known_hosts_files)
        names = self._key_names(cfg)
        t = paramiko.Transport(sock, default_window_size=WINDOW_SIZE, default_max_packet_size=MAX_PACKET,
                               packetizer_class=_Packetizer)
        self.transports.append(t)
        t.banner_timeout = timeout or DEFAULT_NEGOTIATION_TIMEOUT
        t.handshake_timeout = timeout or DEFAULT_NEGOTIATION_TIMEOUT
        t.auth_timeout = timeout or DEFAULT_NEGOTIATION_TIMEOUT
        opts = t.get_security_options()
        opts.ciphers = tuple(c for c in CIPHERS if c in opts.ciphers) or opts.ciphers
        opts.digests = tuple(m for m in MACS if m in opts.digests) or opts.digests
        preferred = []
        for kt in known.known_types(names):
            for algo in _ALGOS_FOR_TYPE.get(kt, (kt,)):
                if algo in opts.key_types and algo not in preferred:
                    preferred.append(algo)
        if preferred:
            opts.key_types = tuple(preferred) + tuple(k for k in opts.key_types if k not in preferred)
        limit = timeout or DEFAULT_NEGOTIATION_TIMEOUT
        started = time.monotonic()
        done = threading.Event()
        try:
            t.start_client(event=done)
            while not done.wait(0.05):
                if not t.is_active():
                    break
                if time.monotonic() - started > limit:
                    raise socket.timeout()
            if not t.is_active():
                raise t.get_exception() or paramiko.SSHException("negotiation failed")
        except socket.timeout:
            raise _fail(f"pysync: ssh: connection to {_describe(cfg)} timed out during the SSH "
                        f"handshake (no answer within {limit:g} s)", CONNECT_TIMEOUT) from None
        except (paramiko.SSHException, EOFError, OSError) as e:
            elapsed = time.monotonic() - started
            msg = str(e) or type(e).__name__
            if "banner" in msg.lower() and elapsed >= limit * 0.9:
                raise _fail(f"pysync: ssh: connection to {_describe(cfg)} timed out waiting for the "
                            f"server's greeting (no answer within {limit:g} s)", CONNECT_TIMEOUT) from None
            raise _fail(f"pysync: ssh: connection to {_describe(cfg)} failed during the SSH handshake: "
                        f"{msg}") from None
        self._check_host_key(t, cfg, known, names)
        self._authenticate(t, cfg)
        return t

    # -- host keys
    @staticmethod
    def _key_names(cfg: HostConfig) -> list:
        if cfg.host_key_alias:
            return [cfg.host_key_alias]
        return [kh.host_key_name(cfg.hostname, cfg.port)]

    def _check_host_key(self, t, cfg: HostConfig, known, names) -> None:
        key = t.get_remote_server_key()
        keytype = key.get_name()
        family = "ssh-rsa" if keytype.startswith("rsa-sha2") else keytype
        blob = key.asbytes()
        fp = kh.fingerprint(blob)
        label = _key_label(keytype)
        name = names[0]
        verdict = known.check(names, family, blob)
        files = cfg.user_known_hosts_files
        user_file = files[0] if files else os.path.join(self.home, ".ssh", "known_hosts")
        if verdict.status == kh.OK:
            return
        if verdict.status == kh.REVOKED:
            raise _fail(f"pysync: host key verification failed: the {label} host key of {name} ({fp}) "
                        f"is marked as revoked in {verdict.entry.where}; refusing to connect.")
        if verdict.status == kh.CHANGED:
            old = kh.fingerprint(verdict.entry.blob)
            raise _fail(
                f"pysync: WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for {name}! Someone could be "
                f"intercepting the connection (or the host key was just replaced).\n"
                f"pysync: host key verification failed: {name} offered the {label} key {fp}, but "
                f"{verdict.entry.where} records {old}; refusing to connect, nothing was sent or written. "
                f"If the new key is expected, remove the old one with: "
                f"ssh-keygen -R '{name}' -f {verdict.entry.path}")
        # unknown host (or a key type we have no record of)
        mode = cfg.strict_host_key_checking
        if mode in ("accept-new", "no") or (mode == "ask" and cfg.strict_explicit and self._ask_accept(
                name, label, fp)):
            if files:
                try:
                    kh.add_host_key(files[0], name, family, blob, hashed=cfg.hash_known_hosts)
                    self._warn(f"Warning: Permanently added '{name}' ({label}) to the list of known hosts.")
                except OSError as e:
                    self._warn(f"pysync: warning: could not add the host key to {files[0]}: {e.strerror}")
            return
        other = ""
        if verdict.other_types:
            other = f" (known_hosts has other key types for it: {', '.join(verdict.other_types)})"
        port_opt = f"-p {cfg.port} " if cfg.port != 22 else ""
        raise _fail(
            f"pysync: host key verification failed: {name} is not a known host{other}; its {label} key is "
            f"{fp}. To trust it, check that fingerprint, then either run "
            f"'ssh-keyscan {port_opt}{cfg.hostname} >> {user_file}' or set "
            f"'StrictHostKeyChecking accept-new' for this host in {os.path.join(self.home, '.ssh', 'config')}.")

    def _ask_accept(self, name, label, fp) -> bool:
        p = self._get_prompter(False)
        if p.fd is None:
            return False
        p.say(f"The authenticity of host '{name}' can't be established.\n{label} key fingerprint is {fp}.\n")
        while True:
            ans = p.ask("Are you sure you want to continue connecting (yes/no/[fingerprint])? ", echo=True)
            if ans is None:
                return False
            ans = ans.strip()
            if ans.lower() == "yes" or ans == fp:
                return True
            if ans.lower() == "no":
                return False
