"""The command line: argv -> Options -> a session; the only place that
prints usage and turns errors into an exit status."""

from __future__ import annotations

import os
import re
import signal
import sys
import time

from . import __version__
from .errors import PysyncError, SyntaxUsageError, exit_text
from .options import Options, parse_args, server_args, help_text
from .protocol.constants import CLIENT_CAPABILITIES, PROTOCOL_VERSION, RERR_SYNTAX

__all__ = ["main", "parse_remote"]

VERSION_LINE = f"pysync  version {__version__}  protocol version {PROTOCOL_VERSION}"


def parse_remote(arg: str):
    """(user, host, path) for "[user@]host:path" / "[user@][v6]:path", else None.
    A colon after the first slash is part of a local path (rsync's rule)."""
    if arg.startswith("/") or arg.startswith("./"):
        return None
    m = re.match(r"^(?:([^@/:]+)@)?\[([^\]/]+)\]:(.*)$", arg, re.S)
    if m:
        return m.group(1), m.group(2), m.group(3)
    colon = arg.find(":")
    slash = arg.find("/")
    if colon <= 0 or (0 <= slash < colon):
        return None
    hostpart, path = arg[:colon], arg[colon + 1:]
    if path.startswith(":"):
        raise SyntaxUsageError("the rsync daemon protocol (host::module) is not supported yet")
    user, _, host = hostpart.rpartition("@")
    return user or None, host, path


def _error_line(code: int, role: str) -> str:
    return f"rsync error: {exit_text(code)} (code {code}) at pysync [{role}={__version__}]"


def run(argv, stdout=None, stderr=None) -> int:
    from .report import Report
    from .session import Log, run_client_session, run_server
    from .transport.base import FdStream
    from .transport.local import LocalChild
    from .transport.rsh import RshChild, remote_command

    opts = parse_args(argv)
    if opts.server:
        stream = FdStream(0, 1)
        sys.stdout = sys.stderr  # stdout is the protocol stream now
        return run_server(opts, stream)
    if opts.help:
        (stdout or sys.stdout).write(help_text(VERSION_LINE))
        return 0
    if opts.version:
        (stdout or sys.stdout).write(VERSION_LINE + "\n")
        return 0
    args = opts.args
    if len(args) < 2:
        raise SyntaxUsageError("pysync needs a source and a destination (listing is not supported yet); "
                               "see pysync --help")
    sources, dest = args[:-1], args[-1]
    remote_dest = parse_remote(dest)
    remote_srcs = [parse_remote(s) for s in sources]
    if remote_dest and any(remote_srcs):
        raise SyntaxUsageError("The source and destination cannot both be remote.")
    if any(remote_srcs) and not all(remote_srcs):
        raise SyntaxUsageError("all remote sources must be on the same host")
    log = Log(am_server=False, quiet=opts.quiet, err=stderr, out=stdout)
    start = time.monotonic()
    if remote_dest or any(remote_srcs):
        pull = not remote_dest
        user, host, _ = remote_srcs[0] if pull else remote_dest
        rpaths = [r[2] for r in remote_srcs] if pull else [remote_dest[2]]
        if opts.whole_file is None:
            opts.whole_file = False
        rsh = opts.rsh or os.environ.get("RSYNC_RSH") or "ssh"
        cmd = remote_command(opts.rsync_path or "rsync", server_args(opts, pull, CLIENT_CAPABILITIES), rpaths)
        try:
            stream = RshChild(rsh, user, host, cmd)
        except OSError as e:
            log.error(f"rsync: Failed to exec {rsh.split()[0]}: {e.strerror} ({e.errno})")
            return 14
        local_sources = None if pull else [s.encode("utf-8", "surrogateescape") for s in sources]
        local_dest = dest.encode("utf-8", "surrogateescape") if pull else None
        am_sender = not pull
    else:
        if opts.whole_file is None:
            opts.whole_file = True
        child_argv = server_args(opts, False, CLIENT_CAPABILITIES) + [".", dest]

        def child_main(stream):
            return run_server(parse_args(child_argv), stream)
        stream = LocalChild(child_main)
        local_sources = [s.encode("utf-8", "surrogateescape") for s in sources]
        local_dest = None
        am_sender = True
    report = Report(opts, out=stdout, err=stderr, sending=am_sender)
    code, sess = run_client_session(opts, stream, local_sources, local_dest, am_sender, report, log)
    remote = stream.wait()
    if remote == 255 and code in (0, 12):
        code = 255
    code = max(code, remote) if remote != 255 else code
    deleted = report.stats.deleted
    report.summary(sess.sent, sess.received, time.monotonic() - start, deleted)
    if code:
        log.error(_error_line(code, "sender" if am_sender else "receiver"))
    return code


class SignalExit(PysyncError):
    """SIGTERM/SIGHUP: unwind like an error so temp files are removed (exit 20)."""
    code = 20


def _on_signal(signum, frame):
    raise SignalExit(f"rsync error: received {signal.Signals(signum).name} -- exiting", 20)


def install_signal_handlers() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    install_signal_handlers()
    try:
        code = run(argv)
    except SyntaxUsageError as e:
        sys.stderr.write(f"pysync: {e}\n")
        sys.stderr.write(_error_line(RERR_SYNTAX, "client") + "\n")
        code = RERR_SYNTAX
    except PysyncError as e:
        sys.stderr.write(f"{e}\n")
        sys.stderr.write(_error_line(e.code, "client") + "\n")
        code = e.code
    except KeyboardInterrupt:
        sys.stderr.write(_error_line(20, "client") + "\n")
        code = 20
    sys.stdout.flush()
    return code
