/*
 * agentaflow/propagation.h - W3C Trace Context, B3 and W3C Baggage over any header carrier.
 *
 * Extract never fails loudly: invalid input leaves the context exactly as it was. Inject
 * writes lower-case header names. Everything here is thread-safe and allocation-free except
 * baggage, which owns its entries.
 */
#ifndef AGENTAFLOW_PROPAGATION_H
#define AGENTAFLOW_PROPAGATION_H

#include "agentaflow/trace.h"

#ifdef __cplusplus
extern "C" {
#endif
AF_API_BEGIN

/*
 * A header carrier. `get_all` stores up to `cap` values of the fields named `key`
 * (case-insensitive) in `out` (borrowed from the carrier) and returns how many such fields
 * exist (which may exceed cap). `set` replaces the field `key` with `value`; returns 0 or a
 * negative code. Either hook may be NULL when only the other direction is used.
 */
typedef struct af_carrier {
    size_t (*get_all)(void *self, const char *key, af_str *out, size_t cap);
    int (*set)(void *self, const char *key, const char *value);
    void *self;
} af_carrier;

/* A simple owned list of header fields with a ready-made carrier, for tests and clients. */
typedef struct af_headers af_headers;
int af_headers_new(af_headers **out);
void af_headers_free(af_headers *h);
/* Appends a field (copies both). Duplicates are kept, as HTTP allows. */
int af_headers_add(af_headers *h, const char *name, const char *value);
/* Replaces every field named `name` by one with `value`. */
int af_headers_set(af_headers *h, const char *name, const char *value);
/* First value of `name` (case-insensitive), or NULL. Borrowed until the next change. */
const char *af_headers_get(const af_headers *h, const char *name);
size_t af_headers_count(const af_headers *h);
/* Field i; borrowed. */
void af_headers_at(const af_headers *h, size_t i, const char **name, const char **value);
af_carrier af_headers_carrier(af_headers *h);

/* ---------------------------------------------------------------------------------------- */
/* W3C Trace Context.                                                                        */

/*
 * Parses a traceparent value with every rule of the Level 2 spec: lower-case hex only,
 * version ff rejected, future versions accepted by their prefix, all-zero ids rejected,
 * trailing data rejected for version 00. Returns 0 and fills ids and flags (is_remote set,
 * trace state cleared) or AF_EPARSE leaving *out untouched.
 */
int af_traceparent_parse(const char *value, size_t len, af_span_context *out);
/* Writes "00-<trace>-<span>-<flags>" (55 chars + NUL) into out[56]. Only the sampled and
 * random flags are emitted. */
void af_traceparent_format(const af_span_context *sc, char out[56]);

/*
 * Validates a tracestate value (list-members with W3C Level 2 keys and values, at most 32
 * members; empty members allowed and removed; a key repeated later in the list is dropped,
 * the first entry kept) and stores it normalized into sc->trace_state,
 * truncating to AF_TRACE_STATE_MAX by the spec's order (entries longer than 128 characters
 * first, then from the end). Returns 0, or AF_EPARSE leaving sc untouched.
 */
int af_tracestate_set(af_span_context *sc, const char *value, size_t len);
/* Looks up a key in sc->trace_state; copies its value into out (NUL-terminated). Returns the
 * value length, or -1 when absent. */
int af_tracestate_get(const af_span_context *sc, const char *key, char *out, size_t out_len);
/* Inserts or updates key=value at the front (the spec's mutation rule). 0 or AF_EPARSE.
 * -ENOSPC when the entry alone exceeds AF_TRACE_STATE_MAX. On failure sc is unchanged. */
int af_tracestate_put(af_span_context *sc, const char *key, const char *value);
/* Removes key. 0, or AF_ENOTFOUND when absent. */
int af_tracestate_delete(af_span_context *sc, const char *key);

/* Extracts traceparent (+ tracestate) from the carrier into *sc. Returns 1 when a valid
 * context was extracted, 0 when *sc was left as it was. Duplicate traceparent fields are
 * invalid; several tracestate fields are joined with ','. */
int af_tracecontext_extract(const af_carrier *c, af_span_context *sc);
/* Injects traceparent and (when non-empty) tracestate. Does nothing for an invalid context. */
void af_tracecontext_inject(const af_carrier *c, const af_span_context *sc);

/* ---------------------------------------------------------------------------------------- */
/* B3 (openzipkin/b3-propagation), single and multi header.                                  */

/*
 * Extracts a B3 context: the single `b3` header ({TraceId}-{SpanId}[-{SamplingState}
 * [-{ParentSpanId}]]) first, then X-B3-TraceId / X-B3-SpanId / X-B3-Sampled / X-B3-Flags /
 * X-B3-ParentSpanId. 64-bit trace ids are left-padded to 128 bits; sampling state 1 or
 * debug (d, X-B3-Flags: 1) means sampled, 0 or none unsampled. The parent span id is
 * validated, not used. Returns 1 when a context was extracted (is_remote set, trace state
 * cleared), 0 when *sc was left as it was (including the deny-only `b3: 0`, which has no
 * ids to continue).
 */
int af_b3_extract(const af_carrier *c, af_span_context *sc);
/* Injects `b3: {trace}-{span}-{1|0}` (32-digit trace id). Nothing for an invalid context. */
void af_b3_inject(const af_carrier *c, const af_span_context *sc);
/* Injects x-b3-traceid, x-b3-spanid and x-b3-sampled. Nothing for an invalid context. */
void af_b3_multi_inject(const af_carrier *c, const af_span_context *sc);

/* ---------------------------------------------------------------------------------------- */
/* W3C Baggage.                                                                              */

#define AF_BAGGAGE_MAX_MEMBERS 64
#define AF_BAGGAGE_MAX_BYTES 8192

/* Baggage: an owned, ordered set of (key, value, metadata) entries; keys are unique. */
int af_baggage_new(af_baggage **out);
void af_baggage_free(af_baggage *b);
int af_baggage_copy(const af_baggage *b, af_baggage **out);
/* Sets (copies) an entry; an existing key is replaced in place (keeps its position).
 * metadata may be NULL. -EINVAL when key is not an RFC 7230 token or metadata is not a
 * valid ';'-separated property list. */
int af_baggage_set(af_baggage *b, const char *key, const char *value, const char *metadata);
/* Value for key (borrowed until the next change), or NULL. */
const char *af_baggage_get(const af_baggage *b, const char *key);
/* 0, or AF_ENOTFOUND when absent. */
int af_baggage_remove(af_baggage *b, const char *key);
size_t af_baggage_count(const af_baggage *b);
/* Entry i (borrowed). metadata is "" when none. */
void af_baggage_at(const af_baggage *b, size_t i, const char **key, const char **value,
                   const char **metadata);

/*
 * Parses a baggage header value (percent-decoding values; invalid UTF-8 becomes U+FFFD) and
 * merges its members into *b. Members beyond 64 or beyond 8192 bytes in total are dropped
 * whole; a malformed member is skipped. Returns the number of members added.
 */
int af_baggage_parse(af_baggage *b, const char *value, size_t len);
/* Formats as a header value (percent-encoding what W3C requires). Writes at most out_len
 * bytes including the NUL; returns the length it needed (like snprintf). Members are only
 * written whole, and never past 64 members / 8192 bytes. */
size_t af_baggage_format(const af_baggage *b, char *out, size_t out_len);

/* Extracts every baggage field into *b (created when *b is NULL and something was found).
 * Returns the number of members added. */
int af_baggage_extract(const af_carrier *c, af_baggage **b);
void af_baggage_inject(const af_carrier *c, const af_baggage *b);

/* ---------------------------------------------------------------------------------------- */
/* Composite propagation (OTEL_PROPAGATORS: "tracecontext,baggage" by default).               */

#define AF_PROPAGATE_TRACECONTEXT 0x1u
#define AF_PROPAGATE_BAGGAGE 0x2u
#define AF_PROPAGATE_B3 0x4u       /* "b3": the single b3 header */
#define AF_PROPAGATE_B3_MULTI 0x8u /* "b3multi": the X-B3-* headers */
#define AF_PROPAGATE_DEFAULT (AF_PROPAGATE_TRACECONTEXT | AF_PROPAGATE_BAGGAGE)

/* Reads OTEL_PROPAGATORS: a comma list of tracecontext, baggage, b3, b3multi, none (others
 * are logged as unsupported and skipped). Unset or empty = AF_PROPAGATE_DEFAULT. */
unsigned af_propagators_from_env(void);
/*
 * Extract into sc and (optionally) *baggage with the chosen propagators. Returns 1 when a
 * span context was extracted. Either B3 flag extracts both B3 formats (the OpenTelemetry
 * rule). The flags carry no order: when a request has both a valid traceparent and B3
 * headers, traceparent wins.
 */
int af_propagate_extract(unsigned which, const af_carrier *c, af_span_context *sc,
                         af_baggage **baggage);
/* Injects every chosen format (traceparent/tracestate, b3, X-B3-*, baggage). */
void af_propagate_inject(unsigned which, const af_carrier *c, const af_span_context *sc,
                         const af_baggage *baggage);

AF_API_END
#ifdef __cplusplus
}
#endif
#endif
