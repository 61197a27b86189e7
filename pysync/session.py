"""One rsync session over one duplex stream: handshake, filter list, file
list, the transfer roles, the end of run, and the exit code.

``run_client`` is the side the user started; ``run_server`` is the side
started as ``--server`` (by us over a socketpair, by ssh, or by a stock
rsync client).  The wire order is SPEC.md's; roles own one phase each.

The phases live beside it: config.py (the handshake and SessionConfig),
sending.py and receiving.py (each side's file list and roles),
destination.py (where a received list lands), log.py (the messages).
"""

from __future__ import annotations

import sys

from .errors import PysyncError, ProtocolViolation, StreamError, exit_code_for, exit_text
from .protocol.constants import (IOERR_MASK, MSG_DELETED, MSG_ERROR, MSG_ERROR_EXIT, MSG_ERROR_XFER,
                                 MSG_INFO, MSG_IO_ERROR, MSG_NO_SEND, MSG_SUCCESS, MSG_WARNING)
from .protocol.filters import decode_filter_rule, encode_filter_list
from .protocol.mux import decode_success
from .report import Report
from .text import show, unshow
from .config import SessionConfig, client_handshake, server_handshake
from .log import Log, route_server_messages
from .engine.wire import Wire

__all__ = ["run_client_session", "run_server"]


class _Session:
    """State shared by the roles of one side of a connection."""

    def __init__(self, opts, wire: Wire, am_server: bool, am_sender: bool, report: Report, log: Log):
        self.opts = opts
        self.wire = wire
        self.am_server = am_server
        self.am_sender = am_sender
        self.report = report
        self.log = log
        self.io_error = 0            # bits from the peer (flist end, MSG_IO_ERROR) and our own
        self.xfer_error = False      # MSG_ERROR_XFER seen
        self.remote_exit = None      # code from MSG_ERROR_EXIT
        self.no_send = None          # callback for MSG_NO_SEND
        self.offload = None          # local copy: the side channel (engine/offload.py)
        self.on_success = None       # callback for MSG_SUCCESS (a sender removing files)
        self.implied = None          # a pull's implied includes (engine/implied.py)
        self.cfg = SessionConfig()

    # ---- messages from the peer (reader thread) ---------------------------------------
    def on_message(self, tag: int, payload: bytes) -> None:
        if tag in (MSG_INFO, MSG_ERROR, MSG_WARNING, MSG_ERROR_XFER):
            nl = payload.endswith(b"\n")
            text = show(payload[:-1] if nl else payload) + ("\n" if nl else "")
            if tag == MSG_ERROR_XFER:
                self.xfer_error = True
            self.report.log_line(text)
            if self.am_server:
                sys.stderr.write(text)
                sys.stderr.flush()
                return
            stream = sys.stdout if tag == MSG_INFO else sys.stderr
            if stream is sys.stdout and self.opts.quiet:
                return
            if self.report.take_open_line():
                text = "\n" + text      # after "receiving file list ... " & co.
            stream.write(text)
            stream.flush()
        elif tag == MSG_IO_ERROR:
            self.io_error |= int.from_bytes(payload, "little") & IOERR_MASK
        elif tag == MSG_SUCCESS:
            # Only a sender with --remove-source-files acts on it (as rsync,
            # whose successful_send does nothing without the option).
            if self.on_success is not None:
                self.on_success(*decode_success(payload))
        elif tag == MSG_NO_SEND:
            ndx = int.from_bytes(payload, "little", signed=True)
            if self.no_send:
                self.no_send(ndx)
        elif tag == MSG_ERROR_EXIT:
            self.remote_exit = int.from_bytes(payload, "little", signed=True) if payload else 0
        elif tag == MSG_DELETED:
            name = payload[:-1] + b"/" if payload.endswith(b"\0") else payload
            self.report.deleted(name)

    def xattr_policy(self):
        """Which xattr names this side reads and stores (io/xattrs.py)."""
        from .engine.xattrs import xattr_policy  # loads with the role that asks (after a local fork)
        return xattr_policy(self.cfg, self.am_sender)

    # ---- filter list ------------------------------------------------------------------
    def add_filter_texts(self, texts) -> None:
        if self.cfg.filters is None:
            from .engine.filters import FilterList     # loads with the first rule
            self.cfg.filters = FilterList()
        self.cfg.filters.add_texts(texts)

    def cvs_rules_before_send(self) -> None:
        """-C on a sending client: the CVS rules go to the receiver with
        the others (exclude.c send_filter_list)."""
        if self.opts.cvs_exclude and self.am_sender:
            self.add_filter_texts([b":C", b"-C"])

    def send_filters(self) -> None:
        rules = self.cfg.filters.wire_rules(self.am_sender, self.opts.delete_excluded) \
            if self.cfg.filters else []
        self.wire.write(encode_filter_list(rules))
        self.wire.flush()
        if self.opts.cvs_exclude and not self.am_sender:
            # A receiving client keeps its CVS rules to itself.
            self.add_filter_texts([b":C", b"-C"])

    def recv_filters(self) -> None:
        rules = []
        while True:
            r = self.wire.read(decode_filter_rule)
            if r is None:
                break
            rules.append(r)
            if len(rules) > 100_000:
                raise ProtocolViolation("too many filter rules from the peer", 2)
        if rules:
            from .engine.filters import FilterList
            fl = FilterList.from_wire(rules)
            if self.cfg.filters is None:
                self.cfg.filters = fl
            else:
                self.cfg.filters.extend(fl)
        if self.opts.cvs_exclude and self.am_sender:
            # A sending server adds the CVS rules itself; a receiving one
            # got them from the client (protocol >= 29).
            self.add_filter_texts([b":C", b"-C"])

    # ---- --files-from names on the wire --------------------------------------------------
    def forward_files_from(self, stream: bytes) -> None:
        """Send the --files-from names (already in wire form) to the sender."""
        for i in range(0, len(stream), 1 << 15):
            self.wire.write(stream[i:i + (1 << 15)])
        self.wire.flush()

    def recv_files_from(self, base: bytes) -> list:
        """The names the receiving side forwards, as scanner arguments
        below the source directory ``base``."""
        from .filesfrom import anchored_sources
        from .protocol.filesfrom import decode_files_from_name
        names = []
        while True:
            name = self.wire.read(decode_files_from_name)
            if name is None:
                break
            names.append(name)
        return anchored_sources(base, names, bool(self.opts.relative))

