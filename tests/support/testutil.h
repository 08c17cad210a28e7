/*
 * testutil.h - shared helpers for the cmocka unit tests.
 */
#ifndef AF_TESTUTIL_H
#define AF_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <sys/types.h>

#include "agentaflow/export.h"
#include "agentaflow/propagation.h"
#include "agentaflow/trace_sdk.h"

/* Debian's cmocka 1.1.5 assert_float_equal compares as float (about 7 significant digits),
 * so a 1e-12 tolerance there tests about 1e-7. This compares doubles; NaN never passes. */
#define assert_double_near(actual, expected, tolerance)                                            \
    do {                                                                                           \
        double af_a_ = (actual), af_e_ = (expected), af_t_ = (tolerance);                          \
        if (!(fabs(af_a_ - af_e_) <= af_t_))                                                       \
            fail_msg("%s = %.17g, want %.17g within %g", #actual, af_a_, af_e_, af_t_);            \
    } while (0)

/* A provider (AlwaysOn sampler, raw resource service.name=test) whose spans land in a memory
 * exporter through a simple processor, so they are readable as soon as they end. */
typedef struct af_test_env {
    af_tracer_provider *provider;
    af_tracer *tracer;
    af_memory_exporter *mem;
} af_test_env;

void af_test_env_init(af_test_env *env);
void af_test_env_free(af_test_env *env);
/* Copies of the spans exported so far (oldest first); release with af_test_spans_free. */
size_t af_test_spans(af_test_env *env, af_span_copy **out, size_t cap);
void af_test_spans_free(af_span_copy **spans, size_t n);
/* The first exported span with this name, or NULL (a borrowed view into `spans`). */
const af_span_data *af_test_find_span(af_span_copy **spans, size_t n, const char *name);
/* The attribute `key` of a span, or NULL. */
const af_attr *af_test_find_attr(const af_attr *attrs, size_t n, const char *key);

/* A header carrier filled with n/2 name/value pairs (kv alternates name, value); the caller
 * frees it with af_headers_free. AF_TEST_HEADERS("name", "value", ...) counts them. */
af_headers *af_test_headers(const char *const *kv, size_t n);
#define AF_TEST_HEADERS(...)                                                                       \
    af_test_headers((const char *const[]){__VA_ARGS__},                                            \
                    sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* Captures af_log output: af_test_log_capture_begin installs a handler that appends every
 * message (one per line) to an internal buffer; _text returns it; _end restores stderr. */
void af_test_log_capture_begin(void);
const char *af_test_log_capture_text(void);
void af_test_log_capture_end(void);

/* Fork tests: a forked child reports one byte through a pipe (af_test_child_report, which
 * _exits); the parent waits for it with a deadline, kills a child that missed it (a hung
 * child fails the test instead of hanging it), reaps it and returns the byte: 'y' passed,
 * 'n' failed, 't' timed out, 'e' the pipe closed without a verdict. */
char af_test_child_verdict(pid_t pid, int fd, int timeout_ms);
_Noreturn void af_test_child_report(int fd, bool ok);

#endif
