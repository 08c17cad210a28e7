/* The cluster: options, the node name map, agent reports (inventory) and readiness. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster_core.h"
#include "util/str.h"

void af__cluster_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || !err_len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static uint64_t realtime_ns(void *user)
{
    (void)user;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void af_cluster_opts_init(af_cluster_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->strategy = AF_GPU_LEAST_UTILIZED;
    o->node_timeout_ms = 20000;
    o->reservation_ttl_ms = 30000;
    o->max_nodes = 10000;
    o->whole_gpu_reported_use = true;
    o->whole_gpu_busy_memory_mb = 512;
}

int af_cluster_new(const af_cluster_opts *o, af_cluster **out)
{
    af_cluster_opts d;
    if (!o) {
        af_cluster_opts_init(&d);
        o = &d;
    }
    if (!out || !o->max_nodes)
        return -EINVAL;
    af_cluster *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->o = *o;
    if (!c->o.clock)
        c->o.clock = realtime_ns;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return 0;
}

void af__cl_free_node(node *n)
{
    for (size_t i = 0; i < n->n_gpus; i++)
        free(n->gpus[i].g.procs);
    free(n->gpus);
    n->gpus = NULL;
    n->n_gpus = 0;
}

void af__cl_clear_locked(af_cluster *c)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        af__cl_free_node(&c->nodes[i]);
    free(c->nodes);
    free(c->map);
    free(c->holds);
    c->nodes = NULL;
    c->map = NULL;
    c->holds = NULL;
    c->n_nodes = c->cap_nodes = c->map_cap = c->n_holds = c->cap_holds = 0;
    c->rr_cursor = 0;
    c->rr_started = false;
}

void af_cluster_free(af_cluster *c)
{
    if (!c)
        return;
    af__cl_clear_locked(c);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

uint32_t af__cluster_max_nodes(af_cluster *c)
{
    return c->o.max_nodes;
}

af_gpu_strategy af_cluster_strategy(af_cluster *c)
{
    pthread_mutex_lock(&c->mu);
    af_gpu_strategy s = c->o.strategy;
    pthread_mutex_unlock(&c->mu);
    return s;
}

void af_cluster_set_strategy(af_cluster *c, af_gpu_strategy s)
{
    pthread_mutex_lock(&c->mu);
    c->o.strategy = s;
    pthread_mutex_unlock(&c->mu);
}

/* ---------------------------------------------------------------------------------------- */
/* Name -> node map.                                                                         */

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

node *af__cl_find_node(const af_cluster *c, const char *name)
{
    if (!c->map_cap)
        return NULL;
    size_t mask = c->map_cap - 1;
    for (size_t i = hash_str(name) & mask;; i = (i + 1) & mask) {
        uint32_t v = c->map[i];
        if (!v)
            return NULL;
        if (strcmp(c->nodes[v - 1].name, name) == 0)
            return &c->nodes[v - 1];
    }
}

static void map_insert(uint32_t *map, size_t cap, const char *name, uint32_t idx)
{
    size_t mask = cap - 1;
    size_t i = hash_str(name) & mask;
    while (map[i])
        i = (i + 1) & mask;
    map[i] = idx + 1;
}

/* Adds an empty node; NULL on ENOMEM. */
node *af__cl_add_node(af_cluster *c, const char *name)
{
    if (c->n_nodes == c->cap_nodes) {
        size_t ncap = c->cap_nodes ? c->cap_nodes * 2 : 16;
        node *nn = realloc(c->nodes, ncap * sizeof(*nn));
        if (!nn)
            return NULL;
        c->nodes = nn;
        c->cap_nodes = ncap;
    }
    /* Keep the map at most half full so probes stay short. */
    if ((c->n_nodes + 1) * 2 > c->map_cap) {
        size_t ncap = c->map_cap ? c->map_cap * 2 : 32;
        uint32_t *nm = calloc(ncap, sizeof(*nm));
        if (!nm)
            return NULL;
        for (size_t i = 0; i < c->n_nodes; i++)
            map_insert(nm, ncap, c->nodes[i].name, (uint32_t)i);
        free(c->map);
        c->map = nm;
        c->map_cap = ncap;
    }
    node *n = &c->nodes[c->n_nodes];
    memset(n, 0, sizeof(*n));
    af__strlcpy(n->name, name, sizeof(n->name));
    map_insert(c->map, c->map_cap, name, (uint32_t)c->n_nodes);
    c->n_nodes++;
    return n;
}

