/*
 * OTLP protobuf encoder: ExportTraceServiceRequest written directly in the wire format of
 * proto/ (docs/standards.md, OTLP protobuf), in two passes over the spans.
 *
 * Why not protobuf-c: packing a generated message tree makes protobuf-c measure every nested
 * message again at each level to write its length prefix (an attribute's AnyValue is measured
 * once for the KeyValue, again for the Span, the ScopeSpans, ...), and building the tree costs
 * as much again. On bench_export's batch (512 spans, 6 attributes and 1 event each, one
 * core) that ran at 1.35 M spans/s and 10,700 instructions per span (callgrind); this writer
 * runs at 6.5 M spans/s and 2,180 instructions per span, same bytes.
 *
 * Pass 1 measures each length-delimited message once, bottom-up, and records its size and
 * the length of every string in a scratch array, in the order pass 2 visits them (a
 * message's slot is taken before its children's). Pass 2 reserves the exact total in the
 * output buffer once and writes front to back, reading the sizes in the same order.
 *
 * The bytes are those protobuf-c packs for the same request (tests/unit/test_otlp_encode.c
 * checks this against the generated code): fields in field-number order, proto3 defaults
 * (zero numbers, empty strings, absent messages) left out, the AnyValue oneof always written
 * once set (an empty string value included), Resource and InstrumentationScope always
 * present even when empty. Span and Link flags carry the OTLP HAS_IS_REMOTE/IS_REMOTE bits;
 * parent_span_id is left out for a root; status is left out for Unset and its message
 * written only for Error.
 */
#include "export/encode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "export/pb_write.h"

/* OTLP SpanFlags bits above the W3C trace flags. */
#define SPAN_FLAGS_HAS_IS_REMOTE 0x100u
#define SPAN_FLAGS_IS_REMOTE 0x200u

/* ---------------------------------------------------------------------------------------- */
/* Grouping by resource and scope.                                                           */

/* ---------------------------------------------------------------------------------------- */
/* Grouping by resource and scope.                                                           */

/* Index of (resource, scope) in groups[0..n), or n. Batches normally hold one resource and
 * a handful of scopes, so a linear scan starting at the last hit beats hashing. */
static size_t group_find(const af__otlp_group *groups, size_t n, size_t hint, const af_resource *r,
                         const af_instrumentation_scope *sc)
{
    if (hint < n && groups[hint].resource == r && groups[hint].scope == sc)
        return hint;
    for (size_t i = 0; i < n; i++)
        if (groups[i].resource == r && groups[i].scope == sc)
            return i;
    return n;
}

/* The groups in first-seen order (seen), each span's group (span_group) and each group's
 * resource rank (res_rank, *n_res ranks in all). Returns the number of groups. */
static size_t collect_groups(const af_span_data *const *spans, size_t n, af__otlp_group *seen,
                             size_t *span_group, size_t *res_rank, size_t *n_res_out)
{
    size_t n_seen = 0, n_res = 0, hint = 0;
    for (size_t i = 0; i < n; i++) {
        const af_span_data *s = spans[i];
        size_t k = group_find(seen, n_seen, hint, s->resource, s->scope);
        if (k == n_seen) {
            /* A new group: its resource rank is that of an earlier group with the same
             * resource, else the next rank. */
            size_t rank = n_res;
            for (size_t j = 0; j < n_seen; j++)
                if (seen[j].resource == s->resource) {
                    rank = res_rank[j];
                    break;
                }
            if (rank == n_res)
                n_res++;
            seen[n_seen] = (af__otlp_group){s->resource, s->scope, 0, 0, false};
            res_rank[n_seen] = rank;
            n_seen++;
        }
        seen[k].count++;
        span_group[i] = k;
        hint = k;
    }
    *n_res_out = n_res;
    return n_seen;
}

/* Stable order of groups by resource rank into sorted, then span offsets per group; seen[k].first
 * becomes the fill cursor for group k's spans. */
static void order_groups(af__otlp_group *seen, size_t n_seen, const size_t *res_rank, size_t n_res,
                         af__otlp_group *sorted)
{
    size_t out_i = 0, first = 0;
    for (size_t rank = 0; rank < n_res; rank++) {
        bool new_res = true;
        for (size_t k = 0; k < n_seen; k++) {
            if (res_rank[k] != rank)
                continue;
            sorted[out_i] = seen[k];
            sorted[out_i].first = first;
            sorted[out_i].new_resource = new_res;
            new_res = false;
            first += seen[k].count;
            /* seen[k].first becomes the fill cursor for group k's spans. */
            seen[k].first = sorted[out_i].first;
            out_i++;
        }
    }
}

