/*
 * TLS for the HTTP loops with OpenSSL; see tls.h.
 *
 * Sessions do their I/O through a small BIO of our own instead of OpenSSL's socket BIO: the
 * socket BIO writes with write(), which raises SIGPIPE on a connection the client already
 * reset, and a library must not depend on its host ignoring SIGPIPE (the plain path sends
 * with MSG_NOSIGNAL for the same reason).
 */
#define AF_LOG_COMPONENT "http"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "agentaflow/log.h"
#include "server/tls.h"
#include "util/str.h"

/* A fixed type for our BIO rather than BIO_get_new_index(): that counter never wraps and
 * would spill into the type flag bits after ~128 servers in one process (tests make many).
 * Below BIO_TYPE_START, where OpenSSL assigns no type of its own. */
#define AF__BIO_TYPE (BIO_TYPE_SOURCE_SINK | 0x7f)

struct af__tls {
    char *cert, *key, *client_ca; /* client_ca may be NULL */
    BIO_METHOD *bio;
    pthread_mutex_t mu; /* guards ctx against a reload swapping it */
    SSL_CTX *ctx;
};

/* ---------------------------------------------------------------------------------------- */
/* The socket BIO.                                                                           */

static int bio_write(BIO *b, const char *data, int len)
{
    BIO_clear_retry_flags(b);
    int fd = (int)(intptr_t)BIO_get_data(b);
    ssize_t n = send(fd, data, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            BIO_set_retry_write(b);
        return -1;
    }
    return (int)n;
}

static int bio_read(BIO *b, char *data, int len)
{
    BIO_clear_retry_flags(b);
    int fd = (int)(intptr_t)BIO_get_data(b);
    ssize_t n = recv(fd, data, (size_t)len, MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            BIO_set_retry_read(b);
        return -1;
    }
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    /* Nothing is buffered here, so a flush has nothing to do; the rest is unsupported. */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* Contexts.                                                                                 */

/* "cannot load ... from FILE: REASON" with OpenSSL's reason. */
static void ssl_err(char *err, size_t err_len, const char *what, const char *file)
{
    unsigned long e = ERR_peek_error(); /* the root cause; later entries only add context */
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    char buf[256];
    if (!reason && e) {
        ERR_error_string_n(e, buf, sizeof(buf));
        reason = buf;
    }
    snprintf(err, err_len, "%s %s: %s", what, file, reason ? reason : "unknown OpenSSL error");
    ERR_clear_error();
}

/* A readable file, checked first so a missing one is reported with the system's words. */
static bool readable(const char *file, const char *what, char *err, size_t err_len)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(err, err_len, "cannot read the TLS %s %s: %s", what, file, strerror(errno));
        return false;
    }
    fclose(f);
    return true;
}

/* Encrypted keys are not supported: without this OpenSSL would prompt on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

static int build_ctx(const af__tls *t, SSL_CTX **out, char *err, size_t err_len)
{
    *out = NULL;
    ERR_clear_error();
    if (!readable(t->cert, "certificate file", err, err_len) ||
        !readable(t->key, "key file", err, err_len) ||
        (t->client_ca && !readable(t->client_ca, "client CA file", err, err_len)))
        return -EINVAL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, err_len, "cannot create a TLS context: out of memory");
        ERR_clear_error();
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Compression invites CRIME; renegotiation is a denial-of-service lever and nothing here
     * needs it. Session tickets stay on: resumption saves clients a full handshake. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* TLS 1.2: forward-secret AEAD suites only (TLS 1.3 suites are all of that kind); no
     * DHE, which would need DH parameters and costs far more than ECDHE. */
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
    /* Partial writes: the loop keeps what was not sent in its output buffer, which may move
     * when it grows before the write is retried. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Resumed sessions must be tied to this server, which client verification requires. */
    static const unsigned char sid_ctx[] = "agentaflow";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    /* One recv() per record instead of two (header, then body); the loop reads what this
     * leaves buffered without waiting for epoll (af__tls_buffered). */
    SSL_CTX_set_read_ahead(ctx, 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
        ssl_err(err, err_len, "cannot load the TLS certificate chain from", t->cert);
        goto fail;
    }
    /* This also checks that the key matches the certificate ("key values mismatch"). */
    if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1) {
        ssl_err(err, err_len, "cannot load the TLS private key from", t->key);
        goto fail;
    }
    if (t->client_ca) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->client_ca);
        if (!names || SSL_CTX_load_verify_locations(ctx, t->client_ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            ssl_err(err, err_len, "cannot load the TLS client CA certificates from", t->client_ca);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    *out = ctx;
    return 0;
fail:
    SSL_CTX_free(ctx);
    return -EINVAL;
}

int af__tls_new(const char *cert, const char *key, const char *client_ca, af__tls **out, char *err,
                size_t err_len)
{
    *out = NULL;
    if (!cert || !*cert || !key || !*key) {
        snprintf(err, err_len, "TLS needs both server.tls.cert_file and server.tls.key_file");
        return -EINVAL;
    }
    af__tls *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    pthread_mutex_init(&t->mu, NULL);
    int rc = -ENOMEM;
    t->cert = af__strdup(cert);
    t->key = af__strdup(key);
    t->client_ca = client_ca && *client_ca ? af__strdup(client_ca) : NULL;
    t->bio = BIO_meth_new(AF__BIO_TYPE, "agentaflow socket");
    if (!t->cert || !t->key || (client_ca && *client_ca && !t->client_ca) || !t->bio ||
        !BIO_meth_set_write(t->bio, bio_write) || !BIO_meth_set_read(t->bio, bio_read) ||
        !BIO_meth_set_ctrl(t->bio, bio_ctrl) || !BIO_meth_set_create(t->bio, bio_create)) {
        snprintf(err, err_len, "cannot set up TLS: out of memory");
        goto fail;
    }
    rc = build_ctx(t, &t->ctx, err, err_len);
    if (rc != 0)
        goto fail;
    *out = t;
    return 0;
fail:
    af__tls_free(t);
    return rc;
}

int af__tls_reload(af__tls *t, char *err, size_t err_len)
{
    SSL_CTX *ctx;
    int rc = build_ctx(t, &ctx, err, err_len);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&t->mu);
    SSL_CTX *old = t->ctx;
    t->ctx = ctx;
    pthread_mutex_unlock(&t->mu);
    SSL_CTX_free(old); /* sessions on it hold their own references */
    return 0;
}

