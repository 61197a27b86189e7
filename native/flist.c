/*
 * flist.c - the file list's ordinary entries on the wire, many at a time.
 *
 * The specification is the Python coder (pysync/protocol/flist.py,
 * FlistEncoder.encode and FlistDecoder._decode); pysync/protocol/
 * flist_native.py drives these loops and hands every entry they do not
 * take to it.  Nothing here reads files or sockets: fields in, bytes out,
 * and bytes in, fields out.
 *
 * The encoder stops (returns the entry's index) at any entry it does not
 * cover: one with optional data (the caller's "plain" byte is 0), a
 * device, a mode 0, a symlink whose target is to be sent, or when the
 * output would not fit.  The decoder stops at any entry it does not
 * accept, *before* reading it, so that the Python decoder reads that entry
 * from the start and gives its own result or error: the end of the list,
 * hard links, devices, user/group names, unknown flags, out-of-range
 * values, and names that are empty, hold a NUL, or would be changed by the
 * receiver's name cleaning ("", ".", "..", "//", a leading or trailing
 * '/').
 */
#include <string.h>

#include "pysync_native.h"

#define X_TOP_DIR           (1u << 0)
#define X_SAME_MODE         (1u << 1)
#define X_EXTENDED_FLAGS    (1u << 2)
#define X_SAME_UID          (1u << 3)
#define X_SAME_GID          (1u << 4)
#define X_SAME_NAME         (1u << 5)
#define X_LONG_NAME         (1u << 6)
#define X_SAME_TIME         (1u << 7)
#define X_NO_CONTENT_DIR    (1u << 8)
#define X_MOD_NSEC          (1u << 13)

/* The flags an accepted entry may carry (bit 8 means "no content" for a
 * directory and "same rdev major" for a device; devices are not taken). */
#define X_ACCEPTED (X_TOP_DIR | X_SAME_MODE | X_EXTENDED_FLAGS | X_SAME_UID | X_SAME_GID \
                    | X_SAME_NAME | X_LONG_NAME | X_SAME_TIME | X_NO_CONTENT_DIR | X_MOD_NSEC)

#define F_IFMT   0170000u
#define F_IFSOCK 0140000u
#define F_IFLNK  0120000u
#define F_IFREG  0100000u
#define F_IFBLK  0060000u
#define F_IFDIR  0040000u
#define F_IFCHR  0020000u
#define F_IFIFO  0010000u

#define MAX_PATH 4096
#define MAX_NSEC 999999999u

/* ---- encoding ------------------------------------------------------------ */

/* rsync's variable-length integer: the value's low `width` bytes, high zero
 * bytes dropped down to min_bytes; the first byte has one leading 1-bit per
 * byte beyond min_bytes - 1 and, when they fit, the top byte's bits. */
