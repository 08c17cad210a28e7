/* Node inventory, readiness, holds and the extender's filter / prioritize / bind decisions. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/propagation.h"
#include "agentaflow/trace_helpers.h"
#include "agentaflow/tracing.h"
#include "cluster/cluster_int.h"
#include "util/buf.h"
#include "util/str.h"

typedef struct gpu_slot {
    af_cluster_gpu g;    /* procs owned */
    uint64_t held_mb;    /* shares held by pods */
    uint32_t held_whole; /* pods holding the whole GPU */
} gpu_slot;

typedef struct node {
    char name[AF_CLUSTER_NODE_MAX];
    uint64_t last_report_ns;
    size_t n_gpus;
    gpu_slot *gpus;
} node;

typedef struct hold {
    char key[AF_CLUSTER_NODE_MAX]; /* pod uid, or "namespace/name" without one */
    char pod[2 * AF_CLUSTER_NODE_MAX];
    uint32_t node; /* index into nodes */
    uint64_t mask;
    uint64_t memory_mb; /* 0 = whole GPUs */
    uint64_t expires_ns;
    bool bound;
} hold;

struct af_cluster {
    pthread_mutex_t mu;
    af_cluster_opts o;
    node *nodes; /* index = arrival order, which round_robin walks */
    size_t n_nodes, cap_nodes;
    uint32_t *map; /* open addressing: node index + 1, 0 = empty; no deletions */
    size_t map_cap;
    hold *holds;
    size_t n_holds, cap_holds;
    uint32_t rr_cursor; /* index of the node round_robin chose last */
    bool rr_started;
};

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

static void free_node(node *n)
{
    for (size_t i = 0; i < n->n_gpus; i++)
        free(n->gpus[i].g.procs);
    free(n->gpus);
    n->gpus = NULL;
    n->n_gpus = 0;
}

static void clear_locked(af_cluster *c)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        free_node(&c->nodes[i]);
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
    clear_locked(c);
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

static node *find_node(const af_cluster *c, const char *name)
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
static node *add_node(af_cluster *c, const char *name)
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

static bool node_ready(const af_cluster *c, const node *n, uint64_t now)
{
    return now < n->last_report_ns + (uint64_t)c->o.node_timeout_ms * 1000000ull;
}

/* ---------------------------------------------------------------------------------------- */
/* Holds.                                                                                    */

static void hold_apply(af_cluster *c, const hold *h, int sign)
{
    node *n = &c->nodes[h->node];
    for (size_t i = 0; i < n->n_gpus; i++) {
        if (!(h->mask & (1ull << i)))
            continue;
        if (h->memory_mb)
            n->gpus[i].held_mb += sign > 0 ? h->memory_mb : -h->memory_mb;
        else
            n->gpus[i].held_whole += sign > 0 ? 1u : (uint32_t)-1;
    }
}

static void hold_remove(af_cluster *c, size_t i)
{
    hold_apply(c, &c->holds[i], -1);
    c->holds[i] = c->holds[--c->n_holds];
}

static void expire_locked(af_cluster *c, uint64_t now)
{
    for (size_t i = 0; i < c->n_holds;)
        if (c->holds[i].expires_ns <= now)
            hold_remove(c, i);
        else
            i++;
}

static void pod_key(const af_cluster_pod *p, char *out, size_t cap)
{
    if (p->uid && *p->uid)
        snprintf(out, cap, "%s", p->uid);
    else
        snprintf(out, cap, "%s/%s", p->namespace_ ? p->namespace_ : "", p->name ? p->name : "");
}

static hold *find_hold(af_cluster *c, const char *key)
{
    for (size_t i = 0; i < c->n_holds; i++)
        if (strcmp(c->holds[i].key, key) == 0)
            return &c->holds[i];
    return NULL;
}

