/*
 * rolling.c - rsync's weak ("rolling") checksum.
 *
 * upstream: checksum.c:get_checksum1()
 *
 * Bytes are read as signed chars, which is what rsync does on every platform
 * it is built for; the difference from an unsigned reading shows up as soon
 * as a byte is 0x80 or above.  All arithmetic is on uint32_t, so every
 * overflow wraps modulo 2^32 as the specification in pysync/_reference.py
 * says.
 */
#include "pysync_native.h"

void pysync_weak_sums(const unsigned char *buf, size_t len,
                      uint32_t *s1, uint32_t *s2)
{
    const signed char *p = (const signed char *)buf;
    uint32_t a = 0, b = 0;
    size_t i = 0;

    /* Four bytes per step: b gains the four running values of a, which is
     * 4*a + 4*x0 + 3*x1 + 2*x2 + x3, and a gains their sum. */
    for (; i + 4 <= len; i += 4) {
        uint32_t x0 = (uint32_t)(int32_t)p[i];
        uint32_t x1 = (uint32_t)(int32_t)p[i + 1];
        uint32_t x2 = (uint32_t)(int32_t)p[i + 2];
        uint32_t x3 = (uint32_t)(int32_t)p[i + 3];
        b += 4 * a + 4 * x0 + 3 * x1 + 2 * x2 + x3;
        a += x0 + x1 + x2 + x3;
    }
    for (; i < len; i++) {
        a += (uint32_t)(int32_t)p[i];
        b += a;
    }
    *s1 = a;
    *s2 = b;
}

uint32_t pysync_weak_checksum(const unsigned char *buf, size_t len)
{
    uint32_t s1, s2;

    pysync_weak_sums(buf, len, &s1, &s2);
    return (s1 & 0xffffu) | (s2 << 16);
}
