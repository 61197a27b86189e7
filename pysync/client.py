"""The client side of a run: which side is remote, which transport, the
session, the remote's exit status, and the summary.  Shared by the command
line (cli.py) and the Python API (api.py)."""

from __future__ import annotations

import os
import sys
import threading
import time

from .errors import SyntaxUsageError
from .options import Options, parse_args
from .server_cmd import pysync_only, server_args
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
    if arg.startswith("/") or arg.startswith("./"):
        return None
    bracketed = _bracketed_host(arg)
    if bracketed:
        return bracketed
    colon = arg.find(":")
    slash = arg.find("/")
    if colon <= 0 or (0 <= slash < colon):
        return None
    hostpart, path = arg[:colon], arg[colon + 1:]
    if path.startswith(":"):
        raise SyntaxUsageError("the rsync daemon protocol (host::module) is not supported yet")
    user, _, host = hostpart.rpartition("@")
    return user or None, host, path


def _bracketed_host(arg: str):
    """(user or None, host, path) of "[user@][host]:path", where user has no
    "@", "/" or ":" and host is not empty and has no "]" or "/"; else None.
    (By hand: a regex here would load re into every run.)"""
    at = arg.find("@")
    if at > 0 and "/" not in arg[:at] and ":" not in arg[:at]:
        found = _bracketed(arg[at + 1:])
        if found:
            return (arg[:at],) + found
    found = _bracketed(arg)
    return (None,) + found if found else None


def _bracketed(rest: str):
    if not rest.startswith("["):
        return None
    close = rest.find("]")
    host = rest[1:close]
    if close < 2 or "/" in host or not rest.startswith(":", close + 1):
        return None
    return host, rest[close + 2:]


def _list_only(opts: Options, sources, stdout, stderr) -> Outcome:
    from .listing import list_sources
    from .report import Report
    from .log import Log
    if opts.files_from is not None:
        sources = files_from_sources(opts, sources[0]) if len(sources) == 1 else sources
    log = Log(am_server=False, quiet=opts.quiet, err=stderr, out=stdout)
    start = time.monotonic()
    code = list_sources(opts, sources, log, stdout or sys.stdout)
    report = Report(opts, out=stdout, err=stderr, sending=True)
    return Outcome(code, report, 0, 0, time.monotonic() - start)


def files_from_sources(opts: Options, base: str) -> list:
    """--files-from read here: the names as scanner arguments below the
    source directory ``base`` (anchored by "/./" with -R, the default)."""
    from .filesfrom import anchored_sources, local_names, read_list
    names = local_names(read_list(opts.files_from), opts.from0)
    return [a.decode("utf-8", "surrogateescape") for a in
            anchored_sources(base.encode("utf-8", "surrogateescape"), names, bool(opts.relative))]