static int add_hold(af_cluster *c, const hold *h)
{
    if (c->n_holds == c->cap_holds) {
        size_t ncap = c->cap_holds ? c->cap_holds * 2 : 16;
        hold *nh = realloc(c->holds, ncap * sizeof(*nh));
        if (!nh)
            return -ENOMEM;
        c->holds = nh;
        c->cap_holds = ncap;
    }
    c->holds[c->n_holds++] = *h;
    hold_apply(c, h, 1);
    return 0;
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

int af_cluster_report_nodes(af_cluster *c, const af_cluster_report *r, char *err, size_t err_len)
{
    if (!c || !r)
        return -EINVAL;
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
    /* Copy outside the lock: procs are the only allocation per GPU. */
    gpu_slot *slots = r->n_gpus ? calloc(r->n_gpus, sizeof(*slots)) : NULL;
    if (r->n_gpus && !slots)
        return -ENOMEM;
    for (size_t i = 0; i < r->n_gpus; i++) {
        slots[i].g = r->gpus[i];
        slots[i].g.procs = NULL;
        if (r->gpus[i].n_procs) {
            slots[i].g.procs = malloc(r->gpus[i].n_procs * sizeof(af_gpu_process));
            if (!slots[i].g.procs) {
                for (size_t j = 0; j < i; j++)
                    free(slots[j].g.procs);
                free(slots);
                return -ENOMEM;
            }
            memcpy(slots[i].g.procs, r->gpus[i].procs, r->gpus[i].n_procs * sizeof(af_gpu_process));
        }
        if (!slots[i].g.memory_free_mb)
            slots[i].g.memory_free_mb = slots[i].g.memory_total_mb - slots[i].g.memory_used_mb;
    }
    /* Slot i holds gpu-i where the node reports its GPUs in index order (the agent does);
     * holds address GPUs by slot, so the order must stay stable between reports. */
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    uint64_t now = c->o.clock(c->o.clock_user);
    expire_locked(c, now);
    node *n = find_node(c, r->node);
    if (!n && c->n_nodes >= c->o.max_nodes) {
        af__cluster_err(err, err_len, "node: %u nodes are known already (cluster.max_nodes)",
                        c->o.max_nodes);
        rc = -ENOSPC;
    } else if (!n && !(n = add_node(c, r->node))) {
        rc = -ENOMEM;
    }
    if (rc == 0) {
        /* Holds on this node carry over by slot; a node that shrank drops the GPUs gone. */
        for (size_t i = 0; i < n->n_gpus && i < r->n_gpus; i++) {
            slots[i].held_mb = n->gpus[i].held_mb;
            slots[i].held_whole = n->gpus[i].held_whole;
        }
        uint32_t idx = (uint32_t)(n - c->nodes);
        uint64_t keep = r->n_gpus >= 64 ? ~0ull : (1ull << r->n_gpus) - 1;
        for (size_t i = 0; i < c->n_holds; i++)
            if (c->holds[i].node == idx)
                c->holds[i].mask &= keep;
        free_node(n);
        n->gpus = slots;
        n->n_gpus = r->n_gpus;
        n->last_report_ns = now;
        slots = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (slots) {
        for (size_t i = 0; i < r->n_gpus; i++)
            free(slots[i].g.procs);
        free(slots);
    }
    return rc;
}

void af_cluster_stats_get(af_cluster *c, af_cluster_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&c->mu);
    uint64_t now = c->o.clock(c->o.clock_user);
    expire_locked(c, now);
    out->nodes = (uint32_t)c->n_nodes;
    for (size_t i = 0; i < c->n_nodes; i++) {
        bool r = node_ready(c, &c->nodes[i], now);
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
        bool r = node_ready(c, &c->nodes[i], now);
        for (size_t j = 0; j < c->nodes[i].n_gpus; j++)
            fn(c->nodes[i].name, r, &c->nodes[i].gpus[j].g, user);
    }
    pthread_mutex_unlock(&c->mu);
}

/* ---------------------------------------------------------------------------------------- */
/* Decisions.                                                                                */

typedef struct choice {
    bool fits;
    bool unresolvable; /* preempting pods would not help (no agent, not ready) */
    uint64_t mask;     /* GPUs chosen */
    double score;      /* 0-10 before round_robin */
    char reason[AF_CLUSTER_REASON_MAX];
} choice;

static bool wants_gpu(const af_cluster_pod *p)
{
    return p->gpus || p->memory_mb;
}

static af_gpu_strategy effective(af_gpu_strategy s, const af_cluster_pod *p)
{
    if (s == AF_GPU_PRIORITY)
        return p->priority > 0 ? AF_GPU_LEAST_UTILIZED : AF_GPU_BEST_FIT;
    return s;
}

static double clamp10(double v)
{
    return v < 0 ? 0 : v > 10 ? 10 : v;
}

/* What `own` (the pod's current hold, may be NULL) frees on GPU i of node ni. */
static void own_on(const hold *own, uint32_t ni, size_t i, uint64_t *mb, uint32_t *whole)
{
    *mb = 0;
    *whole = 0;
    if (!own || own->node != ni || !(own->mask & (1ull << i)))
        return;
    if (own->memory_mb)
        *mb = own->memory_mb;
    else
        *whole = 1;
}

static void eval_node(const af_cluster *c, const node *n, const af_cluster_pod *p, const hold *own,
                      uint64_t now, af_gpu_strategy st, choice *ch)
{
    memset(ch, 0, sizeof(*ch));
    uint32_t ni = (uint32_t)(n - c->nodes);
    if (!node_ready(c, n, now)) {
        ch->unresolvable = true;
        snprintf(ch->reason, sizeof(ch->reason), "node not ready: no report for %llu s",
                 (unsigned long long)((now - n->last_report_ns) / 1000000000ull));
        return;
    }
    if (!n->n_gpus) {
        ch->unresolvable = true;
        snprintf(ch->reason, sizeof(ch->reason), "the agent on this node reports no GPUs");
        return;
    }
    if (!p->gpus) {
        /* A share of one GPU. */
        int best = -1;
        uint64_t best_avail = 0, largest = 0;
        for (size_t i = 0; i < n->n_gpus; i++) {
            const gpu_slot *g = &n->gpus[i];
            uint64_t omb;
            uint32_t ow;
            own_on(own, ni, i, &omb, &ow);
            if (g->g.health == AF_GPU_CRITICAL || g->held_whole > ow)
                continue;
            uint64_t held = g->held_mb - omb;
            uint64_t avail = g->g.memory_free_mb > held ? g->g.memory_free_mb - held : 0;
            if (avail > largest)
                largest = avail;
            if (avail < p->memory_mb)
                continue;
            bool better;
            if (best < 0)
                better = true;
            else if (st == AF_GPU_BEST_FIT)
                better = avail < best_avail;
            else
                better = g->g.utilization < n->gpus[best].g.utilization;
            if (better) {
                best = (int)i;
                best_avail = avail;
            }
        }
        if (best < 0) {
            snprintf(ch->reason, sizeof(ch->reason),
                     "insufficient GPU memory: largest free %llu MiB < %llu MiB",
                     (unsigned long long)largest, (unsigned long long)p->memory_mb);
            return;
        }
        const af_cluster_gpu *g = &n->gpus[best].g;
        ch->fits = true;
        ch->mask = 1ull << best;
        if (st == AF_GPU_BEST_FIT)
            ch->score =
                10.0 * (1.0 - (double)(best_avail - p->memory_mb) / (double)g->memory_total_mb);
        else
            ch->score = 10.0 * (1.0 - g->utilization / 100.0);
        ch->score = clamp10(ch->score);
        return;
    }
    /* Whole GPUs: pick p->gpus free ones, least utilized first. */
    uint32_t nfree = 0;
    int idx[AF_CLUSTER_GPUS_PER_NODE_MAX];
    for (size_t i = 0; i < n->n_gpus; i++) {
        const gpu_slot *g = &n->gpus[i];
        uint64_t omb;
        uint32_t ow;
        own_on(own, ni, i, &omb, &ow);
        if (g->g.health == AF_GPU_CRITICAL || g->held_whole > ow || g->held_mb > omb ||
            g->g.memory_total_mb < p->memory_mb)
            continue;
        /* Insertion by utilization keeps the k least utilized in front. */
        uint32_t j = nfree++;
        while (j > 0 && n->gpus[idx[j - 1]].g.utilization > g->g.utilization) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = (int)i;
    }
    if (nfree < p->gpus) {
        if (p->memory_mb)
            snprintf(ch->reason, sizeof(ch->reason),
                     "insufficient GPUs: %u free with %llu MiB < %u requested", nfree,
                     (unsigned long long)p->memory_mb, p->gpus);
        else
            snprintf(ch->reason, sizeof(ch->reason), "insufficient GPUs: %u free < %u requested",
                     nfree, p->gpus);
        return;
    }
    ch->fits = true;
    double util = 0;
    for (uint32_t k = 0; k < p->gpus; k++) {
        ch->mask |= 1ull << idx[k];
        util += n->gpus[idx[k]].g.utilization;
    }
    if (st == AF_GPU_BEST_FIT)
        ch->score = 10.0 * (1.0 - (double)(nfree - p->gpus) / (double)n->n_gpus);
    else
        ch->score = 10.0 * (1.0 - util / p->gpus / 100.0);
    ch->score = clamp10(ch->score);
}

static void eval_name(const af_cluster *c, const char *name, const af_cluster_pod *p,
                      const hold *own, uint64_t now, af_gpu_strategy st, choice *ch)
{
    const node *n = find_node(c, name);
    if (!n) {
        memset(ch, 0, sizeof(*ch));
        ch->unresolvable = true;
        snprintf(ch->reason, sizeof(ch->reason), "no agentaflow agent on this node");
        return;
    }
    eval_node(c, n, p, own, now, st, ch);
}

/* "node/gpu-N" of every GPU in mask (bit = slot; N is the index the agent reported). */
static void gpu_ids(const node *n, uint64_t mask, char *out, size_t cap)
{
    if (!out || !cap)
        return;
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n->n_gpus && used < cap; i++)
        if (mask & (1ull << i))
            used += (size_t)snprintf(out + used, cap - used, "%s%s/gpu-%u", used ? "," : "",
                                     n->name, n->gpus[i].g.index);
}

