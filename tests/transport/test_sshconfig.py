"""~/.ssh/config and known_hosts, as OpenSSH reads them (no network)."""

from __future__ import annotations

import base64
import os

import pytest

from pysync.transport import knownhosts as kh
from pysync.transport.sshconfig import (ConfigError, match_pattern_list, parse_jump, resolve,
                                        split_words)


@pytest.fixture
def home(tmp_path):
    (tmp_path / ".ssh").mkdir()
    return tmp_path


def cfg(home, text, host, **kw):
    (home / ".ssh" / "config").write_text(text)
    return resolve(host, home=str(home), system_config=None, **kw)


# -- words and patterns -------------------------------------------------------

def test_split_words_quotes_and_comments():
    assert split_words('a "b c" d') == ["a", "b c", "d"]
    assert split_words("a b # comment") == ["a", "b"]
    assert split_words("~/.ssh/key#1") == ["~/.ssh/key#1"]
    assert split_words('""') == [""]
    with pytest.raises(ValueError):
        split_words('"open')


def test_pattern_list():
    assert match_pattern_list("web1.example.com", ["*.example.com"]) is True
    assert match_pattern_list("web1.example.com", ["web?.example.com"]) is True
    assert match_pattern_list("web10.example.com", ["web?.example.com"]) is None
    assert match_pattern_list("db.example.com", ["*.example.com", "!db.*"]) is False
    assert match_pattern_list("WEB.Example.COM", ["web.example.com"]) is True
    assert match_pattern_list("a[1]", ["a[1]"]) is True          # '[' is literal


# -- Host blocks, first value wins ---------------------------------------------

def test_first_value_wins_and_defaults(home):
    c = cfg(home, """
Host web
    HostName web.example.com
    Port 2222
    User alice
Host *
    Port 22
    User nobody
    ServerAliveInterval 15
""", "web")
    assert (c.hostname, c.port, c.user) == ("web.example.com", 2222, "alice")
    assert c.server_alive_interval == 15
    assert c.strict_host_key_checking == "ask" and not c.strict_explicit
    other = resolve("elsewhere", home=str(home), system_config=None)
    assert (other.hostname, other.port, other.user) == ("elsewhere", 22, "nobody")


def test_host_patterns_and_negation(home):
    text = """
Host *.corp !bastion.corp
    ProxyJump bastion.corp
Host bastion.corp
    User jump
"""
    assert cfg(home, text, "db.corp").proxy_jump == "bastion.corp"
    b = cfg(home, text, "bastion.corp")
    assert b.proxy_jump is None and b.user == "jump"
    # a line with only a negated pattern never matches
    assert cfg(home, "Host !foo\n  Port 1234\n", "bar").port == 22


def test_host_matches_alias_not_hostname(home):
    c = cfg(home, """
Host short
    HostName long.example.com
Host long.example.com
    Port 2200
Match host long.example.com
    User matched
""", "short")
    assert c.port == 22            # Host compares the name as typed
    assert c.user == "matched"     # Match host compares the HostName


def test_equals_syntax_case_and_command_line_beats_config(home):
    c = cfg(home, "host=srv\n  PORT=2022\n  user = bob\n", "srv", user="carol", port=2300)
    assert (c.port, c.user) == (2300, "carol")
    c = cfg(home, "host=srv\n  PORT=2022\n  user = bob\n", "srv")
    assert (c.port, c.user) == (2022, "bob")


def test_identity_files_accumulate_with_tokens(home, monkeypatch):
    monkeypatch.setenv("KEYDIR", "/keys")
    c = cfg(home, """
Host srv
    HostName srv.example.com
    User deploy
    IdentityFile ~/.ssh/%h_%r
    IdentityFile "${KEYDIR}/%u key"
    IdentitiesOnly yes
Host *
    IdentityFile %d/.ssh/common
""", "srv")
    import pwd
    me = pwd.getpwuid(os.getuid()).pw_name
    assert c.identity_files == [f"{home}/.ssh/srv.example.com_deploy", f"/keys/{me} key",
                                f"{home}/.ssh/common"]
    assert c.identities_only and c.identity_files_explicit


def test_default_identities(home):
    c = cfg(home, "", "x")
    assert c.identity_files[0] == f"{home}/.ssh/id_rsa"
    assert f"{home}/.ssh/id_ed25519" in c.identity_files
    assert not c.identity_files_explicit


def test_hostname_token_and_percent(home):
    c = cfg(home, "Host *.lan\n  HostName %h.example.com\n  ProxyCommand nc -X 5 %h %p 100%%\n", "a.lan")
    assert c.hostname == "a.lan.example.com"
    assert c.proxy_command == "nc -X 5 a.lan.example.com 22 100%"


def test_proxyjump_and_proxycommand_exclusive(home):
    c = cfg(home, "Host a\n  ProxyJump j1,j2\n  ProxyCommand nc %h %p\n", "a")
    assert c.proxy_jump == "j1,j2" and c.proxy_command is None
    c = cfg(home, "Host a\n  ProxyCommand nc %h %p\nHost *\n  ProxyJump j1\n", "a")
    assert c.proxy_jump is None and c.proxy_command == "nc a 22"
    c = cfg(home, "Host a\n  ProxyJump none\nHost *\n  ProxyJump j1\n", "a")
    assert c.proxy_jump is None


