/*
 * libFuzzer target for af_b3_extract. The input is up to six '\n'-separated header values,
 * in order: b3, X-B3-TraceId, X-B3-SpanId, X-B3-Sampled, X-B3-Flags, X-B3-ParentSpanId (an
 * empty line is an empty header, a missing one an absent header; values may hold any byte).
 * Invariants: a failed extract leaves the context untouched; a successful one gives a valid
 * remote context with only the sampled flag possible and no trace state; injecting it in
 * either format and extracting that gives the same context back.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agentaflow/propagation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {"b3",           "x-b3-traceid", "x-b3-spanid",
                                    "x-b3-sampled", "x-b3-flags",   "x-b3-parentspanid"};
#define N_NAMES (sizeof(names) / sizeof(names[0]))

/* Header values by name index; `set` stores NUL-terminated copies for the round trip. */
typedef struct fields {
    af_str v[N_NAMES];
    char own[N_NAMES][64];
} fields;

static int index_of(const char *key)
{
    for (size_t i = 0; i < N_NAMES; i++)
        if (strcmp(key, names[i]) == 0)
            return (int)i;
    return -1;
}

static size_t get_all(void *self, const char *key, af_str *out, size_t cap)
{
    fields *f = self;
    int i = index_of(key);
    if (i < 0 || !f->v[i].ptr)
        return 0;
    if (cap)
        out[0] = f->v[i];
    return 1;
}

static int set(void *self, const char *key, const char *value)
{
    fields *f = self;
    int i = index_of(key);
    size_t n = strlen(value);
    if (i < 0 || n >= sizeof(f->own[i]))
        __builtin_trap();
    memcpy(f->own[i], value, n + 1);
    f->v[i] = (af_str){f->own[i], n};
    return 0;
}

static void round_trip(const af_span_context *sc,
                       void (*inject)(const af_carrier *, const af_span_context *))
{
    fields out;
    memset(&out, 0, sizeof(out));
    af_carrier c = {get_all, set, &out};
    inject(&c, sc);
    af_span_context back;
    af_span_context_init(&back);
    if (af_b3_extract(&c, &back) != 1 || memcmp(back.trace_id, sc->trace_id, 16) != 0 ||
        memcmp(back.span_id, sc->span_id, 8) != 0 || back.trace_flags != sc->trace_flags)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fields in;
    memset(&in, 0, sizeof(in));
    const char *p = (const char *)data, *end = p + size;
    for (size_t i = 0; i < N_NAMES && p <= end && size; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        in.v[i] = (af_str){p, (size_t)(stop - p)};
        if (!nl)
            break;
        p = nl + 1;
    }
    af_carrier c = {get_all, NULL, &in};
    af_span_context sc, before;
    af_span_context_init(&sc);
    sc.trace_id[0] = 0x77;
    sc.span_id[0] = 0x66;
    if (af_tracestate_put(&sc, "keep", "1") != 0)
        __builtin_trap();
    before = sc;
    if (af_b3_extract(&c, &sc) != 1) {
        if (memcmp(&sc, &before, sizeof(sc)) != 0)
            __builtin_trap();
        return 0;
    }
    if (!af_span_context_is_valid(&sc) || !sc.is_remote || sc.trace_state_len != 0 ||
        sc.trace_state[0] != '\0' || (sc.trace_flags & ~AF_TRACE_FLAG_SAMPLED) != 0)
        __builtin_trap();
    round_trip(&sc, af_b3_inject);
    round_trip(&sc, af_b3_multi_inject);
    return 0;
}