bool af__cl_node_ready(const af_cluster *c, const node *n, uint64_t now)
{
    return !n->awaiting_report &&
           now < n->last_report_ns + (uint64_t)c->o.node_timeout_ms * 1000000ull;
}

/* ---------------------------------------------------------------------------------------- */
/* Inventory.                                                                                */

static int check_gpu(const af_cluster_gpu *g, size_t i, char *err, size_t err_len)
{
    if (g->index >= AF_CLUSTER_GPUS_PER_NODE_MAX) {
        af__cluster_err(err, err_len, "gpus[%zu].index: expected 0 to %d, got %u", i,
                        AF_CLUSTER_GPUS_PER_NODE_MAX - 1, g->index);
        return -EINVAL;
    }
    if (!g->memory_total_mb) {
        af__cluster_err(err, err_len, "gpus[%zu].memory_total_mb: must be greater than 0", i);
        return -EINVAL;
    }
    if (g->memory_used_mb > g->memory_total_mb || g->memory_free_mb > g->memory_total_mb) {
        af__cluster_err(err, err_len,
                        "gpus[%zu].memory_used_mb: used and free must not exceed "
                        "memory_total_mb (%llu)",
                        i, (unsigned long long)g->memory_total_mb);
        return -EINVAL;
    }
    if (g->n_procs > AF_GPU_MAX_PROCESSES) {
        af__cluster_err(err, err_len, "gpus[%zu].processes: at most %d", i, AF_GPU_MAX_PROCESSES);
        return -EINVAL;
    }
    return 0;
}

static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (!n || n >= AF_CLUSTER_NODE_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '/' || *p == 0x7f)
            return false;
    return true;
}

/* A report's node name, GPU count and GPUs, each index once. 0 or -EINVAL with the field. */
static int check_report(const af_cluster_report *r, char *err, size_t err_len)
{
    if (!name_ok(r->node)) {
        af__cluster_err(err, err_len,
                        "node: expected a node name of 1 to %d bytes without spaces or '/'",
                        AF_CLUSTER_NODE_MAX - 1);
        return -EINVAL;
    }
    if (r->n_gpus > AF_CLUSTER_GPUS_PER_NODE_MAX) {
        af__cluster_err(err, err_len, "gpus: at most %d GPUs per node, got %zu",
                        AF_CLUSTER_GPUS_PER_NODE_MAX, r->n_gpus);
        return -EINVAL;
    }
    uint64_t seen = 0;
    for (size_t i = 0; i < r->n_gpus; i++) {
        int rc = check_gpu(&r->gpus[i], i, err, err_len);
        if (rc)
            return rc;
        uint64_t bit = 1ull << r->gpus[i].index;
        if (seen & bit) {
            af__cluster_err(err, err_len, "gpus[%zu].index: %u appears twice", i, r->gpus[i].index);
            return -EINVAL;
        }
        seen |= bit;
    }
    return 0;
}

static void free_slots(gpu_slot *slots, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(slots[i].g.procs);
    free(slots);
}

/* The report's GPUs as slots the cluster owns (procs copied, free memory filled in), made
 * outside the lock: procs are the only allocation per GPU. NULL for no GPUs. 0 or -ENOMEM. */
static int copy_slots(const af_cluster_report *r, gpu_slot **out)
{
    *out = NULL;
    gpu_slot *slots = r->n_gpus ? calloc(r->n_gpus, sizeof(*slots)) : NULL;
    if (r->n_gpus && !slots)
        return -ENOMEM;
    for (size_t i = 0; i < r->n_gpus; i++) {
        slots[i].g = r->gpus[i];
        slots[i].g.procs = NULL;
        if (r->gpus[i].n_procs) {
            slots[i].g.procs = malloc(r->gpus[i].n_procs * sizeof(af_gpu_process));
            if (!slots[i].g.procs) {
                free_slots(slots, i);
                return -ENOMEM;
            }
            memcpy(slots[i].g.procs, r->gpus[i].procs, r->gpus[i].n_procs * sizeof(af_gpu_process));
        }
        if (!slots[i].g.memory_free_mb)
            slots[i].g.memory_free_mb = slots[i].g.memory_total_mb - slots[i].g.memory_used_mb;
    }
    *out = slots;
    return 0;
}

