/*
 * The /ws WebSocket hub: the original's message types (server: metrics_update, alert,
 * notification, system_update, pong; client: get_metrics, ping, subscribe/unsubscribe).
 *
 * A client is an HTTP connection that upgraded: it stays on the loop that read its request,
 * its bytes arrive through the connection's receive buffer and its frames leave through the
 * connection's writes, so one event loop design serves both protocols and TLS (when the
 * connection has it) covers WebSocket traffic too. The protocol itself (handshake checks,
 * frame reader, UTF-8) is in ws_frame.c, without I/O.
 *
 * A message is framed once and shared by reference among the clients' queues. Each client has
 * a bounded ring (ws_queue_depth); when it is full the oldest queued message is dropped and
 * counted. A message leaves the queue only when the connection has no output pending, so a
 * client that stops reading costs its queue, one partly written frame and one read's worth of
 * input, and never holds anyone else up.
 *
 * Other threads broadcast through each loop's outbox (ws_mu) and wake the loop through its
 * eventfd; the "af-ws-push" thread makes the periodic metrics_update that way.
 */
#define AF_LOG_COMPONENT "http"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "agentaflow/log.h"
#include "agentaflow/trace_helpers.h"
#include "server/server_int.h"
#include "server/ws_frame.h"
#include "util/timeutil.h"

#define WS_RX_LIMIT 65536 /* the largest client message, reassembled */
#define OUTBOX_MAX 256    /* broadcasts waiting for one loop */
#define WS_SNDBUF 65536   /* a client's kernel send buffer (the kernel doubles it) */

struct af__ws_msg {
    atomic_uint refs;
    size_t off; /* the frame starts at data[off]: its head, then the payload */
    size_t len; /* the whole frame */
    uint8_t data[];
};

struct af__ws_client {
    af__ws_client *next, *prev; /* the loop's clients */
    af__conn *conn;
    uint64_t id;
    bool listed;    /* on the loop's list and counted in n_clients */
    af__ws_msg **q; /* ring of ws_queue_depth */
    uint32_t q_head, q_len;
    af__ws_reader rd;
};

static af__ws_msg *msg_new(const char *json, size_t len)
{
    af__ws_msg *m = malloc(sizeof(*m) + AF__WS_MAX_HEAD + len);
    if (!m)
        return NULL;
    uint8_t head[AF__WS_MAX_HEAD];
    size_t h = af__ws_frame_head(head, AF__WS_OP_TEXT, len);
    atomic_init(&m->refs, 1);
    m->off = AF__WS_MAX_HEAD - h;
    m->len = h + len;
    memcpy(m->data + m->off, head, h);
    memcpy(m->data + AF__WS_MAX_HEAD, json, len);
    return m;
}

static void msg_unref(af__ws_msg *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1)
        free(m);
}