int af__otlp_groups_build(const af_span_data *const *spans, size_t n, af__otlp_groups *g)
{
    memset(g, 0, sizeof(*g));
    g->order = spans;
    if (n == 0)
        return 0;

    /* Fast path: every span shares the first span's resource and scope. */
    size_t i = 1;
    while (i < n && spans[i]->resource == spans[0]->resource && spans[i]->scope == spans[0]->scope)
        i++;
    if (i == n) {
        g->one = (af__otlp_group){spans[0]->resource, spans[0]->scope, 0, n, true};
        g->groups = &g->one;
        g->n_groups = 1;
        g->n_resources = 1;
        return 0;
    }

    /* One block: groups in first-seen order, the same groups reordered by resource, the
     * per-span group index, the per-group resource rank, and the output order. */
    size_t sz =
        2 * n * sizeof(af__otlp_group) + 2 * n * sizeof(size_t) + n * sizeof(const af_span_data *);
    uint8_t *mem = malloc(sz);
    if (!mem)
        return -ENOMEM;
    af__otlp_group *seen = (af__otlp_group *)mem;
    af__otlp_group *sorted = seen + n;
    size_t *span_group = (size_t *)(sorted + n);
    size_t *res_rank = span_group + n;
    const af_span_data **order = (const af_span_data **)(res_rank + n);

    size_t n_res;
    size_t n_seen = collect_groups(spans, n, seen, span_group, res_rank, &n_res);
    order_groups(seen, n_seen, res_rank, n_res, sorted);
    for (i = 0; i < n; i++)
        order[seen[span_group[i]].first++] = spans[i];

    g->groups = sorted;
    g->n_groups = n_seen;
    g->n_resources = n_res;
    g->order = order;
    g->mem = mem;
    return 0;
}

void af__otlp_groups_free(af__otlp_groups *g)
{
    free(g->mem);
    memset(g, 0, sizeof(*g));
}

/* ---------------------------------------------------------------------------------------- */
/* Pass 1: sizes. Every function returns the encoded size of what it measured and appends
 * the slots pass 2 reads back: one per length-delimited message whose size is not a cheap
 * function of other slots, and one per string. */

typedef struct sizes {
    size_t *v;
    size_t n, cap;
    bool failed;
} sizes;

/* Index of a new slot. On allocation failure the cursor wraps to 0 so that measuring can
 * finish in bounds; the caller sees `failed` and discards the sizes. */
static size_t take(sizes *z)
{
    if (__builtin_expect(z->n == z->cap, 0)) {
        size_t *nv =
            z->cap <= SIZE_MAX / 2 / sizeof(*nv) ? realloc(z->v, 2 * z->cap * sizeof(*nv)) : NULL;
        if (nv) {
            z->v = nv;
            z->cap *= 2;
        } else {
            z->failed = true;
            z->n = 0;
        }
    }
    return z->n++;
}

static size_t slot_str(sizes *z, size_t len)
{
    size_t i = take(z);
    z->v[i] = len;
    return len;
}

static size_t cstr_len(const char *s)
{
    return s ? strlen(s) : 0;
}

static size_t attr_str_len(const af_attr *a)
{
    if (!a->v.s.ptr)
        return 0;
    return a->v.s.len == AF_LEN_NUL ? strlen(a->v.s.ptr) : a->v.s.len;
}

/* An optional string field: left out when empty. */
static size_t opt_str_size(size_t len)
{
    return len ? af__pb_ld_size(len) : 0;
}

static size_t opt_varint_size(uint64_t v)
{
    return v ? 1 + af__pb_varint_size(v) : 0;
}

/* AnyValue body holding one element of an array attribute. */
static size_t measure_item(sizes *z, const af_attr *a, size_t i)
{
    switch (a->type) {
    case AF_VAL_STRING_ARRAY:
        return af__pb_ld_size(slot_str(z, cstr_len(((const char *const *)a->v.arr.items)[i])));
    case AF_VAL_BOOL_ARRAY:
        return 2;
    case AF_VAL_INT_ARRAY:
        return 1 + af__pb_varint_size((uint64_t)((const int64_t *)a->v.arr.items)[i]);
    default:
        return 9;
    }
}