/* ---------------------------------------------------------------------------------------- */
/* Spans.                                                                                    */

static af_span op_span(af_cluster *c, const char *name, const af_cluster_pod *p, size_t n)
{
    af_gpu_strategy st = af_cluster_strategy(c);
    af_tracer *t = c->o.tracing.tracing ? af_tracing_tracer_for(c->o.tracing.tracing,
                                                                AF_TRACE_GPU_SCHEDULING_DECISIONS)
                                        : c->o.tracing.tracer;
    if (!t)
        return AF_SPAN_NONE;
    af_span_context lctx;
    af_link link = {&lctx, NULL, 0};
    af_span_start_opts so = {.kind = AF_SPAN_KIND_SERVER};
    if (p->traceparent &&
        af_traceparent_parse(p->traceparent, strlen(p->traceparent), &lctx) == 0) {
        so.links = &link;
        so.n_links = 1;
    }
    af_span sp = af_span_start(t, name, &so);
    if (af_span_is_recording(sp))
        af_span_set_attrs(sp,
                          AF_ATTRS(AF_STR("k8s.namespace.name", p->namespace_ ? p->namespace_ : ""),
                                   AF_STR("k8s.pod.name", p->name ? p->name : ""),
                                   AF_STR("k8s.pod.uid", p->uid ? p->uid : ""),
                                   AF_INT("scheduler.candidate_count", n),
                                   AF_INT("gpu.request.count", p->gpus),
                                   AF_INT("gpu.request.memory_mb", p->memory_mb),
                                   AF_INT("workload.priority", p->priority),
                                   AF_STR("scheduler.strategy", af_gpu_strategy_name(st))));
    return sp;
}

