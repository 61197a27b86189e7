"""The client side of a run: which side is remote, which transport, the
session, the remote's exit status, and the summary.  Shared by the command
line (cli.py) and the Python API (api.py)."""

from __future__ import annotations

import os
import sys
import threading
import time

from .errors import SyntaxUsageError
from .options import Options, parse_args, pysync_only, server_args
from .protocol.constants import CLIENT_CAPABILITIES

__all__ = ["Outcome", "run_transfer", "parse_remote"]


class Outcome:
    """What a run ended with: exit code, the report (stats, per-file
    records) and the byte counts of the connection."""

    def __init__(self, code: int, report, sent: int, received: int, elapsed: float):
        self.code = code
        self.report = report
        self.sent = sent
        self.received = received
        self.elapsed = elapsed


def parse_remote(arg: str):
    """(user, host, path) for "[user@]host:path" / "[user@][v6]:path", else None.
    A colon after the first slash is part of a local path (rsync's rule)."""
    import re
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


def _list_only(opts: Options, sources, stdout, stderr) -> Outcome:
    from .listing import list_sources
    from .report import Report
    from .session import Log
    if any(parse_remote(s) for s in sources):
        raise SyntaxUsageError("listing a remote source is not supported yet (--list-only is local only)")
    if opts.files_from is not None:
        sources = files_from_sources(opts, sources[0]) if len(sources) == 1 else sources
    log = Log(am_server=False, quiet=opts.quiet, err=stderr, out=stdout)
    start = time.monotonic()
    code = list_sources(opts, sources, log, stdout or sys.stdout)
    report = Report(opts, out=stdout, err=stderr, sending=True)
    return Outcome(code, report, 0, 0, time.monotonic() - start)


def files_from_sources(opts: Options, base: str) -> list:
    """--files-from: the names (one per line, or NUL-separated with
    --from0; "-" is stdin) relative to the source directory; with -R (the
    default here) anchored there by "/./"."""
    try:
        if opts.files_from == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(opts.files_from, "rb") as f:
                data = f.read()
    except OSError as e:
        from .errors import PysyncError
        raise PysyncError(f"rsync: [client] failed to open files-from file {opts.files_from}: "
                          f"{e.strerror}", 11) from None
    sep = b"\0" if opts.from0 else b"\n"
    out = []
    for raw in data.split(sep):
        name = raw.rstrip(b"\r") if not opts.from0 else raw
        if not name:
            continue
        b = base.rstrip("/") or "/"
        if opts.relative:
            out.append(f"{b}/./" + name.decode("utf-8", "surrogateescape"))
        else:
            out.append(os.path.join(b, name.decode("utf-8", "surrogateescape")))
    return out


def _open_remote(opts: Options, user, host, command, log, stderr=None):
    """-e/RSYNC_RSH runs that command; otherwise the built-in SSH client
    (paramiko, the user's ~/.ssh setup) -- no ssh binary needed."""
    from .transport.rsh import RshChild
    rsh = opts.rsh or os.environ.get("RSYNC_RSH")
    if not rsh:
        from .transport.ssh import SshChannel      # imports paramiko only here
        return SshChannel(host, user, None, " ".join(command),
                          connect_timeout=opts.contimeout or None,
                          io_timeout=opts.timeout or None,
                          stderr=stderr or sys.stderr)
    try:
        return RshChild(rsh, user, host, command)
    except OSError as e:
        log.error(f"rsync: Failed to exec {rsh.split()[0]}: {e.strerror} ({e.errno})")
        return None


def _local_xattr_rules(opts: Options) -> list:
    """rsync's local receiver shares the client's rules; ours is a child
    that gets the ones it needs: without --delete no rules go on the wire,
    but the 'x' rules still decide which xattrs it stores and removes."""
    fl = opts.filter_list
    if fl is None or opts.delete or not fl.has_xattr_rules:
        return []
    return ["--filter=" + r.text.decode("utf-8", "surrogateescape")
            for r in fl.rules if getattr(r, "xattr", False)]


