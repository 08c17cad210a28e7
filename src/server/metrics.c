/*
 * Prometheus exposition: text format 0.0.4 and OpenMetrics 1.0 (with exemplars).
 *
 * Rules that the original broke and this file keeps: every label value is quoted and escaped,
 * labels are written in a fixed order, HELP and TYPE appear once per family before its
 * samples, families and series come out in a stable order, histograms have cumulative
 * buckets with +Inf, _sum and _count, and numbers keep full precision. Counters are named
 * <base>_total in both formats (OpenMetrics' TYPE line names the family without _total).
 *
 * Values come from the components at scrape time, except what only the server sees (request
 * latencies, inference outcomes per model, scheduling passes, workload transitions), which
 * the recorders below accumulate under met_mu.
 *
 * Files: this one (histograms, recorders, the scrape's list of families), metrics_expo.c
 * (the writer), metrics_render_*.c (the families); metrics_int.h links them.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/metrics_int.h"
#include "server/server_int.h"
#include "util/str.h"

const double af__latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,  0.5,    1,     2.5,  5,     10,   30};
const size_t af__latency_nbounds = sizeof(af__latency_bounds) / sizeof(af__latency_bounds[0]);
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
static const double queue_bounds[] = {0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};
static const double exec_bounds[] = {1, 5, 10, 30, 60, 300, 900, 1800, 3600, 14400, 86400};

void af__hist_init(af__hist *h, const double *bounds, size_t n_bounds)
{
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->n_bounds = n_bounds > AF__HIST_MAX_BOUNDS ? AF__HIST_MAX_BOUNDS : n_bounds;
}

void af__hist_observe(af__hist *h, double v, const af_span_context *sc)
{
    if (!isfinite(v))
        return;
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
    if (sc && af_span_context_is_valid(sc) && af_span_context_is_sampled(sc)) {
        af__exemplar *e = &h->ex[i];
        e->set = true;
        af_trace_id_to_hex(sc->trace_id, e->trace_id);
        af_span_id_to_hex(sc->span_id, e->span_id);
        e->value = v;
        e->time_ns = af_now_ns();
    }
}

void af__metrics_init(af_server *s)
{
    s->http_hist = calloc(af__nroutes + 1, sizeof(af__hist));
    s->http_errors = calloc(af__nroutes + 1, sizeof(uint64_t));
    if (!s->http_hist || !s->http_errors) {
        free(s->http_hist);
        free(s->http_errors);
        s->http_hist = NULL;
        s->http_errors = NULL;
        return;
    }
    for (size_t i = 0; i <= af__nroutes; i++)
        af__hist_init(&s->http_hist[i], af__latency_bounds, af__latency_nbounds);
    for (int i = 0; i < 4; i++)
        af__hist_init(&s->sched_hist[i], af__latency_bounds, af__latency_nbounds);
    af__hist_init(&s->exec_hist, exec_bounds, sizeof(exec_bounds) / sizeof(exec_bounds[0]));
}

void af__metrics_free(af_server *s)
{
    free(s->http_hist);
    free(s->http_errors);
    s->http_hist = NULL;
    s->http_errors = NULL;
}

void af__metrics_http(af_server *s, int route, int status, double seconds,
                      const af_span_context *sc)
{
    size_t i = route >= 0 && (size_t)route < af__nroutes ? (size_t)route : af__nroutes;
    pthread_mutex_lock(&s->met_mu);
    af__hist_observe(&s->http_hist[i], seconds, sc);
    if (status >= 500)
        s->http_errors[i]++;
    s->requests_total++;
    pthread_mutex_unlock(&s->met_mu);
}

/* Distinct label values a family shows: server.max_label_values, within what a table holds
 * (one row of which is kept for "other"). */
static size_t label_cap(const af_server *s, size_t table)
{
    size_t cap = table - 1;
    return s->o.max_label_values && s->o.max_label_values < cap ? s->o.max_label_values : cap;
}

static af__model_metrics *model_find(af_server *s, const char *id)
{
    for (size_t i = 0; i < s->n_models; i++)
        if (strcmp(s->models[i].id, id) == 0)
            return &s->models[i];
    return NULL;
}

/* Caller holds met_mu. Past the label cap, models share one "other" row: model ids come from
 * requests, so they must not be able to crowd out or multiply the per-model series. */
static af__model_metrics *model_slot(af_server *s, const char *id)
{
    af__model_metrics *m = model_find(s, id);
    if (m)
        return m;
    if (s->n_models >= label_cap(s, AF__MAX_MODELS)) {
        s->models_folded++;
        if ((m = model_find(s, "other")))
            return m;
        id = "other";
    }
    m = &s->models[s->n_models++];
    memset(m, 0, sizeof(*m));
    af__strlcpy(m->id, id, sizeof(m->id));
    af__hist_init(&m->latency, af__latency_bounds, af__latency_nbounds);
    af__hist_init(&m->batch, batch_bounds, sizeof(batch_bounds) / sizeof(batch_bounds[0]));
    return m;
}

