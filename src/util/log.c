/* The single logging channel: a level filter and a replaceable handler. */
#include "agentaflow/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "util/env.h"

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

void af_vlog(af_log_level level, const char *fmt, va_list ap)
{
    if ((int)level < atomic_load(&log_level) || level >= AF_LOG_OFF)
        return;
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    af_log_handler fn = atomic_load(&log_handler);
    if (fn) {
        fn(level, msg, atomic_load(&log_user));
        return;
    }
    fprintf(stderr, "agentaflow: %s: %s\n", af_log_level_name(level), msg);
}

void af_log(af_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    af_vlog(level, fmt, ap);
    va_end(ap);
}