def test_proxycommand_keeps_quotes(home):
    c = cfg(home, "Host a\n  ProxyCommand sh -c 'exec nc \"%h\" %p'\n", "a")
    assert c.proxy_command == "sh -c 'exec nc \"a\" 22'"


def test_parse_jump():
    assert parse_jump("j1,bob@j2:2222,ssh://carol@j3:23,[::1]:2200") == [
        (None, "j1", None), ("bob", "j2", 2222), ("carol", "j3", 23), (None, "::1", 2200)]
    with pytest.raises(ConfigError):
        parse_jump("host:port")


def test_known_hosts_files_and_strict(home):
    c = cfg(home, """
Host a
    UserKnownHostsFile ~/.ssh/kh1 %d/kh2
    StrictHostKeyChecking accept-new
    GlobalKnownHostsFile none
Host *
    UserKnownHostsFile /never
""", "a")
    assert c.user_known_hosts_files == [f"{home}/.ssh/kh1", f"{home}/kh2"]
    assert c.global_known_hosts_files == []
    assert c.strict_host_key_checking == "accept-new" and c.strict_explicit
    d = resolve("b", home=str(home), system_config=None)
    assert d.user_known_hosts_files == ["/never"]
    assert cfg(home, "StrictHostKeyChecking off\n", "x").strict_host_key_checking == "no"
    assert cfg(home, "StrictHostKeyChecking yes\n", "x").strict_host_key_checking == "yes"


def test_timeouts_and_ignored_options(home):
    c = cfg(home, """
Host *
    ConnectTimeout 7
    ServerAliveInterval 1m
    ServerAliveCountMax 2
    Compression yes
    ForwardAgent yes
    SendEnv LANG LC_*
    SomeFutureOption whatever
""", "x")
    assert c.connect_timeout == 7 and c.server_alive_interval == 60 and c.server_alive_count_max == 2
    assert c.compression is True


def test_bad_values_name_file_and_line(home):
    with pytest.raises(ConfigError, match=r"config:3: bad value 'abc' for port"):
        cfg(home, "Host x\n  User u\n  Port abc\n", "x")
    with pytest.raises(ConfigError, match=r"config:1: bad value"):
        cfg(home, "StrictHostKeyChecking maybe\n", "x")
    # an error in a block that does not apply is still... not evaluated
    assert cfg(home, "Host other\n  User u\n", "x").port == 22


def test_include_relative_glob_and_block_scope(home):
    d = home / ".ssh" / "conf.d"
    d.mkdir()
    (d / "10-a.conf").write_text("Host a\n  Port 1001\n")
    # starts in the state of the Include line (top level: applies to all)
    (d / "20-b.conf").write_text("Port 1002\nHost b\n  User bee\n")
    (home / ".ssh" / "inner").write_text("ConnectTimeout 5\nUser from-inner\n")
    text = """
Include conf.d/*.conf
Host b
    Include inner
Host *
    Port 9
"""
    a = cfg(home, text, "a")
    assert a.port == 1001 and a.connect_timeout is None
    b = cfg(home, text, "b")
    assert (b.port, b.user, b.connect_timeout) == (1002, "bee", 5)
    c = cfg(home, text, "c")
    assert c.port == 1002 and c.connect_timeout is None
    # an Include inside a block that does not apply is not read
    assert str(home / ".ssh" / "inner") not in c.sources
    assert str(home / ".ssh" / "inner") in b.sources


def test_match_criteria(home, monkeypatch):
    text = """
Match originalhost alias user root,admin
    Port 2001
Match host *.example.com !user bob
    Port 2002
Match exec "test %h = special"
    Port 2003
Match all
    User fallback
"""
    c = cfg(home, text, "alias", user="admin")
    assert c.port == 2001
    c = cfg(home, text, "h.example.com", user="alice")
    assert c.port == 2002
    c = cfg(home, text, "h.example.com", user="bob")
    assert c.port == 22
    c = cfg(home, text, "special")
    assert c.port == 2003 and c.user == "fallback"


def test_match_final_second_pass(home):
    c = cfg(home, "Match final\n  Port 2200\nHost *\n  User u\n", "x")
    assert c.port == 2200 and c.user == "u"


def test_system_config_after_user_config(home, tmp_path):
    system = tmp_path / "ssh_config"
    system.write_text("Host *\n  Port 2222\n  User sys\n")
    (home / ".ssh" / "config").write_text("Host x\n  User mine\n")
    c = resolve("x", home=str(home), system_config=str(system))
    assert (c.port, c.user) == (2222, "mine")


def test_missing_config_is_fine(tmp_path):
    c = resolve("h", home=str(tmp_path), system_config=None)
    assert (c.hostname, c.port) == ("h", 22)


# -- known_hosts --------------------------------------------------------------

