/*
 * The /ws WebSocket hub: the original's message types (server: metrics_update, alert,
 * notification, system_update, pong; client: get_metrics, ping, subscribe/unsubscribe).
 *
 * A message is built once and shared by reference among the clients' queues. Each client has
 * a bounded ring (ws_queue_depth); when it is full the oldest queued message is dropped and
 * counted, so a client that stops reading costs a bounded amount of memory and never holds
 * anyone else up: the loop only writes to a client when its socket is writable.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/log.h"
#include "agentaflow/trace_helpers.h"
#include "server/server_int.h"

#define WS_RX_LIMIT 65536
#define OUTBOX_MAX 256

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
    af__server_wake(s);
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
    lws_sul_schedule(s->ctx, 0, &s->push_timer, push_cb,
                     (lws_usec_t)s->o.ws_push_interval_ms * LWS_US_PER_MS);
}

void af__ws_timer_start(af_server *s)
{
    lws_sul_schedule(s->ctx, 0, &s->push_timer, push_cb,
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

int af__ws_callback(af_server *s, struct lws *wsi, enum lws_callback_reasons reason, af__pss *pss,
                    void *in, size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        if (lws_get_vhost(wsi) != s->vh_api || atomic_load(&s->stopping))
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
            /* Refused clearly: close code 1013 "try again later" with the reason. */
            c->rejected = true;
            atomic_fetch_add(&s->ws_rejected, 1);
            char why[96];
            int n = snprintf(why, sizeof(why), "too many WebSocket clients (limit %u)",
                             s->o.max_ws_clients);
            lws_close_reason(wsi, (enum lws_close_status)1013, (unsigned char *)why, (size_t)n);
            return -1;
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