static void ws_span(af_server *s, const char *event, const af__ws_client *w, const char *detail)
{
    if (!af__ws_tracer(s))
        return;
    af_span_context none;
    af_span_context_init(&none);
    char id[32];
    snprintf(id, sizeof(id), "ws-%llu", (unsigned long long)(w ? w->id : 0));
    af_span sp = af_trace_websocket_event(af__ws_tracer(s), &none, event, w ? id : "all");
    if (detail)
        af_span_set_string(sp, "websocket.detail", detail);
    af_span_set_int(sp, "websocket.clients", atomic_load(&s->n_clients));
    af_operation_end(sp, 0, NULL, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Per-client queue and output. Loop only.                                                   */

static void enqueue(af_server *s, af__ws_client *w, af__ws_msg *m)
{
    uint32_t depth = s->o.ws_queue_depth;
    if (w->q_len == depth) {
        msg_unref(w->q[w->q_head]);
        w->q_head = (w->q_head + 1) % depth;
        w->q_len--;
        atomic_fetch_add(&s->ws_dropped, 1);
    }
    atomic_fetch_add(&m->refs, 1);
    w->q[(w->q_head + w->q_len) % depth] = m;
    w->q_len++;
}

/* Writes queued messages while the connection takes them without buffering. */
static void pump(af_server *s, af__conn *c)
{
    af__ws_client *w = c->ws;
    while (w->q_len && c->fd >= 0 && c->tx.len == c->tx_off) {
        af__ws_msg *m = w->q[w->q_head];
        w->q_head = (w->q_head + 1) % s->o.ws_queue_depth;
        w->q_len--;
        af__conn_write(c, m->data + m->off, m->len);
        msg_unref(m);
        atomic_fetch_add(&s->ws_sent, 1);
    }
}

static void send_to(af_server *s, af__ws_client *w, const char *json, size_t len)
{
    af__ws_msg *m = msg_new(json, len);
    if (!m)
        return;
    enqueue(s, w, m);
    msg_unref(m);
}

void af__ws_detach(af__conn *c)
{
    af__ws_client *w = c->ws;
    af__loop *l = c->loop;
    af_server *s = l->srv;
    if (!w || !w->listed)
        return;
    w->listed = false;
    if (w->prev)
        w->prev->next = w->next;
    else
        l->ws_clients = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
    for (uint32_t i = 0; i < w->q_len; i++)
        msg_unref(w->q[(w->q_head + i) % s->o.ws_queue_depth]);
    w->q_len = 0;
    atomic_fetch_sub(&s->n_clients, 1);
    ws_span(s, "disconnect", w, NULL);
}

void af__ws_client_free(af__ws_client *w)
{
    if (!w)
        return;
    af__ws_reader_free(&w->rd);
    free(w->q); /* the queued messages were released when the client detached */
    free(w);
}

/* Ends the WebSocket: the client leaves the hub, the close frame is the last output. */
static void ws_close(af__conn *c, uint16_t code, const char *reason)
{
    uint8_t f[2 + AF__WS_MAX_CONTROL];
    size_t n = af__ws_close_frame(f, code, reason);
    af__ws_detach(c);
    af__conn_write(c, f, n);
    af__conn_finish(c);
}

/* ---------------------------------------------------------------------------------------- */
/* Messages.                                                                                 */

static af__ws_msg *metrics_update_msg(af_server *s)
{
    af_buf b;
    af__buf_init(&b);
    af__buf_puts(&b, "{\"type\":\"metrics_update\",\"data\":");
    af__dashboard_metrics_json(s, &b);
    af__buf_puts(&b, ",\"timestamp\":");
    char ts[40];
    af__fmt_rfc3339(af_now_ns(), 9, ts);
    af__buf_printf(&b, "\"%s\"}", ts);
    af__ws_msg *m = b.failed ? NULL : msg_new((const char *)b.data, b.len);
    af__buf_clear(&b);
    return m;
}

static void on_message(af_server *s, af__ws_client *w, const uint8_t *data, size_t len)
{
    json_error_t e;
    json_t *j = len ? json_loadb((const char *)data, len, 0, &e) : NULL; /* data may be NULL */
    const char *type = j ? json_string_value(json_object_get(j, "type")) : NULL;
    if (!type) {
        static const char err[] = "{\"type\":\"error\",\"data\":{\"message\":\"expected a JSON "
                                  "object with a \\\"type\\\"\"}}";
        send_to(s, w, err, sizeof(err) - 1);
    } else if (strcmp(type, "ping") == 0) {
        char ts[40], out[96];
        af__fmt_rfc3339(af_now_ns(), 9, ts);
        int n = snprintf(out, sizeof(out), "{\"type\":\"pong\",\"timestamp\":\"%s\"}", ts);
        send_to(s, w, out, (size_t)n);
        ws_span(s, "ping", w, NULL);
    } else if (strcmp(type, "get_metrics") == 0) {
        af__ws_msg *m = metrics_update_msg(s);
        if (m) {
            enqueue(s, w, m);
            msg_unref(m);
        }
        ws_span(s, "get_metrics", w, NULL);
    } else if (strcmp(type, "subscribe") == 0 || strcmp(type, "unsubscribe") == 0) {
        ws_span(s, type, w, NULL);
    }
    json_decref(j);
}

/* One event from the frame reader. */
static void on_event(af_server *s, af__conn *c, const af__ws_event *ev)
{
    af__ws_client *w = c->ws;
    switch (ev->type) {
    case AF__WS_EV_MESSAGE:
        on_message(s, w, ev->data, ev->len);
        break;
    case AF__WS_EV_PING: {
        uint8_t f[AF__WS_MAX_HEAD + AF__WS_MAX_CONTROL];
        size_t h = af__ws_frame_head(f, AF__WS_OP_PONG, ev->len);
        memcpy(f + h, ev->data, ev->len);
        af__conn_write(c, f, h + ev->len);
        break;
    }
    case AF__WS_EV_CLOSE: {
        /* The close handshake: echo the peer's code (none when it sent none). */
        char reason[AF__WS_MAX_CONTROL + 1];
        memcpy(reason, ev->data, ev->len);
        reason[ev->len] = '\0';
        af_log(AF_LOG_DEBUG, "server: WebSocket client ws-%llu closed (%u)",
               (unsigned long long)w->id, ev->code);
        ws_close(c, ev->code, ev->code ? reason : NULL);
        break;
    }
    case AF__WS_EV_ERROR:
        af_log(AF_LOG_DEBUG, "server: WebSocket client ws-%llu failed: %s (%u)",
               (unsigned long long)w->id, ev->reason, ev->code);
        ws_close(c, ev->code, ev->reason);
        break;
    case AF__WS_EV_PONG:
    case AF__WS_EV_NONE:
        break;
    }
}

void af__ws_input(af__conn *c)
{
    af_server *s = c->loop->srv;
    af__ws_client *w = c->ws;
    for (;;) {
        pump(s, c);
        if (c->fd < 0 || c->close_after || c->tx.len > c->tx_off || c->rx_off == c->rx.len)
            return;
        af__ws_event ev;
        c->rx_off += af__ws_read(&w->rd, c->rx.data + c->rx_off, c->rx.len - c->rx_off, &ev);
        on_event(s, c, &ev);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The opening handshake.                                                                    */

void af__ws_upgrade(af__conn *c, const af__http_request *req)
{
    af_server *s = c->loop->srv;
    char accept[AF__WS_ACCEPT_LEN + 1];
    af__ws_refusal why;
    if (af__ws_handshake_check(req, accept, &why) != 0) {
        af_log(AF_LOG_DEBUG, "server: WebSocket handshake from %s refused (%d): %s", c->peer,
               why.status, why.message);
        af__resp refusal;
        af__resp_init(&refusal);
        af__resp_error(&refusal, why.status, why.code, "%s", why.message);
        if (why.status == 426)
            refusal.headers = "sec-websocket-version: 13\r\nupgrade: websocket\r\n";
        af__conn_refuse(c, &refusal);
        af__resp_free(&refusal);
        return;
    }
    af__ws_client *w = calloc(1, sizeof(*w));
    if (!w || !(w->q = calloc(s->o.ws_queue_depth, sizeof(*w->q)))) {
        free(w);
        af__conn_close(c, "out of memory");
        return;
    }
    af__ws_reader_init(&w->rd, WS_RX_LIMIT);
    w->conn = c;
    w->id = atomic_fetch_add(&s->next_client_id, 1) + 1;
    char head[160];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                     "connection: Upgrade\r\nsec-websocket-accept: %s\r\n\r\n",
                     accept);
    c->ws = w;
    c->state = AF__CONN_WS;
    /* Counted and listed before the 101 goes out: a client that reads its handshake and then
     * asks /health (another loop) must find itself counted (integration.daemon.ws under TSan
     * caught the count lagging). A write that fails closes the connection, which unlists it. */
    bool refused = atomic_fetch_add(&s->n_clients, 1) >= s->o.max_ws_clients;
    if (refused) {
        atomic_fetch_sub(&s->n_clients, 1);
    } else {
        af__loop *l = c->loop;
        w->listed = true;
        w->next = l->ws_clients;
        if (l->ws_clients)
            l->ws_clients->prev = w;
        l->ws_clients = w;
    }
    af__conn_write(c, head, (size_t)n);
    if (c->fd < 0)
        return; /* the write failed and closed the connection */
    /* Loopback and fast links autotune the send buffer to megabytes, which a client that
     * stops reading would fill before its bounded queue ever dropped anything: a fixed
     * buffer keeps each client's memory to its queue plus this. */
    int sndbuf = WS_SNDBUF;
    setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    if (refused) {
        /* Refused clearly: close code 1013 "try again later" with the reason. */
        atomic_fetch_add(&s->ws_rejected, 1);
        char reason[96];
        snprintf(reason, sizeof(reason), "too many WebSocket clients (limit %u)",
                 s->o.max_ws_clients);
        af_log(AF_LOG_DEBUG, "server: WebSocket client from %s refused: %s", c->peer, reason);
        ws_close(c, AF__WS_CLOSE_TRY_AGAIN, reason);
        return;
    }
    af_log(AF_LOG_DEBUG, "server: WebSocket client ws-%llu connected from %s",
           (unsigned long long)w->id, c->peer);
    ws_span(s, "connect", w, NULL);
    af__ws_msg *m = metrics_update_msg(s);
    if (m) {
        enqueue(s, w, m);
        msg_unref(m);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Broadcasts.                                                                               */

/* Any thread: one reference of m per loop outbox. */
static void broadcast_msg(af_server *s, af__ws_msg *m)
{
    pthread_mutex_lock(&s->ws_mu);
    for (unsigned i = 0; i < s->n_loops; i++) {
        af__loop *l = &s->loops[i];
        if (l->ws_outbox_len == OUTBOX_MAX) {
            /* The loop is not keeping up: drop the oldest broadcast. */
            msg_unref(l->ws_outbox[0]);
            memmove(l->ws_outbox, l->ws_outbox + 1, (OUTBOX_MAX - 1) * sizeof(*l->ws_outbox));
            l->ws_outbox_len--;
            atomic_fetch_add(&s->ws_dropped, 1);
        }
        if (l->ws_outbox_len == l->ws_outbox_cap) {
            size_t cap = l->ws_outbox_cap ? l->ws_outbox_cap * 2 : 16;
            af__ws_msg **n = realloc(l->ws_outbox, cap * sizeof(*n));
            if (!n)
                continue;
            l->ws_outbox = n;
            l->ws_outbox_cap = cap;
        }
        atomic_fetch_add(&m->refs, 1);
        l->ws_outbox[l->ws_outbox_len++] = m;
    }
    pthread_mutex_unlock(&s->ws_mu);
    for (unsigned i = 0; i < s->n_loops; i++)
        af__loop_wake(&s->loops[i]);
}

void af__ws_broadcast(af_server *s, const char *json, size_t len)
{
    /* Nobody to tell: skip the copy and the wake-ups. */
    if (atomic_load(&s->n_clients) == 0)
        return;
    af__ws_msg *m = msg_new(json, len);
    if (!m)
        return;
    broadcast_msg(s, m);
    msg_unref(m);
}

void af__ws_drain(af__loop *l)
{
    af_server *s = l->srv;
    af__ws_msg *local[OUTBOX_MAX];
    pthread_mutex_lock(&s->ws_mu);
    size_t n = l->ws_outbox_len;
    if (n == 0) { /* most wake-ups are job completions */
        pthread_mutex_unlock(&s->ws_mu);
        return;
    }
    memcpy(local, l->ws_outbox, n * sizeof(*local));
    l->ws_outbox_len = 0;
    pthread_mutex_unlock(&s->ws_mu);
    for (size_t i = 0; i < n; i++) {
        for (af__ws_client *w = l->ws_clients; w; w = w->next)
            enqueue(s, w, local[i]);
        msg_unref(local[i]);
    }
    /* Sending may close a client (a failed write): it unlinks only itself. */
    for (af__ws_client *w = l->ws_clients, *next; w; w = next) {
        next = w->next;
        af__conn_resume(w->conn);
    }
}

void af__ws_loop_stop(af__loop *l)
{
    for (af__ws_client *w = l->ws_clients, *next; w; w = next) {
        next = w->next;
        af__conn *c = w->conn;
        if (c->tx.len > c->tx_off)
            af__conn_close(c, "server stopping");
        else
            ws_close(c, AF__WS_CLOSE_GOING_AWAY, "server stopping");
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The push thread.                                                                          */

static void *push_main(void *arg)
{
    af_server *s = arg;
    pthread_setname_np(pthread_self(), "af-ws-push");
    uint64_t interval = (uint64_t)s->o.ws_push_interval_ms * 1000000ull;
    uint64_t next = af_monotonic_ns() + interval;
    pthread_mutex_lock(&s->ws_mu);
    while (!s->ws_exit) {
        uint64_t now = af_monotonic_ns();
        if (now < next) {
            /* ws_cv waits on CLOCK_MONOTONIC, af_monotonic_ns's clock. */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t at = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + next - now;
            ts.tv_sec = (time_t)(at / 1000000000ull);
            ts.tv_nsec = (long)(at % 1000000000ull);
            pthread_cond_timedwait(&s->ws_cv, &s->ws_mu, &ts);
            continue;
        }
        next = now + interval;
        pthread_mutex_unlock(&s->ws_mu);
        if (atomic_load(&s->n_clients) > 0 && !atomic_load(&s->stopping)) {
            af__ws_msg *m = metrics_update_msg(s);
            if (m) {
                broadcast_msg(s, m);
                msg_unref(m);
            }
            ws_span(s, "broadcast", NULL, "metrics_update");
        }
        pthread_mutex_lock(&s->ws_mu);
    }
    pthread_mutex_unlock(&s->ws_mu);
    return NULL;
}

int af__ws_start(af_server *s)
{
    int rc = pthread_create(&s->ws_thread, NULL, push_main, s);
    if (rc != 0)
        return -rc;
    s->ws_started = true;
    return 0;
}

void af__ws_stop(af_server *s)
{
    if (!s->ws_started)
        return;
    pthread_mutex_lock(&s->ws_mu);
    s->ws_exit = true;
    pthread_cond_signal(&s->ws_cv);
    pthread_mutex_unlock(&s->ws_mu);
    pthread_join(s->ws_thread, NULL);
    s->ws_started = false;
}

void af__ws_free(af_server *s)
{
    for (unsigned i = 0; s->loops && i < s->n_loops; i++) {
        af__loop *l = &s->loops[i];
        for (size_t k = 0; k < l->ws_outbox_len; k++)
            msg_unref(l->ws_outbox[k]);
        free(l->ws_outbox);
        l->ws_outbox = NULL;
        l->ws_outbox_len = l->ws_outbox_cap = 0;
    }
}

/* Ends a message's data object with the time now, sends it to every client and frees b. */
static void broadcast_stamped(af_server *s, af_buf *b)
{
    char ts[40];
    af__fmt_rfc3339(af_now_ns(), 9, ts);
    af__buf_printf(b, ",\"timestamp\":\"%s\"}}", ts);
    if (!b->failed)
        af__ws_broadcast(s, (const char *)b->data, b->len);
    af__buf_clear(b);
}

void af_server_notify(af_server *s, const char *title, const char *message, const char *level)
{
    if (!s)
        return;
    af_buf b;
    af__buf_init(&b);
    af__buf_puts(&b, "{\"type\":\"notification\",\"data\":{\"title\":");
    af__buf_json_string(&b, title ? title : "", title ? strlen(title) : 0);
    af__buf_puts(&b, ",\"message\":");
    af__buf_json_string(&b, message ? message : "", message ? strlen(message) : 0);
    af__buf_puts(&b, ",\"level\":");
    af__buf_json_string(&b, level ? level : "info", strlen(level ? level : "info"));
    broadcast_stamped(s, &b);
}

void af__system_update(af_server *s, const char *event, const char *id)
{
    af_buf b;
    af__buf_init(&b);
    af__buf_puts(&b, "{\"type\":\"system_update\",\"data\":{\"event\":");
    af__buf_json_string(&b, event, strlen(event));
    if (id) {
        af__buf_puts(&b, ",\"id\":");
        af__buf_json_string(&b, id, strlen(id));
    }
    broadcast_stamped(s, &b);
}