def _open_local(opts: Options, dest: str, spawn: bool):
    from .session import run_server
    from .transport.local import LocalChild
    from .transport.rsh import CommandChild
    child_argv = server_args(opts, False, CLIENT_CAPABILITIES) + _local_xattr_rules(opts) + [".", dest]
    if spawn:
        # From a program that may have threads, fork is unsafe: start a
        # fresh interpreter as the receiving side instead.
        return CommandChild([sys.executable, "-m", "pysync"] + child_argv)

    def child_main(stream):
        return run_server(parse_args(child_argv), stream)
    return LocalChild(child_main)


def run_transfer(opts: Options, stdout=None, stderr=None, progress=None) -> Outcome:
    from .report import Report
    from .session import Log, run_client_session
    from .transport.rsh import remote_command

    args = opts.args
    if not args:
        raise SyntaxUsageError("pysync needs a source (and a destination); see pysync --help")
    if len(args) < 2 or opts.list_only:
        # A lone source, or --list-only: list instead of copying (a
        # destination given with --list-only is not touched).
        return _list_only(opts, args if len(args) < 2 else args[:-1], stdout, stderr)
    sources, dest = args[:-1], args[-1]
    remote_dest = parse_remote(dest)
    remote_srcs = [parse_remote(s) for s in sources]
    if remote_dest and any(remote_srcs):
        raise SyntaxUsageError("The source and destination cannot both be remote.")
    if any(remote_srcs) and not all(remote_srcs):
        raise SyntaxUsageError("all remote sources must be on the same host")
    if opts.files_from is not None:
        if any(remote_srcs):
            raise SyntaxUsageError("--files-from with a remote sender is not supported yet "
                                   "(pysync reads the list on the sending side only)")
        if len(sources) != 1:
            raise SyntaxUsageError("--files-from takes exactly one source directory")
        if opts.delete and not opts.recursive:
            raise SyntaxUsageError("--files-from with --delete needs -r in pysync (no --dirs yet)")
        sources = files_from_sources(opts, sources[0])
    log = Log(am_server=False, quiet=opts.quiet, err=stderr, out=stdout)
    start = time.monotonic()
    if remote_dest or any(remote_srcs):
        pull = not remote_dest
        user, host, _ = remote_srcs[0] if pull else remote_dest
        if pull and len({(r[0], r[1]) for r in remote_srcs}) > 1:
            raise SyntaxUsageError("all remote sources must be on the same host")
        rpaths = [r[2] for r in remote_srcs] if pull else [remote_dest[2]]
        if opts.whole_file is None:
            opts.whole_file = False
        needs = pysync_only(opts, pull)
        program = opts.rsync_path
        if needs and program is None:
            program = "pysync"      # the options travel to a pysync on the far side
        elif needs and os.path.basename(program.split()[0]).startswith("rsync"):
            raise SyntaxUsageError(
                f"{' '.join(needs)} needs pysync on the remote side, but --rsync-path names "
                f"{program.split()[0]}: use --rsync-path=pysync (or leave it out)")
        cmd = remote_command(program or "rsync",
                             server_args(opts, pull, CLIENT_CAPABILITIES), rpaths)
        stream = _open_remote(opts, user, host, cmd, log, stderr)
        if stream is None:
            return Outcome(14, Report(opts, out=stdout, err=stderr), 0, 0, 0.0)
        local_sources = None if pull else [s.encode("utf-8", "surrogateescape") for s in sources]
        local_dest = dest.encode("utf-8", "surrogateescape") if pull else None
        am_sender = not pull
        local = False
    else:
        local = True
        if opts.whole_file is None:
            opts.whole_file = True
        spawn = threading.active_count() > 1 or progress is not None
        stream = _open_local(opts, dest, spawn)
        local_sources = [s.encode("utf-8", "surrogateescape") for s in sources]
        local_dest = None
        am_sender = True
    # rsync logs a local copy from the receiving side: ">f" like a pull.
    report = Report(opts, out=stdout, err=stderr, sending=am_sender and not local)
    report.callback = progress
    code, sess = run_client_session(opts, stream, local_sources, local_dest, am_sender, report, log)
    remote = stream.wait()
    if remote == 255 and code in (0, 12):
        code = 255
    elif remote != 255:
        code = max(code, remote)
    elapsed = time.monotonic() - start
    report.summary(sess.sent, sess.received, elapsed, report.stats.deleted)
    return Outcome(code, report, sess.sent, sess.received, elapsed)