def run_server(opts, stream) -> int:
    """``pysync --server ...`` on ``stream``: opts.args = [".", paths...]."""
    log = Log(am_server=True)
    report = Report(opts, am_server=True, sending=opts.sender)
    sess = _Session(opts, None, am_server=True, am_sender=opts.sender, report=report, log=log)
    if not opts.sender:
        sess.offload = getattr(stream, "side", None)
    wire = Wire(stream, on_message=sess.on_message, timeout=opts.timeout, bwlimit=opts.bwlimit,
                role="sender" if opts.sender else "receiver")
    sess.wire = wire
    sess.cfg.local_server = opts.local_server
    if opts.stop_at is not None:            # -M--stop-after / -M--stop-at
        wire.set_stop_at(opts.stop_at)
    if opts.verbose or opts.log_format:
        report.remote_info = lambda text: wire.send_msg(MSG_INFO, unshow(text) + b"\n")
    args = [a.encode() if isinstance(a, str) else a for a in opts.args]
    if args and args[0] == b".":
        args = args[1:]
    code = 0
    ended = False                   # the run's last exchange is done
    ff_data = None
    if opts.files_from is not None and opts.files_from != "-":
        # A list on this side (the client's --files-from=host:path), read
        # before the handshake as rsync reads it while parsing options.
        from .filesfrom import read_list
        try:
            ff_data = read_list(opts.files_from)
        except PysyncError as e:
            log.error(str(e))
            log.error(f"rsync error: {exit_text(e.code)} (code {e.code}) at pysync [server]")
            return e.code
    logfile = None
    if opts.log_file is not None and not opts.local_server:
        # A --log-file given to the server itself (--rsync-path='pysync
        # --log-file=F'): what it did, as a stock rsync server logs it.
        from .logfile import open_log_file
        logfile = log.logfile = report.logfile = open_log_file(opts.log_file, opts.log_file_format, log)
    try:
        server_handshake(sess)
        wire.start_mux(local_server=opts.local_server)
        if opts.copy_as:
            from .copyas import become_copy_as
            become_copy_as(opts.copy_as, opts.sender)
        route_server_messages(log, report, wire, opts.msgs2stderr)     # --stderr
        if opts.sender:
            sess.recv_filters()
            base = args[0] if args else b"."
            if opts.files_from == "-":
                sources = sess.recv_files_from(base)
            elif ff_data is not None:
                from .filesfrom import anchored_sources, local_names
                sources = anchored_sources(base, local_names(ff_data, opts.from0),
                                           bool(opts.relative))
            else:
                sources = args or [b"."]
            from .sending import run_sender  # each side loads only its own role
            code = run_sender(sess, sources)
        else:
            if opts.delete or opts.prune_empty_dirs:     # exclude.c receiver_wants_list
                sess.recv_filters()
            if ff_data is not None:
                # The sending client asked for our list: forward it.
                from .protocol.filesfrom import encode_files_from
                sess.forward_files_from(encode_files_from(ff_data, opts.from0))
            from .receiving import recv_flist, run_receiver
            dest = args[0] if args else b"."
            flist, un, gn = recv_flist(sess, dest)
            code = run_receiver(sess, dest, flist, un, gn)
        wire.flush()
        ended = True
    except PysyncError as e:
        log.error(str(e))
        code = e.code
        _send_error_exit(wire, code)
    finally:
        # After the run's last exchange the client has nothing more to
        # send, and a stock rsync client keeps its end open until we exit:
        # waiting for its EOF would only stall every run (by 2 s).
        wire.close(wait_for_peer=not ended)
        if logfile is not None:
            _close_server_log(logfile, wire, report, 0 if ended else code, opts.sender)
    return code


