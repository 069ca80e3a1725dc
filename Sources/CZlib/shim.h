#ifndef RDPTRIAGE_CZLIB_SHIM_H
#define RDPTRIAGE_CZLIB_SHIM_H
#include <stdio.h>
#include <sys/types.h>
#include <zlib.h>

/* inflateInit2 is a macro, which Swift cannot call. 15 + 16: a 32 KiB window, gzip
   framing (RFC 1952) only, so a stray zlib or raw stream is an error, not a guess. */
static inline int rdptriage_inflate_init_gzip(z_stream *s) { return inflateInit2(s, 15 + 16); }

typedef ssize_t (*rdptriage_read_function)(void *cookie, char *buffer, size_t size);

#if defined(__GLIBC__)
/* glibc's fopencookie: a GNU extension that Swift's Glibc module leaves out (it is declared
   only under _GNU_SOURCE), declared here with a struct of the same layout under a name of our
   own. */
typedef struct {
    rdptriage_read_function read;
    void *write;
    void *seek;
    void *close;
} rdptriage_cookie_functions;
FILE *rdptriage_glibc_fopencookie(void *cookie, const char *mode, rdptriage_cookie_functions functions)
    __asm__("fopencookie");

/* A read-only stdio stream whose bytes come from `read`: libpcap reads only FILE streams. */
static inline FILE *rdptriage_open_read_stream(void *cookie, rdptriage_read_function read) {
    rdptriage_cookie_functions f = {read, 0, 0, 0};
    return rdptriage_glibc_fopencookie(cookie, "r", f);
}
#else
static inline FILE *rdptriage_open_read_stream(void *cookie, rdptriage_read_function read) {
    (void)cookie;
    (void)read;
    return NULL;
}
#endif
#endif
