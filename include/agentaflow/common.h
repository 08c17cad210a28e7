/*
 * agentaflow/common.h - error codes, attribute values and small shared types.
 *
 * Every public function that can fail returns int: 0 on success, a negative errno value
 * (-EINVAL, -ENOMEM, ...) or one of the AF_E* codes below. af_strerror() names any of them.
 */
#ifndef AGENTAFLOW_COMMON_H
#define AGENTAFLOW_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Export control. The libraries are compiled with -fvisibility=hidden; every public header
 * brackets its declarations with AF_API_BEGIN / AF_API_END, which give exactly those
 * declarations default visibility. So the exported ABI is what include/agentaflow declares,
 * with no per-function annotation, and internal af__ functions stay hidden (a linker version
 * script additionally keeps the dynamic symbol table to af_ names).
 */
#if defined(__GNUC__)
#define AF_API_BEGIN _Pragma("GCC visibility push(default)")
#define AF_API_END _Pragma("GCC visibility pop")
#else
#define AF_API_BEGIN
#define AF_API_END
#endif

#ifdef __cplusplus
extern "C" {
#endif
AF_API_BEGIN

#define AF_VERSION_MAJOR 0
#define AF_VERSION_MINOR 1
#define AF_VERSION_PATCH 0
#define AF_VERSION_STRING "0.1.0"

/* Project-specific error codes; all below -4095 so they never collide with errno values. */
enum {
    AF_ETIMEDOUT = -5001, /* an operation did not finish within its deadline */
    AF_ESHUTDOWN = -5002, /* the object was shut down; the call had no effect */
    AF_EEXPORT = -5003,   /* an exporter reported failure */
    AF_EPARSE = -5004,    /* malformed input */
    AF_EFULL = -5005,     /* a bounded queue was full; the item was dropped */
    AF_ENOTFOUND = -5006, /* a named thing does not exist */
};

/* Static English text for any error code this library returns (never NULL). */
const char *af_strerror(int err);

/* Attribute value types (the OpenTelemetry AnyValue primitives and their homogeneous arrays). */
typedef enum af_value_type {
    AF_VAL_STRING = 0,
    AF_VAL_BOOL,
    AF_VAL_INT,
    AF_VAL_DOUBLE,
    AF_VAL_STRING_ARRAY,
    AF_VAL_BOOL_ARRAY,
    AF_VAL_INT_ARRAY,
    AF_VAL_DOUBLE_ARRAY,
} af_value_type;

/* A borrowed string with an explicit length; not necessarily NUL-terminated on input. */
typedef struct af_str {
    const char *ptr;
    size_t len;
} af_str;

/*
 * A typed attribute. On input every pointer is borrowed for the duration of the call only:
 * the library copies what it keeps. On output (exporters reading a span) every string is
 * NUL-terminated and lives as long as the span data it belongs to.
 *
 * A string whose `len` is AF_LEN_NUL is measured with strlen(); arrays of strings are arrays of
 * NUL-terminated `const char *`.
 */
#define AF_LEN_NUL ((size_t)-1)

typedef struct af_attr {
    const char *key;
    af_value_type type;
    union {
        af_str s;
        bool b;
        int64_t i;
        double d;
        struct {
            const void
                *items; /* const char *const[], const bool[], const int64_t[], const double[] */
            size_t count;
        } arr;
    } v;
} af_attr;

/*
 * Attribute constructors for the AF_ATTRS idiom, e.g.
 *   af_span_set_attrs(span, AF_ATTRS(AF_STR("gpu.id", id), AF_INT("workload.priority", 3)));
 * The same spelling works in C and C++ (C++11 and later; see the C++ definitions below).
 */
#ifndef __cplusplus
#define AF_STR(k, val) ((af_attr){.key = (k), .type = AF_VAL_STRING, .v.s = {(val), AF_LEN_NUL}})
#define AF_STRN(k, val, n) ((af_attr){.key = (k), .type = AF_VAL_STRING, .v.s = {(val), (n)}})
#define AF_BOOL(k, val) ((af_attr){.key = (k), .type = AF_VAL_BOOL, .v.b = (val)})
#define AF_INT(k, val) ((af_attr){.key = (k), .type = AF_VAL_INT, .v.i = (int64_t)(val)})
#define AF_DOUBLE(k, val) ((af_attr){.key = (k), .type = AF_VAL_DOUBLE, .v.d = (double)(val)})
#define AF_STR_ARRAY(k, items_, n)                                                                 \
    ((af_attr){.key = (k), .type = AF_VAL_STRING_ARRAY, .v.arr = {(items_), (n)}})
#define AF_BOOL_ARRAY(k, items_, n)                                                                \
    ((af_attr){.key = (k), .type = AF_VAL_BOOL_ARRAY, .v.arr = {(items_), (n)}})
#define AF_INT_ARRAY(k, items_, n)                                                                 \
    ((af_attr){.key = (k), .type = AF_VAL_INT_ARRAY, .v.arr = {(items_), (n)}})
#define AF_DOUBLE_ARRAY(k, items_, n)                                                              \
    ((af_attr){.key = (k), .type = AF_VAL_DOUBLE_ARRAY, .v.arr = {(items_), (n)}})

/* Expands to two arguments: a pointer to a temporary attribute array and its length. */
#define AF_ATTRS(...)                                                                              \
    ((const af_attr[]){__VA_ARGS__}), (sizeof((af_attr[]){__VA_ARGS__}) / sizeof(af_attr))
#else
/* C++ has no compound literals and no nested designators (.v.s), so the constructors are
 * functions returning the value; AF_ATTRS is defined after the extern "C" block. Unlike the
 * C macros these cannot have their address taken (&AF_BOOL(..)): name a variable instead. */
static inline af_attr af__attr_str(const char *k, const char *v, size_t n)
{
    af_attr a;
    a.key = k;
    a.type = AF_VAL_STRING;
    a.v.s.ptr = v;
    a.v.s.len = n;
    return a;
}
static inline af_attr af__attr_bool(const char *k, bool v)
{
    af_attr a;
    a.key = k;
    a.type = AF_VAL_BOOL;
    a.v.b = v;
    return a;
}
static inline af_attr af__attr_int(const char *k, int64_t v)
{
    af_attr a;
    a.key = k;
    a.type = AF_VAL_INT;
    a.v.i = v;
    return a;
}
static inline af_attr af__attr_double(const char *k, double v)
{
    af_attr a;
    a.key = k;
    a.type = AF_VAL_DOUBLE;
    a.v.d = v;
    return a;
}
static inline af_attr af__attr_array(const char *k, af_value_type t, const void *items, size_t n)
{
    af_attr a;
    a.key = k;
    a.type = t;
    a.v.arr.items = items;
    a.v.arr.count = n;
    return a;
}
#define AF_STR(k, val) af__attr_str((k), (val), AF_LEN_NUL)
#define AF_STRN(k, val, n) af__attr_str((k), (val), (n))
#define AF_BOOL(k, val) af__attr_bool((k), (val))
#define AF_INT(k, val) af__attr_int((k), (int64_t)(val))
#define AF_DOUBLE(k, val) af__attr_double((k), (double)(val))
#define AF_STR_ARRAY(k, items_, n) af__attr_array((k), AF_VAL_STRING_ARRAY, (items_), (n))
#define AF_BOOL_ARRAY(k, items_, n) af__attr_array((k), AF_VAL_BOOL_ARRAY, (items_), (n))
#define AF_INT_ARRAY(k, items_, n) af__attr_array((k), AF_VAL_INT_ARRAY, (items_), (n))
#define AF_DOUBLE_ARRAY(k, items_, n) af__attr_array((k), AF_VAL_DOUBLE_ARRAY, (items_), (n))
#endif

/* Wall-clock time in nanoseconds since the Unix epoch (CLOCK_REALTIME). */
uint64_t af_now_ns(void);
/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC), for deadlines. */
uint64_t af_monotonic_ns(void);

/* What af_now_ns (and every span timestamp) reads right now: "tsc" (the calibrated TSC,
 * within 200 us of CLOCK_REALTIME) or "clock_gettime". The TSC path needs an invariant TSC and
 * a kernel that keeps time from it (clocksource tsc), or AGENTAFLOW_CLOCK=tsc;
 * AGENTAFLOW_CLOCK=clock_gettime turns it off. Until the first calibration (50 ms after the
 * first read) it answers "clock_gettime". */
const char *af_clock_source(void);

AF_API_END
#ifdef __cplusplus
}

#include <initializer_list>

/* Declared only: sizeof of a call gives the argument count without evaluating anything. */
template <typename... T> char (&af__attr_count(const T &...))[sizeof...(T)];

/* Expands to two arguments: a pointer to a temporary attribute array and its length. The
 * initializer_list's array lives until the end of the full expression, so for the whole call
 * it is passed to (as the C compound literal does); the attributes are evaluated once. */
#define AF_ATTRS(...)                                                                              \
    (::std::initializer_list<af_attr>{__VA_ARGS__}).begin(), sizeof(af__attr_count(__VA_ARGS__))
#endif
#endif
