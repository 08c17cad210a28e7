/*
 * Loopback HTTP/1.1 receiver for exporter tests. One accept thread plus one thread per
 * connection; sockets have a short receive timeout so every thread notices stop quickly
 * without extra wake-up plumbing (the same loop works for plain and TLS sockets).
 */
#include "http_receiver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "agentaflow/trace_sdk.h"

#define MAX_HEADER_BYTES (64 * 1024)
#define MAX_BODY_BYTES (128u * 1024 * 1024)

typedef struct reply_copy {
    int status;
    char *headers;
    uint8_t *body;
    size_t body_len;
    uint32_t delay_ms;
    bool close_without_response;
} reply_copy;

typedef struct conn_thread {
    pthread_t tid;
    struct conn_thread *next;
} conn_thread;

struct af_test_http_receiver {
    int listen_fd;
    uint16_t port;
    SSL_CTX *ssl;
    pthread_t accept_tid;
    atomic_bool stopping;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC; signalled on new requests and on stop */
    conn_thread *threads;
    unsigned connections;
    reply_copy *script;
    size_t n_script;
    size_t next_reply;
    af_test_http_request **requests;
    size_t n_requests;
    size_t cap_requests;
};

typedef struct conn {
    af_test_http_receiver *r;
    int fd;
    SSL *ssl;
    unsigned number;
} conn;

static struct timespec abs_after_ms(uint32_t ms)
{
    uint64_t t = af_monotonic_ns() + (uint64_t)ms * 1000000u;
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000u), .tv_nsec = (long)(t % 1000000000u)};
    return ts;
}

/* Reads some bytes: >0, 0 on EOF/error, -1 when stopping. Retries the 100 ms timeouts. */
static ssize_t conn_read(conn *c, void *buf, size_t n)
{
    for (;;) {
        if (atomic_load(&c->r->stopping))
            return -1;
        if (c->ssl) {
            int k = SSL_read(c->ssl, buf, (int)n);
            if (k > 0)
                return k;
            int e = SSL_get_error(c->ssl, k);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                continue;
            return 0;
        }
        ssize_t k = recv(c->fd, buf, n, 0);
        if (k >= 0)
            return k;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            continue;
        return 0;
    }
}

static bool conn_write(conn *c, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        if (atomic_load(&c->r->stopping))
            return false;
        ssize_t k;
        if (c->ssl) {
            int w = SSL_write(c->ssl, b, (int)(n > 1 << 30 ? 1 << 30 : n));
            if (w <= 0) {
                int e = SSL_get_error(c->ssl, w);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    continue;
                return false;
            }
            k = w;
        } else {
            k = send(c->fd, b, n, MSG_NOSIGNAL);
            if (k < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    continue;
                return false;
            }
        }
        b += k;
        n -= (size_t)k;
    }
    return true;
}

static void request_free(af_test_http_request *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n_headers; i++) {
        free(q->names[i]);
        free(q->values[i]);
    }
    free(q->names);
    free(q->values);
    free(q->body);
    free(q);
}

const char *af_test_http_request_header(const af_test_http_request *q, const char *name)
{
    for (size_t i = 0; i < q->n_headers; i++)
        if (strcasecmp(q->names[i], name) == 0)
            return q->values[i];
    return NULL;
}

static bool gunzip(const uint8_t *in, size_t n, uint8_t **out, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15 + 32) != Z_OK)
        return false;
    size_t cap = n * 4 + 1024, len = 0;
    uint8_t *buf = malloc(cap);
    bool ok = buf != NULL;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    while (ok) {
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                ok = false;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        zs.next_out = buf + len;
        zs.avail_out = (uInt)(cap - len);
        int zr = inflate(&zs, Z_NO_FLUSH);
        len = cap - zs.avail_out;
        if (zr == Z_STREAM_END)
            break;
        if (zr != Z_OK && !(zr == Z_BUF_ERROR && zs.avail_out == 0))
            ok = false;
    }
    inflateEnd(&zs);
    if (!ok) {
        free(buf);
        return false;
    }
    *out = buf;
    *out_len = len;
    return true;
}

