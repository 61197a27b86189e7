"""User and group names for the id lists (uidlist.c): the sender names its
ids, the receiver maps names back to local ids (uids only as root; gids
that we can use), falling back to the number."""

from __future__ import annotations

import grp
import os
import pwd

__all__ = ["IdMapper"]


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
    def map_uids(names: dict) -> dict:
        out = {}
        if os.geteuid() != 0:
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