static size_t put_var(unsigned char *out, uint64_t v, int width, int min_bytes)
{
    unsigned char b[8];
    int cnt, i;
    unsigned bit, top;

    for (i = 0; i < width; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    cnt = width;
    while (cnt > min_bytes && b[cnt - 1] == 0)
        cnt--;
    bit = 1u << (7 - cnt + min_bytes);
    top = b[cnt - 1];
    if (top >= bit) {
        out[0] = (unsigned char)(~(bit - 1) & 0xFF);
        memcpy(out + 1, b, (size_t)cnt);
        return (size_t)cnt + 1;
    }
    out[0] = (unsigned char)(cnt > min_bytes ? (top | (~(bit * 2 - 1) & 0xFF)) : top);
    memcpy(out + 1, b, (size_t)cnt - 1);
    return (size_t)cnt;
}

static size_t put_varint(unsigned char *out, uint32_t v)
{
    if (v < 0x80) {
        out[0] = (unsigned char)v;
        return 1;
    }
    return put_var(out, v, 4, 1);
}

size_t pysync_flist_encode(pysync_flist_state *st,
                           const unsigned char *last, size_t lastlen,
                           const unsigned char *names, const uint32_t *ends,
                           const uint32_t *modes, const int64_t *sizes,
                           const int64_t *mtimes, const uint32_t *nsecs,
                           const uint32_t *uids, const uint32_t *gids,
                           const uint32_t *xflags, const unsigned char *plain,
                           size_t start, size_t n,
                           unsigned char *out, size_t cap, size_t *written)
{
    size_t i, w = *written;
    int do_uid = (st->opts & PYSYNC_FLIST_UID) != 0;
    int do_gid = (st->opts & PYSYNC_FLIST_GID) != 0;
    int do_links = (st->opts & PYSYNC_FLIST_LINKS) != 0;
    size_t csum_len = st->csum_len;

    for (i = start; i < n; i++) {
        uint32_t mode = modes[i], fmt = mode & F_IFMT, xf, uid, gid, nsec;
        size_t nstart = i ? ends[i - 1] : 0;
        size_t nlen = ends[i] - nstart, l1, l2, lim;
        const unsigned char *name = names + nstart;
        int64_t mtime;
        int first;

        if (!plain[i] || mode > 0x7FFFFFFFu)
            return i;
        if (fmt == F_IFDIR)
            xf = xflags[i] & (X_TOP_DIR | X_NO_CONTENT_DIR);
        else if (fmt == F_IFREG || fmt == F_IFIFO || fmt == F_IFSOCK)
            xf = 0;
        else if (fmt == F_IFLNK && !do_links)
            xf = 0;
        else
            return i;       /* devices, mode 0, symlink targets: Python */
        if (w + nlen + 64 + csum_len > cap)
            return i;
        if (i > 0) {        /* else the caller's: the batch before's last name */
            size_t pstart = i >= 2 ? ends[i - 2] : 0;
            last = names + pstart;
            lastlen = ends[i - 1] - pstart;
        }
        lim = nlen < lastlen ? nlen : lastlen;
        if (lim > 255)
            lim = 255;
        for (l1 = 0; l1 < lim && name[l1] == last[l1]; l1++)
            ;
        l2 = nlen - l1;

        first = st->count == 0;
        st->count++;
        if (mode == st->mode)
            xf |= X_SAME_MODE;
        else
            st->mode = mode;
        uid = do_uid ? uids[i] : 0;
        gid = do_gid ? gids[i] : 0;
        if (!do_uid || (uid == st->uid && !first))
            xf |= X_SAME_UID;
        else
            st->uid = uid;
        if (!do_gid || (gid == st->gid && !first))
            xf |= X_SAME_GID;
        else
            st->gid = gid;
        mtime = mtimes[i];
        if (mtime == st->mtime)
            xf |= X_SAME_TIME;
        else
            st->mtime = mtime;
        nsec = nsecs[i];
        if (nsec)
            xf |= X_MOD_NSEC;
        if (l1)
            xf |= X_SAME_NAME;
        if (l2 > 255)
            xf |= X_LONG_NAME;

        w += put_varint(out + w, xf ? xf : X_EXTENDED_FLAGS);
        if (l1)
            out[w++] = (unsigned char)l1;
        if (l2 > 255)
            w += put_varint(out + w, (uint32_t)l2);
        else
            out[w++] = (unsigned char)l2;
        memcpy(out + w, name + l1, l2);
        w += l2;
        w += put_var(out + w, (uint64_t)sizes[i], 8, 3);
        if (!(xf & X_SAME_TIME))
            w += put_var(out + w, (uint64_t)mtime, 8, 4);
        if (xf & X_MOD_NSEC)
            w += put_varint(out + w, nsec);
        if (!(xf & X_SAME_MODE)) {
            out[w++] = (unsigned char)mode;
            out[w++] = (unsigned char)(mode >> 8);
            out[w++] = (unsigned char)(mode >> 16);
            out[w++] = (unsigned char)(mode >> 24);
        }
        if (do_uid && !(xf & X_SAME_UID))
            w += put_varint(out + w, uid);
        if (do_gid && !(xf & X_SAME_GID))
            w += put_varint(out + w, gid);
        if (csum_len && fmt == F_IFREG) {
            /* A plain entry has no sum: the field is all zeros. */
            memset(out + w, 0, csum_len);
            w += csum_len;
        }
        *written = w;
    }
    return n;
}

/* ---- decoding ------------------------------------------------------------ */

/* Number of extra bytes announced by a varint's first byte: its leading
 * one-bits, at most 6 (as rsync's table: 0xFC to 0xFF all announce 6). */
static int extra_bytes(unsigned first)
{
    int n = 0;
    while (n < 6 && (first & (0x80u >> n)))
        n++;
    return n;
}

/* A varint at *p (signed 32-bit); 1 done, 0 short, -1 not ours (overflow). */
static int get_varint(const unsigned char *buf, size_t len, size_t *p, int32_t *v)
{
    size_t q = *p;
    unsigned first;
    int extra, i;
    uint32_t u = 0;

    if (q >= len)
        return 0;
    first = buf[q++];
    extra = extra_bytes(first);
    if (extra > 4)
        return -1;
    if (q + (size_t)extra > len)
        return 0;
    for (i = 0; i < extra; i++)
        u |= (uint32_t)buf[q + i] << (8 * i);
    if (extra < 4)
        u |= (uint32_t)(first & ((1u << (8 - extra)) - 1)) << (8 * extra);
    *p = q + (size_t)extra;
    *v = (int32_t)u;
    return 1;
}

/* A varlong of at least min_bytes bytes (signed 64-bit); as get_varint. */
static int get_varlong(const unsigned char *buf, size_t len, size_t *p, int min_bytes,
                       int64_t *v)
{
    size_t q = *p;
    unsigned first;
    int extra, i, k = 0;
    uint64_t u = 0;

    if (q >= len)
        return 0;
    first = buf[q++];
    if (q + (size_t)(min_bytes - 1) > len)
        return 0;
    for (i = 0; i < min_bytes - 1; i++, k++)
        u |= (uint64_t)buf[q + i] << (8 * k);
    q += (size_t)(min_bytes - 1);
    extra = extra_bytes(first);
    if (min_bytes + extra > 9)
        return -1;
    if (q + (size_t)extra > len)
        return 0;
    for (i = 0; i < extra; i++, k++)
        u |= (uint64_t)buf[q + i] << (8 * k);
    q += (size_t)extra;
    if (k < 8)
        u |= (uint64_t)(first & ((1u << (8 - extra)) - 1)) << (8 * k);
    *p = q;
    *v = (int64_t)u;
    return 1;
}

/* 1 when the receiver's cleaning leaves the name as it is and it can be
 * passed on NUL-separated: not empty, no NUL, no leading or trailing '/',
 * no empty, "." or ".." component. */
static int plain_name(const unsigned char *s, size_t n)
{
    size_t i, comp = 0;

    if (n == 0 || s[0] == '/' || s[n - 1] == '/')
        return 0;
    for (i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            size_t clen = i - comp;
            const unsigned char *c = s + comp;
            if (clen == 0 || (clen == 1 && c[0] == '.')
                || (clen == 2 && c[0] == '.' && c[1] == '.'))
                return 0;
            comp = i + 1;
        } else if (s[i] == 0) {
            return 0;
        }
    }
    return 1;
}

