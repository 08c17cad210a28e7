/*
 * libFuzzer target: the WebSocket frame reader, UTF-8 validator and encoder
 * (src/server/ws_frame.c). The first byte picks where the rest is split in two; the rest is
 * a stream of client frames.
 * Properties checked: no crash; a call never consumes more than it was given and reports no
 * event only when it consumed everything; messages stay within the limit, text messages and
 * close reasons are UTF-8, control payloads fit in 125 bytes, close codes are valid and errors
 * close with 1002, 1007, 1009 or 1011; after an error the reader consumes nothing; the events
 * are the same whether the stream arrives whole or in two pieces; the UTF-8 validator agrees
 * with itself byte by byte; a server frame carrying the input, masked as a client would,
 * reads back as that message; a key that passes the check gets an accept value.
 */
#include <stdlib.h>
#include <string.h>

#include "server/ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MESSAGE 4096
#define MAX_EVENTS 64

typedef struct trace {
    size_t n;
    struct {
        af__ws_event_type type;
        uint16_t code;
        size_t len;
        uint32_t sum;
    } ev[MAX_EVENTS];
} trace;

static uint32_t checksum(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static bool utf8_valid(const uint8_t *p, size_t n)
{
    af__utf8 u;
    af__utf8_init(&u);
    return af__utf8_feed(&u, p, n) && af__utf8_complete(&u);
}

static void check_event(const af__ws_event *ev)
{
    switch (ev->type) {
    case AF__WS_EV_MESSAGE:
        if (ev->len > MAX_MESSAGE ||
            (ev->opcode != AF__WS_OP_TEXT && ev->opcode != AF__WS_OP_BINARY) ||
            (ev->opcode == AF__WS_OP_TEXT && !utf8_valid(ev->data, ev->len)))
            abort();
        break;
    case AF__WS_EV_PING:
    case AF__WS_EV_PONG:
        if (ev->len > AF__WS_MAX_CONTROL)
            abort();
        break;
    case AF__WS_EV_CLOSE:
        if (ev->len > AF__WS_MAX_CONTROL - 2 || (ev->code && !af__ws_close_code_valid(ev->code)) ||
            (!ev->code && ev->len) || !utf8_valid(ev->data, ev->len))
            abort();
        break;
    case AF__WS_EV_ERROR:
        if (ev->code != AF__WS_CLOSE_PROTOCOL && ev->code != AF__WS_CLOSE_INVALID_DATA &&
            ev->code != AF__WS_CLOSE_TOO_BIG && ev->code != AF__WS_CLOSE_INTERNAL)
            abort();
        if (!ev->reason || !ev->reason[0])
            abort();
        break;
    case AF__WS_EV_NONE:
        break;
    }
}

/* Feeds the pieces in order, recording the events until the first error. */
static void run(const uint8_t *const *piece, const size_t *len, size_t n_pieces, trace *t)
{
    af__ws_reader r;
    af__ws_reader_init(&r, MAX_MESSAGE);
    t->n = 0;
    for (size_t i = 0; i < n_pieces && t->n < MAX_EVENTS; i++) {
        size_t at = 0;
        while (t->n < MAX_EVENTS) {
            af__ws_event ev;
            size_t used = af__ws_read(&r, piece[i] + at, len[i] - at, &ev);
            if (used > len[i] - at)
                abort();
            at += used;
            check_event(&ev);
            if (ev.type == AF__WS_EV_NONE) {
                if (at != len[i])
                    abort();
                break;
            }
            t->ev[t->n].type = ev.type;
            t->ev[t->n].code = ev.code;
            t->ev[t->n].len = ev.len;
            t->ev[t->n].sum = ev.len ? checksum(ev.data, ev.len) : 0;
            t->n++;
            if (ev.type == AF__WS_EV_ERROR) {
                if (af__ws_read(&r, piece[i], len[i], &ev) != 0 || ev.type != AF__WS_EV_ERROR)
                    abort();
                af__ws_reader_free(&r);
                return;
            }
        }
    }
    af__ws_reader_free(&r);
}

static void check_split(const uint8_t *in, size_t n, size_t split)
{
    static trace whole, parts;
    const uint8_t *p1[1] = {in};
    size_t l1[1] = {n};
    run(p1, l1, 1, &whole);
    const uint8_t *p2[2] = {in, in + split};
    size_t l2[2] = {split, n - split};
    run(p2, l2, 2, &parts);
    if (whole.n == MAX_EVENTS || parts.n == MAX_EVENTS)
        return; /* cut short at different points */
    if (whole.n != parts.n || memcmp(whole.ev, parts.ev, whole.n * sizeof(whole.ev[0])) != 0)
        abort();
}

static void check_utf8(const uint8_t *in, size_t n)
{
    af__utf8 u;
    af__utf8_init(&u);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++)
        ok = af__utf8_feed(&u, in + i, 1);
    if ((ok && af__utf8_complete(&u)) != utf8_valid(in, n))
        abort();
}

/* The input as a binary message: a server head, masked as a client's frame, reads back. */
static void check_roundtrip(const uint8_t *in, size_t n)
{
    if (n > MAX_MESSAGE)
        return;
    uint8_t *f = malloc(AF__WS_MAX_HEAD + 4 + n);
    if (!f)
        return;
    size_t h = af__ws_frame_head(f, AF__WS_OP_BINARY, n);
    f[1] |= 0x80;
    static const uint8_t mask[4] = {0xa5, 0x01, 0x7e, 0xc3};
    memcpy(f + h, mask, 4);
    for (size_t i = 0; i < n; i++)
        f[h + 4 + i] = in[i] ^ mask[i & 3];
    af__ws_reader r;
    af__ws_reader_init(&r, MAX_MESSAGE);
    af__ws_event ev;
    if (af__ws_read(&r, f, h + 4 + n, &ev) != h + 4 + n || ev.type != AF__WS_EV_MESSAGE ||
        ev.opcode != AF__WS_OP_BINARY || ev.len != n || (n && memcmp(ev.data, in, n) != 0))
        abort();
    af__ws_reader_free(&r);
    free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    check_split(in, n, data[0] % (n + 1));
    check_utf8(in, n);
    check_roundtrip(in, n);
    if (af__ws_key_valid((const char *)in, n)) {
        char accept[AF__WS_ACCEPT_LEN + 1];
        if (af__ws_accept_key((const char *)in, n, accept) != 0 ||
            strlen(accept) != AF__WS_ACCEPT_LEN)
            abort();
    }
    return 0;
}
