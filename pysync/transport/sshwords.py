"""The words of an ssh_config file and what is done to them, for
sshconfigfile.py and sshconfig.py (and known_hosts patterns, knownhosts.py):
splitting a line into words, ``*``/``?`` host patterns with ``!`` negation,
``%`` tokens, ``${ENV}`` and ``~``.  Written from the ssh_config(5) manual.
"""

from __future__ import annotations

import os
import pwd
import re

__all__ = ["split_words", "match_pattern_list", "expand_tokens"]


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
