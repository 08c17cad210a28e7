/*
 * serving/sse.h - an incremental Server-Sent Events parser (the WHATWG event-stream format)
 * for the backend side of streamed completions.
 *
 * Feed it bytes as they arrive, split anywhere; it calls back once per complete event (a
 * blank line ends an event that has data). Lines end in \r\n, \n or \r (a \r\n split across
 * two feeds counts once); lines starting with ':' are comments; "data" lines of one event are
 * joined with \n; "event" names the type; a leading UTF-8 BOM is skipped; other fields are
 * ignored. A line longer than max_line or an event's data longer than max_data stops the
 * parser with AF_EPARSE. The OpenAI end marker "data: [DONE]" is an ordinary event
 * (af__sse_is_done tells it).
 *
 * Ownership: the parser owns its buffers (af__sse_free); an event's strings are borrowed for
 * the callback only. Threads: one parser is used by one thread at a time.
 */
#ifndef AF_SERVING_SSE_H
#define AF_SERVING_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

typedef struct af__sse_event {
    const char *type; /* "message" unless an event: field said otherwise */
    const char *data; /* NUL-terminated */
    size_t data_len;
} af__sse_event;

/* Returns 0 to go on; anything else stops the feed and is returned by af__sse_feed. */
typedef int (*af__sse_cb)(void *ctx, const af__sse_event *ev);

typedef struct af__sse {
    af_buf line, data;
    char type[32];
    size_t max_line, max_data;
    bool after_cr; /* the previous byte ended a line with \r */
    bool started;  /* past the optional BOM */
    bool has_data; /* the event has had a data line */
    bool failed;   /* a previous feed failed; every later feed fails the same way */
    int fail_rc;
} af__sse;

void af__sse_init(af__sse *p, size_t max_line, size_t max_data);
void af__sse_free(af__sse *p);
/* 0, AF_EPARSE (a line or an event too long), -ENOMEM, or a callback's non-zero return. */
int af__sse_feed(af__sse *p, const char *buf, size_t len, af__sse_cb cb, void *ctx);
/* data is "[DONE]" (the OpenAI stream's end). */
bool af__sse_is_done(const af__sse_event *ev);

#endif
