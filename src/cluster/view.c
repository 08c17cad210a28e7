/* The JSON views of the fleet: the node list and every node's GPUs. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_core.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/timeutil.h"

/* ---------------------------------------------------------------------------------------- */
/* JSON view.                                                                                */

static void json_str(af_buf *b, const char *s)
{
    af__buf_json_string(b, s, strlen(s));
}

int af_cluster_nodes_json(af_cluster *c, char **out)
{
    af_buf b;
    af__buf_init(&b);
    pthread_mutex_lock(&c->mu);
    uint64_t now = c->o.clock(c->o.clock_user);
    af__cl_expire_locked(c, now);
    uint32_t ready = 0;
    af__buf_puts(&b, "{\"nodes\":[");
    for (size_t i = 0; i < c->n_nodes; i++) {
        const node *n = &c->nodes[i];
        bool r = af__cl_node_ready(c, n, now);
        ready += r;
        af__buf_printf(&b, "%s{\"name\":", i ? "," : "");
        json_str(&b, n->name);
        af__buf_printf(
            &b,
            ",\"ready\":%s,\"awaiting_report\":%s,\"last_report_unix_ms\":%llu,"
            "\"seconds_since_report\":%llu",
            r ? "true" : "false", n->awaiting_report ? "true" : "false",
            (unsigned long long)(n->last_report_ns / 1000000ull),
            /* a restored report time may lie ahead of this clock */
            (unsigned long long)((now > n->last_report_ns ? now - n->last_report_ns : 0) /
                                 1000000000ull));
        af__buf_puts(&b, ",\"gpus\":[");
        for (size_t j = 0; j < n->n_gpus; j++) {
            const gpu_slot *g = &n->gpus[j];
            af__buf_printf(&b, "%s{\"id\":", j ? "," : "");
            char id[AF_CLUSTER_NODE_MAX + 16]; /* a node name of any allowed length */
            snprintf(id, sizeof(id), "%s/gpu-%u", n->name, g->g.index);
            json_str(&b, id);
            af__buf_puts(&b, ",\"name\":");
            json_str(&b, g->g.name);
            af__buf_printf(
                &b,
                ",\"memory_total_mb\":%llu,\"memory_used_mb\":%llu,"
                "\"memory_free_mb\":%llu,\"memory_held_mb\":%llu,\"held\":%s,"
                "\"utilization\":%.2f,\"temperature\":%.2f,\"power_draw\":%.2f,"
                "\"health\":\"%s\",\"processes\":%u}",
                (unsigned long long)g->g.memory_total_mb, (unsigned long long)g->g.memory_used_mb,
                (unsigned long long)g->g.memory_free_mb, (unsigned long long)g->held_mb,
                g->held_whole ? "true" : "false", isfinite(g->g.utilization) ? g->g.utilization : 0,
                isfinite(g->g.temperature) ? g->g.temperature : 0,
                isfinite(g->g.power_draw) ? g->g.power_draw : 0, af_gpu_level_name(g->g.health),
                g->g.n_procs);
        }
        af__buf_puts(&b, "]}");
    }
    af__buf_printf(&b, "],\"total\":%zu,\"ready\":%u,\"strategy\":\"%s\",\"reservations\":[",
                   c->n_nodes, ready, af_gpu_strategy_name(c->o.strategy));
    for (size_t i = 0; i < c->n_holds; i++) {
        const hold *h = &c->holds[i];
        char ids[AF_GPU_ID_MAX];
        af__cl_gpu_ids(&c->nodes[h->node], h->mask, ids, sizeof(ids));
        af__buf_printf(&b, "%s{\"pod\":", i ? "," : "");
        json_str(&b, h->pod);
        af__buf_puts(&b, ",\"uid\":");
        json_str(&b, h->key);
        af__buf_puts(&b, ",\"gpu\":");
        json_str(&b, ids);
        af__buf_printf(&b, ",\"memory_mb\":%llu,\"bound\":%s,\"expires_in_ms\":%llu}",
                       (unsigned long long)h->memory_mb, h->bound ? "true" : "false",
                       (unsigned long long)((h->expires_ns - now) / 1000000ull));
    }
    af__buf_puts(&b, "]}");
    pthread_mutex_unlock(&c->mu);
    af__buf_terminate(&b);
    if (b.failed) {
        af__buf_clear(&b);
        return -ENOMEM;
    }
    *out = (char *)b.data;
    return 0;
}

/* The dashboard's words for a GPU: the agent's health first, then busy or not. */
static const char *gpu_status(const af_cluster_gpu *g)
{
    if (g->health == AF_GPU_CRITICAL)
        return "critical";
    if (g->health == AF_GPU_WARNING)
        return "warning";
    return g->utilization > 5.0 ? "active" : "idle";
}

static double finite0(double v)
{
    return isfinite(v) ? v : 0;
}

/* A fleet GPU copied under the lock, rendered after it: reports and extender calls never
 * wait for a list of thousands of GPUs to be formatted. */
typedef struct fleet_row {
    const char *node; /* into the copied names */
    bool ready, available;
    af_cluster_gpu g; /* procs NULL */
} fleet_row;