void af__metrics_inference(af_server *s, const char *model_id, int rc,
                           const af_inference_response *r, const af_span_context *sc)
{
    pthread_mutex_lock(&s->met_mu);
    af__model_metrics *m = model_slot(s, model_id ? model_id : "");
    if (rc != 0) {
        m->errors++;
    } else {
        m->ok++;
        if (r->cache_hit)
            m->cache_hits++;
        else
            m->cache_misses++;
        m->tokens += (uint64_t)(r->prompt_tokens + r->completion_tokens);
        af__hist_observe(&m->latency, (double)r->latency_ns / 1e9, sc);
        if (!r->cache_hit)
            af__hist_observe(&m->batch, (double)r->batch_size, sc);
    }
    pthread_mutex_unlock(&s->met_mu);
}

/* Caller holds met_mu; keeps the table sorted by priority. */
static af__prio_metrics *prio_slot(af_server *s, int32_t p)
{
    size_t i = 0;
    while (i < s->n_prios && s->prios[i].priority < p)
        i++;
    if (i < s->n_prios && s->prios[i].priority == p)
        return &s->prios[i];
    if (s->n_prios == AF__MAX_PRIOS)
        return NULL;
    memmove(&s->prios[i + 1], &s->prios[i], (s->n_prios - i) * sizeof(s->prios[0]));
    s->n_prios++;
    af__prio_metrics *m = &s->prios[i];
    memset(m, 0, sizeof(*m));
    m->priority = p;
    af__hist_init(&m->queue_time, queue_bounds, sizeof(queue_bounds) / sizeof(queue_bounds[0]));
    return m;
}

void af__metrics_workload(af_server *s, int32_t priority, af_workload_status to,
                          const af_workload_info *w, const af_span_context *sc)
{
    pthread_mutex_lock(&s->met_mu);
    af__prio_metrics *m = prio_slot(s, priority);
    switch (to) {
    case AF_WORKLOAD_PENDING:
        if (m)
            m->submitted++;
        break;
    case AF_WORKLOAD_RUNNING:
        if (m && w)
            af__hist_observe(&m->queue_time, (double)w->queue_wait_ms / 1000.0, sc);
        break;
    case AF_WORKLOAD_COMPLETED:
        if (m)
            m->completed++;
        if (w && w->started_ns && w->completed_ns > w->started_ns)
            af__hist_observe(&s->exec_hist, (double)(w->completed_ns - w->started_ns) / 1e9, sc);
        break;
    case AF_WORKLOAD_CANCELLED:
        if (m)
            m->cancelled++;
        break;
    case AF_WORKLOAD_FAILED:
        if (m)
            m->failed++;
        break;
    }
    pthread_mutex_unlock(&s->met_mu);
}

void af__metrics_schedule(af_server *s, af_gpu_strategy strategy, double seconds, size_t placed,
                          size_t still_pending, const af_span_context *sc)
{
    unsigned k = (unsigned)strategy < 4 ? (unsigned)strategy : 0;
    pthread_mutex_lock(&s->met_mu);
    af__hist_observe(&s->sched_hist[k], seconds, sc);
    s->sched_decisions[k][0] += placed;
    s->sched_decisions[k][1] += still_pending;
    pthread_mutex_unlock(&s->met_mu);
}

/* ---------------------------------------------------------------------------------------- */
/* The scrape.                                                                                */

/* Every family, in this order: a new family is written in one of the metrics_render_*.c
 * files (declared in metrics_int.h) and called here. */

int af__metrics_render(af_server *s, bool openmetrics, af_buf *out)
{
    static char node[256];
    static atomic_bool have_node;
    if (!atomic_load(&have_node)) {
        char tmp[256];
        if (gethostname(tmp, sizeof(tmp)) != 0)
            af__strlcpy(tmp, "localhost", sizeof(tmp));
        tmp[sizeof(tmp) - 1] = '\0';
        memcpy(node, tmp, sizeof(node));
        atomic_store(&have_node, true);
    }
    af__expo e = {.b = out, .om = openmetrics};
    af__metrics_render_gpus(s, &e, node);
    af__metrics_render_scheduler(s, &e, node);
    af__metrics_render_serving(s, &e);
    af__metrics_render_genai(s, &e);
    af__metrics_render_costs(s, &e);
    af__metrics_render_alerts(s, &e);
    af__metrics_render_system(s, &e);
    af__metrics_render_tracing(s, &e);
    af__metrics_render_cluster(s, &e);
    af__metrics_render_store(s, &e);
    af__metrics_render_folded(s, &e);
    if (openmetrics)
        af__buf_puts(out, "# EOF\n");
    return out->failed ? -ENOMEM : 0;
}
