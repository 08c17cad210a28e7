/*
 * server/tls.h - TLS for the HTTP loops (OpenSSL), private to src/server. Everything that
 * names an OpenSSL type or function lives in tls.c; the loops see a session as an opaque
 * `struct ssl_st *` and these calls.
 *
 * Contexts: af__tls holds the current SSL_CTX built from the configured files. A reload
 * builds a new context and swaps the pointer under a mutex; sessions already created keep a
 * reference to the context they started with (SSL_new takes one), so connections open during
 * a reload keep their certificate and new connections get the new one.
 *
 * Threads: af__tls_new/free on the server's owner thread; af__tls_reload from any thread;
 * af__tls_session from any loop. A session belongs to the loop of its connection.
 */
#ifndef AF_SERVER_TLS_H
#define AF_SERVER_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct af__tls af__tls;
struct ssl_st;

/*
 * Loads the PEM certificate chain and key (which must match) and, when client_ca is not NULL,
 * the CAs client certificates must chain to (mutual TLS: a client without one is refused).
 * The paths are copied for reloads. 0, -EINVAL (a file is missing or bad: err names it and
 * gives OpenSSL's reason) or -ENOMEM.
 */
int af__tls_new(const char *cert, const char *key, const char *client_ca, af__tls **out, char *err,
                size_t err_len);
/* Reads the same files again and makes them the context of new connections. On failure the
 * current context stays and err says why (as af__tls_new). */
int af__tls_reload(af__tls *t, char *err, size_t err_len);
/* NULL is a no-op. Sessions still open keep their context alive until they are closed. */
void af__tls_free(af__tls *t);

/* A server session on an accepted non-blocking socket (not owned: the caller closes fd after
 * af__tls_close). The handshake runs inside the first reads. NULL when out of memory. */
struct ssl_st *af__tls_session(af__tls *t, int fd);

/*
 * Reads into buf: > 0 bytes, 0 when the client closed the session, -1 with errno EAGAIN (*want
 * gets the epoll readiness the session waits for: EPOLLIN, or EPOLLOUT when it must write
 * first, as in a handshake) or errno ECONNRESET (a failed handshake or a broken session,
 * logged at debug level with peer; the connection must close).
 */
ssize_t af__tls_read(struct ssl_st *ssl, void *buf, size_t len, uint32_t *want, const char *peer);
/* Writes up to len bytes: as af__tls_read, without the 0. After EAGAIN the next write must
 * start with the same unsent bytes (they may have moved in memory). */
ssize_t af__tls_write(struct ssl_st *ssl, const void *buf, size_t len, uint32_t *want,
                      const char *peer);
/* Decrypted bytes of the last record that the last read did not take. */
size_t af__tls_pending(struct ssl_st *ssl);
/* The session holds input (decrypted, or records read ahead from the socket) that the socket
 * no longer shows as readable: the next read may return data although epoll says nothing. */
bool af__tls_buffered(struct ssl_st *ssl);
/* Sends close_notify once (best effort, never blocks); no-op after a failure. */
void af__tls_notify_close(struct ssl_st *ssl);
/* af__tls_notify_close, then frees the session. NULL is a no-op. */
void af__tls_close(struct ssl_st *ssl);

#endif
