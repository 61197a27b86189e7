"""User and group names for the id lists (uidlist.c): the sender names its
ids, the receiver maps names back to local ids (uids only as root; gids
that we can use), falling back to the number."""

from __future__ import annotations

import grp
import os
import pwd

__all__ = ["IdMapper", "NameMapError", "check_name_map", "parse_name_map", "mapped_ids"]


class IdMapper:
    def __init__(self):
        self._users = {}
        self._groups = {}

    def user_name(self, uid: int):
        if uid not in self._users:
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name.encode()
            except KeyError:
                self._users[uid] = None
        return self._users[uid]

    def group_name(self, gid: int):
        if gid not in self._groups:
            try:
                self._groups[gid] = grp.getgrgid(gid).gr_name.encode()
            except KeyError:
                self._groups[gid] = None
        return self._groups[gid]

    def user_names(self, uids) -> dict:
        return {u: self.user_name(u) for u in sorted(uids) if self.user_name(u)}

    def group_names(self, gids) -> dict:
        return {g: self.group_name(g) for g in sorted(gids) if self.group_name(g)}

    @staticmethod
    def map_uids(names: dict, fake_super: bool = False) -> dict:
        """Only a receiver that can own files (root, or --fake-super that
        records owners) maps user names (uidlist.c: am_root)."""
        out = {}
        if os.geteuid() != 0 and not fake_super:
            return out
        for rid, name in names.items():
            try:
                out[rid] = pwd.getpwnam(name.decode()).pw_uid
            except (KeyError, UnicodeDecodeError):
                pass
        return out

    @staticmethod
    def map_gids(names: dict) -> dict:
        out = {}
        for rid, name in names.items():
            try:
                out[rid] = grp.getgrnam(name.decode()).gr_gid
            except (KeyError, UnicodeDecodeError):
                pass
        return out


# ---- --usermap / --groupmap / --chown ---------------------------------------------------

class NameMapError(ValueError):
    """A malformed --usermap/--groupmap (rsync exits 1)."""


class _Rule:
    __slots__ = ("kind", "lo", "hi", "name", "target")

    def __init__(self, kind, lo=0, hi=0, name="", target=0):
        self.kind, self.lo, self.hi, self.name, self.target = kind, lo, hi, name, target

    def matches(self, rid: int, name: str) -> bool:
        if self.kind == "wild":
            import fnmatch
            return fnmatch.fnmatchcase(name, self.name)
        if self.kind == "name":
            return name == self.name
        if self.kind == "range":
            return self.lo <= rid <= self.hi
        return rid == self.lo


def check_name_map(text: str, users: bool) -> None:
    """Raise NameMapError for what rsync's parse_name_map rejects."""
    what = "user" if users else "group"
    for item in text.split(","):
        src, colon, dst = item.partition(":")
        if not colon:
            raise NameMapError(f"No colon found in --{what}map: {item}")
        if not dst:
            raise NameMapError(f"No name found after colon --{what}map: {item}")
        if src[:1].isdigit():
            lo, dash, hi = src.partition("-")
            if not all(c in "0123456789-" for c in src) or (dash and (not hi or "-" in hi)):
                raise NameMapError(f"Invalid number in --{what}map: {src}")


def parse_name_map(text: str, users: bool, log=None) -> list:
    """The rules of a checked --usermap/--groupmap, in order; a target name
    unknown here is reported (as rsync: an error line, not fatal) and its
    rule dropped."""
    check_name_map(text, users)
    rules = []
    for item in text.split(","):
        src, _, dst = item.partition(":")
        target = _local_id(dst, users)
        if target is None:
            if log is not None:
                log.error(f"Unknown --{'user' if users else 'group'}map name on receiver: {dst}")
            continue
        if src[:1].isdigit():
            lo, dash, hi = src.partition("-")
            if dash:
                rules.append(_Rule("range", int(lo), int(hi), target=target))
            else:
                rules.append(_Rule("id", int(lo), target=target))
        elif any(c in src for c in "*[?"):
            rules.append(_Rule("wild", name=src, target=target))
        else:
            rules.append(_Rule("name", name=src, target=target))
    return rules


def _local_id(name: str, users: bool):
    if name.isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid if users else grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def mapped_ids(ids, names: dict, rules: list, by_name: dict) -> dict:
    """remote id -> local id for ``ids``: the first rule that matches the
    id or its name (uidlist.c recv_add_id), else the mapping by name that
    applies without rules (``by_name``)."""
    out = {}
    for rid in ids:
        raw = names.get(rid)
        name = raw.decode("utf-8", "surrogateescape") if raw else ""
        for r in rules:
            if r.matches(rid, name):
                out[rid] = r.target
                break
        else:
            if rid in by_name:
                out[rid] = by_name[rid]
    return out
