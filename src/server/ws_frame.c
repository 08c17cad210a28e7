/*
 * The WebSocket protocol (RFC 6455) without I/O: handshake checks, the client frame reader,
 * UTF-8 validation and server frames. See ws_frame.h.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "server/ws_frame.h"
#include "util/str.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ---------------------------------------------------------------------------------------- */
/* Handshake.                                                                                */

static int b64_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

bool af__ws_key_valid(const char *key, size_t len)
{
    /* 16 bytes are 21 whole characters and one holding the last 2 bits (its low 4 bits
     * zero in canonical base64), then "==". */
    if (!key || len != 24 || key[22] != '=' || key[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (b64_value(key[i]) < 0)
            return false;
    return (b64_value(key[21]) & 0x0f) == 0;
}

int af__ws_accept_key(const char *key, size_t len, char out[AF__WS_ACCEPT_LEN + 1])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) && EVP_DigestUpdate(ctx, key, len) &&
             EVP_DigestUpdate(ctx, ws_guid, sizeof(ws_guid) - 1) &&
             EVP_DigestFinal_ex(ctx, md, &md_len) && md_len == 20;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -EIO;
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 characters and a NUL */
    return 0;
}

/* The header's value when it occurs exactly once; *count gets how often it occurs. */
static const char *single_header(const af__http_request *req, const char *name, size_t *len,
                                 unsigned *count)
{
    const char *v = NULL;
    *count = 0;
    for (size_t i = 0; i < req->n_headers; i++)
        if (af__str_ieq(req->headers[i].name, req->headers[i].name_len, name)) {
            if (!v) {
                v = req->headers[i].value;
                *len = req->headers[i].value_len;
            }
            (*count)++;
        }
    return *count == 1 ? v : NULL;
}

static int refuse(af__ws_refusal *why, int status, const char *code, const char *message)
{
    why->status = status;
    why->code = code;
    why->message = message;
    return status;
}

int af__ws_handshake_check(const af__http_request *req, char accept[AF__WS_ACCEPT_LEN + 1],
                           af__ws_refusal *why)
{
    if (req->minor_version < 1)
        return refuse(why, 400, "bad_request", "a WebSocket handshake needs HTTP/1.1");
    if (req->chunked || (req->has_content_length && req->content_length > 0))
        return refuse(why, 400, "bad_request", "a WebSocket handshake has no body");
    size_t n = 0;
    unsigned count;
    const char *v = single_header(req, "sec-websocket-version", &n, &count);
    if (!v || n != 2 || memcmp(v, "13", 2) != 0)
        return refuse(why, 426, "upgrade_required",
                      "this server speaks WebSocket version 13 (RFC 6455) only");
    v = single_header(req, "sec-websocket-key", &n, &count);
    if (!v || !af__ws_key_valid(v, n))
        return refuse(why, 400, "bad_request",
                      "Sec-WebSocket-Key must appear once and be the base64 of 16 bytes");
    /* Whether the Origin may connect is the request gate's rule (guard.c), checked before the
     * upgrade reaches here; two Origin headers are ambiguous, so refused here. */
    size_t origin_len = 0;
    unsigned n_origin;
    single_header(req, "origin", &origin_len, &n_origin);
    if (n_origin > 1)
        return refuse(why, 403, "forbidden", "a WebSocket upgrade may carry one Origin header");
    if (af__ws_accept_key(v, n, accept) != 0)
        return refuse(why, 500, "internal", "cannot compute Sec-WebSocket-Accept");
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* UTF-8.                                                                                    */

void af__utf8_init(af__utf8 *u)
{
    u->need = 0;
    u->lo = 0x80;
    u->hi = 0xBF;
}

bool af__utf8_feed(af__utf8 *u, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        if (u->need) {
            if (b < u->lo || b > u->hi)
                return false;
            u->need--;
            u->lo = 0x80;
            u->hi = 0xBF;
            continue;
        }
        if (b < 0x80)
            continue;
        /* The second byte's range excludes overlongs (E0, F0), surrogates (ED) and code
         * points above U+10FFFF (F4); C0, C1 and F5..FF never occur. */
        if (b >= 0xC2 && b <= 0xDF) {
            u->need = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            u->need = 2;
            if (b == 0xE0)
                u->lo = 0xA0;
            else if (b == 0xED)
                u->hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            u->need = 3;
            if (b == 0xF0)
                u->lo = 0x90;
            else if (b == 0xF4)
                u->hi = 0x8F;
        } else {
            return false;
        }
    }
    return true;
}

