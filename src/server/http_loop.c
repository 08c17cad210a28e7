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
 *
 * Files: http_accept.c (listeners, accepting), http_conn.c (a connection: lists, I/O, request
 * framing), http_resp.c (responses), this file (the loop threads); http_int.h links them.
 */
#define AF_LOG_COMPONENT "http"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agentaflow/log.h"
#include "server/http_int.h"
#include "server/server_int.h"

#define AF__EVENTS 128

/* The epoll tag of a loop's wake-up eventfd (listeners: http_accept.c; else a connection). */
static char tag_wake;

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
            af__conn_read(c);
        c = next;
    }
}

static void expire(af__loop *l, uint64_t now)
{
    while (l->timed_head && l->timed_head->deadline_mono <= now) {
        af__conn *c = l->timed_head;
        if (c->state == AF__CONN_BUSY && c->txn.gw) {
            /* A live stream has no idle bound (the gateway's deadline bounds the call); it is
             * on this list only while its output waits: the client stopped reading. */
            af__conn_timed_remove(c);
            if (c->tx.len > c->tx_off) {
                af_log(AF_LOG_WARN,
                       "server: stream to %s cancelled: %zu bytes unread past the "
                       "write-progress deadline",
                       c->peer, c->tx.len - c->tx_off);
                af__conn_close(c, "stream output not read in time");
            }
        } else if (c->state == AF__CONN_BUSY) {
            af__conn_timed_remove(c);
            af__job_expire(c);
        } else if (c->txn.active || (c->state == AF__CONN_HEAD && c->rx.len > c->rx_off)) {
            /* A request started but did not arrive in time. */
            af__conn_timed_remove(c);
            if (c->txn.active) {
                af__conn_body_fail(c, 408, "the request body did not arrive in time");
            } else {
                af__conn_fail(c, 408, "request_timeout", "the request did not arrive in time");
            }
            if (c->fd >= 0)
                af__conn_close(c, "request timeout");
        } else {
            af__conn_close(c, NULL); /* idle keep-alive, or a client not reading its output */
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
            af__conn_close(c, NULL);
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
        af__conn_free(c);
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
        af__loop_listen_set(l, !stopping && now >= paused, now >= paused);
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
        /* Streams queued since the drain below are taken at once, without a wake-up. */
        if (!af__gw_queue_sleep(&l->gwq))
            timeout = 0;
        int n = epoll_wait(l->epfd, ev, AF__EVENTS, timeout);
        af__gw_queue_woke(&l->gwq);
        now = af_monotonic_ns();
        for (int i = 0; i < n; i++) {
            void *tag = ev[i].data.ptr;
            if (af__loop_accept_event(l, tag, now))
                continue;
            if (tag == &tag_wake) {
                af__jobs_drain(l);
                af__ws_drain(l);
            } else {
                af__conn_event(tag, ev[i].events, now);
            }
        }
        /* Every turn, not only on a wake-up: the gateway's threads wake a loop that waits,
         * never one that is busy (gw_out.h). */
        af__gw_drain(l);
        expire(l, now);
        read_ready(l);
        bury(l);
    }
    /* Whatever is left: idle, timed out, or past the stop bound. */
    while (l->conns)
        af__conn_close(l->conns, "server stopped");
    bury(l);
    return NULL;
}

/* The eventfd is edge-triggered and never read on the loop: every write makes it report
 * once more (eventfd wakes its pollers on each write), so a wake-up costs the loop no read().
 * Its counter only grows; should it ever be full (2^64 - 2 wake-ups), a write fails with
 * EAGAIN, and the waker empties it and writes again. */
void af__loop_wake(af__loop *l)
{
    uint64_t one = 1, v;
    if (write(l->wake_fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
        return;
    if (errno == EAGAIN && read(l->wake_fd, &v, sizeof(v)) == (ssize_t)sizeof(v) &&
        write(l->wake_fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
        return;
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
        af__gw_queue_init(&l->gwq);
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        s->n_loops = i + 1;
        if (l->epfd < 0)
            return -errno;
        l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (l->wake_fd < 0)
            return -errno;
        int rc = af__loop_watch(l, l->wake_fd, EPOLLIN | EPOLLET, &tag_wake);
        if (rc != 0)
            return rc;
        af__loop_listen_set(l, true, true);
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
            af__conn_close(l->conns, "server stopped");
        bury(l);
        af__gw_loop_free(l);
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
