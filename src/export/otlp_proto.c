/*
 * OTLP protobuf encoder: ExportTraceServiceRequest through the protobuf-c code generated from
 * proto/. The message tree is built in one allocation sized by a counting pass (no malloc per
 * field), then packed straight into the caller's buffer. Strings and attribute arrays are
 * borrowed from the span data, never copied.
 */
#include "export/encode.h"

#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest pb_request;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans pb_resource_spans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans pb_scope_spans;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event pb_event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link pb_link;
typedef Opentelemetry__Proto__Trace__V1__Status pb_status;
typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope pb_scope;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Common__V1__ArrayValue pb_array;

/* OTLP SpanFlags bits above the W3C trace flags. */
#define SPAN_FLAGS_HAS_IS_REMOTE 0x100u
#define SPAN_FLAGS_IS_REMOTE 0x200u

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

    size_t n_seen = 0, n_res = 0, hint = 0;
    for (i = 0; i < n; i++) {
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

    /* Stable order of groups by resource rank, then span offsets per group. */
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
/* Arena of message structs.                                                                 */

typedef struct arena {
    pb_resource_spans *rs;
    pb_resource_spans **rs_p;
    pb_resource *res;
    pb_scope_spans *ss;
    pb_scope_spans **ss_p;
    pb_scope *scope;
    pb_span *span;
    pb_span **span_p;
    pb_status *status;
    pb_event *ev;
    pb_event **ev_p;
    pb_link *ln;
    pb_link **ln_p;
    pb_kv *kv;
    pb_kv **kv_p;
    pb_any *any;
    pb_any **any_p;
    pb_array *arr;
    size_t *span_size; /* packed size of each span, measured once */
} arena;

typedef struct counts {
    size_t status, ev, ln, kv, any_extra, arr;
} counts;

static void count_attrs(const af_attr *a, size_t n, counts *c)
{
    c->kv += n;
    for (size_t i = 0; i < n; i++)
        if (a[i].type >= AF_VAL_STRING_ARRAY) {
            c->arr++;
            c->any_extra += a[i].v.arr.count;
        }
}

static size_t align_up(size_t v)
{
    return (v + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
}

/* Carves `count` elements of `size` bytes from the block at *off (sizing pass when base is
 * NULL). */
static void *carve(uint8_t *base, size_t *off, size_t count, size_t size)
{
    void *p = base ? base + *off : NULL;
    *off += align_up(count * size);
    return p;
}

static size_t arena_layout(arena *a, uint8_t *base, size_t n_rs, size_t n_ss, size_t n_spans,
                           const counts *c)
{
    size_t off = 0;
    a->rs = carve(base, &off, n_rs, sizeof(*a->rs));
    a->rs_p = carve(base, &off, n_rs, sizeof(*a->rs_p));
    a->res = carve(base, &off, n_rs, sizeof(*a->res));
    a->ss = carve(base, &off, n_ss, sizeof(*a->ss));
    a->ss_p = carve(base, &off, n_ss, sizeof(*a->ss_p));
    a->scope = carve(base, &off, n_ss, sizeof(*a->scope));
    a->span = carve(base, &off, n_spans, sizeof(*a->span));
    a->span_p = carve(base, &off, n_spans, sizeof(*a->span_p));
    a->status = carve(base, &off, c->status, sizeof(*a->status));
    a->ev = carve(base, &off, c->ev, sizeof(*a->ev));
    a->ev_p = carve(base, &off, c->ev, sizeof(*a->ev_p));
    a->ln = carve(base, &off, c->ln, sizeof(*a->ln));
    a->ln_p = carve(base, &off, c->ln, sizeof(*a->ln_p));
    a->kv = carve(base, &off, c->kv, sizeof(*a->kv));
    a->kv_p = carve(base, &off, c->kv, sizeof(*a->kv_p));
    a->any = carve(base, &off, c->kv + c->any_extra, sizeof(*a->any));
    a->any_p = carve(base, &off, c->any_extra, sizeof(*a->any_p));
    a->arr = carve(base, &off, c->arr, sizeof(*a->arr));
    a->span_size = carve(base, &off, n_spans, sizeof(*a->span_size));
    return off;
}

/* ---------------------------------------------------------------------------------------- */
/* Tree building. Every *_fill takes the next free slots from the arena cursors.             */

typedef struct cursor {
    size_t status, ev, ln, kv, any, any_p, arr;
} cursor;

static const pb_any any_init = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
static const pb_kv kv_init = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
static const pb_array arr_init = OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;

static pb_any *next_any(arena *a, cursor *c)
{
    pb_any *v = &a->any[c->any++];
    *v = any_init;
    return v;
}

/* protobuf-c fields are `char *`; the encoder never writes through them. */
static char *str_field(const char *s)
{
    return (char *)(s ? s : "");
}

static void fill_array(arena *a, cursor *c, pb_any *v, const af_attr *at)
{
    pb_array *arr = &a->arr[c->arr++];
    *arr = arr_init;
    size_t count = at->v.arr.count;
    arr->n_values = count;
    arr->values = &a->any_p[c->any_p];
    for (size_t i = 0; i < count; i++) {
        pb_any *e = next_any(a, c);
        switch (at->type) {
        case AF_VAL_STRING_ARRAY:
            e->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            e->string_value = str_field(((const char *const *)at->v.arr.items)[i]);
            break;
        case AF_VAL_BOOL_ARRAY:
            e->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
            e->bool_value = ((const bool *)at->v.arr.items)[i];
            break;
        case AF_VAL_INT_ARRAY:
            e->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
            e->int_value = ((const int64_t *)at->v.arr.items)[i];
            break;
        default:
            e->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
            e->double_value = ((const double *)at->v.arr.items)[i];
            break;
        }
        a->any_p[c->any_p++] = e;
    }
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    v->array_value = arr;
}

/* Fills n KeyValues and returns the pointer array for the parent's repeated field. */
static pb_kv **fill_attrs(arena *a, cursor *c, const af_attr *attrs, size_t n)
{
    pb_kv **ptrs = &a->kv_p[c->kv];
    for (size_t i = 0; i < n; i++) {
        const af_attr *at = &attrs[i];
        pb_kv *kv = &a->kv[c->kv];
        *kv = kv_init;
        kv->key = str_field(at->key);
        pb_any *v = next_any(a, c);
        switch (at->type) {
        case AF_VAL_STRING:
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            v->string_value = str_field(at->v.s.ptr);
            break;
        case AF_VAL_BOOL:
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
            v->bool_value = at->v.b;
            break;
        case AF_VAL_INT:
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
            v->int_value = at->v.i;
            break;
        case AF_VAL_DOUBLE:
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
            v->double_value = at->v.d;
            break;
        default:
            fill_array(a, c, v, at);
            break;
        }
        kv->value = v;
        ptrs[i] = kv;
        c->kv++;
    }
    return ptrs;
}

static ProtobufCBinaryData bytes_field(const uint8_t *p, size_t n)
{
    return (ProtobufCBinaryData){n, (uint8_t *)p};
}

static void fill_span(arena *a, cursor *c, pb_span *ps, const af_span_data *s)
{
    static const pb_span span_init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    static const pb_event ev_init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
    static const pb_link ln_init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
    static const pb_status status_init = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;

    *ps = span_init;
    ps->trace_id = bytes_field(s->trace_id, 16);
    ps->span_id = bytes_field(s->span_id, 8);
    ps->trace_state = str_field(s->trace_state);
    if (s->has_parent)
        ps->parent_span_id = bytes_field(s->parent_span_id, 8);
    ps->flags = s->trace_flags | SPAN_FLAGS_HAS_IS_REMOTE |
                (s->parent_is_remote ? SPAN_FLAGS_IS_REMOTE : 0);
    ps->name = str_field(s->name);
    ps->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)s->kind;
    ps->start_time_unix_nano = s->start_ns;
    ps->end_time_unix_nano = s->end_ns;
    ps->n_attributes = s->n_attrs;
    ps->attributes = fill_attrs(a, c, s->attrs, s->n_attrs);
    ps->dropped_attributes_count = s->dropped_attrs;

    ps->n_events = s->n_events;
    ps->events = &a->ev_p[c->ev];
    for (uint32_t i = 0; i < s->n_events; i++) {
        const af_event_data *e = &s->events[i];
        pb_event *pe = &a->ev[c->ev];
        *pe = ev_init;
        pe->time_unix_nano = e->time_ns;
        pe->name = str_field(e->name);
        pe->n_attributes = e->n_attrs;
        pe->attributes = fill_attrs(a, c, e->attrs, e->n_attrs);
        pe->dropped_attributes_count = e->dropped_attrs;
        a->ev_p[c->ev++] = pe;
    }
    ps->dropped_events_count = s->dropped_events;

    ps->n_links = s->n_links;
    ps->links = &a->ln_p[c->ln];
    for (uint32_t i = 0; i < s->n_links; i++) {
        const af_link_data *l = &s->links[i];
        pb_link *pl = &a->ln[c->ln];
        *pl = ln_init;
        pl->trace_id = bytes_field(l->trace_id, 16);
        pl->span_id = bytes_field(l->span_id, 8);
        pl->trace_state = str_field(l->trace_state);
        pl->n_attributes = l->n_attrs;
        pl->attributes = fill_attrs(a, c, l->attrs, l->n_attrs);
        pl->dropped_attributes_count = l->dropped_attrs;
        pl->flags =
            l->trace_flags | SPAN_FLAGS_HAS_IS_REMOTE | (l->is_remote ? SPAN_FLAGS_IS_REMOTE : 0);
        a->ln_p[c->ln++] = pl;
    }
    ps->dropped_links_count = s->dropped_links;

    /* Unset is the default and is left out; the description only accompanies Error. */
    if (s->status != AF_STATUS_UNSET) {
        pb_status *st = &a->status[c->status++];
        *st = status_init;
        st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)s->status;
        if (s->status == AF_STATUS_ERROR)
            st->message = str_field(s->status_message);
        ps->status = st;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Packing. protobuf_c_message_pack() measures every sub-message again at each nesting level
 * to write its length prefix, so packing the whole request measures an attribute value six
 * times. The three envelope levels (request, ResourceSpans, ScopeSpans) hold only nested
 * messages and a schema URL, so they are written here from sizes measured once, and
 * protobuf-c packs the Resource, InstrumentationScope and Span messages inside them. The
 * bytes are identical to packing the request in one call. */

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Size of a length-delimited field with a one-byte tag. */
static size_t ld_size(size_t len)
{
    return 1 + varint_size(len) + len;
}

static size_t str_ld_size(const char *s)
{
    size_t len = strlen(s);
    return len ? ld_size(len) : 0;
}

static uint8_t *put_ld_header(uint8_t *p, uint8_t tag, size_t len)
{
    *p++ = tag;
    return put_varint(p, len);
}

static uint8_t *put_str_field(uint8_t *p, uint8_t tag, const char *s)
{
    size_t len = strlen(s);
    if (!len)
        return p;
    p = put_ld_header(p, tag, len);
    memcpy(p, s, len);
    return p + len;
}

static uint8_t *put_message(uint8_t *p, uint8_t tag, const ProtobufCMessage *m, size_t len)
{
    p = put_ld_header(p, tag, len);
    return p + protobuf_c_message_pack(m, p);
}

/* Tags of the envelope fields (field number << 3 | wire type 2). */
#define TAG_1 0x0A
#define TAG_2 0x12
#define TAG_3 0x1A

static size_t scope_spans_size(const pb_scope_spans *ss, const size_t *span_size, size_t *sc_len)
{
    *sc_len = protobuf_c_message_get_packed_size(&ss->scope->base);
    size_t len = ld_size(*sc_len) + str_ld_size(ss->schema_url);
    for (size_t i = 0; i < ss->n_spans; i++)
        len += ld_size(span_size[i]);
    return len;
}

static int pack_request(const pb_request *req, size_t *span_size, af_buf *out)
{
    /* Measure: every span once, then the envelope from those sizes. */
    size_t total = 0, si = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const pb_resource_spans *rs = req->resource_spans[r];
        size_t rs_len = ld_size(protobuf_c_message_get_packed_size(&rs->resource->base)) +
                        str_ld_size(rs->schema_url);
        for (size_t k = 0; k < rs->n_scope_spans; k++) {
            const pb_scope_spans *ss = rs->scope_spans[k];
            for (size_t i = 0; i < ss->n_spans; i++)
                span_size[si + i] = protobuf_c_message_get_packed_size(&ss->spans[i]->base);
            size_t sc_len;
            rs_len += ld_size(scope_spans_size(ss, &span_size[si], &sc_len));
            si += ss->n_spans;
        }
        total += ld_size(rs_len);
    }
    if (!af__buf_reserve(out, total))
        return -ENOMEM;

    uint8_t *p = out->data + out->len;
    si = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const pb_resource_spans *rs = req->resource_spans[r];
        size_t res_len = protobuf_c_message_get_packed_size(&rs->resource->base);
        size_t rs_len = ld_size(res_len) + str_ld_size(rs->schema_url);
        size_t first_si = si;
        for (size_t k = 0; k < rs->n_scope_spans; k++) {
            size_t sc_len;
            rs_len += ld_size(scope_spans_size(rs->scope_spans[k], &span_size[si], &sc_len));
            si += rs->scope_spans[k]->n_spans;
        }
        si = first_si;
        p = put_ld_header(p, TAG_1, rs_len);
        p = put_message(p, TAG_1, &rs->resource->base, res_len);
        for (size_t k = 0; k < rs->n_scope_spans; k++) {
            const pb_scope_spans *ss = rs->scope_spans[k];
            size_t sc_len;
            size_t ss_len = scope_spans_size(ss, &span_size[si], &sc_len);
            p = put_ld_header(p, TAG_2, ss_len);
            p = put_message(p, TAG_1, &ss->scope->base, sc_len);
            for (size_t i = 0; i < ss->n_spans; i++, si++)
                p = put_message(p, TAG_2, &ss->spans[i]->base, span_size[si]);
            p = put_str_field(p, TAG_3, ss->schema_url);
        }
        p = put_str_field(p, TAG_3, rs->schema_url);
    }
    out->len = (size_t)(p - out->data);
    return 0;
}