/* Parses the head in h[0..n) (ending with the blank line) into q. */
static bool parse_head(char *h, af_test_http_request *q, size_t *content_length, bool *expect)
{
    char *save = NULL;
    char *line = strtok_r(h, "\r\n", &save);
    if (!line || sscanf(line, "%15s %511s", q->method, q->path) != 2)
        return false;
    *content_length = 0;
    *expect = false;
    size_t cap = 0;
    while ((line = strtok_r(NULL, "\r\n", &save))) {
        char *colon = strchr(line, ':');
        if (!colon)
            return false;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (q->n_headers == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(q->names, cap * sizeof(char *));
            if (!nn)
                return false;
            q->names = nn;
            char **nv = realloc(q->values, cap * sizeof(char *));
            if (!nv)
                return false;
            q->values = nv;
        }
        q->names[q->n_headers] = strdup(line);
        q->values[q->n_headers] = strdup(v);
        if (!q->names[q->n_headers] || !q->values[q->n_headers]) {
            free(q->names[q->n_headers]);
            free(q->values[q->n_headers]);
            return false;
        }
        q->n_headers++;
        if (strcasecmp(line, "content-length") == 0)
            *content_length = strtoull(v, NULL, 10);
        if (strcasecmp(line, "expect") == 0 && strcasecmp(v, "100-continue") == 0)
            *expect = true;
    }
    return true;
}

