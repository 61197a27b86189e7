"""The command line: argv -> Options -> a session; the only place that
prints usage and turns errors into an exit status."""

from __future__ import annotations

import sys

# The interpreter's built-in signal module: signal.py adds only enum
# classes, and building them costs every start ~1 ms.
import _signal

from . import __version__
from .errors import PysyncError, SyntaxUsageError, exit_text
from .options import help_text, parse_args
from .protocol.constants import PROTOCOL_VERSION, RERR_SYNTAX

__all__ = ["main", "command"]

VERSION_LINE = f"pysync  version {__version__}  protocol version {PROTOCOL_VERSION}"


def error_line(code: int, role: str) -> str:
    return f"rsync error: {exit_text(code)} (code {code}) at pysync [{role}={__version__}]"


def run(argv, stdout=None, stderr=None) -> int:
    try:
        opts = parse_args(argv)
    except PysyncError as e:
        if getattr(e, "output", None) is None:
            raise
        (stdout or sys.stdout).write(e.output)      # --debug=help: print, exit 0
        return 0
    if opts.server and opts.protect_args and not opts.local_server:
        from .secluded import read_protected_args
        opts = parse_args(list(argv) + read_protected_args(0))
    if opts.server:
        from .session import run_server
        from .transport.base import FdStream
        from .transport.local import inherited_side
        stream = FdStream(0, 1)
        stream.side = inherited_side()
        sys.stdout = sys.stderr  # stdout is the protocol stream now
        return run_server(opts, stream)
    if opts.msgs2stderr == 1 or opts.outbuf or opts.eight_bit:
        from .output import setup_stdout
        stdout = setup_stdout(opts, stdout)
    if opts.help:
        (stdout or sys.stdout).write(help_text(VERSION_LINE))
        return 0
    if opts.version:
        (stdout or sys.stdout).write(VERSION_LINE + "\n")
        return 0
    from .client import run_transfer
    outcome = run_transfer(opts, stdout, stderr)
    if outcome.code:
        sys.stderr.write(error_line(outcome.code, "sender" if outcome.report.am_sender else "receiver") + "\n")
    return outcome.code


class SignalExit(PysyncError):
    """SIGTERM/SIGHUP: unwind like an error so temp files are removed (exit 20)."""
    code = 20


_CAUGHT = {_signal.SIGTERM: "SIGTERM", _signal.SIGHUP: "SIGHUP"}


def _on_signal(signum, frame):
    raise SignalExit(f"rsync error: received {_CAUGHT[signum]} -- exiting", 20)


def install_signal_handlers() -> None:
    for sig in _CAUGHT:
        _signal.signal(sig, _on_signal)


#: Set when main() starts: the command line's processes have glibc keep
#: the megabyte buffers a transfer churns through, rather than return and
#: re-fault them (measured: a third of a 1 GiB push's client CPU went to
#: page faults without it).  pysync/native.py does it when it loads, with
#: the first module of the data path, so a run that moves no data neither
#: loads the compiled module nor tunes anything, and scripts using the API
#: keep their allocator as it is.
TUNE_MALLOC = False


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    global TUNE_MALLOC
    install_signal_handlers()
    TUNE_MALLOC = True
    try:
        code = run(argv)
    except SyntaxUsageError as e:
        sys.stderr.write(f"{e}\n" if getattr(e, "bare", False) else f"pysync: {e}\n")
        sys.stderr.write(error_line(RERR_SYNTAX, "server" if argv[:1] == ["--server"] else "client") + "\n")
        code = RERR_SYNTAX
    except PysyncError as e:
        sys.stderr.write(f"{e}\n")
        sys.stderr.write(error_line(e.code, "client") + "\n")
        code = e.code
    except KeyboardInterrupt:
        sys.stderr.write(error_line(20, "client") + "\n")
        code = 20
    sys.stdout.flush()
    return code


def command() -> None:
    """The ``pysync`` program (the console script and ``python -m pysync``):
    main(), then the process ends as rsync's does, without the
    interpreter's teardown -- freeing every module and object of a run
    took ~7 ms of a 50 ms no-op here, and a remote server's teardown
    delays its client's exit too.  Output is flushed and atexit handlers
    run first; when a flush fails or a non-daemon thread is still running,
    the interpreter ends the process the usual way (reporting the broken
    pipe, joining the thread) as before."""
    from . import warmup
    warmup.start()          # the files this run will import, read ahead
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        sys.exit(code)
    threading = sys.modules.get("threading")
    if threading is not None and any(t.is_alive() and not t.daemon and t is not threading.main_thread()
                                     for t in threading.enumerate()):
        sys.exit(code)
    import atexit
    import os
    atexit._run_exitfuncs()     # what the interpreter would run at its exit
    try:
        sys.stdout.flush()      # anything an atexit handler wrote
        sys.stderr.flush()
    except BaseException:
        sys.exit(code)
    os._exit(code)
