"""The Wire: a framed, multiplexed, full-duplex view of a transport stream.

Before multiplexing starts (the handshake) bytes are read and written raw.
After ``start_mux()`` a reader thread drains the transport all the time,
splits frames, queues MSG_DATA payloads for the roles and hands every other
message to ``on_message`` -- so neither side can block the other
(protocol.md §3.5).  The data queue is bounded: when it is full the reader
stops reading, which pushes back on the peer without deadlock because the
local consumer of the queue never waits for our own writes.

Roles read with ``read(decode, *args)``: the decoder runs on the buffered
data and, when it raises NeedMore, the Wire waits for more and retries.
Writes are buffered into MSG_DATA frames; ``flush()`` sends them, and any
read that has to wait flushes first.
"""

from __future__ import annotations

import struct
import threading
import time

from ..errors import PysyncError, ProtocolViolation, StreamError, TimeoutError_
from ..protocol.buffer import NeedMore, ProtocolError, ReadBuffer
from ..protocol.constants import MSG_DATA, MSG_ERROR_EXIT
from ..protocol.constants import MPLEX_BASE
from ..protocol.mux import MAX_DATA_FRAME, Demux, encode_data, encode_frame

__all__ = ["Wire"]

READ_CHUNK = 256 * 1024
# The data queue's bound (two reads).  Past it the reader stops reading and
# the peer waits in its socket: a bigger queue only holds more of the
# peer's data in our memory (with 8 MiB a 20,000-file copy's receiver
# peaked 24 MiB higher, from the queue's growth and the copies its
# compaction makes), and a 512 MiB streamed copy took no less CPU with it.
DEFAULT_MAX_BUFFER = 2 * READ_CHUNK
_DATA_HDR = struct.Struct("<I")
_DATA_TAG = (MPLEX_BASE + MSG_DATA) << 24


class _InBuffer(ReadBuffer):
    """The data queue: a ReadBuffer whose ``take`` copies once."""

    __slots__ = ()

    def take(self, n: int) -> bytes:
        pos = self._pos
        end = pos + n
        data = self._data
        if end > len(data):
            raise NeedMore
        with memoryview(data) as mv:
            out = mv[pos:end].tobytes()
        self._pos = end
        return out


