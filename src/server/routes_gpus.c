/*
 * Handlers: GPU list/registration, per-GPU metrics/processes/history/stats/health, demo trigger.
 * Split out of routes.c; the route table and matcher stay there (see routes_int.h).
 *
 * In serve --cluster the GPUs are the fleet's: every node's GPUs as its agent last reported
 * them, with ids "node/gpu-N" (percent-encode the slash in a path: node-1%2Fgpu-0). History,
 * statistics and health are kept by each node's agent, which serves them for its own GPUs.
 */
#include <errno.h>
#include <pthread.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/log.h"
#include "server/limits.h"
#include "server/routes_cluster.h"
#include "server/server_int.h"
#include "util/timeutil.h"
#include "util/str.h"
#include "server/routes_int.h"

static bool gpus_reserve(af__gpus_cache *c, size_t n)
{
    if (n <= c->cap)
        return true;
    af__gpu_row *r = realloc(c->rows, n * sizeof(*r));
    if (r)
        c->rows = r;
    af__gpu_row *sc = realloc(c->scratch, n * sizeof(*sc));
    if (sc)
        c->scratch = sc;
    af_gpu_sample *sa = realloc(c->samples, n * sizeof(*sa));
    if (sa)
        c->samples = sa;
    af_gpu_status *st = realloc(c->status, n * sizeof(*st));
    if (st)
        c->status = st;
    if (!r || !sc || !sa || !st)
        return false;
    c->cap = n;
    return true;
}

/* Fills c->scratch from the components; returns the row count. */
static size_t gpus_load_rows(af_server *s, af__gpus_cache *c, size_t nc, size_t ns)
{
    view v; /* only the thresholds: af__gpu_state reads nothing else */
    memset(&v, 0, sizeof(v));
    af_gpu_thresholds_init(&v.th);
    size_t n = 0, nst = 0;
    if (nc) {
        af_gpu_collector_get_thresholds(s->o.collector, &v.th);
        n = af_gpu_collector_latest(s->o.collector, c->samples, nc);
        n = n > nc ? nc : n;
    }
    if (ns) {
        nst = af_gpu_scheduler_list_gpus(s->o.scheduler, c->status, ns);
        nst = nst > ns ? ns : nst;
    }
    size_t rows = 0;
    for (size_t i = 0; i < n; i++) {
        const af_gpu_sample *g = &c->samples[i];
        const af_gpu_status *sg = NULL;
        for (size_t k = 0; k < nst; k++)
            if (strcmp(c->status[k].id, g->gpu_id) == 0)
                sg = &c->status[k];
        af__gpu_row *r = &c->scratch[rows++];
        memset(r, 0, sizeof(*r));
        af__strlcpy(r->id, g->gpu_id, sizeof(r->id));
        af__strlcpy(r->name, g->name, sizeof(r->name));
        r->state = af__gpu_state(&v, g->utilization_gpu, g->temperature);
        r->utilization = af__finite_or_zero(g->utilization_gpu);
        r->temperature = af__finite_or_zero(g->temperature);
        r->power = af__finite_or_zero(g->power_draw);
        r->memory_total_mb = g->memory_total_mb;
        r->memory_used_mb = g->memory_used_mb;
        r->updated_ns = g->timestamp_ns;
        r->workloads = sg ? sg->workload_count : 0;
        r->available = !sg || sg->available;
    }
    /* GPUs registered through the API that no collector measures. */
    for (size_t k = 0; k < nst; k++) {
        const af_gpu_status *g = &c->status[k];
        bool seen = false;
        for (size_t i = 0; i < n && !seen; i++)
            seen = strcmp(g->id, c->samples[i].gpu_id) == 0;
        if (seen)
            continue;
        af__gpu_row *r = &c->scratch[rows++];
        memset(r, 0, sizeof(*r));
        af__strlcpy(r->id, g->id, sizeof(r->id));
        af__strlcpy(r->name, g->name, sizeof(r->name));
        r->state = af__gpu_state(&v, g->utilization, g->temperature);
        r->utilization = af__finite_or_zero(g->utilization);
        r->temperature = af__finite_or_zero(g->temperature);
        r->power = af__finite_or_zero(g->power_usage);
        r->memory_total_mb = g->memory_total_mb;
        r->memory_used_mb = g->memory_used_mb;
        r->updated_ns = g->last_metrics_update_ns;
        r->workloads = g->workload_count;
        r->available = g->available;
    }
    return rows;
}

