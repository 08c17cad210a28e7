/*
 * The /ws WebSocket hub: the original's message types (server: metrics_update, alert,
 * notification, system_update, pong; client: get_metrics, ping, subscribe/unsubscribe).
 *
 * A message is built once and shared by reference among the clients' queues. Each client has
 * a bounded ring (ws_queue_depth); when it is full the oldest queued message is dropped and
 * counted, so a client that stops reading costs a bounded amount of memory and never holds
 * anyone else up: the loop only writes to a client when its socket is writable.
 *
 * The clients live on one libwebsockets context served by the "af-ws" thread. It has no
 * listener of its own: an HTTP loop that reads an upgrade request for /ws hands the socket
 * and the bytes it read over (af__ws_handoff), and lws performs the handshake from them.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentaflow/log.h"
#include "agentaflow/trace_helpers.h"
#include "server/server_int.h"

#define WS_RX_LIMIT 65536
#define OUTBOX_MAX 256

/* A socket on its way from an HTTP loop to the WebSocket context. */
struct af__ws_handoff {
    struct af__ws_handoff *next;
    int fd;
    size_t len;
    char bytes[];
};

static void ws_wake(af_server *s)
{
    if (s->ws_ctx)
        lws_cancel_service(s->ws_ctx);
}

af__ws_msg *af__ws_msg_new(const char *json, size_t len)
{
    af__ws_msg *m = malloc(sizeof(*m) + LWS_PRE + len);
    if (!m)
        return NULL;
    atomic_init(&m->refs, 1);
    m->len = len;
    memcpy(m->data + LWS_PRE, json, len);
    return m;
}

void af__ws_msg_unref(af__ws_msg *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1)
        free(m);
}

static void ws_span(af_server *s, const char *event, const af__ws_client *c, const char *detail)
{
    if (!s->ws_tracer)
        return;
    af_span_context none;
    af_span_context_init(&none);
    char id[32];
    snprintf(id, sizeof(id), "ws-%llu", (unsigned long long)(c ? c->id : 0));
    af_span sp = af_trace_websocket_event(s->ws_tracer, &none, event, c ? id : "all");
    if (detail)
        af_span_set_string(sp, "websocket.detail", detail);
    af_span_set_int(sp, "websocket.clients", atomic_load(&s->n_clients));
    af_operation_end(sp, 0, NULL, NULL);
}

/* Loop only. */
static void enqueue(af_server *s, af__ws_client *c, af__ws_msg *m)
{
    uint32_t depth = s->o.ws_queue_depth;
    if (c->q_len == depth) {
        af__ws_msg_unref(c->q[c->q_head]);
        c->q_head = (c->q_head + 1) % depth;
        c->q_len--;
        c->dropped++;
        atomic_fetch_add(&s->ws_dropped, 1);
    }
    atomic_fetch_add(&m->refs, 1);
    c->q[(c->q_head + c->q_len) % depth] = m;
    c->q_len++;
    lws_callback_on_writable(c->wsi);
}

void af__ws_broadcast(af_server *s, const char *json, size_t len)
{
    af__ws_msg *m = af__ws_msg_new(json, len);
    if (!m)
        return;
    pthread_mutex_lock(&s->ws_mu);
    if (s->outbox_len == OUTBOX_MAX) {
        /* The loop is not keeping up: drop the oldest broadcast. */
        af__ws_msg_unref(s->outbox[0]);
        memmove(s->outbox, s->outbox + 1, (OUTBOX_MAX - 1) * sizeof(*s->outbox));
        s->outbox_len--;
        atomic_fetch_add(&s->ws_dropped, 1);
    }
    if (s->outbox_len == s->outbox_cap) {
        size_t cap = s->outbox_cap ? s->outbox_cap * 2 : 16;
        af__ws_msg **n = realloc(s->outbox, cap * sizeof(*n));
        if (!n) {
            pthread_mutex_unlock(&s->ws_mu);
            af__ws_msg_unref(m);
            return;
        }
        s->outbox = n;
        s->outbox_cap = cap;
    }
    s->outbox[s->outbox_len++] = m;
    pthread_mutex_unlock(&s->ws_mu);
    ws_wake(s);
}

