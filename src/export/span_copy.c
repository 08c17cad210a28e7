/*
 * Deep copies of span data, for exporters that keep spans after export() returns (the
 * memory exporter and the daemon's trace store). One copy is a single malloc'd block plus
 * its own resource; it is reference counted so readers can hold spans while the ring moves.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/export.h"
#include "util/str.h"

struct af_span_copy {
    _Atomic uint32_t refs;
    af_span_data data;
    af_instrumentation_scope scope;
    af_resource *resource;
    char *block; /* every string and array of the copy */
};

/* A two-pass copier: the first pass (out == NULL) only measures. */
typedef struct copier {
    char *base;
    size_t used;
} copier;

static void *take(copier *c, size_t n, size_t align)
{
    c->used = (c->used + align - 1) & ~(align - 1);
    void *p = c->base ? c->base + c->used : NULL;
    c->used += n;
    return p;
}

static const char *copy_str(copier *c, const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s) + 1;
    char *p = take(c, n, 1);
    if (p)
        memcpy(p, s, n);
    return p ? p : s;
}

static const af_attr *copy_attrs(copier *c, const af_attr *in, uint32_t n)
{
    if (n == 0)
        return NULL;
    af_attr *out = take(c, n * sizeof(af_attr), _Alignof(af_attr));
    for (uint32_t i = 0; i < n; i++) {
        af_attr a = in[i];
        a.key = copy_str(c, in[i].key);
        switch (in[i].type) {
        case AF_VAL_STRING: {
            char *p = take(c, in[i].v.s.len + 1, 1);
            if (p) {
                memcpy(p, in[i].v.s.ptr, in[i].v.s.len);
                p[in[i].v.s.len] = '\0';
                a.v.s.ptr = p;
            }
            break;
        }
        case AF_VAL_STRING_ARRAY: {
            const char *const *src = in[i].v.arr.items;
            const char **items =
                take(c, (in[i].v.arr.count + 1) * sizeof(char *), _Alignof(char *));
            for (size_t k = 0; k < in[i].v.arr.count; k++) {
                const char *e = copy_str(c, src[k]);
                if (items)
                    items[k] = e;
            }
            a.v.arr.items = items;
            break;
        }
        case AF_VAL_BOOL_ARRAY:
        case AF_VAL_INT_ARRAY:
        case AF_VAL_DOUBLE_ARRAY: {
            size_t elem = in[i].type == AF_VAL_BOOL_ARRAY  ? sizeof(bool)
                          : in[i].type == AF_VAL_INT_ARRAY ? sizeof(int64_t)
                                                           : sizeof(double);
            void *p = take(c, in[i].v.arr.count * elem + 1, 8);
            if (p && in[i].v.arr.count)
                memcpy(p, in[i].v.arr.items, in[i].v.arr.count * elem);
            a.v.arr.items = p;
            break;
        }
        default:
            break;
        }
        if (out)
            out[i] = a;
    }
    return out;
}

static void copy_span(copier *c, af_span_data *dst, const af_span_data *src)
{
    *dst = *src;
    dst->trace_state = copy_str(c, src->trace_state);
    dst->name = copy_str(c, src->name);
    dst->status_message = copy_str(c, src->status_message);
    dst->attrs = copy_attrs(c, src->attrs, src->n_attrs);
    af_event_data *ev =
        src->n_events ? take(c, src->n_events * sizeof(af_event_data), _Alignof(af_event_data))
                      : NULL;
    for (uint32_t i = 0; i < src->n_events; i++) {
        af_event_data e = src->events[i];
        e.name = copy_str(c, src->events[i].name);
        e.attrs = copy_attrs(c, src->events[i].attrs, src->events[i].n_attrs);
        if (ev)
            ev[i] = e;
    }
    dst->events = ev;
    af_link_data *lk =
        src->n_links ? take(c, src->n_links * sizeof(af_link_data), _Alignof(af_link_data)) : NULL;
    for (uint32_t i = 0; i < src->n_links; i++) {
        af_link_data l = src->links[i];
        l.trace_state = copy_str(c, src->links[i].trace_state);
        l.attrs = copy_attrs(c, src->links[i].attrs, src->links[i].n_attrs);
        if (lk)
            lk[i] = l;
    }
    dst->links = lk;
}

af_span_copy *af_span_copy_new(const af_span_data *span)
{
    af_span_copy *cp = calloc(1, sizeof(*cp));
    if (!cp)
        return NULL;
    copier measure = {NULL, 0};
    af_span_data scratch;
    copy_span(&measure, &scratch, span);
    const af_instrumentation_scope *sc = span->scope;
    copy_str(&measure, sc ? sc->name : "");
    copy_str(&measure, sc ? sc->version : "");
    copy_str(&measure, sc ? sc->schema_url : "");
    cp->block = malloc(measure.used ? measure.used : 1);
    if (!cp->block)
        goto fail;
    copier real = {cp->block, 0};
    copy_span(&real, &cp->data, span);
    cp->scope.name = copy_str(&real, sc ? sc->name : "");
    cp->scope.version = copy_str(&real, sc ? sc->version : "");
    cp->scope.schema_url = copy_str(&real, sc ? sc->schema_url : "");
    cp->data.scope = &cp->scope;
    if (span->resource) {
        size_t n;
        const af_attr *ra = af_resource_attrs(span->resource, &n);
        if (af_resource_new_raw(ra, n, &cp->resource) != 0)
            goto fail;
        const char *url = af_resource_schema_url(span->resource);
        if (url && url[0] && af_resource_set_schema_url(cp->resource, url) != 0)
            goto fail;
    }
    cp->data.resource = cp->resource;
    atomic_init(&cp->refs, 1);
    return cp;
fail:
    af_resource_free(cp->resource);
    free(cp->block);
    free(cp);
    return NULL;
}

const af_span_data *af_span_copy_data(const af_span_copy *c)
{
    return &c->data;
}

void af_span_copy_retain(af_span_copy *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void af_span_copy_release(af_span_copy *c)
{
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    af_resource_free(c->resource);
    free(c->block);
    free(c);
}
