/*
 * Propagators: W3C Trace Context and W3C Baggage over an af_carrier, and their composition
 * with B3 (b3.c) chosen by OTEL_PROPAGATORS.
 *
 * Extraction is on every incoming request and must never fail loudly: bad input leaves the
 * caller's context as it was and logs nothing (a peer could otherwise flood the log).
 */
#define AF_LOG_COMPONENT "tracing"

#include "agentaflow/propagation.h"

#include <stdlib.h>
#include <string.h>

#include "agentaflow/log.h"
#include "trace/tracestate_int.h"
#include "util/env.h"
#include "util/str.h"

#define HDR_TRACEPARENT "traceparent"
#define HDR_TRACESTATE "tracestate"
#define HDR_BAGGAGE "baggage"

/* A request with more tracestate fields than this has its tracestate dropped: at most 32 can
 * hold members, so only a sender padding with empty fields gets here, and the bound keeps
 * the field views on the stack. */
#define MAX_TRACESTATE_FIELDS 64
/* Baggage fields read without allocating; more are fetched into a heap array. */
#define BAGGAGE_STACK_FIELDS 16

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int af_tracecontext_extract(const af_carrier *c, af_span_context *sc)
{
    if (!c || !c->get_all || !sc)
        return 0;
    af_str tp[2];
    /* Two slots are enough to see a duplicate, which makes the context invalid (W3C test
     * suite: test_traceparent_duplicated). */
    if (c->get_all(c->self, HDR_TRACEPARENT, tp, 2) != 1 || !tp[0].ptr)
        return 0;
    /* Field values exclude surrounding whitespace (RFC 9110 5.5); carriers fed from raw
     * header lines may still have it. */
    const char *p = tp[0].ptr;
    size_t n = tp[0].len;
    while (n && is_ows(*p)) {
        p++;
        n--;
    }
    while (n && is_ows(p[n - 1]))
        n--;
    if (af_traceparent_parse(p, n, sc) != 0)
        return 0;

    /* Parsing cleared the trace state; a bad tracestate leaves it empty and does not undo the
     * traceparent (W3C: "MUST NOT affect the parsing of traceparent"). */
    af_str ts[MAX_TRACESTATE_FIELDS];
    size_t n_ts = c->get_all(c->self, HDR_TRACESTATE, ts, MAX_TRACESTATE_FIELDS);
    if (n_ts > 0 && n_ts <= MAX_TRACESTATE_FIELDS)
        (void)af__tracestate_set_fields(sc, ts, n_ts);
    return 1;
}

void af_tracecontext_inject(const af_carrier *c, const af_span_context *sc)
{
    if (!c || !c->set || !af_span_context_is_valid(sc))
        return;
    char tp[56];
    af_traceparent_format(sc, tp);
    if (c->set(c->self, HDR_TRACEPARENT, tp) != 0)
        return;
    if (sc->trace_state_len > 0 && sc->trace_state_len <= AF_TRACE_STATE_MAX &&
        sc->trace_state[sc->trace_state_len] == '\0')
        (void)c->set(c->self, HDR_TRACESTATE, sc->trace_state);
}

int af_baggage_extract(const af_carrier *c, af_baggage **b)
{
    if (!c || !c->get_all || !b)
        return 0;
    af_str stack[BAGGAGE_STACK_FIELDS];
    af_str *fields = stack;
    size_t n = c->get_all(c->self, HDR_BAGGAGE, stack, BAGGAGE_STACK_FIELDS);
    if (n == 0)
        return 0;
    if (n > BAGGAGE_STACK_FIELDS) {
        fields = malloc(n * sizeof(*fields));
        if (!fields)
            return 0;
        size_t again = c->get_all(c->self, HDR_BAGGAGE, fields, n);
        n = again < n ? again : n;
    }

    af_baggage *target = *b;
    int added = 0;
    if (!target && af_baggage_new(&target) != 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        int r = af_baggage_parse(target, fields[i].ptr, fields[i].ptr ? fields[i].len : 0);
        if (r > 0)
            added += r;
    }
    if (!*b) {
        if (added > 0)
            *b = target;
        else
            af_baggage_free(target);
    }
done:
    if (fields != stack)
        free(fields);
    return added;
}

void af_baggage_inject(const af_carrier *c, const af_baggage *b)
{
    if (!c || !c->set || !b)
        return;
    char buf[AF_BAGGAGE_MAX_BYTES + 1];
    size_t n = af_baggage_format(b, buf, sizeof(buf));
    if (n > 0 && n < sizeof(buf))
        (void)c->set(c->self, HDR_BAGGAGE, buf);
}

unsigned af_propagators_from_env(void)
{
    static const char *const unsupported[] = {"jaeger", "xray", "ottrace"};
    const char *v = af__getenv("OTEL_PROPAGATORS");
    if (!v)
        return AF_PROPAGATE_DEFAULT;

    unsigned which = 0;
    bool none = false;
    const char *p = v;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *s = p;
        while (n && is_ows(*s)) {
            s++;
            n--;
        }
        while (n && is_ows(s[n - 1]))
            n--;
        if (n == 0) {
            /* "tracecontext,,baggage": an empty item is nothing to configure. */
        } else if (af__str_ieq(s, n, "tracecontext")) {
            which |= AF_PROPAGATE_TRACECONTEXT;
        } else if (af__str_ieq(s, n, "baggage")) {
            which |= AF_PROPAGATE_BAGGAGE;
        } else if (af__str_ieq(s, n, "b3")) {
            which |= AF_PROPAGATE_B3;
        } else if (af__str_ieq(s, n, "b3multi")) {
            which |= AF_PROPAGATE_B3_MULTI;
        } else if (af__str_ieq(s, n, "none")) {
            none = true;
        } else {
            bool known = false;
            for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
                known = known || af__str_ieq(s, n, unsupported[i]);
            af_log(AF_LOG_WARN, "OTEL_PROPAGATORS: %s propagator \"%.*s\"; skipped",
                   known ? "unsupported" : "unknown", (int)n, s);
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    /* "none" means no propagation at all; it wins over anything listed beside it, as in the
     * Go and Java SDKs, and a list that mixes them is worth a warning. */
    if (none) {
        if (which)
            af_log(AF_LOG_WARN, "OTEL_PROPAGATORS: \"none\" listed with other propagators; "
                                "propagation is disabled");
        return 0;
    }
    return which;
}

int af_propagate_extract(unsigned which, const af_carrier *c, af_span_context *sc,
                         af_baggage **baggage)
{
    int got = 0;
    if ((which & AF_PROPAGATE_TRACECONTEXT) && sc)
        got = af_tracecontext_extract(c, sc);
    if (!got && (which & (AF_PROPAGATE_B3 | AF_PROPAGATE_B3_MULTI)) && sc)
        got = af_b3_extract(c, sc);
    if ((which & AF_PROPAGATE_BAGGAGE) && baggage)
        (void)af_baggage_extract(c, baggage);
    return got;
}

void af_propagate_inject(unsigned which, const af_carrier *c, const af_span_context *sc,
                         const af_baggage *baggage)
{
    if ((which & AF_PROPAGATE_TRACECONTEXT) && sc)
        af_tracecontext_inject(c, sc);
    if ((which & AF_PROPAGATE_B3) && sc)
        af_b3_inject(c, sc);
    if ((which & AF_PROPAGATE_B3_MULTI) && sc)
        af_b3_multi_inject(c, sc);
    if ((which & AF_PROPAGATE_BAGGAGE) && baggage)
        af_baggage_inject(c, baggage);
}
