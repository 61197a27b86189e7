"""Numbers of the rsync wire protocol, each with where its value comes from.

Values are facts of the protocol (rsync.h, errcode.h, io.h of rsync 3.x);
names follow rsync's so a reader can grep both code bases.
"""

# Protocol versions. We announce 32 (rsync >= 3.4.0; byte-identical to 31)
# and speak down to 31. Peers outside MIN..MAX are refused (rsync.h).
PROTOCOL_VERSION = 32
MIN_OUR_PROTOCOL = 31
MIN_PROTOCOL_VERSION = 20
MAX_PROTOCOL_VERSION = 40

# Compat flags, sent by the server as a varint after the version (compat.c).
CF_INC_RECURSE = 1 << 0
CF_SYMLINK_TIMES = 1 << 1
CF_SYMLINK_ICONV = 1 << 2
CF_SAFE_FLIST = 1 << 3
CF_AVOID_XATTR_OPTIM = 1 << 4
CF_CHKSUM_SEED_FIX = 1 << 5
CF_INPLACE_PARTIAL_DIR = 1 << 6
CF_VARINT_FLIST_FLAGS = 1 << 7
CF_ID0_NAMES = 1 << 8

# Capability letters of the client's "-e.<letters>" and the compat flag each
# one turns on at the server (compat.c, options.c).  'i' (inc-recurse) and
# 's' (symlink iconv) are deliberately not honoured by pysync.
CAPABILITY_FLAGS = {
    "f": CF_SAFE_FLIST,
    "x": CF_AVOID_XATTR_OPTIM,
    "C": CF_CHKSUM_SEED_FIX,
    "I": CF_INPLACE_PARTIAL_DIR,
    "v": CF_VARINT_FLIST_FLAGS,
    "u": CF_ID0_NAMES,
}
# What a pysync client announces: no 'i' (we never do incremental
# recursion), no 's' (no --iconv).
CLIENT_CAPABILITIES = "LfxCIvu"

# Multiplexing (io.c): header = ((MPLEX_BASE + tag) << 24) | length.
MPLEX_BASE = 7
MAX_FRAME_LEN = 0xFFFFFF
MSG_DATA = 0
MSG_ERROR_XFER = 1
MSG_INFO = 2
MSG_ERROR = 3
MSG_WARNING = 4
MSG_ERROR_SOCKET = 5
MSG_LOG = 6
MSG_CLIENT = 7
MSG_ERROR_UTF8 = 8
MSG_REDO = 9
MSG_STATS = 10
MSG_IO_ERROR = 22
MSG_IO_TIMEOUT = 33
MSG_NOOP = 42
MSG_ERROR_EXIT = 86
MSG_SUCCESS = 100
MSG_DELETED = 101
MSG_NO_SEND = 102

# Tags a peer may send on the socket, with the exact payload length when it
# is fixed (None = text or variable).  Everything else is "unexpected tag".
WIRE_TAGS = {
    MSG_DATA: None,
    MSG_ERROR_XFER: None,
    MSG_INFO: None,
    MSG_ERROR: None,
    MSG_WARNING: None,
    MSG_IO_ERROR: 4,
    MSG_IO_TIMEOUT: 4,
    MSG_NOOP: 0,
    MSG_ERROR_EXIT: None,  # 0 or 4 bytes
    MSG_SUCCESS: 4,
    MSG_DELETED: None,
    MSG_NO_SEND: 4,
}
TEXT_TAGS = (MSG_ERROR_XFER, MSG_INFO, MSG_ERROR, MSG_WARNING, MSG_DELETED)
# Text messages must fit rsync's BIGPATHBUFLEN (5120 on Linux).
MAX_TEXT_MSG = 5120

# NDX values (rsync.h).
NDX_DONE = -1
NDX_FLIST_EOF = -2
NDX_DEL_STATS = -3
NDX_FLIST_OFFSET = -101

# File-list transmit flags (rsync.h XMIT_*).
XMIT_TOP_DIR = 1 << 0
XMIT_SAME_MODE = 1 << 1
XMIT_EXTENDED_FLAGS = 1 << 2
XMIT_SAME_UID = 1 << 3
XMIT_SAME_GID = 1 << 4
XMIT_SAME_NAME = 1 << 5
XMIT_LONG_NAME = 1 << 6
XMIT_SAME_TIME = 1 << 7
XMIT_SAME_RDEV_MAJOR = 1 << 8
XMIT_NO_CONTENT_DIR = 1 << 8
XMIT_HLINKED = 1 << 9
XMIT_USER_NAME_FOLLOWS = 1 << 10
XMIT_GROUP_NAME_FOLLOWS = 1 << 11
XMIT_HLINK_FIRST = 1 << 12
XMIT_IO_ERROR_ENDLIST = 1 << 12
XMIT_MOD_NSEC = 1 << 13
XMIT_SAME_ATIME = 1 << 14
XMIT_CRTIME_EQ_MTIME = 1 << 17

