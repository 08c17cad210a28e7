/* The single logging channel: a level filter (global and per component), a per-message
 * rate limit and a replaceable handler; the built-in writer formats text or JSON lines. */
#include "agentaflow/log.h"

#include <errno.h>
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
static _Atomic int log_format = AF_LOG_FORMAT_TEXT;
static _Atomic(FILE *) log_stream;
static _Atomic(af__log_context_fn) log_context;

/* Component levels. Setters are rare (start, reload) and take levels_mu; af_vlog_c first
 * compares with log_floor, the lowest level anything admits, so the common case of a
 * filtered debug message costs one atomic load and no lock. */
#define MAX_COMPONENTS 32
#define COMPONENT_LEN 32

typedef struct component_level {
    char name[COMPONENT_LEN];
    int level;
} component_level;

static pthread_mutex_t levels_mu = PTHREAD_MUTEX_INITIALIZER;
static component_level components[MAX_COMPONENTS];
static size_t n_components;
static _Atomic size_t n_components_pub; /* n_components, readable without the lock */
static _Atomic int log_floor = AF_LOG_INFO;

/* Under levels_mu. */
static void update_floor(void)
{
    int floor = atomic_load(&log_level);
    for (size_t i = 0; i < n_components; i++)
        if (components[i].level < floor)
            floor = components[i].level;
    atomic_store(&log_floor, floor);
    atomic_store(&n_components_pub, n_components);
}

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

const char *af_log_level_name(af_log_level level)
{
    if ((unsigned)level > AF_LOG_OFF)
        return "unknown";
    return level_names[level];
}

void af_log_set_level(af_log_level level)
{
    pthread_mutex_lock(&levels_mu);
    atomic_store(&log_level, (int)level);
    update_floor();
    pthread_mutex_unlock(&levels_mu);
}

int af_log_set_component_level(const char *component, af_log_level level)
{
    if (!component || !component[0] || strlen(component) >= COMPONENT_LEN ||
        (unsigned)level > AF_LOG_OFF)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&levels_mu);
    size_t i = 0;
    while (i < n_components && strcmp(components[i].name, component) != 0)
        i++;
    if (i == n_components) {
        if (n_components == MAX_COMPONENTS) {
            rc = -ENOSPC;
        } else {
            strcpy(components[i].name, component); /* length checked above */
            n_components++;
        }
    }
    if (rc == 0) {
        components[i].level = (int)level;
        update_floor();
    }
    pthread_mutex_unlock(&levels_mu);
    return rc;
}

void af_log_clear_component_levels(void)
{
    pthread_mutex_lock(&levels_mu);
    n_components = 0;
    update_floor();
    pthread_mutex_unlock(&levels_mu);
}

af_log_level af_log_component_level(const char *component)
{
    int level = atomic_load(&log_level);
    if (!component || atomic_load(&n_components_pub) == 0)
        return (af_log_level)level;
    pthread_mutex_lock(&levels_mu);
    for (size_t i = 0; i < n_components; i++)
        if (strcmp(components[i].name, component) == 0)
            level = components[i].level;
    pthread_mutex_unlock(&levels_mu);
    return (af_log_level)level;
}

void af_log_set_format(af_log_format f)
{
    atomic_store(&log_format, (int)f);
}

af_log_format af_log_get_format(void)
{
    return (af_log_format)atomic_load(&log_format);
}

void af__log_set_stream(FILE *f)
{
    atomic_store(&log_stream, f);
}

void af__log_set_context_hook(af__log_context_fn fn)
{
    atomic_store(&log_context, fn);
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

int af_log_level_parse(const char *name, af_log_level *out)
{
    static const struct {
        const char *name;
        af_log_level level;
    } map[] = {{"debug", AF_LOG_DEBUG}, {"info", AF_LOG_INFO}, {"warn", AF_LOG_WARN},
               {"error", AF_LOG_ERROR}, {"none", AF_LOG_OFF},  {"off", AF_LOG_OFF}};
    for (size_t i = 0; name && i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcasecmp(name, map[i].name) == 0) {
            *out = map[i].level;
            return 0;
        }
    }
    return -EINVAL;
}

