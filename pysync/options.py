"""rsync's command line as a table (popt semantics: bundled short flags,
``--opt=value`` / ``--opt value`` / ``-Bvalue``, ``--no-OPT`` for flags).

One table drives the parser, ``--help`` and the server command line we
send to the remote side (``server_cmd.server_args``), so an option exists in all
three or in none.  Only options pysync implements are in the table: an
unknown option is a syntax error (exit 1), never silently ignored.
"""

from __future__ import annotations


from .errors import SyntaxUsageError, UnsupportedError
from .record import field, record
from .sizes import bwlimit_kib

__all__ = ["Options", "parse_args", "help_text", "OPTION_TABLE"]


@record
class Options:
    verbose: int = 0
    quiet: bool = False
    recursive: bool = False
    dirs: bool | None = None           # -d/--dirs as given (None: not given)
    xfer_dirs: bool = False            # directories are sent (-r, -d, --files-from, listing)
    links: bool = False
    copy_links: bool = False           # -L
    copy_dirlinks: bool = False        # -k
    keep_dirlinks: bool = False        # -K: the receiver follows its own symlinks to directories
    fuzzy: int = 0                     # -y: a similar file as basis (-yy: also in the alt dirs)
    copy_unsafe_links: bool = False
    safe_links: bool = False
    perms: bool = False
    executability: bool = False        # -E: without -p, only the execute bits follow the sender
    times: bool = False
    atimes: int = 0                    # -U (twice: also --open-noatime)
    open_noatime: bool = False         # the sender opens files with O_NOATIME
    crtimes: bool = False              # -N: refused, as a Linux rsync does
    omit_dir_times: int = 0            # -O (-1: implied by -b without --backup-dir)
    omit_link_times: bool = False      # -J
    group: bool = False
    owner: bool = False
    devices: bool = False
    copy_devices: bool = False         # the sender sends a device's contents as a regular file
    write_devices: bool = False        # the receiver writes into an existing device (implies --inplace)
    specials: bool = False
    hard_links: bool = False
    acls: bool = False                 # -A (implies -p)
    xattrs: int = 0                    # -X (twice: also rsync's own user.rsync.%* names)
    numeric_ids: bool = False
    # options.c am_root: 1 as root, else 0 (settled by finish_options);
    # --super 2, --no-super 0, --fake-super -1.
    am_root: int = 0
    dry_run: bool = False
    whole_file: bool | None = None     # None: on for local copies, off for remote
    checksum: bool = False
    ignore_times: bool = False
    size_only: bool = False
    modify_window: int = 0
    one_file_system: bool = False
    compress: bool = False
    compress_choice: str | None = None
    compress_level: int | None = None
    skip_compress: str | None = None   # --skip-compress (accepted and passed on, as 3.2.7)
    max_alloc: int | None = None       # --max-alloc in bytes (0: no limit; None: rsync's 1 GiB)
    max_alloc_arg: str | None = None   # ... as given (passed on as given)
    checksum_choice: str | None = None
    checksum_seed: int | None = None
    block_size: int = 0
    delete: bool = False
    delete_mode: str | None = None     # before / during / delay / after
    delete_excluded: bool = False
    max_delete: int | None = None
    force: bool = False
    ignore_errors: bool = False
    prune_empty_dirs: bool = False     # -m
    mkpath: bool = False
    sparse: bool = False               # -S
    usermap: str | None = None
    groupmap: str | None = None
    itemize: int = 0
    stats: bool = False
    progress: bool = False
    info: str | None = None
    debug: str | None = None           # --debug flags (validated; see DEBUG_WORDS)
    msgs2stderr: int = 2               # --stderr: 2 errors, 1 all, 0 client (options.c msgs2stderr)
    outbuf: str | None = None          # --outbuf: N, L or B (stdout buffering, client only)
    eight_bit: bool = False            # -8: high-bit bytes in names printed as they are
    stop_at: float | None = None       # --stop-after / --stop-at: the run ends then (exit 30)
    progress2: bool = False
    human_readable: int = 1
    rsh: str | None = None
    rsync_path: str | None = None
    remote_options: list = field(default_factory=list)   # -M: for the remote side only
    old_args: int = -1                 # --old-args count (-1: not given, $RSYNC_OLD_ARGS decides)
    blocking_io: bool | None = None    # --blocking-io (pysync's streams always block)
    address_family: int = 0            # -4 / -6: for an ssh remote shell or the built-in SSH client
    no_motd: bool = False              # --no-motd (daemon only)
    early_input: str | None = None     # --early-input (daemon only)
    copy_as: str | None = None         # --copy-as=USER[:GROUP]
    protocol: int | None = None
    filters: list = field(default_factory=list)   # ("-"/"+"/rule text) in order
    cvs_exclude: bool = False
    relative: bool | None = None     # None: on with --files-from, else off
    files_from: str | None = None
    files_from_remote: str | None = None   # the path of a host:path / :path list (client)
    trust_sender: bool = False       # a pull takes names it did not ask for (client only)
    from0: bool = False
    explicit_recursive: bool = False
    list_only: bool = False
    list_implied: bool = False       # a lone source argument: list, as --list-only
    implied_dirs: bool = True
    filter_list: object = None      # the parsed rules (merge files read once, at parse time)
    filter_F: int = 0
    fsync: bool = False
    preallocate: bool = False
    direct_io: bool = False
    drop_cache: bool = False
    timeout: int = 0
    contimeout: int = 0
    update: bool = False
    ignore_existing: bool = False
    existing: bool = False
    ignore_missing_args: bool = False  # a missing source argument is skipped silently
    delete_missing_args: bool = False  # ... and its destination is deleted
    max_size: int | None = None
    min_size: int | None = None
    backup: bool = False
    backup_dir: str | None = None
    suffix: str | None = None
    chmod: list = field(default_factory=list)      # --chmod items (engine/chmod.py), client only
    alt_dests: list = field(default_factory=list)   # (kind, dir): link / compare / copy
    partial: bool = False
    partial_dir: str | None = None
    temp_dir: str | None = None        # -T: temp files there (relative: to the destination)
    log_format: str | None = None      # --out-format (alias --log-format)
    log_file: str | None = None
    log_file_format: str | None = None
    bwlimit: int = 0                   # KiB/s, 0 = no limit
    inplace: bool = False
    append: int = 0                    # 1 --append, 2 --append-verify
    delay_updates: bool = False
    remove_source_files: bool = False
    # server side only
    server: bool = False
    protect_args: bool | None = None   # -s: long options and paths on the wire (None: $RSYNC_PROTECT_ARGS)
    sender: bool = False
    capabilities: str | None = None
    local_server: bool = False          # the child of a pysync local copy
    version: bool = False
    help: bool = False
    args: list = field(default_factory=list)


