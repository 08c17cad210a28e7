/*
 * Deep copies of span data, for exporters that keep spans after export() returns (the
 * memory exporter and the daemon's trace store). One copy is a single malloc'd block (the
 * header followed by every string and array); it is reference counted so readers can hold
 * spans while the ring moves.
 *
 * Spans of one process nearly always carry the same resource, so copies share resource
 * copies through a small cache keyed by content: copying the resource for every span cost
 * a couple of dozen small allocations per span on the export thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/export.h"
#include "trace/fork.h"
#include "util/str.h"

/* A resource copy shared by span copies. */
typedef struct shared_res {
    _Atomic uint32_t refs;
    af_resource *res;
} shared_res;

struct af_span_copy {
    _Atomic uint32_t refs;
    size_t bytes; /* the whole allocation: this header, strings and arrays */
    af_span_data data;
    af_instrumentation_scope scope;
    shared_res *resource;
    /* the copied strings and arrays follow, in the same allocation */
};

#define RES_CACHE 4
static pthread_mutex_t res_mu = PTHREAD_MUTEX_INITIALIZER;
static shared_res *res_cache[RES_CACHE]; /* each slot holds one reference */
static unsigned res_next;

/* Fork: a parent thread copying a span may hold res_mu at fork(), which left the child's
 * first copy (its memory exporter's first export) blocked forever. res_mu nests inside
 * exporter and processor locks, so it is a last-rank participant (trace/fork.h): fork.c
 * takes it after them, never before. */
static void res_prepare(void *self)
{
    (void)self;
    pthread_mutex_lock(&res_mu);
}

static void res_parent(void *self)
{
    (void)self;
    pthread_mutex_unlock(&res_mu);
}

static void res_child(void *self)
{
    (void)self;
    pthread_mutex_init(&res_mu, NULL); /* the thread that held it does not exist here */
}

static af__fork_participant res_fork = {res_prepare, res_parent, res_child, NULL, NULL};
static pthread_once_t res_fork_once = PTHREAD_ONCE_INIT;

static void res_fork_install(void)
{
    af__fork_register(&res_fork, AF__FORK_LEAF);
}

static void shared_release(shared_res *sr)
{
    if (sr && atomic_fetch_sub_explicit(&sr->refs, 1, memory_order_acq_rel) == 1) {
        af_resource_free(sr->res);
        free(sr);
    }
}

static bool value_equal(const af_attr *a, const af_attr *b)
{
    if (a->type != b->type || strcmp(a->key, b->key) != 0)
        return false;
    switch (a->type) {
    case AF_VAL_STRING:
        return a->v.s.len == b->v.s.len && memcmp(a->v.s.ptr, b->v.s.ptr, a->v.s.len) == 0;
    case AF_VAL_BOOL:
        return a->v.b == b->v.b;
    case AF_VAL_INT:
        return a->v.i == b->v.i;
    case AF_VAL_DOUBLE:
        return memcmp(&a->v.d, &b->v.d, sizeof(double)) == 0;
    case AF_VAL_STRING_ARRAY:
        if (a->v.arr.count != b->v.arr.count)
            return false;
        for (size_t i = 0; i < a->v.arr.count; i++)
            if (strcmp(((const char *const *)a->v.arr.items)[i],
                       ((const char *const *)b->v.arr.items)[i]) != 0)
                return false;
        return true;
    default: {
        size_t elem = a->type == AF_VAL_BOOL_ARRAY  ? sizeof(bool)
                      : a->type == AF_VAL_INT_ARRAY ? sizeof(int64_t)
                                                    : sizeof(double);
        return a->v.arr.count == b->v.arr.count &&
               (a->v.arr.count == 0 ||
                memcmp(a->v.arr.items, b->v.arr.items, a->v.arr.count * elem) == 0);
    }
    }
}

static bool resource_equal(const af_resource *a, const af_resource *b)
{
    size_t na, nb;
    const af_attr *aa = af_resource_attrs(a, &na);
    const af_attr *ba = af_resource_attrs(b, &nb);
    if (na != nb || strcmp(af_resource_schema_url(a), af_resource_schema_url(b)) != 0)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!value_equal(&aa[i], &ba[i]))
            return false;
    return true;
}

/* A shared copy of `src` with one reference for the caller; NULL on ENOMEM. */
static shared_res *shared_resource(const af_resource *src)
{
    pthread_once(&res_fork_once, res_fork_install);
    pthread_mutex_lock(&res_mu);
    for (unsigned i = 0; i < RES_CACHE; i++) {
        shared_res *sr = res_cache[i];
        if (sr && resource_equal(sr->res, src)) {
            atomic_fetch_add_explicit(&sr->refs, 1, memory_order_relaxed);
            pthread_mutex_unlock(&res_mu);
            return sr;
        }
    }
    pthread_mutex_unlock(&res_mu);

    shared_res *sr = malloc(sizeof(*sr));
    if (!sr)
        return NULL;
    size_t n;
    const af_attr *ra = af_resource_attrs(src, &n);
    const char *url = af_resource_schema_url(src);
    if (af_resource_new_raw(ra, n, &sr->res) != 0) {
        free(sr);
        return NULL;
    }
    if (url && url[0] && af_resource_set_schema_url(sr->res, url) != 0) {
        af_resource_free(sr->res);
        free(sr);
        return NULL;
    }
    atomic_init(&sr->refs, 2); /* the caller's and the cache's */
    pthread_mutex_lock(&res_mu);
    shared_res *victim = res_cache[res_next];
    res_cache[res_next] = sr;
    res_next = (res_next + 1) % RES_CACHE;
    pthread_mutex_unlock(&res_mu);
    shared_release(victim);
    return sr;
}

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
    copier measure = {NULL, sizeof(af_span_copy)};
    af_span_data scratch;
    copy_span(&measure, &scratch, span);
    const af_instrumentation_scope *sc = span->scope;
    copy_str(&measure, sc ? sc->name : "");
    copy_str(&measure, sc ? sc->version : "");
    copy_str(&measure, sc ? sc->schema_url : "");
    copy_attrs(&measure, sc ? sc->attrs : NULL, sc ? (uint32_t)sc->n_attrs : 0);
    af_span_copy *cp = malloc(measure.used);
    if (!cp)
        return NULL;
    memset(cp, 0, sizeof(*cp));
    copier real = {(char *)cp, sizeof(af_span_copy)};
    copy_span(&real, &cp->data, span);
    cp->scope.name = copy_str(&real, sc ? sc->name : "");
    cp->scope.version = copy_str(&real, sc ? sc->version : "");
    cp->scope.schema_url = copy_str(&real, sc ? sc->schema_url : "");
    cp->scope.n_attrs = sc ? sc->n_attrs : 0;
    cp->scope.attrs = copy_attrs(&real, sc ? sc->attrs : NULL, (uint32_t)cp->scope.n_attrs);
    cp->data.scope = &cp->scope;
    if (span->resource && !(cp->resource = shared_resource(span->resource))) {
        free(cp);
        return NULL;
    }
    cp->data.resource = cp->resource ? cp->resource->res : NULL;
    atomic_init(&cp->refs, 1);
    cp->bytes = measure.used;
    return cp;
}

const af_span_data *af_span_copy_data(const af_span_copy *c)
{
    return &c->data;
}

size_t af_span_copy_bytes(const af_span_copy *c)
{
    return c->bytes;
}

void af_span_copy_retain(af_span_copy *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void af_span_copy_release(af_span_copy *c)
{
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    shared_release(c->resource);
    free(c);
}