/* ---------------------------------------------------------------------------------------- */

int af_cluster_filter(af_cluster *c, const af_cluster_pod *pod, const char *const *names, size_t n,
                      af_cluster_verdict *out)
{
    if (!c || !pod || (n && (!names || !out)))
        return -EINVAL;
    if (n > c->o.max_nodes)
        return -EINVAL;
    af_span sp = op_span(c, "gpu_scheduling.filter", pod, n);
    bool rec = af_span_is_recording(sp);
    if (!wants_gpu(pod)) {
        for (size_t i = 0; i < n; i++) {
            out[i].fits = true;
            out[i].unresolvable = false;
            out[i].reason[0] = '\0';
        }
        af_span_set_bool(sp, "scheduler.pass_through", true);
        af_operation_end(sp, 0, NULL, NULL);
        return (int)n;
    }
    char key[AF_CLUSTER_NODE_MAX];
    pod_key(pod, key, sizeof(key));
    int fit = 0;
    af_buf reasons;
    af__buf_init(&reasons);
    pthread_mutex_lock(&c->mu);
    uint64_t now = c->o.clock(c->o.clock_user);
    expire_locked(c, now);
    const hold *own = find_hold(c, key);
    af_gpu_strategy st = effective(c->o.strategy, pod);
    for (size_t i = 0; i < n; i++) {
        choice ch;
        eval_name(c, names[i], pod, own, now, st, &ch);
        out[i].fits = ch.fits;
        out[i].unresolvable = ch.unresolvable;
        memcpy(out[i].reason, ch.reason, sizeof(out[i].reason));
        fit += ch.fits;
        /* The span keeps the first reasons; a fleet's worth would only be truncated. */
        if (rec && !ch.fits && reasons.len < 2048)
            af__buf_printf(&reasons, "%s%s: %s", reasons.len ? "; " : "", names[i], ch.reason);
    }
    pthread_mutex_unlock(&c->mu);
    if (rec) {
        af_span_set_attrs(sp, AF_ATTRS(AF_INT("scheduler.feasible_nodes", fit),
                                       AF_INT("scheduler.failed_nodes", (int64_t)n - fit)));
        if (reasons.len)
            af_span_set_attrs(sp, AF_ATTRS(AF_STRN("scheduler.reasons", (const char *)reasons.data,
                                                   reasons.len)));
    }
    af__buf_clear(&reasons);
    af_operation_end(sp, 0, NULL, NULL);
    return fit;
}

