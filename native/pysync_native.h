/*
 * pysync_native.h - the whole C surface of pysync._native.
 *
 * This header is included by the C sources and is also the cffi cdef:
 * native/build.py strips the preprocessor lines (include guard, #include)
 * and turns every "#define NAME value" into "#define NAME ..." so that the
 * value is taken from the compiler.  Keep it to plain declarations that
 * pycparser understands.  Python code never calls these directly; it goes
 * through pysync/native.py, whose pure-Python twin is pysync/_reference.py.
 */
#ifndef PYSYNC_NATIVE_H
#define PYSYNC_NATIVE_H

#include <stddef.h>
#include <stdint.h>

/* Version of this C interface.  pysync/native.py refuses to load a module
 * whose value differs from the one it was written for; bump it on any change
 * of a declaration below. */
#define PYSYNC_NATIVE_ABI 1

/* ------------------------------------------------------------------ */
/* rolling.c: rsync's weak checksum                                   */
/* ------------------------------------------------------------------ */

/* Computes the two running sums of rsync's weak checksum over buf[0..len),
 * reading every byte as a signed char (-128..127):
 *   *s1 = sum of x[i]                 (mod 2^32)
 *   *s2 = sum of (len - i) * x[i]     (mod 2^32)
 * Both outputs are full 32-bit values, not masked to 16 bits. */
void pysync_weak_sums(const unsigned char *buf, size_t len,
                      uint32_t *s1, uint32_t *s2);

/* The packed weak checksum of buf[0..len): (s1 & 0xffff) | (s2 << 16),
 * with s1 and s2 as computed by pysync_weak_sums(). */
uint32_t pysync_weak_checksum(const unsigned char *buf, size_t len);

/* The packed weak checksums of the consecutive blocks of blen bytes of
 * buf[0..len), the last one short if blen does not divide len, into
 * out[0..n); returns n = ceil(len / blen) (0 when blen is 0).  out must
 * have room for n values. */
size_t pysync_block_weaks(const unsigned char *buf, size_t len, size_t blen,
                          uint32_t *out);

/* How many consecutive windows of blen bytes, the first at buf[pos], the
 * next blen bytes on, and so on, have the packed weak checksums
 * weaks[want], weaks[want + 1], ...: stops at the first window that
 * differs, does not fit in buf[0..len), or would need weaks[nweaks] or
 * beyond, and after at most `most` windows.  0 when blen is 0. */
size_t pysync_block_run(const unsigned char *buf, size_t len, size_t pos,
                        size_t blen, const uint32_t *weaks, size_t nweaks,
                        size_t want, size_t most);

/* ------------------------------------------------------------------ */
/* search.c: weak-sum table and the block search                      */
/* ------------------------------------------------------------------ */

/* A read-only set of 32-bit weak checksums (opaque).  Built once per file
 * from the block sums the receiver sent, then only queried. */
typedef struct pysync_weak_table pysync_weak_table;

/* Builds a table holding the n values sums[0..n); duplicates are allowed and
 * stored once.  The input array is not referenced afterwards.  Returns NULL
 * when memory runs out or n is too large (more than 2^30 entries). */
pysync_weak_table *pysync_table_new(const uint32_t *sums, size_t n);

/* Frees a table from pysync_table_new(); NULL is accepted and ignored. */
void pysync_table_free(pysync_weak_table *table);

/* Number of distinct values held by the table. */
size_t pysync_table_size(const pysync_weak_table *table);

/* 1 if sum is in the table, else 0. */
int pysync_table_contains(const pysync_weak_table *table, uint32_t sum);

