/*
 * keylog-shim: LD_PRELOAD library that makes any OpenSSL (1.1.1 / 3.x) client
 * write an NSS-format TLS key log to the file named by $SSLKEYLOGFILE.
 *
 * It wraps SSL_CTX_new (found with dlsym(RTLD_NEXT)) and installs
 * SSL_CTX_set_keylog_callback on every SSL_CTX the program creates. OpenSSL
 * hands the callback complete NSS lines (CLIENT_RANDOM ... for TLS 1.2,
 * *_TRAFFIC_SECRET_* for TLS 1.3); we append them, one per line.
 *
 * Build: gcc -shared -fPIC -O2 -o keylog-shim.so keylog-shim.c -ldl -lssl
 * Use:   SSLKEYLOGFILE=/tmp/x.keys LD_PRELOAD=./keylog-shim.so xfreerdp ...
 * Lab-only tool (captures/lab): keys of throw-away lab sessions.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/ssl.h>

typedef SSL_CTX *(*ssl_ctx_new_fn)(const SSL_METHOD *);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
typedef SSL_CTX *(*ssl_ctx_new_ex_fn)(OSSL_LIB_CTX *, const char *,
				      const SSL_METHOD *);
#endif

static void keylog_cb(const SSL *ssl, const char *line)
{
	(void)ssl;
	const char *path = getenv("SSLKEYLOGFILE");
	if (!path || !*path || !line)
		return;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	size_t n = strlen(line);
	/* one write per line: O_APPEND keeps lines whole across threads */
	char *buf = malloc(n + 1);
	if (buf) {
		memcpy(buf, line, n);
		buf[n] = '\n';
		ssize_t w = write(fd, buf, n + 1);
		(void)w;
		free(buf);
	}
	close(fd);
}

SSL_CTX *SSL_CTX_new(const SSL_METHOD *method)
{
	static ssl_ctx_new_fn real_new;
	if (!real_new)
		real_new = (ssl_ctx_new_fn)dlsym(RTLD_NEXT, "SSL_CTX_new");
	if (!real_new)
		return NULL;
	SSL_CTX *ctx = real_new(method);
	if (ctx)
		SSL_CTX_set_keylog_callback(ctx, keylog_cb);
	return ctx;
}

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
/* OpenSSL 3 programs may call SSL_CTX_new_ex directly: hook it as well
 * (setting the callback twice is harmless). */
SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *libctx, const char *propq,
			const SSL_METHOD *method)
{
	static ssl_ctx_new_ex_fn real_new_ex;
	if (!real_new_ex)
		real_new_ex = (ssl_ctx_new_ex_fn)dlsym(RTLD_NEXT, "SSL_CTX_new_ex");
	if (!real_new_ex)
		return NULL;
	SSL_CTX *ctx = real_new_ex(libctx, propq, method);
	if (ctx)
		SSL_CTX_set_keylog_callback(ctx, keylog_cb);
	return ctx;
}
#endif
