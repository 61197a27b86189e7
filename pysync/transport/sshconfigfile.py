"""Reading ssh_config files for one destination: ``Host`` and ``Match``
blocks, ``Include``, and the values of the options pysync uses (the first
value obtained wins; the list options accumulate), each checked and kept
with the file and line it came from.  sshconfig.py's ``resolve`` turns what
is read into a HostConfig.
"""

from __future__ import annotations

import glob
import os
import re
import socket
import subprocess

from .sshwords import _local_user, _tilde, expand_tokens, match_pattern_list, split_words

__all__ = ["ConfigError", "MAX_INCLUDE_DEPTH"]

MAX_INCLUDE_DEPTH = 16


class ConfigError(Exception):
    """A config file we cannot use (syntax, bad value); the message names
    the file and line."""



_YES = {"yes": True, "true": True, "no": False, "false": False}

# options whose first value wins (key -> kind)
_SINGLE = {
    "hostname": "str", "port": "port", "user": "str", "identitiesonly": "bool",
    "identityagent": "str", "stricthostkeychecking": "strict", "hashknownhosts": "bool",
    "hostkeyalias": "str", "connecttimeout": "time", "serveraliveinterval": "time",
    "serveralivecountmax": "int", "batchmode": "bool", "pubkeyauthentication": "bool",
    "passwordauthentication": "bool", "kbdinteractiveauthentication": "bool",
    "challengeresponseauthentication": "bool", "numberofpasswordprompts": "int",
    "preferredauthentications": "str", "compression": "bool",
}
_LISTS = {"identityfile", "userknownhostsfile", "globalknownhostsfile"}


def _time_value(v: str) -> float:
    """sshd_config time format: 30, 30s, 5m, 1h30m."""
    if v.isdigit():
        return float(v)
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+)([sSmMhHdDwW]?)", v):
        if m.start() != pos:
            raise ValueError
        unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2).lower()]
        total += int(m.group(1)) * unit
        pos = m.end()
    if pos != len(v) or not v:
        raise ValueError
    return total


