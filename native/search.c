/*
 * search.c - the weak-sum table and the sender's block search.
 *
 * upstream: match.c:hash_search() (what is searched for; the data structure
 * here is our own)
 *
 * The table is an open-addressing hash set of uint32_t (linear probing, load
 * at most 1/2) in front of which sits a bit array, the prefilter.  In the
 * common case, a window that matches nothing, the search loop only tests one
 * prefilter bit, so the prefilter must be cheap to index and sparse: a false
 * pass costs a probe and a mispredicted branch.  It has about 64 bits per
 * distinct sum (at least 2^16 and at most 2^26 bits; at most 1/64 of them
 * set), and a sum's bit number is taken straight from the sum's bits, no
 * hashing: the 16 bits of s2 on top, the low bits of s1 below.
 */
#include <stdlib.h>

#include "pysync_native.h"

#if defined(__GNUC__)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define UNLIKELY(x) (x)
#endif

/* Odd multiplier of the hash set's multiplicative hash (the golden ratio). */
#define SLOT_MUL 0x9E3779B1u

#define MAX_ENTRIES ((size_t)1 << 30)
#define FILTER_BITS_PER_ENTRY_LOG2 6
#define FILTER_MIN_LOG2 16
#define FILTER_MAX_LOG2 26

struct pysync_weak_table {
    uint64_t *filter;      /* prefilter bits, 1 << filter_log2 of them */
    uint32_t filter_shift; /* filter_log2 - 16: where s2's bits go */
    uint32_t filter_s1;    /* mask of the s1 bits below them */
    uint32_t *slots;       /* hash set; 0 marks an empty slot */
    uint32_t slot_mask;    /* number of slots - 1 */
    uint32_t slot_shift;   /* 32 - log2(number of slots) */
    int has_zero;          /* whether the value 0 is a member */
    size_t count;          /* distinct members */
};

static unsigned log2_ceil(size_t n)
{
    unsigned bits = 0;

    while (((size_t)1 << bits) < n)
        bits++;
    return bits;
}

/* The prefilter bit of a window with sums s1, s2 (only their low 16 bits
 * matter); the search loop inlines this. */
static inline uint32_t filter_index(const pysync_weak_table *t, uint32_t s1,
                                    uint32_t s2)
{
    return ((s2 & 0xffffu) << t->filter_shift) | (s1 & t->filter_s1);
}

static inline int filter_passes(const pysync_weak_table *t, uint32_t s1,
                                uint32_t s2)
{
    uint32_t h = filter_index(t, s1, s2);

    return (int)((t->filter[h >> 6] >> (h & 63)) & 1);
}

/* The packed weak checksum of sums s1, s2. */
static inline uint32_t pack(uint32_t s1, uint32_t s2)
{
    return (s1 & 0xffffu) | (s2 << 16);
}

static int set_has(const pysync_weak_table *t, uint32_t sum)
{
    uint32_t i;

    if (sum == 0)
        return t->has_zero;
    for (i = (sum * SLOT_MUL) >> t->slot_shift; t->slots[i] != 0;
         i = (i + 1) & t->slot_mask) {
        if (t->slots[i] == sum)
            return 1;
    }
    return 0;
}

/* Adds sum to the set; returns 1 if it was not there before. */
static int set_add(pysync_weak_table *t, uint32_t sum)
{
    uint32_t i;

    if (sum == 0) {
        if (t->has_zero)
            return 0;
        t->has_zero = 1;
        return 1;
    }
    for (i = (sum * SLOT_MUL) >> t->slot_shift; t->slots[i] != 0;
         i = (i + 1) & t->slot_mask) {
        if (t->slots[i] == sum)
            return 0;
    }
    t->slots[i] = sum;
    return 1;
}

pysync_weak_table *pysync_table_new(const uint32_t *sums, size_t n)
{
    pysync_weak_table *t;
    unsigned slot_log2, filter_log2;
    size_t i;

    if (n > MAX_ENTRIES)
        return NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;

    slot_log2 = log2_ceil(n < 8 ? 16 : 2 * n);
    filter_log2 = log2_ceil(n < 1 ? 1 : n) + FILTER_BITS_PER_ENTRY_LOG2;
    if (filter_log2 < FILTER_MIN_LOG2)
        filter_log2 = FILTER_MIN_LOG2;
    if (filter_log2 > FILTER_MAX_LOG2)
        filter_log2 = FILTER_MAX_LOG2;

    t->slots = calloc((size_t)1 << slot_log2, sizeof(uint32_t));
    t->filter = calloc(((size_t)1 << filter_log2) / 64, sizeof(uint64_t));
    if (t->slots == NULL || t->filter == NULL) {
        pysync_table_free(t);
        return NULL;
    }
    t->slot_mask = (uint32_t)(((size_t)1 << slot_log2) - 1);
    t->slot_shift = 32 - slot_log2;
    t->filter_shift = filter_log2 - 16;
    t->filter_s1 = (1u << t->filter_shift) - 1;

    for (i = 0; i < n; i++) {
        uint32_t h;

        if (!set_add(t, sums[i]))
            continue;
        t->count++;
        h = filter_index(t, sums[i], sums[i] >> 16);
        t->filter[h >> 6] |= (uint64_t)1 << (h & 63);
    }
    return t;
}

void pysync_table_free(pysync_weak_table *table)
{
    if (table == NULL)
        return;
    free(table->slots);
    free(table->filter);
    free(table);
}

size_t pysync_table_size(const pysync_weak_table *table)
{
    return table->count;
}

int pysync_table_contains(const pysync_weak_table *table, uint32_t sum)
{
    return filter_passes(table, sum, sum >> 16) && set_has(table, sum);
}

/* One roll of the window: drop the signed byte out, take in the signed byte
 * in; k is the window length. */
#define ROLL(a, b, out, in, k)                                                \
    do {                                                                      \
        uint32_t out_ = (uint32_t)(int32_t)(out);                            \
        (a) += (uint32_t)(int32_t)(in) - out_;                                \
        (b) += (a) - (k) * out_;                                              \
    } while (0)

int64_t pysync_search(const unsigned char *buf, size_t len, size_t start,
                      size_t blen, const pysync_weak_table *table,
                      int have_prev, uint32_t *s1, uint32_t *s2)
{
    const signed char *p = (const signed char *)buf;
    const signed char *q, *end;
    const uint32_t k = (uint32_t)blen;
    uint32_t a, b;

    if (blen == 0 || start > len || len - start < blen ||
        (have_prev && start == 0)) {
        *s1 = *s2 = 0;
        return -1;
    }

    if (have_prev) {
        a = *s1;
        b = *s2;
        ROLL(a, b, p[start - 1], p[start - 1 + blen], k);
    } else {
        uint32_t a0, b0;

        pysync_weak_sums(buf + start, blen, &a0, &b0);
        a = a0;
        b = b0;
    }

    /* q is the window's first byte; end the last window's. */
    for (q = p + start, end = p + (len - blen);; q++) {
        if (UNLIKELY(filter_passes(table, a, b)) && set_has(table, pack(a, b)))
            break;
        if (q == end) {
            *s1 = a;
            *s2 = b;
            return -1;
        }
        ROLL(a, b, q[0], q[blen], k);
    }
    *s1 = a;
    *s2 = b;
    return (int64_t)(q - p);
}
