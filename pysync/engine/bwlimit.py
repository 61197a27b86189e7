"""--bwlimit: pace what we write to the peer, the way rsync does (io.c
sleep_for_bwlimit): writes go out in pieces of at most rate*128 bytes
(1/8 s worth, at least 512), every piece is counted, and once the count
is ahead of the allowed rate by a tenth of a second or more the writer
sleeps until it is not.  So data leaves in short bursts and the average
over the run is the rate; the first burst is free.

The clock and the sleep are injected so the arithmetic can be tested
without waiting."""

from __future__ import annotations

import time

__all__ = ["BwLimiter"]

_MIN_SLEEP = 0.1      # upstream: io.c -- sleeps shorter than ONE_SEC/10 are deferred


class BwLimiter:
    """``rate_kib``: KiB per second (rsync's unit on the wire and in --bwlimit)."""

    def __init__(self, rate_kib: int, clock=time.monotonic, sleep=time.sleep):
        if rate_kib <= 0:
            raise ValueError("a bandwidth limit must be positive")
        self.rate = rate_kib * 1024          # bytes per second
        self.max_write = max(rate_kib * 128, 512)
        self._clock = clock
        self._sleep = sleep
        self._owed = 0.0                     # bytes written ahead of the rate
        self._prior = None                   # when the last accounting ended

    def chunks(self, data):
        """``data`` cut in pieces no longer than one write may be."""
        mv = memoryview(data)
        if mv.ndim != 1 or mv.format != "B":
            mv = mv.cast("B")
        step = self.max_write
        for pos in range(0, len(mv), step):
            yield mv[pos:pos + step]

    def wrote(self, n: int) -> None:
        """Account for ``n`` bytes just written; sleep if we are ahead."""
        self._owed += n
        start = self._clock()
        if self._prior is not None:
            self._owed = max(0.0, self._owed - (start - self._prior) * self.rate)
        wait = self._owed / self.rate
        if wait < _MIN_SLEEP:
            self._prior = start
            return
        self._sleep(wait)
        self._prior = self._clock()
        slept = self._prior - start
        # Oversleeping is credited, undersleeping is still owed.
        self._owed = (wait - slept) * self.rate