/* AnyValue body of an attribute. */
static size_t measure_value(sizes *z, const af_attr *a)
{
    switch (a->type) {
    case AF_VAL_STRING:
        return af__pb_ld_size(slot_str(z, attr_str_len(a)));
    case AF_VAL_BOOL:
        return 2;
    case AF_VAL_INT:
        return 1 + af__pb_varint_size((uint64_t)a->v.i);
    case AF_VAL_DOUBLE:
        return 9;
    default: {
        size_t at = take(z), arr = 0;
        for (size_t i = 0; i < a->v.arr.count; i++)
            arr += af__pb_ld_size(measure_item(z, a, i));
        z->v[at] = arr;
        return af__pb_ld_size(arr);
    }
    }
}

/* A repeated KeyValue field (one-byte tag): slots are the KeyValue size, the key length,
 * then the value's. */
static size_t measure_attrs(sizes *z, const af_attr *attrs, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t at = take(z);
        size_t kv = opt_str_size(slot_str(z, cstr_len(attrs[i].key)));
        kv += af__pb_ld_size(measure_value(z, &attrs[i]));
        z->v[at] = kv;
        total += af__pb_ld_size(kv);
    }
    return total;
}

static size_t measure_span(sizes *z, const af_span_data *s)
{
    size_t at = take(z);
    size_t len = (2 + 16) + (2 + 8) + 6; /* trace_id, span_id, flags */
    len += opt_str_size(slot_str(z, cstr_len(s->trace_state)));
    len += s->has_parent ? 2 + 8 : 0;
    len += opt_str_size(slot_str(z, cstr_len(s->name)));
    len += opt_varint_size(af__pb_int32_bits((int32_t)s->kind));
    len += s->start_ns ? 9 : 0;
    len += s->end_ns ? 9 : 0;
    len += measure_attrs(z, s->attrs, s->n_attrs);
    len += opt_varint_size(s->dropped_attrs);
    for (uint32_t i = 0; i < s->n_events; i++) {
        const af_event_data *e = &s->events[i];
        size_t ev_at = take(z);
        size_t ev = e->time_ns ? 9 : 0;
        ev += opt_str_size(slot_str(z, cstr_len(e->name)));
        ev += measure_attrs(z, e->attrs, e->n_attrs);
        ev += opt_varint_size(e->dropped_attrs);
        z->v[ev_at] = ev;
        len += af__pb_ld_size(ev);
    }
    len += opt_varint_size(s->dropped_events);
    for (uint32_t i = 0; i < s->n_links; i++) {
        const af_link_data *l = &s->links[i];
        size_t ln_at = take(z);
        size_t ln = (2 + 16) + (2 + 8) + 5; /* trace_id, span_id, flags */
        ln += opt_str_size(slot_str(z, cstr_len(l->trace_state)));
        ln += measure_attrs(z, l->attrs, l->n_attrs);
        ln += opt_varint_size(l->dropped_attrs);
        z->v[ln_at] = ln;
        len += af__pb_ld_size(ln);
    }
    len += opt_varint_size(s->dropped_links);
    if (s->status != AF_STATUS_UNSET) {
        size_t st = opt_varint_size(af__pb_int32_bits((int32_t)s->status));
        if (s->status == AF_STATUS_ERROR)
            st += opt_str_size(slot_str(z, cstr_len(s->status_message)));
        len += af__pb_ld_size(st);
    }
    z->v[at] = len;
    return af__pb_ld_size(len);
}

/* The ScopeSpans of group k: slots are its size, the scope's size, name, version and
 * schema URL, the scope attributes', then its spans'. */
static size_t measure_scope_spans(sizes *z, const af__otlp_groups *g, size_t k)
{
    const af__otlp_group *gr = &g->groups[k];
    const af_instrumentation_scope *sc = gr->scope;
    size_t at = take(z), scope_at = take(z);
    size_t scope = opt_str_size(slot_str(z, sc ? cstr_len(sc->name) : 0));
    scope += opt_str_size(slot_str(z, sc ? cstr_len(sc->version) : 0));
    size_t len = opt_str_size(slot_str(z, sc ? cstr_len(sc->schema_url) : 0));
    if (sc)
        scope += measure_attrs(z, sc->attrs, sc->n_attrs);
    z->v[scope_at] = scope;
    len += af__pb_ld_size(scope);
    for (size_t j = 0; j < gr->count; j++)
        len += measure_span(z, g->order[gr->first + j]);
    z->v[at] = len;
    return af__pb_ld_size(len);
}