bool af__utf8_complete(const af__utf8 *u)
{
    return u->need == 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Reading frames.                                                                           */

void af__ws_reader_init(af__ws_reader *r, size_t max_message)
{
    memset(r, 0, sizeof(*r));
    r->max_message = max_message;
    r->head_need = 2;
    af__buf_init(&r->msg);
    af__utf8_init(&r->utf8);
}

void af__ws_reader_free(af__ws_reader *r)
{
    af__buf_clear(&r->msg);
}

bool af__ws_close_code_valid(uint16_t code)
{
    /* 1004-1006 and 1015 are reserved or only for reporting locally; 1016-2999 are
     * unassigned; 3000-4999 belong to libraries and applications. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* The connection fails; false, for the checks that return it. */
static bool fail(af__ws_reader *r, af__ws_event *ev, uint16_t code, const char *reason)
{
    r->failed = true;
    ev->type = AF__WS_EV_ERROR;
    ev->code = code;
    ev->reason = reason;
    return false;
}

static bool is_control(uint8_t op)
{
    return op & 0x8;
}

/* The first two bytes are in: what can be judged from them, and the head's full length. */
static bool head_start(af__ws_reader *r, af__ws_event *ev)
{
    uint8_t b0 = r->head[0], b1 = r->head[1];
    r->fin = b0 & 0x80;
    r->opcode = b0 & 0x0f;
    if (b0 & 0x70)
        return fail(r, ev, AF__WS_CLOSE_PROTOCOL, "reserved bits set without an extension");
    switch (r->opcode) {
    case AF__WS_OP_CONT:
        if (!r->msg_op)
            return fail(r, ev, AF__WS_CLOSE_PROTOCOL, "continuation frame outside a message");
        break;
    case AF__WS_OP_TEXT:
    case AF__WS_OP_BINARY:
        if (r->msg_op)
            return fail(r, ev, AF__WS_CLOSE_PROTOCOL,
                        "new message before the fragmented one ended");
        break;
    case AF__WS_OP_CLOSE:
    case AF__WS_OP_PING:
    case AF__WS_OP_PONG:
        if (!r->fin)
            return fail(r, ev, AF__WS_CLOSE_PROTOCOL, "fragmented control frame");
        if ((b1 & 0x7f) > AF__WS_MAX_CONTROL)
            return fail(r, ev, AF__WS_CLOSE_PROTOCOL, "control frame over 125 bytes");
        break;
    default:
        return fail(r, ev, AF__WS_CLOSE_PROTOCOL, "unknown opcode");
    }
    if (!(b1 & 0x80))
        return fail(r, ev, AF__WS_CLOSE_PROTOCOL, "client frames must be masked");
    uint8_t l7 = b1 & 0x7f;
    r->head_need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + 4;
    return true;
}

/* The whole head is in: the payload length and the mask. */
static bool head_end(af__ws_reader *r, af__ws_event *ev)
{
    uint8_t l7 = r->head[1] & 0x7f;
    uint64_t len = l7;
    size_t at = 2;
    if (l7 == 126) {
        len = (uint64_t)r->head[2] << 8 | r->head[3];
        at = 4;
        if (len < 126)
            return fail(r, ev, AF__WS_CLOSE_PROTOCOL, "length not in its shortest form");
    } else if (l7 == 127) {
        len = 0;
        for (size_t i = 2; i < 10; i++)
            len = len << 8 | r->head[i];
        at = 10;
        if (len >> 63)
            return fail(r, ev, AF__WS_CLOSE_PROTOCOL, "length with its top bit set");
        if (len <= 0xffff)
            return fail(r, ev, AF__WS_CLOSE_PROTOCOL, "length not in its shortest form");
    }
    memcpy(r->mask, r->head + at, 4);
    if (!is_control(r->opcode) && len > r->max_message - r->msg.len)
        return fail(r, ev, AF__WS_CLOSE_TOO_BIG, "message too large");
    if (r->opcode == AF__WS_OP_TEXT || r->opcode == AF__WS_OP_BINARY) {
        r->msg_op = r->opcode;
        af__utf8_init(&r->utf8);
    }
    r->left = len;
    r->taken = 0;
    r->ctl_len = 0;
    return true;
}

/* The frame's payload is complete: the event it makes, if any. */
static void frame_end(af__ws_reader *r, af__ws_event *ev)
{
    r->head_have = 0;
    r->head_need = 2;
    switch (r->opcode) {
    case AF__WS_OP_PING:
    case AF__WS_OP_PONG:
        ev->type = r->opcode == AF__WS_OP_PING ? AF__WS_EV_PING : AF__WS_EV_PONG;
        ev->data = r->ctl;
        ev->len = r->ctl_len;
        return;
    case AF__WS_OP_CLOSE: {
        if (r->ctl_len == 1) {
            fail(r, ev, AF__WS_CLOSE_PROTOCOL, "close frame with a 1-byte payload");
            return;
        }
        uint16_t code = 0;
        if (r->ctl_len >= 2) {
            code = (uint16_t)(r->ctl[0] << 8 | r->ctl[1]);
            if (!af__ws_close_code_valid(code)) {
                fail(r, ev, AF__WS_CLOSE_PROTOCOL, "invalid close code");
                return;
            }
            af__utf8 u;
            af__utf8_init(&u);
            if (!af__utf8_feed(&u, r->ctl + 2, r->ctl_len - 2) || !af__utf8_complete(&u)) {
                fail(r, ev, AF__WS_CLOSE_INVALID_DATA, "close reason is not UTF-8");
                return;
            }
        }
        ev->type = AF__WS_EV_CLOSE;
        ev->code = code;
        ev->data = r->ctl_len >= 2 ? r->ctl + 2 : r->ctl;
        ev->len = r->ctl_len >= 2 ? r->ctl_len - 2 : 0;
        return;
    }
    default:
        if (!r->fin)
            return;
        if (r->msg_op == AF__WS_OP_TEXT && !af__utf8_complete(&r->utf8)) {
            fail(r, ev, AF__WS_CLOSE_INVALID_DATA, "text message is not UTF-8");
            return;
        }
        ev->type = AF__WS_EV_MESSAGE;
        ev->opcode = r->msg_op;
        ev->data = r->msg.data;
        ev->len = r->msg.len;
        r->deliver_done = true;
        return;
    }
}

/* Unmasks payload bytes into the message or the control buffer. */
static void take_payload(af__ws_reader *r, const uint8_t *in, size_t n, af__ws_event *ev)
{
    uint8_t *dst;
    if (is_control(r->opcode)) {
        dst = r->ctl + r->ctl_len;
        r->ctl_len += n;
    } else {
        if (!af__buf_reserve(&r->msg, n)) {
            fail(r, ev, AF__WS_CLOSE_INTERNAL, "out of memory");
            return;
        }
        dst = r->msg.data + r->msg.len;
        r->msg.len += n;
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = in[i] ^ r->mask[(r->taken + i) & 3];
    r->taken += n;
    if (r->msg_op == AF__WS_OP_TEXT && !is_control(r->opcode) && !af__utf8_feed(&r->utf8, dst, n))
        fail(r, ev, AF__WS_CLOSE_INVALID_DATA, "text message is not UTF-8");
}

size_t af__ws_read(af__ws_reader *r, const uint8_t *in, size_t len, af__ws_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    if (r->failed) {
        ev->type = AF__WS_EV_ERROR;
        ev->code = AF__WS_CLOSE_PROTOCOL;
        ev->reason = "the connection has failed";
        return 0;
    }
    if (r->deliver_done) {
        r->deliver_done = false;
        r->msg_op = 0;
        af__buf_reset(&r->msg);
        /* A large message's buffer is not kept for the connection's life. */
        if (r->msg.cap > 65536)
            af__buf_clear(&r->msg);
    }
    size_t used = 0;
    while (ev->type == AF__WS_EV_NONE && used < len) {
        if (r->head_have < r->head_need) {
            size_t n = r->head_need - r->head_have;
            if (n > len - used)
                n = len - used;
            memcpy(r->head + r->head_have, in + used, n);
            r->head_have += n;
            used += n;
            if (r->head_have == 2 && r->head_need == 2 && !head_start(r, ev))
                break;
            if (r->head_have < r->head_need || !head_end(r, ev))
                continue;
        } else {
            size_t n = r->left < len - used ? (size_t)r->left : len - used;
            take_payload(r, in + used, n, ev);
            used += n;
            r->left -= n;
            if (ev->type == AF__WS_EV_ERROR)
                break;
        }
        if (r->left == 0)
            frame_end(r, ev);
    }
    return used;
}

/* ---------------------------------------------------------------------------------------- */
/* Server frames.                                                                            */

size_t af__ws_frame_head(uint8_t out[AF__WS_MAX_HEAD], uint8_t opcode, uint64_t len)
{
    out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

size_t af__ws_close_frame(uint8_t out[2 + AF__WS_MAX_CONTROL], uint16_t code, const char *reason)
{
    size_t n = 0;
    if (code) {
        n = reason ? strlen(reason) : 0;
        if (n > AF__WS_MAX_CONTROL - 2) {
            n = AF__WS_MAX_CONTROL - 2;
            /* Cut on a character boundary: the reason must stay UTF-8. */
            while (n && ((uint8_t)reason[n] & 0xC0) == 0x80)
                n--;
        }
        out[2] = (uint8_t)(code >> 8);
        out[3] = (uint8_t)code;
        if (n)
            memcpy(out + 4, reason, n);
        n += 2;
    }
    size_t h = af__ws_frame_head(out, AF__WS_OP_CLOSE, n);
    return h + n;
}
