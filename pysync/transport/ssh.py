"""The built-in SSH transport: paramiko, with the user's own ssh setup.

``SshChannel(host, user, port, command)`` connects the way ``ssh host
command`` would -- ``~/.ssh/config`` (sshconfig.py), ``known_hosts``
checked strictly (knownhosts.py), ssh-agent and key files, password and
keyboard-interactive on a terminal, ``ProxyJump``/``ProxyCommand`` -- runs
``command`` on the remote side and is then the session's duplex byte stream
(``read``/``write``/``close_write``/``abort``/``wait``, as base.FdStream).

Failures are ``PysyncError``: 255 for ssh-level failures (as ssh itself
exits), 35 when connecting times out, 30 when the I/O timeout expires
(no byte moved either way for ``io_timeout`` seconds).  Host keys: an
unknown host is refused unless the config says ``StrictHostKeyChecking
accept-new``/``no`` (or ``ask`` and the user says yes on a terminal); a
changed or revoked key is always refused, before anything is sent.
Prompts (passphrases, passwords, keyboard-interactive) go to /dev/tty only;
without a terminal, or with ``BatchMode yes``, authentication fails at once
with the reasons.  ``wait()`` returns the remote exit status, 255 when
there is none (connection lost, remote killed by a signal); a remote
"command not found" (126/127) is replaced by one explaining line
(``explained``).

Speed: large windows (64 MiB in, 256 KiB packets in); AES-GCM first; the
data we send is cut into packets, each copied once into a reused buffer,
encrypted into another and written with one system call per 1 MiB batch
(``_Packetizer``); incoming data stays in the chunks paramiko decrypted
(``_ChunkPipe``) instead of paramiko's array buffer, which moves its whole
content on every partial read.  paramiko is imported only here.
"""

from __future__ import annotations

import collections
import errno
import os
import re
import shlex
import socket
import struct
import subprocess
import sys
import threading
import time

import logging

import paramiko
from paramiko.buffered_pipe import PipeTimeout
from paramiko.packet import Packetizer

from ..errors import PysyncError
from . import knownhosts as kh
from .sshconfig import ConfigError, HostConfig, parse_jump, resolve

__all__ = ["SshChannel", "SSH_FAILED", "CONNECT_TIMEOUT", "IO_TIMEOUT"]

SSH_FAILED = 255
CONNECT_TIMEOUT = 35      # RERR_CONTIMEOUT
IO_TIMEOUT = 30           # RERR_TIMEOUT

WINDOW_SIZE = 64 << 20
MAX_PACKET = 256 << 10     # what we accept; the server's own limit caps what we send
BATCH = 1 << 20            # channel data encrypted and sent per system call
DEFAULT_NEGOTIATION_TIMEOUT = 60.0

# Fast ciphers first (one pass through OpenSSL for AES-GCM).
CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr", "aes192-ctr")
MACS = ("hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256",
        "hmac-sha2-512", "hmac-sha1")
_ALGOS_FOR_TYPE = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256")}

# paramiko logs failures it also raises; we report them ourselves, so keep
# them off stderr (a NullHandler stops logging's last-resort printer).
logging.getLogger("paramiko").addHandler(logging.NullHandler())


def _fail(message: str, code: int = SSH_FAILED) -> PysyncError:
    return PysyncError(message, code)


# ---------------------------------------------------------------------------
# terminal prompts
# ---------------------------------------------------------------------------

