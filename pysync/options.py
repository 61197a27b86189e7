"""rsync's command line, parsed with popt's semantics (bundled short
flags, ``--opt=value`` / ``--opt value`` / ``-Bvalue``, ``--no-OPT`` for
flags), checked as rsync checks it, and ``--help``.

One table (pysync/optiontable.py) drives the parser, ``--help`` and the
server command line we send to the remote side (``server_cmd.server_args``),
so an option exists in all three or in none.  Only options pysync implements are in the table: an
unknown option is a syntax error (exit 1), never silently ignored.
"""

from __future__ import annotations

from .errors import SyntaxUsageError, UnsupportedError
from .optiontable import LONG as _LONG
from .optiontable import OPTION_TABLE, Options
from .optiontable import SHORT as _SHORT
from .protocol.constants import MUNGE_PREFIX

__all__ = ["Options", "parse_args", "help_text", "OPTION_TABLE"]


def _apply(opts: Options, row, value=None, negate=False, name="") -> None:
    _names, _short, kind, dest, const, _help, _hidden = row
    if kind == "flag":
        if dest == "crtimes" and not negate:
            # Linux has no settable create time: rsync is built without
            # SUPPORT_CRTIMES and refuses the option (options.c).
            who = "The server" if opts.server else "This rsync"
            raise SyntaxUsageError(f"{who} does not support --crtimes (-N)")
        setattr(opts, dest, not negate)
        if dest == "recursive" and name:
            opts.explicit_recursive = not negate     # -r itself, not -a's
        if dest == "delete" and negate:
            opts.delete_mode = None
        if dest == "acls" and not negate:
            opts.perms = True           # as rsync: -A implies -p
    elif kind == "count":
        setattr(opts, dest, 0 if negate else max(getattr(opts, dest), 0) + 1)
        if dest == "append" and not opts.server and not negate:
            opts.append = 1      # only a server counts: "--append --append" is -verify
        if dest == "atimes" and opts.atimes > 1:
            opts.open_noatime = True        # -UU (options.c)
    elif kind == "value" and dest in ("usermap", "groupmap", "chown"):
        _id_map_option(opts, dest, value)
    elif kind == "value":
        setattr(opts, dest, const(value))
    elif kind == "append":
        getattr(opts, dest).extend(const(value))
    elif kind == "const":
        setattr(opts, dest, const)
        if dest == "delete_mode":
            opts.delete = True
        if dest == "am_root":
            opts.__dict__["_am_root_given"] = True
    elif kind == "filter":
        opts.filters.append(const + value)
    elif kind == "fshort":
        opts.filter_F += 1
        if opts.filter_F == 1:
            opts.filters.append(": /.rsync-filter")
        elif opts.filter_F == 2:
            opts.filters.append("- .rsync-filter")
    elif kind == "altdest":
        if opts.alt_dests and opts.alt_dests[0][0] != const:
            raise SyntaxUsageError(f"ERROR: the --{const}-dest option conflicts with the "
                                   f"--{opts.alt_dests[0][0]}-dest option")
        if len(opts.alt_dests) >= 20:      # rsync's MAX_BASIS_DIRS
            raise SyntaxUsageError(f"ERROR: at most 20 --{const}-dest args may be specified")
        opts.alt_dests.append((const, value))
    elif kind == "filter_file":
        opts.filters.extend(const + line for line in _read_pattern_file(value))
    elif kind == "alias":
        for letter in const if isinstance(const, str) else ():
            _apply(opts, _SHORT[letter], negate=negate)
        if not isinstance(const, str):
            for long in const:
                _apply(opts, _LONG[long], negate=negate)