static void gpus_render(af__gpus_cache *c)
{
    af_buf *b = &c->body;
    af__buf_reset(b);
    af__buf_puts(b, "{\"gpus\":[");
    for (size_t i = 0; i < c->n_rows; i++) {
        const af__gpu_row *r = &c->rows[i];
        if (i)
            af__buf_putc(b, ',');
        af__buf_puts(b, "{\"id\":");
        af__put_str(b, r->id);
        af__buf_puts(b, ",\"name\":");
        af__put_str(b, r->name);
        af__buf_printf(b,
                       ",\"status\":\"%s\",\"utilization\":%.2f,\"temperature\":%.2f,"
                       "\"memory_total\":%llu,\"memory_used\":%llu,\"power_draw\":%.2f,"
                       "\"workloads\":%u,\"available\":%s,\"last_updated\":",
                       r->state, r->utilization, r->temperature,
                       (unsigned long long)r->memory_total_mb,
                       (unsigned long long)r->memory_used_mb, r->power, r->workloads,
                       r->available ? "true" : "false");
        af__put_time(b, r->updated_ns);
        af__buf_putc(b, '}');
    }
    af__buf_printf(b, "],\"total\":%zu,\"timestamp\":", c->n_rows);
}

/* ---------------------------------------------------------------------------------------- */
/* The fleet (serve --cluster).                                                              */

typedef struct fleet_fill {
    af_gpu_sample *out;
    size_t n, cap;
} fleet_fill;

static void fleet_sample(const char *node, bool ready, const af_cluster_gpu *g, void *user)
{
    (void)ready;
    fleet_fill *f = user;
    if (f->n == f->cap)
        return;
    af_gpu_sample *o = &f->out[f->n];
    memset(o, 0, sizeof(*o));
    /* A node name too long for a GPU id is on /api/v1/gpus and /api/v1/cluster/nodes only. */
    if (snprintf(o->gpu_id, sizeof(o->gpu_id), "%s/gpu-%u", node, g->index) >=
        (int)sizeof(o->gpu_id))
        return;
    af__strlcpy(o->name, g->name, sizeof(o->name));
    o->timestamp_ns = g->reported_ns;
    o->valid = AF_GPU_F_UTIL_GPU | AF_GPU_F_MEMORY | AF_GPU_F_TEMPERATURE | AF_GPU_F_POWER_DRAW |
               AF_GPU_F_PROCESSES;
    o->utilization_gpu = g->utilization;
    o->memory_total_mb = g->memory_total_mb;
    o->memory_used_mb = g->memory_used_mb;
    o->memory_free_mb = g->memory_free_mb;
    o->temperature = g->temperature;
    o->power_draw = g->power_draw;
    o->process_count = g->n_procs;
    f->n++;
}

size_t af__fleet_samples(af_server *s, af_gpu_sample **out)
{
    af_cluster_stats st;
    af_cluster_stats_get(s->o.cluster, &st);
    /* Room for a few nodes that join meanwhile; the rest wait for the next view. */
    size_t cap = (size_t)st.gpus + 64;
    fleet_fill f = {malloc(cap * sizeof(af_gpu_sample)), 0, cap};
    if (f.out)
        af_cluster_each_gpu(s->o.cluster, fleet_sample, &f);
    *out = f.out;
    return f.n;
}

/* A GPU by the id in the path: the collector's, or the fleet's in serve --cluster. history:
 * the route needs the collector's history (which the fleet's agents keep themselves). Answers
 * the 404 itself; fleet (may be NULL) gets the fleet GPU's copy. */
static bool find_gpu(af__req *rq, af__resp *rs, bool history, af_gpu_sample *g,
                     af_cluster_gpu_info *fleet)
{
    af_server *s = rq->srv;
    const char *id = rq->params[0];
    if (s->o.cluster) {
        af_cluster_gpu_info tmp, *fi = fleet ? fleet : &tmp;
        if (af_cluster_gpu_get(s->o.cluster, id, fi) != 0) {
            af__resp_error(rs, 404, "not_found", "GPU not found: %s (fleet GPU ids are node/gpu-N)",
                           id);
            return false;
        }
        if (history) {
            af__resp_error(rs, 404, "not_found",
                           "%s: the agent on node %s keeps this GPU's history, statistics and "
                           "health; ask it for gpu-%u",
                           id, fi->node, fi->gpu.index);
            return false;
        }
        fleet_fill f = {g, 0, 1};
        fleet_sample(fi->node, fi->ready, &fi->gpu, &f);
        return true;
    }
    if (!af__component_present(rs, s->o.collector, "metrics collector"))
        return false;
    if (af_gpu_collector_latest_for(s->o.collector, id, g) != 0) {
        af__resp_error(rs, 404, "not_found", "GPU not found: %s", id);
        return false;
    }
    return true;
}