static void record(af_test_http_receiver *r, af_test_http_request *q, reply_copy *reply)
{
    memset(reply, 0, sizeof(*reply));
    reply->status = 200;
    pthread_mutex_lock(&r->mu);
    if (r->n_requests == r->cap_requests) {
        size_t cap = r->cap_requests ? r->cap_requests * 2 : 16;
        af_test_http_request **nr = realloc(r->requests, cap * sizeof(*nr));
        if (!nr) {
            pthread_mutex_unlock(&r->mu);
            request_free(q);
            return;
        }
        r->requests = nr;
        r->cap_requests = cap;
    }
    r->requests[r->n_requests++] = q;
    if (r->next_reply < r->n_script) {
        /* The connection thread gets its own copy of the strings: the script may be replaced
         * while it answers. */
        const reply_copy *s = &r->script[r->next_reply++];
        *reply = *s;
        reply->headers = s->headers ? strdup(s->headers) : NULL;
        reply->body = NULL;
        if (s->body_len) {
            reply->body = malloc(s->body_len);
            if (reply->body)
                memcpy(reply->body, s->body, s->body_len);
            else
                reply->body_len = 0;
        }
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

/* Serves requests on one connection until the peer closes it or the receiver stops. */
static void serve(conn *c)
{
    af_test_http_receiver *r = c->r;
    char *head = malloc(MAX_HEADER_BYTES + 1);
    size_t have = 0;
    if (!head)
        return;
    for (;;) {
        char *end;
        while (!(head[have] = '\0', end = strstr(head, "\r\n\r\n"))) {
            if (have == MAX_HEADER_BYTES)
                goto out;
            ssize_t k = conn_read(c, head + have, MAX_HEADER_BYTES - have);
            if (k <= 0)
                goto out;
            have += (size_t)k;
        }
        size_t head_len = (size_t)(end - head) + 4;
        af_test_http_request *q = calloc(1, sizeof(*q));
        if (!q)
            goto out;
        q->connection = c->number;
        q->client_cert = c->ssl && SSL_get0_peer_certificate(c->ssl) &&
                         SSL_get_verify_result(c->ssl) == X509_V_OK;
        size_t content_length;
        bool expect;
        head[head_len - 2] = '\0'; /* parse_head stops at the blank line */
        if (!parse_head(head, q, &content_length, &expect) || content_length > MAX_BODY_BYTES) {
            request_free(q);
            goto out;
        }
        if (expect && !conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25)) {
            request_free(q);
            goto out;
        }
        uint8_t *body = malloc(content_length + 1);
        if (!body) {
            request_free(q);
            goto out;
        }
        size_t got = have - head_len < content_length ? have - head_len : content_length;
        memcpy(body, head + head_len, got);
        size_t extra = have - head_len - got; /* pipelined bytes of the next request */
        memmove(head, head + head_len + got, extra);
        have = extra;
        while (got < content_length) {
            ssize_t k = conn_read(c, body + got, content_length - got);
            if (k <= 0) {
                free(body);
                request_free(q);
                goto out;
            }
            got += (size_t)k;
        }
        q->wire_len = content_length;
        const char *ce = af_test_http_request_header(q, "content-encoding");
        if (ce && strcasecmp(ce, "gzip") == 0) {
            q->gzipped = true;
            if (!gunzip(body, content_length, &q->body, &q->body_len)) {
                q->body = NULL;
                q->body_len = 0;
            }
            free(body);
        } else {
            q->body = body;
            q->body_len = content_length;
        }
        q->at_ns = af_monotonic_ns();
        reply_copy reply;
        record(r, q, &reply);

        bool keep = true;
        if (reply.delay_ms) {
            struct timespec ts = abs_after_ms(reply.delay_ms);
            pthread_mutex_lock(&r->mu);
            while (!atomic_load(&r->stopping) &&
                   pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
                ;
            pthread_mutex_unlock(&r->mu);
        }
        if (reply.close_without_response || atomic_load(&r->stopping)) {
            keep = false;
        } else {
            char line[256];
            int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n",
                             reply.status, reason(reply.status), reply.body_len);
            keep = conn_write(c, line, (size_t)n) &&
                   (!reply.headers || conn_write(c, reply.headers, strlen(reply.headers))) &&
                   conn_write(c, "\r\n", 2) &&
                   (!reply.body_len || conn_write(c, reply.body, reply.body_len));
        }
        free(reply.headers);
        free(reply.body);
        if (!keep)
            goto out;
    }
out:
    free(head);
}

static void *conn_main(void *arg)
{
    conn *c = arg;
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    bool ready = true;
    if (c->r->ssl) {
        c->ssl = SSL_new(c->r->ssl);
        ready = c->ssl && SSL_set_fd(c->ssl, c->fd) == 1;
        while (ready) {
            int k = SSL_accept(c->ssl);
            if (k == 1)
                break;
            int e = SSL_get_error(c->ssl, k);
            ready = (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
                    !atomic_load(&c->r->stopping);
        }
        ERR_clear_error();
    }
    if (ready)
        serve(c);
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        ERR_clear_error();
    }
    close(c->fd);
    free(c);
    return NULL;
}

static void *accept_main(void *arg)
{
    af_test_http_receiver *r = arg;
    while (!atomic_load(&r->stopping)) {
        struct pollfd p = {.fd = r->listen_fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(r->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        conn *c = calloc(1, sizeof(*c));
        conn_thread *t = calloc(1, sizeof(*t));
        if (!c || !t) {
            free(c);
            free(t);
            close(fd);
            continue;
        }
        c->r = r;
        c->fd = fd;
        pthread_mutex_lock(&r->mu);
        c->number = ++r->connections;
        if (pthread_create(&t->tid, NULL, conn_main, c) != 0) {
            pthread_mutex_unlock(&r->mu);
            close(fd);
            free(c);
            free(t);
            continue;
        }
        t->next = r->threads;
        r->threads = t;
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

static void free_script(af_test_http_receiver *r)
{
    for (size_t i = 0; i < r->n_script; i++) {
        free(r->script[i].headers);
        free(r->script[i].body);
    }
    free(r->script);
    r->script = NULL;
    r->n_script = 0;
}

static int tls_setup(af_test_http_receiver *r, const af_test_http_receiver_opts *o)
{
    r->ssl = SSL_CTX_new(TLS_server_method());
    if (!r->ssl)
        return -ENOMEM;
    if (SSL_CTX_use_certificate_chain_file(r->ssl, o->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(r->ssl, o->tls_key, SSL_FILETYPE_PEM) != 1)
        return -EINVAL;
    if (o->tls_client_ca) {
        if (SSL_CTX_load_verify_locations(r->ssl, o->tls_client_ca, NULL) != 1)
            return -EINVAL;
        SSL_CTX_set_verify(r->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return 0;
}

int af_test_http_receiver_start(const af_test_http_receiver_opts *opts, af_test_http_receiver **out)
{
    *out = NULL;
    /* SSL_write on a socket the client already closed would raise SIGPIPE (plain sends use
     * MSG_NOSIGNAL); tests that time out on purpose do exactly that. */
    signal(SIGPIPE, SIG_IGN);
    af_test_http_receiver *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->listen_fd = -1;
    atomic_init(&r->stopping, false);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&r->mu, NULL);
    int rc = -EINVAL;
    if (opts && opts->tls_cert && opts->tls_key && (rc = tls_setup(r, opts)))
        goto fail;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    r->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->listen_fd < 0 || bind(r->listen_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(r->listen_fd, 64) != 0 ||
        getsockname(r->listen_fd, (struct sockaddr *)&a, &alen) != 0) {
        rc = -errno;
        goto fail;
    }
    r->port = ntohs(a.sin_port);
    if (pthread_create(&r->accept_tid, NULL, accept_main, r) != 0) {
        rc = -EAGAIN;
        goto fail;
    }
    *out = r;
    return 0;
fail:
    if (r->listen_fd >= 0)
        close(r->listen_fd);
    SSL_CTX_free(r->ssl);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return rc;
}

void af_test_http_receiver_stop(af_test_http_receiver *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->stopping, true);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->accept_tid, NULL);
    /* The accept thread is gone, so the list no longer changes. */
    for (conn_thread *t = r->threads, *next; t; t = next) {
        next = t->next;
        pthread_join(t->tid, NULL);
        free(t);
    }
    close(r->listen_fd);
    for (size_t i = 0; i < r->n_requests; i++)
        request_free(r->requests[i]);
    free(r->requests);
    free_script(r);
    SSL_CTX_free(r->ssl);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

uint16_t af_test_http_receiver_port(const af_test_http_receiver *r)
{
    return r->port;
}

void af_test_http_receiver_script(af_test_http_receiver *r, const af_test_http_reply *replies,
                                  size_t n)
{
    reply_copy *s = calloc(n ? n : 1, sizeof(*s));
    for (size_t i = 0; s && i < n; i++) {
        const af_test_http_reply *a = &replies[i];
        s[i].status = a->status ? a->status : 200;
        s[i].headers = a->headers ? strdup(a->headers) : NULL;
        s[i].delay_ms = a->delay_ms;
        s[i].close_without_response = a->close_without_response;
        s[i].body_len = a->body ? a->body_len : a->filler_len;
        if (s[i].body_len) {
            s[i].body = malloc(s[i].body_len);
            if (!s[i].body) {
                s[i].body_len = 0;
                continue;
            }
            if (a->body)
                memcpy(s[i].body, a->body, a->body_len);
            else
                memset(s[i].body, 'x', a->filler_len);
        }
    }
    pthread_mutex_lock(&r->mu);
    free_script(r);
    r->script = s;
    r->n_script = s ? n : 0;
    r->next_reply = 0;
    pthread_mutex_unlock(&r->mu);
}

size_t af_test_http_receiver_requests(af_test_http_receiver *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n_requests;
    pthread_mutex_unlock(&r->mu);
    return n;
}

size_t af_test_http_receiver_connections(af_test_http_receiver *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->connections;
    pthread_mutex_unlock(&r->mu);
    return n;
}

const af_test_http_request *af_test_http_receiver_request(af_test_http_receiver *r, size_t i)
{
    pthread_mutex_lock(&r->mu);
    const af_test_http_request *q = i < r->n_requests ? r->requests[i] : NULL;
    pthread_mutex_unlock(&r->mu);
    return q;
}

size_t af_test_http_receiver_wait(af_test_http_receiver *r, size_t n, uint32_t timeout_ms)
{
    struct timespec ts = abs_after_ms(timeout_ms);
    pthread_mutex_lock(&r->mu);
    while (r->n_requests < n && pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
        ;
    size_t got = r->n_requests;
    pthread_mutex_unlock(&r->mu);
    return got;
}

uint16_t af_test_closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    uint16_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}