int af__otlp_proto_encode(const af_span_data *const *spans, size_t n, af_buf *out)
{
    static const pb_request req_init =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    static const pb_resource_spans rs_init = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    static const pb_resource res_init = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    static const pb_scope_spans ss_init = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    static const pb_scope scope_init =
        OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;

    if ((!spans && n) || !out)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!spans[i])
            return -EINVAL;

    af__otlp_groups g;
    int rc = af__otlp_groups_build(spans, n, &g);
    if (rc)
        return rc;

    /* Counting pass: sizes of every array in the arena. */
    counts cnt = {0};
    for (size_t k = 0; k < g.n_groups; k++) {
        if (g.groups[k].new_resource && g.groups[k].resource) {
            size_t nr = 0;
            const af_attr *ra = af_resource_attrs(g.groups[k].resource, &nr);
            count_attrs(ra, nr, &cnt);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const af_span_data *s = spans[i];
        count_attrs(s->attrs, s->n_attrs, &cnt);
        cnt.status += s->status != AF_STATUS_UNSET;
        cnt.ev += s->n_events;
        for (uint32_t e = 0; e < s->n_events; e++)
            count_attrs(s->events[e].attrs, s->events[e].n_attrs, &cnt);
        cnt.ln += s->n_links;
        for (uint32_t l = 0; l < s->n_links; l++)
            count_attrs(s->links[l].attrs, s->links[l].n_attrs, &cnt);
    }

    arena a;
    size_t sz = arena_layout(&a, NULL, g.n_resources, g.n_groups, n, &cnt);
    uint8_t *mem = malloc(sz ? sz : 1);
    if (!mem) {
        af__otlp_groups_free(&g);
        return -ENOMEM;
    }
    arena_layout(&a, mem, g.n_resources, g.n_groups, n, &cnt);

    cursor c = {0};
    pb_request req = req_init;
    req.resource_spans = a.rs_p;
    pb_resource_spans *cur_rs = NULL;
    size_t span_i = 0;
    for (size_t k = 0; k < g.n_groups; k++) {
        const af__otlp_group *gr = &g.groups[k];
        if (gr->new_resource) {
            cur_rs = &a.rs[req.n_resource_spans];
            *cur_rs = rs_init;
            pb_resource *res = &a.res[req.n_resource_spans];
            *res = res_init;
            if (gr->resource) {
                size_t nr = 0;
                const af_attr *ra = af_resource_attrs(gr->resource, &nr);
                res->n_attributes = nr;
                res->attributes = fill_attrs(&a, &c, ra, nr);
                cur_rs->schema_url = str_field(af_resource_schema_url(gr->resource));
            }
            cur_rs->resource = res;
            cur_rs->scope_spans = &a.ss_p[k];
            a.rs_p[req.n_resource_spans++] = cur_rs;
        }
        pb_scope_spans *ss = &a.ss[k];
        *ss = ss_init;
        pb_scope *sc = &a.scope[k];
        *sc = scope_init;
        if (gr->scope) {
            sc->name = str_field(gr->scope->name);
            sc->version = str_field(gr->scope->version);
            ss->schema_url = str_field(gr->scope->schema_url);
        }
        ss->scope = sc;
        ss->n_spans = gr->count;
        ss->spans = &a.span_p[span_i];
        for (size_t j = 0; j < gr->count; j++, span_i++) {
            fill_span(&a, &c, &a.span[span_i], g.order[gr->first + j]);
            a.span_p[span_i] = &a.span[span_i];
        }
        a.ss_p[k] = ss;
        cur_rs->n_scope_spans++;
    }

    rc = pack_request(&req, a.span_size, out);
    free(mem);
    af__otlp_groups_free(&g);
    return rc;
}
