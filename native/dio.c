/*
 * dio.c - the few Linux calls the write path needs that Python's os module
 * lacks: statx(STATX_DIOALIGN), mincore() over a file range,
 * sync_file_range() and fallocate().
 *
 * Every function returns 0 (or a count) on success and -errno on failure;
 * pysync/native.py turns negative values into OSError.  The pure-Python
 * twins (ctypes) are in pysync/_reference.py.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pysync_native.h"

/* struct statx is read by offset so that fields newer than the installed
 * kernel headers (stx_dio_read_offset_align, 6.14) are reachable. */
#define STX_MASK_OFF             0x00
#define STX_DIO_MEM_ALIGN_OFF    0x98
#define STX_DIO_OFFSET_ALIGN_OFF 0x9c
#define STX_DIO_READ_ALIGN_OFF   0xb4
#define STX_SIZE                 256
#define STATX_DIOALIGN_BIT       0x00002000U
#define STATX_DIO_READ_ALIGN_BIT 0x00020000U

int pysync_statx_dio(int fd, uint32_t *out)
{
#ifdef SYS_statx
    unsigned char buf[STX_SIZE] __attribute__((aligned(16)));
    memset(buf, 0, sizeof buf);
    if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH,
                STATX_DIOALIGN_BIT | STATX_DIO_READ_ALIGN_BIT, buf) != 0)
        return -errno;
    memcpy(&out[0], buf + STX_MASK_OFF, 4);
    memcpy(&out[1], buf + STX_DIO_MEM_ALIGN_OFF, 4);
    memcpy(&out[2], buf + STX_DIO_OFFSET_ALIGN_OFF, 4);
    memcpy(&out[3], buf + STX_DIO_READ_ALIGN_OFF, 4);
    if (!(out[0] & STATX_DIOALIGN_BIT))
        out[1] = out[2] = 0;
    if (!(out[0] & STATX_DIO_READ_ALIGN_BIT))
        out[3] = 0;
    return 0;
#else
    (void)fd; (void)out;
    return -ENOSYS;
#endif
}

int64_t pysync_mincore(int fd, uint64_t offset, uint64_t length,
                       unsigned char *vec)
{
    long page = sysconf(_SC_PAGESIZE);
    uint64_t pages, i;
    int64_t resident = 0;
    void *addr;

    if (page <= 0 || offset % (uint64_t)page)
        return -EINVAL;
    if (length == 0)
        return 0;
    pages = (length + (uint64_t)page - 1) / (uint64_t)page;
    /* Mapping does not fault anything in; PROT_READ because the mapping
     * must be of a readable fd anyway (mmap refuses write-only fds). */
    addr = mmap(NULL, (size_t)length, PROT_READ, MAP_SHARED, fd, (off_t)offset);
    if (addr == MAP_FAILED)
        return -errno;
    if (mincore(addr, (size_t)length, vec) != 0) {
        int err = errno;
        munmap(addr, (size_t)length);
        return -err;
    }
    munmap(addr, (size_t)length);
    for (i = 0; i < pages; i++) {
        vec[i] &= 1;
        resident += vec[i];
    }
    return resident;
}

int pysync_sync_file_range(int fd, int64_t offset, int64_t nbytes,
                           unsigned int flags)
{
    if (sync_file_range(fd, (off_t)offset, (off_t)nbytes, flags) != 0)
        return -errno;
    return 0;
}

int pysync_fallocate(int fd, int mode, int64_t offset, int64_t length)
{
    if (fallocate(fd, mode, (off_t)offset, (off_t)length) != 0)
        return -errno;
    return 0;
}
