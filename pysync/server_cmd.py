"""The command line a client gives the remote ``--server`` (rsync's
options.c server_options): the short-option cluster, the long options in
rsync's order, option values escaped for the remote shell, and which
pysync-only options need pysync on the other side."""

from __future__ import annotations

from .options import DELAY_UPDATES_DIR, Options

__all__ = ["server_args", "pysync_only", "PYSYNC_ONLY"]


PYSYNC_ONLY = ("direct_io", "drop_cache")


def pysync_only(opts: Options, remote_is_sender: bool) -> list:
    """The pysync-only options that need pysync on the remote side."""
    out = []
    if opts.direct_io and not remote_is_sender:
        out.append("--direct-io")
    if opts.drop_cache:
        out.append("--drop-cache")
    return out


def server_args(opts: Options, remote_is_sender: bool, capabilities: str,
                shell: bool = True) -> list:
    """The command line for the remote ``--server`` (options.c server_options
    order), without the program name, the "." and the paths.  ``shell``:
    values are escaped for the remote shell that will split the line (not
    for a local copy's child, which gets the words as they are)."""
    # Option values are escaped unless --old-args was given twice; -M's
    # words unless it was given at all (options.c safe_arg).
    _q = _shell_quote if shell and opts.old_args < 2 else str
    _qm = _shell_quote if shell and opts.old_args < 1 else str
    args = ["--server"]
    if remote_is_sender:
        args.append("--sender")
    # -s: the cluster carries "s" and ends the command line (the caller
    # sends the rest on the wire); a local child gets all of it as words.
    c = "s" if opts.protect_args and shell else ""
    c += "v" * opts.verbose
    if opts.quiet and opts.msgs2stderr:     # --stderr=client: the client filters
        c += "q"
    if opts.backup:
        c += "b"
    if opts.update:
        c += "u"
    if opts.dry_run:
        c += "n"
    if opts.links:
        c += "l"
    push = not remote_is_sender
    if not opts.recursive and (opts.dirs or (opts.xfer_dirs and (
            opts.list_only or opts.list_implied or (opts.delete and push)))):
        c += "d"
    if push:
        if opts.keep_dirlinks:
            c += "K"
        if opts.prune_empty_dirs:
            c += "m"
        if opts.omit_dir_times > 0:
            c += "O"
        if opts.omit_link_times:
            c += "J"
        if opts.fuzzy:
            c += "y" * min(opts.fuzzy, 2)
    else:
        if opts.copy_links:
            c += "L"
        if opts.copy_dirlinks:
            c += "k"
    if opts.whole_file:
        c += "W"
    if opts.hard_links:
        c += "H"
    if opts.owner:
        c += "o"
    if opts.group:
        c += "g"
    if opts.devices and opts.specials:
        c += "D"
    if opts.times:
        c += "t"
    c += "U" * min(opts.atimes, 2)
    if opts.perms:
        c += "p"
    elif opts.executability and push:
        c += "E"
    if opts.acls:
        c += "A"
    if opts.xattrs:
        c += "XX" if opts.xattrs > 1 else "X"
    if opts.recursive:
        c += "r"
    if opts.checksum:
        c += "c"
    if opts.cvs_exclude:
        c += "C"
    if opts.ignore_times:
        c += "I"
    if opts.relative:
        c += "R"
    if opts.one_file_system:
        c += "x"
    if opts.sparse:
        c += "S"
    if opts.compress and opts.compress_choice in (None, "zlib"):
        c += "z"
    c += "e." + capabilities
    args.append("-" + c)
    # Long options in options.c server_options' order (a remote parses them
    # in any order; -s sends them on the wire, where the order is visible).
    if opts.list_only:
        args.append("--list-only")
    if opts.xfer_dirs and not opts.recursive and opts.delete and push:
        args.append("--no-r")      # a remote that knows --no-r deletes with -d
    if opts.compress_level is not None and (opts.compress or opts.compress_choice):
        args.append(f"--compress-level={opts.compress_level}")
    if opts.devices and not opts.specials:
        args.append("--devices")
    elif opts.specials and not opts.devices:
        args.append("--specials")
    if push:
        # The server does not use our format, but must know whether to
        # itemize (options.c: --log-format, not --out-format).
        lf = _out_format_arg(opts)
        if lf:
            args.append(lf)
    if opts.msgs2stderr == 1:
        args.append("--msgs2stderr")
    elif opts.msgs2stderr == 0:
        args.append("--no-msgs2stderr")
    if opts.block_size:
        args.append(f"-B{opts.block_size}")
    if opts.timeout:
        args.append(f"--timeout={opts.timeout}")
    if opts.bwlimit:
        args.append(f"--bwlimit={opts.bwlimit}")
    if opts.backup_dir is not None:
        args += ["--backup-dir", _q(opts.backup_dir)]
    if opts.suffix is not None:
        args.append(f"--suffix={_q(opts.suffix)}")
    if opts.checksum_choice is not None:
        args.append(f"--checksum-choice={_q(opts.checksum_choice)}")
    if opts.compress_choice == "zlib" and opts.compress:
        args.append("--old-compress")
    elif opts.compress_choice == "zlibx":
        args.append("--new-compress")
    elif opts.compress_choice is not None:
        args.append(f"--compress-choice={_q(opts.compress_choice)}")
    if push:
        if opts.max_delete is not None:
            # It limits any deletion (--delete-missing-args, replaced
            # types), not only --delete's; 0 travels as -1 (read as 0).
            args.append(f"--max-delete={opts.max_delete or -1}")
        if opts.min_size is not None:
            args.append(f"--min-size={opts.min_size}")
        if opts.max_size is not None:
            args.append(f"--max-size={opts.max_size}")
        if opts.delete and opts.delete_mode:
            args.append("--delete-" + opts.delete_mode)
        elif opts.delete and not opts.delete_excluded:     # --delete-excluded says it
            args.append("--delete")
        if opts.delete_excluded:
            args.append("--delete-excluded")
        if opts.force:
            args.append("--force")
        if opts.am_root > 1:
            args.append("--super")
        if opts.size_only:
            args.append("--size-only")
        if opts.stats:
            args.append("--stats")
    elif opts.skip_compress is not None:
        args.append(f"--skip-compress={_q(opts.skip_compress)}")
    if opts.max_alloc_arg is not None and opts.max_alloc != _default_max_alloc():
        args.append(f"--max-alloc={_q(opts.max_alloc_arg)}")
    # --delete-missing-args needs both sides (the receiver accepts the
    # sender's mode-0 entries); --ignore-missing-args only a remote sender.
    if opts.delete_missing_args:
        args.append("--delete-missing-args")
    elif opts.ignore_missing_args and remote_is_sender:
        args.append("--ignore-missing-args")
    if opts.modify_window and push:
        args.append(f"--modify-window={opts.modify_window}")
    if opts.checksum_seed is not None:
        args.append(f"--checksum-seed={opts.checksum_seed}")
    if push:
        if opts.partial_dir is not None:
            if not (opts.delay_updates and opts.partial_dir == DELAY_UPDATES_DIR):
                args += ["--partial-dir", _q(opts.partial_dir)]
            if opts.delay_updates:
                args.append("--delay-updates")
        elif opts.partial:
            args.append("--partial")
    if opts.ignore_errors:
        args.append("--ignore-errors")
    if opts.copy_unsafe_links:
        args.append("--copy-unsafe-links")
    if opts.safe_links:
        args.append("--safe-links")
    if opts.numeric_ids:
        args.append("--numeric-ids")
    if push:
        if opts.usermap:
            args.append(f"--usermap={_q(opts.usermap)}")
        if opts.groupmap:
            args.append(f"--groupmap={_q(opts.groupmap)}")
        if opts.ignore_existing:
            args.append("--ignore-existing")
        if opts.existing:
            args.append("--existing")
        if opts.temp_dir is not None:
            args += ["--temp-dir", _q(opts.temp_dir)]
        if opts.fsync:
            args.append("--fsync")
        for kind, d in opts.alt_dests:
            args += [f"--{kind}-dest", _q(d)]
    if opts.append:
        args += ["--append"] * (2 if opts.append > 1 else 1)
    elif opts.inplace:
        args.append("--inplace")
    if opts.files_from is not None and (remote_is_sender or opts.files_from_remote is not None):
        if opts.files_from_remote is not None:      # read there
            args += ["--files-from", _q(opts.files_from_remote)]
            if opts.from0:
                args.append("--from0")
        else:                                       # forwarded on the wire
            args += ["--files-from=-", "--from0"]
        if not opts.relative:
            args.append("--no-relative")
    if opts.relative and not opts.implied_dirs:
        args.append("--no-implied-dirs")
    if opts.write_devices and push:
        args.append("--write-devices")
    if opts.remove_source_files:
        args.append("--remove-source-files")
    if opts.copy_devices and remote_is_sender:
        args.append("--copy-devices")
    if opts.preallocate and push:
        args.append("--preallocate")
    if opts.open_noatime and opts.atimes <= 1:
        args.append("--open-noatime")
    if opts.mkpath and push:
        args.append("--mkpath")
    # pysync-only: the write path goes to a receiving pysync; --drop-cache
    # to either side (a sending pysync reads without polluting the cache).
    if opts.direct_io and push:
        args.append("--direct-io")
    if opts.drop_cache:
        args.append("--drop-cache")
    # -M: the user's words for the remote side, last (as rsync sends them).
    args += [_qm(o) for o in opts.remote_options]
    return args


