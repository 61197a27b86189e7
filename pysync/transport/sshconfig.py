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

The lexical rules are in sshwords.py, the reading of the files in
sshconfigfile.py; this module resolves one destination's settings
(``resolve`` -> ``HostConfig``) and parses ``ProxyJump`` hops.
"""

from __future__ import annotations

import os
import pwd
import re
import socket
from dataclasses import dataclass, field

from .sshconfigfile import MAX_INCLUDE_DEPTH, ConfigError, _Reader  # noqa: F401
from .sshwords import _expand_env, _local_user, _tilde, expand_tokens, match_pattern_list, split_words

__all__ = ["HostConfig", "ConfigError", "resolve", "parse_jump", "match_pattern_list", "split_words",
           "expand_tokens", "DEFAULT_IDENTITIES"]

DEFAULT_IDENTITIES = ("~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk", "~/.ssh/id_ed25519",
                      "~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss", "~/.ssh/id_dsa")


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
