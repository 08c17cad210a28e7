/*
 * agentaflow/log.h - the library's single logging channel.
 *
 * The library never prints to stdout. Messages go to a handler (default: stderr, one line
 * each, "agentaflow: warn: ..."). Handlers may be called from any thread and must not call
 * back into the tracing API.
 */
#ifndef AGENTAFLOW_LOG_H
#define AGENTAFLOW_LOG_H

#include <stdarg.h>

#include "agentaflow/common.h"

#ifdef __cplusplus
extern "C" {
#endif
AF_API_BEGIN

typedef enum af_log_level {
    AF_LOG_DEBUG = 0,
    AF_LOG_INFO = 1,
    AF_LOG_WARN = 2,
    AF_LOG_ERROR = 3,
    AF_LOG_OFF = 4,
} af_log_level;

typedef void (*af_log_handler)(af_log_level level, const char *msg, void *user);

/* Messages below `level` are discarded (default AF_LOG_INFO; OTEL_LOG_LEVEL read by
 * af_log_level_from_env). */
void af_log_set_level(af_log_level level);
af_log_level af_log_get_level(void);
/* NULL restores the stderr handler. `user` is passed back verbatim. */
void af_log_set_handler(af_log_handler fn, void *user);
/* Applies OTEL_LOG_LEVEL (debug, info, warn, error, none) when set. */
void af_log_level_from_env(void);
/* "debug", "info", "warn", "error", "off". */
const char *af_log_level_name(af_log_level level);

void af_log(af_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void af_vlog(af_log_level level, const char *fmt, va_list ap);

AF_API_END
#ifdef __cplusplus
}
#endif
#endif