/* The list is read far more often than the collector samples (once a second by default), so
 * the body is kept and re-rendered only when the rows it shows changed: a request costs the
 * component reads, one memcmp and one copy. */
int af__h_gpus(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (s->o.cluster) {
        /* Reports change it many times a second across a fleet: rendered per request. */
        char *out = NULL;
        int rc = af_cluster_gpus_json(s->o.cluster, &out);
        if (rc)
            af__resp_from_errno(rs, rc, NULL);
        else
            af__resp_json_take(rs, 200, out);
        return 0;
    }
    af__gpus_cache *c = &rq->loop->gpus;
    size_t nc = s->o.collector ? af_gpu_collector_gpu_count(s->o.collector) : 0;
    size_t ns = s->o.scheduler ? af_gpu_scheduler_list_gpus(s->o.scheduler, NULL, 0) : 0;
    if (!gpus_reserve(c, nc + ns + 1)) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    size_t n = gpus_load_rows(s, c, nc, ns);
    if (!c->valid || n != c->n_rows || memcmp(c->rows, c->scratch, n * sizeof(*c->rows)) != 0) {
        af__gpu_row *t = c->rows;
        c->rows = c->scratch;
        c->scratch = t;
        c->n_rows = n;
        gpus_render(c);
        c->valid = !c->body.failed;
    }
    af_buf *b = &rs->body;
    af__buf_append(b, c->body.data, c->body.len);
    af__put_time(b, af_now_ns());
    af__buf_putc(b, '}');
    if (!c->valid)
        af__resp_error(rs, 500, "internal", "out of memory");
    return 0;
}

void af__gpus_cache_free(af__gpus_cache *c)
{
    free(c->rows);
    free(c->scratch);
    free(c->samples);
    free(c->status);
    af__buf_clear(&c->body);
    memset(c, 0, sizeof(*c));
}

static void put_gpu_status(af_buf *b, const af_gpu_status *g)
{
    af__buf_puts(b, "{\"id\":");
    af__put_str(b, g->id);
    af__buf_puts(b, ",\"name\":");
    af__put_str(b, g->name);
    af__buf_printf(b,
                   ",\"memory_total_mb\":%llu,\"memory_used_mb\":%llu,\"memory_free_mb\":%llu,"
                   "\"utilization\":%.2f,\"temperature\":%.2f,\"power_usage\":%.2f,"
                   "\"available\":%s,\"workload_count\":%u}",
                   (unsigned long long)g->memory_total_mb, (unsigned long long)g->memory_used_mb,
                   (unsigned long long)g->memory_free_mb, af__finite_or_zero(g->utilization),
                   af__finite_or_zero(g->temperature), af__finite_or_zero(g->power_usage),
                   g->available ? "true" : "false", g->workload_count);
}

static void apply_gpu_register(af_server *s, void *ctx, af__resp *rs)
{
    const af_gpu_spec *g = &((write_ctx *)ctx)->u.gpu;
    char err[256] = "";
    int rc = af_gpu_scheduler_register_gpu(s->o.scheduler, g, err, sizeof(err));
    af_gpu_status st;
    if (rc != 0) {
        af__resp_from_errno(rs, rc, err);
        /* The saved row must say what memory holds, not what was refused. */
        if (s->o.store && af_gpu_scheduler_get_gpu(s->o.scheduler, g->id, &st) == 0) {
            af_store_op op = {.kind = AF_STORE_GPU};
            op.u.gpu = (af_store_gpu){st.id,
                                      st.name,
                                      st.memory_total_mb,
                                      st.memory_used_mb - st.memory_reserved_mb,
                                      st.utilization,
                                      st.temperature,
                                      st.power_usage,
                                      st.available};
            af_store_submit(s->o.store, &op, NULL, NULL);
        }
    } else if (af_gpu_scheduler_get_gpu(s->o.scheduler, g->id, &st) == 0) {
        rs->status = 201;
        put_gpu_status(&rs->body, &st);
        af__schedule_pass(s);
        af__system_update(s, "gpu_registered", g->id);
    }
}