class _Prompter:
    """Asks on the controlling terminal (or $SSH_ASKPASS when forced or
    when there is no terminal but a display), never on stdin."""

    def __init__(self, batch_mode: bool):
        self.batch_mode = batch_mode
        self.fd = None
        if not batch_mode:
            try:
                self.fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
            except OSError:
                self.fd = None
        askpass = os.environ.get("SSH_ASKPASS")
        require = os.environ.get("SSH_ASKPASS_REQUIRE", "")
        self.askpass = None
        if askpass and not batch_mode and require != "never":
            if require == "force" or (self.fd is None and os.environ.get("DISPLAY")):
                self.askpass = askpass

    @property
    def available(self) -> bool:
        return self.fd is not None or self.askpass is not None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def ask(self, prompt: str, echo: bool = False) -> str | None:
        if self.askpass:
            try:
                out = subprocess.run([self.askpass, prompt], stdout=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, timeout=600)
            except (OSError, subprocess.TimeoutExpired):
                return None
            return out.stdout.decode(errors="replace").rstrip("\n") if out.returncode == 0 else None
        if self.fd is None:
            return None
        import termios
        fd = self.fd
        old = None
        try:
            if not echo:
                try:
                    old = termios.tcgetattr(fd)
                    new = termios.tcgetattr(fd)
                    new[3] &= ~termios.ECHO
                    termios.tcsetattr(fd, termios.TCSAFLUSH, new)
                except termios.error:
                    old = None
            os.write(fd, prompt.encode())
            buf = bytearray()
            while True:
                c = os.read(fd, 1)
                if not c:
                    if not buf:
                        return None
                    break
                if c in (b"\n", b"\r"):
                    break
                buf += c
            return buf.decode(errors="replace")
        finally:
            if old is not None:
                termios.tcsetattr(fd, termios.TCSAFLUSH, old)
                os.write(fd, b"\n")

    def say(self, text: str) -> None:
        if self.fd is not None:
            os.write(self.fd, text.encode())


# ---------------------------------------------------------------------------
# fast data path
# ---------------------------------------------------------------------------

class _ChunkPipe:
    """Drop-in for paramiko's BufferedPipe: keeps the received chunks as
    they are, so a read copies each byte once (joining at most ``n``)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._chunks = collections.deque()
        self._size = 0
        self._closed = False
        self._event = None

    def set_event(self, event):
        with self._lock:
            self._event = event
            if self._closed or self._size:
                event.set()
            else:
                event.clear()

    def feed(self, data):
        if not data:
            return
        with self._lock:
            self._chunks.append(bytes(data))
            self._size += len(data)
            if self._event is not None:
                self._event.set()
            self._cv.notify_all()

    def read_ready(self):
        with self._lock:
            return self._size > 0

    def read(self, nbytes, timeout=None):
        with self._lock:
            if not self._size:
                if self._closed:
                    return b""
                if timeout == 0.0:
                    raise PipeTimeout()
                deadline = None if timeout is None else time.monotonic() + timeout
                while not self._size and not self._closed:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise PipeTimeout()
                    self._cv.wait(left)
                if not self._size:
                    return b""
            chunks = self._chunks
            first = chunks[0]
            if len(first) >= nbytes:
                if len(first) == nbytes:
                    chunks.popleft()
                    out = first
                else:
                    out = first[:nbytes]
                    chunks[0] = first[nbytes:]
            else:
                parts, got = [], 0
                while chunks and got + len(chunks[0]) <= nbytes:
                    c = chunks.popleft()
                    parts.append(c)
                    got += len(c)
                out = b"".join(parts)
            self._size -= len(out)
            if not self._size and self._event is not None and not self._closed:
                self._event.clear()
            return out

    def empty(self):
        with self._lock:
            out = b"".join(self._chunks)
            self._chunks.clear()
            self._size = 0
            if self._event is not None and not self._closed:
                self._event.clear()
            return out

    def close(self):
        with self._lock:
            self._closed = True
            self._cv.notify_all()
            if self._event is not None:
                self._event.set()

    def __len__(self):
        with self._lock:
            return self._size


def _install_pipe(ch, attr: str = "in_buffer") -> None:
    """Give channel ``ch`` a _ChunkPipe, keeping whatever already arrived
    in paramiko's pipe (a forwarded server may greet at once) and sending
    any later feed to the old pipe on to the new one."""
    old = getattr(ch, attr)
    new = _ChunkPipe()
    lock = getattr(old, "_lock", None)
    if lock is None or not hasattr(old, "_buffer_frombytes") or not hasattr(old, "empty"):
        if len(old) == 0:
            setattr(ch, attr, new)
        return
    with lock:
        buf = getattr(old, "_buffer", b"")
        leftover = buf.tobytes() if hasattr(buf, "tobytes") else bytes(buf)
        del buf[:]
        new.feed(leftover)
        if old._closed:
            new.close()
        old._buffer_frombytes = new.feed        # a feeder still holding the old pipe
        setattr(ch, attr, new)


class _DataBatch:
    """CHANNEL_DATA packets for ``view``, handed to ``_Packetizer``
    through paramiko's own send path (which waits out key re-exchange)."""

    __slots__ = ("chanid", "view", "packet_size")

    def __init__(self, chanid: int, view: memoryview, packet_size: int):
        self.chanid, self.view, self.packet_size = chanid, view, packet_size

    def messages(self):
        """The same packets as ordinary paramiko Messages (slow path)."""
        for off in range(0, len(self.view), self.packet_size):
            m = paramiko.Message()
            m.add_byte(bytes([94]))
            m.add_int(self.chanid)
            m.add_string(bytes(self.view[off:off + self.packet_size]))
            yield m