def _close_server_log(logfile, wire, report, code: int, sender: bool) -> None:
    """A server's log ends with its byte counts (rsync's log_exit), after
    the error line of a run that failed before its end (a run that ended
    with files missing, 23, leaves that to the client, as rsync's does)."""
    if code:
        from .cli import error_line
        logfile.write(error_line(code, "sender" if sender else "receiver"))
    logfile.write(f"sent {wire.bytes_written} bytes  received {wire.bytes_read} bytes  "
                  f"total size {report.stats.total_size}")
    logfile.close()


def _send_error_exit(wire, code: int) -> None:
    if wire is not None:
        wire.send_error_exit(code)


def run_client_session(opts, stream, sources, dest, am_sender: bool, report: Report, log: Log,
                       ff_forward: bytes | None = None, ff_base: bytes | None = None,
                       local: bool = False, implied=None):
    """The client's side of one connection (``local``: to the child of a
    local copy).  Returns (code, session).
    ``ff_forward``: --files-from names (wire form) for the remote sender;
    ``ff_base``: read the names from the remote receiver instead, as
    arguments below this source directory; ``implied``: the names a pull
    asked for (engine/implied.py), or None to trust the sender."""
    sess = _Session(opts, None, am_server=False, am_sender=am_sender, report=report, log=log)
    sess.implied = implied
    sess.cfg.local_server = local
    if am_sender:
        sess.offload = getattr(stream, "side", None)
    wire = Wire(stream, on_message=sess.on_message, timeout=opts.timeout, bwlimit=opts.bwlimit,
                role="sender" if am_sender else "receiver")
    sess.wire = wire
    if opts.stop_at is not None:
        wire.set_stop_at(opts.stop_at)
    code = 0
    try:
        client_handshake(sess)
        wire.start_mux(local_server=local)
        if opts.copy_as:
            from .copyas import become_copy_as
            become_copy_as(opts.copy_as, am_sender)
        if am_sender:
            sess.cvs_rules_before_send()
            if opts.delete or opts.prune_empty_dirs:     # exclude.c receiver_wants_list
                sess.send_filters()
            if ff_base is not None:
                sources = sess.recv_files_from(ff_base)
            from .sending import run_sender  # each side loads only its own role
            code = run_sender(sess, sources)
        else:
            sess.send_filters()
            # as rsync's client: the line is out before the server's first
            # message about its list can be shown (by the reader thread)
            sess.report.flist_start(receiving=True)
            if ff_forward is not None:
                sess.forward_files_from(ff_forward)
            from .receiving import recv_flist, run_listing, run_receiver
            flist, un, gn = recv_flist(sess, dest)
            if dest is None:
                code = run_listing(sess, flist, un, gn)
            elif flist:
                code = run_receiver(sess, dest, flist, un, gn)
            else:
                code = exit_code_for(sess.io_error)
        wire.flush()
    except PysyncError as e:
        if sess.remote_exit is None and isinstance(e, StreamError):
            # The peer may have said why it went away: wait for its message.
            wire.drain_messages(2.0)
        if sess.remote_exit is None:
            # A transport that already explained the failure in one line (a
            # missing remote rsync) needs no second, vaguer one.
            if not getattr(stream, "explained", None):
                log.error(str(e))
            _send_error_exit(wire, e.code)
            code = e.code
        else:
            code = sess.remote_exit or e.code
    finally:
        wire.close()
    sess.sent = wire.bytes_written
    sess.received = wire.bytes_read
    return code, sess