/* The ResourceSpans starting at group k, which runs to *end: slots are its size, the
 * resource's size, the schema URL, the resource attributes', then each ScopeSpans'. */
static size_t measure_resource_spans(sizes *z, const af__otlp_groups *g, size_t k, size_t *end)
{
    const af_resource *r = g->groups[k].resource;
    size_t at = take(z), res_at = take(z);
    size_t len = opt_str_size(slot_str(z, r ? cstr_len(af_resource_schema_url(r)) : 0));
    size_t res = 0;
    if (r) {
        size_t nr = 0;
        const af_attr *ra = af_resource_attrs(r, &nr);
        res = measure_attrs(z, ra, nr);
    }
    z->v[res_at] = res;
    len += af__pb_ld_size(res);
    size_t j = k;
    do
        len += measure_scope_spans(z, g, j++);
    while (j < g->n_groups && !g->groups[j].new_resource);
    *end = j;
    z->v[at] = len;
    return af__pb_ld_size(len);
}

/* ---------------------------------------------------------------------------------------- */
/* Pass 2: bytes. `w` holds the output cursor and the next slot to read. */

typedef struct writer {
    uint8_t *p;
    const size_t *v;
} writer;

static void put_str(writer *w, uint8_t tag, const char *s)
{
    size_t len = *w->v++;
    w->p = af__pb_put_bytes(w->p, tag, s, len);
}

static void put_opt_str(writer *w, uint8_t tag, const char *s)
{
    size_t len = *w->v++;
    if (len)
        w->p = af__pb_put_bytes(w->p, tag, s, len);
}

static void put_opt_varint(writer *w, uint8_t tag, uint64_t v)
{
    if (v) {
        *w->p++ = tag;
        w->p = af__pb_put_varint(w->p, v);
    }
}

static void put_item(writer *w, const af_attr *a, size_t i)
{
    uint8_t *p = w->p;
    switch (a->type) {
    case AF_VAL_STRING_ARRAY: {
        const char *s = ((const char *const *)a->v.arr.items)[i];
        size_t len = w->v[0];
        p = af__pb_put_ld_header(p, AF_PB_TAG(1, AF_PB_LEN), af__pb_ld_size(len));
        w->p = p;
        put_str(w, AF_PB_TAG(1, AF_PB_LEN), s);
        return;
    }
    case AF_VAL_BOOL_ARRAY:
        p = af__pb_put_ld_header(p, AF_PB_TAG(1, AF_PB_LEN), 2);
        *p++ = AF_PB_TAG(2, AF_PB_VARINT);
        *p++ = ((const bool *)a->v.arr.items)[i] ? 1 : 0;
        break;
    case AF_VAL_INT_ARRAY: {
        uint64_t v = (uint64_t)((const int64_t *)a->v.arr.items)[i];
        p = af__pb_put_ld_header(p, AF_PB_TAG(1, AF_PB_LEN), 1 + af__pb_varint_size(v));
        *p++ = AF_PB_TAG(3, AF_PB_VARINT);
        p = af__pb_put_varint(p, v);
        break;
    }
    default:
        p = af__pb_put_ld_header(p, AF_PB_TAG(1, AF_PB_LEN), 9);
        *p++ = AF_PB_TAG(4, AF_PB_I64);
        p = af__pb_put_double(p, ((const double *)a->v.arr.items)[i]);
        break;
    }
    w->p = p;
}

/* KeyValue.value (field 2): the AnyValue of an attribute. */
static void put_value(writer *w, const af_attr *a)
{
    const uint8_t tag = AF_PB_TAG(2, AF_PB_LEN);
    uint8_t *p = w->p;
    switch (a->type) {
    case AF_VAL_STRING:
        w->p = af__pb_put_ld_header(p, tag, af__pb_ld_size(w->v[0]));
        put_str(w, AF_PB_TAG(1, AF_PB_LEN), a->v.s.ptr);
        return;
    case AF_VAL_BOOL:
        p = af__pb_put_ld_header(p, tag, 2);
        *p++ = AF_PB_TAG(2, AF_PB_VARINT);
        *p++ = a->v.b ? 1 : 0;
        break;
    case AF_VAL_INT: {
        uint64_t v = (uint64_t)a->v.i;
        p = af__pb_put_ld_header(p, tag, 1 + af__pb_varint_size(v));
        *p++ = AF_PB_TAG(3, AF_PB_VARINT);
        p = af__pb_put_varint(p, v);
        break;
    }
    case AF_VAL_DOUBLE:
        p = af__pb_put_ld_header(p, tag, 9);
        *p++ = AF_PB_TAG(4, AF_PB_I64);
        p = af__pb_put_double(p, a->v.d);
        break;
    default: {
        size_t arr = *w->v++;
        p = af__pb_put_ld_header(p, tag, af__pb_ld_size(arr));
        w->p = af__pb_put_ld_header(p, AF_PB_TAG(5, AF_PB_LEN), arr);
        for (size_t i = 0; i < a->v.arr.count; i++)
            put_item(w, a, i);
        return;
    }
    }
    w->p = p;
}

