"""Which symlinks leave the transfer (rsync's "unsafe" links), for
--safe-links (the receiver skips them) and --copy-unsafe-links (the
sender sends what they point to)."""

from __future__ import annotations

__all__ = ["unsafe_symlink"]


def unsafe_symlink(target: bytes, name: bytes) -> bool:
    """True if the link ``name`` (a path inside the transfer) with this
    ``target`` could point outside the transfer: an empty or absolute
    target, a ".." anywhere but in a leading run of "../", a target ending
    in "/..", or more leading ".." than ``name`` has directories above it.
    These are rsync's rules (util1.c), including the stricter ones of its
    CVE-2024-12088 fix that Debian's 3.2.7 carries."""
    if not target or target.startswith(b"/"):
        return True
    rest = target
    while rest.startswith(b"../"):
        rest = rest[3:].lstrip(b"/")
    if b"/../" in rest:
        return True
    if len(target) > 3 and target.endswith(b"/.."):
        return True
    depth = 0
    parts = name.split(b"/")
    for part in parts[:-1]:
        if not part:
            continue
        if part == b"..":
            depth = 0
        elif part != b".":
            depth += 1
    if parts[-1] == b"..":
        depth = 0
    tparts = target.split(b"/")
    for part in tparts[:-1]:
        if not part:
            continue        # repeated slashes
        if part == b"..":
            depth -= 1
            if depth < 0:
                return True
        elif part != b".":
            depth += 1
    if tparts[-1] == b"..":
        depth -= 1
    return depth < 0
