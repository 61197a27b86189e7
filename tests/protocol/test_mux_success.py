"""MSG_SUCCESS on the wire (SPEC.md §1.5): 4 bytes between any two peers,
20 (ndx, dev, ino) between the two processes of a local copy; and the
Wire's posted messages, which never make the posting thread wait."""

import socket
import threading
import time

import pytest

from pysync.protocol.buffer import ProtocolError
from pysync.protocol.constants import MSG_SUCCESS
from pysync.protocol.mux import Demux, decode_success, encode_frame, encode_success


def test_success_is_an_int32_ndx():
    frame = encode_success(5)
    assert frame == bytes([4, 0, 0, 7 + MSG_SUCCESS]) + bytes([5, 0, 0, 0])
    [(tag, payload)] = Demux().feed(frame)
    assert tag == MSG_SUCCESS and decode_success(payload) == (5, None)


def test_local_success_carries_dev_and_ino():
    frame = encode_success(70000, (0x801, 2**40 + 3))
    assert frame[:4] == bytes([20, 0, 0, 7 + MSG_SUCCESS])
    [(tag, payload)] = Demux(local_server=True).feed(frame)
    assert decode_success(payload) == (70000, (0x801, 2**40 + 3))


@pytest.mark.parametrize("local, payload", [(False, bytes(20)), (True, bytes(4)), (False, b"")])
def test_success_of_the_wrong_length_is_a_stream_error(local, payload):
    with pytest.raises(ProtocolError) as e:
        Demux(local_server=local).feed(encode_frame(MSG_SUCCESS, payload))
    assert e.value.code == 12 and "invalid multi-message 100" in str(e.value)


def test_posted_message_does_not_wait_for_the_write_lock():
    from pysync.engine.wire import Wire
    from pysync.transport.base import FdStream
    a, b = socket.socketpair()
    try:
        wire = Wire(FdStream(a.fileno(), a.fileno(), a))
        wire.start_mux()
        held, release = threading.Event(), threading.Event()

        def writer():
            with wire._wlock:
                held.set()
                release.wait(10)
        t = threading.Thread(target=writer)
        t.start()
        held.wait(10)
        start = time.monotonic()
        wire.post_msg(encode_success(9), try_now=True)   # lock busy: queued
        assert time.monotonic() - start < 1.0
        release.set()
        t.join()
        b.settimeout(0.2)
        with pytest.raises(socket.timeout):
            b.recv(100)                      # nothing sent yet: it waits for a write
        wire.write(b"xyz")
        wire.flush()
        b.settimeout(5)
        got = b""
        while len(got) < 8 + 4 + 3:
            got += b.recv(100)
        # The message goes ahead of the data.
        assert got == encode_success(9) + encode_frame(0, b"xyz")
    finally:
        a.close()
        b.close()
