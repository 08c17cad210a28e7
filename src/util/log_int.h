/*
 * util/log_int.h - the log channel's rate limit (util/log.c): at most AF__LOG_RATE_MAX lines
 * per call site (format string) every AF__LOG_RATE_WINDOW_NS, then one "suppressed K similar
 * messages" line when the site logs again after its window.
 */
#ifndef AF_UTIL_LOG_INT_H
#define AF_UTIL_LOG_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define AF__LOG_RATE_MAX 20
#define AF__LOG_RATE_WINDOW_NS 60000000000ull

/* Replaces the limit (0 = unlimited) and forgets every site's window; for tests. */
void af__log_rate_limit(unsigned max_per_window, uint64_t window_ns);

/* Where the built-in writer puts lines (NULL: stderr); for tests. */
void af__log_set_stream(FILE *f);

/* The ids of the logging thread's current span, for JSON lines. util sits below trace, so
 * the trace layer registers this when the first provider is made (before any span can be
 * current). Returns false when no span is current. */
typedef bool (*af__log_context_fn)(uint8_t trace_id[16], uint8_t span_id[8]);
void af__log_set_context_hook(af__log_context_fn fn);

/* Appends `len` bytes of s to out (capacity cap, always NUL-terminated) as the inside of a
 * JSON string: quotes, backslashes and control characters escaped, and every byte that is
 * not part of valid UTF-8 replaced by \ufffd. Returns the length written (truncated at a
 * whole escape when out is full). */
size_t af__log_json_escape(const char *s, size_t len, char *out, size_t cap);

#endif
