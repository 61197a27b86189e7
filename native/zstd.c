/*
 * zstd.c - zstd streaming for the compressed token stream (-z with zstd),
 * on the system's libzstd, found at run time with dlopen().
 *
 * Why not python-zstandard: its extension carries a private copy of zstd
 * (a ~12 MiB file) and its package imports `platform`; the receiver also
 * needs its cffi backend for output in bounded pieces, a second copy.  Read
 * cold, that is ~25 ms of a transfer.  libzstd.so.1 is the library rsync
 * itself links, so the compressed bytes are also the ones rsync sends.
 *
 * Nothing here is needed at build time: the few entry points and the two
 * buffer structs are declared below as the zstd manual documents them
 * (stable API since zstd 1.4.0).  When no usable libzstd is found,
 * pysync_zstd_version() returns 0 and pysync/protocol/compress.py uses
 * python-zstandard instead.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include "pysync_native.h"

typedef struct { const void *src; size_t size; size_t pos; } zin_buf;
typedef struct { void *dst; size_t size; size_t pos; } zout_buf;

/* ZSTD_cParameter and ZSTD_EndDirective values used here. */
#define ZC_COMPRESSION_LEVEL 100
#define ZE_CONTINUE 0
#define ZE_FLUSH 1
/* ZSTD_compressStream2() and ZSTD_CCtx_setParameter() became stable API. */
#define ZSTD_MIN_VERSION 10400

static struct {
    unsigned version;           /* 0: none usable */
    void *(*create_cctx)(void);
    size_t (*free_cctx)(void *);
    size_t (*set_parameter)(void *, int, int);
    size_t (*compress_stream2)(void *, zout_buf *, zin_buf *, int);
    void *(*create_dctx)(void);
    size_t (*free_dctx)(void *);
    size_t (*decompress_stream)(void *, zout_buf *, zin_buf *);
    unsigned (*is_error)(size_t);
    const char *(*error_name)(size_t);
} z;

static pthread_once_t z_once = PTHREAD_ONCE_INIT;

static const char *const z_names[] = {
    "libzstd.so.1", "libzstd.so", "libzstd.1.dylib", "libzstd.dylib", NULL
};

#define Z_SYM(field, name) \
    (*(void **)&z.field = dlsym(lib, name)) != NULL

static void z_load(void)
{
    void *lib = NULL;
    unsigned (*version_number)(void);
    for (int i = 0; z_names[i] && !lib; i++)
        lib = dlopen(z_names[i], RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return;
    *(void **)&version_number = dlsym(lib, "ZSTD_versionNumber");
    if (!version_number || version_number() < ZSTD_MIN_VERSION
        || !(Z_SYM(create_cctx, "ZSTD_createCCtx")
             && Z_SYM(free_cctx, "ZSTD_freeCCtx")
             && Z_SYM(set_parameter, "ZSTD_CCtx_setParameter")
             && Z_SYM(compress_stream2, "ZSTD_compressStream2")
             && Z_SYM(create_dctx, "ZSTD_createDCtx")
             && Z_SYM(free_dctx, "ZSTD_freeDCtx")
             && Z_SYM(decompress_stream, "ZSTD_decompressStream")
             && Z_SYM(is_error, "ZSTD_isError")
             && Z_SYM(error_name, "ZSTD_getErrorName"))) {
        dlclose(lib);
        memset(&z, 0, sizeof z);
        return;
    }
    z.version = version_number();   /* the library stays loaded for good */
}

unsigned pysync_zstd_version(void)
{
    pthread_once(&z_once, z_load);
    return z.version;
}

void *pysync_zstd_cctx_new(int level)
{
    void *cctx;
    if (!pysync_zstd_version())
        return NULL;
    cctx = z.create_cctx();
    if (cctx && z.is_error(z.set_parameter(cctx, ZC_COMPRESSION_LEVEL, level))) {
        z.free_cctx(cctx);
        cctx = NULL;
    }
    return cctx;
}

void pysync_zstd_cctx_free(void *cctx)
{
    if (cctx)
        z.free_cctx(cctx);
}

void *pysync_zstd_dctx_new(void)
{
    return pysync_zstd_version() ? z.create_dctx() : NULL;
}

void pysync_zstd_dctx_free(void *dctx)
{
    if (dctx)
        z.free_dctx(dctx);
}

const char *pysync_zstd_error_name(size_t code)
{
    return pysync_zstd_version() ? z.error_name(code) : "no libzstd";
}

int pysync_zstd_compress(void *cctx, const unsigned char *src, size_t len,
                         size_t *pos, int flush, unsigned char *dst, size_t cap,
                         size_t *written, size_t *err)
{
    zin_buf in = { src, len, *pos };
    zout_buf out = { dst, cap, 0 };
    int op = flush ? ZE_FLUSH : ZE_CONTINUE;
    size_t r;

    for (;;) {
        r = z.compress_stream2(cctx, &out, &in, op);
        if (z.is_error(r))
            break;
        /* Done: all input taken and, for a flush, nothing left inside. */
        if (in.pos == in.size && (!flush || r == 0))
            break;
        if (out.pos == out.size)
            break;
    }
    *pos = in.pos;
    *written = out.pos;
    if (z.is_error(r)) {
        *err = r;
        return -1;
    }
    return (in.pos < in.size || (flush && r != 0)) ? 1 : 0;
}

int pysync_zstd_decompress(void *dctx, const unsigned char *src, size_t len,
                           size_t *pos, unsigned char *dst, size_t cap,
                           size_t *written, size_t *err)
{
    zin_buf in = { src, len, *pos };
    zout_buf out = { dst, cap, 0 };
    size_t r;

    do {
        size_t in_before = in.pos, out_before = out.pos;
        r = z.decompress_stream(dctx, &out, &in);
        if (z.is_error(r))
            break;
        if (in.pos == in_before && out.pos == out_before)
            break;              /* no progress: wait for more input */
    } while (in.pos < in.size && out.pos < out.size);
    *pos = in.pos;
    *written = out.pos;
    if (z.is_error(r)) {
        *err = r;
        return -1;
    }
    return 0;
}