void af_log_level_from_env(void)
{
    const char *v = af__getenv("OTEL_LOG_LEVEL");
    if (!v)
        return;
    af_log_level level;
    if (af_log_level_parse(v, &level) == 0) {
        af_log_set_level(level);
        return;
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

/* ---------------------------------------------------------------------------------------- */
/* Writing.                                                                                  */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when it is not one: no overlong
 * forms, no surrogates, nothing above U+10FFFF (RFC 3629). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* bounds of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

size_t af__log_json_escape(const char *s, size_t len, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    if (!cap)
        return 0;
    for (size_t i = 0; i < len;) {
        char esc[8];
        const char *piece = esc;
        size_t plen, adv = 1;
        unsigned c = p[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            plen = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            plen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            plen = 6;
        } else if (c < 0x80) {
            piece = (const char *)p + i;
            plen = 1;
        } else if ((adv = utf8_len(p + i, len - i)) != 0) {
            piece = (const char *)p + i;
            plen = adv;
        } else {
            piece = "\\ufffd";
            plen = 6;
            adv = 1;
        }
        if (o + plen >= cap)
            break;
        memcpy(out + o, piece, plen);
        o += plen;
        i += adv;
    }
    out[o] = '\0';
    return o;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static void write_json(FILE *f, af_log_level level, const char *component, const char *msg)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t wl = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + wl, sizeof when - wl, ".%03ldZ", ts.tv_nsec / 1000000);
    /* Each message byte can grow to 6 ("\u0001"); the message is at most 1023 bytes. */
    char esc_msg[6 * 1024 + 1], esc_comp[6 * COMPONENT_LEN + 1];
    af__log_json_escape(msg, strlen(msg), esc_msg, sizeof esc_msg);
    char ids[96] = "";
    uint8_t tid[16], sid[8];
    af__log_context_fn ctx = atomic_load(&log_context);
    if (ctx && ctx(tid, sid)) {
        char th[33], sh[17];
        hex(tid, 16, th);
        hex(sid, 8, sh);
        snprintf(ids, sizeof ids, ",\"trace_id\":\"%s\",\"span_id\":\"%s\"", th, sh);
    }
    char comp[sizeof esc_comp + 16] = "";
    if (component) {
        af__log_json_escape(component, strlen(component), esc_comp, sizeof esc_comp);
        snprintf(comp, sizeof comp, ",\"component\":\"%s\"", esc_comp);
    }
    /* One fprintf per line: stdio locks the stream per call, so lines never interleave. */
    fprintf(f, "{\"time\":\"%s\",\"level\":\"%s\"%s,\"message\":\"%s\"%s}\n", when,
            af_log_level_name(level), comp, esc_msg, ids);
}

static void emit(af_log_level level, const char *component, const char *msg)
{
    af_log_handler fn = atomic_load(&log_handler);
    if (fn) {
        fn(level, msg, atomic_load(&log_user));
        return;
    }
    FILE *f = atomic_load(&log_stream);
    if (!f)
        f = stderr;
    if (atomic_load(&log_format) == AF_LOG_FORMAT_JSON)
        write_json(f, level, component, msg);
    else if (component)
        fprintf(f, "agentaflow: %s: %s: %s\n", af_log_level_name(level), component, msg);
    else
        fprintf(f, "agentaflow: %s: %s\n", af_log_level_name(level), msg);
}

void af_vlog_c(af_log_level level, const char *component, const char *fmt, va_list ap)
{
    if ((int)level < atomic_load(&log_floor) || level >= AF_LOG_OFF ||
        level < af_log_component_level(component))
        return;
    uint32_t suppressed;
    bool ok = rate_admit(fmt, &suppressed);
    char msg[1024];
    if (suppressed) {
        snprintf(msg, sizeof(msg), "suppressed %u similar messages (\"%.80s\")", suppressed, fmt);
        emit(level, component, msg);
    }
    if (!ok)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    emit(level, component, msg);
}

void af_vlog(af_log_level level, const char *fmt, va_list ap)
{
    af_vlog_c(level, NULL, fmt, ap);
}

void af_log_c(af_log_level level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    af_vlog_c(level, component, fmt, ap);
    va_end(ap);
}

void af_log(af_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    af_vlog(level, fmt, ap);
    va_end(ap);
}