/* Rolls a window of blen bytes over buf[0..len), starting at offset start,
 * and stops at the first window whose packed weak checksum is in table.
 *
 * On entry, when have_prev is nonzero, *s1 and *s2 hold the full sums of the
 * window at start - 1 (start must then be at least 1); the window at start is
 * reached by rolling once.  When have_prev is zero the window at start is
 * summed from scratch and *s1, *s2 are not read.
 *
 * Returns the offset of the first matching window, with *s1 and *s2 set to
 * that window's sums.  Returns -1 when no window from start to len - blen
 * matches, with *s1 and *s2 set to the sums of the last window examined.
 * Returns -1 with *s1 = *s2 = 0 when no window fits (blen == 0,
 * start + blen > len, or have_prev with start == 0). */
int64_t pysync_search(const unsigned char *buf, size_t len, size_t start,
                      size_t blen, const pysync_weak_table *table,
                      int have_prev, uint32_t *s1, uint32_t *s2);

/* ------------------------------------------------------------------ */
/* md4.c: MD4 message digest (RFC 1320)                               */
/* ------------------------------------------------------------------ */

/* An incremental MD4 computation (opaque). */
typedef struct pysync_md4_ctx pysync_md4_ctx;

/* Allocates a context holding the digest state of the empty message.
 * Returns NULL when memory runs out. */
pysync_md4_ctx *pysync_md4_new(void);

/* Allocates an independent copy of ctx.  Returns NULL when memory runs out. */
pysync_md4_ctx *pysync_md4_copy(const pysync_md4_ctx *ctx);

/* Frees a context; NULL is accepted and ignored. */
void pysync_md4_free(pysync_md4_ctx *ctx);

/* Appends data[0..len) to the message. */
void pysync_md4_update(pysync_md4_ctx *ctx, const unsigned char *data,
                       size_t len);

/* Writes the 16-byte digest of the message so far to out.  ctx is left as it
 * was, so more data may be appended afterwards. */
void pysync_md4_digest(const pysync_md4_ctx *ctx, unsigned char *out);

/* One-shot MD4 of data[0..len) into the 16 bytes at out. */
void pysync_md4(const unsigned char *data, size_t len, unsigned char *out);

/* ------------------------------------------------------------------ */
/* dio.c: Linux calls for the write path (pysync/io/)                 */
/* ------------------------------------------------------------------ */

/* Version of the dio.c declarations below (checked by pysync/native.py
 * separately from PYSYNC_NATIVE_ABI; bump it on any change here). */
#define PYSYNC_DIO_ABI 1

/* statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN | STATX_DIO_READ_ALIGN):
 * out[0] = stx_mask, out[1] = stx_dio_mem_align, out[2] =
 * stx_dio_offset_align, out[3] = stx_dio_read_offset_align.  Alignments
 * whose mask bit is not set are reported as 0.  Returns 0 or -errno. */
int pysync_statx_dio(int fd, uint32_t *out);

/* Page-cache residency of the file range [offset, offset+length) of fd
 * (offset page aligned; fd must be readable): one byte per page in vec
 * (1 = resident, 0 = not), which must hold ceil(length / pagesize) bytes.
 * Returns the number of resident pages, or -errno. */
int64_t pysync_mincore(int fd, uint64_t offset, uint64_t length,
                       unsigned char *vec);

/* sync_file_range(2).  Returns 0 or -errno. */
int pysync_sync_file_range(int fd, int64_t offset, int64_t nbytes,
                           unsigned int flags);

/* fallocate(2) (no glibc emulation, unlike posix_fallocate).  Returns 0
 * or -errno. */
int pysync_fallocate(int fd, int mode, int64_t offset, int64_t length);

/* ------------------------------------------------------------------ */
/* prefetch.c: the destination cache warmer (pysync/io/prefetch.py)   */
/* ------------------------------------------------------------------ */

/* Looks up each of the names in names[0..len) (relative names, each ended
 * by a NUL) beneath the directory root_fd: the components of its parent
 * opened one at a time with O_DIRECTORY|O_NOFOLLOW, the last fstatat'ed
 * with AT_SYMLINK_NOFOLLOW.  A name with a leading '/' or an empty, "."
 * or ".." component is skipped; errors are ignored (a cache hint).  Stops
 * before the next name once *stop is non-zero.  Returns how many names
 * were found (their fstatat succeeded); *ns is set to the time it took
 * (CLOCK_MONOTONIC nanoseconds).  Looked up by name (no version number): an older
 * extension without it makes pysync/native.py use the Python loop. */