def implied_rules(opts: Options, rpaths, ff_forward: bytes | None):
    """The names a pull asked for (main.c / io.c add_implied_include): its
    remote paths, or the --files-from names it forwards; None when the
    sender is trusted (--trust-sender, or a list read on the remote host)."""
    from .engine.implied import ImpliedRules
    if opts.trust_sender or opts.files_from_remote is not None:
        return None
    rules = ImpliedRules(bool(opts.relative), opts.recursive, opts.xfer_dirs)
    if ff_forward is not None:
        for name in ff_forward.split(b"\0"):
            if name:
                rules.add(name)
    else:
        for p in rpaths:
            rules.add(p.encode("utf-8", "surrogateescape") or b".")
    return rules


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
                          stderr=stderr or sys.stderr, family=opts.address_family)
    try:
        return RshChild(rsh, user, host, command, opts.address_family)
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
    from .engine.offload import offload_allowed
    from .report import progress_names
    from .session import run_server
    from .transport.local import LocalChild
    # --local-server (pysync-internal): the child is the other half of a
    # local copy (rsync's local_server), e.g. for MSG_SUCCESS's dev/ino.
    # A local rsync's child shares the parent's parsed options; ours is
    # told the one that changes what it says: --progress naming items.
    names = ["--progress"] if progress_names(opts) else []
    # --fake-super and --no-super are never sent to a remote side (--super
    # is, in server_args), but both halves of a local rsync have them.
    names += ["--fake-super"] if opts.am_root < 0 else ["--no-super"] if opts.am_root == 0 else []
    # --copy-as too (never sent to a remote side): both halves switch.
    names += [f"--copy-as={opts.copy_as}"] if opts.copy_as else []
    child_argv = (server_args(opts, False, CLIENT_CAPABILITIES, shell=False) + _local_xattr_rules(opts) + names
                  + ["--local-server", ".", dest])
    if spawn:
        # From a program that may have threads, fork is unsafe: start a
        # fresh interpreter as the receiving side instead.
        from .transport.rsh import CommandChild
        return CommandChild([sys.executable, "-m", "pysync"] + child_argv,
                            side=offload_allowed(opts))

    # What both halves import (the list's order, ids and names, the item,
    # sum and token codecs, xattr rules): loaded once, before the fork,
    # rather than by each process after it.
    for name in ("engine.idmap", "engine.remove", "engine.sender", "engine.xattrs", "protocol.flist_sort"):
        __import__(f"{__package__}.{name}")

    def child_main(stream):
        try:
            child_opts = parse_args(child_argv)
        except SyntaxUsageError as e:       # a -M word the receiving half refuses
            from .cli import error_line
            sys.stderr.write(f"pysync: {e}\n{error_line(e.code, 'Receiver')}\n")
            return e.code
        return run_server(child_opts, stream)
    return LocalChild(child_main, side=offload_allowed(opts))


def run_transfer(opts: Options, stdout=None, stderr=None, progress=None,
                 records: bool = False) -> Outcome:
    """``records``: keep a record of every item for ``report.records``
    (the API's per-file results)."""
    from .log import Log

    args = opts.args
    if not args:
        raise SyntaxUsageError("pysync needs a source (and a destination); see pysync --help")
    if opts.delete and not opts.xfer_dirs:
        raise SyntaxUsageError("--delete does not work without --recursive (-r) or --dirs (-d).")
    if opts.files_from is not None and len(args) != 2:
        # options.c: --files-from takes one source directory and a destination.
        raise SyntaxUsageError("--files-from needs exactly one source directory and a destination")
    listing = len(args) < 2 or opts.list_only
    if listing:
        # A lone source, or --list-only: list instead of copying (a
        # destination given with --list-only is not touched).  A remote
        # source is listed by a pull that transfers nothing.
        sources, dest = (args if len(args) < 2 else args[:-1]), None
        if not any(parse_remote(s) for s in sources):
            return _list_only(opts, sources, stdout, stderr)
    else:
        sources, dest = args[:-1], args[-1]
    remote_dest = parse_remote(dest) if dest is not None else None
    remote_srcs = [parse_remote(s) for s in sources]
    if remote_dest and any(remote_srcs):
        raise SyntaxUsageError("The source and destination cannot both be remote.")
    if any(remote_srcs) and not all(remote_srcs):
        raise SyntaxUsageError("all remote sources must be on the same host")
    ff_forward = ff_base = None
    if opts.files_from is not None:
        from .filesfrom import check_remote_list, read_list
        from .protocol.filesfrom import encode_files_from
        host = (remote_srcs[0] or remote_dest or (None, None))[1]
        if opts.files_from_remote is not None:
            check_remote_list(opts.files_from, opts.files_from_remote, host)
            if remote_dest:     # the remote receiver reads it and forwards the names
                ff_base = sources[0].encode("utf-8", "surrogateescape")
        elif any(remote_srcs):  # we forward our list to the remote sender
            ff_forward = encode_files_from(read_list(opts.files_from), opts.from0)
        else:
            sources = files_from_sources(opts, sources[0])
    log = Log(am_server=False, quiet=opts.quiet, err=stderr, out=stdout)
    logfile = None
    if opts.log_file is not None:
        from .logfile import open_log_file
        logfile = log.logfile = open_log_file(opts.log_file, opts.log_file_format, log)
    try:
        outcome = _transfer(opts, sources, dest, remote_dest, remote_srcs, log, logfile,
                            stdout, stderr, progress, ff_forward, ff_base, records)
        if logfile is not None and outcome.code:
            from .cli import error_line
            logfile.write(error_line(outcome.code, "sender" if outcome.report.am_sender else "receiver"))
        return outcome
    finally:
        if logfile is not None:
            logfile.close()