static void put_attrs(writer *w, uint8_t tag, const af_attr *attrs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        w->p = af__pb_put_ld_header(w->p, tag, *w->v++);
        put_opt_str(w, AF_PB_TAG(1, AF_PB_LEN), attrs[i].key);
        put_value(w, &attrs[i]);
    }
}

static uint32_t span_flags(uint8_t trace_flags, bool is_remote)
{
    return trace_flags | SPAN_FLAGS_HAS_IS_REMOTE | (is_remote ? SPAN_FLAGS_IS_REMOTE : 0);
}

static void put_ids(writer *w, const uint8_t trace_id[16], const uint8_t span_id[8])
{
    w->p = af__pb_put_bytes(w->p, AF_PB_TAG(1, AF_PB_LEN), trace_id, 16);
    w->p = af__pb_put_bytes(w->p, AF_PB_TAG(2, AF_PB_LEN), span_id, 8);
}

static void put_fixed64_field(writer *w, uint8_t tag, uint64_t v)
{
    if (v) {
        *w->p++ = tag;
        w->p = af__pb_put_fixed64(w->p, v);
    }
}

static void put_span(writer *w, const af_span_data *s)
{
    w->p = af__pb_put_ld_header(w->p, AF_PB_TAG(2, AF_PB_LEN), *w->v++);
    put_ids(w, s->trace_id, s->span_id);
    put_opt_str(w, AF_PB_TAG(3, AF_PB_LEN), s->trace_state);
    if (s->has_parent)
        w->p = af__pb_put_bytes(w->p, AF_PB_TAG(4, AF_PB_LEN), s->parent_span_id, 8);
    put_opt_str(w, AF_PB_TAG(5, AF_PB_LEN), s->name);
    put_opt_varint(w, AF_PB_TAG(6, AF_PB_VARINT), af__pb_int32_bits((int32_t)s->kind));
    put_fixed64_field(w, AF_PB_TAG(7, AF_PB_I64), s->start_ns);
    put_fixed64_field(w, AF_PB_TAG(8, AF_PB_I64), s->end_ns);
    put_attrs(w, AF_PB_TAG(9, AF_PB_LEN), s->attrs, s->n_attrs);
    put_opt_varint(w, AF_PB_TAG(10, AF_PB_VARINT), s->dropped_attrs);
    for (uint32_t i = 0; i < s->n_events; i++) {
        const af_event_data *e = &s->events[i];
        w->p = af__pb_put_ld_header(w->p, AF_PB_TAG(11, AF_PB_LEN), *w->v++);
        put_fixed64_field(w, AF_PB_TAG(1, AF_PB_I64), e->time_ns);
        put_opt_str(w, AF_PB_TAG(2, AF_PB_LEN), e->name);
        put_attrs(w, AF_PB_TAG(3, AF_PB_LEN), e->attrs, e->n_attrs);
        put_opt_varint(w, AF_PB_TAG(4, AF_PB_VARINT), e->dropped_attrs);
    }
    put_opt_varint(w, AF_PB_TAG(12, AF_PB_VARINT), s->dropped_events);
    for (uint32_t i = 0; i < s->n_links; i++) {
        const af_link_data *l = &s->links[i];
        w->p = af__pb_put_ld_header(w->p, AF_PB_TAG(13, AF_PB_LEN), *w->v++);
        put_ids(w, l->trace_id, l->span_id);
        put_opt_str(w, AF_PB_TAG(3, AF_PB_LEN), l->trace_state);
        put_attrs(w, AF_PB_TAG(4, AF_PB_LEN), l->attrs, l->n_attrs);
        put_opt_varint(w, AF_PB_TAG(5, AF_PB_VARINT), l->dropped_attrs);
        *w->p++ = AF_PB_TAG(6, AF_PB_I32);
        w->p = af__pb_put_fixed32(w->p, span_flags(l->trace_flags, l->is_remote));
    }
    put_opt_varint(w, AF_PB_TAG(14, AF_PB_VARINT), s->dropped_links);
    if (s->status != AF_STATUS_UNSET) {
        uint64_t code = af__pb_int32_bits((int32_t)s->status);
        size_t msg = s->status == AF_STATUS_ERROR ? w->v[0] : 0;
        w->p = af__pb_put_ld_header(w->p, AF_PB_TAG(15, AF_PB_LEN),
                                    opt_str_size(msg) + opt_varint_size(code));
        if (s->status == AF_STATUS_ERROR)
            put_opt_str(w, AF_PB_TAG(2, AF_PB_LEN), s->status_message);
        put_opt_varint(w, AF_PB_TAG(3, AF_PB_VARINT), code);
    }
    /* Field 16 takes a two-byte tag. */
    *w->p++ = AF_PB_TAG(16, AF_PB_I32) | 0x80;
    *w->p++ = 16 >> 4;
    w->p = af__pb_put_fixed32(w->p, span_flags(s->trace_flags, s->parent_is_remote));
}