int64_t pysync_warm_names(int root_fd, const char *names, size_t len, volatile int *stop,
                          int64_t *ns);

/* Lists the directory at path (a NUL-ended path, opened as given) and
 * fstatat's each entry with AT_SYMLINK_NOFOLLOW, for the sender's
 * scan-ahead.  Stops early once *stop is non-zero; errors are ignored.
 * Returns how many entries were found; *ns as above (0 when the directory
 * could not be opened).  Looked up by name, as above. */
int64_t pysync_warm_dir(const char *path, volatile int *stop, int64_t *ns);

/* ------------------------------------------------------------------ */
/* malloc.c: allocator tuning at start-up (pysync/cli.py)             */
/* ------------------------------------------------------------------ */

/* glibc's mallopt(param, value): 1 on success, 0 on failure or where the
 * C library has no mallopt.  Looked up by name (no version number): an
 * older extension without it makes pysync/native.py use the ctypes twin. */
int pysync_mallopt(int param, int value);

/* ------------------------------------------------------------------ */
/* zstd.c: zstd streams on the system libzstd (loaded with dlopen)    */
/* ------------------------------------------------------------------ */

/* ZSTD_versionNumber() of the libzstd found (e.g. 10504 for 1.5.4), or 0
 * when none is usable (missing, older than 1.4.0, or lacking an entry
 * point); the other functions must not be called then.  The library is
 * looked for on the first call only; safe from any thread. */
unsigned pysync_zstd_version(void);

/* A compression context at the given level (ZSTD_c_compressionLevel; all
 * other parameters at zstd's defaults), or NULL. */
void *pysync_zstd_cctx_new(int level);
void pysync_zstd_cctx_free(void *cctx);

/* A decompression context, or NULL. */
void *pysync_zstd_dctx_new(void);
void pysync_zstd_dctx_free(void *dctx);

/* zstd's text for an error code from the functions below. */
const char *pysync_zstd_error_name(size_t code);

/* Compresses src[*pos..len) into dst[0..cap) (ZSTD_e_continue, or
 * ZSTD_e_flush when flush is nonzero), advancing *pos and setting *written
 * to the bytes put in dst.  Returns 0 when done (all input taken and, for
 * a flush, nothing held back), 1 when dst filled first (call again with
 * the same arguments and an emptied dst), or -1 on a zstd error, with *err
 * set to zstd's error code. */
int pysync_zstd_compress(void *cctx, const unsigned char *src, size_t len,
                         size_t *pos, int flush, unsigned char *dst, size_t cap,
                         size_t *written, size_t *err);

/* Decompresses src[*pos..len) into dst[0..cap), advancing *pos, until the
 * input is used up or dst is full (then more output may be waiting);
 * *written is the bytes put in dst.  Returns 0, or -1 on a zstd error
 * with *err set to zstd's error code. */
int pysync_zstd_decompress(void *dctx, const unsigned char *src, size_t len,
                           size_t *pos, unsigned char *dst, size_t cap,
                           size_t *written, size_t *err);

/* ------------------------------------------------------------------ */
/* flist.c: the file list's ordinary entries (pysync/protocol/        */
/* flist_native.py; the Python coder in flist.py is the spec)         */
/* ------------------------------------------------------------------ */

/* Version of the flist.c declarations below (checked by pysync/native.py
 * separately from PYSYNC_NATIVE_ABI; bump it on any change here).  An
 * extension without it makes pysync use the Python coder. */
#define PYSYNC_FLIST_ABI 1