int af_cluster_prioritize(af_cluster *c, const af_cluster_pod *pod, const char *const *names,
                          size_t n, int64_t *scores, char *chosen_gpu, size_t chosen_len)
{
    if (!c || !pod || (n && (!names || !scores)))
        return -EINVAL;
    if (n > c->o.max_nodes)
        return -EINVAL;
    if (chosen_gpu && chosen_len)
        chosen_gpu[0] = '\0';
    af_span sp = op_span(c, "gpu_scheduling.prioritize", pod, n);
    if (!wants_gpu(pod)) {
        if (n) /* scores may be NULL when there are no candidates */
            memset(scores, 0, n * sizeof(*scores));
        af_span_set_bool(sp, "scheduler.pass_through", true);
        af_operation_end(sp, 0, NULL, NULL);
        return 0;
    }
    char key[AF_CLUSTER_NODE_MAX];
    pod_key(pod, key, sizeof(key));
    int rc = 0;
    char chosen[AF_GPU_ID_MAX] = "", node_name[AF_CLUSTER_NODE_MAX] = "";
    pthread_mutex_lock(&c->mu);
    uint64_t now = c->o.clock(c->o.clock_user);
    expire_locked(c, now);
    const hold *own = find_hold(c, key);
    af_gpu_strategy st = effective(c->o.strategy, pod);
    bool rr = st == AF_GPU_ROUND_ROBIN;
    size_t total = c->n_nodes;
    ssize_t best = -1;
    uint64_t best_mask = 0, best_dist = UINT64_MAX;
    double best_score = -1;
    for (size_t i = 0; i < n; i++) {
        choice ch;
        const node *nd = find_node(c, names[i]);
        if (!nd) {
            scores[i] = 0;
            continue;
        }
        eval_node(c, nd, pod, own, now, st, &ch);
        if (!ch.fits) {
            scores[i] = 0;
            continue;
        }
        if (rr) {
            /* Distance after the cursor in arrival order: the next node is 0. */
            size_t ord = (size_t)(nd - c->nodes);
            size_t start = c->rr_started ? (c->rr_cursor + 1) % total : 0;
            uint64_t d = (ord + total - start) % total;
            scores[i] = (int64_t)(9.0 * (double)(total - d) / (double)total);
            if (d < best_dist) {
                best_dist = d;
                best = (ssize_t)i;
                best_mask = ch.mask;
            }
        } else {
            scores[i] = (int64_t)lround(ch.score);
            if (ch.score > best_score) {
                best_score = ch.score;
                best = (ssize_t)i;
                best_mask = ch.mask;
            }
        }
    }
    if (best >= 0) {
        if (rr)
            scores[best] = 10;
        const node *nd = find_node(c, names[best]);
        uint32_t ni = (uint32_t)(nd - c->nodes);
        hold h = {.node = ni, .mask = best_mask, .memory_mb = pod->gpus ? 0 : pod->memory_mb};
        h.expires_ns = now + (uint64_t)c->o.reservation_ttl_ms * 1000000ull;
        af__strlcpy(h.key, key, sizeof(h.key));
        snprintf(h.pod, sizeof(h.pod), "%s/%s", pod->namespace_ ? pod->namespace_ : "",
                 pod->name ? pod->name : "");
        hold *old = find_hold(c, key);
        if (old)
            hold_remove(c, (size_t)(old - c->holds));
        rc = add_hold(c, &h);
        if (rr && rc == 0) {
            c->rr_cursor = ni;
            c->rr_started = true;
        }
        af__strlcpy(node_name, nd->name, sizeof(node_name));
        gpu_ids(nd, best_mask, chosen, sizeof(chosen));
    }
    pthread_mutex_unlock(&c->mu);
    if (chosen_gpu && chosen_len)
        af__strlcpy(chosen_gpu, chosen, chosen_len);
    af_span_set_attrs(
        sp, AF_ATTRS(AF_STR("scheduler.chosen_node", node_name), AF_STR("gpu.id", chosen)));
    af_operation_end(sp, rc, rc ? "ENOMEM" : NULL, rc ? "cannot hold the choice" : NULL);
    return rc;
}

