"""SSH user authentication, as ssh does it: agent keys, IdentityFile keys
(with passphrases asked on the terminal), keyboard-interactive, password.
"""

from __future__ import annotations

import os
import socket

import paramiko

from . import knownhosts as kh
from .sshconfig import HostConfig
from .sshdefs import _describe, _fail
from .sshprompt import _Prompter


class Authenticator:
    """Authentication for ``sshconnect._Connector``: agent and key files,
    keyboard-interactive and password on a terminal, with the reasons
    collected for one clear error when everything fails."""

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
