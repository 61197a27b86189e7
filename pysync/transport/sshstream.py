"""The SSH transport's fast data path: received channel data kept in the
chunks paramiko decrypted (``_ChunkPipe``), and outgoing channel data cut
into packets and encrypted in reused buffers, one system call per batch
(``_Packetizer``).  Reaches into paramiko's private packetizer state; it
checks that state at run time and falls back to paramiko's own path.
"""

from __future__ import annotations

import collections
import os
import socket
import struct
import threading
import time

import paramiko
from paramiko.buffered_pipe import PipeTimeout
from paramiko.packet import Packetizer

from .sshdefs import BATCH

# fast data path
# ---------------------------------------------------------------------------


class _ChunkPipe:
    """Drop-in for paramiko's BufferedPipe: keeps the received chunks as
    they are, so a read copies each byte once (joining at most ``n``)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._chunks = collections.deque()
        self._size = 0
        self._closed = False
        self._event = None

    def set_event(self, event):
        with self._lock:
            self._event = event
            if self._closed or self._size:
                event.set()
            else:
                event.clear()

    def feed(self, data):
        if not data:
            return
        with self._lock:
            self._chunks.append(bytes(data))
            self._size += len(data)
            if self._event is not None:
                self._event.set()
            self._cv.notify_all()

    def read_ready(self):
        with self._lock:
            return self._size > 0

    def read(self, nbytes, timeout=None):
        with self._lock:
            if not self._size:
                if self._closed:
                    return b""
                if timeout == 0.0:
                    raise PipeTimeout()
                deadline = None if timeout is None else time.monotonic() + timeout
                while not self._size and not self._closed:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise PipeTimeout()
                    self._cv.wait(left)
                if not self._size:
                    return b""
            chunks = self._chunks
            first = chunks[0]
            if len(first) >= nbytes:
                if len(first) == nbytes:
                    chunks.popleft()
                    out = first
                else:
                    out = first[:nbytes]
                    chunks[0] = first[nbytes:]
            else:
                parts, got = [], 0
                while chunks and got + len(chunks[0]) <= nbytes:
                    c = chunks.popleft()
                    parts.append(c)
                    got += len(c)
                out = b"".join(parts)
            self._size -= len(out)
            if not self._size and self._event is not None and not self._closed:
                self._event.clear()
            return out

    def empty(self):
        with self._lock:
            out = b"".join(self._chunks)
            self._chunks.clear()
            self._size = 0
            if self._event is not None and not self._closed:
                self._event.clear()
            return out

    def close(self):
        with self._lock:
            self._closed = True
            self._cv.notify_all()
            if self._event is not None:
                self._event.set()

    def __len__(self):
        with self._lock:
            return self._size


def _install_pipe(ch, attr: str = "in_buffer") -> None:
    """Give channel ``ch`` a _ChunkPipe, keeping whatever already arrived
    in paramiko's pipe (a forwarded server may greet at once) and sending
    any later feed to the old pipe on to the new one."""
    old = getattr(ch, attr)
    new = _ChunkPipe()
    lock = getattr(old, "_lock", None)
    if lock is None or not hasattr(old, "_buffer_frombytes") or not hasattr(old, "empty"):
        if len(old) == 0:
            setattr(ch, attr, new)
        return
    with lock:
        buf = getattr(old, "_buffer", b"")
        leftover = buf.tobytes() if hasattr(buf, "tobytes") else bytes(buf)
        del buf[:]
        new.feed(leftover)
        if old._closed:
            new.close()
        old._buffer_frombytes = new.feed        # a feeder still holding the old pipe
        setattr(ch, attr, new)


class _DataBatch:
    """CHANNEL_DATA packets for ``view``, handed to ``_Packetizer``
    through paramiko's own send path (which waits out key re-exchange)."""

    __slots__ = ("chanid", "view", "packet_size")

    def __init__(self, chanid: int, view: memoryview, packet_size: int):
        self.chanid, self.view, self.packet_size = chanid, view, packet_size

    def messages(self):
        """The same packets as ordinary paramiko Messages (slow path)."""
        for off in range(0, len(self.view), self.packet_size):
            m = paramiko.Message()
            m.add_byte(bytes([94]))
            m.add_int(self.chanid)
            m.add_string(bytes(self.view[off:off + self.packet_size]))
            yield m


_P = "_Packetizer__"   # paramiko's packetizer keeps its state in private names


