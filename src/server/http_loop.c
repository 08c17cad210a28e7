/*
 * The HTTP/1.1 event loops: listeners, connections, request framing, responses, timeouts.
 *
 * Each loop thread has its own epoll set, connections and caches. The API and metrics
 * listeners are shared by every loop with EPOLLEXCLUSIVE, so the kernel wakes one loop per
 * incoming connection and the connection stays on that loop for its whole life: nothing about
 * a connection is ever touched by two threads. A request costs one recv() and one send() in
 * the common case (epoll_wait is shared by everything ready at once); the response head is
 * written into the headroom in front of the body, so head and body leave in one send().
 *
 * Why not libwebsockets for plain HTTP: measured on GET /api/v1/gpus, lws spent ~21k of the
 * ~44k instructions of a request (a header parser walking byte by byte, a sorted timeout list
 * walked on every transaction, ~100 filtered log calls), and Debian's build serves a context
 * from one thread only. WebSocket clients stay on their loop too: an upgraded connection
 * (AF__CONN_WS) hands its received bytes to ws.c and writes its frames through conn_write,
 * like any response.
 *
 * Flow control: a connection is read only while it has no unsent output and no request
 * waiting for a worker, so a client that does not read its responses, or pipelines requests
 * faster than they are answered, holds at most one response and max_head + body_limit bytes.
 * Every connection has a deadline (the next request must be complete, or the pending output
 * must move, within AF__HTTP_IDLE_MS); the loop keeps connections in deadline order.
 *
 * TLS (tls.c, when server.tls is set): the same flow through conn_recv/conn_send. The
 * handshake runs inside the first reads, bounded by the same deadline. Sessions read records
 * ahead (one recv() per request again), so a connection whose session already holds input,
 * which epoll cannot see, is read once more at the end of the loop turn (read_ready).
 */
#define AF_LOG_COMPONENT "http"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agentaflow/log.h"
#include "agentaflow/propagation.h"
#include "server/server_int.h"
#include "server/tls.h"

#define AF__HTTP_IDLE_MS 30000   /* keep-alive idle, request read and write-progress bound */
#define AF__HTTP_MAX_HEAD 16384  /* request line + headers; more = 431 */
#define AF__HTTP_READ_CHUNK 4096 /* free room a read asks for */
#define AF__ACCEPT_BATCH 64      /* connections accepted per wake-up */
#define AF__EVENTS 128

/* epoll tags for what is not a connection. */
static char tag_api, tag_metrics, tag_wake;

/* ---------------------------------------------------------------------------------------- */
/* Listeners.                                                                                */

int af__http_listen(const char *addr, int port, int *fd_out, int *port_out, char *err,
                    size_t err_len)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    int gai = getaddrinfo(addr, ps, &hints, &res);
    if (gai != 0) {
        snprintf(err, err_len, "cannot listen on %s:%d: %s", addr, port, gai_strerror(gai));
        return -EINVAL;
    }
    int rc = -EADDRNOTAVAIL, fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
            break;
        rc = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, err_len, "cannot listen on %s:%d: %s", addr, port, strerror(-rc));
        return rc;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return 0;
}

