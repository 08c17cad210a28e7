/*
 * util/log_int.h - the log channel's rate limit (util/log.c): at most AF__LOG_RATE_MAX lines
 * per call site (format string) every AF__LOG_RATE_WINDOW_NS, then one "suppressed K similar
 * messages" line when the site logs again after its window.
 */
#ifndef AF_UTIL_LOG_INT_H
#define AF_UTIL_LOG_INT_H

#include <stdint.h>

#define AF__LOG_RATE_MAX 20
#define AF__LOG_RATE_WINDOW_NS 60000000000ull

/* Replaces the limit (0 = unlimited) and forgets every site's window; for tests. */
void af__log_rate_limit(unsigned max_per_window, uint64_t window_ns);

#endif
