/*
 * malloc.c - mallopt() for pysync/cli.py, so that tuning the allocator at
 * start-up does not cost every process an import of ctypes.  The ctypes
 * twin is pysync/_reference.py:mallopt.
 */
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "pysync_native.h"

int pysync_mallopt(int param, int value)
{
#ifdef __GLIBC__
    return mallopt(param, value);
#else
    (void)param;
    (void)value;
    return 0;
#endif
}
