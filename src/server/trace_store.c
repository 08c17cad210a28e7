/*
 * The in-process trace store: a memory exporter (bounded ring of span copies) behind a thin
 * exporter that times each export, queried by grouping the held spans by trace id. A trace's
 * cost_usd is the sum of its spans' agentaflow.cost.usd.
 *
 * Lifetime: the exporter (owned by the tracing integration) and the store handle (owned by
 * the caller) share one refcounted state, so either may be freed first. Once the exporter is
 * gone the store answers as if empty.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/log.h"
#include "server/trace_store_int.h"
#include "util/timeutil.h"
#include "util/buf.h"

typedef struct shared {
    pthread_mutex_t mu;
    atomic_uint refs;
    af_exporter *inner;      /* the memory exporter; NULL once destroyed */
    af_memory_exporter *mem; /* its handle */
    af__hist export_hist;
    size_t cap;
    size_t max_bytes;
} shared;

struct af_trace_store {
    shared *sh;
};

static void shared_unref(shared *sh)
{
    if (atomic_fetch_sub(&sh->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

static int st_export(void *self, const af_span_data *const *spans, size_t n, uint64_t deadline)
{
    shared *sh = self;
    uint64_t t0 = af_monotonic_ns();
    int rc = af_exporter_export(sh->inner, spans, n, deadline);
    double secs = (double)(af_monotonic_ns() - t0) / 1e9;
    pthread_mutex_lock(&sh->mu);
    af__hist_observe(&sh->export_hist, secs, NULL);
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

static void st_destroy(void *self)
{
    shared *sh = self;
    pthread_mutex_lock(&sh->mu);
    af_exporter *inner = sh->inner;
    sh->inner = NULL;
    sh->mem = NULL;
    pthread_mutex_unlock(&sh->mu);
    af_exporter_free(inner);
    shared_unref(sh);
}

static void st_health(void *self, af_exporter_health *out)
{
    shared *sh = self;
    pthread_mutex_lock(&sh->mu);
    if (sh->inner)
        af_exporter_health_get(sh->inner, out);
    pthread_mutex_unlock(&sh->mu);
    snprintf(out->type, sizeof(out->type), "trace_store");
}

static const af_exporter_ops store_ops = {
    .type = "trace_store",
    .export_spans = st_export,
    .destroy = st_destroy,
    .health = st_health,
};

int af_trace_store_new(size_t max_spans, size_t max_bytes, af_exporter **exporter,
                       af_trace_store **out)
{
    *exporter = NULL;
    *out = NULL;
    shared *sh = calloc(1, sizeof(*sh));
    af_trace_store *st = calloc(1, sizeof(*st));
    int rc = -ENOMEM;
    if (!sh || !st)
        goto fail;
    pthread_mutex_init(&sh->mu, NULL);
    atomic_init(&sh->refs, 2);
    sh->cap = max_spans ? max_spans : 8192;
    af__hist_init(&sh->export_hist, af__latency_bounds, af__latency_nbounds);
    sh->max_bytes = max_bytes ? max_bytes : (size_t)64 << 20;
    rc = af_memory_exporter_new(sh->cap, &sh->inner, &sh->mem);
    if (rc != 0) {
        pthread_mutex_destroy(&sh->mu);
        goto fail;
    }
    /* The span count alone let 8192 spans with megabyte attributes hold gigabytes. */
    af_memory_exporter_set_max_bytes(sh->mem, sh->max_bytes);
    rc = af_exporter_new(&store_ops, sh, exporter);
    if (rc != 0) {
        /* af_exporter_new ran destroy (dropping one ref); the store's ref remains. */
        free(st);
        shared_unref(sh);
        return rc;
    }
    st->sh = sh;
    *out = st;
    return 0;
fail:
    free(sh);
    free(st);
    return rc;
}

void af_trace_store_free(af_trace_store *s)
{
    if (!s)
        return;
    shared_unref(s->sh);
    free(s);
}

size_t af_trace_store_span_count(af_trace_store *s)
{
    pthread_mutex_lock(&s->sh->mu);
    size_t n = s->sh->mem ? af_memory_exporter_count(s->sh->mem) : 0;
    pthread_mutex_unlock(&s->sh->mu);
    return n;
}

size_t af_trace_store_bytes(af_trace_store *s)
{
    pthread_mutex_lock(&s->sh->mu);
    size_t n = s->sh->mem ? af_memory_exporter_bytes(s->sh->mem) : 0;
    pthread_mutex_unlock(&s->sh->mu);
    return n;
}

size_t af_trace_store_max_bytes(af_trace_store *s)
{
    return s->sh->max_bytes;
}

void af__trace_store_export_hist(af_trace_store *s, af__hist *out)
{
    pthread_mutex_lock(&s->sh->mu);
    *out = s->sh->export_hist;
    pthread_mutex_unlock(&s->sh->mu);
}

void af_trace_query_init(af_trace_query *q)
{
    memset(q, 0, sizeof(*q));
    q->error = -1;
    q->limit = 50;
}

/* Snapshot under the lock so the exporter cannot be destroyed meanwhile. */
static size_t snapshot(af_trace_store *s, af_span_copy ***out)
{
    *out = NULL;
    pthread_mutex_lock(&s->sh->mu);
    size_t n = 0;
    if (s->sh->mem) {
        af_span_copy **arr = malloc(sizeof(*arr) * s->sh->cap);
        if (arr) {
            n = af_memory_exporter_snapshot(s->sh->mem, arr, s->sh->cap);
            *out = arr;
        }
    }
    pthread_mutex_unlock(&s->sh->mu);
    return n;
}

static void release_all(af_span_copy **arr, size_t n)
{
    for (size_t i = 0; i < n; i++)
        af_span_copy_release(arr[i]);
    free(arr);
}

static int by_trace_then_start(const void *a, const void *b)
{
    const af_span_data *x = af_span_copy_data(*(af_span_copy *const *)a);
    const af_span_data *y = af_span_copy_data(*(af_span_copy *const *)b);
    int c = memcmp(x->trace_id, y->trace_id, 16);
    if (c)
        return c;
    return x->start_ns < y->start_ns ? -1 : x->start_ns > y->start_ns;
}

static const char *service_of(const af_span_data *d)
{
    const char *s = d->resource ? af_resource_get_string(d->resource, "service.name") : NULL;
    return s ? s : "";
}

/* What a span says it cost: its agentaflow.cost.usd attribute (the serving gateway puts it
 * on model_serving.inference only, so a trace's sum counts each call once); 0 without. */
static double span_cost(const af_span_data *d)
{
    for (uint32_t i = 0; i < d->n_attrs; i++) {
        const af_attr *a = &d->attrs[i];
        if (strcmp(a->key, "agentaflow.cost.usd") != 0)
            continue;
        if (a->type == AF_VAL_DOUBLE && isfinite(a->v.d))
            return a->v.d;
        if (a->type == AF_VAL_INT)
            return (double)a->v.i;
    }
    return 0;
}

typedef struct group {
    size_t first, n;
    size_t root; /* index into the sorted array */
    uint64_t start, end;
    bool error;
    double cost_usd; /* the spans' agentaflow.cost.usd, summed */
} group;

static int by_start_desc(const void *a, const void *b)
{
    const group *x = a, *y = b;
    return x->start > y->start ? -1 : x->start < y->start;
}

/* Groups arr (sorted by trace, then start) into traces; g holds room for n groups. */
static size_t group_traces(af_span_copy **arr, size_t n, group *g)
{
    size_t ng = 0;
    for (size_t i = 0; i < n;) {
        const af_span_data *d0 = af_span_copy_data(arr[i]);
        group *gr = &g[ng++];
        memset(gr, 0, sizeof(*gr));
        gr->first = i;
        gr->root = i;
        gr->start = d0->start_ns;
        size_t j = i;
        bool have_root = false;
        for (; j < n; j++) {
            const af_span_data *d = af_span_copy_data(arr[j]);
            if (memcmp(d->trace_id, d0->trace_id, 16) != 0)
                break;
            if (d->start_ns < gr->start)
                gr->start = d->start_ns;
            if (d->end_ns > gr->end)
                gr->end = d->end_ns;
            if (d->status == AF_STATUS_ERROR)
                gr->error = true;
            gr->cost_usd += span_cost(d);
            /* The local root: no parent, or a parent from another process. */
            if (!have_root && (!d->has_parent || d->parent_is_remote)) {
                gr->root = j;
                have_root = true;
            }
        }
        gr->n = j - i;
        i = j;
    }
    return ng;
}

/* Whether the trace gr passes the query's filters. */
static bool group_matches(af_span_copy **arr, const group *gr, const af_trace_query *q)
{
    if (q->error >= 0 && gr->error != (q->error == 1))
        return false;
    if (q->min_duration_ns && gr->end - gr->start < q->min_duration_ns)
        return false;
    bool svc_ok = !q->service, op_ok = !q->operation;
    for (size_t j = gr->first; j < gr->first + gr->n; j++) {
        const af_span_data *d = af_span_copy_data(arr[j]);
        if (!svc_ok && strcmp(service_of(d), q->service) == 0)
            svc_ok = true;
        if (!op_ok && strstr(d->name, q->operation))
            op_ok = true;
    }
    return svc_ok && op_ok;
}

/* One trace summary object; comma says whether one precedes it. */
static void render_group(af_buf *b, af_span_copy **arr, const group *gr, bool comma)
{
    const af_span_data *root = af_span_copy_data(arr[gr->root]);
    char tid[33], ts[40];
    af_trace_id_to_hex(root->trace_id, tid);
    af__fmt_rfc3339(gr->start, 9, ts);
    af__buf_printf(b, "%s{\"trace_id\":\"%s\",\"root_name\":", comma ? "," : "", tid);
    af__buf_json_string(b, root->name, strlen(root->name));
    af__buf_puts(b, ",\"service\":");
    af__buf_json_string(b, service_of(root), strlen(service_of(root)));
    af__buf_printf(b,
                   ",\"start_time\":\"%s\",\"start_time_unix_nano\":%llu,\"duration_ms\":%.3f,"
                   "\"span_count\":%zu,\"error\":%s,\"cost_usd\":%.10g,\"services\":[",
                   ts, (unsigned long long)gr->start, (double)(gr->end - gr->start) / 1e6, gr->n,
                   gr->error ? "true" : "false", gr->cost_usd);
    /* Distinct services, in order of first span. */
    size_t nsv = 0;
    for (size_t j = gr->first; j < gr->first + gr->n; j++) {
        const char *sv = service_of(af_span_copy_data(arr[j]));
        bool dup = false;
        for (size_t x = gr->first; x < j && !dup; x++)
            dup = strcmp(service_of(af_span_copy_data(arr[x])), sv) == 0;
        if (dup)
            continue;
        if (nsv++)
            af__buf_putc(b, ',');
        af__buf_json_string(b, sv, strlen(sv));
    }
    af__buf_putc(b, ']');
    af__buf_putc(b, '}');
}

int af_trace_store_list_json(af_trace_store *s, const af_trace_query *q, char **out)
{
    *out = NULL;
    af_trace_query dq;
    if (!q) {
        af_trace_query_init(&dq);
        q = &dq;
    }
    af_span_copy **arr;
    size_t n = snapshot(s, &arr);
    if (!arr && s->sh->mem)
        return -ENOMEM;
    qsort(arr, n, sizeof(*arr), by_trace_then_start);
    group *g = malloc(sizeof(*g) * (n ? n : 1));
    if (!g) {
        release_all(arr, n);
        return -ENOMEM;
    }
    size_t ng = group_traces(arr, n, g);
    qsort(g, ng, sizeof(*g), by_start_desc);

    af_buf b;
    af__buf_init(&b);
    af__buf_puts(&b, "{\"traces\":[");
    size_t shown = 0, matched = 0;
    for (size_t k = 0; k < ng; k++) {
        if (!group_matches(arr, &g[k], q))
            continue;
        matched++;
        if (shown >= q->limit)
            continue;
        render_group(&b, arr, &g[k], shown > 0);
        shown++;
    }
    af__buf_printf(&b, "],\"total\":%zu,\"spans_held\":%zu}", matched, n);
    af__buf_terminate(&b);
    free(g);
    release_all(arr, n);
    if (b.failed) {
        af__buf_clear(&b);
        return -ENOMEM;
    }
    *out = (char *)b.data;
    return 0;
}

int af_trace_store_get_json(af_trace_store *s, const char *trace_id_hex, char **out)
{
    *out = NULL;
    uint8_t id[16];
    if (!trace_id_hex || strlen(trace_id_hex) != 32 ||
        af_trace_id_from_hex(trace_id_hex, 32, id) != 0)
        return -EINVAL;
    af_span_copy **arr;
    size_t n = snapshot(s, &arr);
    if (!arr && s->sh->mem)
        return -ENOMEM;
    qsort(arr, n, sizeof(*arr), by_trace_then_start);
    af_buf b;
    af__buf_init(&b);
    char tid[33];
    af_trace_id_to_hex(id, tid);
    af__buf_printf(&b, "{\"trace_id\":\"%s\",\"spans\":[", tid);
    size_t found = 0;
    uint64_t start = 0, end = 0;
    double cost = 0;
    for (size_t i = 0; i < n; i++) {
        const af_span_data *d = af_span_copy_data(arr[i]);
        if (memcmp(d->trace_id, id, 16) != 0)
            continue;
        char *js = NULL;
        if (af_span_to_json(d, false, &js) != 0) {
            b.failed = true;
            break;
        }
        if (!found || d->start_ns < start)
            start = d->start_ns;
        if (d->end_ns > end)
            end = d->end_ns;
        cost += span_cost(d);
        af__buf_puts(&b, found ? ",{\"service\":" : "{\"service\":");
        af__buf_json_string(&b, service_of(d), strlen(service_of(d)));
        af__buf_printf(&b, ",\"duration_ms\":%.3f,", (double)(d->end_ns - d->start_ns) / 1e6);
        af__buf_puts(&b, js[0] == '{' ? js + 1 : js);
        free(js);
        found++;
    }
    af__buf_printf(&b, "],\"span_count\":%zu,\"duration_ms\":%.3f,\"cost_usd\":%.10g}", found,
                   found ? (double)(end - start) / 1e6 : 0.0, cost);
    af__buf_terminate(&b);
    release_all(arr, n);
    if (b.failed) {
        af__buf_clear(&b);
        return -ENOMEM;
    }
    if (!found) {
        af__buf_clear(&b);
        return AF_ENOTFOUND;
    }
    *out = (char *)b.data;
    return 0;
}