# What a remote shell would interpret in an option's value: each gets a
# backslash, wildcards too (options.c safe_arg for option arguments).
_SHELL_OR_WILD = frozenset("!#$&;|<>(){}\"' \t\n\r\\`*?[]")


def _shell_quote(value: str) -> str:
    return "".join("\\" + c if c in _SHELL_OR_WILD else c for c in value)


def _default_max_alloc() -> int:
    from .protocol.sums import DEFAULT_MAX_ALLOC
    return DEFAULT_MAX_ALLOC


def _out_format_arg(opts: Options) -> str | None:
    """What rsync tells a receiving server about the client's stdout format."""
    itemize_more = "--log-format=%i%I" if opts.itemize > 1 else "--log-format=%i"
    if opts.log_format is None:
        if opts.itemize:
            return itemize_more
        # --progress alone gives the client a "%n%L" stdout format too.
        return "--log-format=X" if opts.progress and not opts.verbose else None
    fmt = opts.log_format
    if _format_has(fmt, "i"):
        return itemize_more
    if _format_has(fmt, "o"):
        return "--log-format=%o"
    return None if opts.verbose else "--log-format=X"


def _format_has(fmt: str, letter: str) -> bool:
    from .logformat import LogFormat
    return LogFormat(fmt).has(letter)
