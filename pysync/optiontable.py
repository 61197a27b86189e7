"""The table of the options pysync implements, and the record they fill.

Each row of ``OPTION_TABLE`` names an option (long names, short letter),
how it takes its value, where the value goes in ``Options`` and its
``--help`` line; pysync/options.py parses a command line with it, and
server_cmd.py rebuilds the remote side's command line from the same rows.
A value that needs more than a conversion is parsed by optvalues.py, loaded
when its option is used.
"""

from __future__ import annotations

from .errors import SyntaxUsageError
from .record import field, record
from .sizes import bwlimit_kib

__all__ = ["Options", "OPTION_TABLE", "LONG", "SHORT"]


@record
class Options:
    verbose: int = 0
    quiet: bool = False
    recursive: bool = False
    dirs: bool | None = None           # -d/--dirs as given (None: not given)
    old_dirs: bool = False              # --old-dirs: -r and "- /*/*"
    xfer_dirs: bool = False            # directories are sent (-r, -d, --files-from, listing)
    links: bool = False
    copy_links: bool = False           # -L
    copy_dirlinks: bool = False        # -k
    keep_dirlinks: bool = False        # -K: the receiver follows its own symlinks to directories
    fuzzy: int = 0                     # -y: a similar file as basis (-yy: also in the alt dirs)
    copy_unsafe_links: bool = False
    safe_links: bool = False
    munge_links: bool = False           # this side only (never sent)
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
    (("old-dirs", "old-d"), None, "const", "old_dirs", True, "works like --dirs when talking to old rsync",
     False),
    (("links",), "l", "flag", "links", None, "copy symlinks as symlinks", False),
    (("copy-links",), "L", "flag", "copy_links", None, "transform symlink into referent file/dir", False),
    (("copy-unsafe-links",), None, "flag", "copy_unsafe_links", None, "only \"unsafe\" symlinks are transformed", False),
    (("safe-links",), None, "flag", "safe_links", None, "ignore symlinks that point outside the tree", False),
    (("munge-links",), None, "flag", "munge_links", None, "munge symlinks to make them safe & unusable", False),
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

LONG = {}     # long name -> row
SHORT = {}    # letter -> row
for _row in OPTION_TABLE:
    for _n in _row[0]:
        LONG[_n] = _row
    if _row[1]:
        SHORT[_row[1]] = _row