def _transfer(opts, sources, dest, remote_dest, remote_srcs, log, logfile, stdout, stderr,
              progress, ff_forward=None, ff_base=None, records=False) -> Outcome:
    from .report import Report
    from .session import run_client_session
    start = time.monotonic()
    if remote_dest or any(remote_srcs):
        from .transport.rsh import remote_command
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
        checked = pull and not opts.trust_sender and opts.files_from_remote is None
        sargs = server_args(opts, pull, CLIENT_CAPABILITIES)
        protected = None
        if opts.protect_args:
            # -s: the command line ends with the option cluster; the rest
            # goes first on the connection, unescaped (protocol/args.py).
            from .protocol.args import encode_protected_args
            k = next(i for i, a in enumerate(sargs) if a.startswith("-") and not a.startswith("--"))
            rest = server_args(opts, pull, CLIENT_CAPABILITIES, shell=False)[k + 1:]
            # A path that starts with "-" still gets rsync's "./" (safe_arg).
            protected = encode_protected_args(rest + ["."] + ["./" + p if p.startswith("-") else p
                                                              for p in rpaths])
            import shlex
            cmd = shlex.split(program or "rsync") + sargs[:k + 1]
        else:
            cmd = remote_command(program or "rsync", sargs, rpaths, bool(opts.relative), checked,
                                 escape=not opts.old_args)
        stream = _open_remote(opts, user, host, cmd, log, stderr)
        if stream is not None and protected is not None:
            stream.write(protected)
        if stream is None:
            report = Report(opts, out=stdout, err=stderr)
            report.logfile = logfile
            return Outcome(14, report, 0, 0, 0.0)
        local_sources = None if pull else [s.encode("utf-8", "surrogateescape") for s in sources]
        local_dest = dest.encode("utf-8", "surrogateescape") if pull and dest is not None else None
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
    report.am_sender, report.local, report.logfile = am_sender, local, logfile
    report.callback = progress
    report.keep_records = records
    log.line_breaker = report.take_open_line
    implied = None
    if not am_sender and not local:
        implied = implied_rules(opts, rpaths, ff_forward)
    code, sess = run_client_session(opts, stream, local_sources, local_dest, am_sender, report, log,
                                    ff_forward=ff_forward, ff_base=ff_base, local=local,
                                    implied=implied)
    remote = stream.wait()
    if remote == 255 and code in (0, 12):
        code = 255
    elif remote != 255 and not (local and code and remote == 12):
        # (The half of a local copy that stopped first has the code; the
        # other only saw the connection go, as rsync's killed child.)
        code = max(code, remote)
    elapsed = time.monotonic() - start
    report.summary(sess.sent, sess.received, elapsed, report.stats.deleted)
    if logfile is not None and (code and am_sender or not code and not (opts.verbose or opts.stats)):
        # upstream: log.c log_exit() -- the closing line when no summary
        # was logged, or when the run failed (a sender's counts only).
        logfile.write(f"sent {sess.sent} bytes  received {sess.received} bytes  "
                      f"total size {report.stats.total_size}")
    return Outcome(code, report, sess.sent, sess.received, elapsed)