/* pysync_flist_state.opts bits: which optional fields the session sends. */
#define PYSYNC_FLIST_UID 1
#define PYSYNC_FLIST_GID 2
#define PYSYNC_FLIST_LINKS 4

/* The "same as the previous entry" state of one direction, which the
 * caller copies in before a call and out after it.  count: entries
 * encoded so far (the first one always sends its uid and gid);
 * csum_len: the -c sum's length on the wire, else 0. */
typedef struct {
    int64_t mtime;
    int64_t count;
    uint32_t mode;
    uint32_t uid;
    uint32_t gid;
    uint32_t opts;
    uint32_t csum_len;
} pysync_flist_state;

/* Encodes entries start..n-1, appending to out[*written..cap) and
 * advancing *written.  Entry i is names[ends[i-1]..ends[i]) (from 0 for
 * the first), modes[i], sizes[i], ...; uids / gids are read only with
 * PYSYNC_FLIST_UID / _GID; xflags[i] are the entry's kept transmit flags;
 * plain[i] is 0 for an entry with optional data (link target, sum,
 * device numbers, hard link...).  last[0..lastlen) is the name of the
 * entry before entry 0.  Returns the index of the first entry not
 * encoded (n when all were): one that is not plain, a device, of mode 0
 * or above 0x7FFFFFFF, a symlink with PYSYNC_FLIST_LINKS, or one that
 * might not fit in cap. */
size_t pysync_flist_encode(pysync_flist_state *st,
                           const unsigned char *last, size_t lastlen,
                           const unsigned char *names, const uint32_t *ends,
                           const uint32_t *modes, const int64_t *sizes,
                           const int64_t *mtimes, const uint32_t *nsecs,
                           const uint32_t *uids, const uint32_t *gids,
                           const uint32_t *xflags, const unsigned char *plain,
                           size_t start, size_t n,
                           unsigned char *out, size_t cap, size_t *written);

/* Return values of pysync_flist_decode: stopped because max entries were
 * decoded or an output buffer has less than a longest entry's room left
 * (FULL), because the entry at *pos is not all in buf (NEED), or because
 * the Python decoder must read the entry at *pos (CAREFUL). */
#define PYSYNC_FLIST_FULL 0
#define PYSYNC_FLIST_NEED 1
#define PYSYNC_FLIST_CAREFUL 2

/* extra[i] bits of a decoded entry: it has a link target (a symlink; the
 * empty one without PYSYNC_FLIST_LINKS), a sum, and its kept transmit
 * flags (XMIT_TOP_DIR, XMIT_NO_CONTENT_DIR of a directory) in the low
 * nine bits. */
#define PYSYNC_FLIST_HAS_LINK 0x1000
#define PYSYNC_FLIST_HAS_SUM 0x2000

/* Decodes whole entries from buf[*pos..len) while they are ordinary,
 * *count < max, and the output buffers have room, advancing *pos past
 * each.  last[0..lastlen) is the name of the entry before.  Entry k
 * gets its name, NUL-ended, appended to names (*names_len advanced;
 * names_cap is its size), its link target NUL-ended to links likewise,
 * its sum (csum_len bytes, regular files only) to sums, and its fields to
 * modes[k] ... extra[k]; *count is advanced, and *nextra for an entry
 * whose extra is not 0.  Only entries the Python decoder would give
 * unchanged are taken; the state is updated as it would be. */
int pysync_flist_decode(pysync_flist_state *st,
                        const unsigned char *last, size_t lastlen,
                        const unsigned char *buf, size_t len, size_t *pos, size_t max,
                        unsigned char *names, size_t names_cap, size_t *names_len,
                        unsigned char *links, size_t links_cap, size_t *links_len,
                        unsigned char *sums, uint32_t *modes, int64_t *sizes,
                        int64_t *mtimes, uint32_t *nsecs, uint32_t *uids, uint32_t *gids,
                        uint16_t *extra, size_t *count, size_t *nextra);

#endif /* PYSYNC_NATIVE_H */