static void put_scope_spans(writer *w, const af__otlp_groups *g, size_t k)
{
    const af__otlp_group *gr = &g->groups[k];
    const af_instrumentation_scope *sc = gr->scope;
    w->p = af__pb_put_ld_header(w->p, AF_PB_TAG(2, AF_PB_LEN), w->v[0]);
    w->p = af__pb_put_ld_header(w->p, AF_PB_TAG(1, AF_PB_LEN), w->v[1]);
    size_t name = w->v[2], version = w->v[3];
    const size_t *url = &w->v[4];
    w->v += 5;
    if (name)
        w->p = af__pb_put_bytes(w->p, AF_PB_TAG(1, AF_PB_LEN), sc->name, name);
    if (version)
        w->p = af__pb_put_bytes(w->p, AF_PB_TAG(2, AF_PB_LEN), sc->version, version);
    if (sc)
        put_attrs(w, AF_PB_TAG(3, AF_PB_LEN), sc->attrs, sc->n_attrs);
    for (size_t j = 0; j < gr->count; j++)
        put_span(w, g->order[gr->first + j]);
    if (*url)
        w->p = af__pb_put_bytes(w->p, AF_PB_TAG(3, AF_PB_LEN), sc->schema_url, *url);
}

static size_t put_resource_spans(writer *w, const af__otlp_groups *g, size_t k)
{
    const af_resource *r = g->groups[k].resource;
    w->p = af__pb_put_ld_header(w->p, AF_PB_TAG(1, AF_PB_LEN), w->v[0]);
    w->p = af__pb_put_ld_header(w->p, AF_PB_TAG(1, AF_PB_LEN), w->v[1]);
    size_t url = w->v[2];
    w->v += 3;
    if (r) {
        size_t nr = 0;
        const af_attr *ra = af_resource_attrs(r, &nr);
        put_attrs(w, AF_PB_TAG(1, AF_PB_LEN), ra, nr);
    }
    size_t j = k;
    do
        put_scope_spans(w, g, j++);
    while (j < g->n_groups && !g->groups[j].new_resource);
    if (url)
        w->p = af__pb_put_bytes(w->p, AF_PB_TAG(3, AF_PB_LEN), af_resource_schema_url(r), url);
    return j;
}

int af__otlp_proto_encode(const af_span_data *const *spans, size_t n, af_buf *out)
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

    /* About 24 slots per span of the usual shape; take() doubles it when short. */
    sizes z = {.cap = 32 * n + 16};
    z.v = malloc(z.cap * sizeof(*z.v));
    if (!z.v) {
        af__otlp_groups_free(&g);
        return -ENOMEM;
    }
    size_t total = 0;
    for (size_t k = 0; k < g.n_groups;)
        total += measure_resource_spans(&z, &g, k, &k);

    if (z.failed || !af__buf_reserve(out, total)) {
        rc = -ENOMEM;
    } else {
        writer w = {out->data + out->len, z.v};
        for (size_t k = 0; k < g.n_groups;)
            k = put_resource_spans(&w, &g, k);
        out->len += total;
    }
    free(z.v);
    af__otlp_groups_free(&g);
    return rc;
}
