/*
 * md4.c - the MD4 message digest, written from RFC 1320.
 *
 * Used for peers and checksum choices that still ask for MD4.  OpenSSL 3
 * hides MD4 behind its legacy provider, so hashlib cannot be relied on.
 */
#include <stdlib.h>
#include <string.h>

#include "pysync_native.h"

struct pysync_md4_ctx {
    uint32_t state[4];       /* A, B, C, D */
    uint64_t length;         /* message bytes taken so far */
    unsigned char block[64]; /* pending bytes: length % 64 of them */
};

/* RFC 1320 section 3.4: word order and shift amounts of the three rounds. */
static const unsigned char ORDER[3][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15},
    {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15},
};
static const unsigned char SHIFT[3][4] = {
    {3, 7, 11, 19},
    {3, 5, 9, 13},
    {3, 9, 11, 15},
};
/* Constants added in rounds 2 and 3: sqrt(2) and sqrt(3) scaled by 2^30. */
static const uint32_t ROUND_ADD[3] = {0, 0x5A827999u, 0x6ED9EBA1u};

static inline uint32_t rotl(uint32_t x, unsigned s)
{
    return (x << s) | (x >> (32 - s));
}

static inline uint32_t round_fn(int r, uint32_t x, uint32_t y, uint32_t z)
{
    switch (r) {
    case 0: /* F: x selects y or z */
        return (x & y) | (~x & z);
    case 1: /* G: majority */
        return (x & y) | (x & z) | (y & z);
    default: /* H: parity */
        return x ^ y ^ z;
    }
}

/* Mixes one 64-byte block into state. */
static void md4_block(uint32_t state[4], const unsigned char *p)
{
    uint32_t x[16];
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    int i, r;

    for (i = 0; i < 16; i++)
        x[i] = (uint32_t)p[4 * i] | ((uint32_t)p[4 * i + 1] << 8) |
               ((uint32_t)p[4 * i + 2] << 16) | ((uint32_t)p[4 * i + 3] << 24);

    /* Each step rewrites one of A, D, C, B in turn; renaming the variables
     * after every step lets one statement serve all four positions. */
    for (r = 0; r < 3; r++) {
        for (i = 0; i < 16; i++) {
            uint32_t t = rotl(a + round_fn(r, b, c, d) + x[ORDER[r][i]] +
                                  ROUND_ADD[r],
                              SHIFT[r][i & 3]);
            a = d;
            d = c;
            c = b;
            b = t;
        }
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

static void md4_init(pysync_md4_ctx *ctx)
{
    ctx->state[0] = 0x67452301u;
    ctx->state[1] = 0xEFCDAB89u;
    ctx->state[2] = 0x98BADCFEu;
    ctx->state[3] = 0x10325476u;
    ctx->length = 0;
}

pysync_md4_ctx *pysync_md4_new(void)
{
    pysync_md4_ctx *ctx = malloc(sizeof(*ctx));

    if (ctx != NULL)
        md4_init(ctx);
    return ctx;
}

pysync_md4_ctx *pysync_md4_copy(const pysync_md4_ctx *ctx)
{
    pysync_md4_ctx *copy = malloc(sizeof(*copy));

    if (copy != NULL)
        memcpy(copy, ctx, sizeof(*copy));
    return copy;
}

void pysync_md4_free(pysync_md4_ctx *ctx)
{
    free(ctx);
}

void pysync_md4_update(pysync_md4_ctx *ctx, const unsigned char *data,
                       size_t len)
{
    size_t used = (size_t)(ctx->length % 64);

    ctx->length += len;
    if (used != 0) {
        size_t take = 64 - used < len ? 64 - used : len;

        memcpy(ctx->block + used, data, take);
        data += take;
        len -= take;
        if (used + take < 64)
            return;
        md4_block(ctx->state, ctx->block);
    }
    for (; len >= 64; data += 64, len -= 64)
        md4_block(ctx->state, data);
    memcpy(ctx->block, data, len);
}

void pysync_md4_digest(const pysync_md4_ctx *ctx, unsigned char *out)
{
    pysync_md4_ctx end = *ctx;
    unsigned char tail[72];
    uint64_t bits = ctx->length * 8;
    size_t pad = 64 - (size_t)((ctx->length + 8) % 64); /* 1..64 */
    int i;

    /* RFC 1320 sections 3.1-3.2: a 1 bit, zeros up to 56 mod 64, then the
     * bit length as a little-endian 64-bit number. */
    memset(tail, 0, sizeof(tail));
    tail[0] = 0x80;
    for (i = 0; i < 8; i++)
        tail[pad + i] = (unsigned char)(bits >> (8 * i));
    pysync_md4_update(&end, tail, pad + 8);

    for (i = 0; i < 16; i++)
        out[i] = (unsigned char)(end.state[i / 4] >> (8 * (i % 4)));
}

void pysync_md4(const unsigned char *data, size_t len, unsigned char *out)
{
    pysync_md4_ctx ctx;

    md4_init(&ctx);
    pysync_md4_update(&ctx, data, len);
    pysync_md4_digest(&ctx, out);
}