def _id_map_option(opts: Options, dest: str, value: str) -> None:
    """--usermap / --groupmap / --chown USER:GROUP (which is "*:USER" and
    "*:GROUP" and turns on -o / -g), with rsync's conflicts (options.c)."""
    from .engine.idmap import NameMapError, check_name_map
    via = opts.__dict__.setdefault("_map_via_chown", {})
    if dest == "chown":
        user, colon, group = value.partition(":")
        parts = [("usermap", "user", user)] + ([("groupmap", "group", group)] if colon else [])
        for key, what, name in parts:
            if not name:
                continue
            if getattr(opts, key) is not None:
                if not via.get(key):
                    raise SyntaxUsageError(f"--chown conflicts with prior --{key}.")
                raise SyntaxUsageError(f"You can only specify a {what}-affecting --chown once.")
            setattr(opts, key, "*:" + name)
            via[key] = True
            if key == "usermap":
                opts.owner = True
            else:
                opts.group = True
        return
    if getattr(opts, dest) is not None:
        if via.get(dest):
            raise SyntaxUsageError(f"--{dest} conflicts with prior --chown.")
        raise SyntaxUsageError(f"You can only specify --{dest} once.")
    try:
        check_name_map(value, dest == "usermap")
    except NameMapError as e:
        raise SyntaxUsageError(str(e)) from None
    setattr(opts, dest, value)
    via[dest] = False


def _takes_value(row) -> bool:
    return row[2] in ("value", "append", "filter", "filter_file", "altdest")


def _read_pattern_file(path: str) -> list:
    """Patterns one per line; blank lines and lines starting with ';' or
    '#' are comments (rsync's --exclude-from rules).  "-" is stdin."""
    import sys
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as e:
        raise SyntaxUsageError(f"failed to open exclude file {path}: {e.strerror}") from None
    out = []
    for raw in data.splitlines():
        line = raw.decode("utf-8", "surrogateescape").rstrip("\r")
        if not line.strip() or line[0] in ";#":
            continue
        out.append(line)
    return out


def _where(opts: Options) -> str:
    """A server names itself in option errors (a -M word, say)."""
    return "on remote machine: " if opts.server else ""


def parse_args(argv) -> Options:
    """Parse rsync-style arguments (without the program name)."""
    opts = Options()
    i = 0
    argv = list(argv)
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            opts.args.extend(argv[i:])
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, value = a[2:].partition("=")
            negate = False
            row = _LONG.get(name)
            if row is None and name.startswith("no-"):
                # --no-OPT works with long names and, as in rsync, with
                # short letters (--no-W, --no-z, --no-D ...).
                base = name[3:]
                row = _LONG.get(base) or (_SHORT.get(base) if len(base) == 1 else None)
                negate = row is not None
                if row is not None and (_takes_value(row) or row[2] == "const"):
                    raise SyntaxUsageError(f"--{name}: unknown option")
            if row is None:
                raise SyntaxUsageError(f"{_where(opts)}--{name}: unknown option")
            if _takes_value(row):
                if not eq:
                    if i >= len(argv):
                        raise SyntaxUsageError(f"--{name}: missing argument")
                    value = argv[i]
                    i += 1
                _apply(opts, row, value, name=name)
            else:
                if eq:
                    raise SyntaxUsageError(f"--{name}: option does not take an argument")
                _apply(opts, row, negate=negate, name=name)
            continue
        if a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                ch = a[j]
                j += 1
                row = _SHORT.get(ch)
                if row is None:
                    raise SyntaxUsageError(f"{_where(opts)}-{ch}: unknown option")
                if _takes_value(row):
                    value = a[j:]
                    if not value:
                        if i >= len(argv):
                            raise SyntaxUsageError(f"-{ch}: missing argument")
                        value = argv[i]
                        i += 1
                    if ch == "e" and opts.server:
                        opts.capabilities = value
                    else:
                        _apply(opts, row, value, name=ch)
                    break
                _apply(opts, row, name=ch)
            continue
        opts.args.append(a)
    return finish_options(opts)


# --delay-updates without --partial-dir keeps finished files here (options.c).
DELAY_UPDATES_DIR = ".~tmp~"


def _atoi(text: str) -> int:
    """C's atoi: blanks, a sign, digits; 0 when there are none."""
    t = text.lstrip(" \t\n\r\f\v")
    sign = 1
    if t and t[0] in "+-":
        sign = -1 if t[0] == "-" else 1
        t = t[1:]
    n = 0
    for c in t:
        if not "0" <= c <= "9":
            break
        n = n * 10 + ord(c) - 48
    return sign * n