void af__ws_drain(af_server *s)
{
    pthread_mutex_lock(&s->ws_mu);
    size_t n = s->outbox_len;
    if (n == 0) {
        pthread_mutex_unlock(&s->ws_mu);
        return;
    }
    af__ws_msg *local[OUTBOX_MAX];
    memcpy(local, s->outbox, n * sizeof(*local));
    s->outbox_len = 0;
    pthread_mutex_unlock(&s->ws_mu);
    for (size_t i = 0; i < n; i++) {
        for (af__ws_client *c = s->clients; c; c = c->next)
            if (!c->rejected && !c->closing)
                enqueue(s, c, local[i]);
        af__ws_msg_unref(local[i]);
    }
}

static af__ws_msg *metrics_update_msg(af_server *s)
{
    af_buf b;
    af__buf_init(&b);
    af__buf_puts(&b, "{\"type\":\"metrics_update\",\"data\":");
    af__dashboard_metrics_json(s, &b);
    af__buf_puts(&b, ",\"timestamp\":");
    char ts[40];
    af__rfc3339(af_now_ns(), ts);
    af__buf_printf(&b, "\"%s\"}", ts);
    af__ws_msg *m = b.failed ? NULL : af__ws_msg_new((const char *)b.data, b.len);
    af__buf_free(&b);
    return m;
}

static void push_cb(lws_sorted_usec_list_t *sul)
{
    af_server *s = lws_container_of(sul, af_server, push_timer);
    if (atomic_load(&s->n_clients) > 0 && !atomic_load(&s->stopping)) {
        af__ws_msg *m = metrics_update_msg(s);
        if (m) {
            for (af__ws_client *c = s->clients; c; c = c->next)
                if (!c->rejected && !c->closing)
                    enqueue(s, c, m);
            af__ws_msg_unref(m);
        }
        ws_span(s, "broadcast", NULL, "metrics_update");
    }
    lws_sul_schedule(s->ws_ctx, 0, &s->push_timer, push_cb,
                     (lws_usec_t)s->o.ws_push_interval_ms * LWS_US_PER_MS);
}

void af__ws_timer_start(af_server *s)
{
    lws_sul_schedule(s->ws_ctx, 0, &s->push_timer, push_cb,
                     (lws_usec_t)s->o.ws_push_interval_ms * LWS_US_PER_MS);
}

void af__ws_close_all(af_server *s)
{
    lws_sul_cancel(&s->push_timer);
    for (af__ws_client *c = s->clients; c; c = c->next) {
        c->closing = true;
        lws_callback_on_writable(c->wsi);
    }
}

static void client_free(af__ws_client *c)
{
    if (!c)
        return;
    free(c->q); /* queued messages were released by the caller */
    af__buf_free(&c->rx);
    free(c);
}

static void send_to(af_server *s, af__ws_client *c, const char *json, size_t len)
{
    af__ws_msg *m = af__ws_msg_new(json, len);
    if (!m)
        return;
    enqueue(s, c, m);
    af__ws_msg_unref(m);
}

static void on_message(af_server *s, af__ws_client *c)
{
    json_error_t e;
    json_t *j = json_loadb((const char *)c->rx.data, c->rx.len, 0, &e);
    const char *type = j ? json_string_value(json_object_get(j, "type")) : NULL;
    if (!type) {
        char err[256];
        int n = snprintf(err, sizeof(err),
                         "{\"type\":\"error\",\"data\":{\"message\":\"expected a JSON object "
                         "with a \\\"type\\\"\"}}");
        send_to(s, c, err, (size_t)n);
    } else if (strcmp(type, "ping") == 0) {
        char ts[40], out[96];
        af__rfc3339(af_now_ns(), ts);
        int n = snprintf(out, sizeof(out), "{\"type\":\"pong\",\"timestamp\":\"%s\"}", ts);
        send_to(s, c, out, (size_t)n);
        ws_span(s, "ping", c, NULL);
    } else if (strcmp(type, "get_metrics") == 0) {
        af__ws_msg *m = metrics_update_msg(s);
        if (m) {
            enqueue(s, c, m);
            af__ws_msg_unref(m);
        }
        ws_span(s, "get_metrics", c, NULL);
    } else if (strcmp(type, "subscribe") == 0 || strcmp(type, "unsubscribe") == 0) {
        ws_span(s, type, c, NULL);
    }
    json_decref(j);
}

