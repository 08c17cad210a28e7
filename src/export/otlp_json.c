/*
 * OTLP/JSON encoder (docs/standards.md, OTLP/JSON): the proto3 JSON mapping with OTLP's
 * exceptions - hex ids, enums as integers, lowerCamelCase keys, 64-bit integers as decimal
 * strings. Fields holding their default value are left out. A small writer tracks commas and
 * indentation so that the same code prints compact lines and the stdout exporter's pretty
 * form.
 */
#include "export/encode.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jw {
    af_buf *b;
    bool pretty;
    bool need_comma; /* a value was written in the current container */
    bool after_key;  /* the next value follows a key: no separator */
    int depth;
} jw;

static void jw_newline(jw *w)
{
    if (!w->pretty)
        return;
    af__buf_putc(w->b, '\n');
    for (int i = 0; i < w->depth; i++)
        af__buf_append(w->b, "  ", 2);
}

static void jw_prefix(jw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->need_comma)
        af__buf_putc(w->b, ',');
    if (w->depth > 0)
        jw_newline(w);
}

static void jw_open(jw *w, char c)
{
    jw_prefix(w);
    af__buf_putc(w->b, c);
    w->depth++;
    w->need_comma = false;
}

static void jw_close(jw *w, char c)
{
    bool nonempty = w->need_comma;
    w->depth--;
    if (nonempty)
        jw_newline(w);
    af__buf_putc(w->b, c);
    w->need_comma = true;
}

/* `text` is the quoted key and its colon, built at compile time by JW_KEY: one append per key
 * instead of a strlen and three appends. */
static void jw_key(jw *w, const char *text, size_t n)
{
    jw_prefix(w);
    af__buf_append(w->b, text, n);
    if (w->pretty)
        af__buf_putc(w->b, ' ');
    w->after_key = true;
}

#define JW_KEY(w, k) jw_key((w), "\"" k "\":", sizeof(k) + 2)

static void jw_raw(jw *w, const char *s, size_t n)
{
    jw_prefix(w);
    af__buf_append(w->b, s, n);
    w->need_comma = true;
}

static void jw_str(jw *w, const char *s, size_t n)
{
    jw_prefix(w);
    af__buf_json_string(w->b, s ? s : "", s ? n : 0);
    w->need_comma = true;
}

static void jw_cstr(jw *w, const char *s)
{
    jw_str(w, s, s ? strlen(s) : 0);
}

/* Decimal digits of v into the end of tmp[24]; returns the first digit. */
static char *u64_digits(uint64_t v, char *end)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

static void jw_u64(jw *w, uint64_t v, bool quoted)
{
    char tmp[24];
    char *end = tmp + sizeof(tmp);
    char *p = u64_digits(v, end - (quoted ? 1 : 0));
    if (quoted) {
        *--p = '"';
        end[-1] = '"';
    }
    jw_raw(w, p, (size_t)(end - p));
}

static void jw_i64_str(jw *w, int64_t v)
{
    char tmp[24];
    char *end = tmp + sizeof(tmp);
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char *p = u64_digits(mag, end - 1);
    if (v < 0)
        *--p = '-';
    *--p = '"';
    end[-1] = '"';
    jw_raw(w, p, (size_t)(end - p));
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8, 1e9,
                                     1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};

/*
 * The "%.15g" text of d without printf, for the common case of a value written with few
 * decimals (12.75, 0.5, 3): finds the smallest k such that d is the double nearest to m/10^k
 * for an integer |m| < 10^15, checked by one correctly rounded division of two exact
 * doubles. Such a d rounds to m/10^k at 15 significant digits (its half-ulp is well below
 * half a unit in the 15th digit), so "%.15g" prints exactly that decimal, and it reads back
 * as d. Limited to 1e-4 <= |d| < 1e15, where "%.15g" uses fixed notation. Returns the length
 * written to out[32], or 0 to fall back to printf.
 */
