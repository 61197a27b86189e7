"""Item flags that rsync computes from a stat its own actions changed.

rsync itemizes an up-to-date regular file after set_file_attrs
(generator.c recv_generator), with the stat that call left behind: when it
changed the owner or group of a file with the set-user-ID or set-group-ID
bit, it stats the file again, since the kernel clears those bits on a
chown (rsync.c set_file_attrs).  The line then shows no owner or group
change, and the permissions as the chown left them (".f...p....." for a
group change of a 02750 file; nothing for a 02640 one, whose set-group-ID
bit without group execute stays)."""

from __future__ import annotations

import stat

from ..protocol.constants import ITEM_REPORT_GROUP, ITEM_REPORT_OWNER, ITEM_REPORT_PERMS

__all__ = ["after_chown"]

_OWNERSHIP = ITEM_REPORT_OWNER | ITEM_REPORT_GROUP


def after_chown(policy, entry, st, flags: int) -> int:
    """The flags of an up-to-date file ``st`` whose owner or group was just
    changed (``flags``: those against ``st`` before the change)."""
    if not flags & _OWNERSHIP or not st.st_mode & (stat.S_ISUID | stat.S_ISGID) or policy.fake:
        return flags
    # Linux's chown of a non-directory: set-user-ID always goes,
    # set-group-ID when the group may execute.
    mode = st.st_mode & ~stat.S_ISUID
    if mode & stat.S_IXGRP:
        mode &= ~stat.S_ISGID
    flags &= ~_OWNERSHIP
    if policy.perms:
        flags &= ~ITEM_REPORT_PERMS
        if (mode ^ entry.mode) & 0o7777:
            flags |= ITEM_REPORT_PERMS
    return flags