class _Reader:
    def __init__(self, host: str, user: str | None, home: str, final: bool, run_exec: bool):
        self.host = host
        self.cmd_user = user
        self.home = home
        self.final = final
        self.run_exec = run_exec
        self.values: dict = {}
        self.lists: dict = {k: [] for k in _LISTS}
        self.uses_final = False
        self.sources: list = []

    # -- matching
    def _hostname(self) -> str:
        hn = self.values.get("hostname")
        return expand_tokens(hn[0], {"h": self.host}, "HostName") if hn else self.host

    def _user(self) -> str:
        if self.cmd_user:
            return self.cmd_user
        u = self.values.get("user")
        return u[0] if u else _local_user()

    def _match_line(self, words: list, where: str) -> bool:
        if not words:
            raise ConfigError(f"{where}: Match needs criteria")
        result = True
        i = 0
        crit_words = [w.lower() for w in words]
        if crit_words in (["all"], ["canonical", "all"], ["final", "all"]):
            if "final" in crit_words:
                self.uses_final = True
                return self.final
            return True
        while i < len(words):
            word = words[i]
            neg = word.startswith("!")
            crit = word[1:].lower() if neg else word.lower()
            i += 1
            if crit == "all":
                ok = True
            elif crit in ("canonical",):
                ok = False
            elif crit == "final":
                self.uses_final = True
                ok = self.final
            else:
                if i >= len(words):
                    raise ConfigError(f"{where}: Match {crit} needs an argument")
                arg = words[i]
                i += 1
                pats = arg.split(",")
                if crit == "host":
                    ok = match_pattern_list(self._hostname(), pats) is True
                elif crit == "originalhost":
                    ok = match_pattern_list(self.host, pats) is True
                elif crit == "user":
                    ok = match_pattern_list(self._user(), pats, lower=False) is True
                elif crit == "localuser":
                    ok = match_pattern_list(_local_user(), pats, lower=False) is True
                elif crit == "exec":
                    # not run once an earlier criterion has failed
                    ok = self._match_exec(arg) if result else False
                elif crit in ("localnetwork", "tagged", "address", "localaddress",
                              "localport", "rdomain", "version", "sessiontype", "command"):
                    ok = False
                else:
                    raise ConfigError(f"{where}: unsupported Match criterion '{crit}'")
            if neg:
                ok = not ok
            result = result and ok
        return result

    def _match_exec(self, command: str) -> bool:
        if not self.run_exec:
            return False
        tokens = self._tokens()
        try:
            cmd = expand_tokens(command, tokens, "Match exec")
        except ValueError:
            return False
        try:
            rc = subprocess.run(["/bin/sh", "-c", cmd], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, timeout=30).returncode
        except (OSError, subprocess.TimeoutExpired):
            return False
        return rc == 0

    def _tokens(self) -> dict:
        port = self.values.get("port", (22,))[0]
        local = socket.gethostname()
        return {"h": self._hostname(), "n": self.host, "p": port, "r": self._user(), "u": _local_user(),
                "d": self.home, "l": local.split(".")[0], "L": local.split(".")[0], "i": os.getuid(),
                "k": self.values.get("hostkeyalias", (self._hostname(),))[0]}

    # -- files
    def read_file(self, path: str, depth: int, active: bool, user_file: bool) -> bool:
        """Process one file; returns the 'active' state at its end."""
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return active
        except OSError as e:
            raise ConfigError(f"cannot read {path}: {e.strerror}") from None
        self.sources.append(path)
        for lineno, raw in enumerate(lines, 1):
            where = f"{path}:{lineno}"
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            m = re.match(r"([A-Za-z][A-Za-z0-9]*)\s*(?:=\s*|\s+|$)(.*)$", line)
            if not m:
                raise ConfigError(f"{where}: cannot parse '{line}'")
            key, rest = m.group(1).lower(), m.group(2)
            try:
                words = split_words(rest)
            except ValueError as e:
                raise ConfigError(f"{where}: {e}") from None
            if key == "host":
                if not words:
                    raise ConfigError(f"{where}: Host needs a pattern")
                active = match_pattern_list(self.host, words) is True
                continue
            if key == "match":
                active = self._match_line(words, where)
                continue
            if key == "include":
                if active:
                    self._include(words, depth, active, user_file, where)
                continue
            if not active:
                continue
            self._option(key, words, where, rest)
        return active

    def _include(self, words, depth, active, user_file, where):
        if depth >= MAX_INCLUDE_DEPTH:
            raise ConfigError(f"{where}: Include nested too deeply")
        base = os.path.join(self.home, ".ssh") if user_file else "/etc/ssh"
        for word in words:
            pat = _tilde(word, self.home)
            if not os.path.isabs(pat):
                pat = os.path.join(base, pat)
            for path in sorted(glob.glob(pat)):
                if os.path.isdir(path):
                    continue
                # an included file starts in the including block's state and
                # leaves it unchanged afterwards
                self.read_file(path, depth + 1, active, user_file)

    def _option(self, key: str, words: list, where: str, rest: str = "") -> None:
        if key in _LISTS:
            if not words:
                raise ConfigError(f"{where}: {key} needs a value")
            self.lists[key].append((words, where))
            return
        if key in ("proxyjump", "proxycommand"):
            if "proxyjump" in self.values or "proxycommand" in self.values:
                return
            if not words:
                raise ConfigError(f"{where}: {key} needs a value")
            if key == "proxycommand":
                # the rest of the line, verbatim: it is a shell command
                self.values[key] = ("none" if words == ["none"] else rest.strip(), where)
            else:
                self.values[key] = (",".join(words), where)
            return
        kind = _SINGLE.get(key)
        if kind is None or key in self.values:
            return
        if len(words) != 1 and key != "preferredauthentications":
            raise ConfigError(f"{where}: {key} takes one value")
        v = words[0]
        try:
            if kind == "bool":
                val = _YES[v.lower()]
            elif kind == "port":
                val = int(v)
                if not 0 < val < 65536:
                    raise ValueError
            elif kind == "int":
                val = int(v)
                if val < 0:
                    raise ValueError
            elif kind == "time":
                val = _time_value(v)
            elif kind == "strict":
                val = {"yes": "yes", "true": "yes", "no": "no", "false": "no", "off": "no",
                       "ask": "ask", "accept-new": "accept-new"}[v.lower()]
            else:
                val = v
        except (KeyError, ValueError):
            raise ConfigError(f"{where}: bad value '{v}' for {key}") from None
        self.values[key] = (val, where)
