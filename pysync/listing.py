"""--list-only (and a lone source argument): the source's file list printed
in rsync's format, ``-rw-r--r--          1,234 2026/11/24 12:00:00 name``,
in the order rsync lists it (depth first: a directory, then what is
below it; files before subdirectories).  A remote source's list comes
from a pull session that lists instead of transferring (session.py)."""

from __future__ import annotations

import stat
import time

from .protocol.flist_sort import sort_and_clean
from .report import comma
from .text import show

__all__ = ["list_sources"]


def _perms(mode: int) -> str:
    return stat.filemode(mode)


def _line(e, links: bool) -> str:
    size = e.size
    when = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(e.mtime))
    name = show(e.name)
    if stat.S_ISLNK(e.mode) and links and e.link is not None:
        name += " -> " + show(e.link)
    return f"{_perms(e.mode)} {comma(size):>14} {when} {name}"


def listing_lines(flist, opts) -> list:
    """The lines rsync prints for a sorted, cleaned file list (ours or one
    received from a remote sender), in rsync's order."""
    flist = [e for e in flist if not e.cleared]
    if opts.relative and not opts.implied_dirs:
        from .protocol.constants import XMIT_NO_CONTENT_DIR, XMIT_TOP_DIR
        both = XMIT_TOP_DIR | XMIT_NO_CONTENT_DIR
        flist = [e for e in flist if not (e.is_dir and e.xflags & both == both)]
    # rsync lists with incremental recursion: one directory at a time.
    children: dict = {}
    for e in flist:
        parent = e.name.rsplit(b"/", 1)[0] if b"/" in e.name else (b"" if e.name != b"." else None)
        children.setdefault(parent, []).append(e)
    order = []

    def visit(parent):
        for k in children.get(parent, []):
            order.append(k)
            if k.is_dir and k.name != b".":
                visit(k.name)
    order.extend(children.get(None, []))
    visit(b"")
    seen = set()
    lines = []
    for e in order:
        if id(e) in seen:
            continue
        seen.add(id(e))
        lines.append(_line(e, opts.links))
    return lines


def list_sources(opts, sources, log, out) -> int:
    from .engine.filters import FilterList
    from .engine.scan import Scanner
    from .config import SessionConfig
    from .errors import RERR_PARTIAL, exit_code_for
    cfg = SessionConfig()
    cfg.recursive = opts.recursive
    cfg.one_file_system = opts.one_file_system
    cfg.relative, cfg.implied_dirs = bool(opts.relative), opts.implied_dirs
    cfg.xfer_dirs = opts.xfer_dirs   # listing implies --dirs (unless --no-dirs)
    # A missing argument is left out of a local listing with either option
    # (rsync 3.2.7 prints nothing for it, and no error).
    cfg.ignore_missing_args = opts.ignore_missing_args or opts.delete_missing_args
    filters = opts.filter_list or (FilterList.from_options(opts.filters) if opts.filters else None)
    if opts.cvs_exclude:
        if filters is None:
            filters = FilterList()
        filters.add_texts([b":C", b"-C"])
    sc = Scanner(cfg, log, None, filters)
    entries = sc.scan([s.encode("utf-8", "surrogateescape") for s in sources])
    lines = listing_lines(sort_and_clean(entries), opts)
    if lines and not opts.quiet:
        out.write("\n".join(lines) + "\n")
        out.flush()
    return exit_code_for(sc.io_error, RERR_PARTIAL if sc.xfer_failed else 0)
