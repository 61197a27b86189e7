"""POSIX ACLs of files on disk (-A), read and written as Linux's
system.posix_acl_access / system.posix_acl_default xattrs, so no libacl is
needed.  Targets are an fd or a no-follow path (io/xattrs.py at_path)."""

from __future__ import annotations

import errno
import os
import stat

from ..protocol.acls import RsyncAcl, equal_enough, fake_perms, from_xattr, full_entries, to_xattr

__all__ = ["AclError", "read_acls", "acls_differ", "apply_acls", "carries_acls"]

ACCESS = "system.posix_acl_access"
DEFAULT = "system.posix_acl_default"
_ABSENT = (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP)


class AclError(OSError):
    def __init__(self, what: str, err: OSError):
        super().__init__(err.errno, err.strerror)
        self.what = what


def carries_acls(mode: int, devices: bool, specials: bool) -> bool:
    """acls.c get_acl: files and dirs; devices and specials when preserved;
    never symlinks."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return True
    if stat.S_ISLNK(mode):
        return False
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return devices
    return specials


def _get(target, name: str):
    follow = isinstance(target, int)
    try:
        return from_xattr(os.getxattr(target, name, follow_symlinks=follow))
    except OSError as e:
        if e.errno in _ABSENT:
            return None
        raise AclError(f"get_acl: getxattr({name})", e) from None
    except ValueError:
        raise AclError(f"get_acl: getxattr({name})", OSError(errno.EINVAL, "invalid ACL")) from None


def read_acls(target, mode: int) -> tuple:
    """(full access ACL, default ACL or None for non-directories); an
    object without an access ACL has its mode's, one without a default
    ACL an empty one."""
    access = _get(target, ACCESS) or fake_perms(mode)
    if not stat.S_ISDIR(mode):
        return access, None
    return access, _get(target, DEFAULT) or RsyncAcl()


def acls_differ(local: tuple, sent_access, sent_default, mode: int) -> bool:
    """acls.c set_acl(NULL, ...): would setting the sender's ACLs change anything?"""
    if sent_access is not None and not equal_enough(local[0], sent_access, mode):
        return True
    if stat.S_ISDIR(mode) and sent_default is not None:
        return local[1] != sent_default
    return False


def apply_acls(target, local: tuple, sent_access, sent_default, mode: int) -> bool:
    """Store the sender's ACLs where they differ (acls.c set_rsync_acl);
    ``mode`` gives the entries the sender left out.  -> changed?"""
    follow = isinstance(target, int)
    changed = False
    try:
        if sent_access is not None and not equal_enough(local[0], sent_access, mode):
            os.setxattr(target, ACCESS, to_xattr(full_entries(sent_access, mode)),
                        follow_symlinks=follow)
            changed = True
        if stat.S_ISDIR(mode) and sent_default is not None and local[1] != sent_default:
            changed = True
            if sent_default.user is None:
                try:
                    os.removexattr(target, DEFAULT, follow_symlinks=follow)
                except OSError as e:
                    if e.errno != errno.ENODATA:
                        raise
            else:
                os.setxattr(target, DEFAULT, to_xattr(full_entries(sent_default, None)),
                            follow_symlinks=follow)
    except OSError as e:
        raise AclError("set_acl", e) from None
    return changed
