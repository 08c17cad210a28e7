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

#ifdef __cplusplus
extern "C" {
#endif

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

/* Compound-literal constructors for the AF_ATTRS idiom, e.g.
 *   af_span_set_attrs(span, AF_ATTRS(AF_STR("gpu.id", id), AF_INT("workload.priority", 3)));
 */
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

/* Wall-clock time in nanoseconds since the Unix epoch (CLOCK_REALTIME). */
uint64_t af_now_ns(void);

#ifdef __cplusplus
}
#endif
#endif
