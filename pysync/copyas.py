"""--copy-as=USER[:GROUP]: the transfer's file access as that user (and
group), as rsync switches ids (main.c become_copy_as_user) once the
connection is set up, before the file list: the sending side reads and
the receiving side writes with the user's rights."""

from __future__ import annotations

import os

from .errors import SyntaxUsageError

__all__ = ["become_copy_as"]


def _uid(name: str):
    import pwd
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return int(name) if name.isdigit() else None


def _gid(name: str):
    import grp
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return int(name) if name.isdigit() else None


# Modules a transfer never needs after the switch: the SSH transport (its
# connection is up already) and the entry points.
_NOT_AFTER = ("pysync.transport", "pysync.__main__", "pysync.api", "pysync.warmup")


def _preload() -> None:
    """Import every module the rest of the run might load on first use
    (pysync's own load their options' code lazily, xxhash loads with the
    first sum): after the switch, the user may not be able to read them."""
    import importlib
    import pkgutil
    import pysync
    for mod in pkgutil.walk_packages(pysync.__path__, "pysync."):
        if not mod.name.startswith(_NOT_AFTER):
            try:
                importlib.import_module(mod.name)
            except ImportError:
                pass
    for name in ("xxhash", "zlib", "pwd", "grp"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def become_copy_as(spec: str, sending: bool) -> None:
    """Switch ids; ``sending``: this side's role, whose modules are loaded
    first (the user may not be able to read the interpreter's files)."""
    import importlib
    importlib.import_module("pysync.sending" if sending else "pysync.receiving")
    _preload()
    from .text import _utf8_locale
    _utf8_locale()              # loads the locale module for the messages to come
    user, colon, group = spec.partition(":")
    uid = _uid(user)
    if uid is None:
        raise SyntaxUsageError(f"Invalid copy-as user: {user}")
    if colon:
        gid = _gid(group)
        if gid is None:
            raise SyntaxUsageError(f"Invalid copy-as group: {group}")
    else:
        import pwd
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            raise SyntaxUsageError("rsync: getpwuid failed: No such file or directory (2)") from None
    steps = [("setgid", lambda: os.setgid(gid)), ("setgroups", lambda: os.setgroups([gid]))]
    if not colon:
        steps.append(("initgroups", lambda: os.initgroups(user, gid)))
    steps += [("setuid", lambda: os.setuid(uid)), ("setuid", lambda: os.seteuid(uid))]
    for what, step in steps:
        try:
            step()
        except OSError as e:
            raise SyntaxUsageError(f"rsync: {what} failed: {e.strerror} ({e.errno})") from None