static size_t short_decimal(double d, char *out)
{
    double a = d < 0 ? -d : d;
    if (!(a >= 1e-4 && a < 1e15))
        return 0;
    for (size_t k = 0; k < sizeof(pow10_exact) / sizeof(pow10_exact[0]); k++) {
        double t = a * pow10_exact[k];
        if (t >= 1e15)
            return 0;
        uint64_t m = (uint64_t)(t + 0.5);
        if ((double)m / pow10_exact[k] != a)
            continue;
        char digits[24];
        char *end = digits + sizeof(digits);
        char *p = u64_digits(m, end);
        size_t nd = (size_t)(end - p), o = 0;
        if (d < 0)
            out[o++] = '-';
        if (nd <= k) {
            /* 0.000ddd */
            out[o++] = '0';
            out[o++] = '.';
            for (size_t z = nd; z < k; z++)
                out[o++] = '0';
            memcpy(out + o, p, nd);
            return o + nd;
        }
        memcpy(out + o, p, nd - k);
        o += nd - k;
        if (k) {
            out[o++] = '.';
            memcpy(out + o, end - k, k);
            o += k;
        }
        return o;
    }
    return 0;
}

/* Shortest "%.*g" text that reads back as the same double (15 digits, else 17); NaN and
 * infinities become the proto3 JSON strings. */
static void jw_double(jw *w, double d)
{
    if (isnan(d)) {
        jw_raw(w, "\"NaN\"", 5);
        return;
    }
    if (isinf(d)) {
        if (d > 0)
            jw_raw(w, "\"Infinity\"", 10);
        else
            jw_raw(w, "\"-Infinity\"", 11);
        return;
    }
    char tmp[32];
    size_t fast = short_decimal(d, tmp);
    if (fast) {
        jw_raw(w, tmp, fast);
        return;
    }
    int n = snprintf(tmp, sizeof(tmp), "%.15g", d);
    if (strtod(tmp, NULL) != d)
        n = snprintf(tmp, sizeof(tmp), "%.17g", d);
    jw_raw(w, tmp, (size_t)n);
}

static void jw_hex(jw *w, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[2 + 32];
    size_t o = 0;
    tmp[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        tmp[o++] = hex[p[i] >> 4];
        tmp[o++] = hex[p[i] & 15];
    }
    tmp[o++] = '"';
    jw_raw(w, tmp, o);
}

static bool is_empty(const char *s)
{
    return !s || !*s;
}

static size_t attr_str_len(const af_attr *a)
{
    if (!a->v.s.ptr)
        return 0;
    return a->v.s.len == AF_LEN_NUL ? strlen(a->v.s.ptr) : a->v.s.len;
}

/* One AnyValue holding a scalar of an array attribute's element type. */
static void write_array_item(jw *w, const af_attr *a, size_t i)
{
    jw_open(w, '{');
    switch (a->type) {
    case AF_VAL_STRING_ARRAY:
        JW_KEY(w, "stringValue");
        jw_cstr(w, ((const char *const *)a->v.arr.items)[i]);
        break;
    case AF_VAL_BOOL_ARRAY:
        JW_KEY(w, "boolValue");
        if (((const bool *)a->v.arr.items)[i])
            jw_raw(w, "true", 4);
        else
            jw_raw(w, "false", 5);
        break;
    case AF_VAL_INT_ARRAY:
        JW_KEY(w, "intValue");
        jw_i64_str(w, ((const int64_t *)a->v.arr.items)[i]);
        break;
    default:
        JW_KEY(w, "doubleValue");
        jw_double(w, ((const double *)a->v.arr.items)[i]);
        break;
    }
    jw_close(w, '}');
}