_P = "_Packetizer__"   # paramiko's packetizer keeps its state in private names


class _Packetizer(Packetizer):
    """paramiko's packetizer, plus ``_DataBatch``: many data packets built
    with one copy of the payload each, encrypted, and written with one
    ``sendall``.  Supports AES-GCM and CTR with (EtM) HMAC; anything else
    (or a paramiko whose internals differ) goes through the ordinary path,
    still with one write per batch."""

    _fast_ok = None

    def __init__(self, sock):
        super().__init__(sock)
        self._collect = None
        self._sock = sock
        self._pad = os.urandom(4096)
        self._padpos = 0
        self._outbuf = None
        self._plain = None

    def write_all(self, out):
        if self._collect is not None:
            self._collect.append(out)
        else:
            super().write_all(out)

    def send_message(self, data):
        if not isinstance(data, _DataBatch):
            return super().send_message(data)
        lock = getattr(self, _P + "write_lock")
        with lock:
            if self._can_go_fast():
                out = self._encode_fast(data)
            else:
                self._collect = []
                try:
                    for m in data.messages():
                        super().send_message(m)
                finally:
                    out, self._collect = self._collect, None
            self._send_all(out)

    def _send_all(self, parts) -> None:
        sock = self._sock
        if not isinstance(sock, socket.socket):
            super().write_all(b"".join(parts))
            return
        parts = [memoryview(p) for p in parts if len(p)]
        i = 0
        while i < len(parts):
            try:
                sent = sock.sendmsg(parts[i:i + 512])
            except (socket.timeout, BlockingIOError, InterruptedError):
                if self.__dict__.get(_P + "closed"):
                    raise EOFError() from None
                continue
            except OSError:
                raise EOFError() from None
            while sent:
                size = len(parts[i])
                if sent >= size:
                    sent -= size
                    i += 1
                else:
                    parts[i] = parts[i][sent:]
                    sent = 0

    def _can_go_fast(self) -> bool:
        g = self.__dict__
        if self._fast_ok is False:
            return False
        try:
            if g[_P + "compress_engine_out"] is not None or g[_P + "block_engine_out"] is None:
                return False
            if g[_P + "aead_out"]:
                return hasattr(g[_P + "block_engine_out"], "encrypt")
            return g[_P + "sdctr_out"] and g[_P + "mac_engine_out"] is not None
        except KeyError:
            type(self)._fast_ok = False
            return False

    def _padding(self, n: int) -> bytes:
        pos = self._padpos
        if pos + n > len(self._pad):
            self._pad, pos = os.urandom(4096), 0
        self._padpos = pos + n
        return self._pad[pos:pos + n]

    def _buffers(self, total: int, npackets: int, psize: int):
        """Reusable plaintext (one packet) and ciphertext (one batch) buffers:
        fresh allocations per packet cost more than the encryption."""
        need = total + npackets * 96 + 64
        if self._outbuf is None or len(self._outbuf) < need:
            self._outbuf = memoryview(bytearray(max(need, BATCH + BATCH // 8)))
        if self._plain is None or len(self._plain) < psize + 64:
            self._plain = memoryview(bytearray(psize + 64))
        return self._plain, self._outbuf

    def _encode_fast(self, batch: _DataBatch) -> list:
        import hmac as _hmac
        g = self.__dict__
        engine = g[_P + "block_engine_out"]
        bsize = g[_P + "block_size_out"]
        aead = g[_P + "aead_out"]
        etm = g[_P + "etm_out"]
        seq = g[_P + "sequence_number_out"]
        mac_engine, mac_key, mac_size = g[_P + "mac_engine_out"], g[_P + "mac_key_out"], g[_P + "mac_size_out"]
        iv = g[_P + "iv_out"]
        view, psize, chanid = batch.view, batch.packet_size, batch.chanid
        total = len(view)
        npackets = -(-total // psize)
        pv, ov = self._buffers(total, npackets, psize)
        into = getattr(engine, "encrypt_into", None) if aead else None
        addlen = 4 if (etm or aead) else 8
        pack, pack_into = struct.pack, struct.pack_into
        pos = 0
        for off in range(0, total, psize):
            chunk = view[off:off + psize]
            d = len(chunk)
            plen = 9 + d                                  # payload: byte 94, channel, string
            pad = 3 + bsize - ((plen + addlen) % bsize)
            n = 5 + plen + pad                            # the packet, length field included
            pack_into(">IBBII", pv, 0, n - 4, pad, 94, chanid, d)
            pv[14:14 + d] = chunk                         # the one copy of the data
            pv[14 + d:n] = self._padding(pad)
            if aead:
                ov[pos:pos + 4] = pv[:4]
                if into is not None:
                    into(iv, pv[4:n], pv[:4], ov[pos + 4:pos + n + 16])
                else:
                    ov[pos + 4:pos + n + 16] = engine.encrypt(iv, pv[4:n], pv[:4])
                pos += n + 16
                counter = (int.from_bytes(iv[4:], "big") + 1) & 0xFFFFFFFFFFFFFFFF
                iv = iv[:4] + counter.to_bytes(8, "big")
            else:
                mac = _hmac.new(mac_key, pack(">I", seq), mac_engine)
                if etm:
                    ov[pos:pos + 4] = pv[:4]
                    engine.update_into(pv[4:n], ov[pos + 4:])
                    mac.update(ov[pos:pos + n])
                else:
                    engine.update_into(pv[:n], ov[pos:])
                    mac.update(pv[:n])
                ov[pos + n:pos + n + mac_size] = mac.digest()[:mac_size]
                pos += n + mac_size
            seq = (seq + 1) & 0xFFFFFFFF
        g[_P + "sequence_number_out"] = seq
        if aead:
            g[_P + "iv_out"] = iv
        g[_P + "sent_bytes"] += pos
        g[_P + "sent_packets"] += npackets
        if ((g[_P + "sent_packets"] >= self.REKEY_PACKETS or g[_P + "sent_bytes"] >= self.REKEY_BYTES)
                and not g[_P + "need_rekey"]):
            self._trigger_rekey()
        g[_P + "keepalive_last"] = time.time()
        return [ov[:pos]]


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

def _describe(cfg: HostConfig) -> str:
    return cfg.hostname if cfg.port == 22 else f"{cfg.hostname} port {cfg.port}"


def _key_label(keytype: str) -> str:
    t = keytype.lower()
    for name, label in (("ed25519", "ED25519"), ("ecdsa", "ECDSA"), ("rsa", "RSA"), ("dss", "DSA")):
        if name in t:
            return label
    return keytype


class _Connector:
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
            infos = socket.getaddrinfo(cfg.hostname, cfg.port, 0, socket.SOCK_STREAM)
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

    def _get_prompter(self, batch_mode: bool) -> _Prompter:
        if self.prompter is None or self.prompter.batch_mode != batch_mode:
            if self.prompter is not None:
                self.prompter.close()
            self.prompter = _Prompter(batch_mode)
        return self.prompter

    # -- authentication
    def _agent_keys(self, cfg: HostConfig) -> list:
        sock_path = cfg.identity_agent if cfg.identity_agent else os.environ.get("SSH_AUTH_SOCK")
        if not sock_path or sock_path.lower() == "none":
            return []
        try:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(10)
            conn.connect(sock_path)
        except OSError:
            return []
        try:
            agent = paramiko.Agent.__new__(paramiko.Agent)
            paramiko.agent.AgentSSH.__init__(agent)
            agent._connect(conn)
            self.agents.append(agent)
            return list(agent.get_keys())
        except Exception:
            conn.close()
            return []

    def _authenticate(self, t, cfg: HostConfig) -> None:
        user = cfg.user
        who = f"{user}@{_describe(cfg)}"
        try:
            t.auth_none(user)
            if t.is_authenticated():
                return
            allowed = ["publickey", "password", "keyboard-interactive"]
        except paramiko.BadAuthenticationType as e:
            allowed = list(e.allowed_types)
        except paramiko.AuthenticationException:
            allowed = ["publickey", "password", "keyboard-interactive"]
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise _fail(f"pysync: ssh: connection to {_describe(cfg)} closed during authentication: {e}") \
                from None
        order = cfg.preferred_authentications or ["publickey", "keyboard-interactive", "password"]
        prompter = self._get_prompter(cfg.batch_mode)
        tried, notes = [], []
        for method in order:
            if method not in allowed or t.is_authenticated():
                continue
            if method == "publickey" and cfg.pubkey_authentication:
                allowed = self._auth_keys(t, cfg, prompter, tried, notes, allowed)
            elif method == "keyboard-interactive" and cfg.kbd_interactive_authentication:
                if not prompter.available:
                    notes.append("keyboard-interactive needs a terminal")
                    continue
                tried.append("keyboard-interactive")
                allowed = self._auth_interactive(t, user, prompter, cfg, allowed)
            elif method == "password" and cfg.password_authentication:
                if not prompter.available:
                    notes.append("password authentication needs a terminal")
                    continue
                tried.append("password")
                allowed = self._auth_password(t, user, prompter, cfg, allowed)
            if t.is_authenticated():
                return
        if t.is_authenticated():
            return
        what = "; ".join(notes)
        no_tty = "" if prompter.available else (
            " (BatchMode: no prompts)" if cfg.batch_mode else
            " -- no terminal to ask for a passphrase or password (running from a script or cron?); "
            "use a key without a passphrase, ssh-agent, or run from a terminal")
        tried_s = ", ".join(tried) if tried else "nothing"
        raise _fail(f"pysync: ssh: Permission denied for {who} (server allows: {','.join(allowed)}); "
                    f"tried: {tried_s}" + (f"; {what}" if what else "") + no_tty)

    def _try_key(self, t, user, key, allowed):
        """True when this key logged us in (maybe partially)."""
        try:
            rest = t.auth_publickey(user, key)
        except paramiko.BadAuthenticationType as e:
            allowed[:] = list(e.allowed_types)
            return False
        except paramiko.AuthenticationException:
            return False
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise _fail(f"pysync: ssh: connection closed during authentication: {e}") from None
        if rest:
            allowed[:] = list(rest)
        return t.is_authenticated() or bool(rest)

    def _auth_keys(self, t, cfg, prompter, tried, notes, allowed):
        allowed = list(allowed)
        user = cfg.user
        file_blobs = {}
        for path in cfg.identity_files:
            try:
                with open(path + ".pub") as f:
                    parts = f.read().split()
                import base64
                file_blobs[path] = base64.b64decode(parts[1])
            except (OSError, IndexError, ValueError):
                pass
        agent_keys = self._agent_keys(cfg)
        used_blobs = set()
        wanted = set(file_blobs.values())
        first = [k for k in agent_keys if k.asbytes() in wanted]
        rest = [] if cfg.identities_only else [k for k in agent_keys if k.asbytes() not in wanted]
        for key in first + rest:
            used_blobs.add(key.asbytes())
            tried.append(f"agent key {kh.fingerprint(key.asbytes())}")
            if self._try_key(t, user, key, allowed) and t.is_authenticated():
                return allowed
            if "publickey" not in allowed:
                return allowed
        for path in cfg.identity_files:
            if path in file_blobs and file_blobs[path] in used_blobs:
                continue
            if not os.path.exists(path):
                if cfg.identity_files_explicit:
                    notes.append(f"no such identity: {path}")
                continue
            key = self._load_key(path, prompter, notes)
            if key is None:
                continue
            if key.asbytes() in used_blobs:
                continue
            used_blobs.add(key.asbytes())
            tried.append(path)
            if self._try_key(t, user, key, allowed) and t.is_authenticated():
                return allowed
            if "publickey" not in allowed:
                return allowed
        return allowed

    def _load_key(self, path, prompter, notes):
        try:
            return paramiko.PKey.from_path(path)
        except (paramiko.PasswordRequiredException, TypeError):
            pass                            # encrypted (TypeError: cryptography's word for it)
        except (paramiko.SSHException, OSError, ValueError) as e:
            notes.append(f"cannot use {path}: {e}")
            return None
        if not prompter.available:
            notes.append(f"{path} is encrypted and there is no terminal to ask for its passphrase")
            return None
        for _ in range(3):
            pw = prompter.ask(f"Enter passphrase for key '{path}': ")
            if pw is None or pw == "":
                notes.append(f"no passphrase given for {path}")
                return None
            try:
                try:
                    return paramiko.PKey.from_path(path, pw.encode())
                except TypeError:
                    return paramiko.PKey.from_path(path, pw)
            except (paramiko.SSHException, ValueError, TypeError):
                prompter.say("Bad passphrase, try again.\n" if prompter.fd is not None else "")
        notes.append(f"wrong passphrase for {path}")
        return None

    def _auth_interactive(self, t, user, prompter, cfg, allowed):
        def handler(title, instructions, prompts):
            if title:
                prompter.say(title.rstrip() + "\n")
            if instructions:
                prompter.say(instructions.rstrip() + "\n")
            answers = []
            for text, echo in prompts:
                ans = prompter.ask(text, echo=echo)
                if ans is None:
                    raise paramiko.AuthenticationException("no answer")
                answers.append(ans)
            return answers
        return self._auth_rounds(lambda: t.auth_interactive(user, handler), t, prompter, cfg, allowed)

    def _auth_password(self, t, user, prompter, cfg, allowed):
        def attempt():
            pw = prompter.ask(f"{user}@{cfg.hostname}'s password: ")
            if pw is None:
                return None
            return t.auth_password(user, pw)
        return self._auth_rounds(attempt, t, prompter, cfg, allowed)

    def _auth_rounds(self, attempt, t, prompter, cfg, allowed):
        """Up to NumberOfPasswordPrompts tries of one prompting method.
        ``attempt()`` returns paramiko's remaining methods, or None when the
        user gave no answer.  Returns the methods still allowed."""
        for _ in range(max(1, cfg.number_of_password_prompts)):
            try:
                rest = attempt()
                if rest is None:
                    return allowed
                if rest:
                    return list(rest)
                if t.is_authenticated():
                    return allowed
            except paramiko.BadAuthenticationType as e:
                return list(e.allowed_types)
            except paramiko.AuthenticationException:
                prompter.say("Permission denied, please try again.\n")
            except (paramiko.SSHException, EOFError, OSError) as e:
                raise _fail(f"pysync: ssh: connection closed during authentication: {e}") from None
        return allowed


# ---------------------------------------------------------------------------
# the stream
# ---------------------------------------------------------------------------

_NOT_FOUND = re.compile(r"(command not found|: not found|No such file or directory|Permission denied)\s*$")


class SshChannel:
    """A remote command over SSH as the session's duplex stream."""

    def __init__(self, host: str, user: str | None = None, port: int | None = None, command: str = "", *,
                 connect_timeout: float | None = None, io_timeout: float | None = None,
                 home: str | None = None, stderr=None, config_path: str | None = None,
                 system_config: str | None = "/etc/ssh/ssh_config"):
        if not command:
            raise ValueError("SshChannel needs a remote command")
        self.host = host
        self.command = command
        self.io_timeout = io_timeout or None
        self.stderr = stderr if stderr is not None else sys.stderr
        home = home or os.environ.get("HOME") or os.path.expanduser("~")
        self._conn = _Connector(home, config_path, system_config, connect_timeout or None, self.stderr)
        self._closed_w = False
        self._aborted = False
        self._dead: PysyncError | None = None
        self._last_io = time.monotonic()
        self._held: list = []
        self.explained = None           # the one-line explanation of a remote failure, if any
        try:
            self.transport, self.cfg = self._conn.connect(host, user, port)
            self.channel = self._open(command)
        except PysyncError:
            self._conn.close()
            raise
        except KeyboardInterrupt:
            self._conn.close()
            raise
        except (paramiko.SSHException, EOFError, OSError) as e:
            self._conn.close()
            raise _fail(f"pysync: ssh: connection to {host} failed: {e}") from None
        self._step = None if self.io_timeout is None else max(0.05, min(1.0, self.io_timeout / 4))
        self.channel.settimeout(self._step)
        self._stderr_thread = threading.Thread(target=self._pump_stderr, name="ssh-stderr", daemon=True)
        self._stderr_thread.start()
        self._alive_thread = None
        if self.cfg.server_alive_interval:
            self._alive_thread = threading.Thread(target=self._keepalive, name="ssh-keepalive", daemon=True)
            self._alive_thread.start()

    def _open(self, command: str):
        t = self.transport
        try:
            ch = t.open_session(window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET,
                                timeout=self._conn._timeout(self.cfg) or DEFAULT_NEGOTIATION_TIMEOUT)
        except paramiko.ChannelException as e:
            raise _fail(f"pysync: ssh: the server refused a session channel: {e.text}") from None
        _install_pipe(ch, "in_buffer")
        _install_pipe(ch, "in_stderr_buffer")
        try:
            ch.exec_command(command)
        except paramiko.SSHException as e:
            raise _fail(f"pysync: ssh: the server refused to run the remote command: {e}") from None
        # send no more than the server's packet limit allows
        self._packet = max(1024, min(ch.out_max_packet_size - 64, 32768 * 8))
        return ch

    # -- stream interface
    def read(self, n: int) -> bytes:
        ch = self.channel
        while True:
            if self._dead is not None:
                raise self._dead
            try:
                data = ch.recv(n)
            except socket.timeout:
                self._check_idle()
                continue
            except (OSError, EOFError):
                data = b""
            if data:
                self._last_io = time.monotonic()
                return data
            if self._dead is not None:
                raise self._dead
            self._finish_stderr(2.0)
            return b""

    def write(self, data) -> None:
        ch = self.channel
        t = self.transport
        mv = memoryview(data).cast("B")
        while mv:
            if self._dead is not None:
                raise self._dead
            with ch.lock:
                if ch.closed or ch.eof_sent or self._aborted:
                    raise BrokenPipeError(errno.EPIPE, "the ssh channel is closed")
                if ch.out_window_size == 0:
                    ch.out_buffer_cv.wait(self._step)      # a window adjust or close wakes us
                n = min(len(mv), ch.out_window_size, BATCH)
                ch.out_window_size -= n
            if n == 0:
                if not t.is_active():
                    raise BrokenPipeError(errno.EPIPE, "the ssh connection is closed")
                self._check_idle()
                continue
            try:
                t._send_user_message(_DataBatch(ch.remote_chanid, mv[:n], self._packet))
            except (EOFError, OSError, paramiko.SSHException) as e:
                if self._dead is not None:
                    raise self._dead from None
                raise BrokenPipeError(errno.EPIPE, f"the ssh connection broke: {e}") from None
            if not t.is_active():
                raise self._dead or BrokenPipeError(errno.EPIPE, "the ssh connection is closed")
            self._last_io = time.monotonic()
            mv = mv[n:]

    def close_write(self) -> None:
        if self._closed_w:
            return
        self._closed_w = True
        try:
            self.channel.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException):
            pass

    def abort(self) -> None:
        """Stop now: close the channel and the connection, which wakes a
        reader or writer blocked on them."""
        self._aborted = True
        try:
            self.channel.close()
        except Exception:
            pass
        try:
            self.transport.close()
        except Exception:
            pass

    def wait(self) -> int:
        ch = self.channel
        limit = self.io_timeout
        try:
            if not ch.status_event.wait(limit):
                ch.close()
        finally:
            self._finish_stderr(2.0)
            self._close_all()
        status = ch.exit_status if ch.status_event.is_set() else -1
        if status < 0:
            return SSH_FAILED
        return status

    def close(self) -> None:
        self._close_all()

    # -- internals
    def _check_idle(self) -> None:
        if self._aborted:
            raise BrokenPipeError(errno.EPIPE, "the ssh channel was closed")
        if self.io_timeout is not None and time.monotonic() - self._last_io > self.io_timeout:
            self._dead = _fail(f"pysync: io timeout after {self.io_timeout:g} seconds with no data from "
                               f"{self.host} -- exiting", IO_TIMEOUT)
            self.abort()
            raise self._dead

    def _close_all(self) -> None:
        self._aborted = True
        try:
            self.channel.close()
        except Exception:
            pass
        self._conn.close()

    def _pump_stderr(self) -> None:
        ch = self.channel
        pending = b""
        while True:
            try:
                data = ch.recv_stderr(65536)
            except socket.timeout:
                continue
            except (OSError, EOFError):
                data = b""
            if not data:
                break
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._emit(line + b"\n")
        if pending:
            self._emit(pending)
        self._explain_failure()

    def _emit(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace")
        prog = self._program()
        if _NOT_FOUND.search(text.rstrip("\n")) and prog and prog in text:
            self._held.append(text)         # maybe a "command not found"; decided at exit
            return
        self._write_err(text)

    def _write_err(self, text: str) -> None:
        try:
            self.stderr.write(text)
            self.stderr.flush()
        except (OSError, ValueError):
            pass

    def _program(self) -> str:
        try:
            words = shlex.split(self.command)
        except ValueError:
            words = self.command.split()
        for w in words:
            if "=" in w.split("/")[0] and not w.startswith("/"):
                continue                    # VAR=value prefixes
            return w
        return ""

    def _explain_failure(self) -> None:
        ch = self.channel
        ch.status_event.wait(2.0)
        status = ch.exit_status if ch.status_event.is_set() else -1
        if self._held and status in (126, 127):
            prog = self._program()
            said = self._held[0].strip()
            if status == 127:
                hint = ("install rsync there, or give its location with --rsync-path=PATH"
                        if os.path.basename(prog) == "rsync" else
                        "check the --rsync-path value, or install rsync there and drop --rsync-path")
                self.explained = (f"pysync: the remote command '{prog}' was not found on {self.host} "
                                  f"(the remote shell said: {said}); {hint}")
            else:
                self.explained = (f"pysync: the remote command '{prog}' cannot be run on {self.host} "
                                  f"(the remote shell said: {said}); check the --rsync-path value")
            self._held = []
            self._write_err(self.explained + "\n")
        for text in self._held:
            self._write_err(text)
        self._held = []

    def _finish_stderr(self, timeout: float) -> None:
        th = getattr(self, "_stderr_thread", None)
        if th is not None and th is not threading.current_thread():
            th.join(timeout)

    def _keepalive(self) -> None:
        interval = self.cfg.server_alive_interval
        limit = max(1, self.cfg.server_alive_count_max)
        t = self.transport
        missed = 0
        probe: threading.Thread | None = None
        while t.is_active() and not self._aborted:
            time.sleep(interval)
            if probe is not None and probe.is_alive():
                missed += 1
                if missed >= limit:
                    self._dead = _fail(f"pysync: ssh: Timeout, server {self.host} not responding.")
                    self.abort()
                    try:
                        t.close()
                    except Exception:
                        pass
                    return
                continue
            missed = 0
            probe = threading.Thread(target=self._probe, daemon=True)
            probe.start()

    def _probe(self) -> None:
        try:
            self.transport.global_request("keepalive@openssh.com", wait=True)
        except Exception:
            pass
