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

/* On x86-64 the function is built twice, for AVX2 and for the baseline, and
 * the loader picks one for the CPU it runs on. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PYSYNC_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PYSYNC_CLONES
#endif

#define WEAK_CHUNK 32

PYSYNC_CLONES
void pysync_weak_sums(const unsigned char *buf, size_t len,
                      uint32_t *s1, uint32_t *s2)
{
    const signed char *p = (const signed char *)buf;
    uint32_t a = 0, b = 0;
    size_t i = 0;

    /* The serial form is a += x[i]; b += a.  Over a chunk of n bytes that
     * adds n*a + sum((n - j) * x[j]) to b and sum(x[j]) to a: two sums
     * without a chain from one byte to the next, which the compiler turns
     * into vector code.  Within a chunk the partial sums stay far below
     * 2^31 (32 * 32 * 128), so int32 is exact there. */
    for (; i + WEAK_CHUNK <= len; i += WEAK_CHUNK) {
        int32_t sa = 0, sw = 0;
        int j;

        for (j = 0; j < WEAK_CHUNK; j++) {
            int32_t x = p[i + j];

            sa += x;
            sw += (WEAK_CHUNK - j) * x;
        }
        b += (uint32_t)WEAK_CHUNK * a + (uint32_t)sw;
        a += (uint32_t)sa;
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

size_t pysync_block_weaks(const unsigned char *buf, size_t len, size_t blen,
                          uint32_t *out)
{
    size_t n = 0, off;

    if (blen == 0)
        return 0;
    for (off = 0; off < len; off += blen) {
        size_t k = len - off < blen ? len - off : blen;

        out[n++] = pysync_weak_checksum(buf + off, k);
    }
    return n;
}

size_t pysync_block_run(const unsigned char *buf, size_t len, size_t pos,
                        size_t blen, const uint32_t *weaks, size_t nweaks,
                        size_t want, size_t most)
{
    size_t k = 0;

    if (blen == 0)
        return 0;
    while (k < most && want + k < nweaks && pos <= len && len - pos >= blen &&
           pysync_weak_checksum(buf + pos, blen) == weaks[want + k]) {
        k++;
        pos += blen;
    }
    return k;
}
