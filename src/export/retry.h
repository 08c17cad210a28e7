/*
 * export/retry.h - retry policy of the HTTP exporters (internal): which failures are retried,
 * how long to wait (exponential backoff with full jitter, or the server's Retry-After), and
 * an interruptible wait that shutdown cuts short.
 *
 * Everything here is owned by the exporter that embeds it; nothing is global.
 */
#ifndef AF_EXPORT_RETRY_H
#define AF_EXPORT_RETRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "agentaflow/export.h"
#include "export/http_client.h"

/* Defaults of af_retry_opts (the C++/Java/JS SDKs' values, docs/standards.md, OTLP/HTTP). */
void af__retry_opts_default(af_retry_opts *o);

/* OTLP/HTTP: only 429, 502, 503 and 504 are transient. */
bool af__retry_status_retryable(long status);

/* Seeds a per-exporter jitter generator (never zero). */
void af__retry_seed(uint64_t *rng);
/* Wait before retry number `retry` (0 = the first retry): uniform in
 * [0, min(max_backoff, initial_backoff * multiplier^retry)] ("full jitter"). */
uint64_t af__retry_backoff_ns(const af_retry_opts *o, uint32_t retry, uint64_t *rng);
/* Parses a Retry-After value, delay-seconds or an HTTP-date (RFC 9110 10.2.3), into a delay
 * from now_wall_ns (CLOCK_REALTIME); a date in the past is a zero delay. 0 or -EINVAL. */
int af__retry_after_parse(const char *value, uint64_t now_wall_ns, uint64_t *delay_ns);

/*
 * Shutdown coordination for one exporter: export() runs between _begin and _end, sleeps with
 * _sleep_until, and shutdown calls _stop then _wait_idle. Any thread may call _stop.
 */
typedef struct af__stopper {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC */
    bool stopped;
    bool busy;
} af__stopper;

int af__stopper_init(af__stopper *s);
void af__stopper_destroy(af__stopper *s);
/* AF_ESHUTDOWN once stopped, else marks an export in progress. */
int af__stopper_begin(af__stopper *s);
void af__stopper_end(af__stopper *s);
/* Waits until wake_ns (CLOCK_MONOTONIC): 0, or AF_ESHUTDOWN as soon as _stop is called. */
int af__stopper_sleep_until(af__stopper *s, uint64_t wake_ns);
/* Returns true for the first call only. Wakes every sleeper. */
bool af__stopper_stop(af__stopper *s);
/* Waits for the export in progress (if any) to end: 0, or AF_ETIMEDOUT at deadline_ns. */
int af__stopper_wait_idle(af__stopper *s, uint64_t deadline_ns);
/* Fork hook: locks before the fork, unlocks in the parent; in the child re-creates the lock
 * and condition variable and forgets the parent's export in progress (the thread running it
 * does not exist there, so shutdown would wait for it in vain). */
void af__stopper_atfork(af__stopper *s, af_fork_phase phase);

/*
 * Sends wire[0..len) and retries transient failures while attempts and time remain. A wait
 * that would end at or after deadline_ns is not started: the last outcome is returned at
 * once. Returns what the last af__http_client_post returned (0 = a response is in resp,
 * whatever its status), or AF_ESHUTDOWN when a wait was interrupted. Each attempt that is
 * retried is recorded in `hh` (may be NULL) as it happens.
 */
int af__retry_post(af__http_client *c, af__stopper *s, const af_retry_opts *o, uint64_t *rng,
                   const void *wire, size_t len, uint64_t deadline_ns, af__http_response *resp,
                   af__http_health *hh);

#endif