static int watch(af__loop *l, int fd, uint32_t events, void *tag)
{
    struct epoll_event ev = {.events = events, .data.ptr = tag};
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

/* A listener joins or leaves this loop's epoll set (EPOLLEXCLUSIVE registrations cannot be
 * modified, only deleted and added again). */
static void listen_one(af__loop *l, int fd, void *tag, bool *state, bool on)
{
    if (*state == on || fd < 0)
        return;
    if (on)
        watch(l, fd, EPOLLIN | EPOLLEXCLUSIVE, tag);
    else
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    *state = on;
}

static void listen_set(af__loop *l, bool api, bool metrics)
{
    af_server *s = l->srv;
    listen_one(l, s->api_fd, &tag_api, &l->listening, api);
    listen_one(l, s->metrics_fd, &tag_metrics, &l->listening_metrics, metrics);
}

/* Out of descriptors (or socket memory): every loop stops accepting on every listener until
 * `until` or until a connection closes, whichever comes first. A listener left in an epoll set
 * stays readable while its backlog waits, so any loop still watching it would spin. */
static void accept_pause(af__loop *l, uint64_t until)
{
    af_server *s = l->srv;
    atomic_store(&s->guard.paused_until, until);
    listen_set(l, false, false);
    for (unsigned i = 0; i < s->n_loops; i++)
        if (&s->loops[i] != l)
            af__loop_wake(&s->loops[i]);
}

/* ---------------------------------------------------------------------------------------- */
/* Connection bookkeeping.                                                                   */

static void timed_remove(af__conn *c)
{
    if (!c->timed)
        return;
    af__loop *l = c->loop;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->timed_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->timed_tail = c->prev;
    c->prev = c->next = NULL;
    c->timed = false;
}

/* Puts c on the list at deadline, in order. Idle deadlines are all now + AF__HTTP_IDLE_MS
 * and land at the tail at once; only an inference deadline (af__job.deadline_mono, which may
 * be earlier or later than that) walks back past the few entries that end after it. */
static void timed_at(af__conn *c, uint64_t deadline)
{
    af__loop *l = c->loop;
    timed_remove(c);
    c->deadline_mono = deadline;
    af__conn *after = l->timed_tail;
    while (after && after->deadline_mono > deadline)
        after = after->prev;
    c->prev = after;
    c->next = after ? after->next : l->timed_head;
    if (c->next)
        c->next->prev = c;
    else
        l->timed_tail = c;
    if (after)
        after->next = c;
    else
        l->timed_head = c;
    c->timed = true;
}

static void timed_restart(af__conn *c, uint64_t now)
{
    timed_at(c, now + (uint64_t)AF__HTTP_IDLE_MS * 1000000ull);
}

/* A BUSY connection waits for its inference job's deadline; without one, for the job. */
static void timed_insert_job(af__conn *c)
{
    if (c->txn.job && c->txn.job->deadline_mono)
        timed_at(c, c->txn.job->deadline_mono);
    else
        timed_remove(c);
}

static void all_add(af__conn *c)
{
    af__loop *l = c->loop;
    c->all_next = l->conns;
    if (l->conns)
        l->conns->all_prev = c;
    l->conns = c;
    l->n_conns++;
}

/* Takes a closing connection off the TLS read queue (short: connections with pipelined
 * input), so bury() cannot free one that is still queued. */
static void ready_remove(af__conn *c)
{
    af__loop *l = c->loop;
    af__conn *prev = NULL;
    for (af__conn *q = l->tls_ready_head; q; prev = q, q = q->ready_next) {
        if (q != c)
            continue;
        if (prev)
            prev->ready_next = c->ready_next;
        else
            l->tls_ready_head = c->ready_next;
        if (l->tls_ready_tail == c)
            l->tls_ready_tail = prev;
        break;
    }
    c->tls_ready = false;
}

/* The connection leaves every list of open ones; its memory waits for the end of the turn. */
static void retire(af__conn *c)
{
    af__loop *l = c->loop;
    timed_remove(c);
    if (c->tls_ready)
        ready_remove(c);
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else
        l->conns = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    l->n_conns--;
    c->next = l->dead;
    l->dead = c;
}

static void conn_free(af__conn *c)
{
    af__ws_client_free(c->ws);
    af__txn_free(&c->txn);
    af__buf_clear(&c->rx);
    af__buf_clear(&c->tx);
    free(c);
}

/* Closes the socket now; the memory goes at the end of the loop turn (a connection may be
 * closed from deep inside its own processing, or while later events still name it). */
static void conn_close(af__conn *c, const char *why)
{
    if (c->fd < 0)
        return;
    if (c->txn.active)
        af__txn_abort(c, why);
    if (c->ws)
        af__ws_detach(c);
    af__tls_close(c->ssl);
    c->ssl = NULL;
    close(c->fd);
    c->fd = -1;
    retire(c);
    /* A descriptor is free again: the reserve is taken back first, then accepting resumes
     * (on every loop's next turn). */
    af__guard *g = &c->loop->srv->guard;
    if (atomic_load(&g->paused_until)) {
        af__guard_rearm(g);
        atomic_store(&g->paused_until, 0);
    }
}

/* Queues a TLS connection for a read at the end of the loop turn (read_ready). */
static void ready_add(af__conn *c)
{
    af__loop *l = c->loop;
    if (c->tls_ready)
        return;
    c->tls_ready = true;
    c->ready_next = NULL;
    if (l->tls_ready_tail)
        l->tls_ready_tail->ready_next = c;
    else
        l->tls_ready_head = c;
    l->tls_ready_tail = c;
}

static void update_events(af__conn *c)
{
    if (c->fd < 0)
        return;
    uint32_t want;
    /* A TLS write may have to read first and a TLS read (the handshake) to write first: then
     * the readiness that operation waits for is the other one. */
    if (c->tx.len > c->tx_off)
        want = (c->tls_write_on_in ? EPOLLIN : EPOLLOUT) | EPOLLRDHUP;
    else if (c->state == AF__CONN_BUSY)
        want = EPOLLRDHUP;
    else
        want = (c->tls_read_on_out ? EPOLLOUT : EPOLLIN) | EPOLLRDHUP;
    /* Input the session already holds never makes the socket readable again. */
    if (c->ssl && (want & EPOLLIN) && !c->lingering && af__tls_buffered(c->ssl))
        ready_add(c);
    if (want == c->events)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = c};
    if (epoll_ctl(c->loop->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->events = want;
    else
        conn_close(c, "epoll");
}

/* The last response was written and the connection must close: our side is shut down
 * first and the client's remaining bytes are read and dropped until it closes too (or the
 * deadline passes). Closing at once with unread input would make the kernel answer with a
 * reset, which can destroy the response before the client has read it. */
static void conn_linger(af__conn *c)
{
    if (c->fd < 0 || c->lingering)
        return;
    /* TLS: close_notify first, so the client knows the response was not truncated. What it
     * sends after that is dropped undecrypted. */
    if (c->ssl)
        af__tls_notify_close(c->ssl);
    c->tls_read_on_out = c->tls_write_on_in = false;
    if (shutdown(c->fd, SHUT_WR) != 0) {
        conn_close(c, NULL);
        return;
    }
    c->lingering = true;
    c->rx.len = c->rx_off = 0;
    c->state = AF__CONN_HEAD;
    update_events(c);
}

/* ---------------------------------------------------------------------------------------- */
/* Socket I/O, through the connection's TLS session when it has one.                         */

/* As recv(): -1 with errno EAGAIN when nothing can be read now. */
static ssize_t conn_recv(af__conn *c, void *buf, size_t len)
{
    if (!c->ssl)
        return recv(c->fd, buf, len, 0);
    uint32_t want = EPOLLIN;
    ssize_t n = af__tls_read(c->ssl, buf, len, &want, c->peer);
    c->tls_read_on_out = n < 0 && want == EPOLLOUT;
    return n;
}

/* As send() without SIGPIPE: -1 with errno EAGAIN when the socket takes nothing now. */
static ssize_t conn_send(af__conn *c, const void *buf, size_t len)
{
    if (!c->ssl)
        return send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    uint32_t want = EPOLLOUT;
    ssize_t n = af__tls_write(c->ssl, buf, len, &want, c->peer);
    c->tls_write_on_in = n < 0 && want == EPOLLIN;
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Output.                                                                                   */

/* Sends what is pending; false when the connection closed. */
static bool conn_flush(af__conn *c, uint64_t now)
{
    while (c->tx.len > c->tx_off) {
        ssize_t n = conn_send(c, c->tx.data + c->tx_off, c->tx.len - c->tx_off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(c, "write failed");
            return false;
        }
        c->tx_off += (size_t)n;
        timed_restart(c, now);
    }
    if (c->tx.len == c->tx_off) {
        af__buf_reset(&c->tx);
        c->tx_off = 0;
        if (c->close_after) {
            conn_linger(c);
            return false;
        }
    }
    return true;
}

/* Writes bytes, straight to the socket when nothing is queued before them; keeps the rest. */
static void conn_write(af__conn *c, const void *data, size_t len)
{
    if (c->fd < 0)
        return;
    size_t done = 0;
    if (c->tx.len == c->tx_off) {
        while (done < len) {
            ssize_t n = conn_send(c, (const char *)data + done, len - done);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                conn_close(c, "write failed");
                return;
            }
            done += (size_t)n;
        }
    }
    if (done < len) {
        af__buf_append(&c->tx, (const char *)data + done, len - done);
        if (c->tx.failed)
            conn_close(c, "out of memory");
    }
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 421:
        return "Misdirected Request";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}
#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

static char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* Writes the response head in front of the body (its headroom) and sends both. */
static void send_resp(af__conn *c, af__resp *rs, bool keep_alive, bool http10, bool head_only,
                      const char *traceresponse)
{
    if (rs->body.failed)
        af__resp_error(rs, 500, "internal", "out of memory");
    size_t body_len = rs->body.len - AF__RESP_HEADROOM;
    char h[AF__RESP_HEADROOM];
    char *p = h;
    int st = rs->status < 100 || rs->status > 999 ? 500 : rs->status;
    p = http10 ? PUT_LIT(p, "HTTP/1.0 ") : PUT_LIT(p, "HTTP/1.1 ");
    p = put_u64(p, (uint64_t)st);
    *p++ = ' ';
    const char *rp = reason_phrase(st);
    p = put(p, rp, strlen(rp));
    p = PUT_LIT(p, "\r\ncontent-type: ");
    p = put(p, rs->content_type, strlen(rs->content_type));
    p = PUT_LIT(p, "\r\ncontent-length: ");
    p = put_u64(p, body_len);
    p = PUT_LIT(p, "\r\ncache-control: no-store\r\n");
    if (traceresponse && traceresponse[0]) {
        p = PUT_LIT(p, "traceresponse: ");
        p = put(p, traceresponse, 55);
        /* The W3C response binding now also names the Server-Timing metric "trace". */
        p = PUT_LIT(p, "\r\nserver-timing: trace;desc=");
        p = put(p, traceresponse, 55);
        p = PUT_LIT(p, "\r\n");
    }
    if (rs->allow[0]) {
        p = PUT_LIT(p, "allow: ");
        p = put(p, rs->allow, strnlen(rs->allow, sizeof(rs->allow)));
        p = PUT_LIT(p, "\r\n");
    }
    if (rs->www_authenticate)
        p = PUT_LIT(p, "www-authenticate: Bearer realm=\"agentaflow\"\r\n");
    if (rs->headers)
        p = put(p, rs->headers, strlen(rs->headers));
    if (!keep_alive)
        p = PUT_LIT(p, "connection: close\r\n");
    else if (http10)
        p = PUT_LIT(p, "connection: keep-alive\r\n");
    p = PUT_LIT(p, "\r\n");
    size_t hlen = (size_t)(p - h);
    if (head_only || body_len == 0) {
        conn_write(c, h, hlen);
    } else {
        uint8_t *b = rs->body.data + AF__RESP_HEADROOM - hlen;
        memcpy(b, h, hlen);
        conn_write(c, b, hlen + body_len);
    }
    if (!keep_alive)
        c->close_after = true;
}

/* A request refused before it became a transaction (malformed, too large): the error, then
 * the connection closes (what follows on it cannot be framed). */
static void conn_fail(af__conn *c, int status, const char *code, const char *message)
{
    af__resp rs;
    af__resp_init(&rs);
    af__resp_error(&rs, status, code, "%s", message);
    af__conn_refuse(c, &rs);
    af__resp_free(&rs);
}

void af__conn_refuse(af__conn *c, af__resp *rs)
{
    send_resp(c, rs, false, false, false, NULL);
    if (c->fd >= 0 && c->tx.len == c->tx_off)
        conn_linger(c);
}

void af__conn_write(af__conn *c, const void *data, size_t len)
{
    conn_write(c, data, len);
}

void af__conn_close(af__conn *c, const char *why)
{
    conn_close(c, why);
}

/* The deadline bounds how long the client may take to read the rest and close its side. */
void af__conn_finish(af__conn *c)
{
    if (c->fd < 0)
        return;
    c->close_after = true;
    timed_restart(c, af_monotonic_ns());
    if (c->tx.len == c->tx_off)
        conn_linger(c);
    else
        update_events(c);
}

static const char *code_for(int status)
{
    switch (status) {
    case 408:
        return "request_timeout";
    case 413:
        return "payload_too_large";
    case 414:
        return "uri_too_long";
    case 431:
        return "header_fields_too_large";
    case 501:
        return "not_implemented";
    case 503:
        return "shutting_down";
    case 505:
        return "http_version_not_supported";
    default:
        return "bad_request";
    }
}

void af__conn_respond(af__conn *c)
{
    af__txn *t = &c->txn;
    af_server *s = c->loop->srv;
    if (atomic_load(&s->stopping))
        t->keep_alive = false; /* finish this one, take no more */
    char tr[56] = "";
    af_span_context sc;
    af_span_get_context(t->span, &sc);
    if (af_span_context_is_valid(&sc))
        af_traceparent_format(&sc, tr);
    send_resp(c, &t->resp, t->keep_alive, t->http10, t->method == AF__M_HEAD, tr);
    af__txn_end(c);
    c->state = AF__CONN_HEAD;
    if (c->fd >= 0) {
        timed_restart(c, af_monotonic_ns());
        if (c->close_after && c->tx.len == c->tx_off)
            conn_linger(c);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Input.                                                                                    */

static bool is_ws_path(const af__http_request *r)
{
    return (r->path_len == 3 && memcmp(r->path, "/ws", 3) == 0) ||
           (r->path_len == 4 && memcmp(r->path, "/ws/", 4) == 0);
}

/* The request head was parsed: framing decisions, then the transaction. */
static void on_head(af__conn *c, const af__http_request *req)
{
    af_server *s = c->loop->srv;
    bool ws = req->upgrade_websocket && !c->metrics && is_ws_path(req) && req->method_len == 3 &&
              memcmp(req->method, "GET", 3) == 0;
    af__guard_deny deny;
    if (af__guard_check(&s->guard, req, c->metrics ? s->metrics_port : s->port, c->metrics, ws,
                        &deny) != 0) {
        conn_fail(c, deny.status, deny.code, deny.message);
        return;
    }
    if (ws) {
        if (atomic_load(&s->stopping))
            conn_fail(c, 503, "shutting_down", "the server is shutting down");
        else
            af__ws_upgrade(c, req);
        return;
    }
    if (req->path_len >= sizeof(c->txn.path)) {
        char m[96];
        snprintf(m, sizeof(m), "the request path is %zu bytes; the limit is %zu", req->path_len,
                 sizeof(c->txn.path) - 1);
        conn_fail(c, 414, "uri_too_long", m);
        return;
    }
    af__txn_begin(c, req);
    af__txn *t = &c->txn;
    if (req->chunked) {
        af__http_chunked_init(&c->chunked);
        c->state = AF__CONN_CHUNKED;
    } else if (req->has_content_length && req->content_length > 0) {
        if (req->content_length > s->o.body_limit) {
            /* Answered without reading the body, so the connection cannot continue. */
            t->too_large = true;
            t->keep_alive = false;
            af__txn_dispatch(c);
            return;
        }
        c->body_left = req->content_length;
        c->state = AF__CONN_BODY;
    } else {
        af__txn_dispatch(c);
        return;
    }
    if (req->expect_continue)
        conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

/* The transaction's body failed to frame: answer its error and close. */
static void body_fail(af__conn *c, int status, const char *message)
{
    af__txn *t = &c->txn;
    af__resp_error(&t->resp, status, code_for(status), "%s", message);
    t->keep_alive = false;
    af__conn_respond(c);
}

/* Handles every complete request in the receive buffer, in order, while the connection can
 * answer at once (no output waiting, no request at a worker). */
static void conn_process(af__conn *c)
{
    af_server *s = c->loop->srv;
    while (c->fd >= 0 && !c->close_after && c->tx.len == c->tx_off) {
        const char *in = (const char *)c->rx.data + c->rx_off;
        size_t avail = c->rx.len - c->rx_off;
        if (c->state == AF__CONN_HEAD) {
            if (!avail)
                break;
            af__http_request req;
            af__http_error err;
            int r = af__http_parse_request(in, avail, AF__HTTP_MAX_HEAD, &req, &err);
            if (r == AF__HTTP_INCOMPLETE)
                break;
            if (r != AF__HTTP_OK) {
                conn_fail(c, err.status, code_for(err.status), err.message);
                break;
            }
            c->rx_off += req.head_len;
            on_head(c, &req);
        } else if (c->state == AF__CONN_BODY) {
            if (!avail)
                break;
            size_t take = avail < c->body_left ? avail : (size_t)c->body_left;
            af__buf_append(&c->txn.body, in, take);
            c->rx_off += take;
            c->body_left -= take;
            if (c->body_left == 0) {
                af__buf_terminate(&c->txn.body);
                if (c->txn.body.failed)
                    body_fail(c, 500, "out of memory reading the request body");
                else
                    af__txn_dispatch(c);
            }
        } else if (c->state == AF__CONN_CHUNKED) {
            if (!avail)
                break;
            bool done = false;
            af__http_error err;
            long n = af__http_chunked_feed(&c->chunked, in, avail, &c->txn.body, s->o.body_limit,
                                           &done, &err);
            if (n < 0) {
                body_fail(c, err.status, err.message);
                break;
            }
            c->rx_off += (size_t)n;
            if (done) {
                af__buf_terminate(&c->txn.body);
                if (c->txn.body.failed)
                    body_fail(c, 500, "out of memory reading the request body");
                else
                    af__txn_dispatch(c);
            }
        } else if (c->state == AF__CONN_WS) {
            af__ws_input(c);
            break;
        } else {
            break; /* AF__CONN_BUSY */
        }
    }
    if (c->fd < 0)
        return;
    /* A busy connection is answered at its job's deadline; an idle WebSocket client may stay
     * as long as it likes, but one with output pending must read it within the deadline. */
    if (c->state == AF__CONN_BUSY)
        timed_insert_job(c);
    else if (c->state == AF__CONN_WS && c->tx.len == c->tx_off)
        timed_remove(c);
    else if (c->state == AF__CONN_WS && !c->timed)
        timed_restart(c, af_monotonic_ns());
    /* Consumed bytes go; a partial request moves to the front. */
    if (c->rx_off == c->rx.len) {
        c->rx.len = c->rx_off = 0;
    } else if (c->rx_off > 0) {
        memmove(c->rx.data, c->rx.data + c->rx_off, c->rx.len - c->rx_off);
        c->rx.len -= c->rx_off;
        c->rx_off = 0;
    }
    update_events(c);
}

void af__conn_resume(af__conn *c)
{
    if (c->fd < 0)
        return;
    conn_process(c);
}

static void conn_read(af__conn *c)
{
    if (c->lingering) {
        char sink[4096]; /* raw: TLS records after close_notify are dropped undecrypted */
        ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            conn_close(c, NULL);
        return;
    }
    size_t got = 0;
    ssize_t n;
    do {
        if (!af__buf_reserve(&c->rx, AF__HTTP_READ_CHUNK)) {
            conn_close(c, "out of memory");
            return;
        }
        n = conn_recv(c, c->rx.data + c->rx.len, c->rx.cap - c->rx.len - 1);
        if (n > 0) {
            c->rx.len += (size_t)n;
            got += (size_t)n;
        }
        /* The rest of a TLS record already read from the socket is invisible to epoll: take
         * it now (at most one record, 16 KiB) or it would wait for the client's next bytes. */
    } while (n > 0 && c->ssl && af__tls_pending(c->ssl));
    if (got > 0) {
        conn_process(c);
    } else if (n == 0) {
        conn_close(c, "client disconnected");
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        conn_close(c, "client disconnected");
    }
}

static void conn_event(af__conn *c, uint32_t ev, uint64_t now)
{
    if (c->fd < 0)
        return;
    if (ev & EPOLLERR) {
        conn_close(c, "client disconnected");
        return;
    }
    /* A blocked TLS operation waits for the other direction (update_events): its readiness
     * resumes that operation. */
    if (c->tls_read_on_out && (ev & EPOLLOUT) && c->tx.len == c->tx_off)
        ev = (ev & ~(uint32_t)EPOLLOUT) | EPOLLIN;
    else if (c->tls_write_on_in && (ev & EPOLLIN) && c->tx.len > c->tx_off)
        ev = (ev & ~(uint32_t)EPOLLIN) | EPOLLOUT;
    if (ev & EPOLLOUT) {
        if (!conn_flush(c, now) || c->fd < 0 || c->lingering)
            return;
        if (c->tx.len == c->tx_off) {
            conn_process(c); /* requests that waited for the output to leave */
            return;
        }
    }
    if (c->state == AF__CONN_BUSY) {
        if (ev & (EPOLLRDHUP | EPOLLHUP))
            conn_close(c, "client disconnected");
        return;
    }
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
        conn_read(c);
}

/* ---------------------------------------------------------------------------------------- */
/* Accepting.                                                                                */

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    out[0] = '\0';
    if (ss->ss_family == AF_INET) {
        /* Dotted quad by hand: glibc's inet_ntop goes through sprintf. */
        const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
        char *p = out;
        for (int i = 0; i < 4; i++) {
            unsigned v = a[i];
            if (v >= 100)
                *p++ = (char)('0' + v / 100);
            if (v >= 10)
                *p++ = (char)('0' + v / 10 % 10);
            *p++ = (char)('0' + v % 10);
            *p++ = i < 3 ? '.' : '\0';
        }
    } else if (ss->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)cap);
    }
}

static void on_accept(af__loop *l, int lfd, bool metrics, uint64_t now)
{
    af_server *s = l->srv;
    for (int i = 0; i < AF__ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                if (now >= l->accept_warned_until) {
                    af_log(AF_LOG_WARN,
                           "server: cannot accept connections: %s (%u open on this loop); "
                           "raise the descriptor limit (ulimit -n)",
                           strerror(e), l->n_conns);
                    l->accept_warned_until = now + 10000000000ull;
                }
                /* The client waiting at the head of the backlog gets a 503 through the
                 * reserve descriptor instead of hanging until it gives up. */
                if (e == EMFILE || e == ENFILE)
                    af__guard_shed(&s->guard, lfd);
                accept_pause(l, now + 100000000ull);
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        af__conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            return;
        }
        c->loop = l;
        c->fd = fd;
        c->metrics = metrics;
        if (l->srv->tls && !(c->ssl = af__tls_session(l->srv->tls, fd))) {
            close(fd);
            free(c);
            continue;
        }
        c->state = AF__CONN_HEAD;
        c->events = EPOLLIN | EPOLLRDHUP;
        af__buf_init(&c->rx);
        af__buf_init(&c->tx);
        af__buf_init(&c->txn.body);
        af__resp_init(&c->txn.resp);
        c->txn.span = AF_SPAN_NONE;
        format_peer(&ss, c->peer, sizeof(c->peer));
        if (watch(l, fd, c->events, c) != 0) {
            af__tls_close(c->ssl);
            close(fd);
            af__resp_free(&c->txn.resp);
            free(c);
            continue;
        }
        all_add(c);
        timed_restart(c, now);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The loop.                                                                                 */

/* Reads the TLS connections queued by ready_add, as if their sockets were readable. Those
 * queued again while this runs wait for the next turn, so one client streaming pipelined
 * requests cannot hold the loop. */
static void read_ready(af__loop *l)
{
    af__conn *c = l->tls_ready_head;
    l->tls_ready_head = l->tls_ready_tail = NULL;
    while (c) {
        af__conn *next = c->ready_next;
        c->tls_ready = false;
        if (c->fd >= 0 && !c->lingering && !c->tls_read_on_out && c->state != AF__CONN_BUSY &&
            c->tx.len == c->tx_off)
            conn_read(c);
        c = next;
    }
}

static void expire(af__loop *l, uint64_t now)
{
    while (l->timed_head && l->timed_head->deadline_mono <= now) {
        af__conn *c = l->timed_head;
        if (c->state == AF__CONN_BUSY) {
            timed_remove(c);
            af__job_expire(c);
        } else if (c->txn.active || (c->state == AF__CONN_HEAD && c->rx.len > c->rx_off)) {
            /* A request started but did not arrive in time. */
            timed_remove(c);
            if (c->txn.active) {
                body_fail(c, 408, "the request body did not arrive in time");
            } else {
                conn_fail(c, 408, "request_timeout", "the request did not arrive in time");
            }
            if (c->fd >= 0)
                conn_close(c, "request timeout");
        } else {
            conn_close(c, NULL); /* idle keep-alive, or a client not reading its output */
        }
    }
}

/* On stop: no new connections; idle ones close now, busy ones after their response. */
static void begin_stop(af__loop *l, uint64_t now)
{
    af_server *s = l->srv;
    l->stop_deadline_mono = now + (uint64_t)s->o.shutdown_timeout_ms * 1000000ull;
    af__ws_loop_stop(l);
    for (af__conn *c = l->timed_head, *n; c; c = n) {
        n = c->next;
        if (!c->txn.active && c->tx.len == c->tx_off && c->state == AF__CONN_HEAD)
            conn_close(c, NULL);
    }
}

static bool drained(af__loop *l)
{
    af_server *s = l->srv;
    if (l->http_active)
        return false;
    for (af__conn *c = l->timed_head; c; c = c->next)
        if (c->tx.len > c->tx_off)
            return false;
    pthread_mutex_lock(&s->job_mu);
    uint32_t inflight = s->inflight;
    pthread_mutex_unlock(&s->job_mu);
    return inflight == 0;
}

static void bury(af__loop *l)
{
    while (l->dead) {
        af__conn *c = l->dead;
        l->dead = c->next;
        conn_free(c);
    }
}

static void *loop_main(void *arg)
{
    af__loop *l = arg;
    af_server *s = l->srv;
    char name[16];
    snprintf(name, sizeof(name), "af-http-%u", l->index);
    pthread_setname_np(pthread_self(), name);
    struct epoll_event ev[AF__EVENTS];
    for (;;) {
        uint64_t now = af_monotonic_ns();
        uint64_t paused = atomic_load(&s->guard.paused_until);
        bool stopping = atomic_load(&s->stopping);
        /* Stopping takes no new API connections; the metrics port stays open while draining. */
        listen_set(l, !stopping && now >= paused, now >= paused);
        if (stopping) {
            if (!l->stop_deadline_mono)
                begin_stop(l, now);
            if (drained(l))
                break;
            if (now >= l->stop_deadline_mono) {
                af_log(AF_LOG_WARN, "server: stopping with %u requests unfinished after %u ms",
                       l->http_active, s->o.shutdown_timeout_ms);
                break;
            }
        }
        int timeout = 1000;
        if (paused > now && (paused - now) / 1000000ull + 1 < (uint64_t)timeout)
            timeout = (int)((paused - now) / 1000000ull + 1);
        if (l->timed_head) {
            uint64_t d = l->timed_head->deadline_mono;
            uint64_t ms = d > now ? (d - now) / 1000000ull + 1 : 0;
            if (ms < (uint64_t)timeout)
                timeout = (int)ms;
        }
        if (atomic_load(&s->stopping) && timeout > 50)
            timeout = 50;
        if (l->tls_ready_head)
            timeout = 0;
        int n = epoll_wait(l->epfd, ev, AF__EVENTS, timeout);
        now = af_monotonic_ns();
        for (int i = 0; i < n; i++) {
            void *tag = ev[i].data.ptr;
            if (tag == &tag_api) {
                on_accept(l, s->api_fd, false, now);
            } else if (tag == &tag_metrics) {
                on_accept(l, s->metrics_fd, true, now);
            } else if (tag == &tag_wake) {
                uint64_t v;
                if (read(l->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                    af_log(AF_LOG_DEBUG, "server: wake read: %s", strerror(errno));
                af__jobs_drain(l);
                af__ws_drain(l);
            } else {
                conn_event(tag, ev[i].events, now);
            }
        }
        expire(l, now);
        read_ready(l);
        bury(l);
    }
    /* Whatever is left: idle, timed out, or past the stop bound. */
    while (l->conns)
        conn_close(l->conns, "server stopped");
    bury(l);
    return NULL;
}

void af__loop_wake(af__loop *l)
{
    uint64_t one = 1;
    if (write(l->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        af_log(AF_LOG_DEBUG, "server: wake write: %s", strerror(errno));
}

int af__loops_new(af_server *s, unsigned n)
{
    s->loops = calloc(n, sizeof(*s->loops));
    if (!s->loops)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        af__loop *l = &s->loops[i];
        l->srv = s;
        l->index = i;
        l->wake_fd = -1;
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        s->n_loops = i + 1;
        if (l->epfd < 0)
            return -errno;
        l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (l->wake_fd < 0)
            return -errno;
        int rc = watch(l, l->wake_fd, EPOLLIN, &tag_wake);
        if (rc != 0)
            return rc;
        listen_set(l, true, true);
    }
    return 0;
}

int af__loops_start(af_server *s)
{
    for (unsigned i = 0; i < s->n_loops; i++) {
        af__loop *l = &s->loops[i];
        int rc = pthread_create(&l->thread, NULL, loop_main, l);
        if (rc != 0)
            return -rc;
        l->started = true;
    }
    return 0;
}

void af__loops_stop(af_server *s)
{
    for (unsigned i = 0; i < s->n_loops; i++)
        if (s->loops[i].started)
            af__loop_wake(&s->loops[i]);
    for (unsigned i = 0; i < s->n_loops; i++) {
        af__loop *l = &s->loops[i];
        if (l->started) {
            pthread_join(l->thread, NULL);
            l->started = false;
        }
    }
}

void af__loops_free(af_server *s)
{
    for (unsigned i = 0; i < s->n_loops; i++) {
        af__loop *l = &s->loops[i];
        while (l->conns)
            conn_close(l->conns, "server stopped");
        bury(l);
        if (l->epfd >= 0)
            close(l->epfd);
        if (l->wake_fd >= 0)
            close(l->wake_fd);
        af__gpus_cache_free(&l->gpus);
    }
    free(s->loops);
    s->loops = NULL;
    s->n_loops = 0;
}
