/*
 * One HTTP connection on its loop: the deadline-ordered and TLS read lists, closing and
 * lingering, socket I/O through the TLS session when there is one, and request framing
 * (http_loop.c describes the loops, flow control and TLS as a whole; http_resp.c writes
 * responses).
 */
#define AF_LOG_COMPONENT "http"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agentaflow/log.h"
#include "server/http_int.h"
#include "server/server_int.h"
#include "server/tls.h"

#define AF__HTTP_IDLE_MS 30000   /* keep-alive idle, request read and write-progress bound */
#define AF__HTTP_MAX_HEAD 16384  /* request line + headers; more = 431 */
#define AF__HTTP_READ_CHUNK 4096 /* free room a read asks for */

/* ---------------------------------------------------------------------------------------- */
/* Connection bookkeeping.                                                                   */

void af__conn_timed_remove(af__conn *c)
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
    af__conn_timed_remove(c);
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

void af__conn_timed_restart(af__conn *c, uint64_t now)
{
    timed_at(c, now + (uint64_t)AF__HTTP_IDLE_MS * 1000000ull);
}

/* A BUSY connection waits for its inference job's deadline; without one, for the job. */
static void timed_insert_job(af__conn *c)
{
    if (c->txn.job && c->txn.job->deadline_mono)
        timed_at(c, c->txn.job->deadline_mono);
    else
        af__conn_timed_remove(c);
}

void af__conn_all_add(af__conn *c)
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
    af__conn_timed_remove(c);
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

void af__conn_free(af__conn *c)
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

void af__conn_update_events(af__conn *c)
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
void af__conn_linger(af__conn *c)
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
    af__conn_update_events(c);
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
ssize_t af__conn_send(af__conn *c, const void *buf, size_t len)
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

/* Sends what is queued until the socket takes no more: -1 when the connection closed, else
 * whether any byte left. */
static int tx_send(af__conn *c)
{
    int moved = 0;
    while (c->tx.len > c->tx_off) {
        ssize_t n = af__conn_send(c, c->tx.data + c->tx_off, c->tx.len - c->tx_off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(c, "write failed");
            return -1;
        }
        c->tx_off += (size_t)n;
        moved = 1;
    }
    return moved;
}

/* Sends what is pending; false when the connection closed. */
bool af__conn_flush(af__conn *c, uint64_t now)
{
    int moved = tx_send(c);
    if (moved < 0)
        return false;
    if (moved)
        af__conn_timed_restart(c, now);
    if (c->tx.len == c->tx_off) {
        af__buf_reset(&c->tx);
        c->tx_off = 0;
        if (c->close_after) {
            af__conn_linger(c);
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
            ssize_t n = af__conn_send(c, (const char *)data + done, len - done);
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

void af__conn_write(af__conn *c, const void *data, size_t len)
{
    conn_write(c, data, len);
}

/* A plain socket with nothing queued takes the pieces in one sendmsg; the rest (or all of it
 * behind queued output, or through TLS, which has no gather write) goes into tx in order, and
 * TLS sends it as one write. */
void af__conn_writev(af__conn *c, const struct iovec *iov, int n)
{
    if (c->fd < 0)
        return;
    bool idle = c->tx.len == c->tx_off;
    size_t done = 0;
    if (idle && !c->ssl) {
        struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
        ssize_t r;
        do
            r = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (r < 0 && errno == EINTR);
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            conn_close(c, "write failed");
            return;
        }
        done = r > 0 ? (size_t)r : 0;
    }
    for (int i = 0; i < n; i++) {
        size_t len = iov[i].iov_len;
        if (done >= len) {
            done -= len;
            continue;
        }
        af__buf_append(&c->tx, (const char *)iov[i].iov_base + done, len - done);
        done = 0;
    }
    if (c->tx.failed) {
        conn_close(c, "out of memory");
        return;
    }
    if (idle && c->ssl)
        tx_send(c);
    if (c->fd >= 0 && c->tx.len == c->tx_off) {
        af__buf_reset(&c->tx);
        c->tx_off = 0;
    }
}

void af__conn_close(af__conn *c, const char *why)
{
    conn_close(c, why);
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
        af__resp rs;
        af__resp_init(&rs);
        /* OpenAI's clients read only their own error shape. */
        rs.openai = !c->metrics && req->path_len >= 4 && memcmp(req->path, "/v1/", 4) == 0;
        af__resp_error(&rs, deny.status, deny.code, "%s", deny.message);
        af__conn_refuse(c, &rs);
        af__resp_free(&rs);
        return;
    }
    if (ws) {
        if (atomic_load(&s->stopping))
            af__conn_fail(c, 503, "shutting_down", "the server is shutting down");
        else
            af__ws_upgrade(c, req);
        return;
    }
    if (req->path_len >= sizeof(c->txn.path)) {
        char m[96];
        snprintf(m, sizeof(m), "the request path is %zu bytes; the limit is %zu", req->path_len,
                 sizeof(c->txn.path) - 1);
        af__conn_fail(c, 414, "uri_too_long", m);
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

/* The request body arrived in full (Content-Length or chunked): the transaction runs. */
static void body_complete(af__conn *c)
{
    af__buf_terminate(&c->txn.body);
    if (c->txn.body.failed)
        af__conn_body_fail(c, 500, "out of memory reading the request body");
    else
        af__txn_dispatch(c);
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
                af__conn_fail(c, err.status, af__http_code_for(err.status), err.message);
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
            if (c->body_left == 0)
                body_complete(c);
        } else if (c->state == AF__CONN_CHUNKED) {
            if (!avail)
                break;
            bool done = false;
            af__http_error err;
            long n = af__http_chunked_feed(&c->chunked, in, avail, &c->txn.body, s->o.body_limit,
                                           &done, &err);
            if (n < 0) {
                af__conn_body_fail(c, err.status, err.message);
                break;
            }
            c->rx_off += (size_t)n;
            if (done)
                body_complete(c);
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
        af__conn_timed_remove(c);
    else if (c->state == AF__CONN_WS && !c->timed)
        af__conn_timed_restart(c, af_monotonic_ns());
    /* Consumed bytes go; a partial request moves to the front. */
    if (c->rx_off == c->rx.len) {
        c->rx.len = c->rx_off = 0;
    } else if (c->rx_off > 0) {
        memmove(c->rx.data, c->rx.data + c->rx_off, c->rx.len - c->rx_off);
        c->rx.len -= c->rx_off;
        c->rx_off = 0;
    }
    af__conn_update_events(c);
}

void af__conn_resume(af__conn *c)
{
    if (c->fd < 0)
        return;
    conn_process(c);
}

void af__conn_read(af__conn *c)
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

void af__conn_event(af__conn *c, uint32_t ev, uint64_t now)
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
        if (!af__conn_flush(c, now) || c->fd < 0 || c->lingering)
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
        af__conn_read(c);
}