void af__tls_free(af__tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    BIO_meth_free(t->bio);
    pthread_mutex_destroy(&t->mu);
    free(t->cert);
    free(t->key);
    free(t->client_ca);
    free(t);
}

/* ---------------------------------------------------------------------------------------- */
/* Sessions.                                                                                 */

struct ssl_st *af__tls_session(af__tls *t, int fd)
{
    BIO *b = BIO_new(t->bio);
    if (!b) {
        ERR_clear_error();
        return NULL;
    }
    BIO_set_data(b, (void *)(intptr_t)fd);
    pthread_mutex_lock(&t->mu);
    SSL *ssl = SSL_new(t->ctx);
    pthread_mutex_unlock(&t->mu);
    if (!ssl) {
        BIO_free(b);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_bio(ssl, b, b); /* takes b */
    SSL_set_accept_state(ssl);
    return ssl;
}

/* Maps a failed SSL_read/SSL_write to the loop's terms (see tls.h). */
static ssize_t failed(SSL *ssl, int r, uint32_t *want, const char *peer, const char *op)
{
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *want = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    /* Debug level only: port scanners, plain HTTP on the TLS port and clients that reject
     * our certificate all end here, and none of that is the operator's problem. */
    if (af_log_get_level() <= AF_LOG_DEBUG) {
        unsigned long code = ERR_peek_last_error();
        const char *reason = code ? ERR_reason_error_string(code) : NULL;
        af_log(AF_LOG_DEBUG, "server: TLS %s with %s failed: %s",
               SSL_is_init_finished(ssl) ? op : "handshake", peer,
               reason                   ? reason
               : e == SSL_ERROR_SYSCALL ? strerror(errno)
                                        : "connection closed");
    }
    ERR_clear_error();
    /* After a fatal error OpenSSL forbids a close_notify; quiet shutdown skips it. */
    SSL_set_quiet_shutdown(ssl, 1);
    errno = ECONNRESET;
    return -1;
}

ssize_t af__tls_read(struct ssl_st *ssl, void *buf, size_t len, uint32_t *want, const char *peer)
{
    int n = SSL_read(ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    return n > 0 ? n : failed(ssl, n, want, peer, "read");
}

ssize_t af__tls_write(struct ssl_st *ssl, const void *buf, size_t len, uint32_t *want,
                      const char *peer)
{
    int n = SSL_write(ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    return n > 0 ? n : failed(ssl, n, want, peer, "write");
}

size_t af__tls_pending(struct ssl_st *ssl)
{
    int n = SSL_pending(ssl);
    return n > 0 ? (size_t)n : 0;
}

bool af__tls_buffered(struct ssl_st *ssl)
{
    return SSL_has_pending(ssl) == 1;
}

void af__tls_notify_close(struct ssl_st *ssl)
{
    if (!SSL_is_init_finished(ssl) || (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
        return;
    if (SSL_shutdown(ssl) < 0)
        ERR_clear_error(); /* best effort: the client may be gone already */
}

void af__tls_close(struct ssl_st *ssl)
{
    if (!ssl)
        return;
    af__tls_notify_close(ssl);
    SSL_free(ssl);
}