int af__h_gpu_register(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!af__component_present(rs, s->o.scheduler, "GPU scheduler"))
        return 0;
    json_t *o = af__parse_object(rq, rs);
    if (!o)
        return 0;
    int arc = 0;
    af_gpu_spec g = {.available = true};
    double mem = 0, used = 0;
    if (af__get_field(o, AF__F_GPU_ID, &g.id, rs) &&
        af__get_field(o, AF__F_GPU_NAME, &g.name, rs) &&
        af__get_num(o, "memory_total_mb", 0, 1e9, &mem, rs) &&
        af__get_num(o, "memory_used_mb", 0, 1e9, &used, rs) &&
        af__get_num(o, "utilization", 0, 100, &g.utilization, rs) &&
        af__get_num(o, "temperature", -50, 200, &g.temperature, rs) &&
        af__get_num(o, "power_usage", 0, 1e5, &g.power_usage, rs) &&
        af__get_bool(o, "available", &g.available, rs)) {
        g.memory_total_mb = (uint64_t)mem;
        g.memory_used_mb = (uint64_t)used;
        write_ctx *c;
        /* The scheduler's own checks, before the commit, in its words. */
        if (!g.id || !*g.id || strlen(g.id) >= AF_GPU_ID_MAX) {
            af__resp_error(rs, 400, "invalid_argument", "GPU ID cannot be empty");
        } else if (!g.memory_total_mb) {
            af__resp_error(rs, 400, "invalid_argument", "GPU memory total must be greater than 0");
        } else if ((c = af__write_ctx_new(rq, rs, o))) {
            c->u.gpu = g;
            af_store_op op = {.kind = AF_STORE_GPU};
            op.u.gpu =
                (af_store_gpu){g.id,          g.name,        g.memory_total_mb, g.memory_used_mb,
                               g.utilization, g.temperature, g.power_usage,     g.available};
            arc = af__commit(rq, rs, &op, apply_gpu_register, c, af__write_ctx_free);
        }
    }
    json_decref(o);
    return arc;
}

int af__h_gpu_metrics(af__req *rq, af__resp *rs)
{
    af_gpu_sample g;
    if (!find_gpu(rq, rs, false, &g, NULL))
        return 0;
    char *j = NULL;
    af_gpu_sample_json(&g, &j);
    af__resp_json_take(rs, 200, j);
    return 0;
}

int af__h_gpu_processes(af__req *rq, af__resp *rs)
{
    af_gpu_sample g;
    af_cluster_gpu_info *fi = rq->srv->o.cluster ? malloc(sizeof(*fi)) : NULL;
    if (rq->srv->o.cluster && !fi) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    if (!find_gpu(rq, rs, false, &g, fi)) {
        free(fi);
        return 0;
    }
    af_gpu_process p[AF_GPU_MAX_PROCESSES];
    size_t n =
        fi ? fi->gpu.n_procs
           : af_gpu_collector_processes(rq->srv->o.collector, g.gpu_id, p, AF_GPU_MAX_PROCESSES);
    if (n > AF_GPU_MAX_PROCESSES)
        n = AF_GPU_MAX_PROCESSES;
    if (fi)
        memcpy(p, fi->procs, n * sizeof(*p));
    free(fi);
    af_buf *b = &rs->body;
    af__buf_puts(b, "{\"gpu_id\":");
    af__put_str(b, g.gpu_id);
    af__buf_puts(b, ",\"processes\":[");
    for (size_t i = 0; i < n; i++) {
        af__buf_printf(b, "%s{\"pid\":%u,\"name\":", i ? "," : "", p[i].pid);
        af__put_str(b, p[i].process_name);
        af__buf_printf(b, ",\"memory_used\":%llu,\"type\":\"%c\"}",
                       (unsigned long long)p[i].memory_used_mb, p[i].type ? p[i].type : 'C');
    }
    af__buf_printf(b, "],\"count\":%zu,\"timestamp\":", n);
    af__put_time(b, g.timestamp_ns);
    af__buf_putc(b, '}');
    return 0;
}

