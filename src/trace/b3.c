/*
 * B3 propagation (openzipkin/b3-propagation) with the OpenTelemetry propagator rules:
 * extraction tries the single `b3` header and falls back to the X-B3-* headers (an invalid
 * single header does not hide valid multi headers); injection writes the one format the
 * caller picks (OTEL_PROPAGATORS "b3" = single, "b3multi" = multi).
 *
 * Choices where the formats leave room:
 * - Ids are lower-case hex, as B3 specifies. A 64-bit (16-digit) trace id is left-padded
 *   with zeros to 128 bits. All-zero ids are invalid, as in W3C.
 * - Sampling state "1" and debug ("d" in the single header, X-B3-Flags: 1) give a sampled
 *   context; "0" or no state (a deferred decision) an unsampled one. Debug itself is not
 *   carried on: af_span_context has no slot for it, so a re-injected context says "1".
 * - A sampling state without ids ("b3: 0", the deny-only form, or X-B3-Sampled alone)
 *   extracts nothing: there is no trace to continue, and the caller's context stays as is.
 * - The parent span id must be well-formed when present but is not used: OpenTelemetry
 *   never shares a span id between client and server, so it is never injected either.
 * - X-B3-Sampled also accepts "true"/"false", which tracers sent before the spec existed.
 * - Only the first field of each name is read; header names are matched by the carrier,
 *   case-insensitively. Nothing is logged: the input comes from peers.
 */
#include <string.h>

#include "agentaflow/propagation.h"

#define HDR_B3 "b3"
#define HDR_TRACE_ID "x-b3-traceid"
#define HDR_SPAN_ID "x-b3-spanid"
#define HDR_SAMPLED "x-b3-sampled"
#define HDR_FLAGS "x-b3-flags"
#define HDR_PARENT_ID "x-b3-parentspanid"

static bool is_lowhex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool nonzero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return true;
    return false;
}

static bool parse_trace_id(const char *s, size_t n, uint8_t out[16])
{
    if ((n != 16 && n != 32) || !is_lowhex(s, n))
        return false;
    char hex[32];
    memset(hex, '0', 32 - n);
    memcpy(hex + 32 - n, s, n);
    return af_trace_id_from_hex(hex, 32, out) == 0 && nonzero(out, 16);
}

static bool parse_span_id(const char *s, size_t n, uint8_t out[8])
{
    return n == 16 && is_lowhex(s, n) && af_span_id_from_hex(s, n, out) == 0 && nonzero(out, 8);
}

static bool str_is(const char *s, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* The first field named `name`, without surrounding whitespace; false when absent. */
static bool field(const af_carrier *c, const char *name, const char **p, size_t *n)
{
    af_str f;
    if (c->get_all(c->self, name, &f, 1) == 0 || !f.ptr)
        return false;
    const char *s = f.ptr;
    size_t len = f.len;
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    *p = s;
    *n = len;
    return true;
}

static void store(af_span_context *sc, const uint8_t tid[16], const uint8_t sid[8], bool sampled)
{
    memcpy(sc->trace_id, tid, 16);
    memcpy(sc->span_id, sid, 8);
    sc->trace_flags = sampled ? AF_TRACE_FLAG_SAMPLED : 0;
    sc->is_remote = true;
    sc->trace_state_len = 0;
    sc->trace_state[0] = '\0';
}

/* b3: {TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]] */
static int extract_single(const af_carrier *c, af_span_context *sc)
{
    const char *s;
    size_t n;
    if (!field(c, HDR_B3, &s, &n))
        return 0;
    const char *part[4];
    size_t len[4], k = 0;
    const char *end = s + n;
    for (;;) {
        if (k == 4)
            return 0;
        const char *dash = memchr(s, '-', (size_t)(end - s));
        part[k] = s;
        len[k++] = (size_t)((dash ? dash : end) - s);
        if (!dash)
            break;
        s = dash + 1;
    }
    uint8_t tid[16], sid[8], parent[8];
    bool sampled = false;
    if (k < 2 || !parse_trace_id(part[0], len[0], tid) || !parse_span_id(part[1], len[1], sid))
        return 0;
    if (k >= 3) {
        if (str_is(part[2], len[2], "1") || str_is(part[2], len[2], "d"))
            sampled = true;
        else if (!str_is(part[2], len[2], "0"))
            return 0;
    }
    if (k == 4 && !parse_span_id(part[3], len[3], parent))
        return 0;
    store(sc, tid, sid, sampled);
    return 1;
}

static int extract_multi(const af_carrier *c, af_span_context *sc)
{
    const char *s;
    size_t n;
    uint8_t tid[16], sid[8], parent[8];
    if (!field(c, HDR_TRACE_ID, &s, &n) || !parse_trace_id(s, n, tid))
        return 0;
    if (!field(c, HDR_SPAN_ID, &s, &n) || !parse_span_id(s, n, sid))
        return 0;
    if (field(c, HDR_PARENT_ID, &s, &n) && !parse_span_id(s, n, parent))
        return 0;
    bool sampled = false;
    if (field(c, HDR_SAMPLED, &s, &n)) {
        if (str_is(s, n, "1") || str_is(s, n, "true"))
            sampled = true;
        else if (!str_is(s, n, "0") && !str_is(s, n, "false"))
            return 0;
    }
    /* Debug implies sampled and overrides X-B3-Sampled. */
    if (field(c, HDR_FLAGS, &s, &n)) {
        if (str_is(s, n, "1"))
            sampled = true;
        else if (!str_is(s, n, "0"))
            return 0;
    }
    store(sc, tid, sid, sampled);
    return 1;
}

int af_b3_extract(const af_carrier *c, af_span_context *sc)
{
    if (!c || !c->get_all || !sc)
        return 0;
    return extract_single(c, sc) || extract_multi(c, sc);
}

void af_b3_inject(const af_carrier *c, const af_span_context *sc)
{
    if (!c || !c->set || !af_span_context_is_valid(sc))
        return;
    char v[32 + 1 + 16 + 2 + 1];
    af_trace_id_to_hex(sc->trace_id, v);
    v[32] = '-';
    af_span_id_to_hex(sc->span_id, v + 33);
    v[49] = '-';
    v[50] = af_span_context_is_sampled(sc) ? '1' : '0';
    v[51] = '\0';
    (void)c->set(c->self, HDR_B3, v);
}

void af_b3_multi_inject(const af_carrier *c, const af_span_context *sc)
{
    if (!c || !c->set || !af_span_context_is_valid(sc))
        return;
    char tid[33], sid[17];
    af_trace_id_to_hex(sc->trace_id, tid);
    af_span_id_to_hex(sc->span_id, sid);
    if (c->set(c->self, HDR_TRACE_ID, tid) != 0 || c->set(c->self, HDR_SPAN_ID, sid) != 0)
        return;
    (void)c->set(c->self, HDR_SAMPLED, af_span_context_is_sampled(sc) ? "1" : "0");
}