# Item flags (rsync.h ITEM_*), a 16-bit value after each transfer ndx.
ITEM_REPORT_ATIME = 1 << 0
ITEM_REPORT_CHANGE = 1 << 1
ITEM_REPORT_SIZE = 1 << 2
ITEM_REPORT_TIMEFAIL = 1 << 2  # symlinks only
ITEM_REPORT_TIME = 1 << 3
ITEM_REPORT_PERMS = 1 << 4
ITEM_REPORT_OWNER = 1 << 5
ITEM_REPORT_GROUP = 1 << 6
ITEM_REPORT_ACL = 1 << 7
ITEM_REPORT_XATTR = 1 << 8
ITEM_REPORT_CRTIME = 1 << 10
ITEM_BASIS_TYPE_FOLLOWS = 1 << 11
ITEM_XNAME_FOLLOWS = 1 << 12
ITEM_IS_NEW = 1 << 13
ITEM_LOCAL_CHANGE = 1 << 14
ITEM_TRANSFER = 1 << 15
# Bits that are only for local logging and never sent (rsync.h ITEM_MISSING_DATA,
# ITEM_DELETED, ITEM_MATCHED).
ITEM_MISSING_DATA = 1 << 16
ITEM_DELETED = 1 << 17
ITEM_MATCHED = 1 << 18
SIGNIFICANT_ITEM_FLAGS = ~(ITEM_BASIS_TYPE_FOLLOWS | ITEM_XNAME_FOLLOWS | ITEM_LOCAL_CHANGE) & 0xFFFF

# Basis types after ITEM_BASIS_TYPE_FOLLOWS (rsync.h FNAMECMP_*).
FNAMECMP_FNAME = 0x80
FNAMECMP_PARTIAL_DIR = 0x81
FNAMECMP_BACKUP = 0x82
FNAMECMP_FUZZY = 0x83

# Transfer limits (rsync.h).
CHUNK_SIZE = 32 * 1024  # largest literal record we send
MAX_DATA_COUNT = 16383  # largest compressed data record
BLOCK_SIZE = 700
MAX_BLOCK_SIZE = 1 << 17
BLOCKSUM_BIAS = 10
SUM_LENGTH = 16
SHORT_SUM_LENGTH = 2
MAXPATHLEN = 4096  # Linux PATH_MAX; rsync rejects longer names
MAX_WIRE_NSEC = 999_999_999

# I/O error bits (rsync.h IOERR_*), carried by the end of the file list
# and MSG_IO_ERROR.
IOERR_GENERAL = 1 << 0
IOERR_VANISHED = 1 << 1
IOERR_DEL_LIMIT = 1 << 2
IOERR_MASK = IOERR_GENERAL | IOERR_VANISHED | IOERR_DEL_LIMIT

# Compressed token stream flag bytes (token.c).
END_FLAG = 0x00
TOKEN_LONG = 0x20
TOKENRUN_LONG = 0x21
DEFLATED_DATA = 0x40
TOKEN_REL = 0x80
TOKENRUN_REL = 0xC0

# Default negotiation lists, strongest first (compat.c).  A client leaves
# out "none"; a server appends it.
CHECKSUM_NAMES = ("xxh128", "xxh3", "xxh64", "md5", "md4")
COMPRESS_NAMES = ("zstd", "zlibx", "zlib")

# Exit codes (errcode.h).
RERR_OK = 0
RERR_SYNTAX = 1
RERR_PROTOCOL = 2
RERR_FILESELECT = 3
RERR_UNSUPPORTED = 4
RERR_STARTCLIENT = 5
RERR_SOCKETIO = 10
RERR_FILEIO = 11
RERR_STREAMIO = 12
RERR_MESSAGEIO = 13
RERR_IPC = 14
RERR_CRASHED = 15
RERR_TERMINATED = 16
RERR_SIGNAL1 = 19
RERR_SIGNAL = 20
RERR_WAITCHILD = 21
RERR_MALLOC = 22
RERR_PARTIAL = 23
RERR_VANISHED = 24
RERR_DEL_LIMIT = 25
RERR_TIMEOUT = 30
RERR_CONTIMEOUT = 35
RERR_CMD_FAILED = 124
RERR_CMD_KILLED = 125
RERR_CMD_RUN = 126
RERR_CMD_NOTFOUND = 127

# How rsync names each code in "rsync error: <text> (code N)" (log.c).
EXIT_TEXT = {
    RERR_SYNTAX: "syntax or usage error",
    RERR_PROTOCOL: "protocol incompatibility",
    RERR_FILESELECT: "errors selecting input/output files, dirs",
    RERR_UNSUPPORTED: "requested action not supported",
    RERR_STARTCLIENT: "error starting client-server protocol",
    RERR_SOCKETIO: "error in socket IO",
    RERR_FILEIO: "error in file IO",
    RERR_STREAMIO: "error in rsync protocol data stream",
    RERR_MESSAGEIO: "errors with program diagnostics",
    RERR_IPC: "error in IPC code",
    RERR_CRASHED: "sibling process crashed",
    RERR_TERMINATED: "sibling process terminated abnormally",
    RERR_SIGNAL1: "received SIGUSR1",
    RERR_SIGNAL: "received SIGINT, SIGTERM, or SIGHUP",
    RERR_WAITCHILD: "waitpid() failed",
    RERR_MALLOC: "error allocating core memory buffers",
    RERR_PARTIAL: "some files/attrs were not transferred (see previous errors)",
    RERR_VANISHED: "some files vanished before they could be transferred",
    RERR_DEL_LIMIT: "the --max-delete limit stopped deletions",
    RERR_TIMEOUT: "timeout in data send/receive",
    RERR_CONTIMEOUT: "timeout waiting for daemon connection",
    RERR_CMD_FAILED: "remote shell failed",
    RERR_CMD_KILLED: "remote shell killed",
    RERR_CMD_RUN: "remote command could not be run",
    RERR_CMD_NOTFOUND: "remote command not found",
}

#: --munge-links: what a receiver puts before every symlink's target (so
#: that none resolves) and a sender takes off again (rsync's SYMLINK_PREFIX).
MUNGE_PREFIX = b"/rsyncd-munged/"