int af__h_gpu_history(af__req *rq, af__resp *rs)
{
    af_gpu_sample g;
    if (!find_gpu(rq, rs, true, &g, NULL))
        return 0;
    char arg[32];
    double hours = 1;
    if (af__url_arg(rq, "hours", arg, sizeof(arg))) {
        if (af__parse_decimal(arg, &hours) != 0 || !(hours > 0) || hours > 24 * 30) {
            af__resp_error(rs, 400, "invalid_argument",
                           "query parameter hours: a decimal number in (0, 720]");
            return 0;
        }
    }
    uint64_t since = af_now_ns() - (uint64_t)(hours * 3600e9);
    enum { CAP = 1000 };
    af_gpu_sample *h = malloc(sizeof(*h) * CAP);
    if (!h) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    size_t n = af_gpu_collector_history(rq->srv->o.collector, g.gpu_id, since, h, CAP);
    if (n > CAP)
        n = CAP;
    af_buf *b = &rs->body;
    af__buf_puts(b, "{\"gpu_id\":");
    af__put_str(b, g.gpu_id);
    af__buf_puts(b, ",\"since\":");
    af__put_time(b, since);
    af__buf_puts(b, ",\"history\":[");
    for (size_t i = 0; i < n; i++) {
        af__buf_puts(b, i ? ",{\"timestamp\":" : "{\"timestamp\":");
        af__put_time(b, h[i].timestamp_ns);
        af__buf_printf(
            b,
            ",\"utilization\":%.2f,\"temperature\":%.2f,\"memory_used\":%llu,"
            "\"power_draw\":%.2f}",
            af__finite_or_zero(h[i].utilization_gpu), af__finite_or_zero(h[i].temperature),
            (unsigned long long)h[i].memory_used_mb, af__finite_or_zero(h[i].power_draw));
    }
    af__buf_printf(b, "],\"count\":%zu}", n);
    free(h);
    return 0;
}

int af__h_gpu_stats(af__req *rq, af__resp *rs)
{
    af_gpu_sample g;
    if (!find_gpu(rq, rs, true, &g, NULL))
        return 0;
    af_gpu_stats st;
    int rc = af_gpu_collector_stats(rq->srv->o.collector, g.gpu_id, 0, &st);
    if (rc != 0) {
        af__resp_from_errno(rs, rc, "no statistics available");
        return 0;
    }
    char *j = NULL;
    af_gpu_stats_json(&st, &j);
    af__resp_json_take(rs, 200, j);
    return 0;
}

int af__h_gpu_health(af__req *rq, af__resp *rs)
{
    af_gpu_sample g;
    if (!find_gpu(rq, rs, true, &g, NULL))
        return 0;
    af_gpu_health h;
    int rc = af_gpu_collector_health(rq->srv->o.collector, g.gpu_id, &h);
    if (rc != 0) {
        af__resp_from_errno(rs, rc, "no health data yet");
        return 0;
    }
    char *j = NULL;
    af_gpu_health_json(&h, &j);
    af__resp_json_take(rs, 200, j);
    return 0;
}

int af__h_demo_trigger(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!af__component_present(rs, s->o.collector, "metrics collector"))
        return 0;
    af_gpu_backend *be = af_gpu_collector_backend(s->o.collector);
    const char *id = rq->params[0];
    if (strncmp(id, "gpu-", 4) != 0) {
        af__resp_error(rs, 404, "not_found", "GPU not found: %s", id);
        return 0;
    }
    uint64_t idx;
    if (af__parse_u64(id + 4, UINT32_MAX, &idx) != 0) {
        af__resp_error(rs, 400, "invalid_argument",
                       "path parameter gpu: gpu-<n> with n a decimal number in 0..%u",
                       (unsigned)UINT32_MAX);
        return 0;
    }
    int rc = af_gpu_sim_set_pattern(be, (uint32_t)idx, rq->params[1]);
    if (rc == -EINVAL) {
        af__resp_error(rs, 409, "conflict", "workload patterns exist only on simulated GPUs");
        return 0;
    }
    if (rc != 0) {
        af__resp_error(rs, 404, "not_found",
                       "unknown GPU or pattern (Idle, Light Inference, Training, Heavy Inference, "
                       "Batch Processing)");
        return 0;
    }
    char msg[400];
    snprintf(msg, sizeof(msg), "GPU %s switched to %s workload pattern", id, rq->params[1]);
    af_server_notify(s, "Workload Pattern Changed", msg, "info");
    af__buf_puts(&rs->body, "{\"gpu_id\":");
    af__put_str(&rs->body, id);
    af__buf_puts(&rs->body, ",\"pattern\":");
    af__put_str(&rs->body, rq->params[1]);
    af__buf_puts(&rs->body, ",\"status\":\"triggered\",\"message\":");
    af__put_str(&rs->body, msg);
    af__buf_putc(&rs->body, '}');
    return 0;
}