/* Origin check (the original's rule): none, or this host. */
static bool origin_ok(struct lws *wsi)
{
    char origin[256] = "", host[256] = "";
    if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) <= 0)
        return true;
    lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST);
    const char *p = strstr(origin, "://");
    return p && host[0] && strcmp(p + 3, host) == 0;
}

int af__ws_callback(af_server *s, struct lws *wsi, enum lws_callback_reasons reason,
                    af__ws_pss *pss, void *in, size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        if (atomic_load(&s->stopping))
            return -1;
        char uri[64] = "";
        lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
        if (strcmp(uri, "/ws") != 0 && strcmp(uri, "/ws/") != 0)
            return -1;
        if (!origin_ok(wsi)) {
            af_log(AF_LOG_WARN, "server: WebSocket refused: foreign Origin");
            return -1;
        }
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED: {
        af__ws_client *c = calloc(1, sizeof(*c));
        if (!c || !(c->q = calloc(s->o.ws_queue_depth, sizeof(*c->q)))) {
            free(c);
            return -1;
        }
        af__buf_init(&c->rx);
        c->wsi = wsi;
        c->id = ++s->next_client_id;
        pss->ws = c;
        if (atomic_load(&s->n_clients) >= s->o.max_ws_clients) {
            /* Refused clearly: close code 1013 "try again later" with the reason, sent from
             * the writable callback (where lws sends a close frame reliably). */
            c->rejected = true;
            c->closing = true;
            atomic_fetch_add(&s->ws_rejected, 1);
            lws_callback_on_writable(wsi);
            return 0;
        }
        c->next = s->clients;
        if (s->clients)
            s->clients->prev = c;
        s->clients = c;
        atomic_fetch_add(&s->n_clients, 1);
        ws_span(s, "connect", c, NULL);
        af__ws_msg *m = metrics_update_msg(s);
        if (m) {
            enqueue(s, c, m);
            af__ws_msg_unref(m);
        }
        return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        af__ws_client *c = pss->ws;
        if (!c)
            return 0;
        if (c->closing && c->rejected) {
            char why[96];
            int n = snprintf(why, sizeof(why), "too many WebSocket clients (limit %u)",
                             s->o.max_ws_clients);
            lws_close_reason(wsi, (enum lws_close_status)1013, (unsigned char *)why, (size_t)n);
            return -1;
        }
        if (c->closing) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, (unsigned char *)"server stopping",
                             15);
            return -1;
        }
        if (!c->q_len)
            return 0;
        af__ws_msg *m = c->q[c->q_head];
        c->q_head = (c->q_head + 1) % s->o.ws_queue_depth;
        c->q_len--;
        int w = lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
        af__ws_msg_unref(m);
        if (w < (int)0)
            return -1;
        atomic_fetch_add(&s->ws_sent, 1);
        if (c->q_len)
            lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_RECEIVE: {
        af__ws_client *c = pss->ws;
        if (!c)
            return -1;
        if (c->rx.len + len > WS_RX_LIMIT) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                             (unsigned char *)"message too large", 17);
            return -1;
        }
        af__buf_append(&c->rx, in, len);
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
            on_message(s, c);
            af__buf_reset(&c->rx);
        }
        return 0;
    }
    case LWS_CALLBACK_CLOSED: {
        af__ws_client *c = pss->ws;
        if (!c)
            return 0;
        if (!c->rejected) {
            if (c->prev)
                c->prev->next = c->next;
            else
                s->clients = c->next;
            if (c->next)
                c->next->prev = c->prev;
            atomic_fetch_sub(&s->n_clients, 1);
            ws_span(s, "disconnect", c, NULL);
        }
        for (uint32_t i = 0; i < c->q_len; i++)
            af__ws_msg_unref(c->q[(c->q_head + i) % s->o.ws_queue_depth]);
        c->q_len = 0;
        client_free(c);
        pss->ws = NULL;
        return 0;
    }
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The WebSocket context and its thread.                                                     */

int af__ws_handoff(af_server *s, int fd, const char *bytes, size_t len)
{
    if (len > AF__WS_HANDOFF_MAX)
        return -EMSGSIZE;
    struct af__ws_handoff *h = malloc(sizeof(*h) + len);
    if (!h)
        return -ENOMEM;
    h->fd = fd;
    h->len = len;
    memcpy(h->bytes, bytes, len);
    pthread_mutex_lock(&s->ws_mu);
    h->next = s->handoffs;
    s->handoffs = h;
    pthread_mutex_unlock(&s->ws_mu);
    ws_wake(s);
    return 0;
}

