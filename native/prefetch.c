/*
 * prefetch.c - the lookups of the cache hints of pysync/io/prefetch.py
 * (the destination warmer, the sender's scan-ahead), run without the GIL.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pysync_native.h"

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Whether the component p[0..n) may be resolved: not empty, ".", "..". */
static int safe_component(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (p[0] == '.' && (n == 1 || (n == 2 && p[1] == '.')))
        return 0;
    return 1;
}

/* Whether every component of the name p[0..n) may be resolved. */
static int safe_name(const char *p, size_t n)
{
    size_t i = 0;

    if (n == 0 || p[0] == '/')
        return 0;
    while (i <= n) {
        const char *slash = memchr(p + i, '/', n - i);
        size_t len = (slash ? (size_t)(slash - p) : n) - i;

        if (!safe_component(p + i, len))
            return 0;
        i += len + 1;
    }
    return 1;
}

/* The fd of directory name[0..n) beneath root_fd, opened one component at
 * a time without following symlinks; -1 when a component is unsafe or
 * cannot be opened.  The caller closes it unless it is root_fd. */
static int open_parent(int root_fd, const char *name, size_t n)
{
    int fd = root_fd;
    size_t i = 0;
    char comp[256];

    if (n == 0)
        return root_fd;
    while (i < n) {
        const char *slash = memchr(name + i, '/', n - i);
        size_t len = (slash ? (size_t)(slash - name) : n) - i;
        int next;

        if (!safe_component(name + i, len) || len >= sizeof comp) {
            if (fd != root_fd)
                close(fd);
            return -1;
        }
        memcpy(comp, name + i, len);
        comp[len] = '\0';
        next = openat(fd, comp, DIR_FLAGS);
        if (fd != root_fd)
            close(fd);
        if (next < 0)
            return -1;
        fd = next;
        i += len + 1;
    }
    return fd;
}

int64_t pysync_warm_names(int root_fd, const char *names, size_t len, volatile int *stop,
                          int64_t *ns)
{
    int64_t t0 = now_ns();
    const char *p = names, *end = names + len;
    const char *parent = NULL;      /* the parent of the previous name */
    size_t parent_len = 0;
    int dfd = -1;                   /* its fd, or -1 */
    int64_t done = 0;
    struct stat st;

    while (p < end) {
        const char *z = memchr(p, '\0', (size_t)(end - p));
        size_t n = z ? (size_t)(z - p) : (size_t)(end - p);
        const char *slash;
        size_t plen;
        const char *base;

        if (*stop)
            break;
        if (!safe_name(p, n))
            goto next;
        slash = NULL;
        for (size_t k = n; k > 0; k--)
            if (p[k - 1] == '/') {
                slash = p + k - 1;
                break;
            }
        plen = slash ? (size_t)(slash - p) : 0;
        base = slash ? slash + 1 : p;
        if (parent == NULL || plen != parent_len || memcmp(parent, p, plen) != 0) {
            if (dfd >= 0 && dfd != root_fd)
                close(dfd);
            dfd = open_parent(root_fd, p, plen);
            parent = p;
            parent_len = plen;
        }
        if (dfd >= 0) {
            char last[256];
            size_t blen = n - (size_t)(base - p);
            if (blen < sizeof last) {
                memcpy(last, base, blen);
                last[blen] = '\0';
                if (fstatat(dfd, last, &st, AT_SYMLINK_NOFOLLOW) == 0)
                    done++;
            }
        }
    next:
        p += n + 1;
    }
    if (dfd >= 0 && dfd != root_fd)
        close(dfd);
    *ns = now_ns() - t0;
    return done;
}

int64_t pysync_warm_dir(const char *path, volatile int *stop, int64_t *ns)
{
    int64_t t0 = now_ns();
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d;
    struct dirent *de;
    struct stat st;
    int64_t done = 0;

    *ns = 0;
    if (fd < 0)
        return 0;
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return 0;
    }
    while (!*stop && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0')))
            continue;
        if (fstatat(fd, n, &st, AT_SYMLINK_NOFOLLOW) == 0)
            done++;
    }
    closedir(d);
    *ns = now_ns() - t0;
    return done;
}