def _chmod(value: str) -> list:
    from .engine.chmod import ChmodError, parse_chmod
    try:
        return parse_chmod(value)
    except ChmodError:
        raise SyntaxUsageError(f"Invalid argument passed to --chmod ({value})") from None


def _int(v: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise SyntaxUsageError(f"invalid numeric value: {v}") from None


def _info(v: str) -> str:
    """--info: pysync knows the progress levels; other flags are refused by name."""
    for flag in v.split(","):
        if flag.strip().lower() not in ("progress0", "progress1", "progress2", "progress"):
            raise SyntaxUsageError(f"--info={flag}: pysync supports only progress0, progress1, progress2")
    return v.lower()


def _size(v: str) -> int:
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    s = v.strip().lower().rstrip("b")
    if s and s[-1] in mult:
        return _int(s[:-1]) * mult[s[-1]]
    return _int(s)


def _late(name: str):
    """A value parser from optvalues.py, loaded when its option is used."""
    def parse(v):
        from . import optvalues
        return getattr(optvalues, name)(v)
    return parse


# Each row: (long names, short letter or None, kind, dest, value, help, hidden)
# kind: flag (True/--no-), count, value (takes an argument, with a type),
# const (sets dest to value), alias (expands to other options), filter.
OPTION_TABLE = [
    (("verbose",), "v", "count", "verbose", None, "increase verbosity", False),
    (("quiet",), "q", "flag", "quiet", None, "suppress non-error messages", False),
    (("secluded-args", "protect-args"), "s", "flag", "protect_args", None, "use the protocol to safely send the args", False),
    (("archive",), "a", "alias", None, "rlptgoD", "archive mode: -rlptgoD", False),
    (("recursive",), "r", "flag", "recursive", None, "recurse into directories", False),
    (("dirs",), "d", "flag", "dirs", None, "transfer directories without recursing", False),
    (("links",), "l", "flag", "links", None, "copy symlinks as symlinks", False),
    (("copy-links",), "L", "flag", "copy_links", None, "transform symlink into referent file/dir", False),
    (("copy-unsafe-links",), None, "flag", "copy_unsafe_links", None, "only \"unsafe\" symlinks are transformed", False),
    (("safe-links",), None, "flag", "safe_links", None, "ignore symlinks that point outside the tree", False),
    (("copy-dirlinks",), "k", "flag", "copy_dirlinks", None, "transform symlink to dir into referent dir", False),
    (("keep-dirlinks",), "K", "flag", "keep_dirlinks", None, "treat symlinked dir on receiver as dir", False),
    (("perms",), "p", "flag", "perms", None, "preserve permissions", False),
    (("executability",), "E", "flag", "executability", None, "preserve executability", False),
    (("times",), "t", "flag", "times", None, "preserve modification times", False),
    (("atimes",), "U", "count", "atimes", None, "preserve access (use) times", False),
    (("open-noatime",), None, "flag", "open_noatime", None, "avoid changing the atime on opened files", False),
    # Refused as a Linux rsync refuses it, so not offered in --help.
    (("crtimes",), "N", "flag", "crtimes", None, "preserve create times (newness)", True),
    (("group",), "g", "flag", "group", None, "preserve group", False),
    (("owner",), "o", "flag", "owner", None, "preserve owner (super-user only)", False),
    ((), "D", "alias", None, ("devices", "specials"), "same as --devices --specials", False),
    (("omit-dir-times",), "O", "flag", "omit_dir_times", None, "omit directories from --times", False),
    (("omit-link-times",), "J", "flag", "omit_link_times", None, "omit symlinks from --times", False),
    (("devices",), None, "flag", "devices", None, "preserve device files (super-user only)", False),
    (("copy-devices",), None, "flag", "copy_devices", None, "copy device contents as a regular file", False),
    (("write-devices",), None, "flag", "write_devices", None, "write to devices as files (implies --inplace)", False),
    (("specials",), None, "flag", "specials", None, "preserve special files", False),
    (("super",), None, "const", "am_root", 2, "receiver attempts super-user activities", False),
    (("no-super",), None, "const", "am_root", 0, "", True),
    (("fake-super",), None, "const", "am_root", -1, "store/recover privileged attrs using xattrs", False),
    (("hard-links",), "H", "flag", "hard_links", None, "preserve hard links", False),
    (("acls",), "A", "flag", "acls", None, "preserve ACLs (implies --perms)", False),
    (("xattrs",), "X", "count", "xattrs", None, "preserve extended attributes", False),
    (("usermap",), None, "value", "usermap", str, "custom username mapping", False),
    (("groupmap",), None, "value", "groupmap", str, "custom groupname mapping", False),
    (("chown",), None, "value", "chown", str, "simple username/groupname mapping", False),
    (("numeric-ids",), None, "flag", "numeric_ids", None, "don't map uid/gid values by user/group name", False),
    (("dry-run",), "n", "flag", "dry_run", None, "perform a trial run with no changes made", False),
    (("whole-file",), "W", "flag", "whole_file", None, "copy files whole (without delta-xfer algorithm)", False),
    (("checksum",), "c", "flag", "checksum", None, "skip based on checksum, not mod-time & size", False),
    (("chmod",), None, "append", "chmod", _chmod, "affect file and/or directory permissions", False),
    (("ignore-times",), "I", "flag", "ignore_times", None, "don't skip files that match size and time", False),
    (("size-only",), None, "flag", "size_only", None, "skip files that match in size", False),
    (("modify-window",), "@", "value", "modify_window", _int, "set the accuracy for mod-time comparisons", False),
    (("one-file-system",), "x", "flag", "one_file_system", None, "don't cross filesystem boundaries", False),
    (("block-size",), "B", "value", "block_size", _size, "force a fixed checksum block-size", False),
    (("compress",), "z", "flag", "compress", None, "compress file data during the transfer", False),
    (("compress-choice", "zc"), None, "value", "compress_choice", str, "choose the compression algorithm (zstd, zlibx, zlib, none)", False),
    (("compress-level", "zl"), None, "value", "compress_level", _int, "explicitly set compression level", False),
    (("skip-compress",), None, "value", "skip_compress", str, "skip compressing files with suffix in LIST", False),
    (("old-compress",), None, "const", "compress_choice", "zlib", "use old-style compression (zlib)", True),
    (("new-compress",), None, "const", "compress_choice", "zlibx", "use new-style compression (zlibx)", True),
    (("checksum-choice", "cc"), None, "value", "checksum_choice", str, "choose the checksum algorithm (xxh128, xxh3, xxh64, md5, md4)", False),
    (("checksum-seed",), None, "value", "checksum_seed", _int, "set block/file checksum seed (advanced)", False),
    (("delete",), None, "flag", "delete", None, "delete extraneous files from dest dirs", False),
    (("delete-before",), None, "const", "delete_mode", "before", "receiver deletes before transfer, not during", False),
    (("delete-during", "del"), None, "const", "delete_mode", "during", "receiver deletes during the transfer", False),
    (("delete-delay",), None, "const", "delete_mode", "delay", "find deletions during, delete after", False),
    (("delete-after",), None, "const", "delete_mode", "after", "receiver deletes after transfer, not during", False),
    (("delete-excluded",), None, "flag", "delete_excluded", None, "also delete excluded files from dest dirs", False),
    (("max-delete",), None, "value", "max_delete", _int, "don't delete more than NUM files", False),
    (("force",), None, "flag", "force", None, "force deletion of directories even if not empty", False),
    (("prune-empty-dirs",), "m", "flag", "prune_empty_dirs", None, "prune empty directory chains from file-list", False),
    (("ignore-errors",), None, "flag", "ignore_errors", None, "delete even if there are I/O errors", False),
    (("update",), "u", "flag", "update", None, "skip files that are newer on the receiver", False),
    (("ignore-existing",), None, "flag", "ignore_existing", None, "skip updating files that exist on receiver", False),
    (("existing", "ignore-non-existing"), None, "flag", "existing", None, "skip creating new files on receiver", False),
    (("ignore-missing-args",), None, "flag", "ignore_missing_args", None, "ignore missing source args without error", False),
    (("delete-missing-args",), None, "flag", "delete_missing_args", None, "delete missing source args from destination", False),
    (("max-size",), None, "value", "max_size", _size, "don't transfer any file larger than SIZE", False),
    (("min-size",), None, "value", "min_size", _size, "don't transfer any file smaller than SIZE", False),
    (("max-alloc",), None, "value", "max_alloc_arg", str, "change a limit relating to memory alloc", False),
    (("backup",), "b", "flag", "backup", None, "make backups (see --suffix & --backup-dir)", False),
    (("backup-dir",), None, "value", "backup_dir", str, "make backups into hierarchy based in DIR", False),
    (("suffix",), None, "value", "suffix", str, "backup suffix (default ~ w/o --backup-dir)", False),
    (("link-dest",), None, "altdest", "alt_dests", "link", "hardlink to files in DIR when unchanged", False),
    (("compare-dest",), None, "altdest", "alt_dests", "compare", "also compare destination files relative to DIR", False),
    (("copy-dest",), None, "altdest", "alt_dests", "copy", "... and include copies of unchanged files", False),
    (("partial",), None, "flag", "partial", None, "keep partially transferred files", False),
    (("partial-dir",), None, "value", "partial_dir", str, "put a partially transferred file into DIR", False),
    (("temp-dir",), "T", "value", "temp_dir", str, "create temporary files in directory DIR", False),
    (("fuzzy",), "y", "count", "fuzzy", None, "find similar file for basis if no dest file", False),
    (("sparse",), "S", "flag", "sparse", None, "turn sequences of nulls into sparse blocks", False),
    (("inplace",), None, "flag", "inplace", None, "update destination files in-place", False),
    (("append",), None, "count", "append", None, "append data onto shorter files", False),
    (("append-verify",), None, "const", "append", 2, "--append w/old data in file checksum", False),
    (("delay-updates",), None, "flag", "delay_updates", None, "put all updated files into place at end", False),
    (("mkpath",), None, "flag", "mkpath", None, "create destination's missing path components", False),
    (("remove-source-files",), None, "flag", "remove_source_files", None, "sender removes synchronized files (non-dir)", False),
    (("relative",), "R", "flag", "relative", None, "use relative path names", False),
    (("files-from",), None, "value", "files_from", str, "read list of source-file names from FILE", False),
    (("from0",), "0", "flag", "from0", None, "all *-from/filter files are delimited by 0s", False),
    (("trust-sender",), None, "flag", "trust_sender", None, "trust the remote sender's file list", False),
    (("implied-dirs", "i-d"), None, "flag", "implied_dirs", None, "send implied directories with --relative", True),
    (("no-implied-dirs",), None, "const", "implied_dirs", False, "don't send implied dirs with --relative", False),
    (("cvs-exclude",), "C", "flag", "cvs_exclude", None, "auto-ignore files in the same way CVS does", False),
    ((), "F", "fshort", "filter_F", None, "same as --filter='dir-merge /.rsync-filter'; repeated: --filter='- .rsync-filter'", False),
    (("exclude",), None, "filter", "filters", "- ", "exclude files matching PATTERN", False),
    (("include",), None, "filter", "filters", "+ ", "don't exclude files matching PATTERN", False),
    (("filter",), "f", "filter", "filters", "", "add a file-filtering RULE", False),
    (("exclude-from",), None, "filter_file", "filters", "- ", "read exclude patterns from FILE", False),
    (("include-from",), None, "filter_file", "filters", "+ ", "read include patterns from FILE", False),
    (("timeout",), None, "value", "timeout", _int, "set I/O timeout in seconds", False),
    (("bwlimit",), None, "value", "bwlimit", bwlimit_kib, "limit socket I/O bandwidth", False),
    (("no-bwlimit",), None, "const", "bwlimit", 0, "no limit on socket I/O bandwidth", True),
    (("contimeout",), None, "value", "contimeout", _int, "set daemon connection timeout in seconds", False),
    (("stop-after", "time-limit"), None, "value", "stop_at", _late("stop_after"), "Stop rsync after MINS minutes have elapsed", False),
    (("stop-at",), None, "value", "stop_at", _late("stop_at"), "Stop rsync at the specified point in time", False),
    (("list-only",), None, "flag", "list_only", None, "list the files instead of copying them", False),
    (("itemize-changes",), "i", "count", "itemize", None, "output a change-summary for all updates", False),
    (("stats",), None, "flag", "stats", None, "give some file-transfer stats", False),
    (("progress",), None, "flag", "progress", None, "show progress during transfer", False),
    ((), "P", "alias", None, ("partial", "progress"), "same as --partial --progress", False),
    (("info",), None, "value", "info", _info, "fine-grained informational verbosity (progress0/1/2)", False),
    (("debug",), None, "value", "debug", _late("debug_flags"), "fine-grained debug verbosity", False),
    (("stderr",), None, "value", "msgs2stderr", _late("stderr_mode"), "change stderr output mode (default: errors)", False),
    (("msgs2stderr",), None, "const", "msgs2stderr", 1, "", True),
    (("no-msgs2stderr",), None, "const", "msgs2stderr", 0, "", True),
    (("outbuf",), None, "value", "outbuf", _late("outbuf_mode"), "set out buffering to None, Line, or Block", False),
    (("8-bit-output",), "8", "flag", "eight_bit", None, "leave high-bit chars unescaped in output", False),
    (("human-readable",), "h", "count", "human_readable", None, "output numbers in a human-readable format", True),
    (("fsync",), None, "flag", "fsync", None, "fsync every written file", False),
    (("preallocate",), None, "flag", "preallocate", None, "allocate dest files before writing them", False),
    (("direct-io",), None, "flag", "direct_io", None, "write files with O_DIRECT, bypassing the page cache (pysync)", False),
    (("drop-cache",), None, "flag", "drop_cache", None, "keep the transfer out of the page cache on both sides (pysync)", False),
    (("rsh",), "e", "value", "rsh", str, "specify the remote shell to use", False),
    (("rsync-path",), None, "value", "rsync_path", str, "specify the rsync to run on remote machine", False),
    (("remote-option",), "M", "append", "remote_options", _late("remote_option"), "send OPTION to the remote side only", False),
    (("old-args",), None, "count", "old_args", None, "disable the modern arg-protection idiom", False),
    (("blocking-io",), None, "flag", "blocking_io", None, "use blocking I/O for the remote shell", False),
    (("ipv4",), "4", "const", "address_family", 4, "prefer IPv4", False),
    (("ipv6",), "6", "const", "address_family", 6, "prefer IPv6", False),
    (("no-motd",), None, "flag", "no_motd", None, "suppress daemon-mode MOTD", False),
    (("early-input",), None, "value", "early_input", str, "use FILE for daemon's early exec input", False),
    (("copy-as",), None, "value", "copy_as", str, "specify user & optional group for the copy", False),
    (("protocol",), None, "value", "protocol", _int, "force an older protocol version to be used", False),
    (("out-format", "log-format"), None, "value", "log_format", str, "output updates using the specified FORMAT", False),
    (("log-file",), None, "value", "log_file", str, "log what we're doing to the specified FILE", False),
    (("log-file-format",), None, "value", "log_file_format", str, "log updates using the specified FMT", False),
    (("version",), "V", "flag", "version", None, "print the version + other info and exit", False),
    (("help",), None, "flag", "help", None, "show this help", False),
    (("server",), None, "flag", "server", None, "", True),
    (("sender",), None, "flag", "sender", None, "", True),
    (("local-server",), None, "flag", "local_server", None, "", True),
]

_LONG = {}
_SHORT = {}
for _row in OPTION_TABLE:
    for _n in _row[0]:
        _LONG[_n] = _row
    if _row[1]:
        _SHORT[_row[1]] = _row


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
