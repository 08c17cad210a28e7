/*
 * HTTP responses on a connection: the head written into the headroom in front of the body,
 * so head and body leave in one send(), and the errors answered before or instead of a route.
 */
#define AF_LOG_COMPONENT "http"

#include <stdio.h>
#include <string.h>

#include "agentaflow/propagation.h"
#include "server/http_int.h"
#include "server/server_int.h"

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
        af__conn_write(c, h, hlen);
    } else {
        uint8_t *b = rs->body.data + AF__RESP_HEADROOM - hlen;
        memcpy(b, h, hlen);
        af__conn_write(c, b, hlen + body_len);
    }
    if (!keep_alive)
        c->close_after = true;
}

/* A request refused before it became a transaction (malformed, too large): the error, then
 * the connection closes (what follows on it cannot be framed). */
void af__conn_fail(af__conn *c, int status, const char *code, const char *message)
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
        af__conn_linger(c);
}

/* The deadline bounds how long the client may take to read the rest and close its side. */
void af__conn_finish(af__conn *c)
{
    if (c->fd < 0)
        return;
    c->close_after = true;
    af__conn_timed_restart(c, af_monotonic_ns());
    if (c->tx.len == c->tx_off)
        af__conn_linger(c);
    else
        af__conn_update_events(c);
}

const char *af__http_code_for(int status)
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
        af__conn_timed_restart(c, af_monotonic_ns());
        if (c->close_after && c->tx.len == c->tx_off)
            af__conn_linger(c);
    }
}

/* A streamed answer's head: no content-length; chunked on HTTP/1.1, and on HTTP/1.0 the end
 * of the answer is the end of the connection. */
size_t af__conn_stream_head(af__conn *c, const char *content_type, char *h)
{
    af__txn *t = &c->txn;
    if (t->http10 || atomic_load(&c->loop->srv->stopping))
        t->keep_alive = false;
    char *p = h;
    p = t->http10 ? PUT_LIT(p, "HTTP/1.0 200 OK\r\ncontent-type: ")
                  : PUT_LIT(p, "HTTP/1.1 200 OK\r\ncontent-type: ");
    p = put(p, content_type, strlen(content_type));
    p = PUT_LIT(p, "\r\ncache-control: no-cache\r\nx-accel-buffering: no\r\n");
    if (!t->http10)
        p = PUT_LIT(p, "transfer-encoding: chunked\r\n");
    af_span_context sc;
    af_span_get_context(t->span, &sc);
    if (af_span_context_is_valid(&sc)) {
        char tr[56];
        af_traceparent_format(&sc, tr);
        p = PUT_LIT(p, "traceresponse: ");
        p = put(p, tr, 55);
        p = PUT_LIT(p, "\r\n");
    }
    if (!t->keep_alive)
        p = PUT_LIT(p, "connection: close\r\n");
    p = PUT_LIT(p, "\r\n");
    t->resp.status = 200;
    return (size_t)(p - h);
}

/* The answer is complete: the transaction ends as after af__conn_respond. */
static void stream_end(af__conn *c)
{
    af__txn *t = &c->txn;
    if (!t->keep_alive)
        c->close_after = true;
    af__txn_end(c);
    c->state = AF__CONN_HEAD;
    if (c->fd >= 0) {
        af__conn_timed_restart(c, af_monotonic_ns());
        if (c->close_after && c->tx.len == c->tx_off)
            af__conn_linger(c);
    }
}

/* iov: the head, the chunk's size line, up to AF__STREAM_PARTS parts, the chunk's CRLF (with
 * the last chunk after it when the answer ends). */
#define AF__STREAM_PARTS 8

void af__conn_stream_send(af__conn *c, const char *head, size_t head_len, const struct iovec *parts,
                          int n, bool last)
{
    bool chunked = !c->txn.http10;
    if (n > AF__STREAM_PARTS)
        n = AF__STREAM_PARTS;
    struct iovec iov[AF__STREAM_PARTS + 3];
    int k = 0;
    if (head_len)
        iov[k++] = (struct iovec){.iov_base = (void *)head, .iov_len = head_len};
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += parts[i].iov_len;
    char line[24];
    if (len && chunked)
        iov[k++] = (struct iovec){.iov_base = line,
                                  .iov_len = (size_t)snprintf(line, sizeof(line), "%zx\r\n", len)};
    for (int i = 0; i < n; i++)
        if (parts[i].iov_len)
            iov[k++] = parts[i];
    static const char crlf_end[] = "\r\n0\r\n\r\n";
    if (chunked && (len || last)) {
        const char *tail = len ? crlf_end : crlf_end + 2;
        size_t tail_len = (len ? 2 : 0) + (last ? 5 : 0);
        iov[k++] = (struct iovec){.iov_base = (void *)tail, .iov_len = tail_len};
    }
    if (k)
        af__conn_writev(c, iov, k);
    if (c->fd < 0)
        return;
    if (last) {
        stream_end(c);
        return;
    }
    /* Output the socket did not take: sent when it becomes writable, and the client must
     * read it within the write-progress deadline (http_loop.c: expire). */
    if (c->tx.len > c->tx_off) {
        if (!c->timed)
            af__conn_timed_restart(c, af_monotonic_ns());
        af__conn_update_events(c);
    }
}

/* The transaction's body failed to frame: answer its error and close. */
void af__conn_body_fail(af__conn *c, int status, const char *message)
{
    af__txn *t = &c->txn;
    af__resp_error(&t->resp, status, af__http_code_for(status), "%s", message);
    t->keep_alive = false;
    af__conn_respond(c);
}
