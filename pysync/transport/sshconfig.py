"""The user's ``~/.ssh/config`` (and the system's ``/etc/ssh/ssh_config``),
read with OpenSSH's semantics, for the paramiko transport.

Written from the ssh_config(5) manual, not from OpenSSH's sources:

- ``Keyword value`` or ``Keyword=value``; keywords are case-insensitive;
  ``"quoted words"`` keep their spaces; a word starting with ``#`` ends the
  line.
- ``Host pattern...`` opens a block that applies when the host *as typed*
  matches one of the patterns and none of the ``!negated`` ones.  Patterns
  use ``*`` and ``?``.  ``Match`` supports ``all``, ``host``,
  ``originalhost``, ``user``, ``localuser``, ``exec``, ``final`` and ``!``.
- The first value obtained for an option wins; ``IdentityFile`` (and
  ``UserKnownHostsFile`` lists) accumulate.  ``ProxyJump`` and
  ``ProxyCommand`` exclude each other: whichever comes first wins.
- ``Include`` (globs; relative to ``~/.ssh`` in the user file, to
  ``/etc/ssh`` in the system one), also inside a ``Host``/``Match`` block.
- ``~`` and ``%`` tokens (``%h %p %r %u %n %d %l %L %i %%``) and
  ``${ENV}`` in the options that take them.

Options pysync has no use for are accepted and ignored, as ssh ignores
options it does not know when told to (``IgnoreUnknown``); a malformed
value of an option we use is an error naming the file and line.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import socket
import subprocess
from dataclasses import dataclass, field

__all__ = ["HostConfig", "ConfigError", "resolve", "parse_jump", "match_pattern_list", "split_words",
           "expand_tokens", "DEFAULT_IDENTITIES"]

DEFAULT_IDENTITIES = ("~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk", "~/.ssh/id_ed25519",
                      "~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss", "~/.ssh/id_dsa")
MAX_INCLUDE_DEPTH = 16


class ConfigError(Exception):
    """A config file we cannot use (syntax, bad value); the message names
    the file and line."""


@dataclass
class HostConfig:
    """What the config says about one destination (after defaults)."""

    host: str                      # as typed (the alias)
    hostname: str                  # where to connect
    port: int = 22
    user: str = ""
    identity_files: list = field(default_factory=list)   # expanded paths
    identity_files_explicit: bool = False                 # from the config, not defaults
    identities_only: bool = False
    identity_agent: str | None = None                     # None: $SSH_AUTH_SOCK; "none": off
    proxy_jump: str | None = None                         # None or "none": direct
    proxy_command: str | None = None                      # tokens expanded
    user_known_hosts_files: list = field(default_factory=list)
    global_known_hosts_files: list = field(default_factory=list)
    strict_host_key_checking: str = "ask"                 # yes / accept-new / no / ask
    strict_explicit: bool = False
    hash_known_hosts: bool = False
    host_key_alias: str | None = None
    connect_timeout: float | None = None
    server_alive_interval: float = 0
    server_alive_count_max: int = 3
    batch_mode: bool = False
    pubkey_authentication: bool = True
    password_authentication: bool = True
    kbd_interactive_authentication: bool = True
    number_of_password_prompts: int = 3
    preferred_authentications: list | None = None
    compression: bool = False                             # parsed, ignored
    sources: list = field(default_factory=list)           # config files read


# ---------------------------------------------------------------------------
# words, patterns, tokens
# ---------------------------------------------------------------------------

def split_words(line: str) -> list:
    """Split a config line into words: whitespace separates, double quotes
    group, a word beginning with '#' starts a comment."""
    words, cur, quoted, have = [], [], False, False
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if quoted:
            if c == '"':
                quoted = False
            else:
                cur.append(c)
        elif c == '"':
            quoted, have = True, True
        elif c in " \t\r\n":
            if have:
                words.append("".join(cur))
                cur, have = [], False
        elif c == "#" and not have:
            break
        else:
            cur.append(c)
            have = True
        i += 1
    if quoted:
        raise ValueError("unbalanced quotes")
    if have:
        words.append("".join(cur))
    return words


def _glob_match(name: str, pattern: str) -> bool:
    # fnmatchcase gives '[' a meaning that ssh patterns do not have.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, re.S) is not None


def match_pattern_list(name: str, patterns, lower: bool = True) -> bool | None:
    """True if ``name`` matches a positive pattern and no negated one;
    False if a negated pattern matches; None if nothing matched."""
    if lower:
        name = name.lower()
    found = None
    for pat in patterns:
        if lower:
            pat = pat.lower()
        neg = pat.startswith("!")
        if neg:
            if _glob_match(name, pat[1:]):
                return False
        elif _glob_match(name, pat):
            found = True
    return found


def _local_user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return os.environ.get("USER") or str(os.getuid())


def expand_tokens(text: str, tokens: dict, what: str = "") -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "%" and i + 1 < len(text):
            k = text[i + 1]
            if k == "%":
                out.append("%")
            elif k in tokens:
                out.append(str(tokens[k]))
            else:
                raise ValueError(f"unknown token %{k} in {what or 'value'}")
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _expand_env(text: str) -> str:
    def sub(m):
        name = m.group(1)
        if name not in os.environ:
            raise ValueError(f"environment variable ${{{name}}} is not set")
        return os.environ[name]
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, text)


def _tilde(path: str, home: str) -> str:
    if path == "~" or path.startswith("~/"):
        return home + path[1:]
    if path.startswith("~"):
        return os.path.expanduser(path)
    return path


# ---------------------------------------------------------------------------
# the reader
# ---------------------------------------------------------------------------

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


def resolve(host: str, user: str | None = None, port: int | None = None, *, home: str | None = None,
            config_path: str | None = None, system_config: str | None = "/etc/ssh/ssh_config",
            run_exec: bool = True) -> HostConfig:
    """The settings for ``host`` (as typed): the user's config, then the
    system config, then ssh's defaults.  ``user`` and ``port`` given here
    (``user@host``, a command-line option) beat the files."""
    home = home or os.environ.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir
    home = home.rstrip("/") or "/"
    user_cfg = config_path if config_path is not None else os.path.join(home, ".ssh", "config")

    def one_pass(final: bool) -> _Reader:
        r = _Reader(host, user, home, final, run_exec)
        if port is not None:
            r.values["port"] = (int(port), "command line")
        if user_cfg:
            r.read_file(user_cfg, 0, True, True)
        if system_config:
            r.read_file(system_config, 0, True, False)
        return r

    r = one_pass(False)
    if r.uses_final:
        r = one_pass(True)
    v = {k: val for k, (val, _) in r.values.items()}
    cfg = HostConfig(host=host, hostname=host, sources=r.sources)
    try:
        cfg.hostname = expand_tokens(v["hostname"], {"h": host}, "HostName") if "hostname" in v else host
    except ValueError as e:
        raise ConfigError(f"{r.values['hostname'][1]}: {e}") from None
    cfg.port = v.get("port", 22)
    cfg.user = user or v.get("user") or _local_user()
    cfg.identities_only = v.get("identitiesonly", False)
    cfg.identity_agent = v.get("identityagent")
    cfg.strict_host_key_checking = v.get("stricthostkeychecking", "ask")
    cfg.strict_explicit = "stricthostkeychecking" in v
    cfg.hash_known_hosts = v.get("hashknownhosts", False)
    cfg.host_key_alias = v.get("hostkeyalias")
    cfg.connect_timeout = v.get("connecttimeout") or None
    cfg.server_alive_interval = v.get("serveraliveinterval", 0)
    cfg.server_alive_count_max = v.get("serveralivecountmax", 3)
    cfg.batch_mode = v.get("batchmode", False)
    cfg.pubkey_authentication = v.get("pubkeyauthentication", True)
    cfg.password_authentication = v.get("passwordauthentication", True)
    cfg.kbd_interactive_authentication = v.get(
        "kbdinteractiveauthentication", v.get("challengeresponseauthentication", True))
    cfg.number_of_password_prompts = v.get("numberofpasswordprompts", 3)
    if "preferredauthentications" in v:
        cfg.preferred_authentications = [a.strip().lower() for a in v["preferredauthentications"].split(",")]
    cfg.compression = v.get("compression", False)

    tokens = {"h": cfg.hostname, "n": host, "p": cfg.port, "r": cfg.user, "u": _local_user(),
              "d": home, "i": os.getuid(), "l": socket.gethostname().split(".")[0],
              "L": socket.gethostname().split(".")[0], "k": cfg.host_key_alias or cfg.hostname}

    def path_value(word: str, where: str, what: str) -> str:
        try:
            return _tilde(expand_tokens(_expand_env(word), tokens, what), home)
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from None

    ids = []
    for words, where in r.lists["identityfile"]:
        for w in words:
            ids.append(path_value(w, where, "IdentityFile"))
    cfg.identity_files_explicit = bool(ids)
    if not ids:
        ids = [_tilde(p, home) for p in DEFAULT_IDENTITIES]
    seen = set()
    cfg.identity_files = [p for p in ids if not (p in seen or seen.add(p))]

    def first_list(key, default):
        entries = r.lists[key]
        if not entries:
            return default
        words, where = entries[0]          # first obtained value wins
        return [path_value(w, where, key) for w in words if w.lower() != "none"]
    cfg.user_known_hosts_files = first_list("userknownhostsfile",
                                            [os.path.join(home, ".ssh", "known_hosts"),
                                             os.path.join(home, ".ssh", "known_hosts2")])
    cfg.global_known_hosts_files = first_list("globalknownhostsfile",
                                              ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"])
    if "proxyjump" in v and v["proxyjump"].lower() != "none":
        cfg.proxy_jump = v["proxyjump"]
    if "proxycommand" in v and v["proxycommand"].lower() != "none":
        try:
            cfg.proxy_command = expand_tokens(v["proxycommand"], tokens, "ProxyCommand")
        except ValueError as e:
            raise ConfigError(f"{r.values['proxycommand'][1]}: {e}") from None
    if cfg.identity_agent and cfg.identity_agent.lower() != "none":
        if cfg.identity_agent == "SSH_AUTH_SOCK":
            cfg.identity_agent = None
        elif cfg.identity_agent.startswith("$"):
            cfg.identity_agent = os.environ.get(cfg.identity_agent[1:].strip("{}"), "none")
        else:
            cfg.identity_agent = path_value(cfg.identity_agent, r.values["identityagent"][1],
                                            "IdentityAgent")
    return cfg


def parse_jump(spec: str):
    """ProxyJump hops: "[user@]host[:port]" or "ssh://[user@]host[:port]",
    comma-separated; returns [(user, host, port)]."""
    hops = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if part.startswith("ssh://"):
            part = part[6:].rstrip("/")
        user, _, hostport = part.rpartition("@")
        m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", hostport)
        if m:
            host, port = m.group(1), m.group(2)
        elif hostport.count(":") == 1:
            host, port = hostport.split(":")
        else:
            host, port = hostport, None
        if not host or (port is not None and not port.isdigit()):
            raise ConfigError(f"bad ProxyJump hop '{part}'")
        hops.append((user or None, host, int(port) if port else None))
    return hops