def finish_options(opts: Options) -> Options:
    """Implications between options, as rsync applies them after parsing."""
    if opts.max_delete is not None and opts.max_delete < 0:
        opts.max_delete = 0         # negative: no deletions (as options.c)
    _old_args(opts)
    _max_alloc(opts)
    if opts.delete_excluded:
        opts.delete = True          # options.c: --delete-excluded is a --delete mode
    if opts.protect_args is None:
        # A client's default comes from $RSYNC_PROTECT_ARGS (read as atoi).
        import os
        opts.protect_args = not opts.server and _atoi(os.environ.get("RSYNC_PROTECT_ARGS", "")) != 0
    if opts.delay_updates and opts.partial_dir is None:
        opts.partial_dir = DELAY_UPDATES_DIR
    if opts.munge_links:
        import os
        if os.path.isdir(MUNGE_PREFIX.rstrip(b"/")):
            raise UnsupportedError(f"Symlink munging is unsafe when a {MUNGE_PREFIX.rstrip(b'/').decode()} "
                                   "directory exists.")
    if opts.old_dirs:
        # options.c: --old-dirs is -r with a rule of the client's (sent with
        # the others) that leaves out everything below the top directories
        opts.filters.append("- /*/*")
    if opts.backup and opts.backup_dir is None and opts.delete and not opts.delete_excluded \
            and not opts.server:
        # options.c: the client protects the backups from --delete with a
        # rule of its own, sent with the others to a receiving server.
        opts.filters.append(f"P *{'~' if opts.suffix is None else opts.suffix}")
    if opts.partial_dir is not None and not opts.partial_dir.startswith("/") \
            and (not opts.server or opts.local_server):
        # rsync's perishable exclude for a relative partial dir, after the
        # user's rules: never sent, never deleted as extraneous (compat.c).
        opts.filters.append(f"-p {opts.partial_dir.rstrip('/')}/")
    if opts.filters and not opts.server:
        # As rsync: rules (and merge files, "-" being stdin) are read before
        # connecting; a bad rule or a missing merge file ends the run here.
        from .engine.filters import FilterList
        opts.filter_list = FilterList.from_options(opts.filters)
    if opts.files_from is not None and not opts.server:
        if not opts.explicit_recursive:
            opts.recursive = False       # -a's -r is off with --files-from; -r stays
        opts.files_from_remote = _remote_list(opts.files_from)
    if opts.old_dirs:
        opts.recursive = True       # (after --files-from's "-r off", as options.c)
    if not opts.server and len(opts.args) == 1:
        opts.list_implied = True
    # options.c: --files-from and listing imply --dirs unless --no-dirs.
    implied = opts.files_from is not None or opts.list_only or opts.list_implied
    opts.xfer_dirs = opts.recursive or bool(opts.dirs) or (opts.dirs is None and implied)
    if opts.relative is None:
        opts.relative = opts.files_from is not None
    if opts.backup_dir is not None:
        opts.backup = True
    elif opts.backup:
        # options.c: backups beside the files imply -O, even over an
        # explicit -O/--no-O; not passed on (the remote implies it itself).
        opts.omit_dir_times = -1
    if opts.partial_dir is not None:
        opts.partial = True
    if opts.write_devices:
        opts.inplace = True          # options.c: --write-devices implies --inplace
    _inplace_options(opts)
    if opts.am_root == 0 and not opts.__dict__.get("_am_root_given"):
        import os
        opts.am_root = int(os.geteuid() == 0)
    if opts.am_root < 0 and opts.xattrs > 1:
        raise SyntaxUsageError("--fake-super conflicts with -XX")
    if opts.am_root < 0 and opts.acls:
        # rsync keeps ACLs in user.rsync.%aacl / %dacl then: not done here.
        raise UnsupportedError("--fake-super with -A (--acls) is not supported by pysync")
    if opts.sparse and opts.direct_io:
        # O_DIRECT writes whole aligned chunks; leaving holes in them is
        # not implemented (see README).
        raise SyntaxUsageError("--sparse cannot be used with --direct-io")
    if opts.info:
        last = opts.info.split(",")[-1].strip()
        opts.progress2 = last == "progress2"
        if last in ("progress1", "progress"):
            opts.progress = True
        elif last == "progress0":
            opts.progress = False
    return opts


