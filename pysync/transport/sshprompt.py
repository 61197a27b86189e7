"""Terminal prompts for SSH authentication and host keys: the controlling
terminal or $SSH_ASKPASS, never stdin.
"""

from __future__ import annotations

import os
import subprocess

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