static void write_value(jw *w, const af_attr *a)
{
    jw_open(w, '{');
    switch (a->type) {
    case AF_VAL_STRING:
        JW_KEY(w, "stringValue");
        jw_str(w, a->v.s.ptr, attr_str_len(a));
        break;
    case AF_VAL_BOOL:
        JW_KEY(w, "boolValue");
        if (a->v.b)
            jw_raw(w, "true", 4);
        else
            jw_raw(w, "false", 5);
        break;
    case AF_VAL_INT:
        JW_KEY(w, "intValue");
        jw_i64_str(w, a->v.i);
        break;
    case AF_VAL_DOUBLE:
        JW_KEY(w, "doubleValue");
        jw_double(w, a->v.d);
        break;
    default:
        JW_KEY(w, "arrayValue");
        jw_open(w, '{');
        if (a->v.arr.count) {
            JW_KEY(w, "values");
            jw_open(w, '[');
            for (size_t i = 0; i < a->v.arr.count; i++)
                write_array_item(w, a, i);
            jw_close(w, ']');
        }
        jw_close(w, '}');
        break;
    }
    jw_close(w, '}');
}

/* "attributes": [...] (left out when empty) and "droppedAttributesCount" (when non-zero). */
static void write_attrs(jw *w, const af_attr *attrs, size_t n, uint32_t dropped)
{
    if (n) {
        JW_KEY(w, "attributes");
        jw_open(w, '[');
        for (size_t i = 0; i < n; i++) {
            jw_open(w, '{');
            JW_KEY(w, "key");
            jw_cstr(w, attrs[i].key);
            JW_KEY(w, "value");
            write_value(w, &attrs[i]);
            jw_close(w, '}');
        }
        jw_close(w, ']');
    }
    if (dropped) {
        JW_KEY(w, "droppedAttributesCount");
        jw_u64(w, dropped, false);
    }
}

static uint32_t span_flags(uint8_t trace_flags, bool is_remote)
{
    return trace_flags | 0x100u | (is_remote ? 0x200u : 0);
}

/* events (with droppedEventsCount when some were dropped). */
static void write_events(jw *w, const af_span_data *s)
{
    if (s->n_events) {
        JW_KEY(w, "events");
        jw_open(w, '[');
        for (uint32_t i = 0; i < s->n_events; i++) {
            const af_event_data *e = &s->events[i];
            jw_open(w, '{');
            JW_KEY(w, "timeUnixNano");
            jw_u64(w, e->time_ns, true);
            JW_KEY(w, "name");
            jw_cstr(w, e->name);
            write_attrs(w, e->attrs, e->n_attrs, e->dropped_attrs);
            jw_close(w, '}');
        }
        jw_close(w, ']');
    }
    if (s->dropped_events) {
        JW_KEY(w, "droppedEventsCount");
        jw_u64(w, s->dropped_events, false);
    }
}

/* links (with droppedLinksCount when some were dropped). */
static void write_links(jw *w, const af_span_data *s)
{
    if (s->n_links) {
        JW_KEY(w, "links");
        jw_open(w, '[');
        for (uint32_t i = 0; i < s->n_links; i++) {
            const af_link_data *l = &s->links[i];
            jw_open(w, '{');
            JW_KEY(w, "traceId");
            jw_hex(w, l->trace_id, 16);
            JW_KEY(w, "spanId");
            jw_hex(w, l->span_id, 8);
            if (!is_empty(l->trace_state)) {
                JW_KEY(w, "traceState");
                jw_cstr(w, l->trace_state);
            }
            write_attrs(w, l->attrs, l->n_attrs, l->dropped_attrs);
            JW_KEY(w, "flags");
            jw_u64(w, span_flags(l->trace_flags, l->is_remote), false);
            jw_close(w, '}');
        }
        jw_close(w, ']');
    }
    if (s->dropped_links) {
        JW_KEY(w, "droppedLinksCount");
        jw_u64(w, s->dropped_links, false);
    }
}

static void write_status(jw *w, const af_span_data *s)
{
    /* Unset is the default and is left out; the description only accompanies Error. */
    if (s->status != AF_STATUS_UNSET) {
        JW_KEY(w, "status");
        jw_open(w, '{');
        if (s->status == AF_STATUS_ERROR && !is_empty(s->status_message)) {
            JW_KEY(w, "message");
            jw_cstr(w, s->status_message);
        }
        JW_KEY(w, "code");
        jw_u64(w, (uint64_t)s->status, false);
        jw_close(w, '}');
    }
}