BLOB_A = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + b"A" * 32
BLOB_B = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + b"B" * 32
BLOB_R = b"\x00\x00\x00\x07ssh-rsa" + b"R" * 40
B64 = lambda b: base64.b64encode(b).decode()  # noqa: E731


def test_known_hosts_plain_port_and_patterns(tmp_path):
    f = tmp_path / "known_hosts"
    f.write_text(f"""# comment
example.com,192.0.2.1 ssh-ed25519 {B64(BLOB_A)} comment
[example.com]:2222 ssh-ed25519 {B64(BLOB_B)}
*.wild.test,!bad.wild.test ssh-rsa {B64(BLOB_R)}
@cert-authority *.example.com ssh-ed25519 {B64(BLOB_B)}
garbage line
""")
    k = kh.KnownHosts([str(f)])
    assert k.check(["example.com"], "ssh-ed25519", BLOB_A).status == kh.OK
    assert k.check(["192.0.2.1"], "ssh-ed25519", BLOB_A).status == kh.OK
    assert k.check([kh.host_key_name("example.com", 2222)], "ssh-ed25519", BLOB_B).status == kh.OK
    v = k.check(["[example.com]:2222"], "ssh-ed25519", BLOB_A)
    assert v.status == kh.CHANGED and v.entry.where == f"{f}:3"
    v = k.check(["example.com"], "ssh-ed25519", BLOB_B)
    assert v.status == kh.CHANGED and v.entry.lineno == 2
    assert k.check(["a.wild.test"], "rsa-sha2-512", BLOB_R).status == kh.OK
    assert k.check(["bad.wild.test"], "ssh-rsa", BLOB_R).status == kh.UNKNOWN
    v = k.check(["a.wild.test"], "ssh-ed25519", BLOB_A)
    assert v.status == kh.UNKNOWN and v.other_types == ("ssh-rsa",)
    assert k.known_types(["example.com"]) == ["ssh-ed25519"]
    assert k.check(["unknown.test"], "ssh-ed25519", BLOB_A).status == kh.UNKNOWN


def test_known_hosts_hashed_entries(tmp_path):
    f = tmp_path / "known_hosts"
    salt = b"s" * 20
    f.write_text(f"{kh.hash_hostname('[127.0.0.1]:2200', salt)} ssh-ed25519 {B64(BLOB_A)}\n"
                 f"{kh.hash_hostname('host.test')} ssh-ed25519 {B64(BLOB_B)}\n")
    k = kh.KnownHosts([str(f)])
    assert k.check(["[127.0.0.1]:2200"], "ssh-ed25519", BLOB_A).status == kh.OK
    assert k.check(["127.0.0.1"], "ssh-ed25519", BLOB_A).status == kh.UNKNOWN
    v = k.check(["host.test"], "ssh-ed25519", BLOB_A)
    assert v.status == kh.CHANGED and v.entry.lineno == 2


def test_hash_matches_openssh_format():
    # ssh-keygen -H output for "localhost" with an all-zero salt, computed
    # independently: HMAC-SHA1(key=salt, msg=name)
    import hashlib
    import hmac
    salt = bytes(20)
    want = base64.b64encode(hmac.new(salt, b"localhost", hashlib.sha1).digest()).decode()
    assert kh.hash_hostname("localhost", salt) == f"|1|{B64(salt)}|{want}"


def test_revoked_key(tmp_path):
    f = tmp_path / "known_hosts"
    f.write_text(f"host.test ssh-ed25519 {B64(BLOB_A)}\n@revoked * ssh-ed25519 {B64(BLOB_A)}\n")
    v = kh.KnownHosts([str(f)]).check(["host.test"], "ssh-ed25519", BLOB_A)
    assert v.status == kh.REVOKED and v.entry.lineno == 2


def test_add_host_key(tmp_path):
    f = tmp_path / "new" / "known_hosts"
    kh.add_host_key(str(f), "[h]:2200", "ssh-ed25519", BLOB_A)
    kh.add_host_key(str(f), "h2", "ssh-ed25519", BLOB_B, hashed=True)
    assert oct(f.stat().st_mode & 0o777) == "0o600"
    lines = f.read_text().splitlines()
    assert lines[0] == f"[h]:2200 ssh-ed25519 {B64(BLOB_A)}"
    assert lines[1].startswith("|1|")
    k = kh.KnownHosts([str(f)])
    assert k.check(["h2"], "ssh-ed25519", BLOB_B).status == kh.OK
    g = tmp_path / "nonl"
    g.write_text("x ssh-ed25519 AAAA")
    kh.add_host_key(str(g), "y", "ssh-ed25519", BLOB_A)
    assert g.read_text().splitlines()[1].startswith("y ")


def test_fingerprint_format():
    fp = kh.fingerprint(BLOB_A)
    assert fp.startswith("SHA256:") and "=" not in fp


def test_ipv6_names():
    assert kh.host_key_name("::1", 22) == "::1"
    assert kh.host_key_name("::1", 2222) == "[::1]:2222"