def _old_args(opts: Options) -> None:
    """--old-args (or $RSYNC_OLD_ARGS when neither it nor -s is given)
    turns off -s and the escaping of remote arguments (options.c)."""
    import os
    if opts.old_args < 0:
        env = os.environ.get("RSYNC_OLD_ARGS", "")
        if not opts.server and not opts.protect_args and env:
            opts.protect_args = False
            opts.old_args = _atoi(env)
        else:
            opts.old_args = 0
    elif opts.old_args:
        if opts.protect_args:
            raise SyntaxUsageError("--secluded-args conflicts with --old-args.")
        opts.protect_args = False


def _max_alloc(opts: Options) -> None:
    """--max-alloc (or $RSYNC_MAX_ALLOC) in rsync's size syntax: at least
    1 MiB, or 0 for no limit."""
    import os
    if opts.max_alloc_arg is None:
        opts.max_alloc_arg = os.environ.get("RSYNC_MAX_ALLOC") or None
    if opts.max_alloc_arg is not None:
        from .sizes import parse_size_arg
        opts.max_alloc = parse_size_arg(opts.max_alloc_arg, "B", "max-alloc", 1 << 20, True)


def _remote_list(spec: str):
    """The path of a --files-from list on the remote side ("host:path",
    ":path"), or None for a local one."""
    if spec.startswith(":"):
        return spec[1:]
    from .client import parse_remote
    r = parse_remote(spec)
    return None if r is None else r[2]


def _inplace_options(opts: Options) -> None:
    """--append implies --inplace; --inplace stands for --partial (the file
    is never a temp file, so there is nothing else to keep) and refuses
    what needs a second file (options.c, same messages)."""
    if not (opts.inplace or opts.append):
        return
    what = "append" if opts.append else "inplace"
    if opts.append and opts.whole_file and not opts.server:
        raise SyntaxUsageError("--append cannot be used with --whole-file")
    opts.inplace = True
    if opts.partial_dir is not None:
        raise SyntaxUsageError(f"--{what} cannot be used with --partial-dir")
    if opts.direct_io:
        # In-place updates write at the basis' own offsets, most of them
        # unaligned, into a file other readers may see: O_DIRECT would need
        # a read-modify-write of every unaligned edge (see README).
        raise SyntaxUsageError(f"--{what} cannot be used with --direct-io")
    opts.partial = False


# --help's placeholder for a value, where rsync's names one.
_METAVAR = {"stderr": "e|a|c", "outbuf": "N|L|B", "stop-after": "MINS", "stop-at": "y-m-dTh:m",
            "skip-compress": "LIST", "max-alloc": "SIZE", "remote-option": "OPT",
            "early-input": "FILE", "copy-as": "USER[:GROUP]", "debug": "FLAGS"}


def help_text(version_line: str) -> str:
    lines = [version_line, "", "Usage: pysync [OPTION]... SRC [SRC]... DEST",
             "  or   pysync [OPTION]... SRC [SRC]... [USER@]HOST:DEST",
             "  or   pysync [OPTION]... [USER@]HOST:SRC [DEST]", "",
             "Options"]
    for names, short, kind, dest, const, help_, hidden in OPTION_TABLE:
        if hidden or not help_:
            continue
        left = (f"-{short}, " if short else "    ") + (f"--{names[0]}" if names else "")
        if not names:
            left = f"-{short}"
        if kind in ("value", "append", "filter", "filter_file", "altdest"):
            meta = _METAVAR.get(names[0], "VALUE") if names else "VALUE"
            left += f"={meta}" if names else f" {meta}"
        lines.append(f" {left:<28} {help_}")
    return "\n".join(lines) + "\n"
