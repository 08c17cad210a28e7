/*
 * agentaflow/log.h - the library's single logging channel.
 *
 * The library never prints to stdout. Messages go to a handler (default: stderr, one line
 * each, "agentaflow: warn: http: ..." or, with AF_LOG_FORMAT_JSON, one JSON object). Handlers
 * may be called from any thread and must not call back into the tracing API.
 *
 * Components: a source file that defines AF_LOG_COMPONENT ("http", "gpu", ...) before
 * including this header has its af_log calls tagged with it, which selects the component's
 * level (af_log_set_component_level) and fills the "component" field of the line.
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

/* Parses "debug", "info", "warn", "error", "off" (or "none", as OTEL_LOG_LEVEL spells it),
 * ignoring case. 0 or -EINVAL. */
int af_log_level_parse(const char *name, af_log_level *out);

/*
 * A component's own level, overriding af_log_set_level for messages tagged with it.
 * Components are short names (at most 31 bytes); at most 32 of them have a level.
 * Returns 0, -EINVAL or -ENOSPC.
 */
int af_log_set_component_level(const char *component, af_log_level level);
/* Forgets every component level (they then follow af_log_set_level again). */
void af_log_clear_component_levels(void);
/* The level that applies to a component (NULL: untagged messages). */
af_log_level af_log_component_level(const char *component);

typedef enum af_log_format {
    AF_LOG_FORMAT_TEXT = 0, /* agentaflow: <level>: <component>: <message> */
    /* {"time":"2026-01-02T03:04:05.678Z","level":"warn","component":"http","message":"...",
     *  "trace_id":"<32 hex>","span_id":"<16 hex>"}: the ids only when the logging thread has
     * a current span (af_context_attach). Time is UTC with milliseconds. */
    AF_LOG_FORMAT_JSON = 1,
} af_log_format;

/* How the built-in stderr writer formats lines; a handler set with af_log_set_handler
 * receives the bare message either way. */
void af_log_set_format(af_log_format f);
af_log_format af_log_get_format(void);

void af_log(af_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void af_vlog(af_log_level level, const char *fmt, va_list ap);
/* The same for a component (NULL: none). */
void af_log_c(af_log_level level, const char *component, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void af_vlog_c(af_log_level level, const char *component, const char *fmt, va_list ap);

#ifdef AF_LOG_COMPONENT
#define af_log(level, ...) af_log_c((level), AF_LOG_COMPONENT, __VA_ARGS__)
#endif

AF_API_END
#ifdef __cplusplus
}
#endif
#endif
