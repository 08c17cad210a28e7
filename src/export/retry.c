/*
 * Retry policy for the HTTP exporters (OTLP protocol/exporter.md "Retry", OTLP/HTTP
 * "Failures"): transient statuses and connection failures are retried with exponential
 * backoff and full jitter, Retry-After wins when the server sends it, and no wait ever runs
 * past the export deadline or survives a shutdown.
 */
#define AF_LOG_COMPONENT "export"

#include "export/retry.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "agentaflow/log.h"
#include "util/timeutil.h"

void af__retry_opts_default(af_retry_opts *o)
{
    o->max_attempts = 5;
    o->initial_backoff_ms = 1000;
    o->max_backoff_ms = 5000;
    o->multiplier = 1.5;
}

bool af__retry_status_retryable(long status)
{
    return status == 429 || status == 502 || status == 503 || status == 504;
}

void af__retry_seed(uint64_t *rng)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        seed = af_monotonic_ns() ^ (uint64_t)(uintptr_t)rng;
    *rng = seed ? seed : 0x9e3779b97f4a7c15u;
}

/* xorshift64*: jitter needs spread, not cryptographic strength. */
static uint64_t next_random(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1du;
}

uint64_t af__retry_backoff_ns(const af_retry_opts *o, uint32_t retry, uint64_t *rng)
{
    double cap_ms = o->initial_backoff_ms;
    double mult = o->multiplier >= 1.0 ? o->multiplier : 1.0;
    for (uint32_t i = 0; i < retry && cap_ms < o->max_backoff_ms; i++)
        cap_ms *= mult;
    if (cap_ms > o->max_backoff_ms)
        cap_ms = o->max_backoff_ms;
    uint64_t cap_ns = (uint64_t)(cap_ms * 1e6);
    if (cap_ns == 0)
        return 0;
    return next_random(rng) % (cap_ns + 1);
}

int af__retry_after_parse(const char *value, uint64_t now_wall_ns, uint64_t *delay_ns)
{
    if (!value || !*value)
        return -EINVAL;
    if (*value >= '0' && *value <= '9') {
        uint64_t secs = 0;
        const char *p = value;
        for (; *p >= '0' && *p <= '9'; p++) {
            /* A day is far beyond any export deadline; clamping avoids overflow. */
            if (secs < 86400)
                secs = secs * 10 + (uint64_t)(*p - '0');
        }
        if (*p != '\0')
            return -EINVAL;
        if (secs > 86400)
            secs = 86400;
        *delay_ns = secs * 1000000000u;
        return 0;
    }
    /* curl_getdate reads the three date formats RFC 9110 requires recipients to accept. */
    time_t t = curl_getdate(value, NULL);
    if (t == (time_t)-1)
        return -EINVAL;
    uint64_t at_ns = t > 0 ? (uint64_t)t * 1000000000u : 0;
    *delay_ns = at_ns > now_wall_ns ? at_ns - now_wall_ns : 0;
    return 0;
}

int af__stopper_init(af__stopper *s)
{
    s->stopped = false;
    s->busy = false;
    int err = af__cond_init_monotonic(&s->cv);
    if (err)
        return err;
    if ((err = pthread_mutex_init(&s->mu, NULL))) {
        pthread_cond_destroy(&s->cv);
        return -err;
    }
    return 0;
}

void af__stopper_destroy(af__stopper *s)
{
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

int af__stopper_begin(af__stopper *s)
{
    pthread_mutex_lock(&s->mu);
    int rc = s->stopped ? AF_ESHUTDOWN : 0;
    if (!rc)
        s->busy = true;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void af__stopper_end(af__stopper *s)
{
    pthread_mutex_lock(&s->mu);
    s->busy = false;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int af__stopper_sleep_until(af__stopper *s, uint64_t wake_ns)
{
    struct timespec ts = af__timespec_of_ns(wake_ns);
    pthread_mutex_lock(&s->mu);
    while (!s->stopped && af_monotonic_ns() < wake_ns)
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    int rc = s->stopped ? AF_ESHUTDOWN : 0;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

bool af__stopper_stop(af__stopper *s)
{
    pthread_mutex_lock(&s->mu);
    bool first = !s->stopped;
    s->stopped = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return first;
}

int af__stopper_wait_idle(af__stopper *s, uint64_t deadline_ns)
{
    struct timespec ts = af__timespec_of_ns(deadline_ns);
    pthread_mutex_lock(&s->mu);
    while (s->busy && af_monotonic_ns() < deadline_ns) {
        if (deadline_ns == UINT64_MAX)
            pthread_cond_wait(&s->cv, &s->mu);
        else
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    int rc = s->busy ? AF_ETIMEDOUT : 0;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void af__stopper_atfork(af__stopper *s, af_fork_phase phase)
{
    if (phase == AF_FORK_PREPARE) {
        pthread_mutex_lock(&s->mu);
    } else if (phase == AF_FORK_PARENT) {
        pthread_mutex_unlock(&s->mu);
    } else {
        bool stopped = s->stopped;
        /* With default attributes and CLOCK_MONOTONIC this only stores fields (it succeeded
         * once already for this object), so there is no failure to report. */
        (void)af__stopper_init(s);
        s->stopped = stopped;
    }
}

int af__retry_post(af__http_client *c, af__stopper *s, const af_retry_opts *o, uint64_t *rng,
                   const void *wire, size_t len, uint64_t deadline_ns, af__http_response *resp,
                   af__http_health *hh)
{
    uint32_t max_attempts = o->max_attempts ? o->max_attempts : 1;
    for (uint32_t attempt = 1;; attempt++) {
        int rc = af__http_client_post(c, wire, len, deadline_ns, resp);
        bool transient;
        if (rc == 0)
            transient = !resp->body_too_large && af__retry_status_retryable(resp->status);
        else
            transient = rc == AF_EEXPORT && resp->retryable;
        if (!transient || attempt >= max_attempts)
            return rc;

        uint64_t delay;
        if (rc != 0 || !resp->retry_after[0] ||
            af__retry_after_parse(resp->retry_after, af_now_ns(), &delay) != 0)
            delay = af__retry_backoff_ns(o, attempt - 1, rng);
        uint64_t now = af_monotonic_ns();
        if (deadline_ns != UINT64_MAX && (now >= deadline_ns || delay >= deadline_ns - now)) {
            /* Waiting would end past the deadline (or before the server's Retry-After if we
             * shortened it): report the last outcome now instead of sleeping uselessly. */
            af_log(AF_LOG_DEBUG, "HTTP export: retry %u would wait %llu ms, past the deadline",
                   attempt, (unsigned long long)(delay / 1000000u));
            return rc;
        }
        if (hh) {
            char why[sizeof(resp->error) + 32];
            if (rc != 0)
                snprintf(why, sizeof(why), "%s (retrying)", resp->error);
            else
                snprintf(why, sizeof(why), "HTTP %ld (retrying)", resp->status);
            af__http_health_retrying(hh, why);
        }
        if (af__stopper_sleep_until(s, now + delay) != 0) {
            snprintf(resp->error, sizeof(resp->error), "retry cancelled by shutdown");
            return AF_ESHUTDOWN;
        }
    }
}