static void put_fleet_gpu(af_buf *b, const fleet_row *r)
{
    char id[AF_CLUSTER_NODE_MAX + 16], ts[40];
    snprintf(id, sizeof(id), "%s/gpu-%u", r->node, r->g.index);
    af__buf_puts(b, "{\"id\":");
    json_str(b, id);
    af__buf_puts(b, ",\"node\":");
    json_str(b, r->node);
    af__buf_puts(b, ",\"name\":");
    json_str(b, r->g.name);
    af__buf_printf(b,
                   ",\"node_ready\":%s,\"status\":\"%s\",\"utilization\":%.2f,"
                   "\"temperature\":%.2f,\"memory_total\":%llu,\"memory_used\":%llu,"
                   "\"power_draw\":%.2f,\"workloads\":%u,\"available\":%s,\"last_updated\":",
                   r->ready ? "true" : "false", gpu_status(&r->g), finite0(r->g.utilization),
                   finite0(r->g.temperature), (unsigned long long)r->g.memory_total_mb,
                   (unsigned long long)r->g.memory_used_mb, finite0(r->g.power_draw), r->g.n_procs,
                   r->available ? "true" : "false");
    if (r->g.reported_ns) {
        af__fmt_rfc3339(r->g.reported_ns, 9, ts);
        af__buf_printf(b, "\"%s\"}", ts);
    } else {
        af__buf_puts(b, "null}");
    }
}

/* Copies every GPU (and its node's name) under the lock. 0 or -ENOMEM. */
static int copy_fleet(af_cluster *c, fleet_row **rows, size_t *n_rows, char **names,
                      uint64_t *now_out)
{
    pthread_mutex_lock(&c->mu);
    uint64_t now = *now_out = c->o.clock(c->o.clock_user);
    af__cl_expire_locked(c, now);
    size_t total = 0;
    for (size_t i = 0; i < c->n_nodes; i++)
        total += c->nodes[i].n_gpus;
    *rows = total ? malloc(total * sizeof(**rows)) : NULL;
    *names = c->n_nodes ? malloc(c->n_nodes * AF_CLUSTER_NODE_MAX) : NULL;
    if ((total && !*rows) || (c->n_nodes && !*names)) {
        pthread_mutex_unlock(&c->mu);
        free(*rows);
        free(*names);
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < c->n_nodes; i++) {
        const node *n = &c->nodes[i];
        char *name = *names + i * AF_CLUSTER_NODE_MAX;
        memcpy(name, n->name, AF_CLUSTER_NODE_MAX);
        bool ready = af__cl_node_ready(c, n, now);
        for (size_t j = 0; j < n->n_gpus; j++, k++) {
            fleet_row *r = &(*rows)[k];
            r->node = name;
            r->ready = ready;
            /* A GPU takes new work when its node is ready, it is not critical, nothing
             * holds it whole and its report shows it idle (af_cluster_filter's rule for
             * whole GPUs). */
            r->available = ready && n->gpus[j].g.health != AF_GPU_CRITICAL &&
                           !n->gpus[j].held_whole &&
                           !af__cl_gpu_busy(&c->o, &n->gpus[j].g, NULL, 0);
            r->g = n->gpus[j].g;
            r->g.procs = NULL;
        }
    }
    pthread_mutex_unlock(&c->mu);
    *n_rows = total;
    return 0;
}

int af_cluster_gpus_json(af_cluster *c, char **out)
{
    fleet_row *rows = NULL;
    char *names = NULL;
    size_t total = 0;
    uint64_t now = 0;
    int rc = copy_fleet(c, &rows, &total, &names, &now);
    if (rc)
        return rc;
    af_buf b;
    af__buf_init(&b);
    af__buf_puts(&b, "{\"gpus\":[");
    for (size_t i = 0; i < total; i++) {
        if (i)
            af__buf_putc(&b, ',');
        put_fleet_gpu(&b, &rows[i]);
    }
    free(rows);
    free(names);
    char ts[40];
    af__fmt_rfc3339(now, 9, ts);
    af__buf_printf(&b, "],\"total\":%zu,\"timestamp\":\"%s\"}", total, ts);
    af__buf_terminate(&b);
    if (b.failed) {
        af__buf_clear(&b);
        return -ENOMEM;
    }
    *out = (char *)b.data;
    return 0;
}

/* "node/gpu-N" -> the node and the slot of gpu-N; NULL when unknown. */
static const node *split_id(const af_cluster *c, const char *id, size_t *slot)
{
    const char *sl = strrchr(id, '/');
    unsigned idx;
    char name[AF_CLUSTER_NODE_MAX], extra;
    if (!sl || (size_t)(sl - id) >= sizeof(name) || sscanf(sl + 1, "gpu-%u%c", &idx, &extra) != 1)
        return NULL;
    memcpy(name, id, (size_t)(sl - id));
    name[sl - id] = '\0';
    const node *n = af__cl_find_node(c, name);
    for (size_t j = 0; n && j < n->n_gpus; j++)
        if (n->gpus[j].g.index == idx) {
            *slot = j;
            return n;
        }
    return NULL;
}

int af_cluster_gpu_get(af_cluster *c, const char *id, af_cluster_gpu_info *out)
{
    if (!c || !id || !out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&c->mu);
    size_t slot = 0;
    const node *n = split_id(c, id, &slot);
    if (n) {
        const af_cluster_gpu *g = &n->gpus[slot].g;
        out->gpu = *g;
        out->gpu.procs = NULL;
        out->gpu.n_procs = g->n_procs < AF_GPU_MAX_PROCESSES ? g->n_procs : AF_GPU_MAX_PROCESSES;
        if (out->gpu.n_procs)
            memcpy(out->procs, g->procs, out->gpu.n_procs * sizeof(*out->procs));
        af__strlcpy(out->node, n->name, sizeof(out->node));
        out->ready = af__cl_node_ready(c, n, c->o.clock(c->o.clock_user));
        out->last_report_ns = n->last_report_ns;
    }
    pthread_mutex_unlock(&c->mu);
    return n ? 0 : -ENOENT;
}