class Wire:
    def __init__(self, stream, on_message=None, max_buffer: int = DEFAULT_MAX_BUFFER,
                 timeout: int = 0, role: str = "sender", bwlimit: int = 0):
        self.stream = stream
        # --bwlimit (KiB/s): every write to the peer is paced (bwlimit.py).
        self._bw = None
        if bwlimit > 0:
            from .bwlimit import BwLimiter
            self._bw = BwLimiter(bwlimit)
        self.on_message = on_message or (lambda tag, payload: None)
        self.max_buffer = max_buffer
        self._in = _InBuffer()
        self._cond = threading.Condition()
        self._eof = False
        self._error: BaseException | None = None
        self._muxed = False
        self._reader: threading.Thread | None = None
        self._wlock = threading.RLock()
        self._wbuf = bytearray()
        self._mux_out = False
        self.bytes_read = 0
        self.bytes_written = 0
        self._data_fed = 0          # MSG_DATA payload bytes queued for the roles
        self.data_written = 0       # payload bytes the roles wrote (rsync's total_data_written)
        self.timeout = timeout
        self.role = role
        self._last_recv = self._last_send = time.monotonic()
        self._done = False
        self.error_exit_sent = False
        self._starved = False
        self._reader_waiting = False
        self._discard = False
        self.peer_exit = None       # the code of the peer's MSG_ERROR_EXIT
        # Messages posted by threads that must not wait for the write lock
        # (the reader thread): sent ahead of the next write or flush.
        self._pending: list = []
        self._plock = threading.Lock()
        # A single-threaded role (the sender) must flush before it waits for
        # the peer; on the receiving side the generator flushes its own
        # writes, so the receiver thread leaves them alone.
        self.flush_on_wait = True
        self.stop_at = None         # --stop-at / --stop-after (wall clock), see set_stop_at
        if timeout > 0:
            threading.Thread(target=self._watchdog, name="wire-timeout", daemon=True).start()

    def _watchdog(self) -> None:
        """--timeout: end the run (exit 30) when nothing arrives for that
        long, and keep the peer's own timeout at bay with keep-alives
        (an empty MSG_DATA frame) when we have had nothing to send."""
        step = min(1.0, self.timeout / 4)
        while not self._done:
            time.sleep(step)
            now = time.monotonic()
            if now - self._last_recv > self.timeout and not self._eof:
                self._fail(TimeoutError_(f"[{self.role}] io timeout after {self.timeout} seconds -- exiting"))
                try:
                    self.stream.abort()
                except (OSError, AttributeError):
                    pass
                return
            if self._mux_out and now - self._last_send > self.timeout / 2:
                if self._wlock.acquire(blocking=False):
                    try:
                        self.stream.write(encode_frame(MSG_DATA))
                        self._last_send = now
                    except OSError:
                        pass
                    finally:
                        self._wlock.release()

    def set_stop_at(self, when: float) -> None:
        """--stop-at / --stop-after: at ``when`` (time.time()) the run ends
        with exit 30, as rsync's I/O loop checks (io.c): every write checks
        the clock, and a role waiting to read is woken with the error."""
        self.stop_at = when

        def alarm():
            while not self._done:
                left = when - time.time()
                if left <= 0:
                    # As rsync's exit: the peer learns it from the closed
                    # connection (a role blocked in a write gets the error).
                    self._fail(self._stop_error())
                    try:
                        self.stream.abort()
                    except (OSError, AttributeError):
                        pass
                    return
                time.sleep(min(left, 1.0))
        threading.Thread(target=alarm, name="wire-stop-at", daemon=True).start()

    @staticmethod
    def _stop_error() -> BaseException:
        return TimeoutError_("stopping at requested limit")

    def _check_stop(self) -> None:
        if self.stop_at is not None and time.time() >= self.stop_at:
            self.stop_at = None          # raised once; the error exit still goes out
            err = self._stop_error()
            self._fail(err)
            raise err

    # ---- raw phase (handshake) -------------------------------------------------
    def raw_read(self, decode, *args):
        """Decode from the raw stream (before multiplexing)."""
        while True:
            try:
                return self._in.attempt(decode, *args)
            except NeedMore:
                chunk = self.stream.read(READ_CHUNK)
                self._last_recv = time.monotonic()
                if self._error is not None:
                    raise self._error
                if not chunk:
                    raise StreamError("connection unexpectedly closed during the handshake")
                self.bytes_read += len(chunk)
                self._in.feed(chunk)
            except ProtocolError as e:
                raise ProtocolViolation(str(e), e.code) from None

    def raw_write(self, data: bytes) -> None:
        with self._wlock:
            self._stream_write(data)
            self.bytes_written += len(data)

    # ---- multiplexed phase ---------------------------------------------------------
    def start_mux(self, local_server: bool = False) -> None:
        """Both directions are multiplexed from here on.  ``local_server``:
        the peer is the other process of a local copy (SPEC.md §1.5)."""
        leftover = self._in.rest()
        self._in = _InBuffer()
        self._mux_out = True
        self._muxed = True
        demux = Demux(local_server)
        self._reader = threading.Thread(target=self._read_loop, args=(demux, leftover),
                                        name="wire-reader", daemon=True)
        self._reader.start()

    def _read_loop(self, demux: Demux, leftover: bytes) -> None:
        try:
            data = bytes(leftover)
            while True:
                if data:
                    pending = []
                    for tag, payload in demux.feed_views(data):
                        if tag == MSG_DATA:
                            if payload:
                                pending.append(payload)
                        else:
                            if pending:
                                self._push_data(pending)
                                pending = []
                            payload = bytes(payload)
                            if tag == MSG_ERROR_EXIT:
                                self.peer_exit = int.from_bytes(payload, "little", signed=True) \
                                    if payload else 0
                            self.on_message(tag, payload)
                    if pending:
                        self._push_data(pending)
                    del pending
                data = self.stream.read(READ_CHUNK)
                self._last_recv = time.monotonic()
                if not data:
                    break
                self.bytes_read += len(data)
        except ProtocolError as e:
            self._fail(ProtocolViolation(str(e), e.code))
        except PysyncError as e:
            self._fail(e)
        except OSError as e:
            self._fail(StreamError(f"error reading from the connection: {e.strerror or e}"))
        except BaseException as e:  # a bug: report it rather than hang the consumer
            self._fail(e)
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _fail(self, err: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = err
            self._eof = True
            self._cond.notify_all()

    def _push_data(self, payloads: list) -> None:
        """Queue the MSG_DATA payloads of one read (keep-alives left out)."""
        with self._cond:
            # Bounded, except while the consumer waits for one item larger
            # than the bound (a long block-sum list): then it must grow.
            # Once over the bound, wait until the consumer has taken half of
            # it, so reader and consumer do not wake each other per item.
            if len(self._in) > self.max_buffer:
                low = self.max_buffer // 2
                while len(self._in) > low and self._error is None and not self._starved \
                        and not self._discard:
                    self._reader_waiting = True
                    self._cond.wait()
                self._reader_waiting = False
            if self._discard:
                return
            feed = self._in.feed
            for payload in payloads:
                feed(payload)
                self._data_fed += len(payload)
            self._cond.notify_all()

    def read(self, decode, *args):
        """Decode one value from the data stream, waiting as needed."""
        if not self._muxed:
            return self.raw_read(decode, *args)
        cond = self._cond
        flushed = False
        with cond:
            while True:
                try:
                    value = self._in.attempt(decode, *args)
                    if self._reader_waiting and len(self._in) <= self.max_buffer // 2:
                        cond.notify_all()
                    return value
                except NeedMore:
                    pass
                except ProtocolError as e:
                    raise ProtocolViolation(str(e), e.code) from None
                if self._error is not None:
                    raise self._error
                if self._eof:
                    raise StreamError("connection unexpectedly closed")
                if not flushed and self.flush_on_wait:
                    # Send what this side has buffered before waiting for the
                    # peer -- but never wait for the write lock here: another
                    # thread (the generator) may be blocked in a write that
                    # only completes once this thread drains our input.
                    cond.release()
                    try:
                        if self._wlock.acquire(blocking=False):
                            try:
                                self._send_buffered()
                            finally:
                                self._wlock.release()
                    finally:
                        cond.acquire()
                    flushed = True
                    continue
                self._starved = True
                cond.notify_all()
                cond.wait()
                self._starved = False

    @property
    def data_received(self) -> int:
        """Payload bytes demuxed so far, consumed or not: on the reader
        thread, where in the data stream a message arrived."""
        return self._data_fed

    @property
    def data_read(self) -> int:
        """Payload bytes the roles have consumed (rsync's total_data_read):
        what %b / %c count per file."""
        return self._data_fed - len(self._in)

    def read_bytes(self, n: int) -> bytes:
        return self.read(ReadBuffer.take, n)

    # ---- writing ---------------------------------------------------------------------
    def write(self, data) -> None:
        if not self._mux_out:
            self.raw_write(bytes(data))
            return
        with self._wlock:
            self._wbuf += data
            self.data_written += len(data)
            if len(self._wbuf) >= MAX_DATA_FRAME:
                self._send_buffered()

    def write_iov(self, parts) -> None:
        """Write the concatenation of ``parts`` (buffers) to the data
        stream.  Large writes are framed in place and sent with writev when
        the stream has it, so the payload is not copied; every part has
        been sent (or copied) when this returns."""
        if not self._mux_out:
            self.raw_write(b"".join(parts))
            return
        with self._wlock:
            total = 0
            for p in parts:
                total += len(p)
            self.data_written += total
            wbuf = self._wbuf
            writev = getattr(self.stream, "writev", None) if self._bw is None else None
            if writev is None or len(wbuf) + total < MAX_DATA_FRAME:
                for p in parts:
                    wbuf += p
                if len(wbuf) >= MAX_DATA_FRAME:
                    self._send_buffered()
                return
            remaining = total + len(wbuf)
            sent = remaining
            segs = []
            if wbuf:
                segs.append(bytes(wbuf))
                self._wbuf = bytearray()
            segs.extend(parts)
            iov = []
            pack = _DATA_HDR.pack
            left = 0
            for seg in segs:
                mv = memoryview(seg)
                if mv.format != "B" or mv.ndim != 1:
                    mv = mv.cast("B")
                n = len(mv)
                pos = 0
                while pos < n:
                    if not left:
                        left = remaining if remaining < MAX_DATA_FRAME else MAX_DATA_FRAME
                        iov.append(pack(_DATA_TAG | left))
                    k = n - pos
                    if k > left:
                        k = left
                    iov.append(mv[pos:pos + k] if k != n else mv)
                    pos += k
                    left -= k
                    remaining -= k
            if self.peer_exit is not None and not self.error_exit_sent:
                raise StreamError(f"the peer exited with code {self.peer_exit}")
            self._check_stop()
            if self._pending:
                self._send_pending()
            try:
                writev(iov)
            except OSError as e:
                if isinstance(self._error, TimeoutError_):
                    raise self._error from None
                raise StreamError(f"connection unexpectedly closed ({e.strerror or e})") from None
            self._last_send = time.monotonic()
            self.bytes_written += sent + 4 * ((sent + MAX_DATA_FRAME - 1) // MAX_DATA_FRAME)

    def _stream_write(self, data) -> None:
        if self.peer_exit is not None and not self.error_exit_sent:
            # The peer is gone for good: stop feeding it.
            raise StreamError(f"the peer exited with code {self.peer_exit}")
        self._check_stop()
        try:
            if self._bw is None:
                self.stream.write(data)
            else:
                for piece in self._bw.chunks(data):
                    self._check_stop()
                    self.stream.write(piece)
                    self._bw.wrote(len(piece))
        except OSError as e:
            if isinstance(self._error, TimeoutError_):
                raise self._error from None      # we closed it: --timeout, --stop-at
            raise StreamError(f"connection unexpectedly closed ({e.strerror or e})") from None

    def _send_pending(self) -> None:
        """Write the posted messages (the caller holds the write lock)."""
        with self._plock:
            frames, self._pending = self._pending, []
        if frames:
            data = b"".join(frames)
            self._stream_write(data)
            self.bytes_written += len(data)

    def post_msg(self, frame: bytes, try_now: bool = False) -> None:
        """Queue an encoded message frame without waiting for the write
        lock: it goes out ahead of the next data written or flushed.  With
        ``try_now`` it is sent at once when the lock is free.  The reader
        thread posts this way, so it never stops reading to wait for a
        writer (which may itself wait for the peer to read)."""
        with self._plock:
            self._pending.append(frame)
        if try_now and self._mux_out and self._wlock.acquire(blocking=False):
            try:
                self._send_pending()
            finally:
                self._wlock.release()

    def _send_buffered(self) -> None:
        if self._pending:
            self._send_pending()
        if self._wbuf:
            frames = encode_data(self._wbuf)
            self._wbuf = bytearray()
            self._stream_write(frames)
            self._last_send = time.monotonic()
            self.bytes_written += len(frames)

    def flush(self) -> None:
        with self._wlock:
            self._send_buffered()
            flush = getattr(self.stream, "flush", None)
            if flush:
                flush()

    def send_msg(self, tag: int, payload: bytes = b"") -> None:
        """An out-of-band message.  Like rsync (io.c keeps messages in their
        own buffer and writes it first) it goes ahead of data still
        buffered, so "deleting" lines reach the client promptly."""
        with self._wlock:
            if self._pending:
                self._send_pending()
            frame = encode_frame(tag, payload)
            self._stream_write(frame)
            self.bytes_written += len(frame)

    def close(self, wait_for_peer: bool = True) -> None:
        """End our side: flush, half-close, and read the peer's side to its
        end (briefly), so no unread input is left in our socket -- closing
        with unread input can make the peer lose our last frames.
        ``wait_for_peer=False``: the protocol's last exchange is done and
        the peer sends nothing more (a server at the normal end of a run),
        so its hang-up is not waited for."""
        self._done = True
        try:
            self.flush()
        except (OSError, PysyncError):
            pass
        self.shutdown_write()
        if self._reader is not None and self._reader.is_alive():
            # After an error exit the peer may still be busy writing until it
            # reads our MSG_ERROR_EXIT: wait for it to hang up (it stops
            # writing once it sees the message), or the rest of our input
            # would be discarded with a reset.
            if self.error_exit_sent:
                self.drain_messages(30.0)
            elif wait_for_peer:
                self.drain_messages(2.0)

    def shutdown_write(self) -> None:
        # Wait for a frame being written to be complete; but a writer stuck
        # on a peer that stopped reading must not keep us here.
        got = self._wlock.acquire(timeout=10)
        try:
            self.stream.close_write()
        except OSError:
            pass
        finally:
            if got:
                self._wlock.release()

    def send_error_exit(self, code: int, timeout: float = 5.0) -> None:
        """Tell the peer we are exiting with ``code`` (MSG_ERROR_EXIT), once,
        without waiting long for a writer that may be stuck."""
        if not self._mux_out:
            return
        # The flag is checked under the write lock: a second thread failing
        # at the same time must not half-close the stream before the first
        # one's frame is out.
        if not self._wlock.acquire(timeout=timeout):
            return
        try:
            if self.error_exit_sent:
                return
            self.error_exit_sent = True
            self._send_buffered()
            self._stream_write(encode_frame(MSG_ERROR_EXIT, code.to_bytes(4, "little")))
        except PysyncError:
            pass
        finally:
            self._wlock.release()

    def abort(self) -> None:
        """Stop everything: wake readers and unblock the peer (used when one
        role fails so the other does not wait forever)."""
        self._fail(StreamError("transfer aborted"))
        try:
            self.stream.abort()
        except (OSError, AttributeError):
            pass

    def wait_reader(self, timeout: float | None = None) -> None:
        if self._reader is not None:
            self._reader.join(timeout)

    def drain_messages(self, timeout: float) -> None:
        """Nobody will read data any more: let the reader thread skip it so
        it reaches the peer's last messages (MSG_ERROR_EXIT) and the end."""
        with self._cond:
            self._discard = True
            self._cond.notify_all()
        self.wait_reader(timeout)

