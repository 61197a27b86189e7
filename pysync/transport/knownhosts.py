"""known_hosts files, read and appended the way ssh does (sshd(8),
"SSH_KNOWN_HOSTS FILE FORMAT"), without paramiko.

A line is ``[marker] hostnames keytype base64-key [comment]``:

- ``hostnames`` is a comma-separated list of patterns (``*``, ``?``,
  ``!negation``), or one hashed name ``|1|base64(salt)|base64(HMAC-SHA1(salt,
  name))``;
- a host on a port other than 22 is written ``[host]:port``;
- markers: ``@revoked`` (this key must never be accepted) and
  ``@cert-authority`` (a CA key; pysync does not use host certificates and
  skips those lines).

``check()`` answers OK / UNKNOWN / CHANGED / REVOKED with the file and line
that decided it, so the caller can refuse a changed key loudly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from .sshwords import match_pattern_list

__all__ = ["Entry", "Verdict", "KnownHosts", "host_key_name", "hash_hostname", "fingerprint",
           "add_host_key", "OK", "UNKNOWN", "CHANGED", "REVOKED"]

OK, UNKNOWN, CHANGED, REVOKED = "ok", "unknown", "changed", "revoked"


def host_key_name(host: str, port: int) -> str:
    """The name a host is recorded under: ``host`` or ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


def hash_hostname(name: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(20)
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def fingerprint(blob: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _hashed_match(field: str, name: str) -> bool:
    parts = field.split("|")
    if len(parts) != 4 or parts[1] != "1":
        return False
    try:
        salt = base64.b64decode(parts[2], validate=True)
        want = base64.b64decode(parts[3], validate=True)
    except (ValueError, base64.binascii.Error):
        return False
    return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), want)


@dataclass
class Entry:
    path: str
    lineno: int
    marker: str | None          # None, "@revoked", "@cert-authority"
    hosts: str                  # the hostnames field as written
    keytype: str
    blob: bytes

    def matches(self, name: str) -> bool:
        if self.hosts.startswith("|"):
            return _hashed_match(self.hosts, name)
        return match_pattern_list(name, self.hosts.split(",")) is True

    @property
    def where(self) -> str:
        return f"{self.path}:{self.lineno}"


@dataclass
class Verdict:
    status: str
    entry: Entry | None = None          # the line that decided it (OK, CHANGED, REVOKED)
    other_types: tuple = ()             # key types known for the host (UNKNOWN)


def _key_family(keytype: str) -> str:
    # rsa-sha2-* are signature algorithms over an ssh-rsa key
    return "ssh-rsa" if keytype in ("rsa-sha2-256", "rsa-sha2-512") else keytype


class KnownHosts:
    """The entries of several known_hosts files, in order."""

    def __init__(self, paths=()):
        self.paths = [p for p in paths]
        self.entries: list[Entry] = []
        self.problems: list[str] = []
        for p in self.paths:
            self.load(p)

    def load(self, path: str) -> None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        except OSError as e:
            self.problems.append(f"cannot read {path}: {e.strerror}")
            return
        for lineno, raw in enumerate(data.splitlines(), 1):
            line = raw.decode("utf-8", "replace").strip()
            if not line or line.startswith("#"):
                continue
            words = line.split()
            marker = None
            if words[0].startswith("@"):
                marker = words.pop(0)
                if marker not in ("@revoked", "@cert-authority"):
                    continue
            if len(words) < 3:
                continue
            try:
                blob = base64.b64decode(words[2], validate=True)
            except (ValueError, base64.binascii.Error):
                continue
            self.entries.append(Entry(path, lineno, marker, words[0], words[1], blob))

    def known_types(self, names) -> list:
        """Key types recorded for the host, in file order (for choosing the
        host key algorithm the server should use)."""
        out = []
        for e in self.entries:
            if e.marker is None and any(e.matches(n) for n in names) and e.keytype not in out:
                out.append(e.keytype)
        return out

    def check(self, names, keytype: str, blob: bytes) -> Verdict:
        """Is ``(keytype, blob)`` the recorded key of a host known under
        any of ``names``?"""
        keytype = _key_family(keytype)
        for e in self.entries:
            if e.marker == "@revoked" and e.blob == blob:
                return Verdict(REVOKED, e)
        changed = None
        types = []
        for e in self.entries:
            if e.marker is not None or not any(e.matches(n) for n in names):
                continue
            if e.keytype == keytype and e.blob == blob:
                return Verdict(OK, e)
            if e.keytype == keytype and changed is None:
                changed = e
            if e.keytype not in types:
                types.append(e.keytype)
        if changed is not None:
            return Verdict(CHANGED, changed)
        return Verdict(UNKNOWN, None, tuple(types))


def add_host_key(path: str, name: str, keytype: str, blob: bytes, hashed: bool = False) -> None:
    """Append a line for ``name`` to ``path`` (creating ~/.ssh 0700 and the
    file 0600 when missing)."""
    d = os.path.dirname(path)
    if d and not os.path.isdir(d):
        os.makedirs(d, mode=0o700, exist_ok=True)
    host = hash_hostname(name) if hashed else name
    line = f"{host} {keytype} {base64.b64encode(blob).decode()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        # a file without a final newline must not swallow our line
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    line = "\n" + line
        os.write(fd, line.encode())
    finally:
        os.close(fd)

