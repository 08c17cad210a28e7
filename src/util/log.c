/* The single logging channel: a level filter, a per-message rate limit and a replaceable
 * handler. */
#include "agentaflow/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/env.h"
#include "util/log_int.h"

static _Atomic int log_level = AF_LOG_INFO;
static _Atomic(af_log_handler) log_handler;
static void *_Atomic log_user;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

const char *af_log_level_name(af_log_level level)
{
    if ((unsigned)level > AF_LOG_OFF)
        return "unknown";
    return level_names[level];
}

void af_log_set_level(af_log_level level)
{
    atomic_store(&log_level, (int)level);
}

af_log_level af_log_get_level(void)
{
    return (af_log_level)atomic_load(&log_level);
}

void af_log_set_handler(af_log_handler fn, void *user)
{
    atomic_store(&log_user, user);
    atomic_store(&log_handler, fn);
}

void af_log_level_from_env(void)
{
    const char *v = af__getenv("OTEL_LOG_LEVEL");
    if (!v)
        return;
    static const struct {
        const char *name;
        af_log_level level;
    } map[] = {{"debug", AF_LOG_DEBUG}, {"info", AF_LOG_INFO}, {"warn", AF_LOG_WARN},
               {"error", AF_LOG_ERROR}, {"none", AF_LOG_OFF},  {"off", AF_LOG_OFF}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcasecmp(v, map[i].name) == 0) {
            af_log_set_level(map[i].level);
            return;
        }
    }
    af_log(AF_LOG_WARN,
           "OTEL_LOG_LEVEL: unknown level \"%s\" (expected debug, info, warn, error "
           "or none); keeping %s",
           v, af_log_level_name(af_log_get_level()));
}

/* ---------------------------------------------------------------------------------------- */
/* Rate limit: a client that can make the daemon log (a malformed request, a failing export)
 * must not be able to flood the log. Each call site is known by its format string's address;
 * a site gets at most rate_max lines per window, and the first line after its window rolls
 * over is preceded by one "suppressed K similar messages" line. The table is process-wide (the
 * log channel is); a site that finds no slot is not limited rather than evicting a busy one. */

#define RATE_SLOTS 64
#define RATE_PROBE 4

typedef struct rate_slot {
    const char *fmt;
    uint64_t window_start;
    uint32_t count;
    uint32_t suppressed;
} rate_slot;

static pthread_mutex_t rate_mu = PTHREAD_MUTEX_INITIALIZER;
static rate_slot rate_slots[RATE_SLOTS];
static unsigned rate_max = AF__LOG_RATE_MAX;
static uint64_t rate_window_ns = AF__LOG_RATE_WINDOW_NS;

void af__log_rate_limit(unsigned max_per_window, uint64_t window_ns)
{
    pthread_mutex_lock(&rate_mu);
    rate_max = max_per_window;
    rate_window_ns = window_ns;
    memset(rate_slots, 0, sizeof(rate_slots));
    pthread_mutex_unlock(&rate_mu);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Whether this call of fmt may log; *suppressed gets the count to report first (0: none). */
static bool rate_admit(const char *fmt, uint32_t *suppressed)
{
    *suppressed = 0;
    uint64_t now = mono_ns();
    size_t h = ((uintptr_t)fmt >> 3) % RATE_SLOTS;
    bool ok = true;
    pthread_mutex_lock(&rate_mu);
    if (rate_max) {
        rate_slot *s = NULL;
        for (size_t i = 0; i < RATE_PROBE && !s; i++) {
            rate_slot *c = &rate_slots[(h + i) % RATE_SLOTS];
            /* Its own slot, a free one, or one whose window is over and that owes no report. */
            if (c->fmt == fmt || !c->fmt ||
                (now - c->window_start >= rate_window_ns && c->suppressed == 0))
                s = c;
        }
        if (s) {
            if (s->fmt != fmt || now - s->window_start >= rate_window_ns) {
                *suppressed = s->fmt == fmt ? s->suppressed : 0;
                s->fmt = fmt;
                s->window_start = now;
                s->count = 0;
                s->suppressed = 0;
            }
            if (s->count < rate_max) {
                s->count++;
            } else {
                s->suppressed++;
                ok = false;
            }
        }
    }
    pthread_mutex_unlock(&rate_mu);
    return ok;
}

static void emit(af_log_level level, const char *msg)
{
    af_log_handler fn = atomic_load(&log_handler);
    if (fn) {
        fn(level, msg, atomic_load(&log_user));
        return;
    }
    fprintf(stderr, "agentaflow: %s: %s\n", af_log_level_name(level), msg);
}

void af_vlog(af_log_level level, const char *fmt, va_list ap)
{
    if ((int)level < atomic_load(&log_level) || level >= AF_LOG_OFF)
        return;
    uint32_t suppressed;
    bool ok = rate_admit(fmt, &suppressed);
    char msg[1024];
    if (suppressed) {
        snprintf(msg, sizeof(msg), "suppressed %u similar messages (\"%.80s\")", suppressed, fmt);
        emit(level, msg);
    }
    if (!ok)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    emit(level, msg);
}

void af_log(af_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    af_vlog(level, fmt, ap);
    va_end(ap);
}