/* The WebSocket thread: adopts handed-over sockets (lws closes one it cannot adopt). */
static void adopt_handoffs(af_server *s)
{
    pthread_mutex_lock(&s->ws_mu);
    struct af__ws_handoff *h = s->handoffs;
    s->handoffs = NULL;
    pthread_mutex_unlock(&s->ws_mu);
    while (h) {
        struct af__ws_handoff *n = h->next;
        if (!lws_adopt_socket_vhost_readbuf(s->ws_vh, h->fd, h->bytes, h->len))
            af_log(AF_LOG_WARN, "server: a WebSocket connection could not be adopted");
        free(h);
        h = n;
    }
}

static int ws_lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
    af_server *s = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        adopt_handoffs(s);
        af__ws_drain(s);
        return 0;
    case LWS_CALLBACK_HTTP:
        /* Only upgrade requests reach this context; one lws did not accept as a WebSocket
         * handshake (a missing Sec-WebSocket-Key, say) is refused. */
        lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST,
                               "expected a WebSocket handshake (RFC 6455)");
        return -1;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_CLOSED:
        if (user || reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION)
            return af__ws_callback(s, wsi, reason, user, in, len);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols ws_protocols[] = {
    {"agentaflow", ws_lws_callback, sizeof(af__ws_pss), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_log_bridge(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    af_log(level == LLL_ERR ? AF_LOG_WARN : AF_LOG_DEBUG, "lws: %.*s", (int)n, line);
}

int af__ws_new(af_server *s)
{
    lws_set_log_level(LLL_ERR, lws_log_bridge);
    struct lws_context_creation_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    ci.user = s;
    ci.port = CONTEXT_PORT_NO_LISTEN;
    ci.count_threads = 1;
    ci.timeout_secs = 30;
    s->ws_ctx = lws_create_context(&ci);
    if (!s->ws_ctx)
        return -EIO;
    struct lws_context_creation_info vi;
    memset(&vi, 0, sizeof(vi));
    vi.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    vi.protocols = ws_protocols;
    vi.vhost_name = "ws";
    vi.keepalive_timeout = 30;
    s->ws_vh = lws_create_vhost(s->ws_ctx, &vi);
    return s->ws_vh ? 0 : -EIO;
}

static void *ws_main(void *arg)
{
    af_server *s = arg;
    pthread_setname_np(pthread_self(), "af-ws");
    af__ws_timer_start(s);
    while (!atomic_load(&s->ws_exit))
        if (lws_service(s->ws_ctx, 0) < 0)
            break;
    af__ws_close_all(s);
    /* A few more turns so the close frames leave. */
    for (int i = 0; i < 4; i++)
        lws_service(s->ws_ctx, -1);
    return NULL;
}

int af__ws_start(af_server *s)
{
    int rc = pthread_create(&s->ws_thread, NULL, ws_main, s);
    if (rc != 0)
        return -rc;
    s->ws_started = true;
    return 0;
}

void af__ws_stop(af_server *s)
{
    if (!s->ws_started)
        return;
    atomic_store(&s->ws_exit, true);
    ws_wake(s);
    pthread_join(s->ws_thread, NULL);
    s->ws_started = false;
}

void af__ws_free(af_server *s)
{
    if (s->ws_ctx)
        lws_context_destroy(s->ws_ctx);
    s->ws_ctx = NULL;
    while (s->handoffs) {
        struct af__ws_handoff *h = s->handoffs;
        s->handoffs = h->next;
        close(h->fd);
        free(h);
    }
    for (size_t i = 0; i < s->outbox_len; i++)
        af__ws_msg_unref(s->outbox[i]);
    free(s->outbox);
    s->outbox = NULL;
    s->outbox_len = 0;
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
    char ts[40];
    af__rfc3339(af_now_ns(), ts);
    af__buf_printf(&b, ",\"timestamp\":\"%s\"}}", ts);
    if (!b.failed)
        af__ws_broadcast(s, (const char *)b.data, b.len);
    af__buf_free(&b);
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
    char ts[40];
    af__rfc3339(af_now_ns(), ts);
    af__buf_printf(&b, ",\"timestamp\":\"%s\"}}", ts);
    if (!b.failed)
        af__ws_broadcast(s, (const char *)b.data, b.len);
    af__buf_free(&b);
}