#define TAKE(r)  do { int r_ = (r); if (r_ == 0) goto need; if (r_ < 0) goto careful; } while (0)

int pysync_flist_decode(pysync_flist_state *st,
                        const unsigned char *last, size_t lastlen,
                        const unsigned char *buf, size_t len, size_t *pos, size_t max,
                        unsigned char *names, size_t names_cap, size_t *names_len,
                        unsigned char *links, size_t links_cap, size_t *links_len,
                        unsigned char *sums, uint32_t *modes, int64_t *sizes,
                        int64_t *mtimes, uint32_t *nsecs, uint32_t *uids, uint32_t *gids,
                        uint16_t *extra, size_t *count, size_t *nextra)
{
    int do_uid = (st->opts & PYSYNC_FLIST_UID) != 0;
    int do_gid = (st->opts & PYSYNC_FLIST_GID) != 0;
    int do_links = (st->opts & PYSYNC_FLIST_LINKS) != 0;
    size_t csum_len = st->csum_len;
    size_t k = *count, nl = *names_len, ll = *links_len, nsums = 0;
    size_t i;

    for (i = 0; i < k; i++)     /* sums already written by an earlier call */
        if (extra[i] & PYSYNC_FLIST_HAS_SUM)
            nsums++;
    while (k < max) {
        size_t p = *pos, l1 = 0, l2, nlen;
        int32_t v32;
        int64_t size, mtime = st->mtime;
        uint32_t xf, mode = st->mode, fmt, uid = st->uid, gid = st->gid, nsec = 0;
        uint16_t ex = 0;
        unsigned char *name;
        const unsigned char *link = NULL;
        size_t linklen = 0;

        if (nl + MAX_PATH + 1 > names_cap || ll + MAX_PATH + 1 > links_cap)
            return PYSYNC_FLIST_FULL;
        TAKE(get_varint(buf, len, &p, &v32));
        xf = (uint32_t)v32;
        if (v32 <= 0 || (xf & ~X_ACCEPTED))
            goto careful;   /* the list's end, hard links, names, ...: Python */
        if (xf & X_SAME_NAME) {
            if (p >= len)
                goto need;
            l1 = buf[p++];
        }
        if (xf & X_LONG_NAME) {
            TAKE(get_varint(buf, len, &p, &v32));
            if (v32 < 0)
                goto careful;
            l2 = (uint32_t)v32;
        } else {
            if (p >= len)
                goto need;
            l2 = buf[p++];
        }
        if (l1 > lastlen || l1 + l2 >= MAX_PATH)
            goto careful;
        if (p + l2 > len)
            goto need;
        name = names + nl;
        memcpy(name, last, l1);
        memcpy(name + l1, buf + p, l2);
        nlen = l1 + l2;
        p += l2;
        if (!plain_name(name, nlen))
            goto careful;   /* as soon as the name is read, as the Python decoder */
        TAKE(get_varlong(buf, len, &p, 3, &size));
        if (!(xf & X_SAME_TIME))
            TAKE(get_varlong(buf, len, &p, 4, &mtime));
        if (xf & X_MOD_NSEC) {
            TAKE(get_varint(buf, len, &p, &v32));
            if (v32 < 0 || (uint32_t)v32 > MAX_NSEC)
                goto careful;
            nsec = (uint32_t)v32;
        }
        if (!(xf & X_SAME_MODE)) {
            if (p + 4 > len)
                goto need;
            mode = (uint32_t)buf[p] | (uint32_t)buf[p + 1] << 8 | (uint32_t)buf[p + 2] << 16
                   | (uint32_t)buf[p + 3] << 24;
            p += 4;
        }
        fmt = mode & F_IFMT;
        if (fmt != F_IFREG && fmt != F_IFDIR && fmt != F_IFLNK && fmt != F_IFIFO
            && fmt != F_IFSOCK)
            goto careful;   /* devices, mode 0, invalid modes */
        if (do_uid && !(xf & X_SAME_UID)) {
            TAKE(get_varint(buf, len, &p, &v32));
            uid = (uint32_t)v32;
        }
        if (do_gid && !(xf & X_SAME_GID)) {
            TAKE(get_varint(buf, len, &p, &v32));
            gid = (uint32_t)v32;
        }
        if (fmt == F_IFLNK) {
            ex |= PYSYNC_FLIST_HAS_LINK;
            if (do_links) {
                TAKE(get_varint(buf, len, &p, &v32));
                if (v32 < 0 || (size_t)v32 + 1 > MAX_PATH)
                    goto careful;
                linklen = (size_t)v32;
                if (p + linklen > len)
                    goto need;
                link = buf + p;
                if (memchr(link, 0, linklen))
                    goto careful;
                p += linklen;
            }
        }
        if (csum_len && fmt == F_IFREG) {
            if (p + csum_len > len)
                goto need;
            memcpy(sums + nsums * csum_len, buf + p, csum_len);
            p += csum_len;
            ex |= PYSYNC_FLIST_HAS_SUM;
        }
        if (size < 0)
            goto careful;
        if (fmt == F_IFDIR && (xf & (X_TOP_DIR | X_NO_CONTENT_DIR)))
            ex |= (uint16_t)(xf & (X_TOP_DIR | X_NO_CONTENT_DIR));
        /* The whole entry is here and ours: commit it. */
        if (ex & PYSYNC_FLIST_HAS_SUM)
            nsums++;
        if (ex & PYSYNC_FLIST_HAS_LINK) {
            memcpy(links + ll, link, linklen);
            ll += linklen;
            links[ll++] = 0;
        }
        name[nlen] = 0;
        last = name;
        lastlen = nlen;
        nl += nlen + 1;
        st->mode = mode;
        st->mtime = mtime;
        st->uid = uid;
        st->gid = gid;
        modes[k] = mode;
        sizes[k] = size;
        mtimes[k] = mtime;
        nsecs[k] = nsec;
        uids[k] = do_uid ? uid : 0;
        gids[k] = do_gid ? gid : 0;
        extra[k] = ex;
        if (ex)
            (*nextra)++;
        k++;
        *pos = p;
        *count = k;
        *names_len = nl;
        *links_len = ll;
    }
    return PYSYNC_FLIST_FULL;
need:
    return PYSYNC_FLIST_NEED;
careful:
    return PYSYNC_FLIST_CAREFUL;
}
