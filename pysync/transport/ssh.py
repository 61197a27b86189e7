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
(``sshstream._Packetizer``); incoming data stays in the chunks paramiko
decrypted (``sshstream._ChunkPipe``) instead of paramiko's array buffer,
which moves its whole content on every partial read.  paramiko is imported
only by this module and its parts: sshconnect.py (config, proxies,
handshake, host keys), sshauth.py, sshprompt.py, sshstream.py, sshdefs.py.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import socket
import sys
import threading
import time

import paramiko

from ..errors import PysyncError

from .sshconnect import _Connector
from .sshdefs import (BATCH, DEFAULT_NEGOTIATION_TIMEOUT, IO_TIMEOUT, MAX_PACKET, SSH_FAILED,
                      WINDOW_SIZE, _fail)
from .sshstream import _DataBatch, _install_pipe


_NOT_FOUND = re.compile(r"(command not found|: not found|No such file or directory|Permission denied)\s*$")


class SshChannel:
    """A remote command over SSH as the session's duplex stream."""

    def __init__(self, host: str, user: str | None = None, port: int | None = None, command: str = "", *,
                 connect_timeout: float | None = None, io_timeout: float | None = None,
                 home: str | None = None, stderr=None, config_path: str | None = None,
                 system_config: str | None = "/etc/ssh/ssh_config", family: int = 0):
        if not command:
            raise ValueError("SshChannel needs a remote command")
        self.host = host
        self.command = command
        self.io_timeout = io_timeout or None
        self.stderr = stderr if stderr is not None else sys.stderr
        home = home or os.environ.get("HOME") or os.path.expanduser("~")
        self._conn = _Connector(home, config_path, system_config, connect_timeout or None, self.stderr)
        if family:                      # -4 / -6
            import socket
            self._conn.family = socket.AF_INET if family == 4 else socket.AF_INET6
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