static void write_span(jw *w, const af_span_data *s)
{
    jw_open(w, '{');
    JW_KEY(w, "traceId");
    jw_hex(w, s->trace_id, 16);
    JW_KEY(w, "spanId");
    jw_hex(w, s->span_id, 8);
    if (!is_empty(s->trace_state)) {
        JW_KEY(w, "traceState");
        jw_cstr(w, s->trace_state);
    }
    if (s->has_parent) {
        JW_KEY(w, "parentSpanId");
        jw_hex(w, s->parent_span_id, 8);
    }
    JW_KEY(w, "flags");
    jw_u64(w, span_flags(s->trace_flags, s->parent_is_remote), false);
    JW_KEY(w, "name");
    jw_cstr(w, s->name);
    JW_KEY(w, "kind");
    jw_u64(w, (uint64_t)s->kind, false);
    JW_KEY(w, "startTimeUnixNano");
    jw_u64(w, s->start_ns, true);
    JW_KEY(w, "endTimeUnixNano");
    jw_u64(w, s->end_ns, true);
    write_attrs(w, s->attrs, s->n_attrs, s->dropped_attrs);

    write_events(w, s);
    write_links(w, s);
    write_status(w, s);
    jw_close(w, '}');
}

int af__otlp_json_span(const af_span_data *s, af_buf *out, bool pretty)
{
    if (!s || !out)
        return -EINVAL;
    jw w = {.b = out, .pretty = pretty};
    write_span(&w, s);
    return out->failed ? -ENOMEM : 0;
}

int af__otlp_json_encode(const af_span_data *const *spans, size_t n, af_buf *out)
{
    if ((!spans && n) || !out)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!spans[i])
            return -EINVAL;
    af__otlp_groups g;
    int rc = af__otlp_groups_build(spans, n, &g);
    if (rc)
        return rc;

    jw w = {.b = out};
    jw_open(&w, '{');
    JW_KEY(&w, "resourceSpans");
    jw_open(&w, '[');
    for (size_t k = 0; k < g.n_groups; k++) {
        const af__otlp_group *gr = &g.groups[k];
        if (gr->new_resource) {
            jw_open(&w, '{');
            JW_KEY(&w, "resource");
            jw_open(&w, '{');
            if (gr->resource) {
                size_t nr = 0;
                const af_attr *ra = af_resource_attrs(gr->resource, &nr);
                write_attrs(&w, ra, nr, 0);
            }
            jw_close(&w, '}');
            JW_KEY(&w, "scopeSpans");
            jw_open(&w, '[');
        }
        jw_open(&w, '{');
        JW_KEY(&w, "scope");
        jw_open(&w, '{');
        if (gr->scope && !is_empty(gr->scope->name)) {
            JW_KEY(&w, "name");
            jw_cstr(&w, gr->scope->name);
        }
        if (gr->scope && !is_empty(gr->scope->version)) {
            JW_KEY(&w, "version");
            jw_cstr(&w, gr->scope->version);
        }
        if (gr->scope)
            write_attrs(&w, gr->scope->attrs, gr->scope->n_attrs, 0);
        jw_close(&w, '}');
        JW_KEY(&w, "spans");
        jw_open(&w, '[');
        for (size_t j = 0; j < gr->count; j++)
            write_span(&w, g.order[gr->first + j]);
        jw_close(&w, ']');
        if (gr->scope && !is_empty(gr->scope->schema_url)) {
            JW_KEY(&w, "schemaUrl");
            jw_cstr(&w, gr->scope->schema_url);
        }
        jw_close(&w, '}');
        /* Close the resource after its last scope group. */
        if (k + 1 == g.n_groups || g.groups[k + 1].new_resource) {
            jw_close(&w, ']');
            const char *url = gr->resource ? af_resource_schema_url(gr->resource) : NULL;
            if (!is_empty(url)) {
                JW_KEY(&w, "schemaUrl");
                jw_cstr(&w, url);
            }
            jw_close(&w, '}');
        }
    }
    jw_close(&w, ']');
    jw_close(&w, '}');
    af__otlp_groups_free(&g);
    return out->failed ? -ENOMEM : 0;
}
