/*
 * libFuzzer target for the SSE parser (serving/sse.c) and the OpenAI chunk reader
 * (serving/openai.c), which read a backend's streamed answer. Invariants: arbitrary bytes
 * never crash; feeding the input at once, byte by byte and split at an input-chosen point
 * (after the first three bytes, where a BOM would be) gives the same events and the same
 * result; every event's data is NUL-terminated at data_len; the chunk reader returns 0,
 * AF_EPARSE or -EIO and a terminated message.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "serving/openai.h"
#include "serving/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct trace {
    uint64_t hash;
    size_t events;
} trace;

static void mix(trace *t, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        t->hash = (t->hash ^ b[i]) * 1099511628211u;
}

static int on_event(void *ctx, const af__sse_event *ev)
{
    trace *t = ctx;
    if (ev->data[ev->data_len] != '\0')
        __builtin_trap();
    mix(t, ev->type, strlen(ev->type) + 1);
    mix(t, ev->data, ev->data_len);
    mix(t, &ev->data_len, sizeof(ev->data_len));
    t->events++;
    for (int op = 0; op < 2; op++) {
        for (int whole = 0; whole < 2; whole++) {
            af__oai_answer a;
            char err[96];
            err[0] = '\0';
            int rc = af__oai_parse(ev->data, ev->data_len, (af_chat_operation)op, whole != 0, &a,
                                   err, sizeof(err));
            if (rc != 0 && rc != AF_EPARSE && rc != -EIO)
                __builtin_trap();
            if (memchr(err, '\0', sizeof(err)) == NULL || (rc && !err[0]))
                __builtin_trap();
            af__oai_answer_free(&a);
        }
    }
    return 0;
}

/* Feeds data in pieces: at once (step 0), byte by byte after `head` bytes (step 1), or in
 * two pieces split at `head` (step 2). Returns the parser's result; the events go to t. */
static int run(const uint8_t *data, size_t size, int step, size_t head, trace *t)
{
    af__sse p;
    af__sse_init(&p, 256, 1024);
    int rc = 0;
    if (step == 0) {
        rc = af__sse_feed(&p, (const char *)data, size, on_event, t);
    } else {
        rc = af__sse_feed(&p, (const char *)data, head, on_event, t);
        if (step == 1)
            for (size_t i = head; i < size && rc == 0; i++)
                rc = af__sse_feed(&p, (const char *)data + i, 1, on_event, t);
        else if (rc == 0)
            rc = af__sse_feed(&p, (const char *)data + head, size - head, on_event, t);
    }
    af__sse_free(&p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t head = size < 3 ? size : 3;
    size_t split = size ? head + (size > head ? data[0] % (size - head + 1) : 0) : 0;
    trace a = {14695981039346656037u, 0}, b = a, c = a;
    int ra = run(data, size, 0, 0, &a);
    int rb = run(data, size, 1, head, &b);
    int rc = run(data, size, 2, split, &c);
    if (ra != 0 && ra != AF_EPARSE)
        __builtin_trap();
    if (ra != rb || ra != rc || a.hash != b.hash || a.hash != c.hash || a.events != b.events ||
        a.events != c.events)
        __builtin_trap();
    return 0;
}