class _Packetizer(Packetizer):
    """paramiko's packetizer, plus ``_DataBatch``: many data packets built
    with one copy of the payload each, encrypted, and written with one
    ``sendall``.  Supports AES-GCM and CTR with (EtM) HMAC; anything else
    (or a paramiko whose internals differ) goes through the ordinary path,
    still with one write per batch."""

    _fast_ok = None

    def __init__(self, sock):
        super().__init__(sock)
        self._collect = None
        self._sock = sock
        self._pad = os.urandom(4096)
        self._padpos = 0
        self._outbuf = None
        self._plain = None

    def write_all(self, out):
        if self._collect is not None:
            self._collect.append(out)
        else:
            super().write_all(out)

    def send_message(self, data):
        if not isinstance(data, _DataBatch):
            return super().send_message(data)
        lock = getattr(self, _P + "write_lock")
        with lock:
            if self._can_go_fast():
                out = self._encode_fast(data)
            else:
                self._collect = []
                try:
                    for m in data.messages():
                        super().send_message(m)
                finally:
                    out, self._collect = self._collect, None
            self._send_all(out)

    def _send_all(self, parts) -> None:
        sock = self._sock
        if not isinstance(sock, socket.socket):
            super().write_all(b"".join(parts))
            return
        parts = [memoryview(p) for p in parts if len(p)]
        i = 0
        while i < len(parts):
            try:
                sent = sock.sendmsg(parts[i:i + 512])
            except (socket.timeout, BlockingIOError, InterruptedError):
                if self.__dict__.get(_P + "closed"):
                    raise EOFError() from None
                continue
            except OSError:
                raise EOFError() from None
            while sent:
                size = len(parts[i])
                if sent >= size:
                    sent -= size
                    i += 1
                else:
                    parts[i] = parts[i][sent:]
                    sent = 0

    def _can_go_fast(self) -> bool:
        g = self.__dict__
        if self._fast_ok is False:
            return False
        try:
            if g[_P + "compress_engine_out"] is not None or g[_P + "block_engine_out"] is None:
                return False
            if g[_P + "aead_out"]:
                return hasattr(g[_P + "block_engine_out"], "encrypt")
            return g[_P + "sdctr_out"] and g[_P + "mac_engine_out"] is not None
        except KeyError:
            type(self)._fast_ok = False
            return False

    def _padding(self, n: int) -> bytes:
        pos = self._padpos
        if pos + n > len(self._pad):
            self._pad, pos = os.urandom(4096), 0
        self._padpos = pos + n
        return self._pad[pos:pos + n]

    def _buffers(self, total: int, npackets: int, psize: int):
        """Reusable plaintext (one packet) and ciphertext (one batch) buffers:
        fresh allocations per packet cost more than the encryption."""
        need = total + npackets * 96 + 64
        if self._outbuf is None or len(self._outbuf) < need:
            self._outbuf = memoryview(bytearray(max(need, BATCH + BATCH // 8)))
        if self._plain is None or len(self._plain) < psize + 64:
            self._plain = memoryview(bytearray(psize + 64))
        return self._plain, self._outbuf

    def _encode_fast(self, batch: _DataBatch) -> list:
        import hmac as _hmac
        g = self.__dict__
        engine = g[_P + "block_engine_out"]
        bsize = g[_P + "block_size_out"]
        aead = g[_P + "aead_out"]
        etm = g[_P + "etm_out"]
        seq = g[_P + "sequence_number_out"]
        mac_engine, mac_key, mac_size = g[_P + "mac_engine_out"], g[_P + "mac_key_out"], g[_P + "mac_size_out"]
        iv = g[_P + "iv_out"]
        view, psize, chanid = batch.view, batch.packet_size, batch.chanid
        total = len(view)
        npackets = -(-total // psize)
        pv, ov = self._buffers(total, npackets, psize)
        into = getattr(engine, "encrypt_into", None) if aead else None
        addlen = 4 if (etm or aead) else 8
        pack, pack_into = struct.pack, struct.pack_into
        pos = 0
        for off in range(0, total, psize):
            chunk = view[off:off + psize]
            d = len(chunk)
            plen = 9 + d                                  # payload: byte 94, channel, string
            pad = 3 + bsize - ((plen + addlen) % bsize)
            n = 5 + plen + pad                            # the packet, length field included
            pack_into(">IBBII", pv, 0, n - 4, pad, 94, chanid, d)
            pv[14:14 + d] = chunk                         # the one copy of the data
            pv[14 + d:n] = self._padding(pad)
            if aead:
                ov[pos:pos + 4] = pv[:4]
                if into is not None:
                    into(iv, pv[4:n], pv[:4], ov[pos + 4:pos + n + 16])
                else:
                    ov[pos + 4:pos + n + 16] = engine.encrypt(iv, pv[4:n], pv[:4])
                pos += n + 16
                counter = (int.from_bytes(iv[4:], "big") + 1) & 0xFFFFFFFFFFFFFFFF
                iv = iv[:4] + counter.to_bytes(8, "big")
            else:
                mac = _hmac.new(mac_key, pack(">I", seq), mac_engine)
                if etm:
                    ov[pos:pos + 4] = pv[:4]
                    engine.update_into(pv[4:n], ov[pos + 4:])
                    mac.update(ov[pos:pos + n])
                else:
                    engine.update_into(pv[:n], ov[pos:])
                    mac.update(pv[:n])
                ov[pos + n:pos + n + mac_size] = mac.digest()[:mac_size]
                pos += n + mac_size
            seq = (seq + 1) & 0xFFFFFFFF
        g[_P + "sequence_number_out"] = seq
        if aead:
            g[_P + "iv_out"] = iv
        g[_P + "sent_bytes"] += pos
        g[_P + "sent_packets"] += npackets
        if ((g[_P + "sent_packets"] >= self.REKEY_PACKETS or g[_P + "sent_bytes"] >= self.REKEY_BYTES)
                and not g[_P + "need_rekey"]):
            self._trigger_rekey()
        g[_P + "keepalive_last"] = time.time()
        return [ov[:pos]]

