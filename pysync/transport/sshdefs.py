"""Constants and the error constructor shared by the SSH transport modules."""

from __future__ import annotations

import logging

from ..errors import PysyncError


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


def _describe(cfg) -> str:
    """A host as ssh names it in messages: 'name' or 'name port N'."""
    return cfg.hostname if cfg.port == 22 else f"{cfg.hostname} port {cfg.port}"