/* Gives node n the n_gpus slots (taking them) reported at now. Holds on this node carry over
 * by slot; a node that shrank drops the GPUs gone. Caller holds mu. */
static void install_slots_locked(af_cluster *c, node *n, gpu_slot *slots, size_t n_gpus,
                                 uint64_t now)
{
    for (size_t i = 0; i < n->n_gpus && i < n_gpus; i++) {
        slots[i].held_mb = n->gpus[i].held_mb;
        slots[i].held_whole = n->gpus[i].held_whole;
    }
    uint32_t idx = (uint32_t)(n - c->nodes);
    uint64_t keep = n_gpus >= 64 ? ~0ull : (1ull << n_gpus) - 1;
    for (size_t i = 0; i < c->n_holds; i++)
        if (c->holds[i].node == idx)
            c->holds[i].mask &= keep;
    af__cl_free_node(n);
    n->gpus = slots;
    n->n_gpus = n_gpus;
    n->last_report_ns = now;
    n->awaiting_report = false;
    for (size_t i = 0; i < n_gpus; i++)
        slots[i].g.reported_ns = now;
}

int af_cluster_report_nodes(af_cluster *c, const af_cluster_report *r, char *err, size_t err_len)
{
    if (!c || !r)
        return -EINVAL;
    gpu_slot *slots = NULL;
    int rc = check_report(r, err, err_len);
    if (rc == 0)
        rc = copy_slots(r, &slots);
    if (rc)
        return rc;
    /* Slot i holds gpu-i where the node reports its GPUs in index order (the agent does);
     * holds address GPUs by slot, so the order must stay stable between reports. */
    pthread_mutex_lock(&c->mu);
    uint64_t now = c->o.clock(c->o.clock_user);
    af__cl_expire_locked(c, now);
    node *n = af__cl_find_node(c, r->node);
    if (!n && c->n_nodes >= c->o.max_nodes) {
        af__cluster_err(err, err_len, "node: %u nodes are known already (cluster.max_nodes)",
                        c->o.max_nodes);
        rc = -ENOSPC;
    } else if (!n && !(n = af__cl_add_node(c, r->node))) {
        rc = -ENOMEM;
    } else if (n->n_gpus != r->n_gpus || n->last_report_ns == 0) {
        c->membership++; /* a new node, or one that gained or lost GPUs */
    }
    if (rc == 0) {
        install_slots_locked(c, n, slots, r->n_gpus, now);
        slots = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (slots)
        free_slots(slots, r->n_gpus);
    return rc;
}

void af_cluster_stats_get(af_cluster *c, af_cluster_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&c->mu);
    uint64_t now = c->o.clock(c->o.clock_user);
    af__cl_expire_locked(c, now);
    out->nodes = (uint32_t)c->n_nodes;
    for (size_t i = 0; i < c->n_nodes; i++) {
        bool r = af__cl_node_ready(c, &c->nodes[i], now);
        out->ready_nodes += r;
        out->gpus += (uint32_t)c->nodes[i].n_gpus;
        if (r)
            out->ready_gpus += (uint32_t)c->nodes[i].n_gpus;
    }
    for (size_t i = 0; i < c->n_holds; i++) {
        out->reservations += !c->holds[i].bound;
        out->bindings += c->holds[i].bound;
    }
    pthread_mutex_unlock(&c->mu);
}

void af_cluster_each_gpu(af_cluster *c,
                         void (*fn)(const char *node, bool ready, const af_cluster_gpu *g,
                                    void *user),
                         void *user)
{
    pthread_mutex_lock(&c->mu);
    uint64_t now = c->o.clock(c->o.clock_user);
    for (size_t i = 0; i < c->n_nodes; i++) {
        bool r = af__cl_node_ready(c, &c->nodes[i], now);
        for (size_t j = 0; j < c->nodes[i].n_gpus; j++)
            fn(c->nodes[i].name, r, &c->nodes[i].gpus[j].g, user);
    }
    pthread_mutex_unlock(&c->mu);
}

uint64_t af_cluster_membership(af_cluster *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t m = c->membership;
    pthread_mutex_unlock(&c->mu);
    return m;
}