int af_cluster_bind(af_cluster *c, const af_cluster_pod *pod, const char *node_name, char *gpu_out,
                    size_t gpu_len, char *err, size_t err_len)
{
    if (!c || !pod || !node_name)
        return -EINVAL;
    if (gpu_out && gpu_len)
        gpu_out[0] = '\0';
    af_span sp = op_span(c, "gpu_scheduling.bind", pod, 1);
    af_span_set_string(sp, "scheduler.chosen_node", node_name);
    char key[AF_CLUSTER_NODE_MAX], ids[AF_GPU_ID_MAX] = "", why[AF_CLUSTER_REASON_MAX] = "";
    pod_key(pod, key, sizeof(key));
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    uint64_t now = c->o.clock(c->o.clock_user);
    expire_locked(c, now);
    hold *old = find_hold(c, key);
    /* ExtenderBindingArgs carry no resources: the pod's hold says what it asked for. */
    af_cluster_pod req = *pod;
    if (!wants_gpu(&req) && old) {
        req.memory_mb = old->memory_mb;
        req.gpus = old->memory_mb ? 0 : (uint32_t)__builtin_popcountll(old->mask);
    }
    if (!wants_gpu(&req)) {
        pthread_mutex_unlock(&c->mu);
        af_span_set_bool(sp, "scheduler.pass_through", true);
        af_operation_end(sp, 0, NULL, NULL);
        return 0;
    }
    pod = &req;
    node *nd = find_node(c, node_name);
    uint64_t expires = now + (uint64_t)c->o.reservation_ttl_ms * 1000000ull;
    if (!nd) {
        snprintf(why, sizeof(why), "no agentaflow agent on node %s", node_name);
        rc = -ENOENT;
    } else if (old && old->node == (uint32_t)(nd - c->nodes) && old->mask) {
        old->bound = true;
        old->expires_ns = expires;
        gpu_ids(nd, old->mask, ids, sizeof(ids));
    } else {
        choice ch;
        eval_node(c, nd, pod, old, now, effective(c->o.strategy, pod), &ch);
        if (!ch.fits) {
            snprintf(why, sizeof(why), "%s", ch.reason);
            rc = -EAGAIN;
        } else {
            hold h = {.node = (uint32_t)(nd - c->nodes), .mask = ch.mask, .bound = true};
            h.memory_mb = pod->gpus ? 0 : pod->memory_mb;
            h.expires_ns = expires;
            af__strlcpy(h.key, key, sizeof(h.key));
            snprintf(h.pod, sizeof(h.pod), "%s/%s", pod->namespace_ ? pod->namespace_ : "",
                     pod->name ? pod->name : "");
            if (old)
                hold_remove(c, (size_t)(old - c->holds));
            rc = add_hold(c, &h);
            gpu_ids(nd, ch.mask, ids, sizeof(ids));
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (gpu_out && gpu_len)
        af__strlcpy(gpu_out, ids, gpu_len);
    if (rc && why[0])
        af__cluster_err(err, err_len, "%s", why);
    af_span_set_string(sp, "gpu.id", ids);
    if (why[0])
        af_span_set_string(sp, "scheduler.reasons", why);
    af_operation_end(sp, rc, rc ? af_strerror(rc) : NULL, rc ? why : NULL);
    return rc;
}

void af_cluster_release(af_cluster *c, const char *key)
{
    if (!c || !key)
        return;
    pthread_mutex_lock(&c->mu);
    hold *h = find_hold(c, key);
    if (h)
        hold_remove(c, (size_t)(h - c->holds));
    pthread_mutex_unlock(&c->mu);
}

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
    expire_locked(c, now);
    uint32_t ready = 0;
    af__buf_puts(&b, "{\"nodes\":[");
    for (size_t i = 0; i < c->n_nodes; i++) {
        const node *n = &c->nodes[i];
        bool r = node_ready(c, n, now);
        ready += r;
        af__buf_printf(&b, "%s{\"name\":", i ? "," : "");
        json_str(&b, n->name);
        af__buf_printf(
            &b, ",\"ready\":%s,\"last_report_unix_ms\":%llu,\"seconds_since_report\":%llu",
            r ? "true" : "false", (unsigned long long)(n->last_report_ns / 1000000ull),
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
        gpu_ids(&c->nodes[h->node], h->mask, ids, sizeof(ids));
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

/* ---------------------------------------------------------------------------------------- */
/* Snapshot / restore.                                                                       */

void af_cluster_state_free(af_cluster_state *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_nodes; i++) {
        for (size_t j = 0; j < st->nodes[i].n_gpus; j++)
            free(st->nodes[i].gpus[j].procs);
        free(st->nodes[i].gpus);
    }
    free(st->nodes);
    free(st->holds);
    memset(st, 0, sizeof(*st));
}

int af_cluster_snapshot(af_cluster *c, af_cluster_state *out)
{
    memset(out, 0, sizeof(*out));
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    out->nodes = c->n_nodes ? calloc(c->n_nodes, sizeof(*out->nodes)) : NULL;
    out->holds = c->n_holds ? calloc(c->n_holds, sizeof(*out->holds)) : NULL;
    if ((c->n_nodes && !out->nodes) || (c->n_holds && !out->holds)) {
        rc = -ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < c->n_nodes; i++) {
        const node *n = &c->nodes[i];
        af_cluster_node_state *s = &out->nodes[i];
        out->n_nodes = i + 1;
        memcpy(s->name, n->name, sizeof(s->name));
        s->last_report_ns = n->last_report_ns;
        s->gpus = n->n_gpus ? calloc(n->n_gpus, sizeof(*s->gpus)) : NULL;
        if (n->n_gpus && !s->gpus) {
            rc = -ENOMEM;
            goto done;
        }
        s->n_gpus = n->n_gpus;
        for (size_t j = 0; j < n->n_gpus; j++) {
            s->gpus[j] = n->gpus[j].g;
            s->gpus[j].procs = NULL;
            if (!n->gpus[j].g.n_procs)
                continue;
            size_t sz = n->gpus[j].g.n_procs * sizeof(af_gpu_process);
            if (!(s->gpus[j].procs = malloc(sz))) {
                s->gpus[j].n_procs = 0;
                rc = -ENOMEM;
                goto done;
            }
            memcpy(s->gpus[j].procs, n->gpus[j].g.procs, sz);
        }
    }
    for (size_t i = 0; i < c->n_holds; i++) {
        const hold *h = &c->holds[i];
        af_cluster_hold_state *s = &out->holds[i];
        memcpy(s->pod_uid, h->key, sizeof(s->pod_uid));
        memcpy(s->pod, h->pod, sizeof(s->pod));
        memcpy(s->node, c->nodes[h->node].name, sizeof(s->node));
        s->gpu_mask = h->mask;
        s->memory_mb = h->memory_mb;
        s->expires_ns = h->expires_ns;
        s->bound = h->bound;
    }
    out->n_holds = c->n_holds;
    out->rr_cursor = c->rr_started ? c->rr_cursor : UINT32_MAX;
done:
    pthread_mutex_unlock(&c->mu);
    if (rc)
        af_cluster_state_free(out);
    return rc;
}

int af_cluster_restore(af_cluster *c, const af_cluster_state *st, char *err, size_t err_len)
{
    if (!c || !st)
        return -EINVAL;
    if (st->n_nodes > c->o.max_nodes) {
        af__cluster_err(err, err_len, "nodes: %zu, more than cluster.max_nodes (%u)", st->n_nodes,
                        c->o.max_nodes);
        return -EINVAL;
    }
    /* Build a fresh cluster, then swap, so a bad entry leaves the current state alone. */
    af_cluster *tmp = NULL;
    int rc = af_cluster_new(&c->o, &tmp);
    if (rc)
        return rc;
    for (size_t i = 0; i < st->n_nodes && rc == 0; i++) {
        const af_cluster_node_state *s = &st->nodes[i];
        af_cluster_report r = {s->name, s->gpus, s->n_gpus};
        char why[160] = "";
        if ((rc = af_cluster_report_nodes(tmp, &r, why, sizeof(why))) != 0) {
            af__cluster_err(err, err_len, "nodes[%zu].%s", i, why);
            break;
        }
        tmp->nodes[tmp->n_nodes - 1].last_report_ns = s->last_report_ns;
    }
    for (size_t i = 0; i < st->n_holds && rc == 0; i++) {
        const af_cluster_hold_state *s = &st->holds[i];
        node *n = find_node(tmp, s->node);
        if (!n || (n->n_gpus < 64 && (s->gpu_mask >> n->n_gpus))) {
            af__cluster_err(err, err_len, "holds[%zu].node: %s is not a node with those GPUs", i,
                            s->node);
            rc = -EINVAL;
            break;
        }
        hold h = {.node = (uint32_t)(n - tmp->nodes),
                  .mask = s->gpu_mask,
                  .memory_mb = s->memory_mb,
                  .expires_ns = s->expires_ns,
                  .bound = s->bound};
        af__strlcpy(h.key, s->pod_uid, sizeof(h.key));
        af__strlcpy(h.pod, s->pod, sizeof(h.pod));
        rc = add_hold(tmp, &h);
    }
    if (rc == 0) {
        pthread_mutex_lock(&c->mu);
        clear_locked(c);
        c->nodes = tmp->nodes;
        c->n_nodes = tmp->n_nodes;
        c->cap_nodes = tmp->cap_nodes;
        c->map = tmp->map;
        c->map_cap = tmp->map_cap;
        c->holds = tmp->holds;
        c->n_holds = tmp->n_holds;
        c->cap_holds = tmp->cap_holds;
        c->rr_started = st->rr_cursor != UINT32_MAX && st->rr_cursor < tmp->n_nodes;
        c->rr_cursor = c->rr_started ? st->rr_cursor : 0;
        pthread_mutex_unlock(&c->mu);
        tmp->nodes = NULL;
        tmp->map = NULL;
        tmp->holds = NULL;
        tmp->n_nodes = tmp->n_holds = 0;
    }
    af_cluster_free(tmp);
    return rc;
}
